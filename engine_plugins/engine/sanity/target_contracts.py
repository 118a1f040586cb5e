"""The mechanism by which data contracts declare their target checks.

The sanity engine checks the ground truth of every batch against the
contract its model declares (``model.box_format``), and the dataset side of
detection batches against the dataset contract, without knowing what the
contracts are: a contract registers a check under its name, and the engine
looks the name up. The built-in contracts (``engine_plugins.structures``)
are loaded at the first lookup.

Example::

    @register_target_contract('xyxy_pixel')
    def check(data_samples, num_classes):
        ...  # raise TargetFormatError naming the sample and instance
"""
import importlib
from typing import Any, Callable, Dict, Sequence

TargetCheck = Callable[[Sequence[Any], int], None]
_CONTRACTS: Dict[str, TargetCheck] = {}
# Where the built-in contracts register themselves.
_BUILT_IN = 'engine_plugins.structures'


def register_target_contract(name: str) -> Callable[[TargetCheck],
                                                    TargetCheck]:
    """Register ``check(data_samples, num_classes)`` under ``name``."""

    def register(check: TargetCheck) -> TargetCheck:
        _CONTRACTS[name] = check
        return check

    return register


def target_contract(name: str) -> TargetCheck:
    """The check registered under ``name``.

    Raises:
        ValueError: no contract has that name; the message lists those
            that exist.
    """
    if name not in _CONTRACTS:
        importlib.import_module(_BUILT_IN)
    if name not in _CONTRACTS:
        raise ValueError(f'box_format must be one of {sorted(_CONTRACTS)}, '
                         f'got {name!r}')
    return _CONTRACTS[name]
