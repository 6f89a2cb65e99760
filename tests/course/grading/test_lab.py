"""course.grading.lab: a notebook in its own kernel answers checks, and survives what students do to it."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course.grading.lab import ANSWER_LIMIT, RESULT_MIME, Lab

NOTEBOOK = [
    "import datetime\nimport numpy as np\nCYCLE = ('red', 'red_amber', 'green', 'amber')",
    "def phase_sequence():\n    return list(CYCLE)",
    "def unfinished():\n    # YOUR CODE HERE\n    raise NotImplementedError()",
    "def broken(:\n    pass",
    "print('x' * 300_000)",
]


def _write(tmp_path, sources, name="01_demo.ipynb"):
    path = tmp_path / name
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources]), path)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    path = _write(tmp_path_factory.mktemp("lab"), NOTEBOOK)
    with Lab(path, cell_timeout=10, call_timeout=3, output_limit=10_000) as lab:
        yield lab


def _check_passes():
    assert phase_sequence()[0] == "red"


def _check_fails_with_message():
    seq = phase_sequence()
    assert seq[0] == "green", f"the cycle starts on green, got {seq[0]!r}"


def _check_bare_assert():
    seq = phase_sequence()
    assert len(seq) == 5


def _check_unfinished():
    unfinished()


def _check_missing_name():
    broken()


def _check_endless():
    while True:
        pass


def _check_leaves_nothing_behind():
    leaked_name = 1  # noqa: F841
    global CYCLE
    CYCLE = ()


def test_run_passes_and_reports_kernel_side_failures(lab):
    assert lab.problem is None
    lab.run(_check_passes)
    with pytest.raises(AssertionError, match=r"^AssertionError: the cycle starts on green, got 'red'$"):
        lab.run(_check_fails_with_message)
    with pytest.raises(AssertionError, match=r"^AssertionError at `assert len\(seq\) == 5`$"):
        lab.run(_check_bare_assert)
    with pytest.raises(AssertionError, match=r"NotImplementedError: not written yet .* \(raised in unfinished\(\)\)"):
        lab.run(_check_unfinished)


def test_a_missing_name_points_at_the_cells_that_failed(lab):
    with pytest.raises(AssertionError) as err:
        lab.run(_check_missing_name)
    assert "NameError: name 'broken' is not defined" in str(err.value)
    assert "cell 4 (`def broken(:`): SyntaxError" in str(err.value)


def test_eval_returns_json_values(lab):
    assert lab.eval("len(CYCLE)") == 4
    assert lab.eval("CYCLE") == ["red", "red_amber", "green", "amber"]
    assert lab.eval("np.arange(3)") == [0, 1, 2]
    assert lab.eval("np.float32(0.5)") == 0.5
    assert lab.eval("{'a': {1, 2}, 'when': datetime.date(2026, 10, 15)}") == {"a": [1, 2], "when": "2026-10-15"}
    with pytest.raises(AssertionError, match="gave a type, which is not JSON-serialisable"):
        lab.eval("int")
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        lab.eval("1 / 0")


def test_checks_run_on_a_copy_of_the_namespace(lab):
    lab.run(_check_leaves_nothing_behind)
    assert lab.eval("len(CYCLE)") == 4
    assert lab.eval("[n for n in globals() if n == 'leaked_name' or n.startswith('_check')]") == []


def test_stored_output_is_capped(lab):
    printed = lab._cells[4].outputs
    assert sum(len(o.get("text", "")) for o in printed) < 11_000
    assert "dropped" in printed[-1]["text"]


def test_answers_published_by_the_notebook_are_capped_like_any_output(tmp_path):
    # the grading mime type is the grader's channel, not a way past the output cap: outside a grading call it is
    # output like any other, and in a call only the first answer is kept, with only an answer's fields
    publish = f"from IPython.display import publish_display_data as p\nMIME = {RESULT_MIME!r}"
    flood = "for _ in range(3):\n    p({MIME: {'ok': True, 'json': '1', 'pad': 'x' * 1_000_000}})"
    with Lab(_write(tmp_path, [publish, flood]), cell_timeout=20, call_timeout=20, output_limit=10_000) as lab:
        assert sum(len(str(o)) for o in lab._cells[1].outputs) < 11_000
        expr = "[p({MIME: {'ok': True, 'json': '7', 'pad': 'x' * 1_000_000}}) for _ in range(3)]"
        assert lab.eval(expr) == 7  # a forged first answer is still only its value, to be judged
        assert sum(len(str(o)) for o in lab._scratch.outputs) < 1_000
        with pytest.raises(AssertionError, match=f"characters of JSON; at most {ANSWER_LIMIT} are read"):
            lab.eval(f"'x' * {ANSWER_LIMIT + 1}")
        assert sum(len(str(o)) for o in lab._scratch.outputs) < 1_000


@pytest.mark.slow
def test_an_endless_check_times_out_and_the_kernel_keeps_its_state(lab):
    with pytest.raises(AssertionError, match=r"_check_endless\(\) did not finish within 3 s"):
        lab.run(_check_endless)
    assert lab.eval("len(CYCLE)") == 4


@pytest.mark.slow
def test_a_check_that_kills_the_kernel_fails_and_the_notebook_is_replayed(tmp_path):
    path = _write(tmp_path, ["x = 41", "def boom():\n    import os\n    os._exit(1)"])
    with Lab(path, call_timeout=5) as lab:
        with pytest.raises(AssertionError, match=r"kernel died while running lab.eval\('boom\(\)'\)"):
            lab.eval("boom()")
        assert lab.eval("x + 1") == 42  # a new kernel, the notebook run again
        assert lab.restarts == 1


@pytest.mark.slow
def test_fatal_cells_are_skipped_and_the_rest_still_counts(tmp_path):
    path = _write(
        tmp_path,
        [
            "a = 1",
            "import os\nos._exit(3)",
            "b = 2",
            "exit()\nnever = True",
            "import sys\nsys.exit(4)",
            "while True:\n    pass",
            "c = 3",
        ],
    )
    with Lab(path, cell_timeout=2) as lab:
        assert lab.eval("[a, b, c, 'never' in globals()]") == [1, 2, 3, False]
        kinds = {p.cell: p.kind for p in lab.cell_problems.values()}
        assert kinds == {2: "crash", 4: "error", 5: "error", 6: "timeout"}
        assert "exit() would stop the notebook's kernel" in str(lab.cell_problems[3])
        report = lab.notebook_report()
        assert report["restarts"] == 1 and [c["cell"] for c in report["cells"]] == [2, 4, 5, 6]


def test_a_missing_or_unreadable_notebook_fails_every_call_with_one_clear_message(tmp_path):
    with Lab(tmp_path / "07_camera.ipynb") as lab:
        assert "no notebook 07_camera.ipynb" in lab.problem
        with pytest.raises(AssertionError, match="not submitted"):
            lab.eval("1")
    (tmp_path / "08_bad.ipynb").write_text("{ not json")
    with Lab(tmp_path / "08_bad.ipynb") as lab:
        with pytest.raises(AssertionError, match="08_bad.ipynb is not a readable notebook"):
            lab.run(_check_passes)


@pytest.mark.slow
def test_the_notebook_time_budget_skips_what_does_not_fit(tmp_path):
    path = _write(tmp_path, ["import time\ntime.sleep(1.5)", "time.sleep(1.5)", "late = True"])
    with Lab(path, cell_timeout=10, notebook_timeout=2) as lab:
        kinds = sorted((p.cell, p.kind) for p in lab.cell_problems.values())
        assert kinds[-1] == (3, "skipped")
        assert "used up" in str(lab.cell_problems[2])
