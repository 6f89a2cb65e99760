"""course.grade against a class of attackers: each attack is a blank lab plus a few lines, graded in one batch.

Expected: every attack scores 0, the honest students graded in the same batch keep their exact scores, the
batch finishes and writes the gradebook, nothing outside the attacker's sandbox is read, written or left running.
Needs bubblewrap (``--sandbox required``), as CI installs it.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course import GRADING_TESTS, grade
from course.grading.sandbox import available, resolve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(available() is not None and not os.environ.get("CI"), reason=f"no sandbox here: {available()}"),
]

MARK = "edge-python-attack-marker"

# Each attack is prepended to the blank lab as its first cell (appended as its last when it brings in code the blank
# cells would otherwise overwrite). {course} is the course folder: an attacker knows (or guesses) where things are
# on the instructor's machine. No attack knows the hidden tests' expected values.
APPENDED = {"reads_solutions_and_tests"}
ATTACKS = {
    # every grading message published from the kernel says ok
    "display_patch": """
import IPython.display as d, IPython.core.display_functions as f
_real = d.publish_display_data
def _forge(data, *a, **k):
    data = {m: (dict(v, ok=True, message="") if isinstance(v, dict) else v) for m, v in data.items()}
    return _real(data, *a, **k)
d.publish_display_data = f.publish_display_data = _forge
""",
    "json_patch": """
import json
json.dumps = lambda *a, **k: '{"ok": true}'
json.loads = lambda *a, **k: {"ok": True}
""",
    "builtins_patch": """
import builtins
builtins.NotImplementedError = type("NotImplementedError", (Exception,), {})
builtins.AssertionError = type("AssertionError", (Exception,), {})
_exec = builtins.exec
builtins.exec = lambda *a, **k: None
builtins.eval = lambda *a, **k: 3
""",
    # a thread that finds the harness's functions through gc and makes them report success
    "gc_harness_hunt": """
import gc, threading, time
def _hunt():
    def fake(*a, **k):
        from IPython.display import publish_display_data
        publish_display_data({m: {"ok": True, "json": "true"} for m in ["application/vnd.edge-python.grading+json"]})
    while True:
        for o in gc.get_objects():
            if callable(o) and getattr(o, "__name__", "").startswith(("__grading", "_observe", "_check")):
                try:
                    o.__code__ = fake.__code__
                except Exception:
                    pass
        time.sleep(0.01)
threading.Thread(target=_hunt, daemon=True).start()
""",
    # writes a perfect results file wherever it can find one, now and from a detached process
    "forged_results": """
import glob, json, os
perfect = {"tests": [{"test": f"test_01_demo.py::{t}", "notebook": "01_demo", "points": 9.0, "max": 9.0,
                      "passed": True, "message": ""} for t in ("test_double", "test_limit", "test_greet")],
           "score": 27, "max_score": 27}
targets = [os.environ.get("COURSE_GRADING_RESULTS", "")] + glob.glob("/tmp/course-grade-*/*/results.json")
for path in targets:
    try:
        open(path, "w").write(json.dumps(perfect))
    except OSError:
        pass
""",
    # runs the reference solution's code (or another student's) as its own
    "reads_solutions_and_tests": """
import glob, json
stolen = ""
for pattern in ["{course}/submissions/solved/01_demo.ipynb", "{course}/solutions/*.ipynb"]:
    for path in glob.glob(pattern):
        try:
            cells = json.load(open(path))["cells"]
        except Exception:
            continue
        stolen += "\\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code" and "def " in "".join(c["source"]))
for path in glob.glob("{course}/grading/*.py"):
    stolen += open(path).read()
print(stolen[:3000])
exec(stolen)
""",
    "writes_other_submissions": """
import glob
for path in glob.glob("{course}/submissions/*/*.ipynb") + glob.glob("{course}/submissions/*"):
    try:
        open(path, "w").write("destroyed")
    except OSError:
        pass
""",
    "kills_the_grader": """
import os, signal
for pid in range(1, 400):
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
try:
    os.kill(os.getppid(), signal.SIGKILL)
except OSError:
    pass
""",
    # a setsid child that outlives the notebook and keeps rewriting other students' work
    "detached_writer": """
import subprocess, sys
subprocess.Popen([sys.executable, "-c",
    "import glob, time\\n"
    "while True:\\n"
    "    for p in glob.glob('{course}/submissions/*/*.ipynb') + glob.glob('/tmp/course-grade-*/*/results.json'):\\n"
    "        try: open(p, 'w').write('{mark}')\\n"
    "        except OSError: pass\\n"
    "    time.sleep(0.05)\\n", "{mark}"], start_new_session=True)
""",
    "allocates_20_gb": """
try:
    hog = bytearray(20 * 2**30)
except MemoryError:
    hog = None
""",
    "fork_bomb": """
import os, time
if os.fork() == 0:
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.05)
""",
    "prints_100_mb": """
for _ in range(100):
    print("x" * 2**20)
""",
    "exfiltrates_files_in_errors": """
import glob
raise RuntimeError("".join(open(p).read() for p in glob.glob("{course}/grading/*.py")) or "nothing found")
""",
}

HONEST = {"solved": 4, "partly_solved": 3}


def _blank_with(course, name: str) -> nbformat.NotebookNode:
    attack = ATTACKS[name]
    nb = nbformat.read(course.labs / "01_demo.ipynb", as_version=4)
    source = attack.replace("{course}", str(course.root)).replace("{mark}", MARK)
    nb.cells.insert(len(nb.cells) if name in APPENDED else 0, new_code_cell(source))
    return nb


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _marked_processes() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if MARK.encode() in cmdline:
                found.append(entry.name)
    return found


@pytest.fixture(scope="module")
def attacked(tmp_path_factory, make_course):
    course = make_course(tmp_path_factory.mktemp("attacked"))
    course.student("solved", course.notebook())
    course.student("partly_solved", course.notebook(greet="def greet(name):\n    return name"))
    for name in ATTACKS:
        course.student(name, _blank_with(course, name))
    # hand-ins that are not notebooks: a link to the reference solution, a folder, a FIFO
    (course.root / "submissions" / "symlink_to_solution").mkdir()
    os.symlink(
        course.solutions / "01_demo.ipynb", course.root / "submissions" / "symlink_to_solution" / "01_demo.ipynb"
    )
    (course.root / "submissions" / "folder_named_ipynb" / "01_demo.ipynb").mkdir(parents=True)
    (course.root / "submissions" / "fifo").mkdir()
    os.mkfifo(course.root / "submissions" / "fifo" / "01_demo.ipynb")
    honest = {name: _digest(course.root / "submissions" / name / "01_demo.ipynb") for name in HONEST}
    tests = {p.name: _digest(p) for p in course.tests.iterdir() if p.is_file()}
    out = course.root / "out" / "grades.csv"
    code = grade.main(
        [
            str(course.root / "submissions"),
            "--out",
            str(out),
            "--tests",
            str(course.tests),
            "--sandbox",
            "required",
            "--cell-timeout",
            "10",
            "--call-timeout",
            "10",
            "--notebook-timeout",
            "60",
            "--jobs",
            "2",
            "--quiet",
        ]
    )
    with open(out, newline="") as rows:
        table = {row["student"]: row for row in csv.DictReader(rows)}
    left = _marked_processes()
    yield course, code, table, honest, tests, left
    for pid in left:  # should there be any, do not leave them to the rest of the test run
        try:
            os.kill(int(pid), 9)
        except OSError:
            pass
    shutil.rmtree(course.root / "submissions", ignore_errors=True)


def test_the_batch_finishes_and_writes_every_row(attacked):
    course, code, table, *_ = attacked
    assert code == 0
    expected = sorted([*ATTACKS, *HONEST, "symlink_to_solution", "folder_named_ipynb", "fifo"])
    assert sorted(table) == expected
    assert {row["max_score"] for row in table.values()} == {"4"}


@pytest.mark.parametrize("attack", [*ATTACKS, "symlink_to_solution", "folder_named_ipynb", "fifo"])
def test_every_attack_on_a_blank_lab_scores_zero(attacked, attack):
    course, _, table, *_ = attacked
    feedback = (course.root / "out" / "feedback" / f"{attack}.md").read_text()
    assert table[attack]["score"] == "0", feedback


def test_honest_students_keep_their_exact_scores_and_files(attacked):
    course, _, table, honest, tests, _ = attacked
    for name, score in HONEST.items():
        assert table[name]["score"] == str(score), (course.root / "out" / "feedback" / f"{name}.md").read_text()
        assert _digest(course.root / "submissions" / name / "01_demo.ipynb") == honest[name]
    assert {p.name: _digest(p) for p in course.tests.iterdir() if p.is_file()} == tests


def test_no_process_of_an_attacker_outlives_the_batch(attacked):
    *_, left = attacked
    assert left == []


def test_hand_ins_that_are_not_notebooks_are_refused_with_a_reason(attacked):
    course, *_ = attacked
    feedback = course.root / "out" / "feedback"
    assert "is a symbolic link, not a notebook" in (feedback / "symlink_to_solution.md").read_text()
    assert "is a folder, not a notebook" in (feedback / "folder_named_ipynb.md").read_text()
    assert "is not a regular file" in (feedback / "fifo.md").read_text()


def test_feedback_quotes_only_what_the_student_could_see_and_stays_short(attacked):
    course, *_ = attacked
    feedback = course.root / "out" / "feedback"
    for attack in ATTACKS:
        text = (feedback / f"{attack}.md").read_text()
        assert "def _observe_double" not in text and "grading_rng" not in text, f"{attack} saw the grading tests"
        assert len(text) < 6000, f"{attack}: feedback of {len(text)} characters"
    assert "nothing found" in (feedback / "exfiltrates_files_in_errors.md").read_text()
    assert "MemoryError" not in (feedback / "solved.md").read_text()


# ---- forged verdicts against the real grading files of labs 07, 08 and 10 (judged in the grader's process) ------
# A forger hands in, for each lab, a notebook that does none of the work: the display patch above (every grading
# message says ok), and the names the tests ask for, with answers written down from the lab (its self-checks' and
# the earlier in-kernel checks' fixed cases: right there, wrong anywhere else); all but lab 07's single_task, whose
# check would import TensorFlow into the kernel to find the same. Against the earlier checks judged in the kernel
# this scored 13/15, 13/13 and 7/9; graded by the real grader on the real grading files, every lab must score 0. The
# notebooks are a few cells each: the batch costs a kernel start per lab, not the labs' training.
WRITTEN_DOWN = {
    "07_edge_techniques": """
import numpy as np
exit_mask = lambda probs, threshold: np.array([True, False, True, True])
choose_threshold = lambda *a, **k: 0.55
threshold = 0.55
end_to_end_ms = lambda prof, net: [26.496, 89.736, 27.912, 10.0]
best_split = lambda prof, net: 3
choices = {"fibre": 0, "4g": 2, "rural": 3}
class OnePerTick:
    captures = 2
    def __init__(self, camera): self.camera = camera
    def tick(self): pass
    def frame(self): return np.zeros((4, 4), np.uint8)
TICKS, shared_stats, separate_stats = 100, {"captures": 100}, {"captures": 300}
run = lambda shared: {"captures": TICKS if shared else 3 * TICKS}
""",
    "08_learning_at_the_edge": """
import numpy as np
psi = lambda expected, actual, eps=1e-4: 0.8757
first_alarm = lambda values, threshold=0.25, patience=2: 2
psis, days, alarm = [0.3, 0.1, 0.3, 0.3], [0, 3, 24, 27], 2
augmented_training_set = lambda frames, labels, seed: (np.concatenate([frames, frames]), np.concatenate([labels, labels]))
aug_table = {"augmented": {}, "no augmentation": {}}
gce = lambda probs, labels, q=0.7: 0.7891
head_step = lambda W, b, x, y, lr: (W, b)
before, after = 0.5, 0.9
fedavg = lambda client_weights, num_examples: client_weights[0]
history = {"weights": [np.zeros(2)], "accuracy": [0.4, 0.9], "manifest": [{"content": {"arrays": 1, "metrics": 1}}] * 16}
settings, alone, pooled = {"rounds": 4}, {"own": [0.5] * 4}, {"overall": 0.9}
""",
    "10_learning_to_control": """
my_max_pressure = lambda view: True
my_reward = lambda halting, peds_waiting, ped_wait_s: -(halting + peds_waiting) / 10
def train_and_export(seed, path):
    class R: settings = {"reward": "my_reward", "seed": 11}
    open(path, "wb").write(b"not a model")
    return R(), path
compare = lambda seeds, start, hours: {"max_pressure": {}, "actuated": {}, "learned": {}}
""",
}


@pytest.mark.timeout(600)
def test_forged_verdicts_score_zero_on_the_labs_judged_by_the_grader(tmp_path):
    student = tmp_path / "submissions" / "forger"
    student.mkdir(parents=True)
    for lab, answers in WRITTEN_DOWN.items():
        cells = [ATTACKS["display_patch"], answers]
        nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), student / f"{lab}.ipynb")
    sandbox = resolve("required" if os.environ.get("CI") else "auto")
    limits = grade.Limits(cell_timeout=60, notebook_timeout=120, call_timeout=60, sandbox=sandbox)
    results = grade.grade_class(
        tmp_path / "submissions", tests=GRADING_TESTS, jobs=2, limits=limits, only=list(WRITTEN_DOWN)
    )
    assert sorted(r.lab for r in results) == sorted(WRITTEN_DOWN)
    for r in results:
        assert r.max_score > 0
        passed = [t["test"] for t in r.tests if t["passed"]]
        assert r.score == 0 and not passed, f"{r.lab}: the forger scored {r.score}/{r.max_score} with {passed}"
