# No weight decay on norms, biases, position embeddings and tokens:
# paramwise_cfg.custom_keys match substrings of parameter names (parameter
# names are config API, docs/en/model.md). The pretraining schedules list
# this file in their _base_ and add the optimizer.
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'norm': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.0),
            'mask_token': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
        }))
