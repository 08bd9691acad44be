"""tools/train.py and tools/dist_train.sh on a latent-first config: one
cache, each rank encoding its share, the same bytes as one process."""
import json
import os
import os.path as osp

import numpy as np
from tool_helpers import ROOT, run_dist_script, run_tool

TINY = osp.join(ROOT, 'tests', 'data', 'tiny_lmd_klvae_photos.py')
VOLATILE = ('created', 'updated', 'encode_seconds')


def cache_folder(root):
    folders = os.listdir(root)
    assert len(folders) == 1, folders
    return osp.join(root, folders[0])


def manifest(folder):
    with open(osp.join(folder, 'manifest.json')) as f:
        m = json.load(f)
    return {k: v for k, v in m.items() if k not in VOLATILE}


def test_two_ranks_build_one_cache_equal_to_one_process(tmp_path):
    dist_cache, single_cache = tmp_path / 'dist', tmp_path / 'single'
    proc = run_dist_script([
        'tools/dist_train.sh', TINY, '2', '--work-dir',
        str(tmp_path / 'wd_dist'), '--cfg-options',
        f'train_dataloader.dataset.cache_dir={dist_cache}'
    ])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_tool([
        'tools/train.py', TINY, '--work-dir',
        str(tmp_path / 'wd_single'), '--cfg-options',
        f'train_dataloader.dataset.cache_dir={single_cache}'
    ], env=dict(OMP_NUM_THREADS='1'))
    a, b = cache_folder(dist_cache), cache_folder(single_cache)
    assert osp.basename(a) == osp.basename(b)  # same request, same key
    m = manifest(a)
    assert m['state'] == 'complete' and m['num_rows'] == 48
    assert m == manifest(b)  # incl. the 'auto' scale factor of rank 0
    # 10 chunks of 5 rows: rank 0 wrote the even ones, rank 1 the odd ones
    assert np.load(osp.join(a, 'progress.npy')).tolist() == [1] * 10
    la, lb = (np.load(osp.join(f, 'latents.npy')) for f in (a, b))
    assert la.dtype == np.float16 and np.isfinite(la).all()
    assert np.abs(la[5:10]).sum() > 0  # a chunk of rank 1
    assert la.tobytes() == lb.tobytes()
