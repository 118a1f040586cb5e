#!/usr/bin/env bash
# Set up engine_plugins on a fresh machine (idempotent).
#
#   bash tools/install.sh            # regular install (mim train/test work)
#   EDITABLE=1 bash tools/install.sh # editable install for development
#
# Environment knobs:
#   PYTHON                 interpreter to install into (default: python3)
#   TORCH_SPEC             torch to install when none is present
#                          (default: torch==2.13.0)
#   TORCH_CUDA_ARCH_LIST   CUDA archs for the mmcv ops build, e.g. "9.0"
#   MMCV_FORCE_REBUILD=1   rebuild mmcv even if mmcv._ext imports
#   EDITABLE=1             pip install -e . instead of pip install .
set -euo pipefail

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
START=$(date +%s)

log() { printf '\033[1;34m[install]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[install] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

# One constraints file for every pip call, so that no later install (openmim,
# peft, ...) can silently move setuptools or torch.
CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
pip_install() { "$PYTHON" -m pip install --constraint "$CONSTRAINTS" "$@"; }

# 1. torch: keep an installed one, install one only if none is present.
if "$PYTHON" -c 'import torch' 2>/dev/null; then
    log "keeping installed torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
else
    log "no torch found; installing $TORCH_SPEC"
    "$PYTHON" -m pip install "$TORCH_SPEC"
fi
TORCH_VERSION=$("$PYTHON" -c 'import torch; print(torch.__version__.split("+")[0])')
{
    echo "torch==$TORCH_VERSION"
    echo "setuptools>=77,<82"
} > "$CONSTRAINTS"

# 2. Build prerequisites. setuptools 82 removed pkg_resources, which mmcv's
# setup.py, openmim and mmengine's package lookup import.
pip_install "setuptools>=77,<82" wheel ninja packaging

# 3. OpenMMLab runtime (mmcv is built below; mmdet does not pin it).
pip_install mmengine==0.10.7

# 4. mmcv 2.1.0 with compiled ops. No prebuilt wheel exists for recent torch,
# and without --no-build-isolation the wheel is built without mmcv._ext.
if [ "${MMCV_FORCE_REBUILD:-0}" != 1 ] && "$PYTHON" -c 'import mmcv._ext' 2>/dev/null; then
    log "mmcv._ext already imports; skipping the mmcv build"
else
    if command -v nvcc >/dev/null 2>&1 && \
            "$PYTHON" -c 'import sys, torch; sys.exit(torch.version.cuda is None)'; then
        export FORCE_CUDA=1
        log "building mmcv 2.1.0 with CUDA ops (TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-auto})"
    else
        log "building mmcv 2.1.0 with CPU ops (no CUDA toolchain or CPU-only torch)"
    fi
    log "this compiles for ~35 CPU-minutes the first time; pip caches the wheel"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        pip_install --no-build-isolation "mmcv==2.1.0"
fi

# 5. The rest of the stack, the package and the developer tools.
pip_install mmdet==3.3.0 "pycocotools>=2.0.9" "faster-coco-eval>=1.8,<1.9" \
    "peft>=0.21" "transformers>=5" safetensors openmim==0.3.9 \
    "optuna>=4" tensorboard pytest flake8 isort yapf
# ultralytics is a test and benchmark oracle only (its TAL assigner and
# RT-DETR matcher): without its dependencies, which would pull a CUDA torch
# and torchvision; tests/reference_ultralytics.py imports it offline.
pip_install --no-deps ultralytics==8.2.103
pip_install pandas psutil py-cpuinfo pyyaml requests tqdm pillow
if [ "${EDITABLE:-0}" = 1 ]; then
    pip_install --no-build-isolation -e "$ROOT"
else
    pip_install --no-build-isolation "$ROOT"
fi

# 6. Chromium (Debian's package) for the test that renders the diagnosis
# report headlessly; skipped where there is no apt-get or no root.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
        && [ "$(id -u)" = 0 ]; then
    log "installing Chromium for the report-rendering test"
    { apt-get install -y -q chromium || { apt-get update -q && \
        apt-get install -y -q chromium; }; } >/dev/null 2>&1 || \
        log "could not install Chromium: the rendering test will be skipped"
fi

# 7. Check: versions, and a loud failure when mmcv.ops is missing.
"$PYTHON" - <<'PY'
import sys
from importlib.metadata import version

import torch

try:
    import mmcv._ext  # noqa: F401
    from mmcv.ops import nms  # noqa: F401
except Exception as exc:  # install-time check
    sys.exit(f'mmcv.ops is NOT usable ({exc!r}); rebuild with '
             'MMCV_FORCE_REBUILD=1 bash tools/install.sh')
import engine_plugins  # noqa: F401  (imports mmdet, applies stack fixes)

for dist in ('torch', 'mmengine', 'mmcv', 'mmdet', 'peft', 'pycocotools',
             'faster-coco-eval', 'ultralytics', 'openmim', 'setuptools',
             'engine_plugins'):
    print(f'{dist:>15s} {version(dist)}')
print(f'{"mmcv.ops":>15s} OK (compiled ops, '
      f'cuda={torch.cuda.is_available()})')
PY
log "done in $(( $(date +%s) - START )) s"
