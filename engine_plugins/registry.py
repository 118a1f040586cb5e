"""Registries of engine_plugins: children of mmdet's, in scope
``engine_plugins``.

With ``default_scope='engine_plugins'`` a config can name our parts and
mmdet's (and mmengine's) without a prefix. A parent lookup does not import
the parent's ``locations``, so each child lists mmdet's locations after its
own: building anything in our scope imports both sets of modules first.

Example:
    >>> from engine_plugins.registry import MODELS
    >>> MODELS.build(dict(type='ResNet', depth=18))  # mmdet's ResNet
"""
from typing import Dict, List

from mmdet.registry import DATA_SAMPLERS as MMDET_DATA_SAMPLERS
from mmdet.registry import DATASETS as MMDET_DATASETS
from mmdet.registry import HOOKS as MMDET_HOOKS
from mmdet.registry import LOG_PROCESSORS as MMDET_LOG_PROCESSORS
from mmdet.registry import LOOPS as MMDET_LOOPS
from mmdet.registry import METRICS as MMDET_METRICS
from mmdet.registry import MODEL_WRAPPERS as MMDET_MODEL_WRAPPERS
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMDET_OPTIM_WRAPPER_CONSTRUCTORS
from mmdet.registry import OPTIM_WRAPPERS as MMDET_OPTIM_WRAPPERS
from mmdet.registry import OPTIMIZERS as MMDET_OPTIMIZERS
from mmdet.registry import PARAM_SCHEDULERS as MMDET_PARAM_SCHEDULERS
from mmdet.registry import RUNNER_CONSTRUCTORS as MMDET_RUNNER_CONSTRUCTORS
from mmdet.registry import RUNNERS as MMDET_RUNNERS
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS
from mmdet.registry import VISBACKENDS as MMDET_VISBACKENDS
from mmdet.registry import VISUALIZERS as MMDET_VISUALIZERS
from mmdet.registry import WEIGHT_INITIALIZERS as MMDET_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

SCOPE = 'engine_plugins'

# Modules of this package that register parts, per registry name. A
# package is listed here once it exists; tests import every location.
OWN_LOCATIONS: Dict[str, List[str]] = {
    'hook': ['engine_plugins.engine'],
    'optim_wrapper': ['engine_plugins.engine'],
    'dataset': ['engine_plugins.datasets'],
    'transform': ['engine_plugins.datasets.transforms'],
    'metric': ['engine_plugins.evaluation'],
    'task util': ['engine_plugins.task_modules'],
    'model': ['engine_plugins.models'],
}


def _child(parent: Registry) -> Registry:
    # ``_locations`` is private in mmengine 0.10.7 but is the only record
    # of where the parent's parts live.
    own = OWN_LOCATIONS.get(parent.name, [])
    return Registry(
        parent.name,
        parent=parent,
        scope=SCOPE,
        locations=own + list(parent._locations))


RUNNERS = _child(MMDET_RUNNERS)
RUNNER_CONSTRUCTORS = _child(MMDET_RUNNER_CONSTRUCTORS)
LOOPS = _child(MMDET_LOOPS)
HOOKS = _child(MMDET_HOOKS)
DATASETS = _child(MMDET_DATASETS)
DATA_SAMPLERS = _child(MMDET_DATA_SAMPLERS)
TRANSFORMS = _child(MMDET_TRANSFORMS)
MODELS = _child(MMDET_MODELS)
MODEL_WRAPPERS = _child(MMDET_MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(MMDET_WEIGHT_INITIALIZERS)
OPTIMIZERS = _child(MMDET_OPTIMIZERS)
OPTIM_WRAPPERS = _child(MMDET_OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(MMDET_OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(MMDET_PARAM_SCHEDULERS)
METRICS = _child(MMDET_METRICS)
TASK_UTILS = _child(MMDET_TASK_UTILS)
VISUALIZERS = _child(MMDET_VISUALIZERS)
VISBACKENDS = _child(MMDET_VISBACKENDS)
LOG_PROCESSORS = _child(MMDET_LOG_PROCESSORS)

ALL_REGISTRIES = (RUNNERS, RUNNER_CONSTRUCTORS, LOOPS, HOOKS, DATASETS,
                  DATA_SAMPLERS, TRANSFORMS, MODELS, MODEL_WRAPPERS,
                  WEIGHT_INITIALIZERS, OPTIMIZERS, OPTIM_WRAPPERS,
                  OPTIM_WRAPPER_CONSTRUCTORS, PARAM_SCHEDULERS, METRICS,
                  TASK_UTILS, VISUALIZERS, VISBACKENDS, LOG_PROCESSORS)
