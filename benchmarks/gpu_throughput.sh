#!/usr/bin/env bash
# On a GPU machine, in under 8 minutes: full grades per hour of the solution notebook (written
# with `import keras`) on each Keras backend installed there, with several workers, and the same
# for a quick batch; seconds per epoch of each model and GPU memory per notebook come with it.
# Installs the wheels benchmarks/download_gpu_wheels.sh left in .whl/ first, if any.
# usage: benchmarks/gpu_throughput.sh [MNIST.npz]
#   env: BACKENDS (default: jax torch tensorflow, those installed), COPIES (full batch, default 32),
#        QUICK_COPIES (default 64), JOBS (default: the grader's own), OUT (JSON figures go there),
#        PYTHON (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${GRADER_MNIST:-.whl/mnist.npz}}
python=${PYTHON:-python3}
[ -f "$data" ] || { echo "no MNIST at $data: pass its path, or run benchmarks/download_gpu_wheels.sh" >&2; exit 2; }
if compgen -G ".whl/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/grader-site .whl/*.whl
  export PYTHONPATH=/tmp/grader-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
out=${OUT:-$(mktemp -d)}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
nproc; "$python" --version
jobs=()
[ -n "${JOBS:-}" ] && jobs=(--jobs "$JOBS")
for backend in ${BACKENDS:-jax torch tensorflow}; do
  "$python" -c "import $backend" 2>/dev/null || { echo "$backend: not installed, skipped"; continue; }
  for mode in full quick; do
    copies=${COPIES:-32}
    [ "$mode" = quick ] && copies=${QUICK_COPIES:-64}
    echo "== $backend, $mode mode, $copies copies"
    "$python" -m grader bench --batch "$copies" "--$mode" --backend "$backend" "${jobs[@]}" --data "$data" --json \
      | tee "$out/$backend-$mode.json"
  done
done
echo "figures: $out"
