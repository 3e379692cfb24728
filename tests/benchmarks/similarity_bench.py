"""Prints how long the class page's similarity takes on a synthetic class, and how well it
tells disguised copies from honest students who wrote the same exercise:

    python -m tests.benchmarks.similarity_bench [--students 195] [--copies 5]

The class: ``--students`` honest notebooks in styles of their own and ``--copies`` copies of
some of them with renamed variables and changed comments (``tests/reports/synthetic_class.py``);
the handout's and the solution's code left out as ``grade`` does.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from grader.reports.similarity import DEFAULT_THRESHOLD, class_similarity, expected_code
from grader.spec.exercise import DEFAULT_SPEC, load_spec
from tests.reports.synthetic_class import write_class

# Pairs at or above this are kept for the quality figures (below it they are clearly apart).
LOWEST_SHOWN = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=195)
    parser.add_argument("--copies", type=int, default=5)
    args = parser.parse_args()
    spec = load_spec(DEFAULT_SPEC)
    expected = expected_code(spec.handout, spec.solution)
    copied = tuple(range(3, 3 + 17 * args.copies, 17))
    with tempfile.TemporaryDirectory() as folder:
        notebooks = write_class(Path(folder), args.students, copied)
        started = time.perf_counter()
        found = class_similarity(notebooks, expected, DEFAULT_THRESHOLD)
        seconds = time.perf_counter() - started
        everything = class_similarity(notebooks, expected, LOWEST_SHOWN)
    copies = {(f"copy_of_{n:03d}", f"student_{n:03d}") for n in copied}
    flagged = {(pair.first, pair.second) for pair in found.pairs}
    copy_scores = [pair.similarity for pair in everything.pairs if (pair.first, pair.second) in copies]
    honest_scores = [pair.similarity for pair in everything.pairs if (pair.first, pair.second) not in copies]
    pair_count = len(notebooks) * (len(notebooks) - 1) // 2
    print(f"{len(notebooks)} notebooks, {pair_count} pairs: {seconds:.1f} s at threshold {DEFAULT_THRESHOLD}")
    print(f"copies flagged: {len(flagged & copies)} of {len(copies)}; scores {sorted(copy_scores)}")
    print(f"honest pairs flagged: {len(flagged - copies)}")
    if honest_scores:
        print(
            f"honest pairs at {LOWEST_SHOWN} or more: {len(honest_scores)}, highest {max(honest_scores):.3f}, "
            f"median of those {statistics.median(honest_scores):.3f}"
        )
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
