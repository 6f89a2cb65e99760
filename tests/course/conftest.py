"""A tiny synthetic course (one lab, three exercises, its grading file) for testing the machinery itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

# Three independent exercises, so that breaking one cell should cost exactly that exercise's points.
CELLS = {
    "intro": "# Demo lab\nThree small exercises.",
    "imports": "import math",
    "double": "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
    "limit": "### BEGIN SOLUTION\nLIMIT = 3\n### END SOLUTION",
    "greet": "def greet(name):\n    ### BEGIN SOLUTION\n    return f'hello {name}'\n    ### END SOLUTION",
    "self_check": "assert double(3) == 6, 'double(3) should be 6'",
}

GRADING_FILE = """\
import pytest

pytestmark = pytest.mark.notebook("01_demo")


def _observe_double(xs):
    return [double(x) for x in xs]


@pytest.mark.points(2)
def test_double(lab, grading_rng):
    xs = [grading_rng.randint(-1000, 1000) for _ in range(5)]
    got = lab.observe(_observe_double, xs)
    assert got == [2 * x for x in xs], f"double({xs[0]}) should be {2 * xs[0]}, got {got[0]!r}"


@pytest.mark.points(1)
def test_limit(lab):
    assert lab.eval("LIMIT") == 3


def _observe_greet(name):
    return greet(name)


@pytest.mark.points(1)
def test_greet(lab, grading_rng):
    name = "".join(grading_rng.choices("abcdefghij", k=6))
    assert lab.observe(_observe_greet, name) == f"hello {name}"
"""

MAX_SCORE = 4


def demo_notebook(**replace: str) -> nbformat.NotebookNode:
    """The solution notebook, with some cells' sources replaced (``replace[cell_name] = source``)."""
    cells = []
    for name, source in CELLS.items():
        source = replace.get(name, source)
        cells.append(new_markdown_cell(source) if name == "intro" else new_code_cell(source))
    return new_notebook(cells=cells)


@dataclass
class DemoCourse:
    root: Path
    solutions: Path
    labs: Path
    tests: Path
    max_score = MAX_SCORE

    @staticmethod
    def notebook(**replace: str) -> nbformat.NotebookNode:
        return demo_notebook(**replace)

    def student(
        self, name: str, notebook: nbformat.NotebookNode | str | None, *, filename: str = "01_demo.ipynb"
    ) -> Path:
        """A student folder holding ``notebook`` (a notebook, raw file text, or nothing when None)."""
        folder = self.root / "submissions" / name
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(notebook, str):
            (folder / filename).write_text(notebook)
        elif notebook is not None:
            nbformat.write(notebook, folder / filename)
        return folder


def make_demo_course(root: Path) -> DemoCourse:
    """solutions/01_demo.ipynb, its built lab and grading/test_01_demo.py under ``root``."""
    from course import build

    course = DemoCourse(root, root / "solutions", root / "labs", root / "grading")
    course.solutions.mkdir()
    course.tests.mkdir()
    nbformat.write(demo_notebook(), course.solutions / "01_demo.ipynb")
    (course.tests / "test_01_demo.py").write_text(GRADING_FILE)
    build.build(course.solutions, course.labs, log=lambda *_: None)
    return course


@pytest.fixture
def demo_course(tmp_path: Path) -> DemoCourse:
    return make_demo_course(tmp_path)


@pytest.fixture(scope="session")
def make_course():
    """``make_course(root)``: the demo course under any folder (for module-scoped fixtures)."""
    return make_demo_course
