"""Loss terms and health statistics over the strict window.

Two failures only show across batches: a term stuck at one value (a
saturated clamp gives no gradient) and a term that is always exactly 0
(a loss weight of 0, or no supervised targets). A term that is 0 while a
statistic declared as its target count (``HealthStat(targets_of=...)``)
is positive shows at once: its weight is 0.
"""
from typing import Dict, List, Mapping, Tuple

from . import health
from .grad_report import summarize


def _targets(stat_key: str) -> Tuple[str, ...]:
    stat = health.stat_for(stat_key)
    return tuple(getattr(stat, 'targets_of', None) or ())


def counts_targets_of(stat_key: str, term: str) -> bool:
    """Whether the statistic counts the targets of ``term`` (matched by
    suffix: ``'loss_bbox'`` covers ``'d0.loss_bbox'``)."""
    return any(term.endswith(t) for t in _targets(stat_key))


class TermHistory:
    """Values of the loss terms and health statistics, step by step."""

    def __init__(self) -> None:
        self.values: Dict[str, List[float]] = {}

    def add(self, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            if 'loss' in key or health.stat_for(key) is not None:
                self.values.setdefault(key, []).append(value)

    @staticmethod
    def zero_with_targets(
            values: Mapping[str, float]) -> List[Tuple[str, str, float]]:
        """``(term, statistic, count)`` for terms exactly 0 in this step
        although a declared target count is positive."""
        found = []
        for term, value in values.items():
            if 'loss' not in term or value != 0:
                continue
            for key, count in values.items():
                if count > 0 and counts_targets_of(key, term):
                    found.append((term, key, count))
                    break
        return found

    def verdict(self) -> Tuple[List[str], List[str], List[str]]:
        """``(stuck, unsupervised, zero)`` over the recorded steps:
        ``'loss_dfl = 10'`` terms that never changed; zero terms whose
        declared target count was 0 too; the other always-zero terms."""
        terms = {k: v for k, v in self.values.items() if 'loss' in k}
        stuck, zero = [], []
        for key, history in terms.items():
            if len(history) < 2:
                continue
            if all(v == 0 for v in history):
                zero.append(key)
            elif max(history) - min(history) <= 1e-6 * abs(history[0]):
                stuck.append(f'{key} = {history[0]:.6g}')
        unsupervised, explained = [], set()
        for key in zero:
            for stat, history in self.values.items():
                if counts_targets_of(stat, key) and all(v == 0
                                                        for v in history):
                    unsupervised.append(f'{key} (and {stat} = 0)')
                    explained.add(key)
                    break
        return stuck, unsupervised, [k for k in zero if k not in explained]

    @property
    def num_terms(self) -> int:
        return sum('loss' in k for k in self.values)

    def findings(self, values: Mapping[str, float], iteration: int,
                 window: int) -> List[Tuple[str, str, str, str]]:
        """``(kind, cause, message, once)`` for this strict step: zero
        terms with targets at once; at the window's end, stuck terms
        (``'error'``), unsupervised and always-zero terms (warnings: a
        term can lack targets or weight by design)."""
        where = f'loss check at iteration {iteration}: '
        found = [('warning', 'zero_weight',
                  f'{where}{term} = 0.0 although the batch has targets for '
                  f'it ({stat} = {count:.6g}): its loss weight is 0. Remove '
                  'a term you disabled on purpose', f'zero:{term}')
                 for term, stat, count in self.zero_with_targets(values)]
        self.add(values)
        if iteration != window or window < 2:
            return found
        stuck, unsupervised, zero = self.verdict()
        if stuck:
            found.append(
                ('error', 'target_units',
                 f'{where}{summarize(stuck)} on each of the first {window} '
                 'iterations: a term that does not change from batch to '
                 'batch gives no gradient; it is stuck at a clamp or '
                 "saturation. Check its targets' units and range (e.g. DFL "
                 'targets are anchor-to-edge distances in stride units)',
                 'stuck'))
        if unsupervised:
            found.append(
                ('warning', 'label_mask',
                 f'{where}{summarize(unsupervised)} = 0.0 on each of the '
                 f'first {window} iterations: the term has no supervised '
                 'targets (every label is the ignore index): check the label '
                 'masking, or set its weight to 0 and remove it if that is '
                 'intended', 'unsupervised'))
        if zero and len(zero) < self.num_terms:
            found.append(
                ('warning', 'zero_weight',
                 f'{where}{summarize(zero)} = 0.0 on each of the first '
                 f'{window} iterations while connected to the model: a loss '
                 'weight of 0, or a term that never has targets. Remove a '
                 'term you disabled on purpose', 'zero_terms'))
        return found
