"""One graded unit: a student's notebook for one lab, self-contained, and what grading it gave.

A :class:`Unit` carries everything grading needs as bytes (the notebook, the lab's grading files), so that it
can be graded on any machine that has the course's environment (the ``kit`` and ``course`` packages, Jupyter,
bubblewrap), without the submissions folder or the repository's ``tests/``: on a local process, or on a Dask
worker on another machine (:mod:`course.grading.cluster`).

    >>> unit = Unit("ada", "01_demo", b'{"cells": []}', (("test_01_demo.py", b"def test_x(lab): pass"),),
    ...             ({"test": "test_01_demo.py::test_x", "max": 1.0},))
    >>> len(unit.notebook_hash)
    64

:func:`run` grades one unit in a separate pytest process whose kernel runs the student's code (in the sandbox
the limits carry); it never raises for what the notebook does.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from course import ROOT
from course.grading.plugin import DEFAULT_LIMITS
from course.grading.sandbox import FIRST_UID, Sandbox, SandboxUnavailable, available

_OUTPUT_TAIL = 2000  # characters of a failed pytest run kept for the message


@dataclass
class Limits:
    """Time limits for grading, and the sandbox each kernel runs in (None: the grader's own rights)."""

    cell_timeout: float = DEFAULT_LIMITS["cell_timeout"]
    notebook_timeout: float = DEFAULT_LIMITS["notebook_timeout"]
    call_timeout: float = DEFAULT_LIMITS["call_timeout"]
    lab_timeout: float | None = None  # whole pytest process; default: notebook + calls + a margin
    sandbox: Sandbox | None = None  # None: the kernel runs with the grader's rights (--sandbox off)

    def for_tests(self, count: int) -> float:
        return self.lab_timeout or self.notebook_timeout + self.call_timeout * count + 60


@dataclass
class LabResult:
    """How one student did on one lab."""

    student: str
    lab: str
    tests: list[dict[str, Any]]  # {"test", "points", "max", "passed", "message"}
    notebook: dict[str, Any] = field(default_factory=dict)  # what happened while it ran (from the plugin)
    note: str = ""  # a problem with the submission as a whole ("not submitted", "stopped after ...")
    seconds: float = 0.0
    cached: bool = False  # taken from an earlier run's results (course.grading.cache), not graded again
    cacheable: bool = True  # False when the grader itself failed (its pytest killed, or an internal error)

    @property
    def score(self) -> float:
        return sum(t["points"] for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t["max"] for t in self.tests)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabResult:
        return cls(**{k: data[k] for k in ("student", "lab", "tests", "notebook", "note", "seconds")})


@dataclass(frozen=True)
class Unit:
    """A student's notebook for one lab and the lab's grading files, as bytes: all a worker needs."""

    student: str
    lab: str  # notebook stem, e.g. "01_gpio_outputs"
    notebook: bytes
    grading: tuple[tuple[str, bytes], ...]  # (file name, source) of the lab's grading files
    tests: tuple[dict[str, Any], ...]  # the tests expected, {"test", "max"}, from collecting the grading files
    note: str = ""  # said of the submission before grading ("graded X as Y")

    @property
    def notebook_hash(self) -> str:
        return hashlib.sha256(self.notebook).hexdigest()


def grading_hash(grading: Iterable[tuple[str, bytes]], limits: Limits) -> str:
    """What a result depends on besides the notebook: the grading files, the grader's and the kit's code, the limits.

    Changing a grading test, the grading plugin, the kit (whose simulations give many expected values) or a
    time limit gives a new hash, so cached results made under the old ones are not reused.
    """
    digest = hashlib.sha256()
    for name, source in sorted(grading):
        digest.update(name.encode() + b"\0" + source + b"\0")
    code = [*(ROOT / "course" / "grading").glob("*.py"), *(p for p in (ROOT / "kit").rglob("*") if p.is_file())]
    for path in sorted(p for p in code if "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    settings = asdict(limits)
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def pytest_command(args: Iterable[str]) -> list[str]:
    # pytest-timeout is left out: the grader stops a whole lab itself (--lab-timeout), and a per-test limit
    # would cut a long notebook short while the lab fixture is still executing it.
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "course.grading.plugin",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:timeout",
        "-q",
        "--no-header",
        "-o",
        "addopts=",
        *args,
    ]


def environment(extra: dict[str, str], home: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The kernel must not run the instructor's IPython startup files, nor plot to a window.
    env.setdefault("IPYTHONDIR", str(home / "ipython"))
    env.setdefault("MPLCONFIGDIR", str(home / "mpl"))
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["COURSE_GRADER"] = "1"
    # Only the grading plugin: the installed pytest plugins (hypothesis, anyio) cost about a second of CPU per
    # graded lab to import, and no grading test uses them.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.update(extra)
    return env


def run(unit: Unit, limits: Limits, uid: int | None = None) -> LabResult:
    """Grade ``unit`` in a separate pytest process; never raises for what the notebook does.

    The pytest process is the grader's (it holds the tests and writes the results file); only the kernel
    it starts runs the student's code, inside ``limits.sandbox`` (as user ``uid`` when the grader is root).
    Everything is written to a temporary folder of this machine and removed afterwards.
    """
    started = time.monotonic()
    result = LabResult(unit.student, unit.lab, [], note=unit.note)
    timeout = limits.for_tests(len(unit.tests))
    with tempfile.TemporaryDirectory(prefix=f"grade-{unit.lab[:20]}-") as tmp:
        tmp = Path(tmp)
        folder = tmp / "notebooks"
        folder.mkdir()
        (folder / f"{unit.lab}.ipynb").write_bytes(unit.notebook)
        grading = tmp / "grading"
        grading.mkdir()
        for name, source in unit.grading:
            (grading / Path(name).name).write_bytes(source)
        # An empty ini of its own: no pytest.ini or pyproject.toml found above the temporary folder applies.
        (tmp / "pytest.ini").write_text("[pytest]\n")
        results = tmp / "results.json"
        extra = {
            "COURSE_NOTEBOOKS": str(folder),
            "COURSE_GRADING_RESULTS": str(results),
            "COURSE_CELL_TIMEOUT": str(limits.cell_timeout),
            "COURSE_NOTEBOOK_TIMEOUT": str(limits.notebook_timeout),
            "COURSE_CALL_TIMEOUT": str(limits.call_timeout),
        }
        if limits.sandbox is not None:
            extra.update(
                COURSE_SANDBOX="1",
                COURSE_SANDBOX_MEMORY=str(limits.sandbox.memory_bytes),
                COURSE_SANDBOX_CPU_S=str(limits.sandbox.cpu_s),
                COURSE_SANDBOX_UID=str(uid if uid is not None else limits.sandbox.uid),
            )
        env = environment(extra, tmp)
        log = tmp / "pytest.log"
        stopped = False
        files = [str(grading / Path(name).name) for name, _ in unit.grading]
        with open(log, "wb") as out:
            # A session of its own, so that a stop takes pytest and everything it started with it.
            process = subprocess.Popen(
                pytest_command(["-c", str(tmp / "pytest.ini"), "--rootdir", str(grading), *files]),
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stopped = True
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        data = _read_json(results)
        graded = {key(t["test"]): t for t in data.get("tests", [])}
        result.notebook = data.get("notebooks", {}).get(unit.lab, {})
        if stopped:
            result.note = f"grading stopped after {timeout:.0f} s; tests not reached count as failed"
            missing = "not reached: grading this lab took too long"
        else:
            tail = log.read_bytes()[-_OUTPUT_TAIL:].decode("utf-8", "replace").strip()
            missing = f"not run (pytest exit code {process.returncode}): {tail[-300:]}"
            if process.returncode not in (0, 1):  # 0 and 1: the tests ran (and passed, or some failed)
                # the grader failed, not the student: killed (out of memory?) or an internal error. Not kept in
                # the cache, so that running the command again grades it again
                result.cacheable = False
                result.note = f"grader error (pytest exit code {process.returncode}); run the command again to grade it"
        for expected in unit.tests:
            test = graded.get(key(expected["test"]))
            if test is None:
                test = {
                    "test": expected["test"],
                    "points": 0.0,
                    "max": expected["max"],
                    "passed": False,
                    "message": missing,
                }
            # The expected id (from collecting the instructor's files), not the temporary folder's.
            test = dict(test, test=expected["test"])
            result.tests.append(
                {k: test.get(k, 0.0) for k in ("test", "points", "max", "passed", "message", "seconds")}
            )
    result.seconds = time.monotonic() - started
    return result


# A worker grades as many units at once as it has threads; each takes its own sandbox user id, so that one
# kernel's fork bomb meets its own process limit. Several worker processes on one machine get disjoint ranges.
_UIDS_PER_PROCESS = 16
_uids: queue.SimpleQueue[int] | None = None
_uids_lock = threading.Lock()


def _uid_pool() -> queue.SimpleQueue[int]:
    global _uids
    with _uids_lock:
        if _uids is None:
            _uids = queue.SimpleQueue()
            first = FIRST_UID + 1000 + _UIDS_PER_PROCESS * (os.getpid() % 200)
            for slot in range(_UIDS_PER_PROCESS):
                _uids.put(first + slot)
        return _uids


_sandbox_checked: str | None = None


def run_on_worker(unit: Unit, limits: Limits) -> LabResult:
    """:func:`run` as a Dask task: takes a sandbox user id of this process's own for the time it runs.

    The sandbox was asked for on the instructor's machine; a worker that cannot make one raises
    :class:`~course.grading.sandbox.SandboxUnavailable` (the unit is then retried elsewhere, or reported as a
    grader error and not cached) rather than grade a student's code unsandboxed or score it 0.
    """
    global _sandbox_checked
    if limits.sandbox is not None and _sandbox_checked != limits.sandbox.bwrap:
        why = available(limits.sandbox.bwrap)
        if why:
            raise SandboxUnavailable(f"worker {os.uname().nodename}: {why}")
        _sandbox_checked = limits.sandbox.bwrap
    pool = _uid_pool()
    uid = pool.get()
    try:
        return run(unit, limits, uid)
    finally:
        pool.put(uid)


def key(nodeid: str) -> str:
    """A test's id without the folder part, which depends on where pytest put its rootdir."""
    file_part, _, rest = nodeid.partition("::")
    return f"{Path(file_part).name}::{rest}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
