from .causes import CAUSES, describe
from .errors import (BatchContractError, DeadLossError, DivergenceError,
                     HealthStatError, InputStatsError, LossDictError,
                     LossRangeError, NoGradientError, NonFiniteGradError,
                     NonFiniteLossError, NonFiniteWeightsError, NoUpdateError,
                     OptimizerCoverageError, PrecisionError, TargetFormatError,
                     TooManySkippedStepsError, TrainingSanityError)
from .health import HEALTH_STATS, HealthStat

__all__ = [
    'CAUSES', 'describe', 'HEALTH_STATS', 'HealthStat', 'BatchContractError',
    'DeadLossError', 'DivergenceError', 'HealthStatError', 'InputStatsError',
    'LossDictError', 'LossRangeError', 'NoGradientError', 'NonFiniteGradError',
    'NonFiniteLossError', 'NonFiniteWeightsError', 'NoUpdateError',
    'OptimizerCoverageError', 'PrecisionError', 'TargetFormatError',
    'TooManySkippedStepsError', 'TrainingSanityError'
]
