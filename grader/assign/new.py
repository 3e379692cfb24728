"""``grader new``: an exercise from its solution notebook, as otter's ``assign`` and nbgrader's
``generate_assignment`` make one. The pipeline:

find the data (a ``keras.datasets`` loader or a file beside the solution) → run the solution in
the sandbox, full mode, as a grade would → read every model it trained, and how it prepared its
inputs → write the spec (``draft.py``), the handout (``handout.py``), and the data file and the
solution beside the spec. The calibration runs afterwards, in the CLI's process, as ``grader
calibrate`` does (it imports Keras; this module does not)."""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
import numpy as np

from grader.assign.data_source import DataSource, find_data_source
from grader.assign.draft import (
    RELATIVE_MARGIN,
    DraftModel,
    ExerciseDraft,
    accuracy_margin,
    binary_forms,
    draft_model,
    label_classes,
    render_spec,
    spec_preparation,
    task_of,
)
from grader.assign.handout import make_handout
from grader.errors import DataError, SpecError
from grader.evaluation.preprocessing import TrainingRows, derive_preprocessing, why_not_derived
from grader.evaluation.untrusted import read_array
from grader.ingest.notebook import load_submission
from grader.judge.facts import ModelFacts
from grader.judge.pipeline import GradingOptions, context_for, instrumented_run
from grader.protocol.fingerprints import MAX_SAMPLE_BYTES
from grader.run.backends import choose_backend
from grader.spec.datasets import ARRAY_KEYS, file_digest, load_dataset, locate_data, write_keras_layout
from grader.spec.exercise import DataSpec, Spec
from grader.spec.preprocessing import Preprocessing


@dataclass(frozen=True)
class NewExercise:
    """What ``grader new`` wrote, and what it found."""

    spec: Path
    handout: Path
    draft: ExerciseDraft
    # The solution's run: "completed", or how it ended
    outcome: str


def default_spec_path(solution: Path) -> Path:
    """``digits_cnn_solution.ipynb`` → ``digits_cnn.toml``, beside it."""
    stem = solution.stem.removesuffix("_solution").removesuffix("-solution") or solution.stem
    return solution.with_name(f"{stem}.toml")


def new_exercise(
    solution: Path, out: Path, name: str | None = None, data_path: Path | None = None,
    options: GradingOptions | None = None, force: bool = False, private_share: float | None = None,
) -> NewExercise:  # fmt: skip
    """Run ``solution`` and write the spec ``out``, its handout, and the solution and data file
    beside it; with ``private_share``, that share of the data file's test rows is held back in a
    private test set beside the spec, and the data file beside it holds the rest.
    ``SpecError`` says what stops it (nothing is written then)."""
    options = options or GradingOptions()
    if out.suffix != ".toml":
        raise SpecError(f"--out {out}: a spec is a .toml file; name one (say {default_spec_path(solution).name})")
    _refuse_to_overwrite(solution, out, force)
    try:
        notebook = nbformat.read(solution, as_version=4)  # type: ignore[no-untyped-call]
    except Exception as error:  # nbformat raises several kinds for a file that is not a notebook
        raise SpecError(f"{solution} is not a readable notebook ({type(error).__name__}: {error})") from None
    handout = make_handout(notebook)  # checks the solution markers before anything runs
    source = find_data_source(notebook, solution.parent, data_path)
    if private_share is not None:
        _check_private_share(private_share, source, out)
    data_file = source.file or locate_data(_loader_data(source), data_path)
    if source.file and not force:
        _refuse_to_overwrite(source.file, out, force, "the data file's copy")
    data = _data_spec(source, data_file)
    arrays = load_dataset(data_file, data)
    if not len(arrays.x_test) or not len(arrays.x_train):
        raise SpecError(f"{data_file.name} holds no training or no test rows: a spec needs both")
    models, preprocessing, outcome, notes = _run_solution(solution, data, data_file, options, arrays.x_train)
    tasks = {task_of(model) for model in models}
    task = tasks.pop() if len(tasks) == 1 and None not in tasks else None
    if task is None:
        for model in models:
            draft_model(model)  # says which model is neither a classifier nor a regression
        raise SpecError(
            f"the solution's models ({', '.join(model.name for model in models)}) are classifiers and regressions "
            "both: one spec grades one task; make one spec of each"
        )
    classes, first_class = (
        label_classes(arrays.y_train, f"{data_file.name}'s y_train", _outputs(models[0]))
        if task == "classification"
        else (0, 0)
    )
    input_shape = models[0].architecture.input_shape if models[0].architecture else None
    image_shape = tuple(int(dim) for dim in arrays.x_train.shape[1:])
    preparation, preparation_notes = spec_preparation(preprocessing, image_shape, tuple(input_shape or ()))
    drafted = tuple(draft_model(model) for model in models)
    preparation_notes += [
        f"{model.name} takes inputs of shape {model.architecture.input_shape}, {models[0].name} of {input_shape}: the "
        "spec prepares the data one way, the first model's: grade this one as an improvement, or in a spec of its own"
        for model in models[1:]
        if model.architecture is not None and model.architecture.input_shape != input_shape
    ]
    stem = out.stem
    held_back = _held_back(len(arrays.x_test), private_share) if private_share is not None else None
    test_rows = len(arrays.x_test) - len(held_back) if held_back is not None else len(arrays.x_test)
    measured_rows = len(held_back) if held_back is not None else len(arrays.x_test)
    draft = ExerciseDraft(
        name=name or _title(notebook) or stem.replace("_", " "),
        solution=solution.name,
        handout=f"{stem}_handout.ipynb",
        calibration=f"{stem}.calibration.json",
        source=source,
        data_sha256=source.download_sha256 or file_digest(data_file),
        image_shape=image_shape,
        classes=classes,
        train_samples=len(arrays.x_train),
        test_samples=test_rows,
        margin=accuracy_margin(measured_rows) if task == "classification" else RELATIVE_MARGIN,
        task=task,
        preparation=preprocessing.describe() if preprocessing else "not derived",
        models=drafted,
        review=(*notes, *preparation_notes, *_data_review(source, data_file), *_review(drafted, outcome)),
        validation_split=_validation_split(models[0], len(arrays.x_train)),
        first_class=first_class,
        binary_forms=binary_forms(classes, drafted[0]) if all(binary_forms(classes, m) for m in drafted) else (),
        private_test=f"{stem}_private_test.npz" if held_back is not None else None,
        **preparation,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    for file in (solution, *([source.file] if source.file and held_back is None else [])):
        if file.resolve().parent != out.parent.resolve():
            shutil.copyfile(file, out.parent / file.name)
    if held_back is not None and source.file is not None and draft.private_test is not None:
        public_digest = _split_off(
            source.file, held_back, out.parent / source.file.name, out.parent / draft.private_test
        )
        draft = replace(draft, data_sha256=public_digest)
    (out.parent / draft.calibration).unlink(missing_ok=True)  # runs of an earlier spec of this name
    out.write_text(render_spec(draft), encoding="utf-8")
    handout_path = out.parent / draft.handout
    nbformat.write(handout, handout_path)  # type: ignore[no-untyped-call]
    return NewExercise(out, handout_path, draft, outcome)


def _check_private_share(share: float, source: DataSource, out: Path) -> None:
    """A share of a data file of the author's own, split into a course folder of its own."""
    if not 0 < share < 1:
        raise SpecError(f"--private-share {share}: the share of the test rows held back, between 0 and 1 (say 0.5)")
    if source.file is None:
        raise SpecError(
            f"--private-share: the solution loads keras.datasets.{source.keras_dataset}, whose test rows every student "
            "can obtain: hold back rows of a data file of your own, beside the solution"
        )
    if source.file.resolve().parent == out.parent.resolve():
        raise SpecError(
            f"--private-share writes the students' copy of {source.file.name}, without the rows held back, beside the "
            "spec: give --out in another folder (the course's), so that your own data file stays whole"
        )


def _held_back(test_rows: int, share: float) -> np.ndarray:
    """The positions of the test rows held back: ``share`` of them, at least one and one fewer
    than all, drawn by a fixed seed (the same split each time)."""
    count = min(max(1, round(test_rows * share)), test_rows - 1)
    return np.sort(np.random.RandomState(0).permutation(test_rows)[:count])


def _split_off(data_file: Path, held_back: np.ndarray, public: Path, private: Path) -> str:
    """Write ``public``, ``data_file`` without the test rows at ``held_back``, and ``private``,
    those rows (``x_test``, ``y_test``), as the file holds them; the public file's sha256."""
    with np.load(data_file, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in ARRAY_KEYS}
    kept = np.setdiff1d(np.arange(len(arrays["x_test"])), held_back)
    # In Keras' layout too, its training arrays empty
    write_keras_layout(
        private,
        {"x_train": arrays["x_train"][:0], "y_train": arrays["y_train"][:0],
         "x_test": arrays["x_test"][held_back], "y_test": arrays["y_test"][held_back]},
    )  # fmt: skip
    return write_keras_layout(public, {**arrays, "x_test": arrays["x_test"][kept], "y_test": arrays["y_test"][kept]})


def _outputs(model: ModelFacts) -> int | None:
    """The units of ``model``'s output layer, if it is a Dense layer."""
    last = model.architecture.layers[-1] if model.architecture and model.architecture.layers else None
    return last.units if last is not None and last.type == "Dense" else None


def _validation_split(model: ModelFacts, train_rows: int) -> float:
    """The share of the training rows the solution's last fit of ``model`` kept for validation:
    Keras' ``validation_split``, or the rows a split by hand left out, as the shortest decimal
    that leaves the same rows."""
    fit = model.fits[-1] if model.fits else None
    if fit is None or fit.rows is None:
        return 0.0
    if fit.validation_split:
        return fit.validation_split
    if fit.rows >= train_rows:
        return 0.0
    share = (train_rows - fit.rows) / train_rows
    for digits in range(2, 10):
        rounded = round(share, digits)
        if math.floor(train_rows * (1 - rounded) + 1e-9) == fit.rows:
            return rounded
    return share


def _refuse_to_overwrite(solution: Path, out: Path, force: bool, copy: str | None = None) -> None:
    """``SpecError`` naming what ``grader new`` would write over (the spec, its handout and
    calibration, the solution's copy beside the spec; or ``copy``, the one file named), unless
    ``force``. A file copied onto itself is no loss."""
    if force:
        return
    stem = out.stem
    if copy is None:
        targets = [out, out.with_name(f"{stem}_handout.ipynb"), out.with_name(f"{stem}.calibration.json")]
    else:
        targets = []
    copied = out.parent / solution.name
    if copied.resolve() != solution.resolve():
        targets.append(copied)
    existing = [str(target) for target in targets if target.exists()]
    if existing:
        raise SpecError(
            f"grader new would write over {', '.join(existing)}{f' ({copy})' if copy else ''}: pass --force to "
            "write over them, or choose another --out"
        )


def _loader_data(source: DataSource) -> DataSpec:
    """Enough of a data spec to find a loader's file (``--data``, ``$GRADER_MNIST``, Keras' cache)."""
    return DataSpec(
        keras_dataset=source.keras_dataset, url=source.url, file_sha256=None, image_shape=(), classes=0,
        train_samples=0, test_samples=0, flatten=False, scale=1.0,
    )  # fmt: skip


def _data_spec(source: DataSource, path: Path) -> DataSpec:
    """A data spec that accepts the arrays ``path`` holds, whatever their counts, and serves
    them as the solution reads them."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            train, test = arrays["x_train"].shape, arrays["x_test"].shape
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"{path} is not an .npz in Keras' layout ({error}): it needs {list(ARRAY_KEYS)}") from None
    return DataSpec(
        keras_dataset=source.keras_dataset, url=None, file_sha256=None, image_shape=train[1:], classes=0,
        train_samples=train[0], test_samples=test[0], flatten=False, scale=1.0,
        file=str(source.file) if source.file else None,
    )  # fmt: skip


def _run_solution(
    solution: Path, data: DataSpec, data_file: Path, options: GradingOptions, train_images: np.ndarray
) -> tuple[list[ModelFacts], Preprocessing | None, str, list[str]]:
    """Run the solution in the sandbox as a grade would; its trained models (by the variable
    that holds each), how it prepared its inputs, how the run ended, and notes for review."""
    with tempfile.TemporaryDirectory(prefix="grader-new-") as scratch:
        # The draft's run knows no models by name: every model trained comes back, unclaimed.
        placeholder = Path(scratch) / "draft.toml"
        placeholder.write_text("# a draft: grader new is reading the solution\n")
        spec = Spec(path=placeholder, name="draft", solution=None, data=data, models=(), digest="draft")
        context = context_for(spec, options, choose_backend(options.backend), data_file)
        with instrumented_run(load_submission(solution), context) as (execution, facts, _):
            if execution.outcome != "completed" or execution.cell_errors:
                first = execution.cell_errors[0].describe() if execution.cell_errors else execution.message
                raise SpecError(f"the solution did not run to the end ({execution.outcome}): {first}")
            trained = _last_of_each_name(facts.unclaimed)
            kept = {id(model) for model in trained}
            reused = sorted({model.name for model in facts.unclaimed if id(model) not in kept})
            notes = [f"the variable {name} held several trained models; the spec states the last" for name in reused]
            if not trained:
                raise SpecError("the solution trained no Keras model: `grader new` writes a spec of what it trains")
            sample = next((fit.sample for fit in reversed(trained[0].fits) if fit.sample is not None), None)
            preprocessing = None
            if sample is not None:
                rows = read_array(sample, MAX_SAMPLE_BYTES).astype("float64")
                training = TrainingRows(train_images, context.fingerprints.train)
                preprocessing = derive_preprocessing(rows, training)
                if preprocessing is None:
                    notes.append(f"the solution's preparation of its inputs: {why_not_derived(rows, training)}")
        return trained, preprocessing, execution.outcome, [*notes, *facts.warnings]


def _last_of_each_name(models: tuple[ModelFacts, ...]) -> list[ModelFacts]:
    """The models trained, the last one of each variable name (a name trained twice keeps its
    last model), in the order they were first trained."""
    last = {model.name: model for model in models}
    return [last[name] for name in dict.fromkeys(model.name for model in models)]


def _title(notebook: nbformat.NotebookNode) -> str | None:
    """The notebook's first markdown heading."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in str(cell.source).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip() or None
    return None


def _data_review(source: DataSource, data_file: Path) -> list[str]:
    """A loader's file that is not Keras' own download: the spec keeps Keras' hash, which
    checks a download, and grading needs this file given by --data."""
    if source.download_sha256 is None or (digest := file_digest(data_file)) == source.download_sha256:
        return []
    return [
        f"{data_file} (sha256 {digest[:12]}…) is not Keras' download of {source.keras_dataset}: file_sha256 is "
        "Keras' hash, which checks a download; grade with --data pointing at this file"
    ]


def _review(models: tuple[DraftModel, ...], outcome: str) -> list[str]:
    """What an instructor should check in the spec before grading with it."""
    notes = [f"each model is fixed: its layers, optimizer and training as the solution ran them ({outcome})"]
    if any(model.name.startswith("_") or model.name == "a model" for model in models):
        notes.append("a model is held by no variable of its own: rename it in the spec and in the solution")
    notes.append("the [points] are the MNIST exercise's; the written questions ([[questions]]) are yours to add")
    return notes
