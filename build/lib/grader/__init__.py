"""Autograder and training-speed bench for Keras deep-learning exercises.

In a notebook, ``from grader import check; check(model_2)`` checks a built
model against the exercise (see ``grader.judge.self_check``).
"""

from typing import Any

__version__ = "0.2.0"
__all__ = ["__version__", "check"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the kernel instrumentation imports this package too.
    if name == "check":
        from grader.judge.self_check import check

        return check
    raise AttributeError(f"module 'grader' has no attribute {name!r}")
