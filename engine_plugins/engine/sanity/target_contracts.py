"""The mechanism by which data contracts declare their target checks.

The sanity engine checks the ground truth of every batch against the
contract its model declares (``model.box_format``), and the dataset side of
every batch against the contract datasets deliver, without knowing what the
contracts are: a contract registers a check under its name, and the engine
looks the name up. A dataset contract also tells the engine how to count a
batch's targets and how to word the findings when targets go missing
(:class:`DatasetContract`); the engine keeps the accounting (a batch
without targets, none in the first batches). The built-in contracts
(``engine_plugins.structures``) are loaded at the first lookup.

Example::

    @register_target_contract('xyxy_pixel')
    def check(data_samples, num_classes):
        ...  # raise TargetFormatError naming the sample and instance

    register_dataset_contract(DatasetContract(
        'xyxy_pixel', count=count_boxes,
        none_in_first='no gt box in any of the first {batches} batches: ...',
        all_ignored='... {ignored} boxes are in ignored_instances ...',
        none_in_batch='none of the {images} images ... {fraction:.0%} ...'))
"""
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

TargetCheck = Callable[[Sequence[Any], int], None]
_CONTRACTS: Dict[str, TargetCheck] = {}


class TargetCount(NamedTuple):
    """Targets of one batch: kept, and marked ignored."""
    targets: int
    ignored: int


@dataclass(frozen=True)
class DatasetContract:
    """What datasets deliver, as the engine needs to know it.

    Attributes:
        name: The registered target check every batch is held to.
        count: ``count(data_samples)``: the batch's :class:`TargetCount`,
            or None when the samples do not carry this contract's targets
            (or carry them on the device, where counting would sync).
        none_in_first: Finding when the first ``{batches}`` batches hold no
            target at all.
        all_ignored: Finding when a batch has no target but ``{ignored}``
            ignored ones.
        none_in_batch: Finding when none of a batch's ``{images}`` samples
            has a target although a ``{fraction}`` of the annotated ones do.
    """
    name: str
    count: Callable[[Sequence[Any]], Optional[TargetCount]]
    none_in_first: str
    all_ignored: str
    none_in_batch: str


_DATASET_CONTRACTS: List[DatasetContract] = []


def register_dataset_contract(contract: DatasetContract) -> DatasetContract:
    """Hold every batch's data samples to ``contract`` (its ``name`` must
    be a registered target check by the time a batch arrives)."""
    _DATASET_CONTRACTS[:] = [
        c for c in _DATASET_CONTRACTS if c.name != contract.name
    ] + [contract]
    return contract


def dataset_contracts() -> List[DatasetContract]:
    """The registered dataset contracts (the built-in ones included)."""
    importlib.import_module(_BUILT_IN)
    return list(_DATASET_CONTRACTS)


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
