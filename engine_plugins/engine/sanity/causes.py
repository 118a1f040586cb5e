"""The causes the sanity engine names, one code each.

Every finding (error, warning or note) carries one of these codes, in the
exception it raises and in the event log (see :mod:`.events`). The text
says what the code means and what usually fixes it; the README's
troubleshooting table and the diagnosis tools use the same words.
"""
from typing import Dict, NamedTuple


class Cause(NamedTuple):
    title: str
    fix: str


CAUSES: Dict[str, Cause] = {
    'dead_loss':
    Cause(
        'loss terms cannot produce gradients (detached, leaf or all zero)',
        'compute every term from the model outputs; an all-zero loss '
        'usually means predictions were never matched to targets'),
    'frozen':
    Cause(
        'every parameter is frozen (requires_grad=False)',
        'unfreeze what should train (frozen_stages, requires_grad_, PEFT '
        'target_modules)'),
    'no_gradient':
    Cause(
        'trainable parameters get no gradient',
        'make the loss depend on the model outputs; remove unused modules '
        'or freeze them'),
    'optimizer_coverage':
    Cause(
        'the optimizer does not hold the model\'s trainable parameters',
        'build or modify the model (adapters, replaced layers) before the '
        'optimizer is built, i.e. in the model config, not in a hook'),
    'no_update':
    Cause(
        'the optimizer step changes no weight (lr 0 or scheduler at 0)',
        'set optimizer.lr > 0 and check param_scheduler factors and '
        'paramwise_cfg lr_mult'),
    'divergence':
    Cause(
        'loss or gradient norm grows by orders of magnitude',
        'lower the learning rate, lengthen the warm-up, or clip gradients '
        '(optim_wrapper.clip_grad)'),
    'nonfinite_forward':
    Cause(
        'NaN/Inf in the forward pass (the loss)',
        'look at the named term and module: log of 0, division by 0, '
        'exploding activations'),
    'nonfinite_backward':
    Cause(
        'finite loss, NaN/Inf gradients (backward or precision problem)',
        'run the loss in an FP32 loss region, cast labels too, guard '
        'eigh/solve against degenerate inputs'),
    'nonfinite_data':
    Cause('NaN/Inf in the input batch', 'fix the named sample or the '
          'transform that produced it'),
    'nonfinite_weights':
    Cause(
        'model weights became NaN/Inf', 'the run diverged; lower the lr '
        'and resume from the last finite checkpoint'),
    'batch_contract':
    Cause(
        'inputs the model needs were dropped before the model',
        'keep the keys end to end; never filter batch keys by the '
        "signature of forward"),
    'label_range':
    Cause(
        'class labels outside [0, num_classes)',
        'fix the label map: 0-based contiguous ids, background left to '
        'the loss'),
    'box_format':
    Cause(
        'boxes in the wrong format or frame',
        'convert once, at the data boundary: pixel xyxy in the network '
        'input frame for the dataset, one converter for the model'),
    'annotation_format':
    Cause(
        'annotation file boxes or ids in another convention',
        'COCO bbox is [x, y, w, h] in pixels with 1 or more pixels of '
        'width and height; fix the converter that wrote the file'),
    'class_count':
    Cause("the model's class count differs from the dataset's",
          "set the model's num_classes or the dataset's metainfo classes"),
    'target_units':
    Cause('regression targets in the wrong units (saturating a clamp)',
          'DFL/box targets are anchor-to-edge distances in stride units'),
    'label_mask':
    Cause(
        'no supervised targets in the batch (labels all ignored)',
        'check the label masking (ignore_index -100) and the keys that '
        'carry the labels'),
    'loss_dict':
    Cause(
        'the loss dict is empty, holds non-tensors, or hides a term',
        "return tensors under keys containing 'loss' (mmengine sums only "
        'those)'),
    'zero_weight':
    Cause('a loss term is exactly 0 at every checked iteration',
          'check its loss weight; remove a term you disabled on purpose'),
    'input_normalization':
    Cause(
        'network input normalized twice, never, or scaled by 255 twice',
        'normalize in one place: data_preprocessor mean/std, with no '
        'Normalize transform in the pipeline'),
    'precision':
    Cause(
        'half precision or a degenerate spectrum in eigen/linalg code',
        'run the loss in an FP32 loss region; add diagonal loading or a '
        'gap-regularized eigh'),
    'unknown':
    Cause('unclassified', 'read the message'),
}


def describe(cause: str) -> Cause:
    """The :class:`Cause` of a code (``unknown`` for an unknown code)."""
    return CAUSES.get(cause, CAUSES['unknown'])
