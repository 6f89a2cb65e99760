"""Forged answers against the real grading files (judged in the grader's process).

The forger hands in, for each lab, one cell and no work: it makes every grading message its kernel publishes say
``ok`` (the display patch of tests/course/test_attacks.py). Against checks judged inside the kernel (``lab.run``)
that scored full marks; judged here it must score 0. (The ``gc`` hunt and the other attacks are in
test_attacks.py, on the synthetic course: here they would only cost call timeouts.)
The shrinker answers every question of every lab with an answer cut short: the keys the observer returns, each
holding an empty list (or an empty dict), so that a check looping over the answer has nothing to check.
The notebooks are one cell each, so a batch costs a few kernel starts, not the labs' own run time.
"""

from __future__ import annotations

import csv
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course import GRADING_TESTS, grade
from course.grading.sandbox import available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(available() is not None and not os.environ.get("CI"), reason=f"no sandbox here: {available()}"),
]

LABS = ("02_gpio_inputs", "04_cloud", "06b_compression_deeper")

FORGER = """
import IPython.display as d, IPython.core.display_functions as f

_real = d.publish_display_data
def _forge(data, *a, **k):
    data = {m: (dict(v, ok=True, message="") if isinstance(v, dict) else v) for m, v in data.items()}
    return _real(data, *a, **k)
d.publish_display_data = f.publish_display_data = _forge

"""


SHRINKER = """
import ast, inspect, json
import IPython.display as d, IPython.core.display_functions as f

EMPTY = {empty}
_real = d.publish_display_data

def _cut_short(source):
    # the observer's own return statements name the keys the test reads: each gets an empty value
    keys = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict):
            keys += [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
    return {{k: EMPTY for k in keys}} if keys else EMPTY

def _forge(data, *a, **k):
    call = inspect.currentframe().f_back.f_locals  # __grading_call's: kind, source, name
    if call.get("kind") in ("observe", "eval"):
        answer = _cut_short(call["source"]) if call["kind"] == "observe" else EMPTY
        data = {{m: {{"ok": True, "json": json.dumps(answer)}} for m in data}}
    return _real(data, *a, **k)
d.publish_display_data = f.publish_display_data = _forge
"""


def _grade(tmp_path, students: dict[str, str], labs) -> dict[tuple[str, str], dict]:
    """Grade one-cell notebooks (student -> cell) on ``labs`` with the real grading files: (student, lab) -> row."""
    for student, cell in students.items():
        folder = tmp_path / "submissions" / student
        folder.mkdir(parents=True)
        for lab in labs:
            nbformat.write(new_notebook(cells=[new_code_cell(cell)]), folder / f"{lab}.ipynb")
    out = tmp_path / "grades.csv"
    code = grade.main(
        [
            str(tmp_path / "submissions"),
            "--out",
            str(out),
            "--tests",
            str(GRADING_TESTS),
            "--labs",
            ",".join(labs),
            "--sandbox",
            "required",
            "--call-timeout",
            "30",
            "--jobs",
            "2",
            "--quiet",
        ]
    )
    assert code == 0
    with open(out, newline="") as rows:
        return {(row["student"], row["assignment"]): row for row in csv.DictReader(rows)}


def test_answers_cut_short_score_zero_on_every_lab(tmp_path):
    # Before every zip() over an answer said strict=True, the empty lists earned 31 points across labs 00, 05, 06,
    # 07, 08 and 09 (and a hand-written lab 01 answer 4 of 12)
    labs = sorted(p.stem.removeprefix("test_") for p in GRADING_TESTS.glob("test_*.py"))
    assert len(labs) >= 12
    table = _grade(tmp_path, {"lists": SHRINKER.format(empty="[]"), "dicts": SHRINKER.format(empty="{}")}, labs)
    assert len(table) == 2 * len(labs)
    for (student, lab), row in table.items():
        assert float(row["max_score"]) > 0
        feedback = (tmp_path / "feedback" / f"{student}.md").read_text()
        assert float(row["score"]) == 0, f"{lab}: answers cut short ({student}) scored {row['score']}\n{feedback}"


def test_forged_verdicts_score_zero_on_labs_judged_by_the_grader(tmp_path):
    table = _grade(tmp_path, {"forger": FORGER}, LABS)
    feedback = (tmp_path / "feedback" / "forger.md").read_text()
    assert sorted(lab for _, lab in table) == sorted(LABS)
    for lab in LABS:
        assert float(table["forger", lab]["max_score"]) > 0
        assert float(table["forger", lab]["score"]) == 0, (
            f"{lab}: the forger scored {table['forger', lab]['score']}\n{feedback}"
        )
