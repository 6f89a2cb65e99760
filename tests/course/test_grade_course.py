"""The real course through the real grader: every reference solution scores 100 %, every blank lab 0.

Labs are discovered when the tests run (grading files in tests/grading), so this grows with the course.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from course import GRADING_TESTS, LABS, SOLUTIONS, grade
from course.grading.plugin import notebook_name
from course.grading.sandbox import resolve

STUDENTS = {"reference": SOLUTIONS, "blank": LABS}


def _graded_notebooks() -> list[str]:
    names = []
    for path in sorted(GRADING_TESTS.glob("test_*.py")):
        source = path.read_text(encoding="utf-8")
        # the first argument of pytest.mark.notebook(...), whatever limits follow it
        found = re.search(r"pytest\.mark\.notebook\(\s*[\"']([^\"']+)[\"']", source)
        names.append(found.group(1) if found else path.stem.removeprefix("test_"))
    return names


def test_every_grading_file_has_its_solution_and_its_lab():
    for name in _graded_notebooks():
        assert (SOLUTIONS / f"{name}.ipynb").exists(), (
            f"tests/grading grades {name} but solutions/{name}.ipynb is missing"
        )
        assert (LABS / f"{name}.ipynb").exists(), f"labs/{name}.ipynb is missing: run `python -m course.build`"


def test_notebook_name_falls_back_to_the_file_name():
    class Node:
        path = GRADING_TESTS / "test_07_camera.py"

        def get_closest_marker(self, name):
            return None

    assert notebook_name(Node()) == "07_camera"


@pytest.fixture(scope="module")
def course_results(tmp_path_factory):
    if not _graded_notebooks():
        return []
    submissions = tmp_path_factory.mktemp("course")
    for student, source in STUDENTS.items():
        (submissions / student).mkdir()
        for name in _graded_notebooks():
            if (source / f"{name}.ipynb").exists():
                shutil.copy(source / f"{name}.ipynb", submissions / student)
    # Generous limits: this checks correctness, and a busy CI machine must not turn a slow cell into a failure.
    # Sandboxed as an instructor grades (CI installs bubblewrap): the TF labs fit the default memory limit and lab
    # 04 starts its local AWS endpoint and Mosquitto inside a loopback-only network.
    sandbox = resolve("required" if os.environ.get("CI") else "auto")
    limits = grade.Limits(cell_timeout=300, notebook_timeout=1200, call_timeout=300, sandbox=sandbox)
    return grade.grade_class(submissions, tests=GRADING_TESTS, jobs=2, limits=limits)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_every_reference_solution_scores_full_marks(course_results):
    if not _graded_notebooks():
        with pytest.raises(SystemExit, match="no grading files"):
            grade.discover_labs(GRADING_TESTS, SOLUTIONS)
        return
    reference = [r for r in course_results if r.student == "reference"]
    assert sorted(r.lab for r in reference) == sorted(_graded_notebooks())
    for r in reference:
        assert r.max_score > 0, f"{r.lab}: its grading file awards no points"
        assert r.score == r.max_score, grade.feedback_markdown("reference", [r])


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_every_blank_lab_scores_zero_without_breaking_the_grader(course_results):
    blank = [r for r in course_results if r.student == "blank"]
    assert sorted(r.lab for r in blank) == sorted(_graded_notebooks())
    for r in blank:
        assert r.score == 0, grade.feedback_markdown("blank", [r])
        assert not r.notebook.get("problem"), f"{r.lab}: {r.notebook['problem']}"
        assert all("pytest exit code" not in t["message"] for t in r.tests), grade.feedback_markdown("blank", [r])


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_every_reference_solution_runs_clean_top_to_bottom(course_results):
    # Its self-checks pass and no cell hits a time limit: what a student sees when they get it right.
    for r in (r for r in course_results if r.student == "reference"):
        cells = [c["text"] for c in r.notebook.get("cells", [])]
        assert not cells, f"solutions/{r.lab}.ipynb, run by the grader:\n" + "\n".join(cells)
