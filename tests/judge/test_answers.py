"""Written answers found in every layout students use (see the real-world notes): after the
handout's question cell, numbered in one cell or split over cells with code between, inside the
question cell, as code comments, behind nbgrader's or otter's markers, with the questions cell
deleted, moved or reworded, or not answered at all."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.judge.answers import Answer, find_answers
from grader.spec.exercise import DEFAULT_SPEC, load_spec

SPEC = load_spec(DEFAULT_SPEC)
OPEN_SPEC = load_spec(DEFAULT_SPEC.parent / "mnist_mlp_open.toml")
HANDOUT = nbformat.read(SPEC.handout, as_version=4)
QUESTIONS_CELL = HANDOUT.cells[-1].source
CORPUS = Path(__file__).parents[1] / "fixtures" / "corpus"
MODEL_CELLS = [new_markdown_cell(cell.source) for cell in HANDOUT.cells if cell.cell_type == "markdown"][:-1]


def answers_of(*cells: nbformat.NotebookNode, spec=SPEC) -> dict[str, Answer]:
    notebook = new_notebook(cells=[*MODEL_CELLS, new_code_cell("model_1.fit(x, y)"), *cells])
    return {answer.question: answer for answer in find_answers(notebook, spec.questions, HANDOUT)}


def texts(answers: dict[str, Answer]) -> dict[str, str]:
    return {question: answer.text for question, answer in answers.items()}


def test_the_handout_asks_the_three_questions_and_answers_none():
    answers = answers_of(new_markdown_cell(QUESTIONS_CELL))
    assert texts(answers) == {"q1": "", "q2": "", "q3": ""}
    assert all(answer.found_by == "no answer" and not answer.answered for answer in answers.values())


def test_one_cell_of_numbered_answers_is_split_by_its_numbering():
    answers = answers_of(
        new_markdown_cell(QUESTIONS_CELL),
        new_markdown_cell("My answers:\n\n1) model_2, it is more accurate.\n2) It overfits after 10 epochs.\n3) No."),
    )
    assert texts(answers) == {"q1": "model_2, it is more accurate.", "q2": "It overfits after 10 epochs.", "q3": "No."}
    assert {answer.found_by for answer in answers.values()} == {"numbered"}
    assert answers["q2"].cells == (len(MODEL_CELLS) + 2,)


@pytest.mark.parametrize(
    "numbering",
    [("- 1)", "- 2)", "- 3)"), ("**1.**", "**2.**", "**3.**"), ("Q1:", "Q2:", "Q3:"), ("(1)", "(2)", "(3)")],
)
def test_numbering_in_the_spellings_students_use(numbering):
    first, second, third = numbering
    answers = answers_of(
        new_markdown_cell(QUESTIONS_CELL),
        new_markdown_cell(f"{first} *model_1*, it is smaller\n{second} the loss rises\n{third} yes, by 0.5%"),
    )
    assert texts(answers) == {"q1": "*model_1*, it is smaller", "q2": "the loss rises", "q3": "yes, by 0.5%"}


def test_answers_split_over_cells_with_code_between():
    answers = answers_of(
        new_markdown_cell(QUESTIONS_CELL),
        new_markdown_cell("1) Model 2 is better."),
        new_code_cell("plt.plot(history.history['loss'])"),
        new_markdown_cell("2) The test loss rises after epoch 8."),
        new_code_cell("model_4 = Sequential()  # a wider model"),
        new_markdown_cell("3) A wider model: it improved a little."),
    )
    assert answers["q1"].text == "Model 2 is better."
    assert answers["q2"].text == "The test loss rises after epoch 8."
    assert answers["q3"].text.endswith("A wider model: it improved a little.")


def test_answers_written_inside_the_question_cell():
    lines = QUESTIONS_CELL.splitlines()
    cell = "\n".join([lines[0], lines[1], "> model_2, for its accuracy.", lines[2], "", "Both overfit.", lines[3]])
    answers = answers_of(new_markdown_cell(cell))
    assert texts(answers) == {"q1": "> model_2, for its accuracy.", "q2": "Both overfit.", "q3": ""}


def test_each_question_in_a_cell_of_its_own_answered_after_it():
    lines = QUESTIONS_CELL.splitlines()
    answers = answers_of(
        new_markdown_cell(lines[1]),
        new_markdown_cell("It depends: model_1 trains faster."),
        new_markdown_cell(lines[2]),
        new_markdown_cell("The validation loss has a minimum."),
        new_markdown_cell(lines[3]),
        new_code_cell("# I tried 128 units in each layer\n# and 40 epochs: it did improve\nmodel_4.fit(x, y)"),
    )
    assert answers["q1"].text == "It depends: model_1 trains faster."
    assert answers["q2"].text == "The validation loss has a minimum."
    assert answers["q3"].text == "I tried 128 units in each layer\nand 40 epochs: it did improve"
    assert answers["q3"].found_by == "after the question"


def test_an_answer_ends_at_the_next_cell_of_the_handout():
    lines = QUESTIONS_CELL.splitlines()
    notebook = new_notebook(
        cells=[
            new_markdown_cell(lines[3]),
            new_markdown_cell("A third hidden layer."),
            new_markdown_cell(HANDOUT.cells[5].source),  # "## Model 1: ..." of the handout, moved below
            new_markdown_cell("Not an answer: notes on model_1."),
        ]
    )
    answers = {answer.question: answer for answer in find_answers(notebook, SPEC.questions, HANDOUT)}
    assert answers["q3"].text == "A third hidden layer."


def test_questions_reworded_by_a_course_variant_are_found_by_their_other_wordings():
    answers = answers_of(
        new_markdown_cell("Compare model_1, model_2 and model_3: which would you use in production?"),
        new_markdown_cell("model_3, the smallest."),
    )
    assert answers["q1"].text == "model_3, the smallest."


def test_without_the_questions_cell_a_numbered_answers_cell_is_split():
    answers = answers_of(new_markdown_cell("## My answers\n1. model_2\n2. overfitting\n3. it did not improve"))
    assert texts(answers) == {"q1": "model_2", "q2": "overfitting", "q3": "it did not improve"}


def test_unnumbered_answers_to_questions_asked_together_go_to_each_of_them_marked_so():
    answers = answers_of(new_markdown_cell(QUESTIONS_CELL), new_markdown_cell("Model 2 overfits but is better."))
    assert {answer.text for answer in answers.values()} == {"Model 2 overfits but is better."}
    assert {answer.found_by for answer in answers.values()} == {"not separated"}


def test_nbgrader_marked_answer_cells_decide():
    cell = new_markdown_cell("model_1: it is 8 times smaller.")
    cell.metadata["nbgrader"] = {"grade": True, "solution": True, "grade_id": "q1", "points": 3}
    answers = answers_of(new_markdown_cell(QUESTIONS_CELL), cell, new_markdown_cell("1) something else"))
    assert answers["q1"] == Answer("q1", "model_1: it is 8 times smaller.", (len(MODEL_CELLS) + 2,), "marker")


def test_otter_question_markers_decide():
    answers = answers_of(
        new_markdown_cell(
            "<!-- BEGIN QUESTION -->\n" + QUESTIONS_CELL.splitlines()[3] + "\n```\nname: q3\npoints: 3\n```"
        ),
        new_markdown_cell("_Type your answer here._ Dropout 0.3: no better."),
        new_markdown_cell("<!-- END QUESTION -->"),
        new_markdown_cell("unrelated"),
    )
    assert answers["q3"].text == "_Type your answer here._ Dropout 0.3: no better."
    assert answers["q3"].found_by == "marker"


def test_a_notebook_without_questions_or_answers_answers_nothing():
    assert texts(answers_of()) == {"q1": "", "q2": "", "q3": ""}


def test_the_digest_ignores_whitespace_but_not_words():
    assert Answer("q1", "model 2\n is better").digest == Answer("q1", "model 2 is better").digest
    assert Answer("q1", "model 1 is better").digest != Answer("q1", "model 2 is better").digest


def test_answers_round_trip_through_json():
    answer = Answer("q2", "It overfits.", (18, 19), "numbered")
    assert Answer.from_dict(answer.to_dict()) == answer


def test_the_samples_and_the_solution_answer_as_written():
    read = {path.stem: nbformat.read(path, as_version=4) for path in (Path("submissions").glob("*.ipynb"))}
    found = {name: {a.question: a for a in find_answers(nb, SPEC.questions, HANDOUT)} for name, nb in read.items()}
    assert found["crashes"]["q3"].text.startswith("I tried L2 regularization")
    assert found["wrong_architecture"]["q2"].text.startswith("*Both losses go down together")
    assert not found["wrong_architecture"]["q3"].answered
    assert not any(answer.answered for answer in found["correct_other_spellings"].values())
    solution = nbformat.read(SPEC.solution, as_version=4)
    assert all(answer.answered for answer in find_answers(solution, SPEC.questions, HANDOUT))


def test_the_corpus_answers_that_follow_a_question_are_found():
    """Hand-checked: of the corpus' notebooks only two answer a written question. One asks
    "Suggest an improvement" in a heading of its own and answers under it and in a later cell;
    the other (no_improvement) kept no question, and its one sentence is not found."""
    notebook = nbformat.read(CORPUS / "improvement_called_mlp.ipynb", as_version=4)
    answers = {answer.question: answer for answer in find_answers(notebook, OPEN_SPEC.questions, HANDOUT)}
    assert answers["q3"].text.startswith("A wider first layer and a third hidden layer.")
    assert "Yes: the improved model reaches a higher accuracy" in answers["q3"].text
    assert answers["q3"].cells == (7, 9)
    assert not answers["q1"].answered and not answers["q2"].answered


def test_an_answer_on_the_questions_own_line_is_kept():
    lines = QUESTIONS_CELL.splitlines()
    cell = "\n".join(
        [
            lines[0],
            lines[1] + " I would put model_2 into production.",
            "**Compare the trajectories of the loss on the training set and on the test set for each model.** "
            "They overfit.",
        ]
    )
    answers = answers_of(new_markdown_cell(cell))
    assert answers["q1"].text == "I would put model_2 into production."
    assert answers["q2"].text == "They overfit."


def test_prose_that_echoes_a_short_wording_does_not_take_the_questions_place():
    answers = answers_of(
        new_markdown_cell(QUESTIONS_CELL),
        new_markdown_cell(
            "1) model_2 is better. Let me suggest an improvement later.\n2) It overfits.\n3) Wider: yes."
        ),
    )
    assert answers["q1"].text == "model_2 is better. Let me suggest an improvement later."
    assert answers["q3"].text == "Wider: yes."


def test_a_list_inside_an_answer_and_a_skipped_number_do_not_shift_the_answers():
    nested = "1) model_2, because:\n   1. it is more accurate\n   2. it is fast enough\n2) It overfits.\n3) No."
    answers = answers_of(new_markdown_cell(QUESTIONS_CELL), new_markdown_cell(nested))
    assert answers["q1"].text.endswith("2. it is fast enough") and answers["q2"].text == "It overfits."
    skipped = answers_of(new_markdown_cell(QUESTIONS_CELL), new_markdown_cell("1) model_2.\n3) It improved."))
    assert texts(skipped) == {"q1": "model_2.", "q2": "", "q3": "It improved."}


@pytest.mark.parametrize("metadata", ["x", None, {"grade_id": ["q1"], "solution": True}, {"grade_id": 3}])
def test_odd_nbgrader_metadata_is_no_marker_and_no_crash(metadata):
    cell = new_markdown_cell("1) model_2\n2) overfits\n3) no")
    cell.metadata["nbgrader"] = metadata
    assert answers_of(new_markdown_cell(QUESTIONS_CELL), cell)["q3"].text == "no"


def test_a_fault_reading_the_answers_leaves_the_code_grade_and_says_so(monkeypatch):
    from grader.ingest.notebook import load_submission
    from grader.judge import pipeline
    from grader.judge.results import SubmissionResult

    def broken(*arguments):
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline, "find_answers", broken)
    graded = SubmissionResult("crashes", "crashes.ipynb", "graded", 10.0, 15.0, ())
    result = pipeline._with_answers(graded, load_submission(Path("submissions/crashes.ipynb")), SPEC)
    assert (result.score, result.answers) == (10.0, ())
    assert "could not read the written answers (RuntimeError: a bug)" in result.warnings[-1]


@pytest.mark.timeout(30)
def test_a_long_cell_is_set_aside_by_its_length_without_the_full_comparison():
    """A full comparison costs the product of the lengths: a cell of megabytes against the
    handout's cells would take the host minutes. Cells far longer than any question or handout
    cell are told apart by their lengths alone (rapidfuzz's cut-off)."""
    long_cell = new_markdown_cell("lorem ipsum model " * 200_000)
    found = answers_of(new_markdown_cell(QUESTIONS_CELL), long_cell)
    assert found["q1"].found_by == "not separated"


def test_the_courses_own_sentences_after_the_located_one_are_never_the_answer():
    # The course's wording, as real notebooks keep it: the spec's older wording lacks "Which do you prefer?"
    course = (
        "How do model_1 and model_2 compare? Which do you prefer? If you were going to put one into "
        "production, which would you choose and why?"
    )
    answers = answers_of(new_markdown_cell(f"1. {course}\n\nModel 2: it is more accurate, and I would deploy it."))
    assert answers["q1"].text == "Model 2: it is more accurate, and I would deploy it."
    only_older = dataclasses.replace(SPEC.questions[0], prompt="How do model_1 and model_2 compare?", also_asked_as=())
    older = find_answers(
        new_notebook(cells=[new_markdown_cell(course), new_markdown_cell("Model 2, for its accuracy.")]),
        [only_older],
        new_notebook(cells=[new_markdown_cell(course)]),  # the handout the students had
    )
    assert older[0].text == "Model 2, for its accuracy."


def test_a_handout_code_comment_after_a_question_is_not_an_answer():
    handout = new_notebook(cells=[*HANDOUT.cells, new_code_cell("# YOUR CODE HERE\nraise NotImplementedError()")])
    lines = QUESTIONS_CELL.splitlines()
    notebook = new_notebook(
        cells=[
            new_markdown_cell(lines[3]),
            new_code_cell("# YOUR CODE HERE\n# a third layer of 32 units\nmodel_4.fit(x, y)"),
            new_markdown_cell("It improved by 0.3%."),
        ]
    )
    (_, _, q3) = find_answers(notebook, SPEC.questions, handout)
    assert q3.text == "a third layer of 32 units\n\nIt improved by 0.3%."


def test_unnumbered_answers_are_one_paragraph_each_a_heading_staying_with_its_paragraph():
    answers = answers_of(
        new_markdown_cell(QUESTIONS_CELL),
        new_markdown_cell(
            "## Respostas\n\nO modelo 2 é melhor.\n\nO modelo 2 sofre overfitting.\n\nMais épocas: melhorou."
        ),
    )
    assert texts(answers) == {
        "q1": "## Respostas\n\nO modelo 2 é melhor.",
        "q2": "O modelo 2 sofre overfitting.",
        "q3": "Mais épocas: melhorou.",
    }


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        # Portuguese, two paragraphs for three questions: q1 and q2 share the first
        (
            "## Conclusões\n\nO modelo 2 tem muito mais parâmetros e demora mais, mas acerta um pouco mais. "
            "Por isso eu escolheria o modelo 2. As curvas de perda dos dois ficaram parecidas.\n\n"
            "Como a acurácia ainda subia, a sugestão é treinar por mais épocas; melhorou pouco.",
            {
                "q1": "## Conclusões O modelo 2 tem muito mais parâmetros e demora mais, mas acerta um pouco mais. "
                "Por isso eu escolheria o modelo 2.",
                "q2": "As curvas de perda dos dois ficaram parecidas.",
                "q3": "Como a acurácia ainda subia, a sugestão é treinar por mais épocas; melhorou pouco.",
            },
        ),
        # English, one paragraph for all three
        (
            "Model 2 is bigger and slower to train, so I would choose model_1 for production. The training loss "
            "keeps falling while the test loss rises: it overfits. More dropout could improve it, and it did.",
            {
                "q1": "Model 2 is bigger and slower to train, so I would choose model_1 for production.",
                "q2": "The training loss keeps falling while the test loss rises: it overfits.",
                "q3": "More dropout could improve it, and it did.",
            },
        ),
    ],
    ids=["portuguese", "english"],
)
def test_answers_sharing_a_paragraph_go_sentence_by_sentence_to_the_question_whose_words_they_use(written, expected):
    answers = answers_of(new_markdown_cell(QUESTIONS_CELL), new_markdown_cell(written))
    assert texts(answers) == expected
    assert {answer.found_by for answer in answers.values()} == {"by its words"}


def test_without_each_question_s_words_in_order_a_shared_paragraph_stays_whole():
    # no word of q2's: the sentences cannot be shared out, every question gets it all, marked so
    written = "I prefer model_1 for production. More epochs improved it.\n\nThat is all."
    answers = answers_of(new_markdown_cell(QUESTIONS_CELL), new_markdown_cell(written))
    assert {answer.found_by for answer in answers.values()} == {"not separated"}
    # a spec without cues never shares by words
    bare = dataclasses.replace(SPEC, questions=tuple(dataclasses.replace(q, cues=()) for q in SPEC.questions))
    english = "I would choose model_1 for production. The test loss rises. More dropout improved it."
    answers = answers_of(new_markdown_cell(QUESTIONS_CELL), new_markdown_cell(english), spec=bare)
    assert {answer.found_by for answer in answers.values()} == {"not separated"}


def test_the_last_answer_unnumbered_after_the_code_it_asks_for_is_its_own():
    answers = answers_of(
        new_markdown_cell(QUESTIONS_CELL),
        new_markdown_cell("1) O model_2, pela acurácia."),
        new_markdown_cell("2) O model_1 não sofre overfitting."),
        new_code_cell("model_4 = Sequential()\nmodel_4.fit(x, y)"),
        new_markdown_cell("Com uma camada a mais, a acurácia melhorou."),
    )
    assert texts(answers) == {
        "q1": "O model_2, pela acurácia.", "q2": "O model_1 não sofre overfitting.",
        "q3": "Com uma camada a mais, a acurácia melhorou.",
    }  # fmt: skip


def test_notes_on_the_lines_of_a_model_are_not_an_answer():
    lines = QUESTIONS_CELL.splitlines()
    notebook = new_notebook(
        cells=[
            new_markdown_cell(lines[3]),
            new_code_cell(
                "model_4 = Sequential([\n    # a first hidden layer\n    Dense(64, activation='relu'),\n"
                "    # dropout against overfitting\n    Dropout(0.2),\n    Dense(10, activation='softmax'),\n])"
            ),
        ]
    )
    assert not find_answers(notebook, SPEC.questions, HANDOUT)[2].answered


def test_numbers_behind_html_tags_and_a_dash():
    answers = answers_of(
        new_markdown_cell(QUESTIONS_CELL),
        new_markdown_cell(
            '#### <span style="color:red">RESPOSTA</span>\n\n<p><span style="color:red">1 - </span>\nO modelo 2.'
        ),
        new_code_cell("plot_loss_accuracy(history)"),
        new_markdown_cell('<p><span style="color:red">2 - </span>\nHouve overfitting.</p>'),
        new_markdown_cell("3 – Sim, melhorou."),
    )
    assert texts(answers) == {
        "q1": "O modelo 2.", "q2": "Houve overfitting.</p>", "q3": "Sim, melhorou."
    }  # fmt: skip


def test_what_most_of_a_class_holds_verbatim_is_the_handouts_whatever_handout_the_spec_names():
    from grader.judge.answers import class_sentences, markdown_sentences

    course = "Which do you prefer? If you were going to put one into production, which would you choose and why?"
    own = ["Model 2, for its accuracy.", "Model 1: it is smaller.", "Model 2 is better.", "Model 1.", "The second."]
    notebooks = [
        new_notebook(cells=[new_markdown_cell(f"1. How do model_1 and model_2 compare? {course}\n\n{answer}")])
        for answer in own
    ]
    shared = class_sentences([markdown_sentences(notebook) for notebook in notebooks])
    assert "which do you prefer" in shared and "model 2 is better" not in shared
    assert class_sentences([markdown_sentences(notebook) for notebook in notebooks[:4]]) == frozenset()  # too few
    only_older = dataclasses.replace(SPEC.questions[0], prompt="How do model_1 and model_2 compare?", also_asked_as=())
    alone, in_class = (
        find_answers(notebooks[0], [only_older], None, class_text=text)[0] for text in (frozenset(), shared)
    )
    assert alone.text.startswith("Which do you prefer?")
    assert in_class.text == "Model 2, for its accuracy."


def test_a_short_answer_half_the_class_wrote_word_for_word_stays_an_answer():
    from grader.judge.answers import class_sentences, markdown_sentences

    # Five students answering the same: an outsider's test class lost this sentence to the handout
    notebooks = [
        new_notebook(cells=[new_markdown_cell(f"{QUESTIONS_CELL}\n\nLa pérdida es más significativa.")])
        for _ in range(5)
    ]
    shared = class_sentences([markdown_sentences(notebook) for notebook in notebooks])
    assert "la p rdida es m s significativa" not in shared and shared  # the handout's questions are
    answers = find_answers(notebooks[0], SPEC.questions, HANDOUT, class_text=shared)
    assert any("La pérdida es más significativa." in answer.text for answer in answers)
