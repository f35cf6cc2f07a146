#!/usr/bin/env bash
# One command for the first GPU (issue 25): ≤ 8 minutes on one H100.
#
#     bench/gpu_check.sh            # on the GPU machine, from the repository root or anywhere
#     bench/gpu_check.sh --dry-run  # CPU only: tiny model, small sizes (tests/test_bench.py runs it)
#
# Installs what it needs from the project's own files (pyproject.toml's extras: `gpu` = GPU FAISS +
# accelerate, `flash` = flash-attention 2, built against the installed torch, `nvdec` = NVIDIA's
# PyNvVideoCodec, NVDEC where PyAV's FFmpeg has no CUDA hwaccel), then runs
# bench/gpu_check.py (each GPU path once against the CPU, then throughput; one table with the card's
# name) and the ask latency at 24 h of memory (bench/conversation.py). A step that cannot install
# (no network, no compiler) is reported and the checks that need it say "skipped".
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"
python="${PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1
started=$(date +%s)
if [ "$dry" = 0 ]; then
    echo "== installing the project with its gpu and nvdec extras (and flash-attention when it builds)" >&2
    pip=("$python" -m pip install -q --retries 1 --timeout 15)  # a machine without network fails fast
    "$python" -c "import faiss, accelerate; faiss.StandardGpuResources" 2>/dev/null \
        || timeout 150 "${pip[@]}" -e ".[gpu]" \
        || echo "note: the gpu extra did not install; GPU FAISS is skipped" >&2
    "$python" -c "import PyNvVideoCodec" 2>/dev/null \
        || timeout 90 "${pip[@]}" -e ".[nvdec]" \
        || echo "note: the nvdec extra (PyNvVideoCodec) did not install; its decode rows are skipped" >&2
    "$python" -c "import flash_attn" 2>/dev/null \
        || timeout 90 "${pip[@]}" --no-build-isolation -e ".[flash]" \
        || echo "note: flash-attention did not install (no wheel for this torch?); its rows are skipped" >&2
fi
export PYTHONUNBUFFERED=1
status=0
if [ "$dry" = 1 ]; then
    OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" timeout 600 "$python" "$here/gpu_check.py" --dry-run || status=$?
else
    timeout 330 "$python" "$here/gpu_check.py" || status=$?
    echo "== ask latency at 24 h of memory (bench/conversation.py --hours 24)" >&2
    timeout 150 "$python" "$here/conversation.py" --hours 24 || echo "note: the ask-latency run did not finish" >&2
fi
echo "gpu_check: $(( $(date +%s) - started )) s, exit $status" >&2
exit "$status"
