"""The Edge Python course: labs built from reference solutions, graded by tests kept outside the notebooks.

``python -m course.build`` writes ``labs/`` from ``solutions/``; ``python -m course.grade SUBMISSIONS/``
grades a class. See ``docs/instructors.md``.
"""

from __future__ import annotations

from pathlib import Path

#: The repository root (the folder holding ``solutions/``, ``labs/`` and ``tests/``).
ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
LABS = ROOT / "labs"
GRADING_TESTS = ROOT / "tests" / "grading"
