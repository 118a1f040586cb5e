"""The diagnosis of hand-written run folders: ranking, evidence, timeline,
contract, and what a killed run leaves."""
import json
import math
import os

import pytest

import engine_plugins.models  # noqa: F401  (declares the statistics)
from engine_plugins.diagnosis import diagnose, load_run


def _run_dir(tmp_path, events=(), steps=(), scalars=(), config=None):
    run = tmp_path / '20260101_000000'
    (run / 'vis_data').mkdir(parents=True)
    for name, rows in (('sanity.jsonl', events), ('sanity_steps.jsonl',
                                                  steps)):
        if rows is not None:
            (run / name).write_text(''.join(
                json.dumps(r) + '\n' for r in rows))
    if scalars is not None:
        (run / 'vis_data' / 'scalars.json').write_text(''.join(
            json.dumps(r) + '\n' for r in scalars))
    if config is not None:
        (run / 'vis_data' / 'config.py').write_text(config)
    (run / '20260101_000000.log').write_text('log')
    return tmp_path


def _step(it, loss=1.0, norm=1.0, applied=True, **health):
    return dict(iter=it, loss=loss, grad_norm=norm, groups=dict(head=norm),
                lr=0.01, scale=None, health=health, applied=applied)


def test_the_stopping_error_ranks_first_then_warnings_by_iteration(
        tmp_path):
    events = [
        dict(kind='warning', iter=2, cause='zero_weight', check='zero_term',
             message='loss_cls = 0.0 ...', data={}),
        dict(kind='warning', iter=1, cause='no_gradient', check='coverage',
             message='1/2 parameters ...', data={}),
        dict(kind='error', iter=3, cause='target_units', check='health',
             message='health/dfl_targets_at_clamp = 0.97 ...',
             data=dict(stat='health/dfl_targets_at_clamp', value=0.97,
                       range=[0.0, 0.3])),
    ]
    diag = diagnose(load_run(str(_run_dir(tmp_path, events,
                                          [_step(1), _step(2)]))))
    assert [c.cause for c in diag.causes] == [
        'target_units', 'no_gradient', 'zero_weight'
    ]
    top = diag.causes[0]
    assert top.severity == 'error' and top.first_iter == 3
    assert top.evidence[0].endswith(
        '[statistic health/dfl_targets_at_clamp = 0.97 against [0.0, 0.3]]')
    assert 'stride units' in top.fix
    assert not diag.healthy
    assert diag.verdict.endswith('[target_units]')


def test_a_divergence_nobody_reported_is_found_in_the_steps(tmp_path):
    # Norms 1 for 20 steps, then x10 per step (the median of 3 reaches
    # 100 at iteration 23); warm-up to iteration 15. A single spike is not
    # a divergence.
    steps = [_step(i, norm=1e3 if i == 10 else 1.0) for i in range(1, 21)]
    steps += [_step(20 + k, norm=10.0**k) for k in range(1, 5)]
    config = ("param_scheduler = [dict(type='LinearLR', start_factor=0.01, "
              'by_epoch=False, begin=0, end=15)]\n')
    diag = diagnose(load_run(str(_run_dir(tmp_path, [], steps,
                                          config=config))))
    cause = diag.causes[0]
    assert (cause.cause, cause.severity, cause.first_iter) == (
        'divergence', 'anomaly', 23)
    assert cause.evidence == [
        'gradient norm of head grew 1e+03x from 1 (iteration 5) to 1e+03; '
        'lr warm-up ends at iteration 15 (LinearLR)'
    ]
    assert (23, 'divergence onset: ' + cause.evidence[0]) in diag.timeline


def test_health_out_of_range_and_skips_reach_the_timeline(tmp_path):
    steps = [
        _step(1, **{'health/tal_pos_per_gt': 8.0}),
        _step(2, **{'health/tal_pos_per_gt': 0.1}),
        _step(3, loss=math.nan, applied=False),
    ]
    diag = diagnose(load_run(str(_run_dir(tmp_path, [], steps))))
    assert (2, 'health/tal_pos_per_gt = 0.1 out of its range') in \
        diag.timeline
    assert (3, 'first skipped step (1 in all)') in diag.timeline
    assert diag.causes[0].cause == 'nonfinite_forward'
    assert diag.summary['skipped_steps'] == 1


def test_a_clean_run_is_healthy_and_the_contract_is_read(tmp_path):
    events = [
        dict(kind='amp', iter=0, optim_wrapper='AmpGradSanityOptimWrapper',
             dtype='torch.float16', loss_scale=True, accumulative_counts=1),
        dict(kind='contract', iter=1, batch_keys=['inputs', 'data_samples'],
             box_format='xyxy_pixel', num_classes=3,
             trainable_params=dict(backbone=10)),
    ]
    steps = [dict(_step(i), scale=s)
             for i, s in enumerate([65536.0, 32768.0, 32768.0], 1)]
    diag = diagnose(load_run(str(_run_dir(tmp_path, events, steps))))
    assert diag.healthy and diag.verdict == 'healthy'
    assert diag.contract['box_format'] == 'xyxy_pixel'
    assert diag.contract['loss_scale'] == dict(
        first=65536.0, last=32768.0, min=32768.0, changes=1)


def test_a_killed_run_names_what_is_missing_and_reads_what_exists(
        tmp_path):
    work = _run_dir(tmp_path, events=None, steps=[_step(1), _step(2)],
                    scalars=None)
    steps = work / '20260101_000000' / 'sanity_steps.jsonl'
    steps.write_text(steps.read_text() + '{"iter": 3, "lo')  # cut off
    files = load_run(str(work))
    assert [s['iter'] for s in files.steps] == [1, 2]
    missing = ' '.join(files.missing)
    assert 'sanity.jsonl is missing: no sanity findings' in missing
    assert 'scalars.json is missing: no loss, lr or metric curves' in missing
    assert diagnose(files).summary['iterations'] == 2


def test_a_missing_work_dir_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='work dir not found'):
        load_run(str(tmp_path / 'nope'))
    empty = tmp_path / 'empty'
    os.makedirs(empty)
    files = load_run(str(empty))
    assert files.run_dir is None
    assert 'no run folder' in files.missing[0]
