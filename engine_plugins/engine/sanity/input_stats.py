"""Input statistics: the network input is normalized exactly once.

An image ``data_preprocessor`` (mmengine's ``ImgDataPreprocessor``, which
mmdet's ``DetDataPreprocessor`` extends) expects raw pixels in [0, 255]
and applies ``(x - mean) / std``. Its config therefore implies what the
network sees. The check compares that with the batch before the
preprocessor (what the pipeline produced) and after it (what the
network got):

* pixels already normalized, or already in [0, 1], before a preprocessor
  that normalizes again (a ``Normalize`` transform in the pipeline, or a
  loader that divides by 255) — normalized twice / scaled by 255 twice;
* raw 0-255 pixels reaching the network because the preprocessor does not
  normalize (no mean/std) — never normalized.

A preprocessor that is not an image preprocessor is not checked.
"""
from typing import Any, Optional, Sequence

import torch
from mmengine.model import ImgDataPreprocessor

from .errors import InputStatsError


def _stats(x: torch.Tensor) -> str:
    dims = [d for d in range(x.dim()) if d != (1 if x.dim() == 4 else 0)]
    mean = x.float().mean(dims).tolist()
    std = x.float().std(dims).tolist()
    fmt = ', '.join
    return (f'per-channel mean [{fmt(f"{m:.3g}" for m in mean)}], std '
            f'[{fmt(f"{s:.3g}" for s in std)}], range '
            f'[{float(x.min()):.3g}, {float(x.max()):.3g}]')


def _raw_range(raw: Any) -> Optional[Sequence[float]]:
    """``(min, max, is_float, std)`` of the images before the
    preprocessor."""
    items = raw if isinstance(raw, (list, tuple)) else [raw]
    items = [t for t in items if isinstance(t, torch.Tensor) and t.numel()]
    if not items:
        return None
    values = torch.cat([t.detach().float().flatten() for t in items])
    return (float(values.min()), float(values.max()),
            any(t.is_floating_point() for t in items), float(values.std()))


def check_input_statistics(preprocessor: Any, raw: Any,
                           inputs: Optional[torch.Tensor]) -> None:
    """Raise :class:`InputStatsError` when the images were normalized twice,
    scaled by 255 twice, or never normalized.

    Args:
        preprocessor: The model's data preprocessor.
        raw: The ``inputs`` of the batch before the preprocessor (a list of
            ``(C, H, W)`` tensors, or a batch tensor), or None.
        inputs: The preprocessed batch ``(B, C, H, W)``.
    """
    if not isinstance(preprocessor, ImgDataPreprocessor) or not isinstance(
            inputs, torch.Tensor) or inputs.dim() != 4:
        return
    raw_range = _raw_range(raw)
    if raw_range is None:
        return
    lo, hi, is_float, spread = raw_range
    normalizes = preprocessor._enable_normalize
    if normalizes:
        mean = preprocessor.mean.flatten().tolist()
        std = preprocessor.std.flatten().tolist()
        config = (f'data_preprocessor(mean={[round(m, 3) for m in mean]}, '
                  f'std={[round(s, 3) for s in std]})')
        # A preprocessor that divides by tens or more expects 0-255 pixels.
        expects_pixels = min(std) >= 10
    else:
        config = 'data_preprocessor without mean/std'
        expects_pixels = False
    if expects_pixels and is_float and hi <= 20 and lo < 0:
        raise InputStatsError(
            f'the images reach the data preprocessor already normalized '
            f'(values in [{lo:.3g}, {hi:.3g}]: a Normalize transform in the '
            f'pipeline?) and {config} normalizes them again: the network '
            f'input has {_stats(inputs)}. Normalize in one place: remove '
            'the pipeline transform, or the preprocessor mean/std')
    if not is_float and hi <= 1:
        raise InputStatsError(
            f'the images are integers holding only {lo:g}..{hi:g} before the '
            'data preprocessor: they were divided by 255 (or thresholded) '
            'and cast back to an integer type, which leaves little but '
            f'zeros (network input {_stats(inputs)}). Cast to float before '
            'dividing, or leave the scaling to the preprocessor')
    if spread == 0:
        raise InputStatsError(
            f'every image of the batch is one constant value ({lo:.3g}) '
            f'before the data preprocessor: the network input has '
            f'{_stats(inputs)}. A loader or transform destroyed the images '
            '(a cast, a crop outside the image, a fill)')
    if expects_pixels and hi <= 1.0 + 1e-3:
        what = (f'already scaled to [{lo:.3g}, {hi:.3g}] (the loader or a '
                'transform divided by 255)' if is_float else
                f'holding only {lo:g}..{hi:g}: integer images divided by '
                '255 and cast back to an integer type')
        raise InputStatsError(
            f'the images reach the data preprocessor {what}, and {config} '
            f'divides by the 255 range again: the network input has '
            f'{_stats(inputs)}. Scale in one place')
    out_hi = (hi - min(mean)) / min(std) if normalizes else hi
    if hi > 20 and out_hi > 20:
        raise InputStatsError(
            f'raw pixel values reach the network: the images are in '
            f'[{lo:.3g}, {hi:.3g}] and {config} does not scale them (network '
            f'input {_stats(inputs)}). Set data_preprocessor mean/std, e.g. '
            'mean=[0, 0, 0], std=[255, 255, 255] for [0, 1] inputs')
