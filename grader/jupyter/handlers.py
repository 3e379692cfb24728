"""Jupyter Server's side of the Check button: a REST API under ``/grader/checks``, behind the
server's own authentication and XSRF checks, on the server's own port.

- ``POST /grader/checks`` ``{"path": "folder/notebook.ipynb", "full": false}``: starts a check
  of the saved notebook (or answers with the one already running for it);
- ``GET /grader/checks/ID``: its state (``checks.Check.state``);
- ``DELETE /grader/checks/ID``: cancels it;
- ``GET /grader/checks/ID/report/PATH``: its HTML page, as ``grader grade`` draws it.
"""

from __future__ import annotations

import json
import mimetypes
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join

from grader.jupyter.checks import Check, CheckRefused, Checks

CHECK_ID = r"(?P<check_id>[0-9a-f]{16})"


class _WithChecks:
    @property
    def checks(self) -> Checks:
        return self.settings["grader_checks"]  # type: ignore[attr-defined,no-any-return]

    def found(self, check_id: str) -> Check:
        check = self.checks.get(check_id)
        if check is None:
            raise tornado.web.HTTPError(404, "no such check: it finished long ago, or the server restarted")
        return check


class ChecksHandler(_WithChecks, APIHandler):
    @tornado.web.authenticated
    def post(self) -> None:
        body: Any = self.get_json_body() or {}
        try:
            check = self.checks.start(body.get("path"), full=bool(body.get("full", False)))
        except CheckRefused as refused:
            raise tornado.web.HTTPError(400, str(refused)) from None
        self.set_status(202)
        self.finish(json.dumps(check.state()))


class CheckHandler(_WithChecks, APIHandler):
    @tornado.web.authenticated
    def get(self, check_id: str) -> None:
        self.finish(json.dumps(self.found(check_id).state()))

    @tornado.web.authenticated
    def delete(self, check_id: str) -> None:
        check = self.found(check_id)
        check.cancel()
        self.finish(json.dumps(check.state()))


class CheckPageHandler(_WithChecks, JupyterHandler):
    @tornado.web.authenticated
    def get(self, check_id: str, relative: str) -> None:
        page = self.checks.page(check_id, relative)
        if page is None:
            raise tornado.web.HTTPError(404, "no such page")
        self.set_header("Content-Type", mimetypes.guess_type(page.name)[0] or "application/octet-stream")
        self.finish(page.read_bytes())


def setup_handlers(web_app: Any, checks: Checks) -> None:
    web_app.settings["grader_checks"] = checks
    base = url_path_join(web_app.settings["base_url"], "grader", "checks")
    web_app.add_handlers(
        ".*$",
        [
            (base, ChecksHandler),
            (url_path_join(base, CHECK_ID), CheckHandler),
            (url_path_join(base, CHECK_ID, "report", r"(?P<relative>.+)"), CheckPageHandler),
        ],
    )
