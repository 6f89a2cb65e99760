"""Every reference solution runs top to bottom without an error, a warning or a library's log line in its outputs.

A student reads every line a cell prints. TensorFlow's absl preamble, LiteRT's "Created TensorFlow Lite XNNPACK
delegate", Flower's deprecation notices, a Ray FutureWarning or tqdm's "IProgress not found" teach nothing and
hide what matters, so they are silenced where they start (``kit.ml.quiet``, the kit's own modules), not here:
this test runs the notebooks exactly as a student's JupyterLab does and reads the stderr stream of every cell.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from course import SOLUTIONS
from course.build import solution_notebooks

pytestmark = pytest.mark.slow


def _noise(path: Path, tmp: Path) -> list[str]:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    work = tmp / path.stem
    work.mkdir()
    started = time.monotonic()
    NotebookClient(
        nb, timeout=900, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(work)}}
    ).execute()
    print(f"{path.name}: {time.monotonic() - started:.0f} s")  # shown with pytest -s: each lab's running time
    found = []
    for number, cell in enumerate(nb.cells, start=1):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr" and out.get("text", "").strip():
                found.append(f"{path.name} cell {number}: stderr: {out['text'].strip().splitlines()[0][:160]}")
            elif out.get("output_type") == "error":
                found.append(f"{path.name} cell {number}: {out.get('ename')}: {str(out.get('evalue'))[:160]}")
    return found


# Labs that still print noise or fail where this test can see it, each with why (their owners are fixing them:
# not strict, so a fix elsewhere does not turn this suite red; remove the entry once it passes).
KNOWN = {
    "05_edge_model": "a plot sets a non-positive ylim on a log axis: matplotlib's UserWarning in cell 31",
    "08_learning_at_the_edge": "the OTA section's refusals and rollback reach stderr through logging's last-resort "
    "handler ('WARNING:kit.ota:...', cells 41-42) instead of being printed by the lab",
    "07_edge_techniques": "the inference service now refuses the lab's 1,000,000 Mbit/s link (limit 100,000): "
    "cell 16 raises and the cells after it miss its names",
}


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    """Private homes for the libraries' caches, as in the rest of the suite (Ray's socket paths must stay short)."""
    tmp = tmp_path_factory.mktemp("clean")
    saved = dict(os.environ)
    for var in ("IPYTHONDIR", "KERAS_HOME", "FLWR_HOME", "MPLCONFIGDIR", "KIT_HOME"):
        os.environ[var] = str(tmp / var.lower())
    ray = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    os.environ["RAY_TMPDIR"] = ray
    os.environ["MPLBACKEND"] = "Agg"
    try:
        yield tmp
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(ray, ignore_errors=True)


@pytest.mark.timeout(3000)
@pytest.mark.parametrize(
    "lab",
    [
        pytest.param(p.stem, marks=pytest.mark.xfail(reason=KNOWN[p.stem], strict=False)) if p.stem in KNOWN else p.stem
        for p in solution_notebooks(SOLUTIONS)
    ],
)
def test_solution_prints_no_errors_warnings_or_library_logs(homes, lab):
    found = _noise(SOLUTIONS / f"{lab}.ipynb", homes)
    assert not found, "noise in the reference solution's outputs:\n" + "\n".join(found)
