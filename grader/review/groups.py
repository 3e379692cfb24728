"""Answer groups suggested for grading many answers at once: the unanswered together; by the
stance a question declares (which model an answer prefers; whether it says the improvement
improved, set against what the grader measured); then by the similarity of their words (TF-IDF
and agglomerative clustering, scikit-learn's). The grader moves an answer to another group by
hand; a move always wins over a suggestion."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from grader.judge.answers import Answer
from grader.judge.claims import CLAUSE_END, IMPROVED, NOT_IMPROVED, mention
from grader.spec.questions import Question

NO_ANSWER = "No answer"
OTHERS = "Other answers"
# Answers closer than this (cosine distance of their TF-IDF vectors) are suggested together.
SIMILAR = 0.8
# A stance group smaller than this is not split further by similarity.
SPLIT_FROM = 4
PREFERENCE = re.compile(
    r"\b(prefer|production|choose|chose|pick|better|best|would use|go with|recommend|deploy)", re.IGNORECASE
)
DEPENDS = re.compile(r"\b(it depends|depends on|trade-?off)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Measured:
    """What the grader measured that a stance is compared with: each model's test measurement
    of the exercise's metric, and whether that metric is better higher (an accuracy) or lower
    (an error)."""

    test_values: Mapping[str, float | None]
    higher_is_better: bool = True


def stance_of(question: Question, answer: Answer, measured: Measured | None = None) -> str | None:
    """The side ``answer`` takes on ``question``'s stance, as a group's name; None when the
    question declares none."""
    if question.stance is None:
        return None
    text = answer.text
    if question.stance == "preferred_model":
        if DEPENDS.search(text):
            return "says it depends"
        counts = {model: 0 for model in question.models}
        for sentence in CLAUSE_END.split(text):
            if PREFERENCE.search(sentence):
                for model in question.models:
                    counts[model] += len(mention(model).findall(sentence))
        best = max(counts.values())
        chosen = [model for model, count in counts.items() if count == best]
        return f"prefers {chosen[0]}" if best and len(chosen) == 1 else "prefers no one model clearly"
    said = "did not improve" if NOT_IMPROVED.search(text) else "improved" if IMPROVED.search(text) else None
    if said is None:
        return "does not say whether it improved"
    improvement, *baseline = question.models
    verdict = _measured_verdict(measured, improvement, baseline[0] if baseline else None)
    if verdict is None:
        return f"says it {said}"
    agrees = (said == "improved") == (verdict == "improved")
    return f"says it {said}: {'agrees with' if agrees else 'contradicts'} the measurement"


def _measured_verdict(measured: Measured | None, improvement: str, baseline: str | None) -> str | None:
    if measured is None or baseline is None:
        return None
    new, old = measured.test_values.get(improvement), measured.test_values.get(baseline)
    if new is None or old is None:
        return None
    better = new > old if measured.higher_is_better else new < old
    return "improved" if better else "did not improve"


def suggest_groups(answers: Mapping[str, Answer], stances: Mapping[str, str | None]) -> dict[str, str]:
    """A group's name for each submission's answer to one question; ``stances``: each answer's
    side (``stance_of``), where the question declares a stance."""
    groups: dict[str, str] = {}
    by_stance: dict[str | None, list[str]] = {}
    for submission, answer in answers.items():
        if not answer.answered:
            groups[submission] = NO_ANSWER
        else:
            by_stance.setdefault(stances.get(submission), []).append(submission)
    for stance, members in by_stance.items():
        if len(members) < SPLIT_FROM:
            groups.update({member: stance or OTHERS for member in members})
            continue
        for member, cluster in _clusters([answers[member].text for member in members], members).items():
            groups[member] = f"{stance}; {cluster}" if stance else cluster
    return groups


def _clusters(texts: Sequence[str], members: Sequence[str]) -> dict[str, str]:
    """Members whose texts are alike share a cluster, named by its most telling words; those
    alike to none are "other answers"."""
    from sklearn.cluster import AgglomerativeClustering  # imported here: slow, and only the review needs it
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        vectors = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), sublinear_tf=True).fit(texts)
    except ValueError:  # only stop words: nothing to compare by
        return {member: OTHERS for member in members}
    matrix = vectors.transform(texts)
    # A text of stop words alone ("See above.") has no vector to compare: it is one of the others.
    worded = [index for index in range(len(texts)) if matrix[index].nnz]
    if len(worded) < 2:
        return {member: OTHERS for member in members}
    labels = AgglomerativeClustering(
        n_clusters=None, distance_threshold=SIMILAR, metric="cosine", linkage="average"
    ).fit_predict(matrix[worded].toarray())
    terms = vectors.get_feature_names_out()
    named: dict[int, str] = {}
    for label in set(labels):
        rows = [worded[index] for index, other in enumerate(labels) if other == label]
        if len(rows) < 2:
            continue
        weights = matrix[rows].sum(axis=0).A1
        top = [str(terms[index]) for index in weights.argsort()[::-1][:3]]
        named[label] = "about " + ", ".join(top)
    label_of = dict(zip(worded, labels, strict=True))
    return {
        member: named.get(label_of[index], OTHERS) if index in label_of else OTHERS
        for index, member in enumerate(members)
    }
