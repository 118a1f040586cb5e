"""Only here for the mim extension: package configs/ and tools/ under
``engine_plugins/.mim`` so that ``mim train/test engine_plugins`` finds them.
Everything else lives in setup.cfg."""
import os
import os.path as osp
import shutil
import sys
from setuptools import setup

MIM_FILES = ('configs', 'tools')


def add_mim_extension() -> None:
    """Copy (regular build) or symlink (editable build) configs/ and tools/
    into ``engine_plugins/.mim``."""
    editable = any(cmd in sys.argv for cmd in ('develop', 'editable_wheel'))
    root = osp.dirname(osp.abspath(__file__))
    mim_dir = osp.join(root, 'engine_plugins', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(root, name), osp.join(mim_dir, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if editable:
            os.symlink(osp.relpath(src, mim_dir), dst)
        else:
            shutil.copytree(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup()
