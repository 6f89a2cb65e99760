"""Written answers graded by hand: rubrics in the lab source, marks in a CSV, merged into the gradebook.

A written answer is a Markdown cell of a solution with a ``### BEGIN SOLUTION`` region (the model answer) and,
before it, a rubric the student sees too::

    **Justify your choice** in a few sentences ...

    **Graded by hand (3 points):**
    - (1) names the budget that was binding and why it rules the other models out
    - (1) says what the chosen model gave up against float32
    - (1) names what to check on the real Pi before shipping

    ### BEGIN SOLUTION
    ...

    >>> rubric = parse_rubric("**Graded by hand (2 points):**\\n- (1) says which\\n- (1) says why\\n")
    >>> [(c.points, c.text) for c in rubric]
    [(1.0, 'says which'), (1.0, 'says why')]

``course.grade`` leaves these answers pending and writes ``manual.csv`` next to the gradebook: one row per
student x criterion (``student,lab,answer,criterion,max_points,points,comment``, ``points`` empty), plus the
student's answer in ``manual-answers/STUDENT.md``. The instructor fills ``points`` (and a comment if they like);
``course.grade ... --merge manual.csv`` adds them to the gradebook and the feedback.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

HEADING = re.compile(r"^\*\*Graded by hand \((\d+(?:\.\d+)?) points?\):?\*\*:?\s*$")
CRITERION = re.compile(r"^- \((\d+(?:\.\d+)?)\) (.+?)\s*$")
COLUMNS = ["student", "lab", "answer", "criterion", "max_points", "points", "comment"]


class RubricError(ValueError):
    """A rubric whose points do not add up, or a criterion without points."""


class ManualMarksError(ValueError):
    """A manual.csv that cannot be merged: a missing column, an unknown student or answer, bad points."""


@dataclass(frozen=True)
class Criterion:
    points: float
    text: str


@dataclass(frozen=True)
class Answer:
    """One written answer graded by hand: its lab, its cell id, its rubric."""

    lab: str
    answer: str  # the cell's id: it survives the build and the student's edits
    rubric: tuple[Criterion, ...]
    prompt: str = ""  # the cell's text before the student's part (the question and the rubric)

    @property
    def points(self) -> float:
        return sum(c.points for c in self.rubric)


def parse_rubric(source: str, *, where: str = "cell") -> tuple[Criterion, ...]:
    """The rubric under a ``**Graded by hand (N points):**`` line; () when the cell has none."""
    lines = source.splitlines()
    for number, line in enumerate(lines):
        heading = HEADING.match(line.strip())
        if not heading:
            continue
        criteria = []
        for item in lines[number + 1 :]:
            if not item.strip():
                if criteria:
                    break
                continue
            found = CRITERION.match(item.strip())
            if not found:
                break
            criteria.append(Criterion(float(found.group(1)), found.group(2)))
        total = float(heading.group(1))
        if not criteria:
            raise RubricError(f"{where}: 'Graded by hand ({heading.group(1)} points)' has no '- (1) criterion' lines")
        if abs(sum(c.points for c in criteria) - total) > 1e-9:
            raise RubricError(
                f"{where}: the rubric's criteria add up to {sum(c.points for c in criteria):g} points, "
                f"its heading says {total:g}; make them agree"
            )
        return tuple(criteria)
    return ()


def answers(solutions: Path, labs: list[str] | None = None) -> list[Answer]:
    """Every written answer with a rubric in ``solutions`` (only ``labs`` when given), in course order."""
    found = []
    for path in sorted(solutions.glob("*.ipynb")):
        if labs is not None and path.stem not in labs:
            continue
        nb = nbformat.read(path, as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                rubric = parse_rubric(cell.source, where=f"{path.name}, cell {index}")
                if rubric:
                    prompt = cell.source.split("### BEGIN SOLUTION", 1)[0]
                    found.append(Answer(path.stem, cell.get("id") or f"cell-{index}", rubric, prompt))
    return found


def student_answer(notebook: bytes | None, answer: Answer) -> str:
    """What the student wrote in that cell (found by its id), or a note that it is missing."""
    if notebook is None:
        return "(not submitted)"
    try:
        nb = nbformat.reads(notebook.decode("utf-8", "replace"), as_version=4)
    except Exception:  # noqa: BLE001 - any unreadable notebook
        return "(the notebook could not be read)"
    for cell in nb.cells:
        if cell.get("id") == answer.answer:
            # the student's words, without the question and the rubric they wrote under
            return cell.source.removeprefix(answer.prompt) if answer.prompt.strip() else cell.source
    return "(the answer cell is missing from this notebook)"


def template(students: list[str], items: list[Answer]) -> str:
    """manual.csv with one row per student x criterion, points left empty for the instructor."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for student in students:
        for item in items:
            for criterion in item.rubric:
                writer.writerow([student, item.lab, item.answer, criterion.text, f"{criterion.points:g}", "", ""])
    return out.getvalue()


@dataclass(frozen=True)
class Mark:
    student: str
    lab: str
    answer: str
    criterion: str
    max_points: float
    points: float | None  # None: not marked yet
    comment: str


def read_marks(path: Path, students: list[str], items: list[Answer]) -> list[Mark]:
    """The instructor's marks, checked against the class and the rubrics; :class:`ManualMarksError` on the
    first problem, naming the file, the line and what to change."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ManualMarksError(f"--merge {path}: cannot read it ({exc.strerror})") from exc
    rows = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("student", "lab", "answer", "criterion", "points") if c not in (rows.fieldnames or [])]
    if missing:
        raise ManualMarksError(
            f"--merge {path}: no column {', '.join(missing)}; expected {','.join(COLUMNS)} "
            "(the manual.csv course.grade writes)"
        )
    known = {(i.lab, i.answer): i for i in items}
    seen: set[tuple[str, str, str, str]] = set()
    marks = []
    for line, row in enumerate(rows, start=2):
        where = f"--merge {path}, line {line}"
        student, lab, answer, text = (row.get(k) or "" for k in ("student", "lab", "answer", "criterion"))
        if student not in students:
            raise ManualMarksError(f"{where}: no student {student!r} in this class; fix the name or delete the row")
        item = known.get((lab, answer))
        if item is None:
            raise ManualMarksError(
                f"{where}: no written answer {answer!r} in lab {lab!r}; "
                f"known: {', '.join(f'{i.lab}/{i.answer}' for i in items) or 'none'}"
            )
        criterion = next((c for c in item.rubric if c.text == text), None)
        if criterion is None:
            raise ManualMarksError(f"{where}: {text!r} is not a criterion of {lab}/{answer}'s rubric")
        key = (student, lab, answer, text)
        if key in seen:
            raise ManualMarksError(f"{where}: {student} {lab}/{answer} {text!r} is marked twice; keep one row")
        seen.add(key)
        raw = (row.get("points") or "").strip()
        points = None
        if raw:
            try:
                points = float(raw)
            except ValueError:
                raise ManualMarksError(f"{where}: points {raw!r} is not a number (0 to {criterion.points:g})") from None
            if not 0 <= points <= criterion.points:
                raise ManualMarksError(f"{where}: points {raw} is outside 0 to {criterion.points:g} for {text!r}")
        marks.append(Mark(student, lab, answer, text, criterion.points, points, (row.get("comment") or "").strip()))
    return marks


PENDING = "pending: graded by hand"


def apply(
    results: list, items: list[Answer], marks: list[Mark] | None = None, ignored: list[Mark] | None = None
) -> int:
    """Add each written answer's criteria to its lab's result (``results``: LabResults), marked or pending.

    Returns how many criteria are still pending. The criteria count in the lab's ``max_score`` from the start,
    so the gradebook's maximum does not move when the marks arrive. Marks given for a lab that was not handed
    in (or was refused) are not added; they go to ``ignored``, for the instructor to hear about.
    """
    given = {(m.student, m.lab, m.answer, m.criterion): m for m in marks or []}
    pending = 0
    for result in results:
        for item in (i for i in items if i.lab == result.lab):
            for criterion in item.rubric:
                mark = given.get((result.student, item.lab, item.answer, criterion.text))
                entry = {
                    "test": f"manual::{item.answer}::{criterion.text}",
                    "points": 0.0,
                    "max": criterion.points,
                    "passed": False,
                    "message": PENDING,
                    "seconds": 0.0,
                    "manual": True,
                }
                if result.note.startswith(("not submitted", "not graded")):
                    entry["message"] = "not submitted"
                    if mark is not None and mark.points is not None and ignored is not None:
                        ignored.append(mark)
                elif mark is not None and mark.points is not None:
                    entry.update(points=mark.points, passed=mark.points == criterion.points, message=mark.comment)
                else:
                    pending += 1
                result.tests.append(entry)
    return pending
