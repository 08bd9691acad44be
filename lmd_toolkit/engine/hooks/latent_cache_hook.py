"""Builds (or reuses) the latent caches of a run's datasets before it
trains, with the model's own projector."""
import json
import os.path as osp
import time
from typing import Iterator

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from lmd_toolkit.datasets.latent_cache import LatentCacheDataset
from lmd_toolkit.registry import HOOKS
from lmd_toolkit.utils.fileio import UnreadableFileError, atomic_write
from lmd_toolkit.utils.rng import preserved_rng_state


def _latent_datasets(dataset) -> Iterator[LatentCacheDataset]:
    """``LatentCacheDataset`` s in ``dataset`` and in mmengine's dataset
    wrappers (``ConcatDataset``, ``RepeatDataset``, ...)."""
    if isinstance(dataset, LatentCacheDataset):
        yield dataset
    for inner in getattr(dataset, 'datasets', None) or []:
        yield from _latent_datasets(inner)
    inner = getattr(dataset, 'dataset', None)
    if inner is not None and not isinstance(dataset, LatentCacheDataset):
        yield from _latent_datasets(inner)


@HOOKS.register_module()
class LatentCacheHook(Hook):
    """Encode the images of every latent-first ``LatentCacheDataset`` of the
    run once, before training (or testing) starts.

    Runs after the model's weights are loaded (``before_train`` follows
    ``init_weights`` and resuming), so the cache is made by exactly the
    projector that trains on it: its fingerprint names the folder, an
    ``'auto'`` scale factor is calibrated once and kept. Under
    ``torch.distributed`` every rank encodes its share of the chunks and no
    rank returns before rank 0 has sealed the manifest. The time taken is
    logged, kept in the message hub as ``latent_cache_seconds`` and written
    with the cache folders to ``<work_dir>/latent_cache.json``. A
    dataloader whose workers were started before the cache existed is
    restarted. Nothing happens for other datasets, so the hook sits in the
    default runtime.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if self._prepare(runner, loop.dataloader) and \
                hasattr(loop, 'dataloader_iterator'):
            # IterBasedTrainLoop made its iterator (and started workers
            # with a dataset that had no cache yet) when it was built.
            from mmengine.runner.loops import _InfiniteDataloaderIterator
            loader = loop.dataloader
            if loader.num_workers > 0:
                old = getattr(loop.dataloader_iterator, '_iterator', None)
                if hasattr(old, '_shutdown_workers'):
                    old._shutdown_workers()
                loader._iterator = None  # persistent workers: start anew
                loop.dataloader_iterator = _InfiniteDataloaderIterator(loader)
        val_loop = getattr(runner, '_val_loop', None)
        if val_loop is not None and hasattr(val_loop, 'dataloader'):
            self._prepare(runner, val_loop.dataloader)

    def before_val(self, runner) -> None:
        self._prepare(runner, runner.val_loop.dataloader)

    def before_test(self, runner) -> None:
        self._prepare(runner, runner.test_loop.dataloader)

    def _prepare(self, runner, dataloader) -> bool:
        """Prepare the dataloader's latent datasets; True if any needed
        its cache."""
        pending = [d for d in _latent_datasets(dataloader.dataset)
                   if d.needs_cache]
        if not pending:
            return False
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        projector = getattr(model, 'projector', None)
        if projector is None:
            raise TypeError(
                f'LatentCacheDataset needs a model with a frozen projector '
                f'to encode its images; {type(model).__name__} has none. Use '
                'the image dataset itself for this model.')
        start = time.perf_counter()
        # Encoding happens in a first run, not in a second one that finds
        # the cache: it must not move the random states training draws from.
        with preserved_rng_state():
            for dataset in pending:
                dataset.prepare(projector, model.data_preprocessor)
        seconds = time.perf_counter() - start
        total = runner.message_hub.get_info('latent_cache_seconds',
                                            0.0) + seconds
        runner.message_hub.update_info('latent_cache_seconds', total)
        print_log(f'LatentCacheHook: latents ready in {seconds:.1f} s.',
                  logger='current')
        if runner.rank == 0:
            self._record(runner.work_dir, pending, total)
        return True

    @staticmethod
    def _record(work_dir: str, datasets: list, seconds: float) -> None:
        """``<work_dir>/latent_cache.json``: the caches used and the seconds
        spent encoding (or finding) them in this run. Written with
        ``atomic_write``; a damaged record is an error naming it (it is not
        overwritten)."""
        path = osp.join(work_dir, 'latent_cache.json')
        record = dict(seconds=round(seconds, 3), caches=[])
        if osp.isfile(path):
            try:
                with open(path, encoding='utf-8') as f:
                    record['caches'] = list(json.load(f).get('caches', []))
            except (ValueError, OSError, AttributeError, TypeError) as e:
                raise UnreadableFileError(
                    path, 'Latent cache record of the run',
                    f'is truncated or not the expected JSON ({e})',
                    f'Delete {path} (it only lists the caches of earlier '
                    'runs) and rerun.') from e
        for d in datasets:
            record['caches'].append(
                dict(cache_dir=d.cache_dir,
                     on_the_fly=d.encode_on_the_fly,
                     encode_seconds=None if d.manifest is None else
                     d.manifest.get('encode_seconds')))
        with atomic_write(path) as f:
            json.dump(record, f, indent=2)
