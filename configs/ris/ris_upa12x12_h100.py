# The 12x12 UPA (144 elements) on one H100: bf16 autocast for the network,
# losses in the FP32 region (the model does this itself; see ris_base.py).
#   python tools/train.py configs/ris/ris_upa12x12_h100.py
_base_ = ['./ris_base.py']

train_dataloader = dict(batch_size=256, num_workers=8)
optim_wrapper = dict(
    type='AmpGradSanityOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(lr=1e-3))
train_cfg = dict(max_iters=50000, val_interval=5000)
default_hooks = dict(checkpoint=dict(interval=5000))
