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

    python -m course.build                   # refresh labs/
    python -m course.build --check           # exit 1 and list what is stale
    python -m course.build --strip-solutions # also drop outputs saved in solutions/
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from course import LABS, SOLUTIONS

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


def build_notebook(solution: NotebookNode, *, name: str = "notebook") -> NotebookNode:
    """The student lab for one solution notebook: regions stubbed, outputs and volatile metadata gone."""
    lab = clean_notebook(solution, name=name)
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


def planned_labs(solutions: Path = SOLUTIONS) -> dict[str, str]:
    """Lab file name -> the exact text the build writes for it."""
    plan: dict[str, str] = {}
    for path in solution_notebooks(solutions):
        nb = nbformat.read(path, as_version=4)
        plan[path.name] = dumps(build_notebook(nb, name=f"{solutions.name}/{path.name}"))
    return plan


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
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
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
    except MarkerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except nbformat.reader.NotJSONError as err:
        print(f"error: a notebook is not valid JSON: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
