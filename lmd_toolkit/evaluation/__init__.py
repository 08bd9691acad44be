from .metrics import *  # noqa: F401,F403
from .baselines import mean_latent_baseline  # noqa: F401
from .efficiency import efficiency_metrics, smooth_losses  # noqa: F401
from .probe import (knn_predict, linear_probe_predict,  # noqa: F401
                    pool_tokens, probe_accuracies, resplit_accuracies)
