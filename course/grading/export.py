"""Gradebook files in the shapes other tools import: ``course.grade --format simple|nbgrader|canvas|gradescope``.

    >>> rows = [Row("ada", "01_gpio_outputs", 12, 12), Row("ada", "03_storage", 5, 12)]
    >>> print(to_text(rows, "simple"), end="")
    student,assignment,max_score,score
    ada,01_gpio_outputs,12,12
    ada,03_storage,12,5

A student is known by the name of their submission folder; put the LMS's login (or SIS id) there when you
collect the notebooks, so that the import matches students without a lookup table.

- ``simple``: one row per student x lab: ``student,assignment,max_score,score`` (the default).
- ``nbgrader``: the columns of ``nbgrader export`` (``assignment,duedate,timestamp,student_id,last_name,
  first_name,email,raw_score,late_submission_penalty,score,max_score``); dates, names and e-mail left empty,
  no late penalty.
- ``canvas``: Canvas's gradebook import: ``Student,ID,SIS User ID,SIS Login ID,Section`` then one column per lab,
  a ``Points Possible`` row first; the folder name goes in ``SIS Login ID``. Canvas creates a new assignment for
  each lab column it does not know yet.
- ``gradescope``: ``Name,SID,Email`` then one column per lab and ``Total Score``; the folder name is the ``SID``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("simple", "nbgrader", "canvas", "gradescope")


@dataclass(frozen=True)
class Row:
    """One student's result on one lab."""

    student: str
    lab: str
    score: float
    max_score: float


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def to_text(rows: list[Row], fmt: str = "simple") -> str:
    """The gradebook as CSV text in format ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    students = sorted({r.student for r in rows})
    labs = sorted({r.lab for r in rows})
    by = {(r.student, r.lab): r for r in rows}
    possible = {lab: max(r.max_score for r in rows if r.lab == lab) for lab in labs}
    if fmt == "simple":
        writer.writerow(["student", "assignment", "max_score", "score"])
        writer.writerows([r.student, r.lab, _fmt(r.max_score), _fmt(r.score)] for r in rows)
    elif fmt == "nbgrader":
        writer.writerow(
            [
                "assignment",
                "duedate",
                "timestamp",
                "student_id",
                "last_name",
                "first_name",
                "email",
                "raw_score",
                "late_submission_penalty",
                "score",
                "max_score",
            ]
        )
        for lab in labs:
            for student in students:
                r = by.get((student, lab))
                score = r.score if r else 0.0
                writer.writerow([lab, "", "", student, "", "", "", _fmt(score), "0", _fmt(score), _fmt(possible[lab])])
    elif fmt == "canvas":
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *labs])
        writer.writerow(["Points Possible", "", "", "", "", *(_fmt(possible[lab]) for lab in labs)])
        for student in students:
            writer.writerow(
                [
                    student,
                    "",
                    "",
                    student,
                    "",
                    *(_fmt(by[(student, lab)].score) if (student, lab) in by else "" for lab in labs),
                ]
            )
    else:  # gradescope
        writer.writerow(["Name", "SID", "Email", *labs, "Total Score"])
        for student in students:
            scores = [by[(student, lab)].score if (student, lab) in by else 0.0 for lab in labs]
            writer.writerow([student, student, "", *(_fmt(s) for s in scores), _fmt(sum(scores))])
    return out.getvalue()


def write(rows: list[Row], path: Path, fmt: str = "simple") -> None:
    """Write the gradebook to ``path`` (folders made as needed)."""
    text = to_text(rows, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
