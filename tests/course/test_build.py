"""course.build: solution regions become stubs, labs are byte-stable, --check sees stale labs."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course import build

SOLVED = '''\
import math

def phase_sequence():
    """The car light's phases, in order."""
    ### BEGIN SOLUTION
    seq = ["red", "red_amber", "green", "amber"]
    return seq
    ### END SOLUTION

class Controller:
    def step(self, state):
        if state:
            ### BEGIN SOLUTION
            return "green"
            ### END SOLUTION
        return "red"
'''


def _solution(tmp_path, name="01_demo.ipynb", cells=None):
    solutions = tmp_path / "solutions"
    solutions.mkdir(exist_ok=True)
    nb = new_notebook(cells=cells or [new_markdown_cell("# Demo lab"), new_code_cell(SOLVED)])
    nbformat.write(nb, solutions / name)
    return solutions, tmp_path / "labs"


def test_region_becomes_stub_with_the_markers_indentation():
    out = build.strip_solution(SOLVED)
    assert "### BEGIN" not in out and "seq = " not in out and '"green"' not in out
    assert (
        '    """The car light\'s phases, in order."""\n    # YOUR CODE HERE\n    raise NotImplementedError()\n' in out
    )
    assert (
        '        if state:\n            # YOUR CODE HERE\n            raise NotImplementedError()\n        return "red"'
        in out
    )
    compile(out, "<lab>", "exec")  # the lab cell is still valid Python


def test_code_outside_regions_is_untouched_and_no_markers_means_no_change():
    source = "x = 1\nprint(x)"
    assert build.strip_solution(source) == source
    assert build.strip_solution(SOLVED).startswith("import math\n\ndef phase_sequence():\n")


def test_region_at_the_end_of_a_cell_without_trailing_newline():
    out = build.strip_solution("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")
    assert out == "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()"


def test_markdown_region_becomes_your_answer_here():
    out = build.strip_solution("Why?\n### BEGIN SOLUTION\nBecause leaves.\n### END SOLUTION\n", markdown=True)
    assert out == "Why?\nYOUR ANSWER HERE\n"


@pytest.mark.parametrize(
    "source, complaint",
    [
        ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
        ("x = 1\n### END SOLUTION\n", "without a"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside the region opened on line 1"),
    ],
)
def test_unbalanced_markers_fail_loudly_naming_the_place(source, complaint):
    with pytest.raises(build.MarkerError, match=complaint) as err:
        build.strip_solution(source, where="01_demo.ipynb, cell 3")
    assert "01_demo.ipynb, cell 3, line" in str(err.value)


def test_build_strips_outputs_counts_and_volatile_metadata(tmp_path):
    cell = new_code_cell(SOLVED, execution_count=7, outputs=[new_output("stream", name="stdout", text="hi\n")])
    cell.metadata["execution"] = {"iopub.status.busy": "2026-11-27T10:00:00"}
    cell.metadata["tags"] = ["exercise"]
    solutions, labs = _solution(tmp_path, cells=[cell])
    nb = nbformat.read(solutions / "01_demo.ipynb", as_version=4)
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.9"}
    nb.metadata["widgets"] = {"state": {}}
    nbformat.write(nb, solutions / "01_demo.ipynb")

    build.build(solutions, labs, log=lambda *_: None)
    lab = json.loads((labs / "01_demo.ipynb").read_text())
    code = lab["cells"][0]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert code["metadata"] == {
        "tags": ["exercise"],
        "nbgrader": {
            "schema_version": 3,
            "grade": False,
            "solution": True,
            "locked": False,
            "grade_id": code["id"],
        },
    }
    assert "widgets" not in lab["metadata"] and "version" not in lab["metadata"]["language_info"]
    assert "raise NotImplementedError()" in "".join(code["source"])
    nbformat.validate(nbformat.reads((labs / "01_demo.ipynb").read_text(), as_version=4))


def test_build_is_deterministic_and_idempotent(tmp_path):
    solutions, labs = _solution(tmp_path)
    assert build.build(solutions, labs, log=lambda *_: None) == [labs / "01_demo.ipynb"]
    first = (labs / "01_demo.ipynb").read_bytes()
    assert build.build(solutions, labs, log=lambda *_: None) == []  # nothing to rewrite
    (labs / "01_demo.ipynb").unlink()
    build.build(solutions, labs, log=lambda *_: None)
    assert (labs / "01_demo.ipynb").read_bytes() == first
    # building a built lab changes nothing more: stubs carry no markers
    again = build.dumps(build.build_notebook(nbformat.reads(first.decode(), as_version=4)))
    assert again.encode() == first


def test_check_reports_missing_stale_orphan_and_outputs(tmp_path):
    solutions, labs = _solution(tmp_path)
    assert build.problems(solutions, labs) == ["labs/01_demo.ipynb: missing (built from solutions/01_demo.ipynb)"]
    build.build(solutions, labs, log=lambda *_: None)
    assert build.problems(solutions, labs) == []

    (labs / "01_demo.ipynb").write_text((labs / "01_demo.ipynb").read_text().replace("Demo lab", "Edited"))
    (labs / "02_orphan.ipynb").write_text("{}")
    nb = nbformat.read(solutions / "01_demo.ipynb", as_version=4)
    nb.cells[1].outputs = [new_output("stream", name="stdout", text="saved output\n")]
    nbformat.write(nb, solutions / "01_demo.ipynb")
    found = build.problems(solutions, labs)
    assert any("01_demo.ipynb: stale" in line for line in found)
    assert any("02_orphan.ipynb: no solutions/02_orphan.ipynb" in line for line in found)
    assert any("solutions/01_demo.ipynb: carries outputs" in line for line in found)

    assert build.main(["--check", "--solutions", str(solutions), "--labs", str(labs)]) == 1
    assert build.main(["--strip-solutions", "--solutions", str(solutions), "--labs", str(labs)]) == 0
    assert build.problems(solutions, labs) == []
    assert not (labs / "02_orphan.ipynb").exists()


def test_unbalanced_marker_in_a_notebook_stops_the_build_before_writing(tmp_path, capsys):
    solutions, labs = _solution(tmp_path, name="01_ok.ipynb")
    _solution(tmp_path, name="02_bad.ipynb", cells=[new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n")])
    assert build.main(["--solutions", str(solutions), "--labs", str(labs)]) == 2
    assert "02_bad.ipynb, cell 0, line 2" in capsys.readouterr().err
    assert not labs.exists()


def test_only_numbered_notebooks_are_labs(tmp_path):
    solutions, labs = _solution(tmp_path)
    nbformat.write(new_notebook(), solutions / "scratch.ipynb")
    assert [p.name for p in build.solution_notebooks(solutions)] == ["01_demo.ipynb"]


# ---- nbgrader compatibility --------------------------------------------------------------------------
ANSWER = """Why did you choose it?

**Graded by hand (3 points):**
- (2) names the binding budget
- (1) says what it gave up

### BEGIN SOLUTION
Memory, and two points of accuracy.
### END SOLUTION
"""


def test_every_cell_carries_nbgrader_metadata_that_nbgrader_accepts(tmp_path):
    from nbgrader.nbgraderformat import MetadataValidator

    grading = tmp_path / "grading"
    grading.mkdir()
    (grading / "test_01_demo.py").write_text(
        "import pytest\n\n@pytest.mark.points(2)\ndef test_a(lab):\n    pass\n\n"
        "@pytest.mark.parametrize('x', [1, 2, 3])\ndef test_b(lab, x):\n    pass\n"
    )
    cells = [new_markdown_cell("# Demo lab"), new_code_cell(SOLVED), new_markdown_cell(ANSWER)]
    solutions, labs = _solution(tmp_path, cells=cells)
    nb = build.build_notebook(
        nbformat.read(solutions / "01_demo.ipynb", as_version=4),
        name="01_demo",
        points=build.graded_points(grading)["01_demo"],
    )
    meta = [c.metadata["nbgrader"] for c in nb.cells]
    assert [(m["grade"], m["solution"], m["locked"]) for m in meta] == [
        (False, False, True),  # prose: read-only
        (False, True, False),  # code with a solution region: the student's
        (True, True, False),  # written answer: graded by hand, points from its rubric
        (True, False, True),  # the lab's tests, outside the notebook: their points
    ]
    assert meta[2]["points"] == 3 and meta[3]["points"] == 2 + 3  # test_b counts once per case
    assert nb.cells[-1].id == meta[-1]["grade_id"] == build.GRADED_TESTS_ID
    assert len({m["grade_id"] for m in meta}) == len(meta)
    MetadataValidator().validate_nb(nb)  # nbgrader's own checks: schema, grade ids, points, cell types
    # a built lab built again is the same notebook (the stubbed cells keep their metadata)
    again = build.build_notebook(nbformat.reads(build.dumps(nb), as_version=4), name="01_demo", points=5.0)
    assert build.dumps(again) == build.dumps(nb)


def test_a_rubric_that_does_not_add_up_stops_the_build(tmp_path, capsys):
    bad = ANSWER.replace("(3 points)", "(4 points)")
    solutions, labs = _solution(tmp_path, cells=[new_markdown_cell(bad)])
    assert build.main(["--solutions", str(solutions), "--labs", str(labs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: solutions/01_demo.ipynb, cell 0: the rubric's criteria add up to 3 points, its heading says 4; "
        "make them agree"
    ]
    assert not labs.exists()


@pytest.mark.slow
def test_the_points_in_the_labs_are_the_points_pytest_collects(tmp_path):
    from course import GRADING_TESTS, grade

    collected = {lab.notebook: lab.max_score for lab in grade.discover_labs(GRADING_TESTS, tmp_path)}
    assert build.graded_points() == collected


@pytest.mark.slow
def test_nbgrader_generate_assignment_makes_our_lab_from_our_nbgrader_source(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from nbgrader.api import Gradebook
    from nbgrader.nbgraderformat import MetadataValidator

    from course import LABS

    for path in sorted(LABS.glob("*.ipynb")):  # every lab in the repository passes nbgrader's validator
        MetadataValidator().validate_nb(nbformat.read(path, as_version=4))
    lab = "06_compression"  # a lab with a written answer graded by hand
    build.nbgrader_course(tmp_path)
    bin_dir = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from PATH
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", lab, f"--CourseDirectory.root={tmp_path}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"]),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    release = nbformat.read(tmp_path / "release" / lab / f"{lab}.ipynb", as_version=4)
    ours = nbformat.read(LABS / f"{lab}.ipynb", as_version=4)
    assert [c.source for c in release.cells] == [c.source for c in ours.cells]
    assert [c.metadata["nbgrader"]["grade_id"] for c in release.cells] == [
        c.metadata["nbgrader"]["grade_id"] for c in ours.cells
    ]
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        # 12 points of graded tests (tests/grading) and 3 of the written answer's rubric
        assert gradebook.find_assignment(lab).max_score == build.graded_points()[lab] + 3
