"""Compatibility shims for the dependency versions lmd-toolkit supports.

Every shim lives here, is applied by :func:`apply_compat_shims` (called from
``register_all_modules()`` and the tools) or by the tools' distributed set-up,
and is described in ``docs/en/compatibility.md``. Users set no environment
variable for any of them.

1. torch >= 2.6 loads checkpoints with ``weights_only=True`` by default.
   mmengine 0.10 training checkpoints hold its ``HistoryBuffer`` (message
   hub) and numpy arrays / dtypes, so ``resume=True`` and ``load_from`` fail
   with ``Unsupported global: ... HistoryBuffer``. We keep the safe loader
   and allow exactly those data-only classes
   (:func:`allow_mmengine_checkpoint_globals`). ``HistoryBuffer`` also
   pickles its built-in statistic methods as ``getattr(HistoryBuffer,
   'mean')``, and allowing ``getattr`` would defeat the safe loader; its
   ``__getstate__`` is narrowed to leave out the four built-in methods,
   which ``__setstate__`` restores anyway (custom ones are still saved).
2. mmengine's ``init_dist`` calls ``torch.cuda.set_device`` for the
   ``pytorch`` / ``slurm`` launchers, which fails without a GPU. Before the
   Runner is built, :func:`init_cpu_distributed` initialises a ``gloo``
   process group from the launcher's environment variables; the Runner then
   skips its own initialisation.
3. mmengine's Runner passes ``device_ids=[LOCAL_RANK]`` to the DDP wrapper,
   which torch rejects for CPU modules: ``LMDDistributedDataParallel``
   (``lmd_toolkit/engine/model_wrappers.py``) drops it on CPU;
   :func:`fill_model_wrapper_cfg` selects it for configs that name none.
4. mmengine's ``Runner(compile=True)`` compiles ``model.train_step``, whose
   ``OptimWrapper.update_params`` (``ConfigDict`` param groups) and
   ``BaseDataPreprocessor.cast_data`` (guards on metainfo strings) make
   dynamo fail or recompile every batch: :func:`exclude_plumbing_from_compile`
   runs both eagerly.
5. Checkpoint metadata is data, never code (docs/en/reliability.md).
   mmengine's local and HTTP checkpoint loaders call ``torch.load`` without
   an explicit ``weights_only`` (or with ``weights_only=False``), so
   ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` in the environment made them
   unpickle anything; ``Runner.resume`` runs ``meta['config']`` through
   ``Config.fromstring``, which executes it. :func:`safe_mmengine_loading`
   re-registers both loaders with an explicit ``weights_only=True`` and
   readable errors (:func:`~lmd_toolkit.utils.fileio.safe_torch_load`), and
   makes ``Runner.load_checkpoint`` drop ``meta['config']`` (executable text)
   before ``resume`` sees it; the toolkit compares recorded configs with
   :mod:`lmd_toolkit.utils.config_text`, which parses literals only.
6. mmengine's ``LocalBackend.put`` / ``put_text`` (checkpoints, dumped
   configs) write in place, so a crash or a full disk left a truncated file
   under the final name: :func:`atomic_local_backend` routes them through
   :func:`~lmd_toolkit.utils.fileio.atomic_write`.
7. FSDP through mmengine's ``FSDPStrategy`` / ``FlexibleRunner`` with torch
   2.14: ``device_id=LOCAL_RANK`` (a CUDA index) is passed on every
   machine; the whole model is one unit, the frozen projector sharded with
   it; ``clip_grad`` clips each rank's shard by its own norm; the optimizer
   state is saved in FSDP's name-keyed layout, and loaded with
   ``FSDP.optim_state_dict_to_load``'s arguments in torch 2.0's order
   (``TypeError``); torch's ``sync_module_states`` refuses CPU tensors; its
   optimizer-state gather of CPU tensors with ``offload_to_cpu=True``
   returns ``exp_avg`` equal to ``exp_avg_sq``; ``FlexibleRunner`` starts
   no process group for one process, which FSDP needs.
   ``lmd_toolkit.engine.strategies`` (``LMDFSDPStrategy``,
   ``LMDFullyShardedDataParallel``) absorbs all but the last;
   :func:`init_single_process_group` the last.
8. mmengine names a run's log directory, logger, message hub and visualizer
   by a timestamp with one-second resolution, and hands back the existing
   instance when a name is taken: a second Runner built in the same process
   within the same second (a sweep, a notebook, a test) logged and dumped
   its config into the first run's directory, or into a deleted one
   (``FileNotFoundError: .../vis_data/config.py``).
   :func:`unique_run_timestamps` appends ``_2``, ``_3``... to a timestamp
   this process has already used. Every rank builds its runners in the
   same order, so ranks still agree.
"""
import logging
import os
import os.path as osp
import socket
import subprocess
from typing import List, Optional

import numpy as np
import torch
import torch.distributed as dist
from mmengine.logging import print_log

from .fileio import atomic_write, safe_torch_load

MODEL_WRAPPER = 'lmd_toolkit.LMDDistributedDataParallel'


def mmengine_checkpoint_globals() -> List[type]:
    """The data-only classes an mmengine training checkpoint pickles besides
    tensors: the message hub's ``HistoryBuffer`` and what numpy arrays,
    scalars and dtypes reduce to."""
    from mmengine.logging.history_buffer import HistoryBuffer
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    dtype_classes = {
        type(np.dtype(t))
        for t in ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8',
                  'uint16', 'uint32', 'uint64', 'float16', 'float32',
                  'float64', 'complex64', 'complex128')
    }
    return [
        HistoryBuffer, multiarray._reconstruct, multiarray.scalar, np.ndarray,
        np.dtype, *sorted(dtype_classes, key=lambda c: c.__name__)
    ]


_BUILTIN_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getstate(self) -> dict:
    """``HistoryBuffer.__getstate__`` without the built-in statistic methods
    (they would pickle as ``getattr`` calls, refused by the safe loader)."""
    state = {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}
    custom = {
        name: method
        for name, method in self._statistics_methods.items()
        if name not in _BUILTIN_STATISTICS
    }
    if custom:
        state['statistics_methods'] = custom
    return state


def allow_mmengine_checkpoint_globals() -> None:
    """Let ``torch.load(weights_only=True)`` read mmengine training
    checkpoints written by this toolkit (shim 1). No-op on torch without
    ``add_safe_globals``."""
    from mmengine.logging.history_buffer import HistoryBuffer
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:
        add_safe_globals(mmengine_checkpoint_globals())


def init_cpu_distributed(launcher: str, backend: str = 'gloo') -> bool:
    """Initialise a ``gloo`` process group when distributed training is asked
    for on a machine without CUDA (shim 2).

    With ``launcher='slurm'`` the SLURM variables are translated into
    torchrun's (:func:`_slurm_env_to_torchrun_env`) on GPU machines too,
    where mmengine then initialises nccl: the work-dir lock reads ``RANK``
    before the Runner exists, and the port is derived per job.

    Args:
        launcher (str): ``'none'``, ``'pytorch'`` (torchrun) or ``'slurm'``.
        backend (str): Process-group backend for CPU. Defaults to 'gloo'.

    Returns:
        bool: True if this call initialised the process group.
    """
    if launcher == 'none' or (dist.is_available() and dist.is_initialized()):
        return False
    if launcher == 'slurm':
        _slurm_env_to_torchrun_env()
    if torch.cuda.is_available():
        return False
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f'CPU distributed training supports the launchers '
                         f"'pytorch' and 'slurm', got launcher={launcher!r}")
    missing = [
        k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
        if k not in os.environ
    ]
    if missing:
        raise RuntimeError(
            f'--launcher {launcher} needs the environment variables '
            f'{missing}; start the script with tools/dist_train.sh '
            '(torchrun) or tools/slurm_train.sh.')
    dist.init_process_group(backend=backend, init_method='env://')
    # Every rank reports its rank and world size (mmengine's logger shows
    # only errors on ranks other than 0): a task with a wrong rank shows.
    rank = dist.get_rank()
    print_log(
        f'No CUDA: initialised a {backend} process group on CPU (rank '
        f'{rank} of {dist.get_world_size()}).',
        logger='current' if rank == 0 else None)
    return True


def _slurm_env_to_torchrun_env() -> None:
    """Derive torchrun's variables from SLURM's, as mmengine's slurm
    initialisation does but without touching CUDA.

    ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` are set from
    ``SLURM_PROCID``, ``SLURM_NTASKS`` and ``SLURM_LOCALID`` (values inherited
    from the submitting shell would give every task one rank).
    ``MASTER_ADDR``, unless set, is the first host of the step's node list
    (``SLURM_STEP_NODELIST``, else ``SLURM_NODELIST``), expanded by
    ``scontrol show hostnames``. ``MASTER_PORT``, unless set, is
    ``20000 + SLURM_JOB_ID % 10000``: one port per job, so that two jobs
    sharing a node do not both take torch's default 29500 (which stays the
    port without ``SLURM_JOB_ID``).

    Raises:
        RuntimeError: If a SLURM variable is missing (not started by
            ``srun``), or ``scontrol`` is missing or fails.
    """
    missing = [
        k for k in ('SLURM_PROCID', 'SLURM_NTASKS') if k not in os.environ
    ]
    if missing:
        raise RuntimeError(
            f'--launcher slurm needs the variables {missing} that srun sets '
            'for each task; start the script with tools/slurm_train.sh '
            '(or srun), or use tools/dist_train.sh (torchrun).')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ.get('SLURM_STEP_NODELIST',
                                   os.environ.get('SLURM_NODELIST', ''))
        fix = ('set MASTER_ADDR to the address of the node that runs task '
               '0 (e.g. MASTER_ADDR=$(hostname) in the batch script, '
               'before srun)')
        try:
            proc = subprocess.run(
                ['scontrol', 'show', 'hostnames', node_list],
                capture_output=True, text=True)
        except FileNotFoundError:
            raise RuntimeError(
                '--launcher slurm: scontrol, which expands the node list '
                f'{node_list!r} to the master address, is not on PATH; '
                f'{fix}.') from None
        hosts = proc.stdout.split()
        if proc.returncode != 0 or not hosts:
            raise RuntimeError(
                f'--launcher slurm: scontrol show hostnames {node_list!r} '
                f'failed ({proc.stderr.strip() or "no host"}); {fix}.')
        os.environ['MASTER_ADDR'] = hosts[0]
    if 'MASTER_PORT' not in os.environ:
        job_id = os.environ.get('SLURM_JOB_ID', '')
        os.environ['MASTER_PORT'] = str(20000 + int(job_id) % 10000
                                        if job_id.isdigit() else 29500)


def fill_model_wrapper_cfg(cfg) -> None:
    """Select ``LMDDistributedDataParallel`` when a config names no model
    wrapper (shim 3); our ``default_runtime.py`` names it explicitly."""
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type=MODEL_WRAPPER,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))


def free_local_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for a local rendezvous)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def init_single_process_group() -> bool:
    """A process group of one for an FSDP config started without a launcher
    (shim 7): torch's FSDP needs one, mmengine's ``FlexibleRunner`` starts
    none for ``--launcher none``. ``gloo`` without CUDA, ``nccl`` with it;
    a free local port.

    Returns:
        bool: True if this call initialised the process group.
    """
    if dist.is_initialized():
        return False
    port = free_local_port()
    backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if torch.cuda.is_available():
        torch.cuda.set_device(0)
    os.environ.setdefault('LOCAL_RANK', '0')
    dist.init_process_group(backend=backend,
                            init_method=f'tcp://127.0.0.1:{port}',
                            rank=0, world_size=1)
    print_log(f'FSDP without a launcher: a {backend} process group of one '
              'process.', logger='current')
    return True


def exclude_plumbing_from_compile() -> None:
    """Make ``OptimWrapper.update_params`` (inherited by ``AmpOptimWrapper``
    and ``AutocastOptimWrapper``) and ``BaseDataPreprocessor.cast_data`` run
    eagerly under ``torch.compile`` (graph breaks). Idempotent; applied by
    :func:`apply_compat_shims` and when ``lmd_toolkit.engine.optim_wrappers``
    is imported (docs/en/precision.md)."""
    from mmengine.model import BaseDataPreprocessor
    from mmengine.optim import OptimWrapper
    for owner, name in ((OptimWrapper, 'update_params'),
                        (BaseDataPreprocessor, 'cast_data')):
        function = getattr(owner, name)
        if getattr(function, '_lmd_eager', False):
            continue
        eager = torch.compiler.disable(function)
        eager._lmd_eager = True
        setattr(owner, name, eager)


def _load_local_checkpoint(filename: str, map_location=None):
    """mmengine's local-file checkpoint loader, with the safe loader chosen
    explicitly and one readable error for a missing or truncated file."""
    filename = osp.expanduser(filename)
    return safe_torch_load(
        filename,
        role='Checkpoint',
        fix='Pass the path of a complete checkpoint (a half-written file '
        'is left by a crash during saving; the previous checkpoint in the '
        'same folder is intact).',
        map_location=map_location)


def _load_http_checkpoint(filename: str,
                          map_location=None,
                          model_dir: Optional[str] = None,
                          progress: bool = False):
    """mmengine's HTTP(S) checkpoint loader with ``weights_only=True``
    (torch.hub's default is False). Rank 0 downloads first."""
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()

    def load():
        return torch.hub.load_state_dict_from_url(
            filename, model_dir=model_dir, map_location=map_location,
            progress=progress, weights_only=True)

    checkpoint = load() if rank == 0 else None
    if world_size > 1:
        dist.barrier()
        if rank > 0:
            checkpoint = load()
    return checkpoint


def drop_executable_meta(checkpoint, filename: str) -> None:
    """Remove ``meta['config']`` (text that ``Runner.resume`` and
    ``FlexibleRunner.resume`` would execute) from a loaded checkpoint, with
    a warning naming ``filename``."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if isinstance(meta, dict) and 'config' in meta:
        meta.pop('config')
        print_log(
            f"{filename}: ignored meta['config'] (config text is never "
            'executed; the recorded meta[\'cfg\'] is compared as data).',
            logger='current', level=logging.WARNING)


def _drop_executable_meta(load_checkpoint):
    """Wrap ``Runner.load_checkpoint`` with :func:`drop_executable_meta`."""

    def load_checkpoint_without_code(self, filename, *args, **kwargs):
        checkpoint = load_checkpoint(self, filename, *args, **kwargs)
        drop_executable_meta(checkpoint, filename)
        return checkpoint

    load_checkpoint_without_code._lmd_safe = True
    return load_checkpoint_without_code


def safe_mmengine_loading() -> None:
    """Shim 5: mmengine's checkpoint loaders with ``weights_only=True``
    passed explicitly, and no execution of a checkpoint's config text.
    Idempotent."""
    from mmengine.runner import Runner
    from mmengine.runner import checkpoint as mm_checkpoint
    loader = mm_checkpoint.CheckpointLoader
    loader.register_scheme('', _load_local_checkpoint, force=True)
    loader.register_scheme(('http://', 'https://'), _load_http_checkpoint,
                           force=True)
    # Other mmengine schemes (torchvision://, open-mmlab://) call these
    # module functions by name.
    mm_checkpoint.load_from_local = _load_local_checkpoint
    mm_checkpoint.load_from_http = _load_http_checkpoint
    if not getattr(Runner.load_checkpoint, '_lmd_safe', False):
        Runner.load_checkpoint = _drop_executable_meta(Runner.load_checkpoint)


def _atomic_put(self, obj: bytes, filepath) -> None:
    with atomic_write(str(filepath), 'wb') as f:
        f.write(obj)


def _atomic_put_text(self, obj: str, filepath, encoding: str = 'utf-8'
                     ) -> None:
    with atomic_write(str(filepath), 'w', encoding=encoding) as f:
        f.write(obj)


def atomic_local_backend() -> None:
    """Shim 6: mmengine's local file backend writes through a temporary file
    and a rename. Idempotent."""
    from mmengine.fileio.backends import LocalBackend
    LocalBackend.put = _atomic_put
    LocalBackend.put_text = _atomic_put_text


_USED_TIMESTAMPS: dict = {}


def unique_timestamp(timestamp: str) -> str:
    """``timestamp`` the first time this process sees it, then
    ``timestamp_2``, ``timestamp_3``..."""
    count = _USED_TIMESTAMPS.get(timestamp, 0) + 1
    _USED_TIMESTAMPS[timestamp] = count
    return timestamp if count == 1 else f'{timestamp}_{count}'


def _with_unique_timestamp(setup_env):

    def setup_env_with_unique_timestamp(self, *args, **kwargs):
        setup_env(self, *args, **kwargs)
        self._timestamp = unique_timestamp(self._timestamp)

    setup_env_with_unique_timestamp._lmd_unique = True
    return setup_env_with_unique_timestamp


def unique_run_timestamps() -> None:
    """Shim 8: no two Runners (or FlexibleRunner strategies) of one process
    share a timestamp, and so a log directory or a logger. Idempotent."""
    from mmengine._strategy.base import BaseStrategy
    from mmengine.runner import Runner
    for cls, name in ((Runner, 'setup_env'), (BaseStrategy, '_setup_env')):
        method = getattr(cls, name)
        if not getattr(method, '_lmd_unique', False):
            setattr(cls, name, _with_unique_timestamp(method))


def apply_compat_shims() -> None:
    """Apply the process-wide shims (idempotent)."""
    allow_mmengine_checkpoint_globals()
    exclude_plumbing_from_compile()
    safe_mmengine_loading()
    atomic_local_backend()
    unique_run_timestamps()
