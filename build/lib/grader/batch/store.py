"""Results that outlive the grader: a SQLite file in the output folder.

Each graded notebook is one row, committed as soon as it is graded, keyed by
everything its grade depends on: the notebook's bytes, the spec and its
calibration, the grader's version and the grading options. A batch killed
half-way is finished by running it again; unchanged notebooks are not regraded.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import asdict
from pathlib import Path

from grader import __version__
from grader.judge.results import Graded, SubmissionResult

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


def result_key(notebook: bytes, spec_digest: str, options: object) -> str:
    """What a grade depends on, hashed; ``options`` is a dataclass of grading options."""
    settings = json.dumps(asdict(options), default=str)  # type: ignore[call-overload]
    parts = [hashlib.sha256(notebook).hexdigest(), spec_digest, __version__, settings]
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
        """Store one result and its executed notebook; the transaction commits them whole or not at all."""
        with self.connection:
            self.connection.execute(
                "INSERT OR REPLACE INTO graded (key, submission_id, result, notebook) VALUES (?, ?, ?, ?)",
                (key, graded.result.id, json.dumps(graded.result.to_dict()), graded.notebook),
            )

    def close(self) -> None:
        self.connection.close()
