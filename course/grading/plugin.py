"""pytest plugin for graded tests: the ``notebook`` marker, the ``lab`` fixture and the results file.

A grading file names its notebook once and asks for ``lab``. A test asks the kernel for observations and
judges them itself, in this process, on inputs drawn from ``grading_rng`` (a seed fresh for each run)::

    pytestmark = pytest.mark.notebook("01_gpio_outputs")

    def _observe_next(phases):             # runs in the student's kernel: no assertions, only values
        return [next_phase(p) for p in phases]

    @pytest.mark.points(2)
    def test_next_phase(lab, grading_rng):
        phases = grading_rng.choices(["red", "green"], k=5)
        assert lab.observe(_observe_next, phases) == [{"red": "red_amber", "green": "amber"}[p] for p in phases]

The notebook comes from ``--notebooks DIR`` (or ``$COURSE_NOTEBOOKS``; default ``solutions/``). It is
executed once per test module in a fresh kernel (:class:`course.grading.lab.Lab`) that stays alive for the
module's tests. ``notebook(name, cell_timeout=..., notebook_timeout=..., call_timeout=...)`` overrides the
limits for one lab; ``$COURSE_CELL_TIMEOUT``, ``$COURSE_NOTEBOOK_TIMEOUT``, ``$COURSE_CALL_TIMEOUT`` for a run.
With ``$COURSE_SANDBOX=1`` (set by ``course.grade``; set it yourself to grade a student's notebooks by hand)
the kernel runs in a bubblewrap sandbox (:mod:`course.grading.sandbox`); without it, notebooks from anywhere but
the course's own ``solutions/`` and ``labs/`` get a warning that they run as you.

With ``--grading-results FILE`` (or ``$COURSE_GRADING_RESULTS``) every graded test is written to a JSON file,
rewritten after each test so that a run stopped half-way still leaves what it graded::

    {"tests": [{"test", "notebook", "points", "max", "passed", "message", "seconds"}, ...],
     "notebooks": {name: {"path", "seconds", "restarts", "problem", "cells": [...]}},
     "score": earned, "max_score": possible}

Loaded by ``tests/grading/conftest.py``, or with ``-p course.grading.plugin`` for grading files elsewhere.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("COURSE_GRADER") and "jsonschema" not in sys.modules:
    # nbformat -> jsonschema optionally imports rfc3987_syntax, which builds a parser at import time (~2 s):
    # paid by every graded notebook for an IRI format check notebooks never use. Only in course.grade's
    # own pytest processes, which import nothing else that could want it.
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]

from course import ROOT, SOLUTIONS

# A lab should run in about a minute on two cores; a busy machine (a class graded two at a time) may
# need twice that for a training cell, and an endless loop still costs at most two minutes.
DEFAULT_LIMITS = {"cell_timeout": 120.0, "notebook_timeout": 600.0, "call_timeout": 60.0}
_MESSAGE_LIMIT = 500


def notebook_name(node: pytest.Item | pytest.Collector) -> str | None:
    """The notebook stem a test grades: its ``notebook`` marker, else ``test_NN_slug.py`` -> ``NN_slug``."""
    marker = node.get_closest_marker("notebook")
    if marker is not None and marker.args:
        return str(marker.args[0])
    match = re.match(r"test_(\d\d[a-z]?_.+)\.py$", node.path.name) if node.path else None
    return match.group(1) if match else None


def points(item: pytest.Item) -> float:
    """Points a test is worth: its ``points(n)`` marker, 1 without one."""
    marker = item.get_closest_marker("points")
    return float(marker.args[0]) if marker is not None and marker.args else 1.0


def _option(config: pytest.Config, name: str, env: str) -> str | None:
    return config.getoption(name, default=None) or os.environ.get(env) or None


def _limits(marker: pytest.Mark | None) -> dict[str, float]:
    limits = {}
    for key, default in DEFAULT_LIMITS.items():
        env = os.environ.get(f"COURSE_{key.upper()}")
        limits[key] = float(env) if env else default
        if marker is not None and key in marker.kwargs:
            limits[key] = float(marker.kwargs[key])
    return limits


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): points a grading test is worth")
    config.addinivalue_line(
        "markers", "notebook(name, **limits): the notebook (stem, e.g. '01_gpio_outputs') a grading file grades"
    )
    config.stash[_RESULTS] = _Results(_option(config, "grading_results", "COURSE_GRADING_RESULTS"))
    folder = _option(config, "notebooks", "COURSE_NOTEBOOKS")
    if folder and not os.environ.get("COURSE_SANDBOX") and not _course_folder(Path(folder)):
        # A student's notebook run by hand: it runs as you, seeing your files. Said on every run, not hidden.
        sys.stderr.write(
            f"WARNING: the notebooks in {folder} run unsandboxed, as you, with your files: set COURSE_SANDBOX=1 "
            "(bubblewrap) to grade a student's work by hand, or grade with python -m course.grade\n"
        )


def _course_folder(folder: Path) -> bool:
    """The course's own notebooks (solutions/, labs/): trusted, run as they are."""
    try:
        return folder.resolve() in ((ROOT / "solutions").resolve(), (ROOT / "labs").resolve())
    except OSError:
        return False


def _sandbox():
    """The kernel's sandbox as ``course.grade`` asked for it (``$COURSE_SANDBOX=1`` and its limits); else None."""
    if not os.environ.get("COURSE_SANDBOX"):
        return None
    from course.grading.sandbox import FIRST_UID, Sandbox

    env = os.environ
    return Sandbox(
        memory_bytes=int(env.get("COURSE_SANDBOX_MEMORY", 3 * 2**30)),
        cpu_s=int(float(env.get("COURSE_SANDBOX_CPU_S", 1800))),
        uid=int(env.get("COURSE_SANDBOX_UID", FIRST_UID)),
    )


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The module's notebook, executed in a fresh kernel kept alive for the module's tests."""
    from course.grading.lab import Lab

    name = notebook_name(request.node)
    if name is None:
        raise pytest.UsageError(
            f"{request.node.path.name}: say which notebook it grades, "
            "e.g. pytestmark = pytest.mark.notebook('01_gpio_outputs')"
        )
    folder = Path(_option(request.config, "notebooks", "COURSE_NOTEBOOKS") or SOLUTIONS)
    notebook = Lab(folder / f"{name}.ipynb", **_limits(request.node.get_closest_marker("notebook")), sandbox=_sandbox())
    notebook.start()
    request.config.stash[_RESULTS].notebooks[name] = notebook
    try:
        yield notebook
    finally:
        notebook.close()


@pytest.fixture(scope="session")
def grading_seed() -> int:
    """A seed drawn afresh for each grading run (``$COURSE_GRADING_SEED`` repeats one run's draw).

    It lives only in the grader's process: the notebook never sees it, so it cannot know in advance which
    inputs a test will hand its functions.
    """
    fixed = os.environ.get("COURSE_GRADING_SEED")
    return int(fixed) if fixed else secrets.randbits(64)


@pytest.fixture
def grading_rng(request: pytest.FixtureRequest, grading_seed: int) -> random.Random:
    """``random.Random`` for one test: inputs the student cannot predict, each test its own stream."""
    return random.Random(f"{grading_seed}:{request.node.nodeid.split('::', 1)[-1]}")


_RESULTS = pytest.StashKey["_Results"]()


class _Results:
    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.tests: dict[str, dict[str, Any]] = {}
        self.notebooks: dict[str, Any] = {}

    def record(self, item: pytest.Item, passed: bool, message: str, seconds: float = 0.0) -> None:
        worth = points(item)
        self.tests[item.nodeid] = {
            "test": item.nodeid,
            "notebook": notebook_name(item),
            "points": worth if passed else 0.0,
            "max": worth,
            "passed": passed,
            "message": message,
            "seconds": round(seconds, 3),
        }
        self.write()

    def write(self) -> None:
        if self.path is None:
            return
        tests = list(self.tests.values())
        data = {
            "tests": tests,
            "notebooks": {
                name: lab.notebook_report() if hasattr(lab, "notebook_report") else lab
                for name, lab in self.notebooks.items()
            },
            "score": sum(t["points"] for t in tests),
            "max_score": sum(t["max"] for t in tests),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(self.path)  # a reader never sees half a file


def _is_graded(item: pytest.Item) -> bool:
    return "lab" in getattr(item, "fixturenames", ()) or item.get_closest_marker("notebook") is not None


def _short(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    if isinstance(excinfo.value, AssertionError) and str(excinfo.value).strip():
        text = str(excinfo.value).strip()
    else:
        text = excinfo.exconly().strip()
    if len(text) > _MESSAGE_LIMIT:
        text = text[:_MESSAGE_LIMIT] + "..."
    return text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if not _is_graded(item):
        return
    results: _Results = item.config.stash[_RESULTS]
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            results.record(item, False, f"skipped: {reason}", report.duration)
        elif report.passed:
            results.record(item, True, "", report.duration)
        else:
            message = _short(call.excinfo) if call.excinfo else str(report.longrepr)[:_MESSAGE_LIMIT]
            if report.when == "setup":
                message = f"could not set up the test: {message}"
            results.record(item, False, message, report.duration)


def pytest_collection_finish(session: pytest.Session) -> None:
    # With --collect-only this is all a grader gets: every graded test, worth its points, not yet passed.
    results: _Results = session.config.stash[_RESULTS]
    if session.config.option.collectonly:
        for item in session.items:
            if _is_graded(item):
                results.record(item, False, "not run")
