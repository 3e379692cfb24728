"""The written answers of a notebook, found question by question. Pure Python.

Students edit, move, merge and delete cells, so an answer is found by what it follows, never by
a cell's index: the question as the handout words it (matched sentence by sentence, fuzzily),
then what the student wrote after it, up to the next question or the next cell of the handout.
A single "My answers: 1) ... 2) ... 3) ..." cell is split by its numbering; text written inside
the question's own cell, and comments in code cells of the answer, count; nbgrader's and
otter's markers decide where they are present. A question left unanswered gets an empty answer.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nbformat import NotebookNode
from rapidfuzz import fuzz

from grader.judge.deadline import Deadline
from grader.protocol.text import encodable
from grader.spec.questions import Question

FoundBy = Literal["marker", "after the question", "numbered", "by its words", "not separated", "no answer"]
# How close a sentence of the notebook must be to a sentence of the question (``_close``);
# a short wording ("Suggest an improvement") must be closer, or a student's prose would match.
SAME_SENTENCE = 0.8
SAME_SHORT_SENTENCE = 0.9
SHORT_WORDS = 6
# How close a markdown cell must be to one of the handout's to be the handout's, not the student's.
SAME_CELL = 0.9
# A sentence that this share of a class's notebooks (of at least CLASS_MINIMUM) hold verbatim,
# a question of CLASS_MIN_WORDS words or more or another of CLASS_MIN_STATEMENT_WORDS, is the
# handout's, whatever handout the spec names.
CLASS_SHARE = 0.5
CLASS_MINIMUM = 5
CLASS_MIN_WORDS = 4
CLASS_MIN_STATEMENT_WORDS = 9
# Sentences of a question shorter than this ("Why?") are too common to locate it by.
MIN_WORDS = 3
# A sentence ends at . ? or !, and the emphasis closing it ("**Why?** Because ...")
SENTENCE_END = re.compile(r"(?<=[.?!])(?:\*\*|__|\*|_)?\s+")
# "1)", "1.", "**1.**", "- 1)", "Q1:", "Question 1:", "(1)", "Answer 1:", "1 - " at the start of a
# line, behind HTML tags too ('<p><span style="color:red">1 - </span>').
# (Runs of blanks and tags are possessive, ``*+``: no part after them starts with a blank or a
# tag, and a student's line of spaces is matched in linear time, not quadratic.)
NUMBERED = re.compile(
    r"^(?P<indent>[ \t>]*+)(?:<[a-z][^<>\n]{0,200}>[ \t]*+)*+(?:[-*+][ \t]*+)?(?:\*\*|__)?[ \t]*+"
    r"(?:(?:q|question|answer|ans\.?)[ \t]*+)?\(?(?P<number>\d)(?:\)|\.(?!\d)|:|[ \t]++[-\u2013\u2014](?=[ \t<]))",
    re.IGNORECASE | re.MULTILINE,
)
# What closes a number's emphasis or tags, at the start of the text under it
CLOSERS = re.compile(r"^(?:\s*+(?:\*\*|__|</[a-z][a-z0-9]{0,20}>))++")
# A blank line between two paragraphs of markdown
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*+\n")
OTTER_BEGIN = re.compile(r"BEGIN QUESTION", re.IGNORECASE)
OTTER_END = re.compile(r"END QUESTION", re.IGNORECASE)
OTTER_NAME = re.compile(r"^[ \t]*+name:[ \t]*+(\S+)", re.MULTILINE)
COMMENT = re.compile(r"^\s*#+\s?(.*)$")
# Sentences shared among questions by their cues at most (a cell of more is not one answer's worth)
MAX_CUED_SENTENCES = 200


@dataclass(frozen=True)
class Answer:
    """What a notebook answers to one question: its text (empty for no answer), the cells it
    came from, and how it was found."""

    question: str
    text: str
    cells: tuple[int, ...] = ()
    found_by: FoundBy = "no answer"

    @property
    def answered(self) -> bool:
        return bool(self.text.strip())

    @property
    def digest(self) -> str:
        """Identifies the text as written, whitespace aside: a manual grade belongs to it."""
        return hashlib.sha256(encodable(" ".join(self.text.split())).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "text": self.text,
            "cells": list(self.cells),
            "found_by": self.found_by,
            "digest": self.digest,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        return cls(data["question"], data["text"], tuple(data.get("cells", ())), data.get("found_by", "no answer"))


def answer_to(question_id: str, answers: Sequence[Answer]) -> Answer:
    """The answer to ``question_id`` among ``answers``; an empty one where there is none (a
    notebook that could not be read, a question added to the spec since)."""
    return next((answer for answer in answers if answer.question == question_id), Answer(question_id, ""))


@dataclass(frozen=True)
class _Location:
    """Where a question is asked in the notebook: its cell and the lines its sentences cover."""

    question: Question
    cell: int
    first_line: int
    last_line: int
    number: int | None  # the number the notebook gives it ("3." before it), if any
    # What follows the question on its last line ("... and why? model_2, because ...")
    rest_of_line: str = ""


def find_answers(
    notebook: NotebookNode,
    questions: Sequence[Question],
    handout: NotebookNode | None = None,
    deadline: Deadline | None = None,
    class_text: frozenset[str] = frozenset(),
) -> tuple[Answer, ...]:
    """Each question's answer in ``notebook``, in the order of ``questions``. ``handout``: the
    notebook students start from, whose markdown cells end an answer; ``class_text``: the
    sentences most of its class has (``class_sentences``), never an answer either. Raises
    ``OutOfTime`` once ``deadline`` has passed (a notebook's text is as long as its student
    makes it)."""
    if not questions:
        return ()
    deadline = deadline or Deadline.never()
    cells = list(notebook.cells)
    marked = _marked_answers(cells, questions, deadline)
    given = _Given.of(handout, questions, class_text)
    locations = _locations(cells, questions, deadline)
    found = {**_answers_after(cells, locations, given, deadline), **marked}
    missing = [question for question in questions if question.id not in found]
    if missing and not locations:
        found.update(_numbered_answers_anywhere(cells, missing, given, deadline))
    return tuple(found.get(question.id, Answer(question.id, "")) for question in questions)


def _marked_answers(cells: list[NotebookNode], questions: Sequence[Question], deadline: Deadline) -> dict[str, Answer]:
    """Answers nbgrader (a cell's ``grade_id``) or otter (``BEGIN QUESTION`` / ``name:``) mark."""
    ids = {question.id for question in questions}
    found: dict[str, Answer] = {}
    for index, cell in enumerate(cells):
        deadline.check()
        nbgrader = cell.get("metadata", {}).get("nbgrader")
        grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
        if isinstance(grade_id, str) and grade_id in ids and nbgrader.get("solution"):
            found[grade_id] = Answer(grade_id, _answer_text(cell, _Given()), (index,), "marker")
    for index, cell in enumerate(cells):
        deadline.check()
        name = OTTER_NAME.search(cell.source) if OTTER_BEGIN.search(cell.source) else None
        if name is None or name.group(1) not in ids or name.group(1) in found:
            continue
        parts: list[tuple[int, str]] = []
        for later in range(index + 1, len(cells)):
            source = cells[later].source
            if OTTER_END.search(source) or OTTER_BEGIN.search(source):
                break
            if cells[later].cell_type == "markdown" and source.strip():
                parts.append((later, source.strip()))
        found[name.group(1)] = _joined(name.group(1), parts, "marker")
    return found


def _normal(text: str) -> str:
    """Lower case, letters and digits only: markdown, numbering and punctuation aside."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _sentences(line: str) -> list[str]:
    return [sentence for sentence in SENTENCE_END.split(line) if sentence.strip()]


def _asked_in(line: str, question: Question, deadline: Deadline) -> list[int]:
    """Which sentences of ``line`` are the question's, worded as any of its wordings."""
    deadline.check()
    line_sentences = [_normal(NUMBERED.sub("", sentence)) for sentence in _sentences(line)]
    matched: set[int] = set()
    for wording in question.wordings:
        for sentence in _sentences(wording):
            wanted = _normal(sentence)
            words = len(wanted.split())
            if words < MIN_WORDS:
                continue
            closeness = SAME_SENTENCE if words >= SHORT_WORDS else SAME_SHORT_SENTENCE
            matched.update(index for index, seen in enumerate(line_sentences) if _close(wanted, seen, closeness))
    return sorted(matched)


def asked_questions(notebook: NotebookNode, questions: Sequence[Question]) -> set[str]:
    """The ids of ``questions`` that ``notebook`` asks, in any of their wordings."""
    return {location.question.id for location in _locations(list(notebook.cells), questions, Deadline.never())}


def _locations(cells: list[NotebookNode], questions: Sequence[Question], deadline: Deadline) -> list[_Location]:
    """Where each question is asked (its first place), in the notebook's order."""
    found: dict[str, _Location] = {}
    for index, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.splitlines()
        for question in questions:
            if question.id in found:
                continue
            matched = {
                number: asked
                for number, line in enumerate(lines)
                if not line.isspace() and line and (asked := _asked_in(line, question, deadline))
            }
            if matched:
                first, last = min(matched), max(matched)
                numbering = NUMBERED.match(lines[first])
                after = _sentences(lines[last])[max(matched[last]) + 1 :]
                found[question.id] = _Location(
                    question, index, first, last, int(numbering["number"]) if numbering else None, " ".join(after)
                )
    return sorted(found.values(), key=lambda location: (location.cell, location.first_line))


def _answers_after(
    cells: list[NotebookNode], locations: list[_Location], given: _Given, deadline: Deadline
) -> dict[str, Answer]:
    """Each located question's answer: what follows it up to the next question or handout cell.
    Questions asked one after the other with nothing between share what follows the last of them,
    split by its numbering."""
    found: dict[str, Answer] = {}
    waiting: list[_Location] = []  # asked, with nothing written yet before the next question
    for position, location in enumerate(locations):
        following = locations[position + 1] if position + 1 < len(locations) else None
        parts = _region(cells, location, following, given, deadline)
        if not parts and following is not None and following.cell == location.cell:
            waiting.append(location)
            continue
        group = [*waiting, location]
        waiting = []
        if len(group) == 1:
            found[location.question.id] = _joined(location.question.id, parts, "after the question")
        else:
            found.update(_split(group, parts))
    for location in waiting:
        found[location.question.id] = Answer(location.question.id, "")
    return found


def _region(
    cells: list[NotebookNode],
    location: _Location,
    following: _Location | None,
    given: _Given,
    deadline: Deadline,
) -> list[tuple[int, str]]:
    """The student's text after ``location``: the rest of its cell, then whole cells (comments of
    code cells), up to ``following`` or a cell of the handout."""
    parts: list[tuple[int, str]] = []
    lines = cells[location.cell].source.splitlines()
    end = following.first_line if following is not None and following.cell == location.cell else len(lines)
    rest = given.removed("\n".join([location.rest_of_line, *lines[location.last_line + 1 : end]])).strip()
    if rest:
        parts.append((location.cell, rest))
    if following is not None and following.cell == location.cell:
        return parts
    last = following.cell if following is not None else len(cells)
    for index in range(location.cell + 1, last):
        deadline.check()
        cell = cells[index]
        if cell.cell_type == "markdown" and given.is_handouts(cell.source):
            break
        text = _answer_text(cell, given)
        if text:
            parts.append((index, text))
    if following is not None and following.cell == last and following.first_line > 0:
        before = "\n".join(cells[last].source.splitlines()[: following.first_line]).strip()
        before = given.removed(before).strip()
        if before and not given.is_handouts(before):
            parts.append((last, before))
    return parts


@dataclass(frozen=True)
class _Given:
    """What the handout gives everyone, which is never a student's answer: its markdown cells
    (whole), and every sentence of its markdown, of its code's comments ("# YOUR CODE HERE"),
    of the questions' wordings, and the sentences most of the class has (``class_sentences``)."""

    cells: tuple[str, ...] = ()
    sentences: frozenset[str] = frozenset()

    @classmethod
    def of(cls, handout: NotebookNode | None, questions: Sequence[Question], class_text: frozenset[str]) -> _Given:
        cells = [cell for cell in (handout.cells if handout else []) if cell.cell_type in ("markdown", "code")]
        markdown = [str(cell.source) for cell in cells if cell.cell_type == "markdown"]
        comments = [_answer_text(cell, cls()) for cell in cells if cell.cell_type == "code"]
        texts = [*markdown, *comments, *(wording for question in questions for wording in question.wordings)]
        sentences = {
            _sentence_key(sentence) for text in texts for line in text.splitlines() for sentence in _sentences(line)
        }
        return cls(tuple(_normal(text) for text in markdown), frozenset((sentences | class_text) - {""}))

    def is_handouts(self, source: str) -> bool:
        text = _normal(source)
        return any(_close(text, cell, SAME_CELL) for cell in self.cells)

    def removed(self, text: str) -> str:
        """``text`` without the lines and sentences the handout gives (a question's own
        sentences after the one that located it, a placeholder comment)."""
        if not self.sentences:
            return text
        kept = []
        for line in text.splitlines():
            sentences = _sentences(line)
            own = [sentence for sentence in sentences if _sentence_key(sentence) not in self.sentences]
            if len(own) == len(sentences):
                kept.append(line)
            elif own:
                kept.append(" ".join(own))
        return "\n".join(kept)


def class_sentences(sentence_sets: Sequence[frozenset[str]]) -> frozenset[str]:
    """The sentences that at least ``CLASS_SHARE`` of a class's notebooks hold (each notebook's
    ``markdown_sentences``), where it has ``CLASS_MINIMUM`` notebooks or more: the handout they
    all started from, whichever version of it, which is never anyone's answer."""
    if len(sentence_sets) < CLASS_MINIMUM:
        return frozenset()
    counts = Counter(sentence for sentences in sentence_sets for sentence in sentences)
    return frozenset(sentence for sentence, count in counts.items() if count >= CLASS_SHARE * len(sentence_sets))


def markdown_sentences(notebook: Mapping[str, Any]) -> frozenset[str]:
    """The sentences of ``notebook``'s markdown (a notebook, or its JSON as parsed) that
    ``class_sentences`` counts: questions of ``CLASS_MIN_WORDS`` words or more, other sentences
    of ``CLASS_MIN_STATEMENT_WORDS`` ("The loss is more meaningful." is many students' own
    answer, word for word)."""
    cells = notebook.get("cells", [])
    sentences = (
        sentence.strip()
        for cell in (cells if isinstance(cells, list) else [])
        if isinstance(cell, Mapping) and cell.get("cell_type") == "markdown"
        for line in _source(cell.get("source", "")).splitlines()
        for sentence in _sentences(line)
    )
    return frozenset(
        key
        for sentence in sentences
        if len((key := _sentence_key(sentence)).split())
        >= (CLASS_MIN_WORDS if sentence.rstrip("*_ ").endswith("?") else CLASS_MIN_STATEMENT_WORDS)
    )


def _source(source: object) -> str:
    """A cell's source as its JSON may hold it: one string, or a list of lines."""
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def _sentence_key(sentence: str) -> str:
    """A sentence as the handout's are looked up: its numbering, markdown and case aside."""
    return _normal(NUMBERED.sub("", sentence, count=1))


def _close(a: str, b: str, closeness: float) -> bool:
    """Whether ``a`` and ``b`` are at least ``closeness`` alike (rapidfuzz's normalised Indel
    similarity, difflib's ratio computed exactly, in bit-parallel time: a student's cell may be
    long, and this runs on the grader's host, outside the sandbox)."""
    return bool(fuzz.ratio(a, b, score_cutoff=closeness * 100))


def _answer_text(cell: NotebookNode, given: _Given) -> str:
    """What a cell says in words: a markdown cell whole, a code cell's comments where they are
    at least half its lines; what the handout gives left out."""
    if cell.cell_type == "markdown":
        return given.removed(str(cell.source)).strip()
    if cell.cell_type == "code":
        lines = [line for line in cell.source.splitlines() if line.strip()]
        comments = [match.group(1) for line in lines if (match := COMMENT.match(line))]
        if len(comments) * 2 < len(lines):  # code with notes on its lines, not words written in its place
            return ""
        return given.removed("\n".join(comments)).strip()
    return ""


def _joined(question: str, parts: list[tuple[int, str]], found_by: FoundBy) -> Answer:
    if not parts:
        return Answer(question, "")
    return Answer(question, "\n\n".join(text for _, text in parts), tuple(dict.fromkeys(i for i, _ in parts)), found_by)


def _split(group: list[_Location], parts: list[tuple[int, str]]) -> dict[str, Answer]:
    """Share ``parts`` among questions asked together: by the numbering of the answers (matched
    with the numbers the questions carry, else their order); failing that one cell each when
    there are as many cells as questions, or one paragraph each when there are as many
    paragraphs; else each question gets the whole text, marked so."""
    numbers = [location.number if location.number is not None else rank + 1 for rank, location in enumerate(group)]
    pieces = _numbered_pieces(parts, numbers)
    if pieces is not None:
        return {
            location.question.id: _joined(location.question.id, pieces.get(number, []), "numbered")
            for location, number in zip(group, numbers, strict=True)
        }
    if len(parts) == len(group):
        return {
            location.question.id: _joined(location.question.id, [part], "after the question")
            for location, part in zip(group, parts, strict=True)
        }
    paragraphs = _paragraphs(parts)
    if len(paragraphs) == len(group):  # one paragraph per question, in their order
        return {
            location.question.id: _joined(location.question.id, [paragraph], "after the question")
            for location, paragraph in zip(group, paragraphs, strict=True)
        }
    by_words = _split_by_cues(group, paragraphs)
    if by_words is not None:
        return by_words
    return {location.question.id: _joined(location.question.id, parts, "not separated") for location in group}


def _split_by_cues(group: list[_Location], paragraphs: list[tuple[int, str]]) -> dict[str, Answer] | None:
    """Answers to several questions in fewer paragraphs than questions, in the questions' order:
    the runs of sentences, one per question, that hold the most of each question's cues (its
    ``cues``, the words its answers use); None unless every question has cues and every run
    holds one of its own question's."""
    cues = [location.question.cues for location in group]
    sentences = [
        (cell, sentence) for cell, paragraph in paragraphs for sentence in _sentences(paragraph.replace("\n", " "))
    ]
    if not all(cues) or not len(group) <= len(sentences) <= MAX_CUED_SENTENCES:
        return None
    hits = [[_cue_hits(sentence, own) for own in cues] for _, sentence in sentences]
    runs = _best_runs(hits, len(group))
    if runs is None:
        return None
    answers = {}
    for location, (start, end) in zip(group, runs, strict=True):
        run = sentences[start:end]
        text = " ".join(" ".join(sentence.split()) for _, sentence in run)
        cells = tuple(dict.fromkeys(cell for cell, _ in run))
        answers[location.question.id] = Answer(location.question.id, text, cells, "by its words")
    return answers


def _cue_hits(sentence: str, cues: tuple[str, ...]) -> int:
    lowered = sentence.lower()
    return sum(len(re.findall(rf"(?<!\w){re.escape(cue)}", lowered)) for cue in cues)


def _best_runs(hits: list[list[int]], questions: int) -> list[tuple[int, int]] | None:
    """Cut the sentences into ``questions`` runs in order, each holding a cue of its own
    question, so that as many cues as can be fall in their own question's run; None when no
    such cut exists. (Dynamic programming over where each run ends.)"""
    count = len(hits)
    prefix = [[0] * (count + 1) for _ in range(questions)]
    for question in range(questions):
        for index in range(count):
            prefix[question][index + 1] = prefix[question][index] + hits[index][question]
    unreachable = -1
    # best[q][i]: the most cues in their own runs with the first q questions' runs ending at sentence i
    best = [[unreachable] * (count + 1) for _ in range(questions + 1)]
    cut: list[list[int]] = [[0] * (count + 1) for _ in range(questions + 1)]
    best[0][0] = 0
    for question in range(1, questions + 1):
        for end in range(question, count + 1):
            for start in range(question - 1, end):
                own = prefix[question - 1][end] - prefix[question - 1][start]
                if best[question - 1][start] == unreachable or own == 0:
                    continue
                if best[question - 1][start] + own > best[question][end]:
                    best[question][end], cut[question][end] = best[question - 1][start] + own, start
    if best[questions][count] == unreachable:
        return None
    runs, end = [], count
    for question in range(questions, 0, -1):
        start = cut[question][end]
        runs.append((start, end))
        end = start
    return runs[::-1]


def _paragraphs(parts: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The paragraphs of ``parts``, each with its cell; a heading alone stays with the paragraph after it."""
    found: list[tuple[int, str]] = []
    heading = ""
    for cell, text in parts:
        for paragraph in PARAGRAPH_BREAK.split(text):
            paragraph = paragraph.strip()
            if paragraph.startswith("#") and "\n" not in paragraph:
                heading = f"{heading}\n{paragraph}".strip()
            elif paragraph:
                found.append((cell, f"{heading}\n\n{paragraph}".strip()))
                heading = ""
    return found


def _numbered_pieces(parts: list[tuple[int, str]], numbers: list[int]) -> dict[int, list[tuple[int, str]]] | None:
    """The text under each of ``numbers``: "1) ..." up to the next number, and so on; None unless
    at least two of them are found. Numbers must rise (one may be skipped, an answer missing);
    one indented deeper than the first is a list inside an answer, not the next answer."""
    text_of: dict[int, list[tuple[int, str]]] = {}
    current: int | None = None
    indent: int | None = None
    for cell, text in parts:
        start = 0
        for match in NUMBERED.finditer(text):
            number = int(match["number"])
            deeper = indent is not None and len(match["indent"].expandtabs(4)) > indent
            if number not in numbers or (current is not None and number <= current) or deeper:
                continue
            if current is not None and text[start : match.start()].strip():
                text_of.setdefault(current, []).append((cell, text[start : match.start()].strip()))
            current, start = number, match.end()
            indent = len(match["indent"].expandtabs(4)) if indent is None else indent
        if current is not None and text[start:].strip():
            text_of.setdefault(current, []).append((cell, text[start:].strip()))
    if len(text_of) < 2:
        return None
    last = max(text_of)
    following = [number for number in numbers if number > last]
    if following and following[0] not in text_of:
        # The last answer numbered, then, past a cell of code, text numbered no more: the next
        # question's answer, written after the code it asks for ("3. Try it out below")
        pieces = text_of[last]
        gap = next((i for i in range(1, len(pieces)) if pieces[i][0] > pieces[i - 1][0] + 1), None)
        if gap is not None:
            text_of[last], text_of[following[0]] = pieces[:gap], pieces[gap:]
    return {number: [(cell, _strip_emphasis(text)) for cell, text in pieces] for number, pieces in text_of.items()}


def _strip_emphasis(text: str) -> str:
    """The bold or the HTML tags that closed a number ("**1.** text", "<span>1 - </span>text")
    left at the start of a piece."""
    return CLOSERS.sub("", text).strip()


def _numbered_answers_anywhere(
    cells: list[NotebookNode], questions: list[Question], given: _Given, deadline: Deadline
) -> dict[str, Answer]:
    """Where the notebook kept no question: a cell of the student's numbering its answers
    ("My answers: 1) ... 2) ..."), split by that numbering."""
    numbers = list(range(1, len(questions) + 1))
    for index in reversed(range(len(cells))):
        deadline.check()
        cell = cells[index]
        if cell.cell_type != "markdown" or given.is_handouts(cell.source):
            continue
        pieces = _numbered_pieces([(index, cell.source)], numbers)
        if pieces is not None and "answer" in cell.source.lower():
            return {
                question.id: _joined(question.id, pieces.get(number, []), "numbered")
                for question, number in zip(questions, numbers, strict=True)
            }
    return {}
