"""The Check button inside Jupyter: a JupyterLab 4 and Notebook 7 extension (its TypeScript is in
``jupyter-extension/``, built into ``labextension/``) and this Jupyter Server extension behind it,
which grades the saved notebook with ``grader check`` (``checks.py``) through a REST API of the
server's own (``handlers.py``). Installing the grader installs both and enables them.

Configured as the server is, e.g. in ``jupyter_server_config.py`` or on its command line:
``c.GraderCheck.spec`` (the exercise's spec, else ``grader check``'s default), ``c.GraderCheck.data``
(the data set's file, else where Keras keeps it) and ``c.GraderCheck.options`` (more options of
``grader check``, such as ``["--timeout", "600"]``).
"""

from __future__ import annotations

import atexit
from pathlib import Path
from typing import Any

from traitlets import List, Unicode
from traitlets.config import Configurable

LABEXTENSION_NAME = "keras-exercise-grader"


class GraderCheck(Configurable):
    spec = Unicode("", help="The exercise's spec (TOML) to grade against; empty: grader check's default.").tag(
        config=True
    )
    data = Unicode("", help="The data set's file (.npz); empty: where Keras keeps it.").tag(config=True)
    options = List(Unicode(), help="More options of grader check, e.g. ['--timeout', '600'].").tag(config=True)

    def arguments(self) -> list[str]:
        found = ["--spec", self.spec] if self.spec else []
        return found + (["--data", self.data] if self.data else []) + list(self.options)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "grader.jupyter"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": LABEXTENSION_NAME}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from grader.jupyter.checks import Checks
    from grader.jupyter.handlers import setup_handlers

    settings = GraderCheck(parent=server_app)
    checks = Checks(Path(server_app.root_dir), settings.arguments())
    setup_handlers(server_app.web_app, checks)
    atexit.register(checks.close)  # a check still running when the server stops stops with it
    server_app.log.info("keras-exercise-grader: the Check button's API is at /grader/checks")
