"""Knowledge checks: a few multiple-choice and numeric questions in a lab, checked on the spot with feedback.

A check is for the student, not the grade: it tells at once whether an idea landed and why an answer is
wrong. Answers are written in code (a dict), so a check runs the same in JupyterLab, in a script and under
the grader; an instructor who wants to grade them gives each question points and reads :meth:`Quiz.score`
from a graded test.

    >>> from course.quiz import Quiz
    >>> quiz = Quiz("lab 06b")
    >>> quiz.choice("bits", "How many bits does an index take with 16 shared values?",
    ...             ["2", "4", "16"], answer="4", why="log2(16) = 4: each weight stores which of 16 centroids it uses")
    >>> quiz.number("macs", "MACs of a 1x1 convolution, 8x8 pixels, 4 -> 2 channels?", 8 * 8 * 4 * 2)
    >>> print(quiz.check({"bits": "16", "macs": 512}))
    lab 06b: 1 of 2 right
      bits: not '16'. log2(16) = 4: each weight stores which of 16 centroids it uses
      macs: right
    >>> quiz.score({"bits": "b", "macs": 512})            # a choice by its letter works too
    (2.0, 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class QuizError(ValueError):
    """A quiz was written or answered in a way that cannot be checked (unknown question, wrong kind of answer)."""


@dataclass(frozen=True)
class Question:
    """One question: ``kind`` is ``"choice"`` (one of ``options``) or ``"number"`` (within ``tolerance``)."""

    key: str
    text: str
    kind: str
    answer: Any
    options: tuple[str, ...] = ()
    tolerance: float = 0.0
    why: str = ""
    hints: dict[str, str] = field(default_factory=dict)
    points: float = 1.0

    def chosen(self, given: Any) -> str:
        """The option meant by ``given``: its text, or its letter ("a", "b", ...)."""
        text = str(given).strip()
        if len(text) == 1 and text.isalpha() and ord(text.lower()) - ord("a") < len(self.options):
            return self.options[ord(text.lower()) - ord("a")]
        return text

    def is_right(self, given: Any) -> bool:
        if self.kind == "choice":
            return self.chosen(given) == str(self.answer)
        try:
            value = float(given)
        except (TypeError, ValueError):
            return False
        return math.isfinite(value) and abs(value - float(self.answer)) <= self.tolerance

    def feedback(self, given: Any) -> str:
        if given is None:
            return "not answered yet"
        if self.is_right(given):
            return "right"
        hint = self.hints.get(self.chosen(given), "") if self.kind == "choice" else ""
        return f"not {given!r}. " + " ".join(part for part in (hint, self.why) if part)


class Quiz:
    """The knowledge checks of one lab."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.questions: dict[str, Question] = {}

    def choice(
        self,
        key: str,
        text: str,
        options: Sequence[str],
        answer: str,
        *,
        why: str = "",
        hints: dict[str, str] | None = None,
        points: float = 1.0,
    ) -> None:
        """A multiple-choice question; ``hints`` maps a wrong option to what it misses."""
        options = tuple(str(o) for o in options)
        self.add(Question(key, text, "choice", str(answer), options, why=why, hints=dict(hints or {}), points=points))

    def number(
        self, key: str, text: str, answer: float, *, tolerance: float = 0.0, why: str = "", points: float = 1.0
    ) -> None:
        """A numeric question, right within ``tolerance`` of ``answer``."""
        self.add(Question(key, text, "number", answer, tolerance=float(tolerance), why=why, points=points))

    def add(self, question: Question) -> None:
        """Add a :class:`Question` made elsewhere (``course.knowledge`` keeps every lab's as data)."""
        if question.kind == "choice" and str(question.answer) not in question.options:
            raise QuizError(
                f"question {question.key!r}: the answer {question.answer!r} is not one of its options {question.options}"
            )
        for wrong in question.hints:
            if wrong not in question.options or wrong == question.answer:
                raise QuizError(f"question {question.key!r}: a hint for {wrong!r}, which is not a wrong option")
        if question.key in self.questions:
            raise QuizError(f"{self.title}: two questions named {question.key!r}")
        self.questions[question.key] = question

    def _given(self, answers: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(answers, dict):
            raise QuizError(
                f"answers are a dict {{question: answer}}, e.g. {{{next(iter(self.questions), 'q1')!r}: ...}}; "
                f"got {type(answers).__name__}"
            )
        unknown = sorted(set(answers) - set(self.questions))
        if unknown:
            raise QuizError(f"{self.title} has no question {unknown[0]!r}; its questions are {sorted(self.questions)}")
        return {key: answers.get(key) for key in self.questions}

    def check(self, answers: dict[str, Any]) -> str:
        """Feedback on ``answers`` ({question key: answer}), one line per question."""
        given = self._given(answers)
        right = sum(q.is_right(given[k]) for k, q in self.questions.items())
        lines = [f"{self.title}: {right} of {len(self.questions)} right"]
        lines += [f"  {k}: {q.feedback(given[k])}" for k, q in self.questions.items()]
        return "\n".join(lines)

    def score(self, answers: dict[str, Any]) -> tuple[float, float]:
        """(points earned, points possible): for an instructor who grades the checks."""
        given = self._given(answers)
        return (
            float(sum(q.points for k, q in self.questions.items() if q.is_right(given[k]))),
            float(sum(q.points for q in self.questions.values())),
        )

    def __str__(self) -> str:
        lines = [
            f"{self.title}: knowledge check — put your answers in a dict, e.g. answers = {{'{next(iter(self.questions), 'q1')}': ...}}"
        ]
        for q in self.questions.values():
            lines.append(f"  {q.key}: {q.text}")
            lines += [f"      {chr(97 + i)}) {o}" for i, o in enumerate(q.options)]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        lines = [
            f"**Knowledge check — {self.title}.** Answer in the next cell as a dict "
            f"`{{question: answer}}` (a choice by its letter or its text, a number as a number); "
            f"`quiz.check(answers)` says what is right and why.",
            "",
        ]
        for q in self.questions.values():
            lines.append(f"* **`{q.key}`** — {q.text}" + ("" if q.options else " *(a number)*"))
            lines += [f"    * **{chr(97 + i)}**) {o}" for i, o in enumerate(q.options)]
        return "\n".join(lines)
