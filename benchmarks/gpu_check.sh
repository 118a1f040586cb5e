#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): every GPU-bound part of the
# project for a short run on one GPU, printed as one Markdown table and
# written as JSON.
#
#   bash benchmarks/gpu_check.sh                          # one H100/H200
#   bash benchmarks/gpu_check.sh --device cpu --dry-run   # small, on CPU
#
# Arguments go to gpu_check.py (--device, --dry-run, --out). The whole
# check gets GPU_CHECK_BUDGET_S seconds (default 450): gpu_check.py starts
# no step the budget no longer covers, and `timeout` stops it 20 s after
# the budget if it hangs anyway. OMP_NUM_THREADS, when not set, is a
# quarter of the CPUs (1 to 4): the rest are left to the data loaders.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
budget="${GPU_CHECK_BUDGET_S:-450}"

if [[ -z "${OMP_NUM_THREADS:-}" ]]; then
    threads=$(( $(nproc) / 4 ))
    if (( threads < 1 )); then threads=1; fi
    if (( threads > 4 )); then threads=4; fi
    export OMP_NUM_THREADS="${threads}"
fi
export MKL_NUM_THREADS="${MKL_NUM_THREADS:-${OMP_NUM_THREADS}}"

exec timeout --kill-after=5 "$(( budget + 20 ))" \
    "${PYTHON:-python}" "${here}/gpu_check.py" --budget "${budget}" "$@"
