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
from grader.results import SubmissionResult

STORE_NAME = "results.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    submission_id TEXT NOT NULL,
    result TEXT NOT NULL,
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

    def get(self, key: str) -> SubmissionResult | None:
        row = self.connection.execute("SELECT result FROM results WHERE key = ?", (key,)).fetchone()
        return SubmissionResult.from_dict(json.loads(row[0])) if row else None

    def put(self, key: str, result: SubmissionResult) -> None:
        """Store one result; the transaction commits it whole or not at all."""
        with self.connection:
            self.connection.execute(
                "INSERT OR REPLACE INTO results (key, submission_id, result) VALUES (?, ?, ?)",
                (key, result.id, json.dumps(result.to_dict())),
            )

    def close(self) -> None:
        self.connection.close()
