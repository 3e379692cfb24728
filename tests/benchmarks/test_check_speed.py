"""How long a student waits for `grader check` (quick mode), TensorFlow import and
kernel start included. Run with `tox -e bench`; the default test run skips it."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.kernel


def test_quick_check_of_the_model_solution(benchmark, mnist_path, spec):
    command = [sys.executable, "-m", "grader", "check", str(spec.solution), "--data", str(mnist_path)]

    def check() -> None:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert completed.returncode == 0, completed.stdout + completed.stderr

    benchmark.pedantic(check, rounds=3, iterations=1)
