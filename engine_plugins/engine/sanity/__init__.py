from .errors import (DeadLossError, NoGradientError, NonFiniteGradError,
                     TooManySkippedStepsError, TrainingSanityError)

__all__ = [
    'DeadLossError', 'NoGradientError', 'NonFiniteGradError',
    'TooManySkippedStepsError', 'TrainingSanityError'
]
