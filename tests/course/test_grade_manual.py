"""Written answers graded by hand: pending after grading, merged from manual.csv, a bad manual.csv refused whole."""

from __future__ import annotations

import csv

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

from course import build, grade
from course.grading import manual

ANSWER = """**Justify your choice** in two sentences.

**Graded by hand (3 points):**
- (2) names the binding budget
- (1) says what the model gave up

### BEGIN SOLUTION
Memory bound it; it gave up two points.
### END SOLUTION
"""


@pytest.fixture(scope="module")
def course(tmp_path_factory, make_course):
    """The demo course with a written answer; ada answers it, bob hands in the blank lab."""
    course = make_course(tmp_path_factory.mktemp("manual"))
    solution = nbformat.read(course.solutions / "01_demo.ipynb", as_version=4)
    cell = new_markdown_cell(ANSWER)
    cell.id = "justify"
    solution.cells.append(cell)
    nbformat.write(solution, course.solutions / "01_demo.ipynb")
    build.build(course.solutions, course.labs, log=lambda *_: None)
    lab = nbformat.read(course.labs / "01_demo.ipynb", as_version=4)
    course.student("bob", lab)
    answered = course.notebook()
    answered.cells.append(nbformat.from_dict(dict(lab.cells[-1], source="Memory was binding: ada's own words.")))
    course.student("ada", answered)
    out = course.root / "out" / "grades.csv"
    args = [str(course.root / "submissions"), "--out", str(out), "--tests", str(course.tests)]
    args += ["--solutions", str(course.solutions), "--cell-timeout", "10", "--quiet"]
    assert grade.main(args) == 0
    return course, out, args


def _rows(path):
    with open(path, newline="") as rows:
        return list(csv.DictReader(rows))


@pytest.mark.slow
def test_written_answers_are_pending_and_count_in_the_maximum(course):
    _, out, _ = course
    assert [(r["student"], r["max_score"], r["score"]) for r in _rows(out)] == [("ada", "7", "4"), ("bob", "7", "0")]
    feedback = (out.parent / "feedback" / "ada.md").read_text()
    assert "Written answers, graded by hand:" in feedback
    assert "- names the binding budget (2): pending: graded by hand" in feedback
    sheet = _rows(out.parent / "manual.csv")
    assert [(r["student"], r["answer"], r["criterion"], r["max_points"], r["points"]) for r in sheet] == [
        ("ada", "justify", "names the binding budget", "2", ""),
        ("ada", "justify", "says what the model gave up", "1", ""),
        ("bob", "justify", "names the binding budget", "2", ""),
        ("bob", "justify", "says what the model gave up", "1", ""),
    ]
    answers = (out.parent / "manual-answers" / "01_demo-justify.md").read_text()
    assert "## ada\n\nMemory was binding: ada's own words." in answers
    assert "## bob\n\nYOUR ANSWER HERE" in answers


@pytest.mark.slow
def test_merge_adds_the_marks_to_the_gradebook_and_the_feedback(course):
    _, out, args = course
    sheet = out.parent / "manual.csv"
    rows = _rows(sheet)
    rows[0].update(points="2", comment="clear")
    rows[1].update(points="0.5", comment="say how many points")
    rows[2].update(points="0")  # bob: the last row left empty stays pending
    marks = out.parent / "marks.csv"
    with open(marks, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=manual.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    assert grade.main([*args, "--merge", str(marks)]) == 0  # graded units come from the cache
    assert [(r["student"], r["max_score"], r["score"]) for r in _rows(out)] == [
        ("ada", "7", "6.50"),
        ("bob", "7", "0"),
    ]
    feedback = (out.parent / "feedback" / "ada.md").read_text()
    assert "**Total: 6.50 / 7**" in feedback
    assert "- names the binding budget: 2 / 2 (clear)" in feedback
    assert "- says what the model gave up: 0.50 / 1 (say how many points)" in feedback
    assert "- says what the model gave up (1): pending" in (out.parent / "feedback" / "bob.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, complaint",
    [
        (lambda rows: rows[0].update(points="lots"), "line 2: points 'lots' is not a number (0 to 2)"),
        (lambda rows: rows[1].update(points="3"), "line 3: points 3 is outside 0 to 1"),
        (lambda rows: rows[0].update(student="mallory"), "line 2: no student 'mallory' in this class"),
        (lambda rows: rows[0].update(answer="other"), "line 2: no written answer 'other' in lab '01_demo'"),
        (lambda rows: rows.append(dict(rows[0])), "line 6: ada 01_demo/justify 'names the binding budget' is marked"),
    ],
)
def test_a_bad_manual_csv_is_one_line_and_nothing_is_overwritten(course, tmp_path, capsys, change, complaint):
    _, out, args = course
    rows = _rows(out.parent / "manual.csv")
    change(rows)
    marks = tmp_path / "marks.csv"
    with open(marks, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=manual.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    before = out.read_bytes(), (out.parent / "feedback" / "ada.md").read_bytes()
    capsys.readouterr()
    assert grade.main([*args, "--merge", str(marks)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --merge ") and complaint in err[0], err
    assert (out.read_bytes(), (out.parent / "feedback" / "ada.md").read_bytes()) == before


def test_a_manual_csv_without_the_columns_is_refused(tmp_path):
    bad = tmp_path / "marks.csv"
    bad.write_text("name,score\nada,3\n")
    with pytest.raises(manual.ManualMarksError, match="no column student, lab, answer, criterion, points"):
        manual.read_marks(bad, ["ada"], [])
    with pytest.raises(manual.ManualMarksError, match="cannot read it"):
        manual.read_marks(tmp_path / "missing.csv", ["ada"], [])


def test_lab_06s_justification_has_its_rubric():
    from course import SOLUTIONS

    [answer] = manual.answers(SOLUTIONS, ["06_compression"])
    assert answer.points == 3 and len(answer.rubric) == 3


def test_marks_for_a_lab_not_handed_in_are_not_added_and_are_reported():
    from course.grading.unit import LabResult

    item = manual.Answer("06_compression", "justify", (manual.Criterion(2.0, "names the budget"),))
    absent = LabResult("carl", "06_compression", [], note="not submitted: no 06_compression.ipynb in your folder")
    mark = manual.Mark("carl", "06_compression", "justify", "names the budget", 2.0, 2.0, "good")
    ignored: list = []
    assert manual.apply([absent], [item], [mark], ignored) == 0
    assert absent.score == 0 and absent.tests[-1]["message"] == "not submitted"
    assert ignored == [mark]
