"""Results that outlive the grader: a SQLite file in the output folder.

Each graded notebook is one row, committed as soon as it is graded, keyed by
everything its grade depends on: the notebook's bytes, the spec and its
calibration, the data set, the grader's version and the version of the results' form
(``RESULTS_SCHEMA_VERSION``), the grading options and the Keras stack and backend it ran on,
in every mode. A batch killed half-way is
finished by running it again; unchanged notebooks are not regraded. A notebook that a fault
of the grader's kept from being graded is never stored: the next run grades it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from grader import __version__
from grader.judge.pipeline import GradingContext
from grader.judge.results import RESULTS_SCHEMA_VERSION, Graded, SubmissionResult
from grader.protocol.text import encodable

STORE_NAME = "results.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS graded (
    key TEXT PRIMARY KEY,
    submission_id TEXT NOT NULL,
    result TEXT NOT NULL,
    notebook TEXT,
    graded_at TEXT NOT NULL DEFAULT (datetime('now'))
)
"""


# Options that change how a grading is run or reported, never its verdict.
VERDICT_NEUTRAL = ("keep_logs", "retry_pause")


def result_key(notebook: bytes, context: GradingContext, class_text: Iterable[str] = ()) -> str:
    """What a grade depends on, hashed. ``class_text``: the sentences of the notebook that most
    of its class holds (not its answers): a class that changes around it changes its grade only
    where these change."""
    options = context.options
    parts = [
        hashlib.sha256(notebook).hexdigest(),
        context.spec.digest,
        context.data_digest,
        __version__,
        # A result stored in an earlier form is graded again, not read as what it does not say
        f"results schema {RESULTS_SCHEMA_VERSION}",
        json.dumps({k: v for k, v in asdict(options).items() if k not in VERDICT_NEUTRAL}, default=str, sort_keys=True),
        json.dumps(context.software, sort_keys=True),
        *([json.dumps(sorted(class_text))] if class_text else []),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class ResultStore:
    def __init__(self, folder: Path) -> None:
        self.path = folder / STORE_NAME
        self.connection = sqlite3.connect(self.path)
        with self.connection:
            self.connection.execute(SCHEMA)

    def get(self, key: str) -> Graded | None:
        row = self.connection.execute("SELECT result, notebook FROM graded WHERE key = ?", (key,)).fetchone()
        return Graded(SubmissionResult.from_dict(json.loads(row[0])), row[1]) if row else None

    def put(self, key: str, graded: Graded) -> None:
        """Store one result and its executed notebook; the transaction commits them whole or not at all.
        A result that is not the notebook's grade (a fault of the grader's) is not stored."""
        if graded.result.fault == "grader":
            return
        # SQLite takes only UTF-8: what the kernel printed may hold text that is not (a lone surrogate)
        notebook = encodable(graded.notebook) if graded.notebook is not None else None
        with self.connection:
            self.connection.execute(
                "INSERT OR REPLACE INTO graded (key, submission_id, result, notebook) VALUES (?, ?, ?, ?)",
                (key, graded.result.id, json.dumps(graded.result.to_dict()), notebook),
            )

    def close(self) -> None:
        self.connection.close()
