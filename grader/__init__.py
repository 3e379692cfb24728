"""Autograder and training-speed bench for Keras deep-learning exercises.

In a notebook, ``from grader import check; check(model_2)`` checks a built
model against the exercise (see ``grader.judge.self_check``).
"""

import sys
from typing import Any

# jsonschema, which nbformat imports, imports rfc3987_syntax wherever it is installed (Jupyter's
# event schemas pull it in) and compiles its grammar as it does: 1 to 3 s of every command's and
# every worker's start, for a format ("iri") no schema the grader validates uses. Left out of the
# grader's own processes; a kernel (ipykernel is loaded before the grader there) is not touched.
if "ipykernel" not in sys.modules and "jsonschema" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

__version__ = "0.3.0"
__all__ = ["__version__", "check"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the kernel instrumentation imports this package too.
    if name == "check":
        from grader.judge.self_check import check

        return check
    raise AttributeError(f"module 'grader' has no attribute {name!r}")
