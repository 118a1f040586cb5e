"""Registry build errors that name the fix.

mmengine 0.10.7 lets ``obj_cls(**args)`` raise its raw ``TypeError``
("__init__() got an unexpected keyword argument 'activation'") and reports
an unknown ``type`` without suggestions. The wrappers here (installed by
:func:`engine_plugins.compat.explain_build_errors`) make both errors list
what is accepted and the closest match:

    RTDETR got an unexpected argument 'backbone_name'; did you mean
    'backbone_type'? Accepted: backbone_type, num_queries, ...

Names are looked up where the build looked them up. Under a default scope
mmengine does not search the registry ``build`` was called on (the Runner
calls mmengine's root registries) but the scope's registry in the same
tree, then its parents; suggestions come from that whole chain
(``engine_plugins`` -> ``mmdet`` -> ``mmengine``).
"""
import difflib
import inspect
import re
from typing import Callable, List, Optional, Sequence

import torch
from mmengine.registry import Registry

_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")
# What Python says when a class without an __init__ of its own gets any.
_NO_ARGUMENTS = re.compile(r'^(\w+)\(\) takes no arguments$')


class UnknownArgumentError(TypeError):
    """A config passes an argument that the built class does not take."""


class UnknownTypeError(KeyError):
    """A config names a ``type`` that no registry in scope knows."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def accepted_arguments(obj_cls: Callable) -> Optional[List[str]]:
    """Keyword arguments ``obj_cls`` accepts, following ``**kwargs`` up the
    MRO; None when it accepts anything (``**kwargs`` all the way up)."""
    if inspect.isclass(obj_cls):
        # nn.Module.__init__ and object.__init__ take **kwargs only to
        # reject them.
        targets = [
            c.__init__ for c in obj_cls.__mro__
            if '__init__' in vars(c) and c not in (object, torch.nn.Module)
        ]
    else:
        targets = [obj_cls]
    names: List[str] = []
    for target in targets:
        try:
            params = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):
            return None
        names += [
            p.name for p in params if p.name != 'self' and p.kind in
            (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names
        ]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names
    return names if inspect.isclass(obj_cls) else None


def _edits(a: str, b: str) -> int:
    """Edit distance where a swap of two neighbours counts as one edit."""
    before, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1,
                         prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], before[j - 2] + 1)
        before, prev = prev, cur
    return prev[-1]


def closest_name(name: str,
                 groups: Sequence[Sequence[str]]) -> Optional[str]:
    """The candidate most likely meant by ``name``, or None.

    Case is ignored. A candidate within two edits of ``name`` (one for
    names of 2 or 3 characters) is a typo of it and ranks before any
    other, fewest edits first; the rest need a difflib ratio of 0.6. Ties
    go to the higher ratio, then to the earlier group (the registry the
    build searched first), then to the earlier name.

    Args:
        name: The misspelled name.
        groups: Candidate names, in the order they are searched.
    """
    key = name.lower()
    max_edits = min(2, len(key) // 2)
    best, best_rank = None, None
    for depth, group in enumerate(groups):
        for order, candidate in enumerate(group):
            low = candidate.lower()
            ratio = difflib.SequenceMatcher(None, key, low).ratio()
            # Lengths 3 apart are 3 edits apart at least: not a typo.
            edits = _edits(key, low) if abs(len(low) - len(key)) <= 2 else 3
            typo = edits <= max_edits
            if not typo and ratio < 0.6:
                continue
            rank = (not typo, edits if typo else 0, -ratio, depth, order)
            if best_rank is None or rank < best_rank:
                best, best_rank = candidate, rank
    return best


def _did_you_mean(name: str, groups: Sequence[Sequence[str]]) -> str:
    match = closest_name(name, groups)
    return f"; did you mean '{match}'?" if match else ''


def _suggest(name: str, candidates: Sequence[str]) -> str:
    return _did_you_mean(name, [candidates])


def searched_registry(registry: Registry,
                      scope: Optional[str] = None) -> Registry:
    """The registry a build called on ``registry`` looks names up in: the
    registry of ``scope`` (default: the default scope) in the same tree,
    else ``registry`` itself."""
    with registry.switch_scope_and_registry(scope) as searched:
        return searched


def _lookup_chain(registry: Registry, obj_type: str) -> List[Registry]:
    # Registry.get: 'scope.Name' searches that scope's registry (only it,
    # when it is this registry's scope); a plain name climbs the parents.
    scope, _ = Registry.split_scope_key(obj_type)
    if scope == registry.scope:
        return [registry]
    if scope is not None:
        registry = (registry._get_root_registry()._search_child(scope)
                    or registry)
    chain = []
    while registry is not None:
        chain.append(registry)
        registry = registry.parent
    return chain


def _lookup(registry: Registry, obj_type: str) -> Optional[Callable]:
    try:
        return registry.get(obj_type)
    except RuntimeError:  # a dotted name that does not import
        return None


def unknown_type_error(obj_type: str, registry: Registry) -> UnknownTypeError:
    """The error for a ``type`` that ``registry`` (the searched one) and
    its parents do not know, with the closest registered name."""
    chain = _lookup_chain(registry, obj_type)
    groups = []
    for reg in chain:
        reg.import_from_location()
        groups.append(list(reg.module_dict))
    return UnknownTypeError(
        f"'{obj_type}' is not registered in the {chain[0].scope}::"
        f'{chain[0].name} registry or its parents'
        f"{_did_you_mean(obj_type.split('.')[-1], groups)} (did you import "
        'the module that registers it, e.g. with custom_imports?)')


def explanation(exc: Exception, cfg, registry: Registry,
                default_args=None) -> Optional[Exception]:
    """The explained form of ``exc``, raised while building ``cfg`` in
    ``registry``; None when ``exc`` is not about the config's own ``type``
    or arguments (or is explained already)."""
    if isinstance(exc, (UnknownArgumentError, UnknownTypeError)):
        return None
    if not hasattr(cfg, 'get'):
        return None
    args = dict(default_args or {})
    args.update(cfg)
    obj_type = args.get('type', args.get('runner_type'))
    if isinstance(exc, KeyError):
        message = str(exc.args[0]) if exc.args else ''
        # A nested build's unknown type is not this config's.
        if not (isinstance(obj_type, str)
                and message.startswith(f'{obj_type} is not in the')):
            return None
        return unknown_type_error(
            obj_type, searched_registry(registry, args.get('_scope_')))
    unexpected = _UNEXPECTED.search(str(exc))
    no_arguments = _NO_ARGUMENTS.match(str(exc))
    if obj_type is None or not (unexpected or no_arguments):
        return None
    obj_cls = obj_type
    if isinstance(obj_type, str):
        obj_cls = _lookup(
            searched_registry(registry, args.get('_scope_')), obj_type)
    accepted = accepted_arguments(obj_cls) if obj_cls else None
    name = getattr(obj_cls, '__name__', str(obj_cls))
    if no_arguments:
        given = [k for k in cfg if k not in ('type', '_scope_')]
        if accepted or not given or no_arguments.group(1) != name:
            return None
        return UnknownArgumentError(
            f"{name} got an unexpected argument '{given[0]}'. It takes no "
            'arguments.')
    bad = unexpected.group(1)
    if accepted is None or bad in accepted or bad not in args:
        return None  # raised inside the constructor, not by the config
    return UnknownArgumentError(
        f"{name} got an unexpected argument '{bad}'"
        f"{_suggest(bad, accepted) or '.'} Accepted: {', '.join(accepted)}")


def explain(build_from_cfg: Callable) -> Callable:
    """Wrap mmengine's ``build_from_cfg`` with the explanations above."""

    def explained_build_from_cfg(cfg, registry, default_args=None):
        try:
            return build_from_cfg(cfg, registry, default_args)
        except (TypeError, KeyError) as exc:
            explained = explanation(exc, cfg, registry, default_args)
            if explained is None:
                raise
            raise explained from None

    explained_build_from_cfg._engine_plugins = True
    explained_build_from_cfg.__wrapped__ = build_from_cfg
    return explained_build_from_cfg


def explain_registry_build(build: Callable) -> Callable:
    """Wrap ``Registry.build`` with the explanations above.

    Every build through a registry passes here, whatever ``build_func``
    the registry holds (``build_scheduler_from_cfg`` converting an epoch
    schedule never calls ``build_from_cfg``, and a registry keeps the
    function its parent had when it was made).
    """

    def explained_build(self, cfg, *args, **kwargs):
        try:
            return build(self, cfg, *args, **kwargs)
        except (TypeError, KeyError) as exc:
            default_args = kwargs.get('default_args', args[0] if args else
                                      None)
            explained = explanation(exc, cfg, self, default_args)
            if explained is None:
                raise
            raise explained from None

    explained_build._engine_plugins = True
    explained_build.__doc__ = build.__doc__
    explained_build.__wrapped__ = build
    return explained_build


def explain_optimizer_type(call: Callable) -> Callable:
    """Wrap ``DefaultOptimWrapperConstructor.__call__``, which looks the
    optimizer's class up (for its first argument's name) before building
    it: an unknown ``optimizer.type`` failed there as ``TypeError: None is
    not a callable object``."""
    from mmengine.registry import OPTIMIZERS

    def __call__(self, model):
        obj_type = self.optimizer_cfg.get('type')
        if isinstance(obj_type, str):
            # The same lookup as mmengine's: the default scope, not the
            # config's _scope_.
            searched = searched_registry(OPTIMIZERS)
            if _lookup(searched, obj_type) is None:
                raise unknown_type_error(obj_type, searched)
        return call(self, model)

    __call__._engine_plugins = True
    __call__.__doc__ = call.__doc__
    __call__.__wrapped__ = call
    return __call__
