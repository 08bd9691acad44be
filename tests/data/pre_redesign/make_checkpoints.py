"""Writes the checkpoints of the pre-redesign main kept as test data.

Run from the repository root: python tests/data/pre_redesign/make_checkpoints.py OUT
"""
import json, os, sys, tempfile
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from lmd_toolkit.utils import register_all_modules
register_all_modules()
torch.set_num_threads(1)
out = sys.argv[1]
result = {}
for name, cfg_path in [('vit', 'tests/data/tiny_lmd_photos.py'),
                       ('unet', 'tests/data/tiny_lmd_unet_photos.py')]:
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir = tempfile.mkdtemp(prefix=f'lmd_{name}_')
    cfg.experiment_name = name
    cfg.train_cfg.max_iters = 4
    cfg.train_cfg.val_interval = 100
    cfg.default_hooks.checkpoint.interval = 4
    cfg.default_hooks.visualization.interval = 100
    cfg.param_scheduler[1].T_max = 2
    cfg.param_scheduler[1].end = 4
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt = f'{cfg.work_dir}/iter_4.pth'
    torch.manual_seed(1)
    batch = next(iter(runner.train_dataloader))
    images = batch['inputs'][:4]
    model = runner.model.eval()
    model.mask_ratio = 0.6
    data = model.data_preprocessor(dict(inputs=list(images)), training=True)
    torch.manual_seed(0)
    with torch.no_grad():
        losses = model(**data, mode='loss')
    result[name] = {k: float(v) for k, v in losses.items()}
    torch.save(images, f'{out}/batch_{name}.pth')
    sd = torch.load(ckpt, map_location='cpu', weights_only=False)
    print(name, os.path.getsize(ckpt), list(sd), result[name])
    os.replace(ckpt, f'{out}/lmd_{name}_iter4.pth')
json.dump(result, open(f'{out}/losses.json', 'w'), indent=1)
