# What the latent ViT classifiers share: mmpretrain's ImageClassifier over
# a LatentViTBackbone (the frozen projector, then the LMD encoder; mean-
# pooled patch tokens + fc_norm, drop path 0.1), a linear head with label
# smoothing 0.1 initialised from TruncNormal(std 2e-5), and images mapped
# from uint8 to [-1, 1], the projector's range. A classifier block inherits
# this and states its projector, encoder, weights, classes and width.
model = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(
        type='LatentViTBackbone', global_pool='avg', drop_path_rate=0.1),
    head=dict(
        type='mmpretrain.LinearClsHead',
        loss=dict(
            type='mmpretrain.LabelSmoothLoss', label_smooth_val=0.1,
            mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    data_preprocessor=dict(
        type='mmpretrain.ClsDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5]),
)
