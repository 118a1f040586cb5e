_base_ = ['./parent.py']

model = dict(backbone=dict(depth=18))
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=1e-4))
experiment_tag = 'child'
