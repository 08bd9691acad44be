"""Fully sharded data parallel training through mmengine's ``FlexibleRunner``
(docs/en/distributed.md).

``configs/_base_/strategies/fsdp.py`` selects ``runner_type='FlexibleRunner'``
and :class:`LMDFSDPStrategy`. What mmengine's ``FSDPStrategy`` /
``MMFullyShardedDataParallel`` assume and this module absorbs:

- ``device_id=LOCAL_RANK`` (a CUDA device) is passed to FSDP on every
  machine; without CUDA :class:`LMDFullyShardedDataParallel` passes
  ``torch.device('cpu')`` (gloo), so the whole path runs on CPU processes;
- no wrap policy means one FSDP unit for the whole model: here each
  transformer ``Block`` of the encoder and the decoder is a unit, and the
  frozen projector is left out of FSDP (``ignored_modules``: not sharded,
  not flattened, held whole on every rank);
- the frozen parameters are not given to the optimizer, and ``clip_grad``
  clips by the norm of the whole gradient, not of each rank's shard;
- checkpoints hold the full state dict, gathered on rank 0, with the
  optimizer state in the layout ``torch.optim.Optimizer.state_dict()`` gives
  an unsharded run (integer parameter ids), so a checkpoint written under
  FSDP is read by ``tools/test.py``, ``tools/reconstruct.py``, the
  converters and a single-process ``--resume`` as a DDP one is; resuming
  under FSDP converts it back;
- checkpoint metadata is data: ``meta['config']`` (text that
  ``FlexibleRunner.resume`` would execute) is dropped on loading, as for
  mmengine's ``Runner`` (``lmd_toolkit.utils.compat``, shim 5);
- with torch 2.14: mmengine passes ``FSDP.optim_state_dict_to_load`` its
  arguments in torch 2.0's order (resuming failed with ``TypeError``);
  ``sync_module_states`` refuses CPU tensors (rank 0's initial weights are
  broadcast here instead); gathering the optimizer state of CPU tensors with
  ``offload_to_cpu=True`` returns ``exp_avg`` equal to ``exp_avg_sq``.
"""
import copy
from functools import partial
from typing import Callable, Dict, List, Optional

import torch
import torch.distributed as dist
from mmengine._strategy import FSDPStrategy
from mmengine.model import MMFullyShardedDataParallel
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn
from torch.distributed.fsdp import FullStateDictConfig
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import StateDictType
from torch.distributed.fsdp.wrap import ModuleWrapPolicy

from lmd_toolkit.registry import (MODEL_WRAPPERS, MODELS,
                                  OPTIM_WRAPPER_CONSTRUCTORS, STRATEGIES)
from lmd_toolkit.models.layers import Block
from lmd_toolkit.utils.compat import drop_executable_meta
from lmd_toolkit.utils.rng import preserved_rng_state
from lmd_toolkit.utils.state_dict import optimizer_param_names

__all__ = [
    'LMDFSDPStrategy', 'LMDFullyShardedDataParallel',
    'TrainableParamsOptimWrapperConstructor', 'unsharded_model', 'is_fsdp',
    'frozen_children'
]

def is_fsdp(model: nn.Module) -> bool:
    """Whether ``model`` is (a subclass of) torch's FSDP wrapper."""
    return isinstance(model, FSDP)


def frozen_children(module: nn.Module) -> List[nn.Module]:
    """The direct children whose parameters are all frozen (the projector):
    FSDP leaves them alone."""
    frozen = []
    for child in module.children():
        params = list(child.parameters())
        if params and not any(p.requires_grad for p in params):
            frozen.append(child)
    return frozen


def transformer_block_policy() -> ModuleWrapPolicy:
    """Each transformer ``Block`` (encoder and decoder) is one FSDP unit."""
    return ModuleWrapPolicy({Block})


def unsharded_model(runner, cache: dict) -> Optional[nn.Module]:
    """The unwrapped model with whole parameters on rank 0, for calls
    outside the training forward (the visualisation hooks); None on the other
    ranks.

    Without FSDP it is ``runner.model``'s module and costs nothing. Under
    FSDP every rank must call it: the full state dict is gathered to rank 0
    (on CPU) and loaded into a plain copy of the model built once from
    ``runner.cfg.model`` and kept in ``cache`` (a sharded model cannot run
    a forward on one rank alone).

    Args:
        runner: The runner.
        cache (dict): Kept by the caller between calls.

    Returns:
        nn.Module | None: The model on rank 0.
    """
    model = runner.model
    if not is_fsdp(model):
        return getattr(model, 'module', model) if runner.rank == 0 else None
    with FSDP.state_dict_type(
            model, StateDictType.FULL_STATE_DICT,
            FullStateDictConfig(offload_to_cpu=True, rank0_only=True)):
        state = model.state_dict()
    if runner.rank != 0:
        return None
    if 'model' not in cache:
        # Building initialises weights: keep training's random draws.
        with preserved_rng_state():
            cache['model'] = MODELS.build(copy.deepcopy(runner.cfg.model))
    plain = cache['model']
    plain.load_state_dict(state)
    return plain


@MODEL_WRAPPERS.register_module()
class LMDFullyShardedDataParallel(MMFullyShardedDataParallel):
    """mmengine's ``MMFullyShardedDataParallel`` for LMD models, on GPU and CPU.

    Differences to mmengine's wrapper (all configurable back):

    - ``device_id``: mmengine's strategy passes ``LOCAL_RANK``, a CUDA device
      index; without CUDA it becomes ``torch.device('cpu')``;
    - ``auto_wrap_policy`` defaults to one unit per transformer ``Block``
      (:func:`transformer_block_policy`); the rest (patch embedding, tokens,
      norms, decoder projections) forms the root unit;
    - the direct children whose parameters are all frozen (the projector)
      are ``ignored_modules``: not sharded, not flattened, not in the
      optimizer, identical on every rank;
    - ``use_orig_params=True`` (parameter names, frozen position tables and
      per-parameter optimizer groups keep working);
    - ``sync_module_states=True``: rank 0's initial weights are broadcast
      before sharding, so every rank trains the same model, as under DDP.

    Args:
        module (nn.Module): The model.
        device_id (int | torch.device, optional): The device FSDP moves the
            model to. Defaults to None.
        auto_wrap_policy (str | dict | callable, optional): A registered
            function name, a dict with ``type``, or a policy.
            Defaults to None (:func:`transformer_block_policy`).
        ignored_modules (list, optional): More modules (or module names) to
            leave unsharded. Defaults to None.
        use_orig_params (bool): See torch's FSDP. Defaults to True.

    Other keyword arguments go to ``MMFullyShardedDataParallel`` as they are
    (``sharding_strategy``, ``mixed_precision``, ``cpu_offload``,
    ``backward_prefetch``, ...).
    """

    def __init__(self,
                 module: nn.Module,
                 device_id=None,
                 auto_wrap_policy=None,
                 ignored_modules: Optional[list] = None,
                 use_orig_params: bool = True,
                 **kwargs) -> None:
        if device_id is not None and not torch.cuda.is_available():
            device_id = torch.device('cpu')
        if auto_wrap_policy is None:
            auto_wrap_policy = transformer_block_policy()
        named = dict(module.named_modules())
        ignored = [named[m] if isinstance(m, str) else m
                   for m in (ignored_modules or [])]
        ignored += [m for m in frozen_children(module) if m not in ignored]
        if ignored:
            kwargs['ignored_modules'] = ignored
        # Every rank starts from rank 0's weights, as under DDP (ranks seed
        # differently with randomness.diff_rank_seed=True). torch's
        # sync_module_states refuses CPU tensors: broadcast them here.
        if torch.cuda.is_available():
            kwargs.setdefault('sync_module_states', True)
        elif dist.is_initialized() and dist.get_world_size() > 1:
            with torch.no_grad():
                for tensor in module.state_dict().values():
                    dist.broadcast(tensor, src=0)
        super().__init__(module=module,
                         device_id=device_id,
                         auto_wrap_policy=auto_wrap_policy,
                         use_orig_params=use_orig_params,
                         **kwargs)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableParamsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor (``paramwise_cfg`` and all) that gives
    the optimizer the trainable parameters only, with or without
    ``paramwise_cfg``. mmengine's skips frozen parameters only with a
    ``paramwise_cfg``; without one it passes ``model.parameters()``, frozen
    projector included. :class:`LMDFSDPStrategy` uses it when the config
    names no other constructor.

    Args:
        optim_wrapper_cfg (dict): The ``optim_wrapper`` config.
        paramwise_cfg (dict, optional): Per-parameter options, as for
            mmengine's default constructor. Defaults to None.
    """

    def __call__(self, model: nn.Module):
        if self.paramwise_cfg:
            return super().__call__(model)
        return super().__call__(_TrainableParameters(model))


class _TrainableParameters:
    """What the default constructor reads of a model without
    ``paramwise_cfg``: its parameters, here only the trainable ones."""

    def __init__(self, model: nn.Module) -> None:
        self._model = getattr(model, 'module', model)

    def parameters(self):
        return (p for p in self._model.parameters() if p.requires_grad)


@STRATEGIES.register_module()
class LMDFSDPStrategy(FSDPStrategy):
    """mmengine's ``FSDPStrategy`` with LMD's defaults and checkpoints that
    read like a DDP run's.

    - ``model_wrapper`` defaults to :class:`LMDFullyShardedDataParallel`;
    - ``state_dict_cfg`` defaults to ``'full'``: rank 0 saves one file with
      the gathered weights (offloaded to CPU) and the optimizer state in the
      unsharded, integer-keyed layout; resuming converts it back to FSDP's
      named layout and scatters it;
    - the optimizer gets the trainable parameters only
      (:class:`TrainableParamsOptimWrapperConstructor`, unless the config
      names a constructor);
    - ``clip_grad=dict(max_norm=...)`` clips by the norm of the whole
      gradient, reduced over the ranks (FSDP's ``clip_grad_norm_``), not by
      each rank's shard;
    - without CUDA the gathered optimizer state is not "offloaded" to the
      CPU it is on (torch 2.14 then returns one reused buffer for all of a
      parameter's states);
    - loading drops ``meta['config']`` before ``FlexibleRunner.resume`` could
      execute it;
    - before wrapping, the names and shapes of the full state dict are kept
      (``model.lmd_state_shapes``), so strict checks of a checkpoint against
      the model need no collective.

    Args:
        model_wrapper (dict, optional): The FSDP wrapper config.
            Defaults to ``dict(type='LMDFullyShardedDataParallel')``.
        state_dict_cfg (str | dict): ``'full'`` or ``'local'`` or a dict, see
            mmengine's ``FSDPStrategy``. Defaults to ``'full'``.

    Other keyword arguments (``activation_checkpointing``,
    ``skip_init_weights``, ...) go to mmengine's ``FSDPStrategy``.
    """

    def __init__(self,
                 *,
                 model_wrapper: Optional[dict] = None,
                 state_dict_cfg='full',
                 **kwargs) -> None:
        if model_wrapper is None:
            model_wrapper = dict(type='lmd_toolkit.LMDFullyShardedDataParallel')
        super().__init__(model_wrapper=model_wrapper,
                         state_dict_cfg=state_dict_cfg,
                         **kwargs)
        if not torch.cuda.is_available() and hasattr(
                self.optim_state_dict_config, 'offload_to_cpu'):
            # torch 2.14's FSDP, gathering the optimizer state of CPU tensors
            # with offload_to_cpu=True, hands back one reused buffer for
            # every state of a parameter: exp_avg came back equal to
            # exp_avg_sq. On CPU there is nothing to offload.
            self.optim_state_dict_config.offload_to_cpu = False

    # -- model ------------------------------------------------------------
    def _wrap_model(self, model: nn.Module) -> nn.Module:
        shapes = {
            k: torch.empty(v.shape, dtype=v.dtype, device='meta')
            for k, v in model.state_dict().items()
        }
        wrapped = super()._wrap_model(model)
        wrapped.lmd_state_shapes = shapes
        return wrapped

    def build_optim_wrapper(self, optim_wrapper, model=None):
        if isinstance(optim_wrapper, dict) and \
                'constructor' not in optim_wrapper:
            optim_wrapper = copy.copy(optim_wrapper)
            optim_wrapper['constructor'] = \
                'lmd_toolkit.TrainableParamsOptimWrapperConstructor'
        wrapper = super().build_optim_wrapper(optim_wrapper, model)
        model = model if model is not None else self.model
        if getattr(wrapper, 'grad_name', None) == 'grad_norm' and \
                is_fsdp(model):
            wrapper.clip_func = partial(_clip_sharded_grad_norm, model)
        return wrapper

    # -- optimizer state: unsharded, integer-keyed layout on disk ----------
    def _param_names(self) -> List[List[str]]:
        return optimizer_param_names(self.model, self.optim_wrapper.optimizer)

    def optim_state_dict(self) -> dict:
        named = FSDP.optim_state_dict(self.model, self.optim_wrapper.optimizer)
        if not self._is_full_state_dict() or not named:
            return named  # sharded layouts, and the ranks other than 0
        return _named_to_positional(named, self._param_names())

    def load_optim_state_dict(self, state_dict: dict) -> None:
        # ResumeHook has given it this optimizer's grouping already.
        if self._is_full_state_dict() and _is_positional(state_dict):
            state_dict = _positional_to_named(state_dict, self._param_names())
        # By keyword: mmengine 0.10 passes the arguments in torch 2.0's
        # order, which torch >= 2.1 changed (model, optim, state dict).
        sharded = FSDP.optim_state_dict_to_load(
            model=self.model,
            optim=self.optim_wrapper.optimizer,
            optim_state_dict=state_dict)
        self.optim_wrapper.load_state_dict(sharded)

    # -- loading: metadata is data ----------------------------------------
    def load_checkpoint(self, filename: str, **kwargs) -> dict:
        kwargs['callback'] = _without_executable_meta(
            filename, kwargs.get('callback'))
        return super().load_checkpoint(filename, **kwargs)

    def resume(self, filename: str, **kwargs) -> dict:
        kwargs['callback'] = _without_executable_meta(
            filename, kwargs.get('callback'))
        return super().resume(filename, **kwargs)


def _clip_sharded_grad_norm(model: FSDP, params, max_norm: float,
                            norm_type: float = 2.0, **kwargs) -> torch.Tensor:
    """``clip_grad=dict(max_norm=...)`` under FSDP: mmengine's wrapper calls
    ``torch.nn.utils.clip_grad_norm_`` on the local gradient shards, whose
    norm differs on every rank; FSDP's ``clip_grad_norm_`` reduces the norm
    over the ranks first, so every rank clips by the norm of the whole
    gradient (as DDP does)."""
    return model.clip_grad_norm_(max_norm, norm_type)


def _without_executable_meta(filename: str,
                             callback: Optional[Callable]) -> Callable:
    """Wrap a checkpoint callback: :func:`~lmd_toolkit.utils.compat.
    drop_executable_meta` first (shim 5, as for mmengine's ``Runner``)."""

    def drop_then_call(checkpoint: dict) -> None:
        drop_executable_meta(checkpoint, filename)
        if callback is not None:
            callback(checkpoint)

    return drop_then_call


def _is_positional(state_dict: dict) -> bool:
    groups = state_dict.get('param_groups') or []
    return all(isinstance(i, int) for g in groups for i in g['params'])


def _named_to_positional(named: dict, names: List[List[str]]) -> dict:
    """FSDP's full optimizer state (keyed by parameter name) -> the layout
    of an unsharded ``Optimizer.state_dict()`` (ids 0, 1, ... in group
    order)."""
    ids: Dict[str, int] = {}
    groups = []
    for saved, group_names in zip(named['param_groups'], names):
        group = {k: v for k, v in saved.items() if k != 'params'}
        group['params'] = []
        for name in group_names:
            ids[name] = len(ids)
            group['params'].append(ids[name])
        groups.append(group)
    state = {ids[name]: value for name, value in named['state'].items()}
    return dict(state=state, param_groups=groups)


def _positional_to_named(positional: dict, names: List[List[str]]) -> dict:
    """The inverse of :func:`_named_to_positional`, for this optimizer."""
    saved_groups = positional['param_groups']
    sizes = [len(g['params']) for g in saved_groups]
    if sizes != [len(n) for n in names]:
        raise ValueError(
            'Resuming under FSDP: the checkpoint\'s optimizer has parameter '
            f'groups of sizes {sizes}, this model\'s optimizer '
            f'{[len(n) for n in names]}; resume with the config the '
            'checkpoint was trained with.')
    to_name = {}
    groups = []
    for saved, group_names in zip(saved_groups, names):
        group = {k: v for k, v in saved.items() if k != 'params'}
        group['params'] = list(group_names)
        to_name.update(zip(saved['params'], group_names))
        groups.append(group)
    state = {to_name[i]: value for i, value in positional['state'].items()}
    return dict(state=state, param_groups=groups)

