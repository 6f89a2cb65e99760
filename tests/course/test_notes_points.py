"""One place says how many points a lab has: the grading files. Each lab's notes must agree with them."""

from __future__ import annotations

import re

import pytest

from course import GRADING_TESTS, ROOT, grade

NOTES = ROOT / "course" / "notes"
HEADING = re.compile(r"^## [^\n(]*\((\d+(?:\.\d+)?) points\)", re.MULTILINE)  # "## Exercises (12 points)"


@pytest.mark.slow
def test_every_lab_note_states_the_points_the_grader_awards(tmp_path):
    labs = grade.discover_labs(GRADING_TESTS, tmp_path)
    assert labs, "no graded labs found"
    for lab in labs:
        note = NOTES / f"{lab.notebook}.md"
        assert note.exists(), f"course/notes/{lab.notebook}.md is missing"
        headings = HEADING.findall(note.read_text(encoding="utf-8"))
        assert len(headings) == 1, (
            f"course/notes/{note.name}: expected one '## Exercises (N points)' heading, found {headings}"
        )
        assert float(headings[0]) == lab.max_score, (
            f"course/notes/{note.name} says {headings[0]} points, tests/grading awards {lab.max_score:g}"
        )
