#!/usr/bin/env bash
# Set up engine_plugins on a fresh machine (idempotent).
#
#   bash tools/install.sh            # regular install (mim train/test work)
#   EDITABLE=1 bash tools/install.sh # editable install for development
#
# Time: the first run on a fresh machine compiles mmcv 2.1.0's ops, which is
# nearly all of the wait (measured: 28 min 22 s for the whole script on a
# 2-core machine, 48.6 CPU-minutes). The compile prints one line per
# compiled source file ([k/N], elapsed time) and a heartbeat line after each
# minute of silence. The wheel it builds is kept in MMCV_WHEEL_CACHE, keyed
# on the torch build; a later run that finds a matching wheel there installs
# it without compiling.
#
# Environment knobs:
#   PYTHON                 interpreter to install into (default: python3)
#   TORCH_SPEC             torch to install when none is present
#                          (default: torch==2.13.0)
#   TORCH_CUDA_ARCH_LIST   CUDA archs for the mmcv ops build, e.g. "9.0"
#                          (default: those of the visible GPUs, the
#                          highest +PTX, as torch picks them)
#   MMCV_FORCE_REBUILD=1   compile mmcv even if mmcv._ext imports or a cached
#                          wheel matches; the new wheel replaces the cached one
#   MMCV_WHEEL_CACHE       folder of built mmcv wheels, printed by the script
#                          (default: ${XDG_CACHE_HOME:-$HOME/.cache}/
#                          engine_plugins/wheels), one subfolder per torch
#                          build and kind of ops: torch-<version>-cpu/ (CPU
#                          torch), torch-<version>-cu<cuda>-sm<archs>/ (CUDA
#                          ops), torch-<version>-cu<cuda>-cpuops/ (CUDA
#                          torch, no nvcc); the wheel's name carries the
#                          mmcv version, Python tag and platform. Copy or
#                          mount it to reuse a wheel on another machine with
#                          the same Python, platform and torch build.
#   HEARTBEAT_S            seconds of build silence before a "still
#                          building mmcv" line (default: 60)
#   MAX_JOBS               parallel compile jobs (default: nproc)
#   EDITABLE=1             pip install -e . instead of pip install .
#
# Tests load the functions only: source tools/install.sh --functions-only
set -euo pipefail

MMCV_VERSION=2.1.0

log() { printf '\033[1;34m[install]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[install] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

# Time since $1 (an earlier value of $SECONDS), as 12m05s.
elapsed() {
    local s=$(( SECONDS - $1 ))
    printf '%dm%02ds' $(( s / 60 )) $(( s % 60 ))
}

# pip with the one constraints file (set up in main), so that no later
# install (openmim, peft, ...) can silently move setuptools or torch.
pip_install() { "$PYTHON" -m pip install --constraint "$CONSTRAINTS" "$@"; }

mmcv_ext_ok() { "$PYTHON" -c 'import mmcv._ext' 2>/dev/null; }

# Cache subfolder for mmcv wheels built against one torch build:
#   mmcv_wheel_key TORCH_VERSION [TORCH_CUDA [OPS]]
# TORCH_CUDA: torch.version.cuda, empty for a CPU-only torch. OPS: "cpu"
# for CPU ops, else the CUDA arch list (empty: torch's default archs).
#   -> torch-2.13.0-cpu, torch-2.4.1-cu121-sm8.0_9.0+PTX,
#      torch-2.4.1-cu121-sm-default, torch-2.4.1-cu121-cpuops
mmcv_wheel_key() {
    local torch=${1:-} cuda=${2:-} archs=${3:-} parts
    [ -n "$torch" ] || return 1
    if [ -z "$cuda" ]; then
        printf 'torch-%s-cpu\n' "$torch"
        return 0
    fi
    if [ "$archs" = cpu ]; then
        printf 'torch-%s-cu%s-cpuops\n' "$torch" "${cuda//./}"
        return 0
    fi
    read -r -a parts <<< "${archs//[;,]/ }"
    if [ "${#parts[@]}" = 0 ]; then
        archs=-default
    else
        archs=$(IFS=_; printf '%s' "${parts[*]}")
        archs=${archs//[^A-Za-z0-9._+]/_}
    fi
    printf 'torch-%s-cu%s-sm%s\n' "$torch" "${cuda//./}" "$archs"
}

# Print the path of a usable wheel in DIR, or return 1:
#   find_mmcv_wheel DIR MMCV_VERSION PYTHON_TAG PLATFORM
#   e.g. DIR/mmcv-2.1.0-cp311-cp311-linux_x86_64.whl
find_mmcv_wheel() {
    local dir=$1 version=$2 pytag=$3 plat=$4 f
    for f in "$dir"/mmcv-"$version"-"$pytag"-*-"$plat".whl; do
        if [ -f "$f" ] && [ -s "$f" ]; then
            printf '%s\n' "$f"
            return 0
        fi
    done
    return 1
}

# Filter for `pip wheel -v` output: everything goes to the log file LOG;
# the terminal gets one line per compiled source file ([k/N] from ninja,
# [k/?] from a plain setuptools build) with the elapsed time, the link step,
# ninja's FAILED lines, pip's main steps, and a heartbeat line after each
# HEARTBEAT_S seconds without output.
build_progress() {
    local log=$1 beat=${HEARTBEAT_S:-60} t0=$SECONDS
    local line='' part='' k=0 n='?' src rc eof=0
    : > "$log"
    while [ "$eof" = 0 ]; do
        if IFS= read -r -t "$beat" line; then
            line=$part$line
            part=''
        else
            rc=$?
            if [ "$rc" -gt 128 ]; then  # timeout: keep the partial line
                part=$part$line
                printf '[install]   ... still building mmcv: %s elapsed, ' \
                    "$(elapsed "$t0")"
                printf '%s/%s files compiled\n' "$k" "$n"
                continue
            fi
            line=$part$line  # end of input; flush an unterminated line
            part=''
            eof=1
            [ -n "$line" ] || break
        fi
        line=${line%$'\r'}
        printf '%s\n' "$line" >> "$log"
        src=''
        if [[ $line =~ [[:space:]]-c[[:space:]]+([^[:space:]]+\.(cpp|cu|cc|c))([[:space:]]|$) ]]; then
            src=${BASH_REMATCH[1]##*/}
        fi
        if [[ $line =~ ^\[([0-9]+)/([0-9]+)\][[:space:]] ]]; then
            k=${BASH_REMATCH[1]}
            n=${BASH_REMATCH[2]}
            printf '[install]   [%s/%s] %s (%s)\n' "$k" "$n" \
                "${src:-${line:0:60}}" "$(elapsed "$t0")"
        elif [ -n "$src" ]; then
            k=$(( k + 1 ))
            printf '[install]   [%s/%s] %s (%s)\n' "$k" "$n" "$src" \
                "$(elapsed "$t0")"
        elif [[ $line == *' -shared '* && $line == *_ext* ]]; then
            printf '[install]   linking mmcv._ext (%s)\n' "$(elapsed "$t0")"
        elif [[ $line =~ ^FAILED:|^[[:space:]]*(Collecting|Downloading|Building\ wheel|Created\ wheel|Saved|Successfully) ]]; then
            printf '[install]   %s\n' "${line#"${line%%[![:space:]]*}"}"
        fi
    done
    return 0
}

# Run a command with its output through build_progress:
#   run_with_progress LOG COMMAND...
# Returns the command's exit status (pipefail), not the filter's.
run_with_progress() {
    local log=$1
    shift
    "$@" 2>&1 | build_progress "$log"
}

install_mmcv_wheel() {
    # --force-reinstall --no-deps replaces an installed mmcv without ops;
    # the second call installs its dependencies.
    pip_install --no-deps --force-reinstall "$1"
    pip_install "$1"
}

# mmcv with compiled ops: keep a working one, else install a cached wheel
# built against the same torch, else compile one and cache it. Uses PYTHON,
# CONSTRAINTS, TORCH_VERSION and MMCV_WHEEL_CACHE.
ensure_mmcv() {
    if [ "${MMCV_FORCE_REBUILD:-0}" != 1 ] && mmcv_ext_ok; then
        log "mmcv._ext already imports; skipping the mmcv build"
        return 0
    fi
    local pyinfo pytag plat torch_cuda scripts ops=cpu archs key dir
    local wheel='' build build_log t0
    # Python tag and platform (as in the wheel's name), torch's CUDA, and
    # the interpreter's scripts folder (ninja's, on PATH for the build).
    pyinfo=$("$PYTHON" -c 'import sys, sysconfig, torch
print("cp%d%d" % sys.version_info[:2],
      sysconfig.get_platform().replace("-", "_").replace(".", "_"),
      torch.version.cuda or "none", sysconfig.get_path("scripts"))')
    read -r pytag plat torch_cuda scripts <<< "$pyinfo"
    if [ "$torch_cuda" = none ]; then torch_cuda=''; fi
    if [ -n "$torch_cuda" ] && command -v nvcc >/dev/null 2>&1; then
        export FORCE_CUDA=1
        if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
            # The visible GPUs' archs, as torch would pick them, named so
            # that the cache key says what the build targets.
            archs=$("$PYTHON" -c 'import torch
caps = sorted({"%d.%d" % torch.cuda.get_device_capability(i)
               for i in range(torch.cuda.device_count())})
print(";".join(caps[:-1] + [caps[-1] + "+PTX"]) if caps else "")' \
                2>/dev/null || true)
            if [ -n "$archs" ]; then export TORCH_CUDA_ARCH_LIST=$archs; fi
        fi
        ops=${TORCH_CUDA_ARCH_LIST:-}
        log "mmcv $MMCV_VERSION with CUDA ops (TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-torch default})"
    else
        log "mmcv $MMCV_VERSION with CPU ops (no CUDA toolchain or CPU-only torch)"
    fi
    key=$(mmcv_wheel_key "$TORCH_VERSION" "$torch_cuda" "$ops")
    dir=$MMCV_WHEEL_CACHE/$key
    if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
        log "cannot write to $dir; the wheel built now will not be kept"
        dir=$(mktemp -d)
        CLEANUP+=("$dir")
    fi
    log "mmcv wheel cache: $dir"

    if [ "${MMCV_FORCE_REBUILD:-0}" != 1 ] && \
            wheel=$(find_mmcv_wheel "$dir" "$MMCV_VERSION" "$pytag" "$plat"); then
        log "installing the cached wheel ${wheel##*/} (no compile)"
        install_mmcv_wheel "$wheel"
        if ! mmcv_ext_ok; then
            log "mmcv._ext does not import from ${wheel##*/}; moving it to" \
                "${wheel##*/}.bad and compiling"
            mv -f "$wheel" "$wheel.bad"
            wheel=''
        fi
    fi
    [ -z "$wheel" ] || return 0

    # No usable wheel: compile. pip's own wheel cache is bypassed
    # (--no-cache-dir) because it is keyed on the sdist, not on torch.
    # ninja from PYTHON's scripts folder goes first on PATH: without it
    # (e.g. a venv not activated) torch compiles one file at a time.
    build=$(mktemp -d "$dir/.build.XXXXXX")
    CLEANUP+=("$build")
    build_log="$dir/mmcv-$MMCV_VERSION-build.log"
    log "compiling mmcv $MMCV_VERSION's ops with MAX_JOBS=${MAX_JOBS:-$(nproc)}:" \
        "about 48 CPU-minutes (28 min on 2 cores); full log: $build_log"
    t0=$SECONDS
    if ! run_with_progress "$build_log" env MMCV_WITH_OPS=1 \
            MAX_JOBS="${MAX_JOBS:-$(nproc)}" PATH="$scripts:$PATH" \
            "$PYTHON" -m pip wheel -v --no-deps --no-build-isolation \
            --no-cache-dir --constraint "$CONSTRAINTS" -w "$build" \
            "mmcv==$MMCV_VERSION"; then
        tail -n 40 "$build_log" >&2
        die "the mmcv build failed after $(elapsed "$t0"); full log: $build_log"
    fi
    log "mmcv compiled in $(elapsed "$t0")"
    wheel=$(find_mmcv_wheel "$build" "$MMCV_VERSION" "$pytag" "$plat") || \
        die "pip built no mmcv-$MMCV_VERSION-$pytag-*-$plat.whl in $build:" \
            "$(ls "$build")"
    install_mmcv_wheel "$wheel"
    mmcv_ext_ok || die "mmcv._ext does not import from the wheel just built" \
        "(${wheel##*/}); build log: $build_log"
    mv -f "$wheel" "$dir/"
    rm -rf "$build"
    log "kept $dir/${wheel##*/}: later runs with torch $TORCH_VERSION" \
        "install it without compiling"
}

if [ "${1:-}" = --functions-only ]; then
    # shellcheck disable=SC2317  # exit: when executed rather than sourced
    return 0 2>/dev/null || exit 0
fi

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
MMCV_WHEEL_CACHE=${MMCV_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/engine_plugins/wheels}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
START=$SECONDS

CONSTRAINTS=$(mktemp)
CLEANUP=("$CONSTRAINTS")
trap 'rm -rf -- "${CLEANUP[@]}"' EXIT

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
ensure_mmcv

# 5. The rest of the stack, the package and the developer tools.
pip_install mmdet==3.3.0 "pycocotools>=2.0.9" "faster-coco-eval>=1.8,<1.9" \
    "peft>=0.21" "transformers>=5" safetensors openmim==0.3.9 \
    "optuna>=4" tensorboard pytest pytest-xdist flake8 isort yapf
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
log "done in $(elapsed "$START")"
