"""Every leaf config loads, builds its model in a reduced size, selects the
mask schedule its name says, and runs one real training iteration on CPU."""
import copy
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from lmd_toolkit.datasets import EmbeddedPhotos
from lmd_toolkit.engine.hooks import build_mask_scheduler
from lmd_toolkit.registry import MODELS
from lmd_toolkit.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
LEAVES = sorted(glob.glob(osp.join(ROOT, 'configs', '*.py')))
SCHEDULE_OF_SUFFIX = dict(
    cs='CosineMaskRatio',
    ps='PiecewiseMaskRatio',
    us='UniformMaskRatio',
    fixed='FixedMaskRatio')

register_all_modules()


def shrink(cfg: Config, img_size: int = 64) -> None:
    """Tiny widths and depths; a random tiny-f8 KL-VAE instead of kl-f8.
    The variant's relative depths (encoder vs decoder) are kept."""
    model = cfg.model
    if model.type == 'mmpretrain.MAE':
        model.backbone.update(
            arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                      feedforward_channels=64),
            img_size=img_size, patch_size=16)
        model.neck.update(num_patches=(img_size // 16)**2, patch_size=16,
                          embed_dim=32, decoder_embed_dim=16,
                          decoder_depth=1, decoder_num_heads=2)
        model.head.patch_size = 16
        return
    if model.backbone.type == 'LMDUNet':
        model.backbone.update(base_channels=16, channel_mults=(1, 2),
                              num_res_blocks=1, norm_groups=8)
    else:
        enc_layers = model.backbone.get('num_layers') or 12
        model.backbone.arch = dict(embed_dims=32, num_layers=2, num_heads=2)
        model.backbone.num_layers = 1 if enc_layers < 12 else 2
        model.neck.update(
            decoder_embed_dims=48
            if model.neck.decoder_embed_dims > 512 else 16,
            decoder_depth=2 if model.neck.decoder_depth > 8 else 1,
            decoder_num_heads=2)
    if model.projector.type == 'IdentityProjector':
        latent = img_size
    else:
        model.projector.update(preset='tiny-f8', checkpoint=None)
        latent = img_size // 8
    patch = model.backbone.patch_size
    patch = min(patch, latent // 2)
    # The neck's and head's geometry is derived from the backbone.
    model.backbone.update(latent_size=latent, patch_size=patch)


def photo_batch(n: int = 2, size: int = 64) -> dict:
    dataset = EmbeddedPhotos(split='val', crop_size=size, num_crops=n)
    imgs = np.stack([dataset[i]['img'] for i in range(n)])
    return dict(inputs=torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous())


@pytest.mark.parametrize(
    'config', LEAVES, ids=[osp.basename(c) for c in LEAVES])
def test_leaf_config_trains_one_iteration(config):
    cfg = Config.fromfile(config)
    assert cfg.default_scope == 'lmd_toolkit'

    name = osp.splitext(osp.basename(config))[0]
    if name.startswith('mae_'):
        # mmpretrain's MAE baseline: its own fixed ratio, no schedule hook.
        assert 'mask_ratio' not in cfg.default_hooks
        assert cfg.model.backbone.mask_ratio == 0.75
        scheduler = build_mask_scheduler(dict(type='FixedMaskRatio'))
    else:
        scheduler = build_mask_scheduler(
            cfg.default_hooks.mask_ratio.scheduler)
        assert type(scheduler).__name__ == SCHEDULE_OF_SUFFIX[name.rsplit(
            '_', 1)[-1]]

    shrink(cfg)
    if cfg.get('data_preprocessor') is not None:
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.mask_ratio = scheduler.ratio(0, 10)

    before = [p.detach().clone() for p in model.backbone.parameters()]
    projector = getattr(model, 'projector', torch.nn.Module())
    projector_before = [p.detach().clone() for p in projector.parameters()]
    batch = photo_batch()
    if name.startswith('mae_'):  # mmpretrain's preprocessor wants the key
        batch['data_samples'] = None
    log_vars = model.train_step(batch, optim_wrapper)
    assert torch.isfinite(log_vars['loss'])
    changed = [not torch.equal(a, b.detach())
               for a, b in zip(before, model.backbone.parameters())]
    assert any(changed), 'no encoder parameter was updated'
    assert all(
        torch.equal(a, b)
        for a, b in zip(projector_before, projector.parameters()))


def test_no_weight_decay_group_is_not_empty():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'lmd_vit-b_in1k_cs.py'))
    shrink(cfg)
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    no_decay = [g for g in wrapper.optimizer.param_groups
                if g['weight_decay'] == 0]
    decay = [g for g in wrapper.optimizer.param_groups
             if g['weight_decay'] > 0]
    assert no_decay and decay
    assert type(wrapper.optimizer).__name__ == 'Adan'
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = {names[id(p)] for g in no_decay for p in g['params']}
    assert 'neck.mask_token' in no_decay_names
    assert 'backbone.cls_token' in no_decay_names
    assert 'backbone.norm.weight' in no_decay_names
    assert 'backbone.blocks.0.attn.qkv.weight' not in no_decay_names


@pytest.mark.parametrize('config', LEAVES, ids=osp.basename)
def test_latent_configs_train_from_a_cache_and_pixel_configs_do_not(config):
    """Latent-first by default: every LMD config with a frozen autoencoder
    projector encodes its training images once (LatentCacheDataset naming
    the image dataset, built by the LatentCacheHook of its runtime); pixel
    and MAE configs get images, never a cache they could not build."""
    cfg = Config.fromfile(config)
    dataset = cfg.train_dataloader.dataset
    hooks = {h.get('type') for h in cfg.default_hooks.values() if h}
    projector = cfg.model.get('projector') or {}
    latent = projector.get('type') in ('KLVAEProjector', 'VQGANProjector')
    cached = dataset.type == 'LatentCacheDataset' and not dataset.get(
        'encode_on_the_fly', False)
    assert cached == latent, (config, dataset.type)
    if cached:
        assert 'dataset' in dataset and 'LatentCacheHook' in hooks
        assert dataset.get('num_views', 1) >= 1


# Published parameter counts of the pixel ViTs with their class head (MAE
# paper, Table 3 / timm): ViT-L/16 304 M, ViT-H/14 632 M.
LARGE_ARCHS = {
    'lmd_vit-l_in1k_cs.py': dict(arch=(1024, 24, 16), published=304e6),
    'lmd_vit-h_in1k_cs.py': dict(arch=(1280, 32, 16), published=632e6),
}


def block_params(width: int) -> int:
    """Pre-norm block, MLP ratio 4: qkv + proj + fc1 + fc2 weights
    (12 C^2) and their biases (9 C), two LayerNorms (4 C)."""
    return 12 * width**2 + 13 * width


def encoder_params(width: int, depth: int, patch_values: int) -> int:
    """Trainable ``LMDViT``: blocks, patch-embedding conv, class token,
    final LayerNorm (the sin-cos table is frozen)."""
    return (depth * block_params(width) + (patch_values + 1) * width +
            width + 2 * width)


def decoder_params(width: int, dec_width: int, depth: int,
                   patch_values: int) -> int:
    """Trainable ``LMDDecoder``: latent linear layer, mask token, blocks,
    LayerNorm, prediction layer."""
    return ((width + 1) * dec_width + dec_width +
            depth * block_params(dec_width) + 2 * dec_width +
            (dec_width + 1) * patch_values)


@pytest.mark.parametrize('name', sorted(LARGE_ARCHS))
def test_large_leaf_configs_state_arch_fsdp_checkpointing_and_bf16(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    width, depth, heads = LARGE_ARCHS[name]['arch']
    arch = cfg.model.backbone.arch
    if isinstance(arch, str):
        from lmd_toolkit.models import LMDViT
        arch = LMDViT.arch_zoo[arch]
    assert (arch['embed_dims'], arch['num_layers'],
            arch['num_heads']) == (width, depth, heads)
    assert cfg.model.backbone.get('num_layers') is None
    neck = cfg.model.neck
    assert 'embed_dims' not in neck  # derived: the encoder width
    with torch.device('meta'):
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg.projector.checkpoint = None
        built = MODELS.build(model_cfg)
    assert built.neck.embed_dims == built.neck.decoder_embed.in_features \
        == width
    assert (neck.decoder_embed_dims, neck.decoder_depth,
            neck.decoder_num_heads) == (512, 8, 16)
    assert cfg.model.backbone.with_cp is True
    assert neck.with_cp is True
    assert cfg.runner_type == 'FlexibleRunner'
    assert cfg.strategy.type.endswith('LMDFSDPStrategy')
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.optim_wrapper.optimizer.type == 'Adan'  # the recipe's
    # The one-iteration test above trains these reduced, checkpointed.
    shrink(cfg)
    assert cfg.model.backbone.with_cp and cfg.model.neck.with_cp
    assert 'embed_dims' not in cfg.model.neck


@pytest.mark.parametrize('name', sorted(LARGE_ARCHS))
def test_large_models_have_the_formula_parameter_counts(name):
    """Full size, on the meta device (no memory, no initialisation)."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert model.backbone.pos_embed.is_meta

    def trainable(module):
        return sum(p.numel() for p in module.parameters() if p.requires_grad)

    width, depth, _ = LARGE_ARCHS[name]['arch']
    patch_values = 2 * 2 * 4  # latent patch 2 of a 4-channel latent
    expected_encoder = encoder_params(width, depth, patch_values)
    expected_decoder = decoder_params(width, 512, 8, patch_values)
    assert trainable(model.backbone) == expected_encoder
    assert trainable(model.neck) == expected_decoder
    assert trainable(model.projector) == 0
    # The blocks are nearly all of it; the pixel ViT differs by its patch
    # embedding, learned position table and class head: within 2 %.
    assert abs(expected_encoder - 12 * width**2 * depth) < \
        0.02 * expected_encoder
    published = LARGE_ARCHS[name]['published']
    assert abs(expected_encoder - published) < 0.02 * published
