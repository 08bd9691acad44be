"""Data transforms of lmd-toolkit (the ``TRANSFORMS`` registry's location).

The toolkit registers no transform of its own yet: its datasets read images
themselves and hand the pipeline ``img`` as ``(H, W, 3)`` uint8 RGB, and the
pipelines use mmpretrain's transforms by their scoped name, e.g.
``dict(type='mmpretrain.RandomResizedCrop', scale=64)``. Under
``default_scope='lmd_toolkit'`` mmengine resolves the ``mmpretrain.`` prefix
by itself: it imports ``mmpretrain.registry``, whose ``TRANSFORMS`` imports
``mmpretrain.datasets``; nothing here has to import mmpretrain. Transforms
registered here later are named without a prefix.
"""
