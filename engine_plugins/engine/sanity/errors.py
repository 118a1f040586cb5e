"""Exceptions raised by the sanity engine. Each message names the cause and
the place; the class says which check fired."""


class TrainingSanityError(RuntimeError):
    """Base class: a training run that cannot learn was stopped."""


class DeadLossError(TrainingSanityError):
    """The loss, or some of its terms, cannot produce gradients."""


class NoGradientError(TrainingSanityError):
    """Backward ran but no trainable parameter received a gradient."""


class NonFiniteGradError(TrainingSanityError):
    """Gradients contain NaN/Inf (with a finite loss, this is a backward
    problem: half-precision math, eigh on degenerate spectra, ...)."""


class TooManySkippedStepsError(TrainingSanityError):
    """The skip-step policy skipped more consecutive steps than allowed."""
