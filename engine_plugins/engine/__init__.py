"""The sanity engine: FP32 loss regions, grad-sanity optim wrappers and the
hooks that configure them."""
from .fp32_region import cast_floating, fp32_region
from .hooks import FP32LossRegionHook, GradSanityHook, PreflightHook
from .optim_wrappers import AmpGradSanityOptimWrapper, GradSanityOptimWrapper
from .sanity import (DeadLossError, NoGradientError, NonFiniteGradError,
                     TooManySkippedStepsError, TrainingSanityError)

__all__ = [
    'fp32_region', 'cast_floating', 'FP32LossRegionHook', 'GradSanityHook',
    'PreflightHook', 'GradSanityOptimWrapper', 'AmpGradSanityOptimWrapper',
    'DeadLossError', 'NoGradientError', 'NonFiniteGradError',
    'TooManySkippedStepsError', 'TrainingSanityError'
]
