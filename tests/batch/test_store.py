"""The store's key covers everything a verdict depends on, and nothing else."""

import dataclasses

from grader.batch.store import result_key
from tests.conftest import context


def test_the_key_changes_with_what_changes_a_verdict_and_only_with_that(spec, monkeypatch):
    quick = dataclasses.replace(context(spec, quick=True), data_digest="mnist-a", software={"keras": "3.15.1"})
    full = dataclasses.replace(quick, options=dataclasses.replace(quick.options, quick=False))
    key = result_key(b"notebook", quick)
    assert result_key(b"notebook", quick) == key
    assert result_key(b"notebook, edited", quick) != key
    assert result_key(b"notebook", dataclasses.replace(quick, data_digest="mnist-b")) != key
    assert result_key(b"notebook", full) != key
    assert result_key(b"notebook", dataclasses.replace(full, software={"keras": "3.16.0"})) != result_key(
        b"notebook", full
    )
    # Quick grades measure no accuracy: another Keras gives the same verdicts.
    assert result_key(b"notebook", dataclasses.replace(quick, software={"keras": "3.16.0"})) == key
    # How a grading is logged or retried changes no verdict.
    neutral = dataclasses.replace(quick.options, keep_logs=True, retry_pause=30.0)
    assert result_key(b"notebook", dataclasses.replace(quick, options=neutral)) == key
    import grader.batch.store

    monkeypatch.setattr(grader.batch.store, "__version__", "99.0")
    assert result_key(b"notebook", quick) != key
