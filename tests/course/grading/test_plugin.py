"""course.grading.plugin: graded test files run under pytest, one kernel per module, results as JSON."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from course import ROOT
from course.grading.unit import pytest_command


def _pytest(course, tmp_path, notebooks, *args):
    results = tmp_path / "results.json"
    env = dict(os.environ, COURSE_NOTEBOOKS=str(notebooks), COURSE_GRADING_RESULTS=str(results))
    done = subprocess.run(
        pytest_command([str(course.tests), *args]),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    data = json.loads(results.read_text()) if results.exists() else None
    return done, data


@pytest.mark.slow
def test_solution_passes_every_test_and_results_are_written(demo_course, tmp_path):
    done, data = _pytest(demo_course, tmp_path, demo_course.solutions)
    assert done.returncode == 0, done.stdout
    assert [(t["test"].split("::")[-1], t["points"], t["max"], t["passed"], t["message"]) for t in data["tests"]] == [
        ("test_double", 2.0, 2.0, True, ""),
        ("test_limit", 1.0, 1.0, True, ""),
        ("test_greet", 1.0, 1.0, True, ""),
    ]
    assert {t["notebook"] for t in data["tests"]} == {"01_demo"}
    assert (data["score"], data["max_score"]) == (4, 4)
    report = data["notebooks"]["01_demo"]
    assert report["problem"] is None and report["cells"] == [] and report["seconds"] > 0


@pytest.mark.slow
def test_blank_lab_fails_every_test_with_the_kernel_side_message(demo_course, tmp_path):
    done, data = _pytest(demo_course, tmp_path, demo_course.labs)
    assert done.returncode == 1 and "3 failed" in done.stdout
    messages = {t["test"].split("::")[-1]: t["message"] for t in data["tests"]}
    assert messages["test_double"].startswith("NotImplementedError: not written yet")
    assert "NameError: name 'LIMIT' is not defined" in messages["test_limit"]
    assert data["score"] == 0 and data["max_score"] == 4


def test_a_missing_notebook_fails_each_test_cleanly_not_as_errors(demo_course, tmp_path):
    done, data = _pytest(demo_course, tmp_path, tmp_path / "nowhere")
    assert "3 failed" in done.stdout and "error" not in done.stdout.splitlines()[-1]
    assert {t["message"] for t in data["tests"]} == {
        f"no notebook 01_demo.ipynb in {tmp_path / 'nowhere'} (not submitted?)"
    }


def test_collect_only_lists_every_graded_test_and_its_points(demo_course, tmp_path):
    done, data = _pytest(demo_course, tmp_path, demo_course.solutions, "--collect-only")
    assert done.returncode == 0, done.stdout
    assert [(t["max"], t["passed"], t["message"]) for t in data["tests"]] == [
        (2.0, False, "not run"),
        (1.0, False, "not run"),
        (1.0, False, "not run"),
    ]
    assert data["notebooks"] == {}


def test_a_grading_file_without_a_notebook_name_is_a_usage_error(demo_course, tmp_path):
    (demo_course.tests / "test_misc.py").write_text("def test_x(lab):\n    pass\n")
    done, _ = _pytest(demo_course, tmp_path, demo_course.solutions, "-k", "test_x")
    assert done.returncode != 0
    assert "say which notebook it grades" in done.stdout + done.stderr


def test_a_students_notebooks_run_by_hand_unsandboxed_are_warned_about(demo_course, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "COURSE_SANDBOX"}
    args = ["--collect-only", "-q"]

    def said(notebooks, **extra):
        run = subprocess.run(
            pytest_command([str(demo_course.tests), *args]),
            cwd=ROOT,
            env=dict(env, COURSE_NOTEBOOKS=str(notebooks), **extra),
            capture_output=True,
            text=True,
            timeout=120,
        )
        return run.stderr + run.stdout

    assert f"WARNING: the notebooks in {tmp_path} run unsandboxed" in said(tmp_path)
    assert "unsandboxed" not in said(tmp_path, COURSE_SANDBOX="1")
    assert "unsandboxed" not in said(ROOT / "solutions") and "unsandboxed" not in said("labs")
