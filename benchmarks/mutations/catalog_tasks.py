"""The cases of the benchmark, task by task."""
from typing import List

from .catalog import COMMON, Case, generic

TOY = 'benchmarks.mutations.mut_toy'


def _toy_model(bug: str) -> str:
    return f"model = dict(_delete_=True, type='MutToyRegressor', bug={bug!r})"


def toy() -> List[Case]:
    cases = generic('toy', 'net')
    cases += [
        Case('toy/detached_loss', 'dead or detached terms',
             _toy_model('detached'), imports=(TOY, )),
        Case('toy/leaf_loss', 'dead or detached terms', _toy_model('leaf'),
             imports=(TOY, )),
        Case('toy/detached_aux_term', 'dead or detached terms',
             _toy_model('aux_detached'), imports=(TOY, )),
        Case('toy/unused_layer', 'parameters outside the graph',
             _toy_model('unused_layer'), imports=(TOY, )),
        Case('toy/float_loss', 'loss keys', _toy_model('float'),
             imports=(TOY, )),
        Case('toy/misnamed_loss', 'loss keys', _toy_model('misnamed'),
             imports=(TOY, )),
        Case('toy/misnamed_aux_term', 'loss keys',
             _toy_model('aux_misnamed'), imports=(TOY, )),
        Case('toy/zero_loss_weight', 'zero loss weights',
             _toy_model('zero_weight'), imports=(TOY, )),
        Case('toy/zero_aux_weight', 'zero loss weights',
             _toy_model('aux_zero_weight'), imports=(TOY, ), first=3),
        Case('toy/forward_args_filter', 'dropped batch keys',
             "train_dataloader = dict(collate_fn=dict("
             "type='mut_keep_forward_args_collate'))", imports=(COMMON, )),
        Case('toy/lr_x1000', 'divergence',
             'optim_wrapper = dict(optimizer=dict(lr=20.0))'),
    ]
    cases += [
        Case('toy/clean', 'clean', iters=60),
        Case('toy/clean_policy_raise_checked_often', 'clean',
             "default_hooks = dict(sanity=dict(policy='raise', "
             'interval=5))', iters=60),
        Case('toy/clean_amp_bf16', 'clean',
             "optim_wrapper = dict(type='AmpGradSanityOptimWrapper', "
             "dtype='bfloat16')", iters=60),
        Case('toy/clean_adam_clip_accumulate', 'clean',
             "optim_wrapper = dict(optimizer=dict(_delete_=True, "
             "type='AdamW', lr=1e-2), clip_grad=dict(max_norm=1.0), "
             'accumulative_counts=2)', iters=60),
    ]
    return cases


DET = 'benchmarks.mutations.mut_detection'

_YOLO_MOSAIC = """[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),{early}
    dict(type='PrefilledCachedMosaic', img_scale=(256, 256), pad_val=114.0,
         max_cached_images=20, random_pop=False),
    dict(type='RandomAffine', max_rotate_degree=0.0, max_shear_degree=0.0,
         max_translate_ratio=0.1, scaling_ratio_range=(0.5, 1.5),
         border=(-128, -128), border_val=(114, 114, 114)),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1),
         keep_empty=False),{late}
    dict(type='PackDetInputs'),
]"""
_YOLO_LETTERBOX = """[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),{early}
    dict(type='LetterBox', scale=(256, 256)),
    dict(type='RandomFlip', prob=0.5),{late}
    dict(type='PackDetInputs'),
]"""
_RTDETR_PIPELINE = """[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),{early}
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1),
         keep_empty=False),{late}
    dict(type='PackDetInputs'),
]"""


def _pipeline(template: str, early: str = '', late: str = '') -> str:
    """``train_dataloader`` with the template pipeline plus transforms
    before augmentation (``early``) and before packing (``late``)."""
    pad = '\n    '
    text = template.format(
        early=pad + early + ',' if early else '',
        late=pad + late + ',' if late else '')
    return f'train_dataloader = dict(dataset=dict(pipeline={text}))'


def _dataset(bug: str) -> str:
    return ("train_dataloader = dict(dataset=dict(type='MutShapesDataset', "
            f'bug={bug!r}))')


def _detection(task: str, template: str) -> List[Case]:
    """Mutants both detectors share: pipeline, dataset and preprocessor
    bugs."""
    boxes = 'box frame'
    return [
        Case(f'{task}/pipeline_boxes_xywh', boxes,
             _pipeline(template, late="dict(type='MutBoxesAs', fmt='xywh')"),
             imports=(DET, )),
        Case(f'{task}/pipeline_boxes_cxcywh', boxes,
             _pipeline(template,
                       late="dict(type='MutBoxesAs', fmt='cxcywh')"),
             imports=(DET, )),
        Case(f'{task}/pipeline_boxes_normalized', boxes,
             _pipeline(template,
                       late="dict(type='MutBoxesAs', fmt='normalized')"),
             imports=(DET, )),
        Case(f'{task}/pipeline_1_based_labels', 'labels',
             _pipeline(template, late="dict(type='MutLabelOffset')"),
             imports=(DET, )),
        Case(f'{task}/dataset_xywh_as_xyxy', boxes,
             _dataset('xywh_as_xyxy'), imports=(DET, ), first=0),
        Case(f'{task}/dataset_normalized_boxes', boxes,
             _dataset('normalized'), imports=(DET, ), first=0),
        Case(f'{task}/dataset_category_id_labels', 'labels',
             _dataset('category_id'), imports=(DET, ), first=0),
        Case(f'{task}/model_with_80_classes', 'labels',
             _num_classes(task, 80), first=0, causes=('class_count', )),
        Case(f'{task}/filter_removes_every_box', 'dropped batch keys',
             _pipeline(template, late="dict(type='FilterAnnotations', "
                       'min_gt_bbox_wh=(1000, 1000), keep_empty=True)'),
             first=3, causes=('label_mask', )),
        Case(f'{task}/std_1_raw_pixels', 'input normalization',
             'model = dict(data_preprocessor=dict(std=[1.0, 1.0, 1.0]))'),
        Case(f'{task}/no_preprocessor_normalization', 'input normalization',
             'model = dict(data_preprocessor=dict(mean=None, std=None))'),
        Case(f'{task}/normalize_transform_and_preprocessor',
             'input normalization',
             _pipeline(template, late="dict(type='Normalize', "
                       'mean=[123.675, 116.28, 103.53], '
                       'std=[58.395, 57.12, 57.375], to_rgb=True)') + '\n' +
             'model = dict(data_preprocessor=dict('
             'mean=[123.675, 116.28, 103.53], '
             'std=[58.395, 57.12, 57.375]))'),
        Case(f'{task}/image_scaled_twice', 'input normalization',
             _pipeline(template, late="dict(type='MutImageToUnit')"),
             imports=(DET, )),
    ]


def _num_classes(task: str, n: int) -> str:
    if task == 'yolo':
        return f'model = dict(fusion=dict(num_classes={n}))'
    return f'model = dict(criterion=dict(num_classes={n}))'


def _yolo_model(part: str, bug: str) -> str:
    if part == 'detector':
        return f"model = dict(type='MutPSALMYOLO', bug={bug!r})"
    if part == 'head':
        return (f"model = dict(bbox_head=dict(type='MutPSALMDualHead', "
                f'bug={bug!r}))')
    return ("model = dict(bbox_head=dict(loss=dict(type='MutYOLOv8DetLoss', "
            f'bug={bug!r})))')


def yolo() -> List[Case]:
    cases = generic('yolo', 'bbox_head.box_branches', num_classes=3)
    cases += _detection('yolo', _YOLO_MOSAIC)
    cases += [
        Case('yolo/letterbox_boxes_left_in_original_frame', 'box frame',
             _pipeline(_YOLO_LETTERBOX, early="dict(type='MutRememberBoxes')",
                       late="dict(type='MutRestoreBoxes')"),
             imports=(DET, )),
        Case('yolo/loss_copy_pixel_dfl_targets', 'target units',
             _yolo_model('loss', 'pixel_targets'), imports=(DET, )),
        Case('yolo/loss_copy_grid_anchors', 'box frame',
             _yolo_model('loss', 'grid_anchors'), imports=(DET, )),
        Case('yolo/loss_copy_grid_predictions', 'box frame',
             _yolo_model('loss', 'grid_predictions'), imports=(DET, )),
        Case('yolo/head_detaches_dfl', 'dead or detached terms',
             _yolo_model('head', 'detach_dfl'), imports=(DET, )),
        Case('yolo/head_cls_as_float', 'loss keys',
             _yolo_model('head', 'cls_as_float'), imports=(DET, )),
        Case('yolo/head_renames_cls', 'loss keys',
             _yolo_model('head', 'rename_cls'), imports=(DET, )),
        Case('yolo/head_renames_all', 'loss keys',
             _yolo_model('head', 'rename_all'), imports=(DET, )),
        Case('yolo/skip_neck', 'parameters outside the graph',
             _yolo_model('detector', 'skip_neck'), imports=(DET, )),
        Case('yolo/backbone_under_no_grad', 'parameters outside the graph',
             _yolo_model('detector', 'no_grad_backbone'), imports=(DET, )),
        Case('yolo/cls_weight_0', 'zero loss weights',
             'model = dict(bbox_head=dict(loss=dict(cls_weight=0.0)))',
             first=3),
        Case('yolo/all_weights_0', 'zero loss weights',
             'model = dict(bbox_head=dict(loss=dict(cls_weight=0.0, '
             'box_weight=0.0, dfl_weight=0.0)))'),
        Case('yolo/lr_x1000', 'divergence',
             'optim_wrapper = dict(optimizer=dict(lr=20.0))'),
    ]
    cases += [
        Case('yolo/clean', 'clean', iters=55),
        Case('yolo/clean_overfit_two_batches', 'clean',
             "train_dataloader = dict(dataset=dict(_delete_=True, "
             "type='FirstSamplesDataset', num_samples=8, times=40, "
             '''dataset={{_base_.train_dataloader.dataset}}), '''
             "sampler=dict(type='DefaultSampler', shuffle=False))\n"
             'param_scheduler = []', iters=55),
        Case('yolo/clean_amp_bf16', 'clean',
             "optim_wrapper = dict(type='AmpGradSanityOptimWrapper', "
             "dtype='bfloat16')", iters=20),
        Case('yolo/clean_letterbox_pipeline', 'clean',
             _pipeline(_YOLO_LETTERBOX), iters=20),
        Case('yolo/clean_p2_p5_s', 'clean',
             'model = dict(backbone=dict(out_indices=(1, 2, 3, 4), '
             'widen_factor=0.5))', iters=12),
        Case('yolo/clean_adamw_no_warm_up', 'clean',
             "optim_wrapper = dict(optimizer=dict(_delete_=True, "
             "type='AdamW', lr=1e-3, weight_decay=0.05))\n"
             'param_scheduler = []', iters=20),
        Case('yolo/clean_batch_2_grad_clip', 'clean',
             'train_dataloader = dict(batch_size=2)\n'
             'optim_wrapper = dict(clip_grad=dict(max_norm=10.0))',
             iters=20),
    ]
    return cases


def _preprocessor(bug: str) -> str:
    return ("model = dict(data_preprocessor=dict("
            f"type='MutRTDETRDataPreprocessor', bug={bug!r}))")


def rtdetr() -> List[Case]:
    cases = generic('rtdetr', 'decoder.bbox_heads', num_classes=3)
    cases += _detection('rtdetr', _RTDETR_PIPELINE)
    cases += [
        Case('rtdetr/preprocessor_skips_conversion', 'box frame',
             _preprocessor('no_conversion'), imports=(DET, )),
        Case('rtdetr/preprocessor_normalizes_by_image', 'box frame',
             _preprocessor('image_frame'), imports=(DET, )),
        Case('rtdetr/preprocessor_keeps_xyxy', 'box frame',
             _preprocessor('xyxy'), imports=(DET, )),
        Case('rtdetr/preprocessor_gives_xywh', 'box frame',
             _preprocessor('xywh'), imports=(DET, )),
        Case('rtdetr/vfl_weight_0', 'zero loss weights',
             'model = dict(criterion=dict(loss_cls=dict(loss_weight=0.0)))',
             first=3),
        Case('rtdetr/lr_x1000', 'divergence',
             'optim_wrapper = dict(optimizer=dict(lr=0.4))'),
    ]
    cases += [
        Case('rtdetr/clean', 'clean', iters=55),
        Case('rtdetr/clean_amp_bf16', 'clean',
             "optim_wrapper = dict(type='AmpGradSanityOptimWrapper', "
             "dtype='bfloat16')", iters=20),
        Case('rtdetr/clean_no_denoising_batch_2', 'clean',
             'model = dict(decoder=dict(denoising=None))\n'
             'train_dataloader = dict(batch_size=2)', iters=20),
        Case('rtdetr/clean_imagenet_mean_std', 'clean',
             'model = dict(data_preprocessor=dict('
             'mean=[123.675, 116.28, 103.53], '
             'std=[58.395, 57.12, 57.375]))', iters=20),
        Case('rtdetr/clean_frozen_stem', 'clean',
             'model = dict(backbone=dict(frozen_stages=1))', iters=20),
    ]
    return cases


AUDIO = 'benchmarks.mutations.mut_audio'


def _collate(name: str) -> str:
    return f"train_dataloader = dict(collate_fn=dict(type={name!r}))"


def audio() -> List[Case]:
    cases = generic('audio', 'lm', float_inputs=False)
    cases += [
        Case('audio/peft_label_filter', 'dropped batch keys',
             _collate('mut_audio_peft_filter_collate'), imports=(AUDIO, )),
        Case('audio/text_labels_masked', 'dropped batch keys',
             _collate('mut_audio_mask_text_collate'), imports=(AUDIO, ),
             first=3, causes=('label_mask', )),
        Case('audio/every_label_masked', 'dropped batch keys',
             _collate('mut_audio_mask_everything_collate'),
             imports=(AUDIO, ), causes=('label_mask', )),
        Case('audio/lora_injected_in_a_hook', 'missing from the optimizer',
             'model = dict(lora=None)\n'
             "custom_hooks = [dict(type='MutLateLoRAHook')]",
             imports=(AUDIO, )),
        Case('audio/audio_loss_detached', 'dead or detached terms',
             "model = dict(type='MutAudioLM', bug='detach_audio')",
             imports=(AUDIO, )),
        Case('audio/text_weight_0', 'zero loss weights',
             'model = dict(text_loss_weight=0.0)', first=3),
        Case('audio/all_weights_0', 'zero loss weights',
             'model = dict(text_loss_weight=0.0, audio_loss_weight=0.0)'),
        Case('audio/lr_x1000', 'divergence',
             'optim_wrapper = dict(optimizer=dict(lr=5.0))'),
    ]
    cases += [
        Case('audio/clean', 'clean', iters=60),
        Case('audio/clean_full_finetune', 'clean',
             'model = dict(lora=None)\n'
             'optim_wrapper = dict(optimizer=dict(lr=1e-3))', iters=30),
        Case('audio/clean_amp_bf16', 'clean',
             "optim_wrapper = dict(type='AmpGradSanityOptimWrapper', "
             "dtype='bfloat16')", iters=30),
        Case('audio/clean_accumulate_2', 'clean',
             'optim_wrapper = dict(accumulative_counts=2)', iters=30),
        Case('audio/clean_audio_ffn_only', 'clean',
             'model = dict(lora=dict(target_modules=dict(_delete_=True, '
             r"audio_ffn=r'layers\.\d+\.audio_mlp\..*')))", iters=30),
    ]
    return cases


RIS = 'benchmarks.mutations.mut_ris'


def ris() -> List[Case]:
    cases = generic('ris', 'net')
    cases += [
        Case('ris/half_labels_region_off', 'precision',
             "train_dataloader = dict(dataset=dict("
             "type='MutHalfLabelsRISDataset'))\n"
             'model = dict(fp32_loss_region=False)', imports=(RIS, )),
        Case('ris/plain_eigh_low_rank', 'precision',
             'model = dict(stabilize=False, residual=False, rank=2)'),
        Case('ris/plain_eigh_low_rank_bf16', 'precision',
             'model = dict(stabilize=False, residual=False, rank=2)\n'
             "optim_wrapper = dict(type='AmpGradSanityOptimWrapper', "
             "dtype='bfloat16')"),
        Case('ris/lr_x1000', 'divergence',
             'optim_wrapper = dict(optimizer=dict(lr=1.0))'),
    ]
    cases += [
        Case('ris/clean', 'clean', iters=60),
        Case('ris/clean_amp_bf16', 'clean',
             "optim_wrapper = dict(type='AmpGradSanityOptimWrapper', "
             "dtype='bfloat16')", iters=30),
        Case('ris/clean_not_residual_music', 'clean',
             'model = dict(residual=False, loss_weights=dict(music=0.5))',
             iters=30),
        Case('ris/clean_float64_loss', 'clean',
             "model = dict(loss_dtype='float64')", iters=30),
        Case('ris/clean_12x12_h100_config', 'clean',
             'train_dataloader = dict(batch_size=16, num_workers=0, '
             'persistent_workers=False)\n'
             'train_cfg = dict(val_interval=10**6)\n'
             'val_dataloader = None\nval_cfg = None\nval_evaluator = None\n'
             'default_hooks = dict(checkpoint=None)',
             iters=12, base='configs/ris/ris_upa12x12_h100.py'),
    ]
    return cases


def cases() -> List[Case]:
    return toy() + yolo() + rtdetr() + audio() + ris()
