"""Hyper-parameter search spaces declared in a task's config.

A config's ``hpo`` section says what ``tools/hpo.py`` may change and what
it optimizes, so the tool needs no knowledge of any task::

    hpo = dict(
        monitor='ris/val_loss',      # a validation metric
        direction='minimize',        # or 'maximize'
        spaces=dict(
            narrow={
                'optim_wrapper.optimizer.lr':
                dict(type='float', low=3e-4, high=3e-3, log=True,
                     name='lr'),
            },
            wide={
                # a tuple of `times` copies of one sampled value
                'model.hidden':
                dict(type='repeat',
                     value=dict(type='categorical', choices=[256, 512],
                                name='width'),
                     times=dict(type='int', low=1, high=3, name='depth')),
            }))

Each key is a dotted config path (as ``--cfg-options`` takes it); each
value a distribution: ``float`` (``low``, ``high``, ``log``, ``step``),
``int`` (``low``, ``high``, ``log``, ``step``), ``categorical``
(``choices``) or ``repeat`` (``value``, ``times``). ``name`` is the
parameter's name in the Optuna study (default: the key).
"""
from typing import Any, Dict, Mapping

KINDS = ('float', 'int', 'categorical', 'repeat')
_ARGS = dict(
    float={'low', 'high', 'log', 'step'},
    int={'low', 'high', 'log', 'step'},
    categorical={'choices'},
    repeat={'value', 'times'})
_REQUIRED = dict(
    float={'low', 'high'},
    int={'low', 'high'},
    categorical={'choices'},
    repeat={'value', 'times'})
DIRECTIONS = ('minimize', 'maximize')


class SearchSpaceError(ValueError):
    """A config's ``hpo`` section is missing or malformed."""


def check_hpo_section(hpo: Any, config: str) -> None:
    """Raise :class:`SearchSpaceError` naming the config and the field when
    the ``hpo`` section cannot drive a study."""
    if not isinstance(hpo, Mapping):
        raise SearchSpaceError(
            f'{config} has no `hpo` section: add hpo = dict(monitor=..., '
            "direction='minimize' or 'maximize', spaces=dict(NAME={...})) "
            '(configs/ris/ris_base.py has one to copy)')
    unknown = set(hpo) - {'monitor', 'direction', 'spaces'}
    if unknown:
        raise SearchSpaceError(
            f'{config}: hpo has unknown keys {sorted(unknown)}; it takes '
            'monitor, direction and spaces')
    if not isinstance(hpo.get('monitor'), str):
        raise SearchSpaceError(
            f"{config}: hpo.monitor must name a validation metric, e.g. "
            f"'coco/bbox_mAP'; got {hpo.get('monitor')!r}")
    if hpo.get('direction', 'minimize') not in DIRECTIONS:
        raise SearchSpaceError(
            f'{config}: hpo.direction must be one of {DIRECTIONS}, got '
            f"{hpo.get('direction')!r}")
    spaces = hpo.get('spaces')
    if not isinstance(spaces, Mapping) or not spaces:
        raise SearchSpaceError(
            f'{config}: hpo.spaces must map space names to '
            '{config.path: distribution} dicts')
    for space_name, space in spaces.items():
        if not isinstance(space, Mapping) or not space:
            raise SearchSpaceError(
                f'{config}: hpo.spaces.{space_name} must be a non-empty '
                'dict of {config.path: distribution}')
        for key, spec in space.items():
            _check_spec(spec, f'{config}: hpo.spaces.{space_name}[{key!r}]')


def _check_spec(spec: Any, where: str) -> None:
    if not isinstance(spec, Mapping) or spec.get('type') not in KINDS:
        raise SearchSpaceError(
            f'{where} must be a dict with type one of {KINDS}, got {spec!r}')
    kind = spec['type']
    args = set(spec) - {'type', 'name'}
    missing = _REQUIRED[kind] - args
    unknown = args - _ARGS[kind]
    if missing or unknown:
        raise SearchSpaceError(
            f'{where}: a {kind!r} distribution takes '
            f'{sorted(_ARGS[kind])} (required {sorted(_REQUIRED[kind])}); '
            f'missing {sorted(missing)}, unknown {sorted(unknown)}')
    if kind == 'repeat':
        _check_spec(spec['value'], f'{where}.value')
        _check_spec(spec['times'], f'{where}.times')
        if spec['times']['type'] != 'int':
            raise SearchSpaceError(f"{where}.times must be an 'int' "
                                   'distribution')


def sample(trial, spec: Mapping, name: str) -> Any:
    """One value of a distribution from an Optuna trial."""
    kind = spec['type']
    name = spec.get('name', name)
    if kind == 'float':
        return trial.suggest_float(
            name, spec['low'], spec['high'], log=spec.get('log', False),
            step=spec.get('step'))
    if kind == 'int':
        return trial.suggest_int(
            name, spec['low'], spec['high'], log=spec.get('log', False),
            step=spec.get('step', 1))
    if kind == 'categorical':
        return trial.suggest_categorical(name, list(spec['choices']))
    value = sample(trial, spec['value'], f'{name}.value')
    return (value, ) * sample(trial, spec['times'], f'{name}.times')


def sample_overrides(trial, space: Mapping) -> Dict[str, Any]:
    """``{config.path: value}`` for every entry of one search space."""
    return {key: sample(trial, spec, key) for key, spec in space.items()}
