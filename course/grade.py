"""Grade a class: every student's labs, a gradebook CSV and one feedback file per student.

    python -m course.grade submissions/ --out grades.csv

``submissions/`` holds one folder per student with their ``NN_slug.ipynb`` files. Each student x lab is
graded by ``pytest tests/grading/test_NN_slug.py`` in its own process (the notebook itself runs in a
kernel that process starts), ``--jobs`` at a time, so nothing a notebook does can stop the batch: a lab
that takes longer than ``--lab-timeout`` is stopped and its remaining tests count as failed. A missing
lab scores 0 and its points still count in ``max_score``.

Writes ``grades.csv`` (student, assignment, max_score, score: the shape nbgrader exports) and
``feedback/STUDENT.md`` next to it: each failed test with its message, and what went wrong while the
notebook ran.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course import GRADING_TESTS, ROOT
from course.grading import export
from course.grading.plugin import DEFAULT_LIMITS
from course.grading.sandbox import FIRST_UID, MODES, Sandbox, SandboxUnavailable, resolve

_OUTPUT_TAIL = 2000  # characters of a failed pytest run kept for the message


@dataclass
class LabTests:
    """One grading file and the tests it holds."""

    notebook: str
    files: list[Path]  # usually one: test_NN_slug.py
    tests: list[dict[str, Any]]  # {"test", "max"}

    @property
    def max_score(self) -> float:
        return sum(t["max"] for t in self.tests)


@dataclass
class LabResult:
    """How one student did on one lab."""

    student: str
    lab: str
    tests: list[dict[str, Any]]  # {"test", "points", "max", "passed", "message"}
    notebook: dict[str, Any] = field(default_factory=dict)  # what happened while it ran (from the plugin)
    note: str = ""  # a problem with the submission as a whole ("not submitted", "stopped after ...")
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(t["points"] for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t["max"] for t in self.tests)


# ---- discovering labs and students ----------------------------------------------------------------
def _pytest_command(args: Iterable[str]) -> list[str]:
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


def _environment(extra: dict[str, str], home: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The kernel must not run the instructor's IPython startup files, nor plot to a window.
    env.setdefault("IPYTHONDIR", str(home / "ipython"))
    env.setdefault("MPLCONFIGDIR", str(home / "mpl"))
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["COURSE_GRADER"] = "1"
    env.update(extra)
    return env


def discover_labs(tests: Path, home: Path, only: list[str] | None = None) -> list[LabTests]:
    """The graded labs in ``tests`` and each test's points, from one ``pytest --collect-only``."""
    files = sorted(tests.glob("test_*.py"))
    if not files:
        raise SystemExit(f"error: no grading files (test_*.py) in {tests}; point --tests at tests/grading")
    results = home / "collected.json"
    done = subprocess.run(
        _pytest_command(["--collect-only", *map(str, files)]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_environment({"COURSE_GRADING_RESULTS": str(results)}, home),
        timeout=300,
    )
    if done.returncode not in (0, 5):
        print(
            f"warning: some grading files in {tests} did not load; their labs are left out:\n"
            f"{done.stdout[-_OUTPUT_TAIL:]}{done.stderr[-_OUTPUT_TAIL:]}",
            file=sys.stderr,
        )
    collected = json.loads(results.read_text()) if results.exists() else {"tests": []}
    labs: dict[str, LabTests] = {}
    for test in collected["tests"]:
        path = tests / Path(test["test"].split("::", 1)[0]).name
        lab = labs.setdefault(test["notebook"], LabTests(test["notebook"], [], []))
        if path not in lab.files:
            lab.files.append(path)
        lab.tests.append({"test": test["test"], "max": test["max"]})
    found = sorted(labs.values(), key=lambda lab: lab.notebook)
    if only:
        unknown = sorted(set(only) - {lab.notebook for lab in found})
        if unknown:
            raise SystemExit(
                f"error: no grading tests for {', '.join(unknown)} in {tests}; "
                f"known labs: {', '.join(lab.notebook for lab in found)}"
            )
        found = [lab for lab in found if lab.notebook in only]
    return found


def discover_students(submissions: Path) -> list[Path]:
    """One folder per student, in name order (hidden folders and ``feedback/`` ignored)."""
    if not submissions.is_dir():
        raise SystemExit(f"error: {submissions} is not a folder; expected one sub-folder per student")
    students = sorted(
        p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith((".", "_")) and p.name != "feedback"
    )
    if not students:
        raise SystemExit(
            f"error: {submissions} has no student folders (e.g. {submissions}/alice/01_gpio_outputs.ipynb)"
        )
    return students


def find_notebook(student: Path, name: str) -> Path | None:
    """The student's notebook for lab ``name``: exact name first, then a unique ``NN_*.ipynb`` anywhere inside.

    The exact name is returned whatever it is (:func:`refusal` then says why a symlink or a folder is not
    graded); a guessed one must be a regular file.
    """
    exact = student / f"{name}.ipynb"
    if exact.exists() or exact.is_symlink():
        return exact
    candidates = [p for p in sorted(student.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts and _regular(p)]
    for pattern in (f"{name}.ipynb", f"{name[:3]}*.ipynb"):
        matches = [p for p in candidates if p.match(pattern)]
        if len(matches) == 1:
            return matches[0]
    return None


#: Largest notebook accepted (bytes); a notebook is text, and a lab with its outputs stripped is far smaller.
MAX_NOTEBOOK_BYTES = 50 * 2**20


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def refusal(path: Path) -> str | None:
    """Why ``path`` is not graded as a notebook (a symlink, a folder, a device, too big), or None."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        return f"{path.name} could not be read ({exc.strerror})"
    if stat.S_ISLNK(info.st_mode):
        return f"{path.name} is a symbolic link, not a notebook; hand in the .ipynb file itself"
    if stat.S_ISDIR(info.st_mode):
        return f"{path.name} is a folder, not a notebook; hand in the .ipynb file itself"
    if not stat.S_ISREG(info.st_mode):
        return f"{path.name} is not a regular file; hand in the .ipynb file itself"
    if info.st_size > MAX_NOTEBOOK_BYTES:
        return (
            f"{path.name} is {info.st_size / 2**20:.0f} MB, over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit; "
            "clear its outputs (Edit > Clear Outputs of All Cells) and hand it in again"
        )
    return None


def _private_copy(notebook: Path, target: Path) -> str | None:
    """Copy the submission's bytes once, without following links; None, or why it was refused."""
    why = refusal(notebook)
    if why:
        return why
    try:
        fd = os.open(notebook, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return f"{notebook.name} could not be read ({exc.strerror})"
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):  # swapped between the look and the open
            return f"{notebook.name} is not a regular file; hand in the .ipynb file itself"
        data = source.read(MAX_NOTEBOOK_BYTES + 1)
    if len(data) > MAX_NOTEBOOK_BYTES:
        return f"{notebook.name} is over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return None


# ---- grading one student x lab ----------------------------------------------------------------------
@dataclass
class Limits:
    cell_timeout: float = DEFAULT_LIMITS["cell_timeout"]
    notebook_timeout: float = DEFAULT_LIMITS["notebook_timeout"]
    call_timeout: float = DEFAULT_LIMITS["call_timeout"]
    lab_timeout: float | None = None  # whole pytest process; default: notebook + calls + a margin
    sandbox: Sandbox | None = None  # None: the kernel runs with the grader's rights (--sandbox off)

    def for_lab(self, lab: LabTests) -> float:
        return self.lab_timeout or self.notebook_timeout + self.call_timeout * len(lab.tests) + 60


def grade_one(student: Path, lab: LabTests, limits: Limits, home: Path, uid: int | None = None) -> LabResult:
    """Grade one student's lab in a separate pytest process; never raises for what the notebook does.

    The pytest process is the grader's (it holds the tests and writes the results file); only the kernel
    it starts runs the student's code, inside ``limits.sandbox`` (as user ``uid`` when the grader is root).
    """
    started = time.monotonic()
    result = LabResult(student.name, lab.notebook, [])
    notebook = find_notebook(student, lab.notebook)
    if notebook is None:
        result.note = f"not submitted: no {lab.notebook}.ipynb in your folder"
        result.tests = [dict(t, points=0.0, passed=False, message="not submitted") for t in lab.tests]
        return result
    with tempfile.TemporaryDirectory(prefix=f"{_safe(student.name)[:20]}-{lab.notebook[:20]}-", dir=home) as tmp:
        tmp = Path(tmp)
        folder = tmp / "notebooks"
        refused = _private_copy(notebook, folder / f"{lab.notebook}.ipynb")
        if refused:
            result.note = f"not graded: {refused}"
            result.tests = [dict(t, points=0.0, passed=False, message="not graded") for t in lab.tests]
            return result
        if notebook.name != f"{lab.notebook}.ipynb":
            result.note = f"graded {notebook.relative_to(student)} as {lab.notebook}.ipynb"
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
        env = _environment(extra, home)
        log = tmp / "pytest.log"
        stopped = False
        with open(log, "wb") as out:
            # A session of its own, so that a stop takes pytest and everything it started with it.
            process = subprocess.Popen(
                _pytest_command(map(str, lab.files)),
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                process.wait(timeout=limits.for_lab(lab))
            except subprocess.TimeoutExpired:
                stopped = True
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        data = _read_json(results)
        graded = {_key(t["test"]): t for t in data.get("tests", [])}
        result.notebook = data.get("notebooks", {}).get(lab.notebook, {})
        if stopped:
            result.note = f"grading stopped after {limits.for_lab(lab):.0f} s; tests not reached count as failed"
            missing = "not reached: grading this lab took too long"
        else:
            tail = log.read_bytes()[-_OUTPUT_TAIL:].decode("utf-8", "replace").strip()
            missing = f"not run (pytest exit code {process.returncode}): {tail[-300:]}"
        for expected in lab.tests:
            test = graded.get(_key(expected["test"]))
            if test is None:
                test = {
                    "test": expected["test"],
                    "points": 0.0,
                    "max": expected["max"],
                    "passed": False,
                    "message": missing,
                }
            result.tests.append(
                {k: test.get(k, 0.0) for k in ("test", "points", "max", "passed", "message", "seconds")}
            )
    result.seconds = time.monotonic() - started
    return result


def _key(nodeid: str) -> str:
    """A test's id without the folder part, which depends on where pytest put its rootdir."""
    file_part, _, rest = nodeid.partition("::")
    return f"{Path(file_part).name}::{rest}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# ---- the batch ----------------------------------------------------------------------------------------
def grade_class(
    submissions: Path,
    *,
    tests: Path = GRADING_TESTS,
    jobs: int = 2,
    limits: Limits | None = None,
    only: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[LabResult]:
    """Grade every student folder in ``submissions`` on every lab graded in ``tests``."""
    limits = limits or Limits()
    say = progress or (lambda line: None)
    with tempfile.TemporaryDirectory(prefix="course-grade-") as home_dir:
        home = Path(home_dir)
        labs = discover_labs(tests.resolve(), home, only)
        students = discover_students(submissions.resolve())
        work = [(student, lab) for student in students for lab in labs]
        say(f"grading {len(students)} student(s) x {len(labs)} lab(s) with {jobs} worker(s)")
        results: list[LabResult] = []
        # One sandbox user per parallel job, so that one kernel's fork bomb meets its own process limit only.
        uids: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(max(1, jobs)):
            uids.put(FIRST_UID + slot)

        def unit(student: Path, lab: LabTests) -> LabResult:
            uid = uids.get()
            try:
                return grade_one(student, lab, limits, home, uid)
            finally:
                uids.put(uid)

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(unit, student, lab): (student, lab) for student, lab in work}
            for done, future in enumerate(as_completed(futures), start=1):
                student, lab = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # a grader bug must not cost the rest of the class
                    result = LabResult(
                        student.name,
                        lab.notebook,
                        [dict(t, points=0.0, passed=False, message=f"grader error: {exc!r}") for t in lab.tests],
                        note=f"grader error: {exc!r}",
                    )
                results.append(result)
                say(
                    f"[{done}/{len(work)}] {result.student} {result.lab}: "
                    f"{_fmt(result.score)}/{_fmt(result.max_score)} ({result.seconds:.1f} s)"
                    + (f" - {result.note}" if result.note else "")
                )
    return sorted(results, key=lambda r: (r.student, r.lab))


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def write_csv(results: list[LabResult], path: Path, fmt: str = "simple") -> None:
    """The gradebook: one row per student x assignment, or another tool's shape (:mod:`course.grading.export`)."""
    export.write([export.Row(r.student, r.lab, r.score, r.max_score) for r in results], path, fmt)


def feedback_markdown(student: str, results: list[LabResult]) -> str:
    """One student's feedback: a score table, then each failed test and what went wrong in the notebook."""
    total, possible = sum(r.score for r in results), sum(r.max_score for r in results)
    lines = [
        f"# Feedback for {student}",
        "",
        f"**Total: {_fmt(total)} / {_fmt(possible)}**",
        "",
        "| lab | score |",
        "|---|---|",
    ]
    lines += [f"| {r.lab} | {_fmt(r.score)} / {_fmt(r.max_score)} |" for r in results]
    for r in results:
        lines += ["", f"## {r.lab}: {_fmt(r.score)} / {_fmt(r.max_score)}", ""]
        if r.note:
            lines += [f"_{r.note}_", ""]
        failed = [t for t in r.tests if not t["passed"]]
        if not failed:
            lines.append("All tests passed.")
        elif r.note.startswith(("not submitted", "not graded")):
            lines.append(f"{len(failed)} test(s) not run.")
        else:
            lines.append("Failed tests:")
            for t in failed:
                name = t["test"].split("::")[-1]
                message = " ".join(t["message"].split()) or "failed"
                lines.append(f"- `{name}` ({_fmt(t['max'])} point{'s' if t['max'] != 1 else ''}): {message}")
        problem = r.notebook.get("problem")
        if problem and all(t["message"] == problem for t in failed):
            problem = None  # already said once per test
        cells = r.notebook.get("cells") or []
        if problem or cells:
            lines += ["", "When your notebook ran from top to bottom:"]
            if problem:
                lines.append(f"- {problem}")
            lines += [f"- {' '.join(c['text'].split())}" for c in cells]
    return "\n".join(lines) + "\n"


def _safe(name: str) -> str:
    return re.sub(r"[^\w.@+-]", "_", name) or "student"


def write_feedback(results: list[LabResult], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    by_student: dict[str, list[LabResult]] = {}
    for r in results:
        by_student.setdefault(r.student, []).append(r)
    written = []
    for student, rows in by_student.items():
        path = folder / f"{_safe(student)}.md"
        path.write_text(feedback_markdown(student, rows), encoding="utf-8")
        written.append(path)
    return written


def _bytes(text: str) -> int:
    """``3G``, ``1500M``, ``2048K`` or a plain number of bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ValueError(f"--memory {text!r}: give a size such as 3G or 1500M")
    value = float(match.group(1)) * 1024 ** " KMGT".index((match.group(2) or " ").upper())
    if value < 256 * 2**20:
        raise ValueError(f"--memory {text!r}: at least 256M, or the Python kernel itself cannot start")
    return int(value)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", type=Path, help="folder with one sub-folder per student")
    parser.add_argument("--out", type=Path, default=Path("grades.csv"), help="gradebook CSV (default: grades.csv)")
    parser.add_argument(
        "--feedback",
        type=Path,
        default=None,
        help="folder for STUDENT.md feedback (default: feedback/ next to the CSV)",
    )
    parser.add_argument("--tests", type=Path, default=GRADING_TESTS, help="grading files (default: tests/grading)")
    parser.add_argument("--labs", default=None, help="comma-separated labs to grade (default: all)")
    parser.add_argument("--jobs", "-j", type=int, default=2, help="labs graded at once (default: 2)")
    parser.add_argument(
        "--cell-timeout",
        type=float,
        default=DEFAULT_LIMITS["cell_timeout"],
        help="seconds one notebook cell may run (default: %(default)s)",
    )
    parser.add_argument(
        "--notebook-timeout",
        type=float,
        default=DEFAULT_LIMITS["notebook_timeout"],
        help="seconds the whole notebook may run (default: %(default)s)",
    )
    parser.add_argument(
        "--call-timeout",
        type=float,
        default=DEFAULT_LIMITS["call_timeout"],
        help="seconds one graded check may run (default: %(default)s)",
    )
    parser.add_argument(
        "--lab-timeout",
        type=float,
        default=None,
        help="seconds for grading one student's lab, all included (default: notebook + checks + 60)",
    )
    parser.add_argument(
        "--format",
        choices=export.FORMATS,
        default="simple",
        help="gradebook columns: simple (student,assignment,max_score,score), nbgrader (its export "
        "columns), canvas or gradescope (their grade imports) (default: %(default)s)",
    )
    parser.add_argument(
        "--sandbox",
        choices=MODES,
        default="auto",
        help="run each kernel in a bubblewrap sandbox: required (fail without one), auto (warn "
        "loudly and go on without one), off (default: %(default)s)",
    )
    parser.add_argument(
        "--memory",
        default="3G",
        help="address space one student kernel may use, e.g. 3G or 1500M (default: %(default)s)",
    )
    parser.add_argument(
        "--cpu-time", type=float, default=1800, help="CPU seconds one student kernel may use (default: %(default)s)"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    args = parser.parse_args(list(argv) if argv is not None else None)

    started = time.monotonic()
    try:
        memory = _bytes(args.memory)
        if args.cpu_time <= 0:
            raise ValueError(f"--cpu-time {args.cpu_time:g}: give a positive number of seconds")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.formatwarning = lambda message, *_: f"warning: {message}\n"
            sandbox = resolve(args.sandbox, memory_bytes=memory, cpu_s=int(args.cpu_time))
    except (ValueError, SandboxUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    limits = Limits(args.cell_timeout, args.notebook_timeout, args.call_timeout, args.lab_timeout, sandbox)
    only = [name.strip() for name in args.labs.split(",") if name.strip()] if args.labs else None
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    results = grade_class(
        args.submissions, tests=args.tests.resolve(), jobs=args.jobs, limits=limits, only=only, progress=progress
    )
    write_csv(results, args.out, args.format)
    feedback = args.feedback or args.out.resolve().parent / "feedback"
    write_feedback(results, feedback)
    students = sorted({r.student for r in results})
    if not args.quiet:
        print(
            f"graded {len(students)} student(s) in {time.monotonic() - started:.1f} s; "
            f"gradebook {args.out}, feedback in {feedback}/",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
