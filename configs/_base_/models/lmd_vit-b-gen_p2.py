# LMD generative variant (paper §3.2.2): 8 encoder blocks, 12 decoder blocks.
# The paper says the latent linear layer widens the decoder (its example:
# 512 -> 1024). Our interpretation: the latent linear layer maps the encoder
# width 768 to a decoder of width 1024 (16 heads), see docs/en/model.md.
_base_ = ['./lmd_vit-b_p2.py']
model = dict(
    backbone=dict(num_layers=8),
    neck=dict(decoder_embed_dims=1024, decoder_depth=12, decoder_num_heads=16))
