"""Install the grader and its dependencies except TensorFlow, with the extras named (e.g. ``jax
test``), into the running Python: an environment that grades on JAX or PyTorch alone.

    python .ci/install_without_tensorflow.py jax test
"""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def requirements(extras: list[str]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        sys.exit(f"unknown extras {unknown}; the project's: {sorted(optional)}")
    wanted = [*project["dependencies"], *(requirement for extra in extras for requirement in optional[extra])]
    return [requirement for requirement in wanted if not requirement.lower().startswith("tensorflow")]


if __name__ == "__main__":
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *requirements(sys.argv[1:])], check=True)
    subprocess.run([*pip, "--no-deps", "--editable", str(ROOT)], check=True)
