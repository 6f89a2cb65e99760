"""course.grading.export: the gradebook in the columns nbgrader, Canvas and Gradescope import."""

from __future__ import annotations

import csv
import io

import pytest

from course.grading.export import FORMATS, Row, to_text

ROWS = [Row("ada", "01_gpio_outputs", 12, 12), Row("ada", "03_storage", 5.5, 12), Row("bob", "01_gpio_outputs", 0, 12)]


def _table(text):
    return list(csv.reader(io.StringIO(text)))


def test_simple_is_one_row_per_student_and_lab():
    assert _table(to_text(ROWS, "simple")) == [
        ["student", "assignment", "max_score", "score"],
        ["ada", "01_gpio_outputs", "12", "12"],
        ["ada", "03_storage", "12", "5.50"],
        ["bob", "01_gpio_outputs", "12", "0"],
    ]


def test_nbgrader_has_its_export_columns_and_a_row_for_every_student_and_lab():
    table = _table(to_text(ROWS, "nbgrader"))
    assert table[0] == [
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
    rows = {(r[0], r[3]): r for r in table[1:]}
    assert len(rows) == 4  # bob did not hand in 03_storage: still a row, scored 0
    assert rows[("03_storage", "bob")][9:] == ["0", "12"]
    assert rows[("03_storage", "ada")][7:] == ["5.50", "0", "5.50", "12"]


def test_canvas_has_points_possible_then_one_column_per_lab():
    table = _table(to_text(ROWS, "canvas"))
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "01_gpio_outputs", "03_storage"]
    assert table[1] == ["Points Possible", "", "", "", "", "12", "12"]
    assert table[2] == ["ada", "", "", "ada", "", "12", "5.50"]
    assert table[3] == ["bob", "", "", "bob", "", "0", ""]  # empty: not handed in, left for the instructor


def test_gradescope_has_a_total():
    table = _table(to_text(ROWS, "gradescope"))
    assert table[0] == ["Name", "SID", "Email", "01_gpio_outputs", "03_storage", "Total Score"]
    assert table[1] == ["ada", "ada", "", "12", "5.50", "17.50"]


def test_an_unknown_format_is_one_clear_error():
    with pytest.raises(ValueError, match="choose one of " + ", ".join(FORMATS)):
        to_text(ROWS, "moodle")
