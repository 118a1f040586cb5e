"""Held-out set B: broken setups written without reading the sanity
engine, its tests or the other mutant sets.

Each case is a config that inherits a benchmark base and adds a few lines,
with user-style code from this package where the bug needs some."""
from typing import List

from benchmarks.mutations.catalog import Case

P = 'benchmarks.mutations.heldout2.'

# Data-dependent cases: the seed (RT-DETR) or rate (RIS) of the run, and
# the first iteration whose batch holds the triggering sample, read from
# the run's own log line (see det_parts / ris_parts).
SEED_RTDETR, FIRST_RTDETR = 3, 4
NOISE_ONLY, FIRST_RIS = 0.002, 23
TOY, DET, AUDIO, RIS = (P + 'toy_parts', ), (P + 'det_parts', ), (
    P + 'audio_parts', ), (P + 'ris_parts', )

# The YOLO quick-start training pipeline, with one transform swapped.
YOLO_PIPELINE = """
img_scale = (256, 256)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PrefilledCachedMosaic', img_scale=img_scale, pad_val=114.0,
         max_cached_images=20, random_pop=False),
    dict(type='RandomAffine', max_rotate_degree=0.0, max_shear_degree=0.0,
         max_translate_ratio=0.1, scaling_ratio_range=(0.5, 1.5),
         border=(-img_scale[0] // 2, -img_scale[1] // 2),
         border_val=(114, 114, 114)),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='{flip}', prob=0.5),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
"""

# The RT-DETR quick-start training pipeline, with the loader swapped.
RTDETR_PIPELINE = """
img_scale = (256, 256)
train_pipeline = [
    dict(type='{loader}'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
"""


def toy() -> List[Case]:
    return [
        Case('toy/integer_division_warmup', 'lr 0',
             "param_scheduler = [dict(type='HeldBIntWarmupLR', "
             'warmup_iters=500, by_epoch=False)]',
             first=1, iters=6, imports=TOY),
        Case('toy/warmup_divides_lr', 'divergence',
             "param_scheduler = [dict(type='HeldBInverseWarmupLR', "
             'warmup_iters=100, by_epoch=False)]',
             first=1, iters=6, imports=TOY),
        Case('toy/multistep_gamma_10', 'divergence',
             '# decay the lr 10x at iterations 4 and 6\n'
             "param_scheduler = [dict(type='MultiStepLR', by_epoch=False, "
             'milestones=[4, 6], gamma=10.0)]',
             first=5, iters=10),
        Case('toy/wide_path_under_no_grad', 'parameters outside the graph',
             "model = dict(type='HeldBWideDeepRegressor')",
             first=1, iters=6, imports=TOY),
        Case('toy/lookahead_alpha_zero', 'frozen everything',
             "custom_hooks = [dict(type='HeldBLookaheadHook', k=1, "
             'alpha=0.0)]',
             first=2, iters=7, imports=TOY),
        Case('toy/sigmoid_output_raw_targets', 'target units',
             "model = dict(type='HeldBBoundedRegressor')",
             first=1, iters=6, imports=TOY),
        Case('toy/standardized_over_features', 'input normalization',
             "model = dict(type='HeldBStandardizedRegressor')",
             first=1, iters=6, imports=TOY),
    ]


def yolo() -> List[Case]:
    return [
        Case('yolo/category_ids_as_labels', 'labels',
             "train_dataloader = dict(dataset=dict("
             "type='HeldBCategoryIdShapesDataset'))",
             first=0, iters=5, imports=DET),
        Case('yolo/flip_about_original_width', 'box frame',
             YOLO_PIPELINE.replace('{flip}', 'HeldBRandomFlip') +
             'randomness = dict(seed=0)',
             first=1, iters=6, imports=DET),
        Case('yolo/dfl_logged_as_dfl', 'loss keys',
             "model = dict(bbox_head=dict(loss=dict("
             "type='HeldBShortKeysDetLoss')))",
             first=1, iters=6, imports=DET),
        Case('yolo/cls_weight_integer_scaling', 'zero loss weights',
             'num_classes = 3\n'
             '# YOLOv5 scales the class gain with the class count: nc / 80\n'
             'model = dict(bbox_head=dict(loss=dict('
             'cls_weight=0.5 * (num_classes // 80))))',
             first=1, iters=6),
        Case('yolo/log_iou_masked_with_where', 'precision',
             "model = dict(bbox_head=dict(loss=dict("
             "type='HeldBLogIoUDetLoss')))",
             first=1, iters=6, imports=DET),
    ]


def rtdetr() -> List[Case]:
    return [
        Case('rtdetr/no_decay_split_drops_norms',
             'missing from the optimizer',
             "optim_wrapper = dict(constructor='HeldBNoDecayConstructor')",
             first=0, iters=5, imports=DET),
        Case('rtdetr/images_resaved_at_half_size', 'box frame',
             RTDETR_PIPELINE.replace('{loader}', 'HeldBHalfSizeImageLoader'),
             first=1, iters=6, imports=DET),
        Case('rtdetr/per_image_vfl_empty_image',
             'non-finite at iteration k > 3',
             "model = dict(criterion=dict(type='HeldBPerImageVFLCriterion'))"
             f'\nrandomness = dict(seed={SEED_RTDETR})',
             first=FIRST_RTDETR, iters=FIRST_RTDETR + 5, imports=DET),
        Case('rtdetr/loss_terms_grouped_by_type', 'loss keys',
             "model = dict(criterion=dict(type='HeldBGroupedLossCriterion'))",
             first=1, iters=6, imports=DET),
        Case('rtdetr/boxes_missing_visible_field', 'dropped batch keys',
             "train_dataloader = dict(dataset=dict("
             "type='HeldBVisibleOnlyShapesDataset'))",
             first=0, iters=5, imports=DET),
        Case('rtdetr/giou_on_detached_boxes', 'dead or detached terms',
             "model = dict(criterion=dict(type='HeldBDetachedBoxCriterion'))",
             first=1, iters=6, imports=DET),
        Case('rtdetr/query_selection_under_no_grad',
             'parameters outside the graph',
             "model = dict(decoder=dict(type='HeldBNoGradSelectionDecoder'))",
             first=1, iters=6, imports=DET),
    ]


def audio() -> List[Case]:
    return [
        Case('audio/padding_mask_inverted', 'dropped batch keys',
             "train_dataloader = dict(collate_fn=dict("
             "type='HeldB_mask_padding_collate'))",
             first=1, iters=6, imports=AUDIO),
        Case('audio/labels_in_flat_codebook_vocab', 'labels',
             "train_dataloader = dict(collate_fn=dict("
             "type='HeldB_flat_codebook_collate'))",
             first=1, iters=6, imports=AUDIO),
        Case('audio/base_frozen_after_lora', 'frozen everything',
             "model = dict(type='HeldBFrozenBaseAudioLM')",
             first=0, iters=5, imports=AUDIO),
        Case('audio/accumulative_counts_in_samples', 'frozen everything',
             '# effective batch: 256 samples\n'
             'optim_wrapper = dict(accumulative_counts=256)',
             first=1, iters=6),
        Case('audio/audio_weight_key_mismatch', 'zero loss weights',
             "model = dict(type='HeldBWeightedAudioLM', "
             'loss_weights=dict(text=1.0, audio=1.0))',
             first=1, iters=6, imports=AUDIO),
        Case('audio/fp16_weights_with_adamw', 'precision',
             "model = dict(type='HeldBHalfAudioLM')",
             first=1, iters=6, imports=AUDIO),
    ]


def ris() -> List[Case]:
    return [
        Case('ris/eigh_on_detached_estimate', 'dead or detached terms',
             "model = dict(type='HeldBDetachedEighCovNet')",
             first=1, iters=6, imports=RIS),
        Case('ris/head_recreated_in_init_weights',
             'missing from the optimizer',
             "model = dict(type='HeldBReinitHeadCovNet')",
             first=0, iters=5, imports=RIS),
        Case('ris/epoch_warmup_in_infinite_loop', 'lr 0',
             '# warm up over the first 5 epochs, then constant\n'
             "param_scheduler = [dict(type='LinearLR', start_factor=0.0, "
             'by_epoch=True, begin=0, end=5)]',
             first=1, iters=6),
        Case('ris/noise_only_scenes', 'non-finite at iteration k > 3',
             "train_dataloader = dict(dataset=dict("
             f"type='HeldBNoiseOnlyRISDataset', noise_only={NOISE_ONLY}))",
             first=FIRST_RIS, iters=FIRST_RIS + 5, imports=RIS),
        Case('ris/textbook_cov_true', 'target units',
             "train_dataloader = dict(dataset=dict("
             "type='HeldBPhysicalCovRISDataset'))",
             first=1, iters=6, imports=RIS),
        Case('ris/inputs_at_received_power', 'input normalization',
             "train_dataloader = dict(dataset=dict("
             "type='HeldBReceivedPowerRISDataset', received_power=1e-9))",
             first=1, iters=6, imports=RIS),
    ]


def cases() -> List[Case]:
    return toy() + yolo() + rtdetr() + audio() + ris()
