"""Forged verdicts against the real grading files of labs 02, 04 and 06b (judged in the grader's process).

The forger hands in, for each lab, one cell and no work: it makes every grading message its kernel publishes say
``ok`` (the display patch of tests/course/test_attacks.py). Against checks judged inside the kernel (``lab.run``)
that scored full marks; judged here it must score 0. (The ``gc`` hunt and the other attacks are in
test_attacks.py, on the synthetic course: here they would only cost call timeouts.)
The notebooks are one cell each, so the batch costs a few kernel starts, not the labs' own run time.
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


def test_forged_verdicts_score_zero_on_labs_judged_by_the_grader(tmp_path):
    student = tmp_path / "submissions" / "forger"
    student.mkdir(parents=True)
    for lab in LABS:
        nbformat.write(new_notebook(cells=[new_code_cell(FORGER)]), student / f"{lab}.ipynb")
    out = tmp_path / "grades.csv"
    code = grade.main(
        [
            str(tmp_path / "submissions"),
            "--out",
            str(out),
            "--tests",
            str(GRADING_TESTS),
            "--labs",
            ",".join(LABS),
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
        table = {row["assignment"]: row for row in csv.DictReader(rows)}
    feedback = (tmp_path / "feedback" / "forger.md").read_text()
    assert sorted(table) == sorted(LABS)
    for lab in LABS:
        assert float(table[lab]["max_score"]) > 0
        assert float(table[lab]["score"]) == 0, f"{lab}: the forger scored {table[lab]['score']}\n{feedback}"
