"""Batch behaviour that needs no kernel: files that cannot be run become results."""

from grader.batch.grade import grade_batch
from grader.batch.store import STORE_NAME, ResultStore
from grader.judge.results import Graded
from tests.conftest import context


def test_invalid_files_and_duplicate_ids_are_results_and_the_batch_goes_on(spec, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "alice.ipynb", tmp_path / "b" / "alice.ipynb"
    first.write_text("{broken")
    second.write_text("{broken")
    finished = []
    run = grade_batch(
        [first, second],
        context(spec, quick=True),
        ResultStore(tmp_path),
        False,
        lambda graded, _: finished.append(graded),
    )
    assert len(finished) == 2
    assert [r.status for r in run.submissions] == ["invalid", "invalid"]
    assert "not a valid Jupyter notebook" in run.submissions[0].error
    assert "has the same id 'alice'; rename one of the files" in run.submissions[1].error
    assert [(r.score, r.max_score) for r in run.submissions] == [(0, 15), (0, 15)]
    assert run.mode == "quick"


def test_an_invalid_file_in_full_mode_is_out_of_every_point(spec, tmp_path):
    path = tmp_path / "bob.ipynb"
    path.write_text("[]")
    result = grade_batch([path], context(spec, quick=False), ResultStore(tmp_path)).submissions[0]
    assert (result.status, result.score, result.max_score) == ("invalid", 0, 24)
    assert {check.status for check in result.checks} == {"error"}


def test_a_fault_of_the_grader_is_retried_then_not_graded_not_stored_and_graded_on_the_next_run(
    spec, tmp_path, monkeypatch
):
    import grader.judge.pipeline
    from grader.errors import GraderFault

    attempts: list[str] = []
    broken = {"first": True}

    def flaky(path, context, more_to_come=False):
        attempts.append(path.stem)
        if path.stem == "first" and broken["first"]:
            raise GraderFault("the kernel died before replying to kernel_info", {"kernel.log": "Permission denied"})
        if path.stem == "second" and attempts.count("second") < 3:
            raise RuntimeError("zmq went away")  # a bug of the grader's, twice, then gone
        return Graded(grader.judge.pipeline.unrunnable_result(path, "invalid", "fine", context))

    monkeypatch.setattr(grader.judge.pipeline, "grade_notebook", flaky)
    paths = [tmp_path / "first.ipynb", tmp_path / "second.ipynb"]
    for path in paths:
        path.write_text(path.stem)
    store = ResultStore(tmp_path)
    out = tmp_path / "out"
    run = grade_batch(paths, context(spec, quick=True), store, logs_out=out)
    first, second = run.submissions
    assert attempts == ["first", "first", "first", "second", "second", "second"]  # a fresh try at once, then one more
    assert (first.status, first.fault, first.score, first.max_score, first.checks) == (
        "not_graded", "grader", None, None, ()
    )  # fmt: skip
    assert "not of the notebook: the kernel died before replying to kernel_info" in first.error
    assert "Build and train it" not in first.error
    assert first.logs == "logs/first" and (out / "logs" / "first" / "kernel.log").read_text() == "Permission denied"
    assert (second.status, second.attempts) == ("invalid", 3)  # graded on its third try
    assert second.logs is None  # logs are kept for faults of the grader's only, unless asked

    broken["first"] = False
    reused = []
    again = grade_batch(paths, context(spec, quick=True), store, on_result=lambda g, was: reused.append(was))
    assert [r.status for r in again.submissions] == ["invalid", "invalid"]
    assert sorted(reused) == [False, True]  # the fault was not stored: graded again without --force


def test_unchanged_notebooks_are_reused_and_force_regrades_them(spec, tmp_path, monkeypatch):
    import grader.judge.pipeline

    graded = []

    def fake_grade(path, context, more_to_come=False):
        graded.append(path.name)
        return Graded(grader.judge.pipeline.unrunnable_result(path, "error", f"graded {len(graded)}", context), "{}")

    monkeypatch.setattr(grader.judge.pipeline, "grade_notebook", fake_grade)
    first, second = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    first.write_text("one")
    second.write_text("two")
    store = ResultStore(tmp_path)
    grade_batch([first, second], context(spec, quick=True), store)
    second.write_text("two, changed")
    renamed = tmp_path / "c.ipynb"
    first.rename(renamed)
    reused = []
    run = grade_batch(
        [renamed, second], context(spec, quick=True), store, on_result=lambda g, was: reused.append((was, g.notebook))
    )
    assert graded == ["a.ipynb", "b.ipynb", "b.ipynb"]
    assert reused == [(True, "{}"), (False, "{}")]  # the executed notebook comes back from the store too
    assert [(r.id, r.error) for r in run.submissions] == [("c", "graded 1"), ("b", "graded 3")]
    assert grade_batch([renamed], context(spec, quick=False), store).submissions[0].error == "graded 4"  # other mode
    grade_batch([renamed], context(spec, quick=True), store, force=True)
    assert graded[-1] == "c.ipynb"
    assert (tmp_path / STORE_NAME).is_file()


def test_a_host_side_step_that_fails_on_one_notebook_costs_only_that_notebook(spec, tmp_path, monkeypatch):
    import grader.judge.pipeline

    def fake_grade(path, context, more_to_come=False):
        return Graded(grader.judge.pipeline.unrunnable_result(path, "error", "graded", context), "{}")

    monkeypatch.setattr(grader.judge.pipeline, "grade_notebook", fake_grade)
    paths = [tmp_path / f"{name}.ipynb" for name in ("first", "breaks_the_reports", "third")]
    for path in paths:
        path.write_text(path.stem)
    reported = []

    def on_result(graded, reused):
        if graded.result.id == "breaks_the_reports" and graded.result.status != "not_graded":
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        reported.append((graded.result.id, graded.result.status))

    run = grade_batch(paths, context(spec, quick=True), ResultStore(tmp_path), on_result=on_result)
    assert [(r.id, r.status) for r in run.submissions] == [
        ("first", "error"), ("breaks_the_reports", "not_graded"), ("third", "error")
    ]  # fmt: skip
    assert reported == [(r.id, r.status) for r in run.submissions]
    assert "the grader failed on this notebook's result (UnicodeEncodeError" in run.submissions[1].error


def test_text_no_utf8_holds_is_stored_replaced(spec, tmp_path):
    from grader.batch.store import result_key
    from grader.judge.pipeline import unrunnable_result

    store = ResultStore(tmp_path)
    result = unrunnable_result(tmp_path / "x.ipynb", "error", "why", context(spec, quick=True))
    key = result_key(b"notebook", context(spec, quick=True))
    store.put(key, Graded(result, '{"source": "\ud800"}'))
    assert store.get(key).notebook == '{"source": "\ufffd"}'


def test_a_notebook_is_read_with_its_class_and_regraded_only_when_its_class_sentences_change(
    spec, tmp_path, monkeypatch
):
    import nbformat

    import grader.judge.pipeline

    seen: dict[str, frozenset[str]] = {}

    def fake_grade(path, context, more_to_come=False):
        seen[path.stem] = context.class_text
        return Graded(grader.judge.pipeline.unrunnable_result(path, "error", "graded", context), "{}")

    monkeypatch.setattr(grader.judge.pipeline, "grade_notebook", fake_grade)
    handout = "Think about the following questions before you answer them here."
    paths = []
    for index in range(5):
        path = tmp_path / f"s{index}.ipynb"
        cells = [nbformat.v4.new_markdown_cell(f"{handout}\n\nMy own answer number {index} is here.")]
        nbformat.write(nbformat.v4.new_notebook(cells=[*cells, nbformat.v4.new_code_cell("x = 1")]), path)
        paths.append(path)
    store = ResultStore(tmp_path)
    grade_batch(paths, context(spec, quick=True), store)
    assert set(seen) == {f"s{index}" for index in range(5)}
    assert all(text == {"think about the following questions before you answer them here"} for text in seen.values())
    reused = []
    grade_batch(paths[:4], context(spec, quick=True), store, on_result=lambda g, was: reused.append(was))
    assert reused == [False] * 4  # four notebooks are no class: their handout's sentences now count as theirs
    reused.clear()
    grade_batch(paths, context(spec, quick=True), store, on_result=lambda g, was: reused.append(was))
    assert reused == [True] * 5  # the class as it was first: every result reused
