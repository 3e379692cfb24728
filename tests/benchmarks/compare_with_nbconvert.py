"""Prints how long a full grade of a notebook takes next to running the same notebook
with ``jupyter nbconvert --execute``, on this machine, one after the other.

    python tests/benchmarks/compare_with_nbconvert.py --data PATH/TO/mnist.npz [NOTEBOOK]

nbconvert's kernel gets the same data: an IPython start-up file in a temporary
IPYTHONDIR serves the arrays to ``keras.datasets.mnist.load_data()``, as the
grader's instrumentation does (Keras itself would try to download them).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.spec.exercise import DEFAULT_SPEC, load_spec

STARTUP = """
import numpy as np
from keras.datasets import mnist

def _load_data(*args, **kwargs):
    with np.load({path!r}, allow_pickle=False) as arrays:
        return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])

mnist.load_data = _load_data
"""


def timed(command: list[str], environment: dict[str, str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode not in (0, 1):  # `grader check` exits 1 when a check fails
        sys.exit(f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", nargs="?", type=Path, default=load_spec(DEFAULT_SPEC).solution)
    parser.add_argument("--data", type=Path, required=True, help="the mnist.npz to serve to both")
    arguments = parser.parse_args()
    data = arguments.data.resolve()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as scratch:
        startup = Path(scratch, "ipython", "profile_default", "startup")
        startup.mkdir(parents=True)
        (startup / "00-serve-mnist.py").write_text(STARTUP.format(path=str(data)))
        environment = {**os.environ, "IPYTHONDIR": str(Path(scratch, "ipython")), "TF_CPP_MIN_LOG_LEVEL": "2"}
        nbconvert = [str(bin_dir / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                     "--ExecutePreprocessor.timeout=-1", "--output-dir", scratch, str(arguments.notebook)]  # fmt: skip
        plain = timed(nbconvert, environment)
        grade = [str(bin_dir / "grader"), "check", str(arguments.notebook), "--full", "--json", "--data", str(data)]
        graded = timed(grade, {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    print(f"jupyter nbconvert --execute: {plain:.1f} s")
    print(f"grader check --full:         {graded:.1f} s")
    print(f"the full grade is {plain / graded:.2f} times as fast")


if __name__ == "__main__":
    main()
