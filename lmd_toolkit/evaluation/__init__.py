from .metrics import *  # noqa: F401,F403
from .baselines import mean_latent_baseline  # noqa: F401
from .efficiency import efficiency_metrics, smooth_losses  # noqa: F401
