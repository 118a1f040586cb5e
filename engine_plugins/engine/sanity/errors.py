"""Exceptions raised by the sanity engine.

Each message names the cause and the place. Each exception carries a
``cause``: one code of :data:`~engine_plugins.engine.sanity.causes.CAUSES`,
the same code the event log records, so tools can rank findings without
parsing messages. The class says which check fired.
"""
from typing import Optional


class TrainingSanityError(RuntimeError):
    """Base class: a training run that cannot learn was stopped.

    Args:
        message: What was found, where, and what to do.
        cause: A cause code; defaults to the class's ``cause``.
    """

    cause = 'unknown'

    def __init__(self, message: str, cause: Optional[str] = None) -> None:
        super().__init__(message)
        if cause is not None:
            self.cause = cause


class DeadLossError(TrainingSanityError):
    """The loss, or some of its terms, cannot produce gradients."""

    cause = 'dead_loss'


class NoGradientError(TrainingSanityError):
    """Backward ran but no trainable parameter received a gradient."""

    cause = 'no_gradient'


class NonFiniteLossError(TrainingSanityError):
    """The forward pass produced a NaN/Inf loss."""

    cause = 'nonfinite_forward'


class NonFiniteGradError(TrainingSanityError):
    """Gradients contain NaN/Inf (with a finite loss, this is a backward
    problem: half-precision math, eigh on degenerate spectra, ...)."""

    cause = 'nonfinite_backward'


class NonFiniteWeightsError(TrainingSanityError):
    """Model weights became NaN/Inf."""

    cause = 'nonfinite_weights'


class TooManySkippedStepsError(TrainingSanityError):
    """The skip-step policy skipped more consecutive steps than allowed."""

    cause = 'nonfinite_forward'


class DivergenceError(TrainingSanityError):
    """Loss or gradient norm grew by orders of magnitude."""

    cause = 'divergence'


class OptimizerCoverageError(TrainingSanityError):
    """Trainable parameters missing from the optimizer, or optimizer
    parameters that are not the model's."""

    cause = 'optimizer_coverage'


class NoUpdateError(TrainingSanityError):
    """The optimizer step left every weight unchanged."""

    cause = 'no_update'


class HealthStatError(TrainingSanityError):
    """A statistic a loss publishes left its declared range."""

    cause = 'health_stat'


class BatchContractError(TrainingSanityError):
    """A key the model requires is missing or empty."""

    cause = 'batch_contract'


class TargetFormatError(TrainingSanityError):
    """Detection targets break the label or box contract."""

    cause = 'box_format'


class LossRangeError(TrainingSanityError):
    """A loss term starts at a clamp limit or stays stuck at one value."""

    cause = 'target_units'


class LossDictError(TrainingSanityError):
    """The model's loss dict cannot be optimised as returned."""

    cause = 'loss_dict'


class InputStatsError(TrainingSanityError):
    """The network input is not normalized the way the data preprocessor
    is configured to normalize it."""

    cause = 'input_normalization'


class PrecisionError(TrainingSanityError, TypeError):
    """Half precision reached code that needs float32 or wider."""

    cause = 'precision'
