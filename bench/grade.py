"""How long grading takes: against the notebooks' own time, and on 1, 2 and 4 Dask workers.

Reference solutions as the submissions, every kernel sandboxed when bubblewrap is there (as instructors grade):
  1. execute   each lab's notebook once with plain nbclient (a fresh kernel each, in a row)
  2. grade     one submission with course.grade, one lab at a time: ratio to 1 (goal <= 1.25), and where the
               rest goes (pytest process, kernel start, the graded checks)
  3. cluster   a class of N students on a Dask LocalCluster of 1, 2 and 4 workers (one thread each, no cache):
               wall time, speed-up against 1 worker, efficiency against the cores there are (goal >= 0.8), and
               the per-unit scheduling overhead: workers x wall - the units' own grading time, per unit, as a
               share of a unit's time (goal <= 2 %)

    .venv/bin/python bench/grade.py --class 20 [--labs 00_welcome] [--workers 1,2,4] [--sandbox off]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
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


def _class(root: Path, size: int, names: list[str]) -> Path:
    for i in range(size):
        folder = root / f"student{i:02d}"
        folder.mkdir(parents=True)
        for name in names:
            shutil.copy(SOLUTIONS / f"{name}.ipynb", folder)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--class", dest="size", type=int, default=20, help="students in the class (default: 20)")
    parser.add_argument("--labs", default="00_welcome", help="comma-separated labs (default: 00_welcome)")
    parser.add_argument("--workers", default="1,2,4", help="Dask worker counts to compare (default: 1,2,4)")
    parser.add_argument(
        "--sandbox", choices=("auto", "off"), default="auto", help="off: kernels not sandboxed, to see its cost"
    )
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]

    from distributed import LocalCluster

    sandbox = resolve(args.sandbox)
    limits = grade.Limits(sandbox=sandbox)
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        home = Path(tmp)
        os.environ.setdefault("IPYTHONDIR", str(home / "ipython"))
        os.environ.setdefault("MPLBACKEND", "Agg")
        labs = grade.discover_labs(GRADING_TESTS, home, args.labs.split(","))
        names = [lab.notebook for lab in labs]
        cores = os.cpu_count() or 1
        print(
            f"labs: {', '.join(names)}  class of {args.size}  sandbox: {'bubblewrap' if sandbox else 'off'}  "
            f"cores: {cores}  load: {os.getloadavg()[0]:.1f}"
        )

        per_lab = {
            name: execute(str(SOLUTIONS / f"{name}.ipynb"))
            for name in progress.bar(names, total=len(names), desc="one notebook per lab")
        }
        exec_one = sum(per_lab.values())
        one = _class(home / "one", 1, names)
        started = time.perf_counter()
        graded_one = grade.grade_class(one, tests=GRADING_TESTS, jobs=1, only=names, limits=limits)
        grade_one = time.perf_counter() - started
        notebook = sum(r.notebook.get("seconds", 0.0) for r in graded_one)
        checks = sum(t["seconds"] for r in graded_one for t in r.tests)
        unit_s = sum(r.seconds for r in graded_one)
        print("\nexecute one notebook (nbclient, s): " + "  ".join(f"{n} {t:.1f}" for n, t in per_lab.items()))
        print(
            f"grade one submission, serially: {grade_one:.1f} s against {exec_one:.1f} s to execute: "
            f"{grade_one / exec_one:.2f}x (goal <= 1.25x)"
        )
        print(
            f"  inside the units: notebook {notebook:.1f} s, graded checks {checks:.1f} s, "
            f"pytest process and kernel start/stop {unit_s - notebook - checks:.1f} s; "
            f"finding the labs (pytest --collect-only) and the rest {grade_one - unit_s:.1f} s"
        )

        started = time.perf_counter()
        grade.discover_labs(GRADING_TESTS, home, names)
        discover_s = time.perf_counter() - started  # paid once per run, before any unit is sent
        submissions = _class(home / "class", args.size, names)
        units = args.size * len(names)
        rows = []
        for count in workers:
            with LocalCluster(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
                started = time.perf_counter()
                results = grade.grade_class(
                    submissions,
                    tests=GRADING_TESTS,
                    only=names,
                    limits=limits,
                    scheduler=cluster.scheduler_address,
                )
                wall = time.perf_counter() - started
            own = sum(r.seconds for r in results)
            full = all(r.score == r.max_score for r in results)
            rows.append((count, wall, own, full))

    base = rows[0][1] * rows[0][0]
    print(f"\nclass of {args.size} x {len(names)} lab(s) = {units} units on a Dask LocalCluster (1 thread per worker)")
    print(
        f"{'workers':>8}{'wall s':>9}{'speed-up':>10}{'efficiency':>12}{'overhead/unit s':>17}{'% of unit':>11}  all 100 %"
    )
    for count, wall, own, full in rows:
        speedup = base / wall
        # Efficiency against what the machine can give: past its cores, more workers only share them.
        efficiency = speedup / min(count, cores)
        overhead = (count * (wall - discover_s) - own) / units
        print(
            f"{count:>8}{wall:9.1f}{speedup:10.2f}{efficiency:12.2f}{overhead:17.2f}"
            f"{100 * overhead / (own / units):10.1f}%  {full}"
        )
    print(
        f"overhead/unit: workers x (wall - {discover_s:.1f} s finding the labs) minus the units' own grading time, "
        "per unit (includes connecting, sending, gathering and workers idle at the end)"
    )
    return 0


if __name__ == "__main__":
    progress.show_bars()  # training, rounds and sweeps show a bar in a terminal
    sys.exit(main())
