"""Time-to-accuracy of LMD (latent cache, cosine mask ratio) against
mmpretrain's MAE: the same wall-clock budget, a frozen-feature probe.

    python tools/analysis_tools/time_to_accuracy.py [--data digits|FOLDER]
        [--budget 240] [--probe-interval 30] [--projector-checkpoint CKPT]
        [--work-dir work_dirs/time_to_accuracy]

Both models come from their configs (``configs/time_to_accuracy/``: the
toolkit's tiny 64 px configs on the labelled images of ``--data``), so the
models, optimisers, LR schedules and LMD's ``MaskRatioSchedulerHook`` are the
configs'. What the tool does, in order:

1. LMD's training images are encoded once with the frozen projector
   (``write_latent_cache``; the stage-1 tiny KL-VAE of the demo, trained or
   reused with ``ensure_stage1`` unless ``--projector-checkpoint`` is given).
   Its seconds are reported apart (``cache s``) and in a second ratio.
2. A few iterations of throwaway copies (not part of the result) measure
   each model's seconds per iteration (LMD at ratios along its schedule),
   and ``max_iters = budget / (s / iter)`` sets each config's schedules
   (``set_budget``: 5 % linear warm-up, cosine LR; the mask-ratio schedule
   follows ``max_iters``). ``--iters LMD MAE`` skips this.
3. Two mmengine Runners are prepared as ``Runner.train()`` does before its
   loop; then they train in alternating slices of ``--slice`` seconds of
   their own training time (``next(dataloader)`` + ``run_iter``, hooks
   included), so both see the same machine load. Each stops at ``--budget``
   seconds of its own training or at ``max_iters``.
4. At t = 0 and every ``--probe-interval`` seconds of its own training, a
   model's frozen encoder is scored outside the timed part: pooled features
   (mean of the patch tokens after the final norm; ``--pool cls``) of the
   unmasked images of a fixed train / val split, a cosine k-NN and a
   logistic-regression probe (``lmd_toolkit/evaluation/probe.py``).
5. Noise: the probes of ``--init-seeds`` random initialisations (spread
   ``s_init``) and of ``--probe-splits`` random re-splits of the random-init
   features (spread ``s_split``). A model's gain counts only when
   ``final - random init > --noise-sigmas * sqrt(s_init^2 + s_split^2)``;
   the table says for each model and probe whether the final accuracy is
   above, within or below that band.

Writes ``time_to_accuracy.{md,json,csv,png}`` to ``--work-dir``: accuracy
against training seconds for both, the time each needs to reach the target
(default: MAE's final accuracy, per probe), and the ratio MAE / LMD (> 1:
LMD is faster), without and with the cache's seconds. ``--data`` is
``digits`` (scikit-learn's, ``DigitsDataset``) or a folder in mmpretrain's
format: ``meta/train.txt`` + ``meta/val.txt`` (``path label`` lines), or
``train/`` + ``val/`` of class subfolders, or class subfolders only (a
seeded stratified split, ``--val-fraction``).
"""
import argparse
import copy
import csv
import json
import math
import os
import os.path as osp
import platform
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence

# OpenMP threads that spin while waiting make step times swing several-fold
# on a shared CPU (docs/en/benchmarks.md); set before torch loads.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from lmd_toolkit.evaluation.probe import (PROBES, mean_std,  # noqa: E402
                                          pool_tokens, probe_accuracies,
                                          resplit_accuracies)
from lmd_toolkit.utils.fileio import atomic_write  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LMD_CONFIG = 'configs/time_to_accuracy/lmd_vit-tiny_klvae_digits-cache_cs.py'
MAE_CONFIG = 'configs/time_to_accuracy/mae_vit-tiny_pixel_digits.py'
STAGE1_CONFIG = 'configs/projectors/klvae_tiny-f8_photos.py'
STAGE1_WORK_DIR = 'work_dirs/demo/stage1'
PROBE_NAMES = dict(knn='k-NN', linear='linear')
VERDICTS = dict(above='above (pretraining helps)', within='within noise',
                below='BELOW (worse than random init)')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', default='digits',
                        help="'digits' or a labelled image folder")
    parser.add_argument('--val-fraction', type=float, default=0.2,
                        help='folders without a split: held-out fraction of '
                        'every class')
    parser.add_argument('--budget', type=float, default=240.0,
                        help='seconds of training per model')
    parser.add_argument('--probe-interval', type=float, default=30.0,
                        help='seconds of a model\'s training between probes')
    parser.add_argument('--slice', type=float, default=1.0,
                        help='seconds of training before the other model '
                        'takes over')
    parser.add_argument('--iters', type=int, nargs=2, metavar=('LMD', 'MAE'),
                        help='max_iters of each model (default: budget / '
                        'measured seconds per iteration)')
    parser.add_argument('--calib-iters', type=int, default=10,
                        help='timed iterations per model to measure s/iter')
    parser.add_argument('--lmd-config', default=LMD_CONFIG)
    parser.add_argument('--mae-config', default=MAE_CONFIG)
    parser.add_argument('--lmd-cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--mae-cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--projector-checkpoint', default=None,
                        help="stage-1 checkpoint of the LMD projector; "
                        "'random' for a random projector (smoke tests); "
                        f'default: {STAGE1_WORK_DIR}/iter_N.pth, trained '
                        'first when missing')
    parser.add_argument('--stage1-iters', type=int, default=None,
                        help='budget of stage 1 when it has to be trained')
    parser.add_argument('--views', type=int, default=1,
                        help='cached views per image')
    parser.add_argument('--pool', choices=('avg', 'cls'), default='avg')
    parser.add_argument('--knn-k', type=int, default=20)
    parser.add_argument('--linear-c', type=float, default=1.0)
    parser.add_argument('--init-seeds', type=int, default=3,
                        help='random initialisations probed at t = 0 (the '
                        'run\'s own and N - 1 more)')
    parser.add_argument('--probe-splits', type=int, default=5,
                        help='random re-splits of the random-init features')
    parser.add_argument('--noise-sigmas', type=float, default=2.0)
    parser.add_argument('--target', type=float, default=None,
                        help='target accuracy in [0, 1] for both probes '
                        "(default: MAE's final accuracy of each probe)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default='work_dirs/time_to_accuracy')
    parser.add_argument('--verbose', action='store_true',
                        help="keep mmengine's INFO logging")
    args = parser.parse_args(argv)
    if args.budget <= 0 or args.probe_interval <= 0 or args.slice <= 0:
        parser.error('--budget, --probe-interval and --slice must be > 0')
    if args.init_seeds < 2 or args.probe_splits < 2:
        parser.error('--init-seeds and --probe-splits must be >= 2 (a '
                     'spread needs two values)')
    return args


def say(message: str) -> None:
    print(f'[time_to_accuracy] {message}', flush=True)


# ------------------------------------------------------------------ data
def _folder_pipeline(img_size: int) -> list:
    return [
        dict(type='mmpretrain.LoadImageFromFile'),
        dict(type='mmpretrain.Resize', scale=(img_size, img_size)),
        dict(type='mmpretrain.PackInputs'),
    ]


def stratified_split(labels: Sequence[int], val_fraction: float,
                     seed: int) -> tuple:
    """``(train, val)`` index lists: a seeded permutation of every class,
    ``round(n * val_fraction)`` of it (at least 1 when ``n >= 2``) to val."""
    labels = np.asarray(labels)
    rng = np.random.RandomState(seed)
    val = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        members = members[rng.permutation(len(members))]
        n = int(round(len(members) * val_fraction))
        if len(members) >= 2:
            n = min(max(n, 1), len(members) - 1)
        val.extend(members[:n].tolist())
    is_val = np.zeros(len(labels), dtype=bool)
    is_val[val] = True
    return np.flatnonzero(~is_val).tolist(), np.flatnonzero(is_val).tolist()


def image_datasets(data: str, img_size: int, val_fraction: float = 0.2,
                   seed: int = 0) -> dict:
    """The labelled image sets of ``--data``.

    Returns:
        dict: ``train`` / ``val`` dataset configs (pipelines ending in
        ``PackInputs``, ``img_size`` square uint8 images), ``to_rgb`` (True
        for mmpretrain's BGR ``LoadImageFromFile``), ``name`` and ``layout``.
    """
    if data == 'digits':
        pack = [dict(type='mmpretrain.PackInputs')]
        return dict(
            name='digits', layout='DigitsDataset (scikit-learn)',
            to_rgb=False,
            train=dict(type='DigitsDataset', split='train', img_size=img_size,
                       pipeline=pack),
            val=dict(type='DigitsDataset', split='val', img_size=img_size,
                     pipeline=pack))
    root = osp.abspath(data)
    if not osp.isdir(root):
        raise FileNotFoundError(f"--data {data!r}: neither 'digits' nor a "
                                'folder.')
    base = dict(type='mmpretrain.CustomDataset', data_root=root,
                with_label=True, pipeline=_folder_pipeline(img_size))
    meta = {s: osp.join(root, 'meta', f'{s}.txt') for s in ('train', 'val')}
    out = dict(name=osp.basename(root.rstrip('/')), to_rgb=True)
    if all(osp.isfile(p) for p in meta.values()):
        for split in ('train', 'val'):
            prefix = split if osp.isdir(osp.join(root, split)) else ''
            out[split] = dict(base, ann_file=f'meta/{split}.txt',
                              data_prefix=prefix)
        out['layout'] = 'meta/train.txt + meta/val.txt'
        return out
    if all(osp.isdir(osp.join(root, s)) for s in ('train', 'val')):
        from mmpretrain.datasets import CustomDataset
        classes = [CustomDataset(data_root=root, data_prefix=s,
                                 lazy_init=True).metainfo.get('classes')
                   for s in ('train', 'val')]
        for split in ('train', 'val'):
            out[split] = dict(base, data_prefix=split)
        if classes[0] != classes[1] and None not in classes:
            raise ValueError(f'{root}: train/ and val/ hold different class '
                             f'folders: {classes[0]} vs {classes[1]}.')
        out['layout'] = 'train/ + val/ of class subfolders'
        return out
    from mmpretrain.datasets import CustomDataset
    full = CustomDataset(data_root=root, with_label=True)
    labels = [full.get_data_info(i)['gt_label'] for i in range(len(full))]
    train, val = stratified_split(labels, val_fraction, seed)
    if not train or not val:
        raise ValueError(f'{root}: too few images for a train / val split '
                         f'({len(full)}).')
    out['train'] = dict(base, indices=train)
    out['val'] = dict(base, indices=val)
    out['layout'] = (f'class subfolders, seeded stratified split '
                     f'(val fraction {val_fraction}, seed {seed})')
    return out


def load_images(dataset_cfg: dict) -> tuple:
    """``(uint8 (N, 3, H, W) tensor, int64 (N,) labels)`` of a dataset."""
    from lmd_toolkit.registry import DATASETS
    dataset = DATASETS.build(copy.deepcopy(dataset_cfg))
    images, labels = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        images.append(torch.as_tensor(item['inputs']))
        labels.append(int(item['data_samples'].gt_label.reshape(-1)[0]))
    return torch.stack(images), np.asarray(labels, dtype=np.int64)


# ------------------------------------------------------------ the curves
def time_to_target(seconds: Sequence[float], accuracies: Sequence[float],
                   target: float) -> Optional[float]:
    """Training seconds at which a curve first reaches ``target``.

    Linear interpolation between the last evaluation below the target and
    the first at or above it; the first evaluation's own time when that one
    reaches it already; None when no evaluation does.
    """
    if len(seconds) != len(accuracies):
        raise ValueError('time_to_target: seconds and accuracies differ in '
                         'length.')
    for i, (t, a) in enumerate(zip(seconds, accuracies)):
        if a >= target:
            if i == 0:
                return float(t)
            t0, a0 = seconds[i - 1], accuracies[i - 1]
            return float(t0 + (t - t0) * (target - a0) / (a - a0))
    return None


def speedup(mae_seconds: Optional[float], lmd_seconds: Optional[float],
            mae_total: float, lmd_total: float) -> dict:
    """The ratio MAE / LMD of the times to target (> 1: LMD is faster).

    Returns:
        dict: ``ratio`` (float, ``inf`` when LMD is there at 0 s, None when
        a model never got there), ``bound`` ('<' or '>' with ``ratio`` the
        bound, when one model did not reach the target within its
        ``*_total`` seconds, None otherwise) and ``text``.
    """
    if mae_seconds is not None and lmd_seconds is not None:
        if lmd_seconds == 0:
            ratio = math.inf if mae_seconds > 0 else None
            text = ('LMD is at the target at 0 s (random init)'
                    if ratio else 'both at the target at 0 s (random init)')
            return dict(ratio=ratio, bound=None, text=text)
        ratio = mae_seconds / lmd_seconds
        text = f'{ratio:.2f}x' if mae_seconds > 0 else \
            '0 (MAE is at the target at 0 s, random init)'
        return dict(ratio=ratio, bound=None, text=text)
    if mae_seconds is not None and lmd_total > 0:
        ratio = mae_seconds / lmd_total
        return dict(ratio=ratio, bound='<',
                    text=f'< {ratio:.2f}x (LMD did not reach it in '
                    f'{lmd_total:.0f} s)')
    if lmd_seconds is not None and mae_total > 0 and lmd_seconds > 0:
        ratio = mae_total / lmd_seconds
        return dict(ratio=ratio, bound='>',
                    text=f'> {ratio:.2f}x (MAE did not reach it in '
                    f'{mae_total:.0f} s)')
    return dict(ratio=None, bound=None, text='neither reached it')


# ---------------------------------------------------------------- models
def encoder_tokens(backbone: torch.nn.Module, x: torch.Tensor) -> tuple:
    """``(tokens (B, prefix + L, C), prefix)`` of unmasked inputs:
    ``LMDViT.forward_features`` or mmpretrain ``MAEViT``'s ``mask=None``
    path (a full ViT forward with the final norm)."""
    if hasattr(backbone, 'forward_features'):
        return backbone.forward_features(x), backbone.num_prefix
    # MAEViT: `mask=None` (not False: mmpretrain 1.2.0 tests `is None`).
    return backbone(x, mask=None)[0], backbone.num_extra_tokens


@torch.no_grad()
def pooled_features(backbone: torch.nn.Module, inputs: torch.Tensor,
                    pool: str, batch_size: int = 256) -> np.ndarray:
    was_training = backbone.training
    backbone.eval()
    out = []
    for start in range(0, len(inputs), batch_size):
        tokens, prefix = encoder_tokens(backbone,
                                        inputs[start:start + batch_size])
        out.append(pool_tokens(tokens, prefix, pool).float())
    backbone.train(was_training)
    return torch.cat(out).numpy()


@torch.no_grad()
def encoder_inputs(model: torch.nn.Module, images: torch.Tensor,
                   batch_size: int = 256) -> torch.Tensor:
    """What the encoder sees for ``images`` (uint8): the model's data
    preprocessor, then the frozen projector's ``encode`` if it has one."""
    out = []
    for start in range(0, len(images), batch_size):
        x = model.data_preprocessor(
            dict(inputs=images[start:start + batch_size],
                 data_samples=None))['inputs']
        projector = getattr(model, 'projector', None)
        if projector is not None:
            x = projector.encode(x)
        out.append(x.float())
    return torch.cat(out)


def quiet(cfg: Config, verbose: bool) -> None:
    """mmengine logs every parameter (initialisation, frozen ones skipped
    by the optimiser) at INFO / WARNING."""
    if not verbose:
        cfg.log_level = 'ERROR'


def mask_ratio_hook(cfg: Config) -> Optional[dict]:
    hook = cfg.default_hooks.get('mask_ratio')
    return hook if hook and hook.get('type') == 'MaskRatioSchedulerHook' \
        else None


def calibrate(cfgs: Dict[str, Config], timed: int) -> Dict[str, float]:
    """Seconds per training iteration of each config's model, on throwaway
    copies (model, optimiser and dataloader built from the config),
    alternating the models step by step; LMD at five mask ratios along its
    schedule (its step time depends on the ratio). Mean of the per-ratio
    medians, after two warm-up steps each."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    from lmd_toolkit.engine.hooks import build_mask_scheduler
    from lmd_toolkit.registry import MODELS
    fractions = (0.1, 0.3, 0.5, 0.7, 0.9)
    parts = {}
    for name, cfg in cfgs.items():
        torch.manual_seed(0)
        model = MODELS.build(copy.deepcopy(cfg.model))
        model.init_weights()
        model.train()
        wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
        loader = Runner.build_dataloader(copy.deepcopy(cfg.train_dataloader),
                                         seed=0)
        hook = mask_ratio_hook(cfg)
        ratios = [None] * len(fractions)
        if hook is not None:
            scheduler = build_mask_scheduler(copy.deepcopy(hook.scheduler))
            ratios = [scheduler.ratio(int(f * 1000), 1000) for f in fractions]
        parts[name] = dict(model=model, wrapper=wrapper, batches=iter(loader),
                           loader=loader, ratios=ratios,
                           attr=(hook or {}).get('attr_name', 'mask_ratio'),
                           times=[[] for _ in fractions])

    def step(part: dict, k: int) -> float:
        if part['ratios'][k] is not None:
            owner = part['model']
            *parents, leaf = part['attr'].split('.')
            for p in parents:
                owner = getattr(owner, p)
            setattr(owner, leaf, part['ratios'][k])
        start = time.perf_counter()
        try:
            batch = next(part['batches'])
        except StopIteration:
            part['batches'] = iter(part['loader'])
            batch = next(part['batches'])
        part['model'].train_step(batch, part['wrapper'])
        return time.perf_counter() - start

    for _ in range(2):
        for part in parts.values():
            step(part, 0)
    per_ratio = max(1, math.ceil(timed / len(fractions)))
    for k in range(len(fractions)):
        for _ in range(per_ratio):
            for part in parts.values():
                part['times'][k].append(step(part, k))
    return {
        name: statistics.fmean(statistics.median(t) for t in part['times'])
        for name, part in parts.items()
    }


class Contender:
    """One model: its Runner, stepped by hand, its clock and its curve."""

    def __init__(self, key: str, label: str, cfg: Config) -> None:
        from mmengine.runner import Runner
        self.key, self.label, self.cfg = key, label, cfg
        self.runner = Runner.from_cfg(cfg)
        self.seconds = 0.0
        self.curve: List[dict] = []
        self.done = False

    def prepare(self) -> None:
        """What ``Runner.train()`` does before ``train_loop.run()``, and the
        loop's own ``before_train`` / ``before_train_epoch`` hooks."""
        r = self.runner
        r._train_loop = r.build_train_loop(r._train_loop)
        r.optim_wrapper = r.build_optim_wrapper(r.optim_wrapper)
        r.scale_lr(r.optim_wrapper, r.auto_scale_lr)
        if r.param_schedulers is not None:
            r.param_schedulers = r.build_param_scheduler(r.param_schedulers)
        r.call_hook('before_run')
        r._init_model_weights()
        r.load_or_resume()
        r.optim_wrapper.initialize_count_status(r.model, r.train_loop.iter,
                                                r.train_loop.max_iters)
        r.call_hook('before_train')
        r.call_hook('before_train_epoch')

    @property
    def model(self) -> torch.nn.Module:
        return self.runner.model

    @property
    def iter(self) -> int:
        return self.runner.train_loop.iter

    @property
    def max_iters(self) -> int:
        return self.runner.train_loop.max_iters

    def step(self) -> None:
        """One training iteration exactly as ``IterBasedTrainLoop.run``
        makes it; its seconds are added to this model's clock."""
        loop = self.runner.train_loop
        start = time.perf_counter()
        self.runner.model.train()
        batch = next(loop.dataloader_iterator)
        loop.run_iter(batch)
        self.seconds += time.perf_counter() - start

    def finish(self) -> None:
        r = self.runner
        r.call_hook('after_train_epoch')
        r.call_hook('after_train')
        r.call_hook('after_run')
        self.done = True


# ------------------------------------------------------------- the probe
class Prober:
    """Scores one encoder on the fixed split (its inputs encoded once)."""

    def __init__(self, train_inputs: torch.Tensor, train_labels: np.ndarray,
                 val_inputs: torch.Tensor, val_labels: np.ndarray,
                 args: argparse.Namespace) -> None:
        self.train_inputs, self.train_labels = train_inputs, train_labels
        self.val_inputs, self.val_labels = val_inputs, val_labels
        self.args = args

    def kwargs(self) -> dict:
        return dict(k=self.args.knn_k, C=self.args.linear_c,
                    seed=self.args.seed)

    def features(self, backbone: torch.nn.Module) -> tuple:
        return (pooled_features(backbone, self.train_inputs, self.args.pool),
                pooled_features(backbone, self.val_inputs, self.args.pool))

    def score(self, backbone: torch.nn.Module) -> dict:
        train, val = self.features(backbone)
        return probe_accuracies(train, self.train_labels, val,
                                self.val_labels, **self.kwargs())

    def resplits(self, backbone: torch.nn.Module) -> dict:
        train, val = self.features(backbone)
        return resplit_accuracies(
            np.concatenate([train, val]),
            np.concatenate([self.train_labels, self.val_labels]),
            val_size=len(val), num_splits=self.args.probe_splits,
            split_seed=self.args.seed + 1, **self.kwargs())


def random_init_spread(cfg: Config, prober: Prober, seeds: int,
                       own: dict) -> Dict[str, List[float]]:
    """Probe accuracies of ``seeds`` random encoders: the run's own
    (``own``) and ``seeds - 1`` more built from ``cfg.model.backbone``."""
    from lmd_toolkit.registry import MODELS
    out = {name: [value] for name, value in own.items()}
    for seed in range(1, seeds):
        torch.manual_seed(1000 + seed)
        backbone = MODELS.build(copy.deepcopy(cfg.model.backbone))
        backbone.init_weights()
        for name, value in prober.score(backbone).items():
            out[name].append(value)
    return out


def probe_point(c: Contender, prober: Prober) -> dict:
    start = time.perf_counter()
    scores = prober.score(c.model.backbone)
    point = dict(seconds=c.seconds, iter=c.iter, **scores,
                 probe_seconds=time.perf_counter() - start)
    c.curve.append(point)
    say(f'{c.label:>4} {c.seconds:7.1f} s, iter {c.iter:5d}: ' + ', '.join(
        f'{PROBE_NAMES[n]} {scores[n]:.3f}' for n in PROBES))
    return point


# ------------------------------------------------------------ the report
def noise_summary(model: dict, sigmas: float) -> None:
    """Adds ``random_init``, ``noise`` and ``verdict`` per probe."""
    for name in PROBES:
        init_mean, init_std = mean_std(model['init_seeds'][name])
        _, split_std = mean_std(model['split_noise'][name])
        sigma = math.sqrt(init_std**2 + split_std**2)
        start = model['curve'][0][name]
        final = model['curve'][-1][name]
        margin = final - start
        verdict = 'above' if margin > sigmas * sigma else \
            'below' if margin < -sigmas * sigma else 'within'
        model.setdefault('summary', {})[name] = dict(
            random_init=start, init_mean=init_mean, init_std=init_std,
            split_std=split_std, noise=sigma, final=final, margin=margin,
            exceeds_noise=verdict == 'above', verdict=verdict)


def pct(value: Optional[float], digits: int = 1) -> str:
    return '-' if value is None else f'{100 * value:.{digits}f}'


def secs(value: Optional[float]) -> str:
    return 'never' if value is None else f'{value:.0f}'


def markdown(result: dict) -> str:
    args, models = result['args'], result['models']
    lmd, mae = models['lmd'], models['mae']
    lines = [
        f"Data: {result['data']['name']} ({result['data']['layout']}), "
        f"{result['data']['num_train']} training / "
        f"{result['data']['num_val']} val images at "
        f"{result['data']['img_size']} px. Budget {args['budget']:.0f} s of "
        f"training per model, probe every {args['probe_interval']:.0f} s, "
        f"slices of {args['slice']:g} s. Machine: {result['machine']}.",
        '',
        '| model | iterations (planned) | training s | s / iter | cache s |',
        '|---|---|---|---|---|',
    ]
    for m in (lmd, mae):
        cache = f"{result['cache']['seconds']:.1f}" if m is lmd else '-'
        lines.append(
            f"| {m['label']} | {m['iters']} ({m['planned_iters']}) | "
            f"{m['train_seconds']:.1f} | "
            f"{m['train_seconds'] / max(1, m['iters']):.3f} | {cache} |")
    sig = args['noise_sigmas']
    lines += [
        '',
        f"Accuracy (%) on the {result['data']['num_val']} val images. "
        'Random init: the run\'s own encoder at t = 0; init spread: std over '
        f"{args['init_seeds']} random initialisations; split spread: std over "
        f"{args['probe_splits']} re-splits of the random-init features; "
        'noise = sqrt(init^2 + split^2); the margin counts when it exceeds '
        f'{sig:g} x noise.',
        '',
        '| model | probe | random init | init mean ± std | split std | '
        f'final | margin | noise | final vs random ± {sig:g} noise |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for m in (lmd, mae):
        for name in PROBES:
            s = m['summary'][name]
            lines.append(
                f"| {m['label']} | {PROBE_NAMES[name]} | "
                f"{pct(s['random_init'])} | {pct(s['init_mean'])} ± {pct(s['init_std'])} | "
                f"{pct(s['split_std'])} | {pct(s['final'])} | "
                f"{100 * s['margin']:+.1f} | {pct(s['noise'])} | "
                f"{VERDICTS[s['verdict']]} |")
    ref = result['reference']
    lines += ['', 'No-encoder references (same probes, same split): ' +
              '; '.join(f"{label}: k-NN {pct(ref[key]['knn'])}, linear "
                        f"{pct(ref[key]['linear'])}"
                        for key, label in (('pixels', 'pixels 4x4-pooled'),
                                           ('latent', 'projector latent'))
                        if key in ref) + '.', '',
              '| probe | target | MAE s to target | LMD s to target | '
              'ratio MAE / LMD | LMD s + cache s | ratio with cache |',
              '|---|---|---|---|---|---|---|']
    for name in PROBES:
        t = result['targets'][name]
        with_cache = None if t['lmd_seconds'] is None else \
            t['lmd_seconds'] + result['cache']['seconds']
        lines.append(
            f"| {PROBE_NAMES[name]} | {pct(t['target'])} ({t['source']}) | "
            f"{secs(t['mae_seconds'])} | {secs(t['lmd_seconds'])} | "
            f"{t['ratio']['text']} | {secs(with_cache)} | "
            f"{t['ratio_with_cache']['text']} |")
    lines += ['']
    for name in PROBES:
        failed = [m['label'] for m in (lmd, mae)
                  if not m['summary'][name]['exceeds_noise']]
        if failed:
            lines.append(
                f"- {PROBE_NAMES[name]}: {' and '.join(failed)} did not beat "
                f'the random initialisation by more than {sig:g} x noise '
                '(see the column above); the time to target of this probe '
                'does not measure what pretraining adds.')
        else:
            lines.append(f'- {PROBE_NAMES[name]}: both models beat their '
                         f'random initialisation by more than {sig:g} x '
                         'noise.')
    return '\n'.join(lines) + '\n'


def plot(result: dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(PROBES), figsize=(6 * len(PROBES), 4.2))
    colours = dict(lmd='tab:blue', mae='tab:orange')
    cache = result['cache']['seconds']
    for ax, name in zip(np.atleast_1d(axes), PROBES):
        for key, m in result['models'].items():
            t = [p['seconds'] for p in m['curve']]
            a = [100 * p[name] for p in m['curve']]
            ax.plot(t, a, 'o-', color=colours[key], label=m['label'], ms=3)
            if key == 'lmd' and cache > 0:
                ax.plot([x + cache for x in t], a, ':', color=colours[key],
                        label=f"{m['label']} + cache ({cache:.0f} s)")
            s = m['summary'][name]
            band = result['args']['noise_sigmas'] * s['noise']
            ax.axhspan(max(0.0, 100 * (s['random_init'] - band)),
                       min(100.0, 100 * (s['random_init'] + band)),
                       color=colours[key], alpha=0.12, lw=0)
        target = result['targets'][name]
        ax.axhline(100 * target['target'], color='grey', ls='--', lw=1,
                   label=f"target {100 * target['target']:.1f} %")
        ax.set_title(f'{PROBE_NAMES[name]} probe (band: random init ± '
                     f"{result['args']['noise_sigmas']:g} noise)")
        ax.set_xlabel('training seconds (own clock)')
        ax.set_ylabel('val accuracy (%)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    with atomic_write(path, 'wb') as f:
        fig.savefig(f, format='png', dpi=110)
    plt.close(fig)


def write_outputs(result: dict, work_dir: str) -> Dict[str, str]:
    paths = {ext: osp.join(work_dir, f'time_to_accuracy.{ext}')
             for ext in ('md', 'json', 'csv', 'png')}
    with atomic_write(paths['md']) as f:
        f.write(markdown(result))
    with atomic_write(paths['json']) as f:
        json.dump(result, f, indent=2,
                  default=lambda o: None if o is None else str(o))
    with atomic_write(paths['csv']) as f:
        writer = csv.writer(f)
        writer.writerow(['model', 'seconds', 'iter', *PROBES,
                         'probe_seconds'])
        for key, m in result['models'].items():
            for p in m['curve']:
                writer.writerow([key, f"{p['seconds']:.3f}", p['iter'],
                                 *(f'{p[n]:.6f}' for n in PROBES),
                                 f"{p['probe_seconds']:.3f}"])
    plot(result, paths['png'])
    return paths


# ------------------------------------------------------------------ main
def projector_checkpoint(args: argparse.Namespace) -> Optional[str]:
    if args.projector_checkpoint == 'random':
        return None
    if args.projector_checkpoint:
        if not osp.isfile(args.projector_checkpoint):
            raise FileNotFoundError(f'--projector-checkpoint '
                                    f'{args.projector_checkpoint} not found.')
        return args.projector_checkpoint
    from lmd_toolkit.apis.pipelines import ensure_stage1
    return ensure_stage1(osp.join(ROOT, STAGE1_CONFIG), STAGE1_WORK_DIR,
                         max_iters=args.stage1_iters)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f
                     if line.startswith('model name')]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f'{cpu}, {os.cpu_count()} cores, torch '
            f'{torch.__version__} with {torch.get_num_threads()} threads')


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    from lmd_toolkit.datasets.latent_cache import write_latent_cache
    from lmd_toolkit.apis.pipelines import set_budget
    from lmd_toolkit.utils import register_all_modules
    from lmd_toolkit.utils.launch import load_config
    register_all_modules(init_default_scope=True)
    if not args.verbose:  # optimiser construction logs every parameter
        from mmengine.logging import MMLogger
        MMLogger.get_current_instance().setLevel('ERROR')
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    wall_start = time.perf_counter()

    lmd_cfg = load_config(osp.join(ROOT, args.lmd_config)
                          if not osp.isabs(args.lmd_config) else
                          args.lmd_config, args.lmd_cfg_options,
                          work_dir=osp.join(work_dir, 'lmd'))
    mae_cfg = load_config(osp.join(ROOT, args.mae_config)
                          if not osp.isabs(args.mae_config) else
                          args.mae_config, args.mae_cfg_options,
                          work_dir=osp.join(work_dir, 'mae'))
    img_size = int(mae_cfg.model.backbone.img_size)
    data = image_datasets(args.data, img_size, args.val_fraction, args.seed)
    say(f"data: {data['name']} ({data['layout']}), {img_size} px")

    # Both models train on the training split; the probes use both splits.
    mae_cfg.train_dataloader.dataset = copy.deepcopy(data['train'])
    mae_cfg.model.data_preprocessor.to_rgb = data['to_rgb']
    lmd_preprocessor = dict(type='LMDDataPreprocessor', to_rgb=data['to_rgb'])
    lmd_cfg.model.data_preprocessor = lmd_preprocessor
    for cfg in (lmd_cfg, mae_cfg):
        quiet(cfg, args.verbose)

    # 1. The latent cache (timed apart from training).
    ckpt = projector_checkpoint(args)
    lmd_cfg.model.projector.checkpoint = ckpt
    cache_dir = osp.join(work_dir, 'latent_cache')
    say(f'encoding the LMD training images once (projector '
        f'{ckpt or "random"}, {args.views} view(s)) into {cache_dir}')
    start = time.perf_counter()
    manifest = write_latent_cache(
        lmd_cfg.model.projector.to_dict(), copy.deepcopy(data['train']),
        cache_dir, num_views=args.views, dtype='fp16', batch_size=64,
        seed=args.seed, data_preprocessor_cfg=lmd_preprocessor, force=True,
        # random weights only when asked for (--projector-checkpoint random)
        allow_random_projector=not ckpt)
    cache_seconds = time.perf_counter() - start
    say(f"cache: {manifest['num_rows']} latents {manifest['latent_shape']} "
        f'in {cache_seconds:.1f} s')
    lmd_cfg.train_dataloader.dataset.cache_dir = cache_dir
    # The scale factor the cache was encoded with, fixed from now on.
    lmd_cfg.model.projector.scale_factor = float(
        manifest['projector']['scale_factor'])

    # 2. Iterations that fill the budget.
    cfgs = dict(lmd=lmd_cfg, mae=mae_cfg)
    if args.iters:
        planned = dict(lmd=args.iters[0], mae=args.iters[1])
        s_iter = {}
    else:
        s_iter = calibrate(cfgs, args.calib_iters)
        planned = {k: max(2, int(args.budget / s)) for k, s in s_iter.items()}
        say('measured s/iter: ' + ', '.join(
            f'{k} {s:.4f} -> max_iters {planned[k]}'
            for k, s in s_iter.items()))
    for key, cfg in cfgs.items():
        set_budget(cfg, planned[key])

    # 3. The runners, prepared as Runner.train() does.
    contenders = [Contender('lmd', 'LMD', lmd_cfg),
                  Contender('mae', 'MAE', mae_cfg)]
    for c in contenders:
        c.prepare()
    train_images, train_labels = load_images(data['train'])
    val_images, val_labels = load_images(data['val'])
    say(f'probe split: {len(train_labels)} train / {len(val_labels)} val, '
        f'{len(np.unique(train_labels))} classes')
    probers, record = {}, {}
    for c in contenders:
        probers[c.key] = Prober(encoder_inputs(c.model, train_images),
                                train_labels,
                                encoder_inputs(c.model, val_images),
                                val_labels, args)
    reference = dict(pixels=probe_accuracies(
        torch.nn.functional.avg_pool2d(train_images.float(), 4).flatten(1),
        train_labels,
        torch.nn.functional.avg_pool2d(val_images.float(), 4).flatten(1),
        val_labels, **probers['lmd'].kwargs()))
    reference['latent'] = probe_accuracies(
        probers['lmd'].train_inputs.flatten(1), train_labels,
        probers['lmd'].val_inputs.flatten(1), val_labels,
        **probers['lmd'].kwargs())

    # t = 0: the random initialisations and the noise.
    for c in contenders:
        own = probe_point(c, probers[c.key])
        record[c.key] = dict(
            init_seeds=random_init_spread(c.cfg, probers[c.key],
                                          args.init_seeds,
                                          {n: own[n] for n in PROBES}),
            split_noise=probers[c.key].resplits(c.model.backbone))

    # 4. Alternating training slices, probes outside the timed part.
    next_probe = {c.key: args.probe_interval for c in contenders}
    active = list(contenders)
    while active:
        for c in list(active):
            slice_end = c.seconds + args.slice
            while (c.seconds < slice_end and c.seconds < args.budget
                   and c.seconds < next_probe[c.key]
                   and c.iter < c.max_iters):
                c.step()
            finished = c.seconds >= args.budget or c.iter >= c.max_iters
            if c.seconds >= next_probe[c.key] or finished:
                probe_point(c, probers[c.key])
                while next_probe[c.key] <= c.seconds:
                    next_probe[c.key] += args.probe_interval
            if finished:
                c.finish()
                active.remove(c)

    # 5. The report.
    models = {}
    for c in contenders:
        m = dict(label=c.label, config=c.cfg.filename, iters=c.iter,
                 planned_iters=planned[c.key], train_seconds=c.seconds,
                 calibrated_s_per_iter=s_iter.get(c.key), curve=c.curve,
                 **record[c.key])
        noise_summary(m, args.noise_sigmas)
        models[c.key] = m
    targets = {}
    for name in PROBES:
        target = args.target if args.target is not None else \
            models['mae']['curve'][-1][name]
        times = {
            key: time_to_target([p['seconds'] for p in m['curve']],
                                [p[name] for p in m['curve']], target)
            for key, m in models.items()
        }
        totals = {key: m['train_seconds'] for key, m in models.items()}
        lmd_with_cache = None if times['lmd'] is None else \
            times['lmd'] + cache_seconds
        targets[name] = dict(
            target=target,
            source='--target' if args.target is not None else 'MAE final',
            mae_seconds=times['mae'], lmd_seconds=times['lmd'],
            ratio=speedup(times['mae'], times['lmd'], totals['mae'],
                          totals['lmd']),
            ratio_with_cache=speedup(times['mae'], lmd_with_cache,
                                     totals['mae'],
                                     totals['lmd'] + cache_seconds))
    result = dict(
        args=vars(args), machine=machine(),
        data=dict(name=data['name'], layout=data['layout'],
                  img_size=img_size, num_train=int(len(train_labels)),
                  num_val=int(len(val_labels))),
        cache=dict(seconds=cache_seconds, dir=cache_dir,
                   rows=manifest['num_rows'],
                   latent_shape=manifest['latent_shape'],
                   projector_checkpoint=ckpt,
                   scale_factor=manifest['projector']['scale_factor']),
        models=models, reference=reference, targets=targets,
        wall_seconds=time.perf_counter() - wall_start)
    paths = write_outputs(result, work_dir)
    print(markdown(result), flush=True)
    say('wrote ' + ', '.join(paths.values()))
    return result


if __name__ == '__main__':
    main()
