"""How long grading takes, next to how long the notebooks take just to execute.

Every lab that has a grading file, reference solutions as the submissions:
  1. execute   each notebook once with plain nbclient (fresh kernel each, one process, in a row)
  2. grade     one full submission with course.grade, one lab at a time (--jobs 1): same work, serial
  3. execute   a class of N copies with 2 notebooks at a time (2 processes)
  4. grade     the class of N with course.grade --jobs 2, kernels not sandboxed (--sandbox off)
  5. grade     the same class with every kernel in its bubblewrap sandbox (--sandbox required)
Ratios against executing the same notebooks: 2/1, 4/3 and 5/3 (goal for 5/3: <= 1.25).

    .venv/bin/python bench/grade.py [--class-size 10] [--labs 01_gpio_outputs,03_storage]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from course import GRADING_TESTS, SOLUTIONS, grade
from course.grading.plugin import DEFAULT_LIMITS
from course.grading.sandbox import resolve
from kit import progress


def execute(path: str) -> float:
    """Seconds to run one notebook top to bottom in a fresh kernel, as Jupyter's own tools do."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cwd:
        NotebookClient(
            nb,
            timeout=int(DEFAULT_LIMITS["cell_timeout"]),
            kernel_name="python3",
            allow_errors=True,
            interrupt_on_timeout=True,
            resources={"metadata": {"path": cwd}},
        ).execute()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--class-size", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--labs", default=None, help="comma-separated subset of labs (default: every graded lab)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        home = Path(tmp)
        os.environ.setdefault("IPYTHONDIR", str(home / "ipython"))
        os.environ.setdefault("MPLBACKEND", "Agg")
        only = args.labs.split(",") if args.labs else None
        labs = [
            lab
            for lab in grade.discover_labs(GRADING_TESTS, home, only)
            if (SOLUTIONS / f"{lab.notebook}.ipynb").exists()
        ]
        if not labs:
            print("no graded lab with a solution yet: nothing to measure")
            return 0
        names = [lab.notebook for lab in labs]
        notebooks = [str(SOLUTIONS / f"{name}.ipynb") for name in names]
        print(f"labs: {', '.join(names)}  (cpu: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f})")

        submissions = home / "class"
        for i in range(args.class_size):
            (submissions / f"student{i:02d}").mkdir(parents=True)
            for path in notebooks:
                shutil.copy(path, submissions / f"student{i:02d}")
        one = home / "one"
        shutil.copytree(submissions / "student00", one / "student00")

        per_lab = {
            name: execute(path)
            for name, path in progress.bar(zip(names, notebooks), total=len(names), desc="one notebook per lab")
        }
        exec_one = sum(per_lab.values())

        started = time.perf_counter()
        graded_one = grade.grade_class(one, tests=GRADING_TESTS, jobs=1, only=names)
        grade_one = time.perf_counter() - started

        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            runs = pool.map(execute, notebooks * args.class_size)
            list(progress.bar(runs, total=len(notebooks) * args.class_size, desc="the class's notebooks"))
        exec_class = time.perf_counter() - started

        started = time.perf_counter()
        graded_class = grade.grade_class(submissions, tests=GRADING_TESTS, jobs=args.jobs, only=names)
        grade_class = time.perf_counter() - started

        sandbox = resolve("auto")
        sandboxed, graded_boxed = None, []
        if sandbox is not None:
            started = time.perf_counter()
            graded_boxed = grade.grade_class(
                submissions, tests=GRADING_TESTS, jobs=args.jobs, only=names, limits=grade.Limits(sandbox=sandbox)
            )
            sandboxed = time.perf_counter() - started

    full = all(r.score == r.max_score for r in graded_one + graded_class + graded_boxed)
    # Where a student-lab's grading time goes: the notebook itself, the graded checks, and the rest
    # (pytest process, kernel start and shutdown, collecting the grading file).
    notebook = sum(r.notebook.get("seconds", 0.0) for r in graded_one)
    checks = sum(t["seconds"] for r in graded_one for t in r.tests)
    print("\nexecute one notebook (nbclient, s):  " + "  ".join(f"{n} {t:.1f}" for n, t in per_lab.items()))
    print(f"{'':34}{'execute (s)':>12}{'grade (s)':>12}{'ratio':>8}")
    print(f"{'one submission, serial':34}{exec_one:12.1f}{grade_one:12.1f}{grade_one / exec_one:8.2f}")
    print(
        f"{f'class of {args.class_size}, {args.jobs} at a time':34}{exec_class:12.1f}{grade_class:12.1f}"
        f"{grade_class / exec_class:8.2f}"
    )
    if sandboxed is not None:
        print(
            f"{f'class of {args.class_size}, sandboxed':34}{exec_class:12.1f}{sandboxed:12.1f}"
            f"{sandboxed / exec_class:8.2f}"
        )
        print(f"sandbox cost over unsandboxed grading: {sandboxed / grade_class:.2f}x")
    print(
        f"one submission graded: notebooks {notebook:.1f} s, graded checks {checks:.1f} s, "
        f"rest {grade_one - notebook - checks:.1f} s over {len(names)} labs"
    )
    for r in graded_one + graded_class + graded_boxed:
        if r.score != r.max_score:
            failed = next(t for t in r.tests if not t["passed"])
            cells = "; ".join(c["text"] for c in r.notebook.get("cells", []))[:300]
            print(
                f"  not full marks: {r.student} {r.lab} {r.score:g}/{r.max_score:g}: {failed['message'][:200]}"
                + (f" | notebook: {cells}" if cells else "")
            )
    print(
        f"per student-lab overhead: {(grade_class - exec_class) / (args.class_size * len(names)) * args.jobs:.2f} s"
        f" of worker time; every reference graded 100 %: {full}"
    )
    return 0


if __name__ == "__main__":
    progress.show_bars()  # training, rounds and sweeps show a bar in a terminal
    sys.exit(main())
