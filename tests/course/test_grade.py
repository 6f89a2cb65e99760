"""course.grade: a class of deliberately broken submissions always yields a full gradebook and feedback."""

from __future__ import annotations

import csv
import json
import time

import nbformat
import pytest

from course import grade

ENDLESS = "while True:\n    pass\n"
UNSTOPPABLE = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"
DOUBLE = "def double(x):\n    return 2 * x\n"
GREET = "def greet(name):\n    return f'hello {name}'\n"

# student -> (what their notebook is, expected score out of 4: double 2, limit 1, greet 1)
BROKEN = {
    "solved": (dict(), 4),
    "endless_cell": (dict(double=ENDLESS + DOUBLE), 2),
    "unstoppable_cell": (dict(limit=UNSTOPPABLE + "LIMIT = 3"), 3),
    "sys_exit": (dict(limit="import sys\nsys.exit(1)\nLIMIT = 3"), 3),
    "exit_call": (dict(greet="exit()\n" + GREET), 3),
    "os_exit": (dict(greet="import os\nos._exit(1)\n" + GREET), 3),
    "kernel_killed": (dict(double="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n" + DOUBLE), 2),
    "huge_output": (dict(imports="import math\nfor _ in range(50):\n    print('x' * 100_000)"), 4),
    "syntax_error": (dict(greet="def greet(name:\n    return name"), 3),
    "hangs_when_called": (dict(double="def double(x):\n    while True:\n        pass"), 2),
    "dies_when_called": (dict(double="def double(x):\n    import os\n    os._exit(1)"), 2),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, make_course):
    course = make_course(tmp_path_factory.mktemp("class"))
    for student, (replace, _) in BROKEN.items():
        course.student(student, course.notebook(**replace))
    course.student("blank", nbformat.read(course.labs / "01_demo.ipynb", as_version=4))
    course.student("missing", None)
    course.student("not_a_notebook", "this is not JSON")
    course.student("renamed", course.notebook(), filename="01_demo (1).ipynb")
    out = course.root / "out" / "grades.csv"
    code = grade.main(
        [
            str(course.root / "submissions"),
            "--out",
            str(out),
            "--tests",
            str(course.tests),
            "--cell-timeout",
            "3",
            "--call-timeout",
            "3",
            "--notebook-timeout",
            "60",
            "--quiet",
        ]
    )
    with open(out, newline="") as rows:
        table = list(csv.DictReader(rows))
    return code, table, course.root / "out" / "feedback"


@pytest.mark.slow
def test_the_batch_finishes_with_a_row_for_every_student(graded):
    code, table, _ = graded
    assert code == 0
    assert list(table[0]) == ["student", "assignment", "max_score", "score"]
    expected_students = sorted([*BROKEN, "blank", "missing", "not_a_notebook", "renamed"])
    assert [row["student"] for row in table] == expected_students
    assert {row["assignment"] for row in table} == {"01_demo"}
    assert {row["max_score"] for row in table} == {"4"}  # missing labs still count their points


@pytest.mark.slow
@pytest.mark.parametrize(
    "student, expected",
    [(s, e) for s, (_, e) in BROKEN.items()] + [("blank", 0), ("missing", 0), ("not_a_notebook", 0), ("renamed", 4)],
)
def test_each_breakage_costs_only_what_it_broke(graded, student, expected):
    _, table, feedback = graded
    row = next(row for row in table if row["student"] == student)
    assert int(row["score"]) == expected, (feedback / f"{student}.md").read_text()


@pytest.mark.slow
def test_feedback_names_each_failed_test_and_what_went_wrong(graded):
    _, _, feedback = graded
    assert sorted(p.stem for p in feedback.glob("*.md")) == sorted(
        [*BROKEN, "blank", "missing", "not_a_notebook", "renamed"]
    )
    solved = (feedback / "solved.md").read_text()
    assert "**Total: 4 / 4**" in solved and "All tests passed." in solved

    blank = (feedback / "blank.md").read_text()
    assert "`test_double` (2 points): NotImplementedError: not written yet" in blank
    assert "`test_limit` (1 point)" in blank

    assert "not submitted" in (feedback / "missing.md").read_text()
    unreadable = (feedback / "not_a_notebook.md").read_text()
    assert unreadable.count("not a readable notebook (not JSON: ") == 1, unreadable  # once, not once per test
    assert "graded 01_demo (1).ipynb as 01_demo.ipynb" in (feedback / "renamed.md").read_text()

    killed = (feedback / "kernel_killed.md").read_text()
    assert "the kernel died running this cell" in killed and "`test_double`" in killed
    assert "still running after 3 s" in (feedback / "endless_cell.md").read_text()
    assert "would not stop, so it was skipped" in (feedback / "unstoppable_cell.md").read_text()
    assert "SyntaxError" in (feedback / "syntax_error.md").read_text()
    assert "_observe_double() did not finish within 3 s" in (feedback / "hangs_when_called.md").read_text()
    assert "kernel died while running _observe_double()" in (feedback / "dies_when_called.md").read_text()
    huge = (feedback / "huge_output.md").read_text()
    assert len(huge) < 2000  # megabytes of prints never reach the feedback


@pytest.mark.slow
def test_a_lab_over_its_time_limit_is_stopped_and_still_reported(demo_course):
    sleepy = demo_course.notebook(imports="import time\ntime.sleep(120)")
    demo_course.student("sleepy", sleepy)
    started = time.monotonic()
    [sleepy] = grade.grade_class(
        demo_course.root / "submissions",
        tests=demo_course.tests,
        jobs=2,
        limits=grade.Limits(cell_timeout=200, lab_timeout=8),
    )
    assert time.monotonic() - started < 60
    assert sleepy.score == 0 and sleepy.max_score == 4
    assert "grading stopped after 8 s" in sleepy.note
    assert all("took too long" in t["message"] for t in sleepy.tests)


@pytest.mark.slow
def test_a_lab_whose_grader_died_is_not_cached_and_is_graded_again(demo_course, tmp_path):
    # the grader's own pytest killed after two tests (as by the out-of-memory killer): the student is told it was
    # the grader, and the next run grades the lab again instead of keeping the 0s
    demo_course.student("ada", demo_course.notebook())
    marker = tmp_path / "die"
    marker.touch()
    tests = demo_course.tests / "test_01_demo.py"
    tests.write_text(
        tests.read_text().replace(
            "@pytest.mark.points(1)\ndef test_greet",
            f"@pytest.mark.points(1)\ndef test_greet(lab, grading_rng):\n    import os, signal\n"
            f"    if os.path.exists({str(marker)!r}):\n        os.kill(os.getpid(), signal.SIGKILL)\n"
            f"    _greet(lab, grading_rng)\n\n\ndef _greet",
        )
    )
    cache = tmp_path / "cache"

    def graded():
        [ada] = grade.grade_class(demo_course.root / "submissions", tests=demo_course.tests, cache=cache)
        return ada

    died = graded()
    assert died.score == 3 and not died.cached  # double and limit were graded before the grader died
    assert "grader error (pytest exit code -9)" in died.note
    assert list(cache.glob("*.json")) == []
    marker.unlink()
    again = graded()
    assert (again.score, again.cached, again.note) == (4, False, "")
    assert graded().cached


def test_find_notebook_prefers_the_exact_name_then_a_unique_numbered_one(tmp_path):
    (tmp_path / "01_demo.ipynb").write_text("{}")
    assert grade.find_notebook(tmp_path, "01_demo") == tmp_path / "01_demo.ipynb"
    other = tmp_path / "nested"
    other.mkdir()
    (other / "02_sensors-Copy1.ipynb").write_text("{}")
    assert grade.find_notebook(tmp_path, "02_sensors") == other / "02_sensors-Copy1.ipynb"
    (other / "02_sensors-Copy2.ipynb").write_text("{}")
    assert grade.find_notebook(tmp_path, "02_sensors") is None  # two candidates: refuse to guess
    assert grade.find_notebook(tmp_path, "03_missing") is None


def test_csv_and_feedback_shapes(tmp_path):
    ok = grade.LabResult(
        "ada",
        "01_demo",
        [
            {"test": "g/test_01_demo.py::test_double", "points": 2.0, "max": 2.0, "passed": True, "message": ""},
            {
                "test": "g/test_01_demo.py::test_limit",
                "points": 0.0,
                "max": 1.5,
                "passed": False,
                "message": "assert 4 == 3\n  + where 4 = ...",
            },
        ],
        notebook={"problem": None, "cells": [{"text": "cell 3 (`x = 1/0`): ZeroDivisionError: division by zero"}]},
    )
    missing = grade.LabResult(
        "ada",
        "02_more",
        [
            {
                "test": "g/test_02_more.py::test_a",
                "points": 0.0,
                "max": 1.0,
                "passed": False,
                "message": "not submitted",
            },
        ],
        note="not submitted: no 02_more.ipynb in your folder",
    )
    grade.write_csv([ok, missing], tmp_path / "grades.csv")
    assert (tmp_path / "grades.csv").read_text().splitlines() == [
        "student,assignment,max_score,score",
        "ada,01_demo,3.50,2",
        "ada,02_more,1,0",
    ]
    text = grade.feedback_markdown("ada", [ok, missing])
    assert "**Total: 2 / 4.50**" in text
    assert "- `test_limit` (1.50 points): assert 4 == 3 + where 4 = ..." in text
    assert "- cell 3 (`x = 1/0`): ZeroDivisionError: division by zero" in text
    assert "_not submitted: no 02_more.ipynb in your folder_" in text and "1 test(s) not run." in text


def test_two_copies_and_no_exact_name_are_named_not_called_missing(demo_course):
    demo_course.student("twice", demo_course.notebook(), filename="01_demo-Copy1.ipynb")
    demo_course.student("twice", demo_course.notebook(), filename="01_demo-Copy2.ipynb")
    [twice] = grade.grade_class(demo_course.root / "submissions", tests=demo_course.tests)
    assert twice.score == 0 and twice.note == (
        "not graded: no 01_demo.ipynb in your folder but 2 notebooks that could be it "
        "(01_demo-Copy1.ipynb, 01_demo-Copy2.ipynb): name the one to grade 01_demo.ipynb"
    )


def test_two_students_never_share_a_feedback_file(tmp_path):
    # folder names that the file name would make alike: each student still gets a feedback file of their own
    names = ["a b", "a_b", "a:b", "Ann", "ann", "bob"]
    results = [grade.LabResult(n, "01_demo", [{"test": "t", "points": 1.0, "max": 1.0, "passed": True}]) for n in names]
    written = grade.write_feedback(results, tmp_path / "feedback")
    assert len({p.name.lower() for p in written}) == len(names) == len(list((tmp_path / "feedback").iterdir()))
    assert {p.read_text().splitlines()[0] for p in written} == {
        grade.feedback_markdown(n, []).splitlines()[0] for n in names
    }
    assert (tmp_path / "feedback" / "a_b.md").exists() and (tmp_path / "feedback" / "bob.md").exists()


def test_clear_errors_for_wrong_folders(tmp_path, demo_course):
    with pytest.raises(SystemExit, match="not a folder"):
        grade.discover_students(tmp_path / "nope")
    with pytest.raises(SystemExit, match="no student folders"):
        grade.discover_students(demo_course.labs)
    with pytest.raises(SystemExit, match="no grading files"):
        grade.discover_labs(tmp_path, tmp_path)
    assert grade.main([str(tmp_path / "nope")]) == 2  # the command was wrong: 2, as every usage error


def test_the_memory_option_says_what_it_limits(capsys):
    with pytest.raises(SystemExit):
        grade.main(["--help"])
    assert "RLIMIT_DATA" in " ".join(capsys.readouterr().out.split())


@pytest.mark.slow
def test_discover_labs_reads_points_without_running_notebooks(demo_course, tmp_path):
    labs = grade.discover_labs(demo_course.tests, tmp_path)
    assert [lab.notebook for lab in labs] == ["01_demo"]
    assert [(t["test"].split("::")[-1], t["max"]) for t in labs[0].tests] == [
        ("test_double", 2.0),
        ("test_limit", 1.0),
        ("test_greet", 1.0),
    ]
    with pytest.raises(SystemExit, match="no grading tests for 09_nope"):
        grade.discover_labs(demo_course.tests, tmp_path, only=["09_nope"])
    assert json.loads((tmp_path / "collected.json").read_text())["max_score"] == 4
