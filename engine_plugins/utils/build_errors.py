"""Registry build errors that name the fix.

mmengine 0.10.7 lets ``obj_cls(**args)`` raise its raw ``TypeError``
("__init__() got an unexpected keyword argument 'activation'") and reports
an unknown ``type`` without suggestions. :func:`explained_build_from_cfg`
wraps ``build_from_cfg`` so both errors list what is accepted and the
closest match:

    RTDETR got an unexpected argument 'backbone_name'; did you mean
    'backbone_type'? Accepted: backbone_type, num_queries, ...
"""
import difflib
import inspect
import re
from typing import Callable, List, Optional

import torch

_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


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


def _suggest(name: str, candidates: List[str]) -> str:
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ''


def _registered_names(registry) -> List[str]:
    names, reg = [], registry
    while reg is not None:
        reg.import_from_location()
        names += list(reg.module_dict)
        reg = reg.parent
    return names


def explain(build_from_cfg: Callable) -> Callable:
    """Wrap mmengine's ``build_from_cfg`` with the explanations above."""

    def explained_build_from_cfg(cfg, registry, default_args=None):
        try:
            return build_from_cfg(cfg, registry, default_args)
        except (UnknownArgumentError, UnknownTypeError):
            raise  # already explained at the level that failed
        except TypeError as exc:
            match = _UNEXPECTED.search(str(exc))
            obj_type = (cfg.get('type') if hasattr(cfg, 'get') else
                        None) or (default_args or {}).get('type')
            obj_cls = registry.get(obj_type) if isinstance(obj_type,
                                                           str) else obj_type
            if match is None or obj_cls is None:
                raise
            accepted = accepted_arguments(obj_cls)
            bad = match.group(1)
            given = set(cfg) | set(default_args or {})
            if accepted is None or bad in accepted or bad not in given:
                raise  # raised inside the constructor, not by the config
            name = getattr(obj_cls, '__name__', str(obj_cls))
            raise UnknownArgumentError(
                f"{name} got an unexpected argument '{bad}'"
                f"{_suggest(bad, accepted) or '.'} Accepted: "
                f'{", ".join(accepted)}') from None
        except KeyError as exc:
            obj_type = cfg.get('type') if hasattr(cfg, 'get') else None
            if not (isinstance(obj_type, str) and 'is not in the'
                    in str(exc.args[0] if exc.args else '')):
                raise
            hint = _suggest(
                obj_type.split('.')[-1], _registered_names(registry))
            raise UnknownTypeError(
                f"'{obj_type}' is not registered in the {registry.scope}::"
                f'{registry.name} registry or its parents{hint} (did you '
                'import the module that registers it, e.g. with '
                'custom_imports?)') from None

    explained_build_from_cfg._engine_plugins = True
    return explained_build_from_cfg
