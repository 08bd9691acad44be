"""Sets the model's mask ratio before every training iteration."""
from typing import Optional, Union

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from lmd_toolkit.engine.mask_schedulers import BaseMaskRatio
from lmd_toolkit.registry import HOOKS, MASK_SCHEDULERS

DATA_BATCH = Optional[Union[dict, tuple, list]]


def build_mask_scheduler(cfg: Union[dict, BaseMaskRatio]) -> BaseMaskRatio:
    """Build a mask scheduler from a config dict (or return the instance).

    Raises:
        KeyError: The ``type`` is not registered; the message lists the
            registered schedulers and how to register a plugin.
    """
    if not isinstance(cfg, dict):
        return cfg
    name = cfg.get('type')
    if name not in MASK_SCHEDULERS.module_dict:
        raise KeyError(
            f'Unknown mask scheduler type={name!r}. Registered: '
            f'{sorted(MASK_SCHEDULERS.module_dict)}. A plugin registers its '
            'own with @MASK_SCHEDULERS.register_module() and is imported by '
            "custom_imports=dict(imports=['your_pkg'], "
            'allow_failed_imports=False) (docs/en/plugins.md).')
    return MASK_SCHEDULERS.build(cfg)


@HOOKS.register_module()
class MaskRatioSchedulerHook(Hook):
    """Set ``model.<attr_name>`` from a mask scheduler before every training
    iteration and log it.

    The ratio is computed from ``runner.iter`` (global, 0-based) and
    ``runner.max_iters``, which both iteration- and epoch-based loops
    provide, so a resumed run continues the same curve. The value is logged
    as ``mask_ratio`` (pattern: mmpretrain's ``WarmupParamHook``). Paper
    §3.2.3, https://arxiv.org/abs/2312.07971.

    Args:
        scheduler (dict | BaseMaskRatio): Config of a scheduler registered in
            ``MASK_SCHEDULERS`` (or an instance). Defaults to
            ``dict(type='CosineMaskRatio')``.
        attr_name (str): Attribute of the (unwrapped) model to set; dotted
            paths such as ``'backbone.mask_ratio'`` are allowed. Defaults to
            ``'mask_ratio'``.
        log_name (str): Name of the logged scalar. Defaults to
            ``'mask_ratio'``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 scheduler: Union[dict, BaseMaskRatio] = dict(
                     type='CosineMaskRatio'),
                 attr_name: str = 'mask_ratio',
                 log_name: str = 'mask_ratio') -> None:
        self.scheduler = build_mask_scheduler(scheduler)
        self.attr_name = attr_name
        self.log_name = log_name

    def _owner(self, runner) -> tuple:
        """The object holding the attribute and the attribute's name."""
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        *parents, leaf = self.attr_name.split('.')
        owner = model
        for part in parents:
            owner = getattr(owner, part, None)
        if owner is None or not hasattr(owner, leaf):
            raise AttributeError(
                f'MaskRatioSchedulerHook: the model {type(model).__name__} '
                f'has no attribute {self.attr_name!r} to set the mask ratio '
                'on. Set the hook\'s attr_name to the attribute your model '
                'reads (e.g. attr_name=\'mask_ratio\') or add it to the '
                'model.')
        return owner, leaf

    def before_train(self, runner) -> None:
        self._owner(runner)  # fail before the first iteration, clearly

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        ratio = self.scheduler.ratio(runner.iter, runner.max_iters)
        owner, leaf = self._owner(runner)
        setattr(owner, leaf, ratio)
        runner.message_hub.update_scalar(f'train/{self.log_name}', ratio)
