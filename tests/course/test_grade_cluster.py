"""course.grade on a Dask cluster gives the same gradebook as on this machine; a second run reuses results.

Kept cheap: one fast real lab (00), two students (the reference solution and the blank lab), graded once
locally, once on a LocalCluster, once on a scheduler and two workers started as `dask` commands.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course import GRADING_TESTS, LABS, ROOT, SOLUTIONS, grade

LAB = "00_welcome"


def _args(submissions: Path, out: Path, *extra: str) -> list[str]:
    sandbox = "required" if os.environ.get("CI") else "auto"
    return [str(submissions), "--out", str(out), "--labs", LAB, "--sandbox", sandbox, *extra]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The class graded here, with its results cache next to the CSV."""
    root = tmp_path_factory.mktemp("cluster")
    submissions = root / "submissions"
    for student, source in (("reference", SOLUTIONS), ("blank", LABS)):
        (submissions / student).mkdir(parents=True)
        shutil.copy(source / f"{LAB}.ipynb", submissions / student)
    out = root / "local" / "grades.csv"
    assert grade.main(_args(submissions, out, "--quiet")) == 0
    text = out.read_text()
    # Not a vacuous comparison: the reference scores full marks, the blank lab nothing.
    assert text.splitlines()[1:] == [f"blank,{LAB},7,0", f"reference,{LAB},7,7"], text
    return submissions, out


@pytest.mark.slow
def test_a_local_cluster_grades_the_same_gradebook_with_a_progress_bar(local, tmp_path, capfd):
    from distributed import LocalCluster

    submissions, expected = local
    out = tmp_path / "grades.csv"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert grade.main(_args(submissions, out, "--scheduler", cluster.scheduler_address)) == 0
    assert out.read_text() == expected.read_text()
    assert sorted(p.name for p in (tmp_path / "feedback").glob("*.md")) == ["blank.md", "reference.md"]
    err = capfd.readouterr().err
    assert f"on the Dask cluster at {cluster.scheduler_address}" in err
    assert "grading: 100%" in err and "2/2" in err  # tqdm's bar
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d", err), err  # with elapsed<remaining time


@pytest.mark.slow
def test_a_scheduler_and_two_workers_started_as_commands_grade_the_same_gradebook(local, tmp_path):
    submissions, expected = local
    scheduler_file = tmp_path / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    dask = [sys.executable, "-m", "dask"]
    started = []
    try:

        def start(*command: str) -> None:
            started.append(
                subprocess.Popen(
                    [*dask, *command, "--scheduler-file", str(scheduler_file), "--no-dashboard"],
                    cwd=tmp_path,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

        start("scheduler", "--port", "0")
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(2):
            start("worker", "--nthreads", "1")
        address = json.loads(scheduler_file.read_text())["address"]
        out = tmp_path / "grades.csv"
        assert grade.main(_args(submissions, out, "--scheduler", address, "--quiet")) == 0
        assert out.read_text() == expected.read_text()
    finally:
        for process in reversed(started):
            process.terminate()
        for process in reversed(started):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.slow
def test_a_second_run_reuses_graded_units_and_grades_only_what_changed(local):
    submissions, expected = local
    cache = expected.parent / ".grading-cache"
    entries = sorted(cache.glob("*.json"))
    assert len(entries) == 2  # one per unit graded, named by notebook hash + grading hash

    results = grade.grade_class(submissions, tests=GRADING_TESTS, only=[LAB], cache=cache, limits=_limits())
    assert [r.cached for r in results] == [True, True]  # nothing graded again
    assert [r.score for r in results] == [0, 7]

    # The blank student hands in again (new bytes): only that unit is graded.
    blank = submissions / "blank" / f"{LAB}.ipynb"
    blank.write_text(blank.read_text().replace("# YOUR CODE HERE", "# YOUR CODE HERE (resubmitted)", 1))
    results = grade.grade_class(submissions, tests=GRADING_TESTS, only=[LAB], cache=cache, limits=_limits())
    assert [(r.student, r.cached, r.score) for r in results] == [("blank", False, 0), ("reference", True, 7)]
    assert len(list(cache.glob("*.json"))) == 3


def _limits() -> grade.Limits:
    # The same limits main() used for the first run, or the grading hash (which covers them) would differ.
    from course.grading.sandbox import resolve

    sandbox = resolve("required" if os.environ.get("CI") else "auto")
    return grade.Limits(sandbox=sandbox)


@pytest.mark.parametrize(
    "address, complaint",
    [
        ("tcp://127.0.0.1:9", "no Dask scheduler answered"),
        ("localhost", "not a scheduler address (missing port number"),
    ],
)
def test_an_unreachable_scheduler_is_one_clear_line(tmp_path, demo_course, capsys, address, complaint):
    demo_course.student("ada", demo_course.notebook())
    code = grade.main(
        [
            str(demo_course.root / "submissions"),
            "--out",
            str(tmp_path / "grades.csv"),
            "--tests",
            str(demo_course.tests),
            "--scheduler",
            address,
            "--scheduler-timeout",
            "2",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"error: --scheduler {address}: {complaint}"), err
    assert not (tmp_path / "grades.csv").exists()


def test_distributed_is_imported_only_for_a_cluster():
    code = (
        "import sys, kit, course.grade; print(sorted(m for m in ('distributed', 'dask', 'tqdm') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT))
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_a_worker_without_bubblewrap_refuses_a_sandboxed_unit_instead_of_grading_it_bare():
    from course.grading.sandbox import Sandbox, SandboxUnavailable
    from course.grading.unit import Unit, run_on_worker

    unit = Unit("ada", LAB, b"{}", (("test_00_welcome.py", b""),), ({"test": "t::x", "max": 1.0},))
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        run_on_worker(unit, grade.Limits(sandbox=Sandbox(bwrap="no-such-bwrap")))
