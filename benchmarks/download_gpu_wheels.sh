#!/usr/bin/env bash
# Run here, with network: fetch what benchmarks/gpu_throughput.sh needs on a GPU machine that has
# none (Python 3.12 on x86-64 with JAX and/or PyTorch, without TensorFlow or Jupyter): Keras and
# Jupyter's kernel stack as wheels, and a copy of MNIST, into .whl/ (ignored by git).
# usage: benchmarks/download_gpu_wheels.sh [MNIST.npz]   (default: $GRADER_MNIST)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${GRADER_MNIST:-}}
[ -f "$data" ] || { echo "usage: $0 MNIST.npz (an mnist.npz in Keras' layout; or set GRADER_MNIST)" >&2; exit 2; }
folder=.whl
rm -rf "$folder" && mkdir -p "$folder"

# The grader's dependencies but TensorFlow (the GPU machine runs Keras on JAX or PyTorch).
python3 -m pip download --quiet --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$folder" \
  keras nbclient nbformat ipykernel nbconvert bleach copydetect

# Already there (the machine's package list): leaving them out keeps under the 64 MiB that travel.
present="numpy matplotlib contourpy cycler fonttools kiwisolver pillow pyparsing python_dateutil six jinja2
  markupsafe click rich markdown_it_py mdurl pygments packaging absl_py h5py ml_dtypes psutil pyyaml tqdm attrs
  typing_extensions setuptools certifi charset_normalizer idna requests urllib3"
for name in $present; do
  find "$folder" -maxdepth 1 -iname "${name}-*.whl" -delete
done
cp "$data" "$folder/mnist.npz"
echo "$(ls "$folder"/*.whl | wc -l) wheels and mnist.npz in $folder: $(du -sh "$folder" | cut -f1)"
