# RIS / antenna-array DoA: the shared settings. Children override the
# geometry and sizes by merging into these dicts (see ris_upa8x8_cpu.py).
_base_ = ['../_base_/default_runtime.py']

# The array: rows x cols UPA (cols=1: ULA), spacing in wavelengths;
# ris_measurements=N views it through N random RIS phase profiles.
geometry = dict(rows=12, cols=12, spacing=0.5, ris_measurements=None)
num_snapshots = 64  # T
# Search range of the data and of MUSIC (degrees).
az_range, el_range = (-60.0, 60.0), (-30.0, 30.0)
# SNRs of the fixed validation/test sets (dB); training draws uniformly
# between the smallest and largest.
eval_snrs = [-15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 20.0]

scene = dict(
    type='RISDoADataset',
    geometry=geometry,
    num_sources=(1, 3),  # K or (K_min, K_max)
    num_snapshots=num_snapshots,
    power_db_range=(0.0, 0.0),  # source powers, uniform in this dB range
    correlation=0.0,  # between every pair of sources
    az_range=az_range,
    el_range=el_range,
    min_separation=5.0)  # degrees

train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    # Scenes are drawn fresh at every access; an infinite sampler avoids
    # IterBasedTrainLoop's pause at each epoch end.
    sampler=dict(type='InfiniteSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        scene, split='train', snr_db=eval_snrs, num_samples=100000))
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    # Generated once from `seed` and cached (delete the file to redo).
    dataset=dict(
        scene,
        split='val',
        snr_db=eval_snrs,
        num_samples=700,
        seed=0,
        cache_dir='data/ris_cache'))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], split='test', seed=1))

val_evaluator = dict(
    type='RISDoAMetric',
    geometry=geometry,
    num_snapshots=num_snapshots,
    az_range=az_range,
    el_range=el_range,
    grid_step=1.0,  # MUSIC grid (degrees), refined locally
    # The network's estimate replaces the reference only where the data
    # reject the reference at this false-switch rate
    # (evaluation/ris/fit_selection.py).
    select_by_fit=True,
    fit_alpha=0.05,
    # The reference: 'dml' (the DML fit of the sample covariance, searched
    # by alternating projection; evaluation/ris/dml_search.py) or 'music'.
    reference='dml',
    # Decodings of the network's covariance the test may switch to:
    # MUSIC, and smoothed MUSIC for pairs it leaves coherent (plain arrays).
    network_decoders=('music', 'fbss'),
    # Each decoding offers the K of its K + candidate_peaks highest peaks
    # that fit the sample covariance best (0: its K highest).
    candidate_peaks=4,
    # The network's test also weighs the sample covariance's own
    # candidates (those of the network-free switch).
    sample_candidates=True,
    # A replacement moves to the nearest DML fit of the sample covariance.
    refine_switched=True,
    smoothing=True,  # also report forward-backward smoothed MUSIC
    gross_threshold=5.0)  # degrees; larger errors count as gross
test_evaluator = val_evaluator

model = dict(
    type='RISCovarianceNet',
    geometry=geometry,
    hidden=(1024, 1024),
    rank=None,  # columns of L in L L^H + eps I (None: full)
    residual=True,  # learn a correction to the sample covariance
    eps=1e-3,
    loss_weights=dict(frobenius=1.0, subspace=1.0, music=0.5),
    fp32_loss_region=True,  # predictions and labels cast; never turn off
    loss_dtype='float32',  # 'float64': complex128 losses
    stabilize=True,  # diagonal loading + jitter + gap-regularized eigh
    loading=1e-3,
    jitter=1e-4,
    gap_eps=1e-4)

train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000,
                 val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='GradSanityOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10.0))
# Cosine decay over the whole run (its end is train_cfg.max_iters).
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, eta_min=1e-5)
]

default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=2000, save_best='ris/val_loss',
                    rule='less'))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)

# Search spaces for tools/hpo.py (engine_plugins/utils/search_space.py):
# `narrow` tunes the lr and loss weights around the defaults, `wide` also
# the network size, weight decay and the eigh gap regularization.
hpo = dict(
    monitor='ris/val_loss',
    direction='minimize',
    spaces=dict(
        narrow={
            'optim_wrapper.optimizer.lr':
            dict(type='float', low=3e-4, high=3e-3, log=True, name='lr'),
            'model.loss_weights.subspace':
            dict(type='float', low=0.5, high=2.0, name='w_subspace'),
            'model.loss_weights.music':
            dict(type='float', low=0.0, high=1.0, name='w_music'),
        },
        wide={
            'model.hidden':
            dict(
                type='repeat',
                value=dict(
                    type='categorical', choices=[256, 512, 1024],
                    name='width'),
                times=dict(type='int', low=1, high=3, name='depth')),
            'optim_wrapper.optimizer.lr':
            dict(type='float', low=1e-4, high=1e-2, log=True, name='lr'),
            'optim_wrapper.optimizer.weight_decay':
            dict(
                type='float', low=1e-6, high=1e-2, log=True,
                name='weight_decay'),
            'model.loss_weights.frobenius':
            dict(type='float', low=0.1, high=2.0, name='w_frobenius'),
            'model.loss_weights.subspace':
            dict(type='float', low=0.0, high=2.0, name='w_subspace'),
            'model.loss_weights.music':
            dict(type='float', low=0.0, high=2.0, name='w_music'),
            'model.gap_eps':
            dict(type='float', low=1e-6, high=1e-3, log=True, name='gap_eps'),
        }))
