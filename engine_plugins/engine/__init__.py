"""The sanity engine: FP32 loss regions, grad-sanity optim wrappers and the
hooks that configure them."""
from .fp32_region import cast_floating, fp32_region
from .hooks import FP32LossRegionHook, GradSanityHook, PreflightHook
from .optim_wrappers import AmpGradSanityOptimWrapper, GradSanityOptimWrapper
from .overfit import OverfitCheckHook, make_overfit_config
from .sanity import (DeadLossError, NoGradientError, NonFiniteGradError,
                     TooManySkippedStepsError, TrainingSanityError)

__all__ = [
    'fp32_region', 'cast_floating', 'FP32LossRegionHook', 'GradSanityHook',
    'PreflightHook', 'OverfitCheckHook', 'make_overfit_config',
    'GradSanityOptimWrapper', 'AmpGradSanityOptimWrapper', 'DeadLossError',
    'NoGradientError', 'NonFiniteGradError', 'TooManySkippedStepsError',
    'TrainingSanityError'
]
