"""Held-out mutants: broken setups written independently of the authors'
catalog, to measure how the sanity engine generalizes.

Each case inherits one benchmark base and adds a few config lines, with
parts from this package loaded through ``custom_imports``. ``first`` is
the first (1-based) iteration at which the bug can show in the run; 0 when
it is visible before training starts (in the annotations as loaded, or in
the model/optimizer as built).
"""
from typing import List

from benchmarks.mutations.catalog import Case

PKG = 'benchmarks.mutations.heldout'
TOY = (f'{PKG}.toy_parts', )
DET = (f'{PKG}.detection_parts', )
AUDIO = (f'{PKG}.audio_parts', )
RIS = (f'{PKG}.ris_parts', )

# The yolo base's custom hooks, repeated where a case adds one.
YOLO_EMA = ("dict(type='EMAHook', ema_type='ExpMomentumEMA', "
            'momentum=0.0002, update_buffers=True, strict_load=False, '
            'priority=49)')

# The yolo base's training pipeline with one transform inserted.
YOLO_PIPELINE_WITH = '''train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PrefilledCachedMosaic', img_scale=(256, 256), pad_val=114.0,
         max_cached_images=20, random_pop=False),
    dict(type='RandomAffine', max_rotate_degree=0.0, max_shear_degree=0.0,
         max_translate_ratio=0.1, scaling_ratio_range=(0.5, 1.5),
         border=(-128, -128), border_val=(114, 114, 114)),
    dict(type='YOLOXHSVRandomAug'),
    {inserted},
    dict(type='RandomFlip', prob=0.5),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))'''


def toy_cases() -> List[Case]:
    return [
        Case('toy/mse_on_pred_data', 'dead or detached terms',
             "model = dict(type='HeldToyRegressorL2')",
             first=1, iters=6, imports=TOY,
             notes='data term on pred.data: only the L2 penalty trains'),
        Case('toy/features_under_no_grad', 'parameters outside the graph',
             "model = dict(type='HeldToyProbeRegressor')",
             first=1, iters=6, imports=TOY,
             notes='first Linear runs under torch.no_grad()'),
        Case('toy/huber_term_named_without_loss', 'loss keys',
             "model = dict(type='HeldToyHuberRegressor')",
             first=1, iters=6, imports=TOY,
             notes="data term under key 'huber' is never summed"),
        Case('toy/lr_decay_hook_floor_division', 'lr 0',
             "custom_hooks = [dict(type='HeldLinearDecayHook')]",
             first=2, iters=7, imports=TOY,
             notes='(max - iter) // max is 0 from iteration 2'),
        Case('toy/csv_target_missing_at_row_38',
             'non-finite at iteration k > 3',
             "train_dataloader = dict(dataset=dict("
             "type='HeldToyCSVDataset'))",
             first=7, iters=10, imports=TOY,
             notes='NaN target at sample 37, in batch 7 of the seeded '
             'shuffle'),
        Case('toy/steplr_gamma_10_meant_as_divisor', 'divergence',
             "param_scheduler = [dict(type='StepLR', by_epoch=False, "
             'step_size=4, gamma=10.0)]',
             first=5, iters=14,
             notes='gamma=10 meant as "divide by 10": lr x10 every 4 '
             'iterations, 0.2 from iteration 5, 2.0 from 9, 20 from 13'),
        Case('toy/features_in_raw_sensor_units', 'input normalization',
             "train_dataloader = dict(dataset=dict("
             "type='HeldToyRawUnitsDataset'))",
             first=1, iters=6, imports=TOY,
             notes='inputs x*100+500, never standardized'),
    ]


def yolo_cases() -> List[Case]:
    return [
        Case('yolo/coco_bbox_parsed_as_xyxy', 'box frame',
             "train_dataloader = dict(dataset=dict("
             "type='HeldCocoXYWHDataset'))",
             first=0, iters=5, imports=DET,
             notes='hand-written parse keeps COCO xywh'),
        Case('yolo/category_id_used_as_label', 'labels',
             "train_dataloader = dict(dataset=dict("
             "type='HeldCocoCategoryIdDataset'))",
             first=0, iters=5, imports=DET,
             notes='labels 1..3 (1-based), triangle == num_classes'),
        Case('yolo/dfl_targets_in_pixels', 'target units',
             "model = dict(bbox_head=dict(loss=dict("
             "type='HeldPixelDFLLoss')))",
             first=1, iters=6, imports=DET,
             notes='DFL ltrb from pixel anchors and pixel boxes'),
        Case('yolo/fusion_gate_ablated_params_kept',
             'parameters outside the graph',
             "model = dict(fusion=dict(type='HeldUngatedFusion'))",
             first=1, iters=6, imports=DET,
             notes='gate_scale / gate_bias unused'),
        Case('yolo/lookahead_resets_to_init', 'frozen everything',
             f'custom_hooks = [{YOLO_EMA}, '
             "dict(type='HeldLookaheadHook', k=5, alpha=0.5)]",
             first=5, iters=11, imports=DET,
             notes='fast weights reset to never-moving slow weights '
             'after iterations 5, 10, ...'),
        Case('yolo/cls_weight_scaled_by_nc_floor_div', 'zero loss weights',
             'num_classes = 3\n'
             'model = dict(bbox_head=dict(loss=dict('
             'cls_weight=0.5 * (num_classes // 80))))',
             first=1, iters=6,
             notes="YOLOv5's cls *= nc / 80 written with // : weight 0"),
        Case('yolo/uint8_image_divided_by_255', 'input normalization',
             YOLO_PIPELINE_WITH.format(
                 inserted="dict(type='HeldToUnitRange')") +
             '\nmodel = dict(data_preprocessor=dict('
             'mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0]))',
             first=1, iters=6, imports=DET,
             notes='img / 255 cast back to uint8: images almost all 0'),
    ]


def rtdetr_cases() -> List[Case]:
    return [
        Case('rtdetr/boxes_normalized_by_img_shape', 'box frame',
             "model = dict(data_preprocessor=dict("
             "type='HeldImgShapeRTDETRPreprocessor'))",
             first=1, iters=6, imports=DET,
             notes='targets normalized by the unpadded image, predictions '
             'by the padded batch'),
        Case('rtdetr/tiny_objects_labelled_minus_one', 'labels',
             "train_dataloader = dict(dataset=dict("
             "type='HeldIgnoreTinyDataset', min_area=400.0))",
             first=0, iters=12, imports=DET,
             notes='-1 as "ignore" for boxes under 400 px^2 (about 4% of '
             'boxes)'),
        Case('rtdetr/box_losses_weight_0_left_from_cls_warmup',
             'zero loss weights',
             'model = dict(criterion=dict('
             'loss_bbox=dict(loss_weight=0.0), '
             'loss_iou=dict(loss_weight=0.0)))',
             first=1, iters=6,
             notes='L1 and GIoU weights 0: boxes never trained'),
        Case('rtdetr/class_heads_recreated_at_first_step',
             'missing from the optimizer',
             "model = dict(type='HeldRTDETRFreshClassHeads')",
             first=1, iters=6, imports=DET,
             notes='score heads replaced after the optimizer was built'),
        Case('rtdetr/loss_names_shortened_for_logs', 'loss keys',
             "model = dict(type='HeldRTDETRShortLogKeys')",
             first=1, iters=6, imports=DET,
             notes='aux / enc / dn terms renamed without "loss"'),
        Case('rtdetr/polylr_end_in_epochs_by_iter', 'lr 0',
             'param_scheduler = [\n'
             "    dict(type='LinearLR', start_factor=0.01, by_epoch=False,"
             ' begin=0, end=100),\n'
             '    # decay to 0 over the 60 epochs of the quick start\n'
             "    dict(type='PolyLR', eta_min=0.0, power=0.9,"
             ' by_epoch=False, begin=0, end=60),\n'
             ']',
             first=60, iters=65,
             notes='end=60 meant epochs, read as iterations: lr exactly 0 '
             'from iteration 60 on'),
    ]


def audio_cases() -> List[Case]:
    return [
        Case('audio/sharegpt_role_name_gpt', 'dropped batch keys',
             "train_dataloader = dict(dataset=dict("
             "type='HeldShareGPTChatDataset'))",
             first=1, iters=6, imports=AUDIO,
             notes="learned turn is role 'gpt': no labels, no audio-out"),
        Case('audio/preprocessor_filters_by_core_signature',
             'dropped batch keys',
             "model = dict(data_preprocessor=dict("
             "type='HeldSignatureFilterPreprocessor'))",
             first=1, iters=6, imports=AUDIO,
             notes='label_audio_ids dropped (not in the core signature)'),
        Case('audio/lora_dropout_1_no_modules_to_save', 'frozen everything',
             'model = dict(lora=dict(lora_dropout=1.0, '
             'modules_to_save=None))',
             first=1, iters=6,
             notes='dropout p=1 zeroes every adapter input: all grads 0'),
        Case('audio/lr_range_test_hook_left_on', 'divergence',
             "custom_hooks = [dict(type='HeldLRRangeTestHook', "
             'factor=3.0)]',
             first=2, iters=14, imports=AUDIO,
             notes='lr x3 after every iteration'),
        Case('audio/audio_weight_ramped_by_epoch', 'zero loss weights',
             "custom_hooks = [dict(type='HeldAudioLossRampHook', "
             'ramp_epochs=2)]',
             first=1, iters=6, imports=AUDIO,
             notes='runner.epoch stays 0: audio_loss_weight 0'),
        Case('audio/eos_targets_ignored_as_minus_one', 'labels',
             "train_dataloader = dict(collate_fn=dict("
             "type='held_audio_collate_ignore_eos'))",
             first=1, iters=6, imports=AUDIO,
             notes='label_audio_ids == 1025 set to -1, not -100'),
        Case('audio/model_cast_to_fp16', 'precision',
             "model = dict(type='HeldHalfAudioLM')",
             first=1, iters=6, imports=AUDIO,
             notes='pure fp16 params with AdamW: weights non-finite after '
             'step 1'),
    ]


def ris_cases() -> List[Case]:
    return [
        Case('ris/low_rank_factor_plain_eigh', 'precision',
             'model = dict(residual=False, rank=2, stabilize=False)',
             first=1, iters=6,
             notes='rank-2 factor + eps I: 62 equal eigenvalues, plain '
             'eigh backward NaN'),
        Case('ris/angles_in_radians_no_steering', 'target units',
             "train_dataloader = dict(dataset=dict("
             "type='HeldMeasuredDoADataset'))",
             first=1, iters=6, imports=RIS,
             notes='angles in rad, model converts deg->rad again'),
        Case('ris/noise_only_scene_every_100', 'non-finite at iteration k > 3',
             "train_dataloader = dict(dataset=dict("
             "type='HeldNoiseOnlyScenesDataset', every=100))",
             first=4, iters=8, imports=RIS,
             notes='K=0 scene at index 99 (batch 4): 0/0 in loss_subspace'),
        Case('ris/output_layer_replaced_in_init_weights',
             'missing from the optimizer',
             "model = dict(type='HeldZeroStartCovNet')",
             first=0, iters=5, imports=RIS,
             notes='init_weights runs after the optimizer is built'),
        Case('ris/eigen_terms_on_detached_factor', 'dead or detached terms',
             "model = dict(type='HeldCheapEigenCovNet')",
             first=1, iters=6, imports=RIS,
             notes='loss_subspace / loss_music constant'),
        Case('ris/num_sources_counts_noise_direction', 'labels',
             "train_dataloader = dict(dataset=dict("
             "type='HeldCountWithNoiseDataset'))",
             first=1, iters=6, imports=RIS,
             notes='num_sources = K + 1'),
    ]


def cases() -> List[Case]:
    return (toy_cases() + yolo_cases() + rtdetr_cases() + audio_cases() +
            ris_cases())
