_base_ = ['./base.py']

model = dict(neck=dict(out_channels=128), head=dict(num_classes=3))
experiment_tag = 'parent'
