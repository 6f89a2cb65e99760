"""Grade a class: every student's labs, a gradebook CSV and one feedback file per student.

    python -m course.grade submissions/ --out grades.csv
    python -m course.grade submissions/ --out grades.csv --scheduler tcp://10.0.0.5:8786   # on a Dask cluster

``submissions/`` holds one folder per student with their ``NN_slug.ipynb`` files. Each student x lab is a
self-contained unit (:mod:`course.grading.unit`) graded by ``pytest test_NN_slug.py`` in its own process (the
notebook itself runs in a sandboxed kernel that process starts), ``--jobs`` at a time here or on the workers of
a Dask cluster (:mod:`course.grading.cluster`), so nothing a notebook does can stop the batch: a lab
that takes longer than ``--lab-timeout`` is stopped and its remaining tests count as failed. A missing
lab scores 0 and its points still count in ``max_score``.

Writes ``grades.csv`` (student, assignment, max_score, score: the shape nbgrader exports) and
``feedback/STUDENT.md`` next to it: each failed test with its message, and what went wrong while the
notebook ran. Results are cached as they arrive (:mod:`course.grading.cache`, ``.grading-cache/`` next to the
CSV), so a second run grades only new or changed notebooks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import re
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course import GRADING_TESTS, ROOT, SOLUTIONS
from course.grading import export, manual
from course.grading import unit as unit_module
from course.grading.cache import ResultCache
from course.grading.cluster import SchedulerUnreachable, check_scheduler, grade_on_cluster
from course.grading.plugin import DEFAULT_LIMITS
from course.grading.sandbox import FIRST_UID, MODES, SandboxUnavailable, resolve
from course.grading.unit import LabResult, Limits, Unit, grading_hash
from course.grading.unit import run as run_unit

__all__ = ["LabResult", "LabTests", "Limits", "Unit", "grade_class", "main"]

_OUTPUT_TAIL = 2000  # characters of a failed pytest run kept for a message


@dataclass
class LabTests:
    """One grading file and the tests it holds."""

    notebook: str
    files: list[Path]  # usually one: test_NN_slug.py
    tests: list[dict[str, Any]]  # {"test", "max"}

    @property
    def max_score(self) -> float:
        return sum(t["max"] for t in self.tests)


# ---- discovering labs and students ----------------------------------------------------------------
def discover_labs(tests: Path, home: Path, only: list[str] | None = None) -> list[LabTests]:
    """The graded labs in ``tests`` and each test's points, from one ``pytest --collect-only``."""
    files = sorted(tests.glob("test_*.py"))
    if not files:
        raise SystemExit(f"error: no grading files (test_*.py) in {tests}; point --tests at tests/grading")
    named = [tests / f"test_{name}.py" for name in only or []]
    if only and all(path in files for path in named):
        files = named  # collecting only the labs asked for saves a second per grading file left out
    results = home / "collected.json"
    done = subprocess.run(
        unit_module.pytest_command(["--collect-only", *map(str, files)]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=unit_module.environment({"COURSE_GRADING_RESULTS": str(results)}, home),
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


def _candidates(student: Path, name: str) -> list[Path]:
    """Every notebook in ``student``'s folder that :func:`find_notebook` could have meant for lab ``name``."""
    return [
        p for p in sorted(student.rglob(f"{name[:3]}*.ipynb")) if ".ipynb_checkpoints" not in p.parts and _regular(p)
    ]


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


def read_submission(notebook: Path) -> tuple[bytes | None, str | None]:
    """The submission's bytes, read once without following links; or None and why it was refused."""
    why = refusal(notebook)
    if why:
        return None, why
    try:
        fd = os.open(notebook, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return None, f"{notebook.name} could not be read ({exc.strerror})"
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):  # swapped between the look and the open
            return None, f"{notebook.name} is not a regular file; hand in the .ipynb file itself"
        data = source.read(MAX_NOTEBOOK_BYTES + 1)
    if len(data) > MAX_NOTEBOOK_BYTES:
        return None, f"{notebook.name} is over the {MAX_NOTEBOOK_BYTES // 2**20} MB limit"
    why = _unreadable(data)
    if why:  # said once, here, rather than by every test of the lab
        return None, f"{notebook.name} is not a readable notebook ({why}); open it in Jupyter, save it, hand that in"
    return data, None


def _unreadable(data: bytes) -> str | None:
    """Why Jupyter could not open these bytes as a notebook (as the grader's kernel would read them), or None."""
    import nbformat

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "not text: a binary file"
    try:
        content = json.loads(text)
    except ValueError as exc:
        return f"not JSON: {str(exc)[:80]}"
    if not isinstance(content, dict) or "cells" not in content and "worksheets" not in content:
        return "JSON, but not a notebook: it has no cells"
    try:
        nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - whatever nbformat finds wrong is the student's file, not the grader
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
    return None


# ---- grading one student x lab ----------------------------------------------------------------------
def _zero(student: Path, lab: LabTests, verdict: str, why: str) -> LabResult:
    """Every test of ``lab`` at zero points, with the one reason the student reads."""
    tests = [dict(t, points=0.0, passed=False, message=verdict) for t in lab.tests]
    return LabResult(student.name, lab.notebook, tests, note=f"{verdict}: {why}")


def make_unit(student: Path, lab: LabTests) -> Unit | LabResult:
    """The self-contained unit that grades ``student``'s ``lab``; or, when there is nothing to grade (not
    submitted, refused), the result that says so."""
    notebook = find_notebook(student, lab.notebook)
    if notebook is None:
        several = _candidates(student, lab.notebook)
        if len(several) > 1:  # handed in, but which copy is the work is the student's to say
            names = ", ".join(str(p.relative_to(student)) for p in several[:5])
            return _zero(
                student,
                lab,
                "not graded",
                f"no {lab.notebook}.ipynb in your folder but {len(several)} notebooks that could be it ({names}): "
                f"name the one to grade {lab.notebook}.ipynb",
            )
        return _zero(student, lab, "not submitted", f"no {lab.notebook}.ipynb in your folder")
    data, refused = read_submission(notebook)
    if data is None:
        return _zero(student, lab, "not graded", refused)
    note = ""
    if notebook.name != f"{lab.notebook}.ipynb":
        note = f"graded {notebook.relative_to(student)} as {lab.notebook}.ipynb"
    grading = tuple((path.name, path.read_bytes()) for path in lab.files)
    return Unit(student.name, lab.notebook, data, grading, tuple(lab.tests), note)


def grade_one(student: Path, lab: LabTests, limits: Limits, uid: int | None = None) -> LabResult:
    """Grade one student's lab here, in a separate pytest process; never raises for what the notebook does."""
    unit = make_unit(student, lab)
    return unit if isinstance(unit, LabResult) else run_unit(unit, limits, uid)


def _grader_error(unit: Unit, exc: BaseException) -> LabResult:
    # A grader bug or a lost worker must not cost the rest of the class; the unit is not cached, so a
    # second run grades it again.
    return LabResult(
        unit.student,
        unit.lab,
        [dict(t, points=0.0, passed=False, message=f"grader error: {exc!r}") for t in unit.tests],
        note=f"grader error: {exc!r}",
    )


def _graded_here(units: list[Unit], limits: Limits, jobs: int) -> Iterator[tuple[Unit, LabResult | BaseException]]:
    """Grade ``units`` on this machine, ``jobs`` at a time; yield each as it finishes."""
    # One sandbox user per parallel job, so that one kernel's fork bomb meets its own process limit only.
    uids: queue.SimpleQueue[int] = queue.SimpleQueue()
    for slot in range(max(1, jobs)):
        uids.put(FIRST_UID + slot)

    def one(unit: Unit) -> LabResult:
        uid = uids.get()
        try:
            return run_unit(unit, limits, uid)
        finally:
            uids.put(uid)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, unit): unit for unit in units}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as exc:  # noqa: BLE001
                yield futures[future], exc


# ---- the batch ----------------------------------------------------------------------------------------
def grade_class(
    submissions: Path,
    *,
    tests: Path = GRADING_TESTS,
    jobs: int = 2,
    limits: Limits | None = None,
    only: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
    scheduler: str | None = None,
    cache: Path | None = None,
    bar: bool = False,
    connect_timeout_s: float = 20,
) -> list[LabResult]:
    """Grade every student folder in ``submissions`` on every lab graded in ``tests``.

    With ``scheduler`` (a Dask scheduler's address) the units are graded on that cluster's workers, else here,
    ``jobs`` at a time. With ``cache`` (a folder), results already graded there for the same notebook bytes and
    the same grading are reused, and each new result is stored as soon as it arrives. ``bar``: a progress bar
    with the time left on stderr.
    """
    limits = limits or Limits()
    say = progress or (lambda line: None)
    with tempfile.TemporaryDirectory(prefix="course-grade-") as home_dir:
        labs = discover_labs(tests.resolve(), Path(home_dir), only)
    students = discover_students(submissions.resolve())
    results: list[LabResult] = []
    units: list[Unit] = []
    hashes: dict[str, str] = {}  # lab -> grading hash
    store = ResultCache(cache) if cache is not None else None
    for student in students:
        for lab in labs:
            unit = make_unit(student, lab)
            if isinstance(unit, LabResult):
                results.append(unit)
                continue
            if lab.notebook not in hashes:
                hashes[lab.notebook] = grading_hash(unit.grading, limits)
            cached = store.get(unit.notebook_hash, hashes[lab.notebook], student=unit.student) if store else None
            if cached is not None:
                if not cached.note.startswith("grading stopped"):
                    cached.note = unit.note
                cached.cached = True
                results.append(cached)
            else:
                units.append(unit)
    where = f"on the Dask cluster at {scheduler}" if scheduler else f"with {jobs} worker(s)"
    reused = sum(1 for r in results if r.cached)
    say(
        f"grading {len(students)} student(s) x {len(labs)} lab(s) {where}"
        + (f"; {reused} already graded in {cache}" if reused else "")
    )
    if scheduler:
        finished = grade_on_cluster(units, limits, scheduler, connect_timeout_s=connect_timeout_s)
    else:
        finished = _graded_here(units, limits, jobs)
    from tqdm.auto import tqdm

    with tqdm(
        total=len(units), desc="grading", unit="lab", file=sys.stderr, disable=not bar or not units, smoothing=0.1
    ) as meter:
        write = (lambda line: meter.write(line, file=sys.stderr)) if bar else say
        for done, (unit, outcome) in enumerate(finished, start=1):
            if isinstance(outcome, BaseException):
                result = _grader_error(unit, outcome)
            else:
                result = outcome
                if store is not None and result.cacheable:
                    store.put(unit.notebook_hash, hashes[unit.lab], result)
            results.append(result)
            meter.update(1)
            if progress is not None:
                write(
                    f"[{done}/{len(units)}] {result.student} {result.lab}: "
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
        failed = [t for t in r.tests if not t["passed"] and not t.get("manual")]
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
        written = [t for t in r.tests if t.get("manual")]
        if written:
            lines += ["", "Written answers, graded by hand:"]
            for t in written:
                criterion = t["test"].split("::", 2)[-1]
                if t["message"] in (manual.PENDING, "not submitted"):
                    lines.append(f"- {criterion} ({_fmt(t['max'])}): {t['message']}")
                else:
                    comment = " ".join(t["message"].split())
                    lines.append(
                        f"- {criterion}: {_fmt(t['points'])} / {_fmt(t['max'])}" + (f" ({comment})" if comment else "")
                    )
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
        path = folder / f"{_feedback_stems(by_student)[student]}.md"
        path.write_text(feedback_markdown(student, rows), encoding="utf-8")
        written.append(path)
    return written


def _feedback_stems(students: Iterable[str]) -> dict[str, str]:
    """A file stem per student, never shared.

    ``a b`` and ``a_b`` (or ``Ann`` and ``ann``, on a disk that ignores case) would both be ``a_b``: one keeps the
    plain stem (a name that needed no change first), the others get a hash of their folder name as well.
    """
    groups: dict[str, list[str]] = {}
    for student in sorted(set(students), key=lambda s: (_safe(s) != s, s)):
        groups.setdefault(_safe(student).lower(), []).append(student)
    stems = {}
    for group in groups.values():
        stems[group[0]] = _safe(group[0])
        for student in group[1:]:
            stems[student] = f"{_safe(student)}-{hashlib.sha256(student.encode()).hexdigest()[:8]}"
    return stems


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
    """The command line: 0 when the class was graded, 2 when the command was wrong (one line on stderr)."""
    try:
        return _main(argv)
    except SystemExit as exc:
        if isinstance(exc.code, str):  # a wrong folder or lab name (discover_*): the command was wrong
            print(exc.code, file=sys.stderr)
            return 2
        raise


def _main(argv: Iterable[str] | None = None) -> int:
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
        help="memory one student kernel may write to (RLIMIT_DATA; its address space is capped at 4 times "
        "that), e.g. 3G or 1500M (default: %(default)s)",
    )
    parser.add_argument(
        "--cpu-time", type=float, default=1800, help="CPU seconds one student kernel may use (default: %(default)s)"
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDR",
        help="grade on a Dask distributed cluster: the scheduler's address, e.g. tcp://10.0.0.5:8786 "
        "(default: on this machine, --jobs at a time)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="folder of results already graded, reused when the notebook and the grading are unchanged "
        "(default: .grading-cache/ next to the CSV)",
    )
    parser.add_argument(
        "--scheduler-timeout",
        type=float,
        default=20,
        help="seconds to wait for the Dask scheduler to answer (default: %(default)s)",
    )
    parser.add_argument("--no-cache", action="store_true", help="grade everything again and keep no results")
    parser.add_argument(
        "--merge",
        type=Path,
        default=None,
        metavar="MANUAL_CSV",
        help="add the marks of written answers graded by hand (the manual.csv this command writes, filled in)",
    )
    parser.add_argument(
        "--solutions",
        type=Path,
        default=SOLUTIONS,
        help="reference notebooks holding the written answers' rubrics (default: solutions/)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or lines")
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
    # Written answers graded by hand: their rubrics, and the instructor's marks checked before any grading, so
    # that a bad manual.csv stops the run with nothing written.
    try:
        items = manual.answers(args.solutions, only)
        marks = None
        if args.merge:
            students = [p.name for p in discover_students(args.submissions.resolve())]
            marks = manual.read_marks(args.merge, students, items)
    except (manual.ManualMarksError, manual.RubricError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.scheduler:
        try:  # a wrong address fails at once, before any work
            workers = check_scheduler(args.scheduler, connect_timeout_s=args.scheduler_timeout)
        except SchedulerUnreachable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if workers == 0:
            print(
                f"warning: the scheduler at {args.scheduler} has no workers yet; grading starts when one joins "
                f"(dask worker {args.scheduler} --nthreads 1)",
                file=sys.stderr,
            )
    cache = None if args.no_cache else (args.cache or args.out.resolve().parent / ".grading-cache")
    try:
        results = grade_class(
            args.submissions,
            tests=args.tests.resolve(),
            jobs=args.jobs,
            limits=limits,
            only=only,
            progress=progress,
            scheduler=args.scheduler,
            cache=cache,
            bar=not args.quiet,
            connect_timeout_s=args.scheduler_timeout,
        )
    except SchedulerUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    graded_labs = {r.lab for r in results}
    items = [i for i in items if i.lab in graded_labs]
    ignored: list[manual.Mark] = []
    pending = manual.apply(results, items, marks, ignored)
    if ignored:
        who = sorted({f"{m.student} {m.lab}" for m in ignored})
        print(
            f"warning: {len(ignored)} mark(s) in {args.merge} are for labs not handed in or not graded "
            f"({', '.join(who[:5])}{', ...' if len(who) > 5 else ''}); they were not added",
            file=sys.stderr,
        )
    write_csv(results, args.out, args.format)
    feedback = args.feedback or args.out.resolve().parent / "feedback"
    write_feedback(results, feedback)
    students = sorted({r.student for r in results})
    said = []
    if items:
        said.append(write_manual_sheet(args.submissions.resolve(), students, items, args.out.resolve().parent))
        if pending:
            said.append(f"{pending} written-answer mark(s) pending")
    if not args.quiet:
        print(
            f"graded {len(students)} student(s) in {time.monotonic() - started:.1f} s; "
            f"gradebook {args.out}, feedback in {feedback}/" + "".join(f"; {line}" for line in said),
            file=sys.stderr,
        )
    return 0


def write_manual_sheet(submissions: Path, students: list[str], items: list[manual.Answer], folder: Path) -> str:
    """``manual.csv`` for the instructor to fill (never over an existing one) and the students' written answers
    to read (``manual-answers/LAB-ANSWER.md``); returns what it did, in a few words."""
    answers = folder / "manual-answers"
    answers.mkdir(parents=True, exist_ok=True)
    for item in items:
        lines = [f"# {item.lab}: written answer {item.answer} ({_fmt(item.points)} points)", "", "Rubric:"]
        lines += [f"- ({_fmt(c.points)}) {c.text}" for c in item.rubric]
        for student in students:
            path = find_notebook(submissions / student, item.lab)
            data = read_submission(path)[0] if path is not None else None
            lines += ["", f"## {student}", "", manual.student_answer(data, item).strip() or "(empty)"]
        (answers / f"{_safe(item.lab)}-{_safe(item.answer)}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sheet = folder / "manual.csv"
    if sheet.exists():
        return f"{sheet} kept as it is (answers to read in {answers}/)"
    sheet.write_text(manual.template(students, items), encoding="utf-8")
    return f"fill {sheet} (answers in {answers}/), then run again with --merge {sheet}"


if __name__ == "__main__":
    sys.exit(main())
