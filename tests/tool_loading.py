"""The command-line tools in ``tools/`` as modules, for tests that call
their functions (``main(argv)``, ``build_cfg``) in-process."""
import functools
import importlib.util
import os.path as osp
from types import ModuleType

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_CONFIG = osp.join(REPO, 'tests', 'data', 'configs', 'toy_regression.py')


@functools.lru_cache(maxsize=None)
def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py``, loaded once per test process."""
    spec = importlib.util.spec_from_file_location(
        f'tool_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
