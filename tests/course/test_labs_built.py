"""The repository's own labs: built from the solutions, and no notebook in git carries outputs."""

from __future__ import annotations

import subprocess
import sys

import nbformat

from course import LABS, ROOT, SOLUTIONS, build


def test_labs_are_up_to_date_with_solutions():
    # Runs the real command line, exactly as CI and a lab author do.
    done = subprocess.run(
        [sys.executable, "-m", "course.build", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"labs/ is stale; run `python -m course.build`:\n{done.stderr}"


def _repository_notebooks() -> list:
    try:  # every notebook git knows of, wherever it is
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.ipynb"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
        return sorted(ROOT / name for name in listed if (ROOT / name).exists())
    except (OSError, subprocess.SubprocessError):  # an exported tree without git
        return sorted(SOLUTIONS.glob("*.ipynb")) + sorted(LABS.glob("*.ipynb"))


def test_no_notebook_in_the_repository_carries_outputs():
    for path in _repository_notebooks():
        nb = nbformat.read(path, as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, (
                    f"{path.relative_to(ROOT)} cell {index} has saved outputs; "
                    "run `python -m course.build --strip-solutions`"
                )


def test_every_lab_has_its_student_parts_blanked():
    for path in sorted(LABS.glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        assert build.BEGIN not in text and build.END not in text, f"{path.name} still holds a solution region"
