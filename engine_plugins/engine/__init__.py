"""The sanity engine: FP32 loss regions, the grad-sanity optim wrappers and
the hook that runs the checks."""
from .fp32_region import cast_floating, fp32_region
from .hooks import FP32LossRegionHook, SanityHook
from .optim_wrappers import AmpGradSanityOptimWrapper, GradSanityOptimWrapper
from .overfit import OverfitCheckHook, make_overfit_config
from .sanity import (DeadLossError, DivergenceError, HealthStat,
                     NoGradientError, NonFiniteGradError, NonFiniteLossError,
                     NoUpdateError, OptimizerCoverageError,
                     TooManySkippedStepsError, TrainingSanityError)

__all__ = [
    'fp32_region', 'cast_floating', 'FP32LossRegionHook', 'SanityHook',
    'OverfitCheckHook', 'make_overfit_config', 'GradSanityOptimWrapper',
    'AmpGradSanityOptimWrapper', 'DeadLossError', 'DivergenceError',
    'HealthStat', 'NoGradientError', 'NonFiniteGradError',
    'NonFiniteLossError', 'NoUpdateError', 'OptimizerCoverageError',
    'TooManySkippedStepsError', 'TrainingSanityError'
]
