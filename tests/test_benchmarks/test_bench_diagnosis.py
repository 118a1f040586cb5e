"""A sample of the mutation benchmark, run as the benchmark runs it
(tools/train.py in a subprocess): one mutant per kind of check and task,
and a clean run."""
import pytest

from benchmarks.bench_diagnosis import report, run_case
from benchmarks.mutations.catalog import CATEGORIES, all_cases

SAMPLE = (
    'toy/detached_loss',
    'toy/nan_sample_at_5',
    'toy/clean',
    'yolo/loss_copy_pixel_dfl_targets',
    'yolo/dataset_xywh_as_xyxy',
    'rtdetr/preprocessor_normalizes_by_image',
    'audio/peft_label_filter',
    'ris/plain_eigh_low_rank',
)


def test_catalog_is_well_formed():
    cases = all_cases('main')
    names = [c.name for c in cases]
    assert len(names) == len(set(names))
    assert sum(c.category != 'clean' for c in cases) >= 100
    assert sum(c.category == 'clean' for c in cases) >= 25
    for case in cases:
        assert case.category in CATEGORIES, case.name
        assert case.task in ('toy', 'yolo', 'rtdetr', 'audio', 'ris')
        assert case.first <= case.iters, case.name
    assert set(SAMPLE) <= set(names)


@pytest.mark.slow
def test_a_sample_is_caught_at_once_with_the_cause_and_clean_is_quiet(
        tmp_path):
    cases = {c.name: c for c in all_cases('main')}
    results = [run_case(cases[name], str(tmp_path), 600) for name in SAMPLE]
    table = report(results)
    for result in results:
        if result['category'] == 'clean':
            assert not result['false_alarm'], table
        else:
            assert result['at_first'] and result['cause_ok'], table
    # NaN steps after the strict window are skipped and the run goes on;
    # the others stop it.
    exits = {r['name']: r['exit'] for r in results}
    assert exits['toy/nan_sample_at_5'] == 0
    assert exits['toy/clean'] == 0
    assert exits['toy/detached_loss'] != 0


def test_every_case_module_imports():
    """The mutants load their parts through custom_imports in a fresh
    process; a module that no longer imports (a renamed name in the
    package) turns its cases into config errors, not findings."""
    import glob
    import importlib
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    modules = {
        case_import
        for set_name in ('main', 'heldout', 'heldout2', 'heldout3')
        for case in all_cases(set_name)
        for case_import in case.imports
    }
    files = glob.glob(
        osp.join(root, 'benchmarks', 'mutations', '**', '*.py'),
        recursive=True)
    modules |= {
        osp.relpath(f, root)[:-3].replace(osp.sep, '.')
        for f in files if not f.endswith('__init__.py')
    }
    assert len(modules) > 10
    for name in sorted(modules):
        importlib.import_module(name)
