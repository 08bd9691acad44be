"""Sets the model's mask ratio before every training iteration."""
from typing import Optional, Union

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from lmd_toolkit.engine.mask_schedulers import (  # noqa: F401 (re-export)
    BaseMaskRatio, build_mask_scheduler)
from lmd_toolkit.registry import HOOKS

DATA_BATCH = Optional[Union[dict, tuple, list]]


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
