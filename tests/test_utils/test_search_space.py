"""Search spaces declared in configs: validation and sampling."""
import optuna
import pytest

from engine_plugins.utils import load_config
from engine_plugins.utils.search_space import (SearchSpaceError,
                                               check_hpo_section,
                                               sample_overrides)

SPACE = {
    'optim_wrapper.optimizer.lr':
    dict(type='float', low=1e-4, high=1e-2, log=True, name='lr'),
    'model.depth': dict(type='int', low=1, high=4),
    'model.act': dict(type='categorical', choices=['relu', 'gelu']),
    'model.hidden':
    dict(
        type='repeat',
        value=dict(type='categorical', choices=[8, 16], name='width'),
        times=dict(type='int', low=1, high=3, name='layers')),
}


def test_sample_overrides_with_fixed_parameters():
    trial = optuna.trial.FixedTrial({
        'lr': 0.001,
        'model.depth': 3,
        'model.act': 'gelu',
        'width': 16,
        'layers': 2
    })
    assert sample_overrides(trial, SPACE) == {
        'optim_wrapper.optimizer.lr': 0.001,
        'model.depth': 3,
        'model.act': 'gelu',
        'model.hidden': (16, 16),
    }


def test_sampled_values_stay_in_their_ranges():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0))
    for _ in range(20):
        values = sample_overrides(study.ask(), SPACE)
        assert 1e-4 <= values['optim_wrapper.optimizer.lr'] <= 1e-2
        assert values['model.depth'] in (1, 2, 3, 4)
        hidden = values['model.hidden']
        assert 1 <= len(hidden) <= 3 and len(set(hidden)) == 1
        assert hidden[0] in (8, 16)


@pytest.mark.parametrize('hpo, match', [
    (None, r'cfg\.py has no `hpo` section: add hpo = dict\(monitor='),
    (dict(monitor='a/b', extra=1,
          spaces=dict(s={'x': dict(type='float', low=0, high=1)})),
     r"unknown keys \['extra'\]"),
    (dict(spaces=dict(s={})), r'hpo\.monitor must name a validation metric'),
    (dict(monitor='a/b', direction='up', spaces=dict(s={'x': {}})),
     r"hpo\.direction must be one of \('minimize', 'maximize'\)"),
    (dict(monitor='a/b', spaces=dict(s={})),
     r'hpo\.spaces\.s must be a non-empty dict'),
    (dict(monitor='a/b', spaces=dict(s={'x': dict(type='uniform')})),
     r"hpo\.spaces\.s\['x'\] must be a dict with type one of"),
    (dict(monitor='a/b', spaces=dict(s={'x': dict(type='float', low=0)})),
     r"a 'float' distribution takes .* missing \['high'\], unknown \[\]"),
    (dict(monitor='a/b', spaces=dict(s={'x': dict(
        type='int', low=0, high=2, choices=[1])})),
     r"unknown \['choices'\]"),
    (dict(monitor='a/b', spaces=dict(s={'x': dict(
        type='repeat', value=dict(type='int', low=1, high=2),
        times=dict(type='float', low=1, high=2))})),
     r"\.times must be an 'int' distribution"),
])
def test_malformed_sections_are_named(hpo, match):
    with pytest.raises(SearchSpaceError, match=match):
        check_hpo_section(hpo, 'cfg.py')


@pytest.mark.parametrize('config', [
    'configs/ris/ris_upa8x8_cpu.py', 'configs/ris/ris_upa12x12_h100.py',
    'configs/psalm_yolo/psalm_yolo_n_shapes_cpu.py'
])
def test_shipped_sections_are_valid_and_name_real_keys(config):
    cfg = load_config(config)
    check_hpo_section(cfg.hpo, config)
    for space in cfg.hpo.spaces.values():
        for dotted in space:
            node = cfg
            for part in dotted.split('.'):
                assert part in node, (config, dotted)
                node = node[part]
