"""The mutation catalog: broken setups (mutants) and clean runs.

A case is a config that inherits one of the benchmark bases
(``benchmarks/mutations/bases/``) and adds config lines, and where the bug
needs code, parts from the ``mut_*`` modules loaded with
``custom_imports`` (a hook, a subclass, a transform), as a user would.

Each mutant names its category, the cause codes a correct diagnosis may
give, and ``first``: the first iteration at which the bug can show (0:
before training, in the data or the config as built).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

BASES = ('toy', 'yolo', 'rtdetr', 'audio', 'ris')

CATEGORIES: Dict[str, Tuple[str, ...]] = {
    'dead or detached terms': ('dead_loss', ),
    'parameters outside the graph': ('no_gradient', ),
    'frozen everything': ('frozen', 'no_update'),
    'missing from the optimizer': ('optimizer_coverage', ),
    'lr 0': ('no_update', ),
    'divergence': ('divergence', 'nonfinite_weights'),
    'non-finite at iteration k > 3': ('nonfinite_forward',
                                      'nonfinite_backward',
                                      'nonfinite_data'),
    'labels': ('label_range', ),
    'box frame': ('box_format', 'annotation_format'),
    'target units': ('target_units', ),
    'dropped batch keys': ('batch_contract', 'label_mask'),
    'loss keys': ('loss_dict', ),
    'zero loss weights': ('zero_weight', 'dead_loss'),
    'precision': ('precision', 'nonfinite_backward'),
    'input normalization': ('input_normalization', ),
    'clean': (),
}


@dataclass
class Case:
    """One run of the benchmark.

    Attributes:
        name: Unique, ``<base>/<what>``.
        category: A key of :data:`CATEGORIES`.
        config: Config lines added after ``_base_``.
        first: First iteration at which the bug can show.
        iters: Iterations to run.
        imports: Modules for ``custom_imports``.
        causes: Accepted cause codes (default: the category's).
        base: Base config path, if not ``bases/<base>.py``.
    """
    name: str
    category: str
    config: str = ''
    first: int = 1
    iters: int = 8
    imports: Tuple[str, ...] = ()
    causes: Tuple[str, ...] = ()
    base: str = ''
    notes: str = field(default='', repr=False)

    @property
    def task(self) -> str:
        return self.name.split('/')[0]

    @property
    def accepted(self) -> Tuple[str, ...]:
        return self.causes or CATEGORIES[self.category]


COMMON = 'benchmarks.mutations.common'


def generic(task: str,
            layer: str,
            num_classes: int = 0,
            float_inputs: bool = True) -> List[Case]:
    """Mutants of the task-agnostic kinds, on ``task``; ``layer`` is a
    module path with a Linear/Conv2d to hook; ``float_inputs``: the batch
    has float ``inputs`` that a corrupted sample can make NaN."""
    hook = 'custom_hooks = [dict(type={!r}{})]'.format
    cases = [
        Case(f'{task}/freeze_all_in_a_hook', 'frozen everything',
             hook('MutFreezeAll', ''), imports=(COMMON, )),
        Case(f'{task}/lr_mult_0_everywhere', 'frozen everything',
             "optim_wrapper = dict(paramwise_cfg=dict(_delete_=True, "
             "custom_keys={'': dict(lr_mult=0.0)}))"),
        Case(f'{task}/adapter_injected_by_a_hook',
             'missing from the optimizer',
             hook('MutInjectAdapter', f', path={layer!r}'),
             imports=(COMMON, )),
        Case(f'{task}/weight_replaced_by_a_hook',
             'missing from the optimizer',
             hook('MutReplaceWeight', f', path={layer!r}'),
             imports=(COMMON, )),
        Case(f'{task}/optimizer_over_a_copy', 'missing from the optimizer',
             "optim_wrapper = dict(constructor='MutCopyOptimConstructor')",
             imports=(COMMON, )),
        Case(f'{task}/lr_0', 'lr 0',
             'optim_wrapper = dict(optimizer=dict(lr=0.0))'),
        Case(f'{task}/scheduler_at_0', 'lr 0',
             'param_scheduler = [dict(type="ConstantLR", factor=0.0, '
             'by_epoch=False, begin=0, end=100000)]',
             first=2),
        Case(f'{task}/inf_activation_at_6', 'non-finite at iteration k > 3',
             hook('MutInfActivationAt', f', at=6, path={layer!r}'),
             first=6, iters=10, imports=(COMMON, ),
             causes=('nonfinite_forward', )),
        Case(f'{task}/nan_backward_at_4', 'non-finite at iteration k > 3',
             hook('MutNaNGradAt', f', at=4, path={layer!r}'),
             first=4, iters=8, imports=(COMMON, ),
             causes=('nonfinite_backward', )),
    ]
    if float_inputs:
        cases.append(
            Case(f'{task}/nan_sample_at_5', 'non-finite at iteration k > 3',
                 hook('MutNaNInputsAt', ', at=5'), first=5, iters=9,
                 imports=(COMMON, ), causes=('nonfinite_data', )))
    if num_classes:
        cases += [
            Case(f'{task}/late_batch_1_based', 'labels',
                 hook('MutLabelsAt', f", at=7, mode='plus1', "
                      f'num_classes={num_classes}'),
                 first=7, iters=10, imports=(COMMON, )),
            Case(f'{task}/late_ignore_label', 'labels',
                 hook('MutLabelsAt', f", at=6, mode='minus1', "
                      f'num_classes={num_classes}'),
                 first=6, iters=9, imports=(COMMON, )),
            Case(f'{task}/late_background_label', 'labels',
                 hook('MutLabelsAt', f", at=4, mode='num_classes', "
                      f'num_classes={num_classes}'),
                 first=4, iters=8, imports=(COMMON, )),
        ]
    return cases


def all_cases(which: str = 'main') -> List[Case]:
    """The cases of a set: ``'main'`` (the mutants written alongside the
    checks, and the clean runs), ``'heldout'`` (mutants written without
    reading the checks, see ``heldout/``) or ``'all'``."""
    from . import catalog_tasks
    from .heldout import cases as heldout
    from .heldout2 import cases as heldout2
    from .heldout3 import cases as heldout3
    sets = dict(main=catalog_tasks.cases, heldout=heldout.cases,
                heldout2=heldout2.cases, heldout3=heldout3.cases)
    if which == 'all':
        return [case for make in sets.values() for case in make()]
    return sets[which]()
