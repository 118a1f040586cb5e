"""Registries: scope, parents, locations and name resolution."""
from importlib import import_module

import pytest
from mmdet import registry as mmdet_registry
from mmengine.registry import DefaultScope, init_default_scope

from engine_plugins import registry


def test_every_registry_is_a_child_of_mmdets():
    assert len(registry.ALL_REGISTRIES) == 19
    for reg in registry.ALL_REGISTRIES:
        assert reg.scope == 'engine_plugins'
        assert reg.parent.scope == 'mmdet'
        parent = getattr(
            mmdet_registry,
            next(
                name for name in dir(registry)
                if getattr(registry, name) is reg))
        assert reg.parent is parent
        # mmdet's locations follow ours, so builds import both.
        assert reg._locations[-len(parent._locations):] == list(
            parent._locations) or not parent._locations


def test_own_locations_import():
    for locations in registry.OWN_LOCATIONS.values():
        for loc in locations:
            import_module(loc)


def test_default_scope_resolves_mmdet_and_mmengine_names():
    init_default_scope('engine_plugins')
    assert DefaultScope.get_current_instance().scope_name == 'engine_plugins'
    resnet = registry.MODELS.build(dict(type='ResNet', depth=18))
    assert type(resnet).__module__.startswith('mmdet.')
    assert registry.TASK_UTILS.get('HungarianAssigner') is not None
    assert registry.HOOKS.get('CheckpointHook') is not None
    assert registry.OPTIM_WRAPPERS.get('AmpOptimWrapper') is not None
    assert registry.METRICS.get('CocoMetric') is not None


def test_unknown_name_is_an_error_that_names_it():
    with pytest.raises(KeyError, match='NoSuchModel'):
        registry.MODELS.build(dict(type='NoSuchModel'))
