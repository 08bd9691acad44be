# mmpretrain's MAE ViT-B/16: 224 px, 12 + 8 blocks, decoder 512, fixed
# mask ratio 0.75, per-patch normalised pixel targets (norm_pix).
model = dict(
    type='mmpretrain.MAE',
    backbone=dict(type='mmpretrain.MAEViT', arch='b', img_size=224,
                  patch_size=16, mask_ratio=0.75),
    neck=dict(
        type='mmpretrain.MAEPretrainDecoder',
        num_patches=196,
        patch_size=16,
        in_chans=3,
        embed_dim=768,
        decoder_embed_dim=512,
        decoder_depth=8,
        decoder_num_heads=16,
        mlp_ratio=4.),
    head=dict(
        type='mmpretrain.MAEPretrainHead',
        norm_pix=True,
        patch_size=16,
        loss=dict(type='mmpretrain.PixelReconstructionLoss',
                  criterion='L2')),
    # Pixels to [-1, 1], as LMDDataPreprocessor does.
    data_preprocessor=dict(
        type='mmpretrain.SelfSupDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=False))
