"""Held-out set 3: broken setups written without reading the checks.

Each case inherits one benchmark base and adds a few config lines and,
where the bug needs code, a part from this package (loaded with
``custom_imports``): the way a user brings a bug into a working config.
``first`` is the first iteration at which the bug can show (0: in the
model or optimizer as built, before training).
"""
from typing import List

from benchmarks.mutations.catalog import Case

PKG = 'benchmarks.mutations.heldout3'
TOY = (f'{PKG}.toy_parts', )
YOLO = (f'{PKG}.yolo_parts', )
RTDETR = (f'{PKG}.rtdetr_parts', )
AUDIO = (f'{PKG}.audio_parts', )
RIS = (f'{PKG}.ris_parts', )


def _yolo_pipeline(before_mosaic: str = '', before_flip: str = '') -> str:
    """The YOLO base's training pipeline with extra steps."""
    return f"""
img_scale = (256, 256)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),{before_mosaic}
    dict(type='PrefilledCachedMosaic', img_scale=img_scale, pad_val=114.0,
         max_cached_images=20, random_pop=False),
    dict(type='RandomAffine', max_rotate_degree=0.0, max_shear_degree=0.0,
         max_translate_ratio=0.1, scaling_ratio_range=(0.5, 1.5),
         border=(-img_scale[0] // 2, -img_scale[1] // 2),
         border_val=(114, 114, 114)),
    dict(type='YOLOXHSVRandomAug'),{before_flip}
    dict(type='RandomFlip', prob=0.5),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
"""


def _rtdetr_pipeline(after_load: str = '', before_pack: str = '') -> str:
    """The RT-DETR base's training pipeline with extra steps."""
    return f"""
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),{after_load}
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1),
         keep_empty=False),{before_pack}
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
"""


def toy_cases() -> List[Case]:
    return [
        Case('toy/h3_rounded_prediction', 'dead or detached terms',
             "model = dict(type='HeldCBinnedToyRegressor')",
             first=1, iters=6, imports=TOY),
        Case('toy/h3_weight_standardized_via_data',
             'parameters outside the graph',
             "model = dict(type='HeldCWSToyRegressor')",
             first=1, iters=6, imports=TOY),
        Case('toy/h3_warmup_floor_division', 'lr 0',
             "param_scheduler = [dict(type='HeldCLinearWarmupLR', "
             'warmup_iters=200, by_epoch=False)]',
             first=1, iters=6, imports=TOY),
        Case('toy/h3_freeze_modules_given_as_string', 'frozen everything',
             "custom_hooks = [dict(type='HeldCFreezeAfterHook', "
             "freeze_after=4, modules='net.0')]",
             first=5, iters=10, imports=TOY),
        Case('toy/h3_batch_std_on_a_batch_of_one',
             'non-finite at iteration k > 3',
             "model = dict(type='HeldCBatchStdToyRegressor')\n"
             'train_dataloader = dict(dataset=dict(num_samples=57))',
             first=8, iters=13, imports=TOY),
        Case('toy/h3_sgd_step_sign', 'divergence',
             'optim_wrapper = dict(optimizer=dict(_delete_=True, '
             "type='HeldCMomentumSGD', lr=0.02, momentum=0.9))",
             first=1, iters=8, imports=TOY),
    ]


def yolo_cases() -> List[Case]:
    return [
        Case('yolo/h3_instances_shuffled_without_labels', 'labels',
             _yolo_pipeline(
                 before_mosaic="\n    dict(type='HeldCShuffleInstances'),"),
             first=1, iters=6, imports=YOLO),
        Case('yolo/h3_tile_resize_swaps_w_h', 'box frame',
             _yolo_pipeline(
                 before_mosaic="\n    dict(type='HeldCTileResize', "
                 'scale=img_scale),'),
             first=1, iters=6, imports=YOLO),
        Case('yolo/h3_unit_range_cast_to_uint8', 'input normalization',
             _yolo_pipeline(
                 before_flip="\n    dict(type='HeldCToUnitRange'),"),
             first=1, iters=6, imports=YOLO),
        Case('yolo/h3_cls_gain_scaled_by_nc_floor', 'zero loss weights',
             '# ultralytics: the cls gain scales with nc / 80\n'
             'num_classes = 3\n'
             'model = dict(bbox_head=dict(loss=dict('
             'cls_weight=0.5 * (num_classes // 80))))',
             first=1, iters=6),
        Case('yolo/h3_dfl_logged_under_ultralytics_name', 'loss keys',
             "model = dict(bbox_head=dict(loss=dict("
             "type='HeldCUltralyticsNamesLoss')))",
             first=1, iters=6, imports=YOLO),
        Case('yolo/h3_optimizer_dedup_by_shape',
             'missing from the optimizer',
             "optim_wrapper = dict("
             "constructor='HeldCDedupOptimWrapperConstructor')",
             first=0, iters=5, imports=YOLO),
    ]


def rtdetr_cases() -> List[Case]:
    return [
        Case('rtdetr/h3_labels_shifted_for_background', 'labels',
             _rtdetr_pipeline(
                 after_load="\n    dict(type='HeldCBackgroundAtZero'),"),
             first=1, iters=6, imports=RTDETR),
        Case('rtdetr/h3_centered_padding_boxes_not_moved', 'box frame',
             "model = dict(data_preprocessor=dict("
             "type='HeldCCenterPadPreprocessor'))",
             first=1, iters=6, imports=RTDETR),
        Case('rtdetr/h3_boxes_normalized_in_pipeline', 'target units',
             _rtdetr_pipeline(
                 before_pack="\n    dict(type='HeldCNormalizeBoxes'),"),
             first=1, iters=6, imports=RTDETR),
        Case('rtdetr/h3_ignore_flags_inverted', 'dropped batch keys',
             _rtdetr_pipeline(
                 after_load="\n    dict(type='HeldCIgnoreTinyBoxes', "
                 'min_size=8),'),
             first=1, iters=6, imports=RTDETR),
        Case('rtdetr/h3_giou_loss_under_no_grad', 'dead or detached terms',
             "model = dict(criterion=dict(loss_iou=dict(_delete_=True, "
             "type='HeldCFastGIoULoss', loss_weight=2.0)))",
             first=1, iters=6, imports=RTDETR),
        Case('rtdetr/h3_bf16_master_weights', 'precision',
             "model = dict(type='HeldCBF16RTDETR')",
             first=0, iters=6, imports=RTDETR),
    ]


def audio_cases() -> List[Case]:
    return [
        Case('audio/h3_padding_mask_inverted_in_collate',
             'dropped batch keys',
             "train_dataloader = dict(collate_fn=dict("
             "type='HeldC_masked_audio_collate'))",
             first=1, iters=6, imports=AUDIO),
        Case('audio/h3_per_codebook_terms_without_loss_in_name',
             'loss keys',
             "model = dict(type='HeldCPerCodebookAudioLM')",
             first=1, iters=6, imports=AUDIO),
        Case('audio/h3_epoch_curriculum_in_iteration_run',
             'zero loss weights',
             "custom_hooks = [dict(type='HeldCAudioCurriculumHook')]",
             first=1, iters=6, imports=AUDIO),
        Case('audio/h3_freeze_get_base_model', 'frozen everything',
             "custom_hooks = [dict(type='HeldCFreezeBaseModelHook')]",
             first=1, iters=6, imports=AUDIO),
        Case('audio/h3_epoch_warmup_without_conversion', 'lr 0',
             '# warm up from 0 over the first epoch\n'
             "param_scheduler = [dict(type='LinearLR', start_factor=0.0, "
             'by_epoch=True, begin=0, end=1)]',
             first=1, iters=6),
        Case('audio/h3_optimizer_takes_lora_names_only',
             'missing from the optimizer',
             "optim_wrapper = dict("
             "constructor='HeldCLoraOnlyOptimWrapperConstructor')",
             first=0, iters=5, imports=AUDIO),
    ]


def ris_cases() -> List[Case]:
    return [
        Case('ris/h3_calibrated_steering_in_degrees', 'target units',
             "train_dataloader = dict(dataset=dict("
             "type='HeldCCalibratedRISDataset'))",
             first=1, iters=6, imports=RIS),
        Case('ris/h3_inputs_standardized_per_entry', 'input normalization',
             "model = dict(data_preprocessor=dict("
             "type='HeldCStandardizePreprocessor'))",
             first=1, iters=6, imports=RIS),
        Case('ris/h3_low_rank_factor_without_loading', 'precision',
             '# K <= 2: a rank-2 factor suffices; no eps, no stabilization\n'
             'model = dict(rank=2, residual=False, eps=0.0, stabilize=False)',
             first=1, iters=6),
        Case('ris/h3_gradient_reversal_on_the_trunk', 'divergence',
             "model = dict(type='HeldCSNRInvariantRISNet')",
             first=1, iters=8, imports=RIS),
        Case('ris/h3_snr_balanced_loss_empty_bin',
             'non-finite at iteration k > 3',
             "model = dict(type='HeldCSNRBalancedRISNet', num_bins=10)",
             first=5, iters=10, imports=RIS),
        Case('ris/h3_learned_loading_under_no_grad',
             'parameters outside the graph',
             "model = dict(type='HeldCLearnedLoadingRISNet')",
             first=1, iters=6, imports=RIS),
    ]


def cases() -> List[Case]:
    """The 30 mutants of held-out set 3."""
    return (toy_cases() + yolo_cases() + rtdetr_cases() + audio_cases() +
            ris_cases())
