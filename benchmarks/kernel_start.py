"""Kernels forked from a zygote against kernels started cold, in one run: one ``import
tensorflow`` timed in a fresh Python (the unit the figures are given in), then the same folder
of notebooks graded twice by ``grader grade --quick`` (``$GRADER_ZYGOTE=off``, then unset: the
batch forks its kernels), with the wall time of each, the seconds per notebook waiting for its
kernel (on average, which counts each worker's zygote starting with its first notebook, and the
median), running its cells and the grader's own, and whether every notebook got the same
verdicts both times.

usage: python benchmarks/kernel_start.py FOLDER [--jobs 2] [--spec SPEC.toml] [--data MNIST.npz]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def import_seconds() -> float:
    """Seconds a fresh Python takes to ``import tensorflow``, timed inside it."""
    script = "import time; t = time.perf_counter(); import tensorflow; print(time.perf_counter() - t)"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(run.stdout.strip().splitlines()[-1])


def grade(folder: Path, jobs: int, extra: list[str], zygote: str | None) -> dict[str, Any]:
    """Grade ``folder`` as an instructor would, timed; the results and where their seconds went."""
    environment = {key: value for key, value in os.environ.items() if key != "GRADER_ZYGOTE"}
    if zygote is not None:
        environment["GRADER_ZYGOTE"] = zygote
    with tempfile.TemporaryDirectory(prefix="grader-kernel-start-") as out:
        command = [sys.executable, "-m", "grader", "grade", str(folder), "--quick", "--jobs", str(jobs)]
        started = time.monotonic()
        subprocess.run([*command, "--out", out, *extra], env=environment, capture_output=True, check=False)
        wall = time.monotonic() - started
        results = json.loads((Path(out) / "results.json").read_text())["submissions"]
    timed = [result["timings"] for result in results if result.get("timings")]

    def mean(key: str) -> float:
        return statistics.mean(timing[key] for timing in timed) if timed else 0.0

    return {
        "wall": wall,
        "kernel_start": mean("kernel_start"),
        "kernel_start_median": statistics.median(timing["kernel_start"] for timing in timed) if timed else 0.0,
        "cells": mean("cells"),
        "grader": mean("grading") - mean("kernel_start") - mean("cells"),
        "forked": sum(result.get("kernel_start") == "forked" for result in results),
        "verdicts": {
            result["id"]: (result["status"], result["score"], sorted((c["id"], c["status"]) for c in result["checks"]))
            for result in results
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--spec")
    parser.add_argument("--data")
    arguments = parser.parse_args()
    extra = ["--spec", arguments.spec] if arguments.spec else []
    extra += ["--data", arguments.data] if arguments.data else []
    tensorflow = import_seconds()
    print(f"import tensorflow: {tensorflow:.2f} s")
    runs = {}
    for label, zygote in (("cold", "off"), ("forked", None)):
        runs[label] = run = grade(arguments.folder, arguments.jobs, extra, zygote)
        notebooks = len(run["verdicts"])
        print(
            f"{label}: {notebooks} notebooks, --jobs {arguments.jobs}, {run['wall']:.1f} s "
            f"({run['wall'] / tensorflow:.1f}x import tensorflow); per notebook: waiting for its kernel "
            f"{run['kernel_start']:.2f} s on average ({run['kernel_start'] / tensorflow:.2f}x; the median "
            f"{run['kernel_start_median']:.2f} s, {run['kernel_start_median'] / tensorflow:.2f}x), "
            f"its cells {run['cells']:.2f} s, "
            f"the grader's own {run['grader']:.2f} s; {run['forked']} kernels forked"
        )
    cold, forked = runs["cold"]["verdicts"], runs["forked"]["verdicts"]
    differ = sorted(name for name in cold.keys() | forked.keys() if cold.get(name) != forked.get(name))
    print(f"verdicts differ for: {', '.join(differ)}" if differ else "verdicts: the same for every notebook")


if __name__ == "__main__":
    main()
