"""The causes the sanity engine names, one code each.

Every finding (error, warning or note) carries one of these codes, in the
exception it raises and in the event log (see :mod:`.events`). Each cause
says what the code means, what usually fixes it, and where to look; the
README's troubleshooting table and ``tools/diagnose.py`` use the same
words.
"""
from typing import Dict, NamedTuple


class Cause(NamedTuple):
    title: str
    fix: str
    where: str = ''


CAUSES: Dict[str, Cause] = {
    'dead_loss':
    Cause(
        'loss terms cannot produce gradients (detached, leaf or all zero)',
        'compute every term from the model outputs; an all-zero loss usually '
        'means predictions were never matched to targets',
        "the model's loss function (the term named)"),
    'frozen':
    Cause(
        'every parameter is frozen (requires_grad=False)',
        'unfreeze what should train (frozen_stages, requires_grad_, PEFT '
        'target_modules)',
        'frozen_stages, requires_grad_ in hooks, paramwise_cfg lr_mult, PEFT '
        'target_modules'),
    'no_gradient':
    Cause(
        'trainable parameters get no gradient',
        'make the loss depend on the model outputs; remove unused modules or '
        'freeze them',
        "the model's forward: modules it builds but does not call, "
        'torch.no_grad blocks'),
    'optimizer_coverage':
    Cause(
        "the optimizer does not hold the model's trainable parameters",
        'build or modify the model (adapters, replaced layers) before the '
        'optimizer is built, i.e. in the model config, not in a hook',
        'custom_hooks and init_weights that change the model, '
        'optim_wrapper.constructor'),
    'no_update':
    Cause(
        'the optimizer step changes no weight (lr 0 or scheduler at 0)',
        'set optimizer.lr > 0 and check param_scheduler factors and '
        'paramwise_cfg lr_mult',
        'optim_wrapper.optimizer.lr, param_scheduler, paramwise_cfg lr_mult, '
        'accumulative_counts'),
    'divergence':
    Cause(
        'loss or gradient norm grows by orders of magnitude',
        'lower the learning rate, lengthen the warm-up, or clip gradients '
        '(optim_wrapper.clip_grad)',
        'optim_wrapper.optimizer.lr, param_scheduler (warm-up), '
        'optim_wrapper.clip_grad'),
    'nonfinite_forward':
    Cause(
        'NaN/Inf in the forward pass (the loss)',
        'look at the named term and module: log of 0, division by 0, '
        'exploding activations',
        'the module the message names, and its inputs'),
    'nonfinite_backward':
    Cause(
        'finite loss, NaN/Inf gradients (backward or precision problem)',
        'run the loss in an FP32 loss region, cast labels too, guard '
        'eigh/solve against degenerate inputs',
        'the loss (FP32 loss region, eigh/solve), AMP dtype'),
    'nonfinite_data':
    Cause(
        'NaN/Inf in the input batch',
        'fix the named sample or the transform that produced it',
        'the named sample and train_dataloader.dataset.pipeline'),
    'nonfinite_weights':
    Cause(
        'model weights became NaN/Inf',
        'the run diverged; lower the lr and resume from the last finite '
        'checkpoint',
        'optim_wrapper.optimizer.lr; the last finite checkpoint'),
    'batch_contract':
    Cause(
        'inputs the model needs were dropped before the model',
        'keep the keys end to end; never filter batch keys by the signature '
        'of forward',
        'train_dataloader.collate_fn, the pipeline, key filters'),
    'label_range':
    Cause(
        'class labels outside [0, num_classes)',
        'fix the label map: 0-based contiguous ids, background left to the '
        'loss',
        'the dataset label map (cat2label), model num_classes'),
    'box_format':
    Cause(
        'boxes in the wrong format or frame',
        'convert once, at the data boundary: pixel xyxy in the network input '
        'frame for the dataset, one converter for the model',
        'train_dataloader.dataset.pipeline, model.data_preprocessor'),
    'annotation_format':
    Cause(
        'annotation file boxes or ids in another convention',
        'COCO bbox is [x, y, w, h] in pixels with 1 or more pixels of width '
        'and height; fix the converter that wrote the file',
        'train_dataloader.dataset.ann_file and the script that wrote it'),
    'class_count':
    Cause(
        "the model's class count differs from the dataset's",
        "set the model's num_classes or the dataset's metainfo classes",
        'model num_classes, dataset metainfo classes'),
    'target_units':
    Cause(
        'regression targets in the wrong units (saturating a clamp)',
        'DFL/box targets are anchor-to-edge distances in stride units',
        "the loss's target encoding (stride units, clamp limits), the labels"),
    'label_mask':
    Cause(
        'no supervised targets in the batch (labels all ignored)',
        'check the label masking (ignore_index -100) and the keys that carry '
        'the labels',
        'label masking in the collate function or dataset'),
    'loss_dict':
    Cause(
        'the loss dict is empty, holds non-tensors, or hides a term',
        "return tensors under keys containing 'loss' (mmengine sums only "
        'those)',
        "the keys the model's loss returns"),
    'zero_weight':
    Cause(
        'a loss term is exactly 0 at every checked iteration',
        'check its loss weight; remove a term you disabled on purpose',
        'model loss weights (loss_weight, *_weight)'),
    'input_normalization':
    Cause(
        'network input normalized twice, never, or scaled by 255 twice',
        'normalize in one place: data_preprocessor mean/std, with no '
        'Normalize transform in the pipeline',
        'model.data_preprocessor mean/std and the pipeline'),
    'precision':
    Cause(
        'half precision or a degenerate spectrum in eigen/linalg code',
        'run the loss in an FP32 loss region; add diagonal loading or a gap-'
        'regularized eigh',
        'optim_wrapper dtype, FP32LossRegionHook, the loss dtype'),
    'unknown':
    Cause(
        'unclassified',
        'read the message',
        'the message'),
}


def describe(cause: str) -> Cause:
    """The :class:`Cause` of a code (``unknown`` for an unknown code)."""
    return CAUSES.get(cause, CAUSES['unknown'])
