from .metrics import *  # noqa: F401,F403
from .baselines import mean_latent_baseline  # noqa: F401
