# scikit-learn's digits (no download) as an unlabelled pretraining set: the
# classification split of digits.py (1,438 training images, 32 x 32 RGB
# uint8; no flip: digits are not mirror-symmetric). Leaf configs set their
# own reconstruction evaluators; the labels are not used.
_base_ = ['./digits.py']

val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader
