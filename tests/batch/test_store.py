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
    # In every mode: the Keras stack and the backend it ran on, the spec and its calibration
    for mode in (quick, full):
        for software in ({"keras": "3.16.0"}, {"keras": "3.15.1", "backend": "jax/cpu"}):
            assert result_key(b"notebook", dataclasses.replace(mode, software=software)) != result_key(
                b"notebook", mode
            )
        other_spec = dataclasses.replace(mode, spec=dataclasses.replace(spec, digest="another calibration"))
        assert result_key(b"notebook", other_spec) != result_key(b"notebook", mode)
    # How a grading is logged or retried changes no verdict.
    neutral = dataclasses.replace(quick.options, keep_logs=True, retry_pause=30.0)
    assert result_key(b"notebook", dataclasses.replace(quick, options=neutral)) == key
    import grader.batch.store

    monkeypatch.setattr(grader.batch.store, "__version__", "99.0")
    assert result_key(b"notebook", quick) != key
    monkeypatch.undo()
    # A result stored in an earlier form of results is graded again, never read as what it does not say
    monkeypatch.setattr(grader.batch.store, "RESULTS_SCHEMA_VERSION", 1)
    assert result_key(b"notebook", quick) != key
