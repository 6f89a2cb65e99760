"""Build the student labs from the reference solutions.

``solutions/NN_slug.ipynb`` is the only notebook anyone edits. Inside a code cell the student's part sits
between two marker lines::

    def phase_sequence():
        ### BEGIN SOLUTION
        return ["red", "red_amber", "green", "amber"]
        ### END SOLUTION

and the build writes ``labs/NN_slug.ipynb`` where that region reads::

    def phase_sequence():
        # YOUR CODE HERE
        raise NotImplementedError()

(in a Markdown cell the region becomes ``YOUR ANSWER HERE``). Outputs, execution counts and volatile
metadata are dropped and the JSON is written with sorted keys, so the same solution always gives the same
bytes and ``--check`` can tell a stale or hand-edited lab from a fresh one.

Every cell also gets nbgrader's cell metadata (schema 3), so nbgrader and its formgrader accept the course:
a code cell with a solution region is a solution cell, a Markdown answer is a manually graded answer (its
points from the rubric under ``**Graded by hand (N points):**``, :mod:`course.grading.manual`; 0 without one),
every other cell is locked, and a last locked grade cell, ``course-graded-tests``, carries the points of the
lab's tests in ``tests/grading/`` (which stay outside the notebook). ``--nbgrader DIR`` writes an nbgrader
course folder (``DIR/source/NN_slug/NN_slug.ipynb``: the solutions with the same metadata) for
``nbgrader generate_assignment``.

    python -m course.build                   # refresh labs/
    python -m course.build --check           # exit 1 and list what is stale
    python -m course.build --strip-solutions # also drop outputs saved in solutions/
    python -m course.build --nbgrader course # an nbgrader course folder from solutions/
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from course import GRADING_TESTS, LABS, SOLUTIONS
from course.grading.manual import RubricError, parse_rubric

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = "YOUR ANSWER HERE"

#: Which notebooks are labs: two digits, an optional letter (a lab split in two: 06b), an underscore, a slug.
LAB_NAME = re.compile(r"^\d\d[a-z]?_[A-Za-z0-9_-]+\.ipynb$")

# Metadata that changes with every run or every editor and means nothing to a student.
_VOLATILE_CELL_METADATA = {
    "execution",
    "ExecuteTime",
    "collapsed",
    "scrolled",
    "jupyter",
    "trusted",
    "vscode",
    "pycharm",
    "papermill",
}
_KEPT_NOTEBOOK_METADATA = {"kernelspec", "language_info", "title", "authors"}
# Every lab names the project's kernel (`make lab` installs it), so a shared JupyterHub cannot run a lab in
# another environment; graders and tests choose their kernel explicitly.
KERNELSPEC = {"display_name": "Python 3 (Edge Python)", "language": "python", "name": "edge-python"}


class MarkerError(ValueError):
    """A solution cell whose ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers do not pair up."""


#: nbgrader's cell metadata schema version written into every cell.
NBGRADER_SCHEMA = 3
#: The id (and nbgrader grade_id) of the last cell of a lab, which holds the points of its grading tests.
GRADED_TESTS_ID = "course-graded-tests"
_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def graded_points(tests: Path = GRADING_TESTS) -> dict[str, float]:
    """Lab -> points its grading file awards, read from the files' source (no pytest run).

    A test is worth its ``@pytest.mark.points(n)`` (1 without), times the number of cases of a literal
    ``@pytest.mark.parametrize``. ``tests/course/test_build.py`` checks this against pytest's own collection.
    """
    found: dict[str, float] = {}
    for path in sorted(tests.glob("test_*.py")) if tests.exists() else []:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        lab = path.stem.removeprefix("test_")
        total = 0.0
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
                for call in ast.walk(node.value):
                    if isinstance(call, ast.Call) and _mark_name(call.func) == "notebook" and call.args:
                        lab = ast.literal_eval(call.args[0])
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                worth, cases = 1.0, 1
                for decorator in node.decorator_list:
                    if not isinstance(decorator, ast.Call):
                        continue
                    if _mark_name(decorator.func) == "points" and decorator.args:
                        worth = float(ast.literal_eval(decorator.args[0]))
                    elif _mark_name(decorator.func) == "parametrize" and len(decorator.args) >= 2:
                        cases *= len(ast.literal_eval(decorator.args[1]))
                total += worth * cases
        found[lab] = found.get(lab, 0.0) + total
    return found


def _mark_name(func: ast.expr) -> str:
    # pytest.mark.points -> "points"
    return func.attr if isinstance(func, ast.Attribute) else ""


def _grade_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


def _nbgrader(cell: NotebookNode, **flags) -> None:
    meta = {"schema_version": NBGRADER_SCHEMA, "grade": False, "solution": False, "locked": False}
    meta.update(flags)
    cell.metadata["nbgrader"] = meta


def _fmt_points(points: float) -> str:
    return f"{points:g} point{'s' if points != 1 else ''}"


def add_nbgrader_metadata(
    nb: NotebookNode, *, name: str, points: float | None, source: bool = False, lab: str = "lab"
) -> None:
    """Mark every cell as nbgrader would expect it (see the module's docstring), in place.

    ``points``: the lab's graded tests (None: no grading file, no grade cell). ``source``: nbgrader's source
    version, whose grade cell holds a hidden test that fails, so nbgrader's own autograder can never award
    the points that only ``course.grade`` can.
    """
    for index, cell in enumerate(nb.cells):
        if cell.get("id") == GRADED_TESTS_ID:
            continue
        marked = has_solution(cell.source)
        if "nbgrader" in cell.metadata and not marked:
            continue  # a built lab built again: its stubbed cells keep what the solution gave them
        gid = _grade_id(cell.id)
        if cell.cell_type == "markdown" and marked:
            rubric = parse_rubric(cell.source, where=f"{name}, cell {index}")
            _nbgrader(cell, grade=True, solution=True, grade_id=gid, points=sum(c.points for c in rubric))
        elif cell.cell_type == "code" and marked:
            _nbgrader(cell, solution=True, grade_id=gid)
        else:
            _nbgrader(cell, locked=True, grade_id=gid)
    if points is None:
        return
    nb.cells = [c for c in nb.cells if c.get("id") != GRADED_TESTS_ID]
    text = (
        f"# Graded after you hand it in, by the course's tests (not in this notebook): {_fmt_points(points)}.\n"
        "# They call your functions on inputs of their own; the self-checks above are your guide."
    )
    if source:
        text += (
            f"\n{_HIDDEN[0]}\nraise NotImplementedError('graded by python -m course.grade "
            f"(tests/grading/test_{lab}.py); import its --format nbgrader gradebook')\n{_HIDDEN[1]}"
        )
    cell = nbformat.v4.new_code_cell(text)
    cell.id = GRADED_TESTS_ID
    _nbgrader(cell, grade=True, locked=True, grade_id=GRADED_TESTS_ID, points=points)
    nb.cells.append(cell)


def strip_solution(source: str, *, where: str = "cell", markdown: bool = False) -> str:
    """Replace every marked solution region of one cell's source with the student stub.

    The stub takes the indentation of the ``### BEGIN SOLUTION`` line. Raises :class:`MarkerError`
    (naming ``where`` and the line) when a region is not closed, closed twice or nested.

    >>> print(strip_solution("def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION\\n"))
    def f():
        # YOUR CODE HERE
        raise NotImplementedError()
    <BLANKLINE>
    """
    out: list[str] = []
    begin_line = 0
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        text = line.strip()
        if text.startswith(BEGIN):
            if begin_line:
                raise MarkerError(
                    f"{where}, line {number}: {BEGIN!r} inside the region opened on line {begin_line}; "
                    f"close the first region with {END!r} before opening another"
                )
            begin_line = number
            indent = line[: len(line) - len(line.lstrip())]
            stub = (MARKDOWN_STUB,) if markdown else CODE_STUB
            out.extend(f"{indent}{stub_line}\n" for stub_line in stub)
        elif text.startswith(END):
            if not begin_line:
                raise MarkerError(
                    f"{where}, line {number}: {END!r} without a {BEGIN!r} before it; "
                    f"add the opening marker or delete this line"
                )
            begin_line = 0
        elif not begin_line:
            out.append(line)
    if begin_line:
        raise MarkerError(f"{where}, line {begin_line}: {BEGIN!r} is never closed; add {END!r} after the solution")
    result = "".join(out)
    # A region that ran to the end of the cell leaves the stub's own newline dangling.
    if result.endswith("\n") and not source.endswith("\n"):
        result = result[:-1]
    return result


def has_solution(source: str) -> bool:
    """True when the cell source holds at least one ``### BEGIN SOLUTION`` marker line."""
    return any(line.strip().startswith(BEGIN) for line in source.splitlines())


def clean_notebook(nb: NotebookNode, *, name: str = "notebook") -> NotebookNode:
    """A copy of ``nb`` without outputs, execution counts or volatile metadata, cell ids filled in."""
    nb = copy.deepcopy(nb)
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 5))
    metadata = {k: v for k, v in nb.metadata.items() if k in _KEPT_NOTEBOOK_METADATA}
    metadata["kernelspec"] = dict(KERNELSPEC)
    language = dict(metadata.get("language_info") or {"name": "python"})
    language.pop("version", None)  # the Python version of whoever ran it last
    metadata["language_info"] = language
    nb.metadata = nbformat.from_dict(metadata)
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        cell.metadata = nbformat.from_dict(
            {k: v for k, v in cell.get("metadata", {}).items() if k not in _VOLATILE_CELL_METADATA}
        )
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if "attachments" in cell and not cell.attachments:
            del cell["attachments"]
        cell_id = cell.get("id")
        if not cell_id or cell_id in seen:
            digest = hashlib.sha1(f"{name}:{index}:{cell.cell_type}".encode()).hexdigest()[:8]
            cell_id = f"cell-{index}-{digest}"
        cell.id = cell_id
        seen.add(cell_id)
    return nb


def build_notebook(solution: NotebookNode, *, name: str = "notebook", points: float | None = None) -> NotebookNode:
    """The student lab for one solution notebook: regions stubbed, outputs and volatile metadata gone,
    nbgrader's metadata on every cell (with ``points`` for the lab's grading tests, when it has any)."""
    lab = clean_notebook(solution, name=name)
    add_nbgrader_metadata(lab, name=name, points=points, lab=Path(name).stem)
    for index, cell in enumerate(lab.cells):
        if cell.cell_type in ("code", "markdown"):
            cell.source = strip_solution(
                cell.source, where=f"{name}, cell {index}", markdown=cell.cell_type == "markdown"
            )
    return lab


def dumps(nb: NotebookNode) -> str:
    """The notebook as text: sorted keys, one-space indent (Jupyter's own layout), trailing newline."""
    return nbformat.writes(nb, version=4) + "\n"


def solution_notebooks(solutions: Path) -> list[Path]:
    """The lab solutions in ``solutions``, in course order."""
    return sorted(p for p in solutions.glob("*.ipynb") if LAB_NAME.match(p.name))


def planned_labs(solutions: Path = SOLUTIONS, tests: Path = GRADING_TESTS) -> dict[str, str]:
    """Lab file name -> the exact text the build writes for it."""
    plan: dict[str, str] = {}
    points = graded_points(tests)
    for path in solution_notebooks(solutions):
        nb = nbformat.read(path, as_version=4)
        plan[path.name] = dumps(build_notebook(nb, name=f"{solutions.name}/{path.name}", points=points.get(path.stem)))
    return plan


def nbgrader_course(target: Path, solutions: Path = SOLUTIONS, tests: Path = GRADING_TESTS) -> list[Path]:
    """An nbgrader course folder: ``target/source/NN_slug/NN_slug.ipynb`` for every lab, the solutions with
    nbgrader's metadata (``nbgrader generate_assignment NN_slug`` run in ``target`` makes the student version)."""
    points = graded_points(tests)
    written = []
    for path in solution_notebooks(solutions):
        nb = clean_notebook(nbformat.read(path, as_version=4), name=f"{solutions.name}/{path.name}")
        add_nbgrader_metadata(nb, name=path.name, points=points.get(path.stem), source=True, lab=path.stem)
        out = target / "source" / path.stem / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(dumps(nb), encoding="utf-8")
        written.append(out)
    return written


def _has_outputs(nb: NotebookNode) -> bool:
    return any(cell.get("outputs") or cell.get("execution_count") for cell in nb.cells if cell.cell_type == "code")


def problems(solutions: Path = SOLUTIONS, labs: Path = LABS) -> list[str]:
    """Everything ``--check`` complains about, one line each; empty when labs/ is up to date."""
    found: list[str] = []
    plan = planned_labs(solutions)
    for name, text in plan.items():
        target = labs / name
        if not target.exists():
            found.append(f"{labs.name}/{name}: missing (built from {solutions.name}/{name})")
        elif target.read_text(encoding="utf-8") != text:
            found.append(f"{labs.name}/{name}: stale or edited by hand (differs from {solutions.name}/{name})")
    for path in sorted(labs.glob("*.ipynb")) if labs.exists() else []:
        if LAB_NAME.match(path.name) and path.name not in plan:
            found.append(f"{labs.name}/{path.name}: no {solutions.name}/{path.name} to build it from")
    for path in solution_notebooks(solutions):
        if _has_outputs(nbformat.read(path, as_version=4)):
            found.append(f"{solutions.name}/{path.name}: carries outputs (run with --strip-solutions)")
    return found


def build(solutions: Path = SOLUTIONS, labs: Path = LABS, *, strip_solutions: bool = False, log=print) -> list[Path]:
    """Write every lab that changed, remove labs whose solution is gone; return the files written."""
    written: list[Path] = []
    if strip_solutions:
        for path in solution_notebooks(solutions):
            text = dumps(clean_notebook(nbformat.read(path, as_version=4), name=f"{solutions.name}/{path.name}"))
            if path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                log(f"cleaned {solutions.name}/{path.name}")
                written.append(path)
    plan = planned_labs(solutions)  # every notebook parses before anything is written
    labs.mkdir(parents=True, exist_ok=True)
    for name, text in plan.items():
        target = labs / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            log(f"built {labs.name}/{name}")
            written.append(target)
    for path in sorted(labs.glob("*.ipynb")):
        if LAB_NAME.match(path.name) and path.name not in plan:
            path.unlink()
            log(f"removed {labs.name}/{path.name} (its solution is gone)")
    return written


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS, help="reference notebooks (default: solutions/)")
    parser.add_argument("--labs", type=Path, default=LABS, help="where the student labs go (default: labs/)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 listing stale labs")
    parser.add_argument(
        "--strip-solutions",
        action="store_true",
        help="also remove outputs and volatile metadata from the solution notebooks",
    )
    parser.add_argument(
        "--nbgrader",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write an nbgrader course folder (DIR/source/NN_slug/NN_slug.ipynb) from the solutions",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        if args.nbgrader:
            for path in nbgrader_course(args.nbgrader, args.solutions):
                print(f"wrote {path}")
        if args.check:
            found = problems(args.solutions, args.labs)
            for line in found:
                print(line, file=sys.stderr)
            if found:
                print(f"{len(found)} problem(s); run `python -m course.build` and commit labs/", file=sys.stderr)
                return 1
            print(f"{len(solution_notebooks(args.solutions))} lab(s) up to date")
            return 0
        written = build(args.solutions, args.labs, strip_solutions=args.strip_solutions)
        if not written:
            print(f"{len(solution_notebooks(args.solutions))} lab(s) already up to date")
        return 0
    except (MarkerError, RubricError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except nbformat.reader.NotJSONError as err:
        print(f"error: a notebook is not valid JSON: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
