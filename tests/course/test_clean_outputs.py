"""Every reference solution runs top to bottom without an error, a warning or a library's log line in its outputs.

A student reads every line a cell prints. TensorFlow's absl preamble, LiteRT's "Created TensorFlow Lite XNNPACK
delegate", Flower's deprecation notices, a Ray FutureWarning or tqdm's "IProgress not found" teach nothing and
hide what matters, so they are silenced where they start (``kit.ml.quiet``, the kit's own modules), not here:
this test runs the notebooks exactly as a student's JupyterLab does and reads the stderr stream of every cell.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from course import SOLUTIONS
from course.build import solution_notebooks

pytestmark = pytest.mark.slow

NUMPY_REPR = re.compile(r"\bnp\.(?:(?:u?int|float|complex|bool|str)\w*\([^)]*\)|True_|False_)")


def _noise(path: Path, tmp: Path) -> list[str]:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    work = tmp / path.stem
    work.mkdir()
    started = time.monotonic()
    # Its own KIT_HOME (the kit's database and settings): two notebooks run at once, and neither may see the other's.
    env = {**os.environ, "KIT_HOME": str(work / "kit_home")}
    NotebookClient(
        nb, timeout=900, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(work)}}
    ).execute(env=env)
    print(f"{path.name}: {time.monotonic() - started:.0f} s")  # shown with pytest -s: each lab's running time
    found = []
    for number, cell in enumerate(nb.cells, start=1):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr" and out.get("text", "").strip():
                found.append(f"{path.name} cell {number}: stderr: {out['text'].strip().splitlines()[0][:160]}")
            elif out.get("output_type") == "error":
                found.append(f"{path.name} cell {number}: {out.get('ename')}: {str(out.get('evalue'))[:160]}")
            text = (
                out.get("text", "") if out.get("output_type") == "stream" else out.get("data", {}).get("text/plain", "")
            )
            repr_ = NUMPY_REPR.search(text)
            if repr_:  # numpy 2's reprs of scalars: a student reads "np.int32(1)" where "1" was meant
                found.append(f"{path.name} cell {number}: a numpy repr instead of a plain number: {repr_.group(0)}")
    return found


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    """Private homes for the libraries' caches, as in the rest of the suite (Ray's socket paths must stay short)."""
    tmp = tmp_path_factory.mktemp("clean")
    saved = dict(os.environ)
    for var in ("IPYTHONDIR", "KERAS_HOME", "FLWR_HOME", "MPLCONFIGDIR", "KIT_HOME"):
        os.environ[var] = str(tmp / var.lower())
    ray = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    os.environ["RAY_TMPDIR"] = ray
    # no MPLBACKEND: the kernel draws with matplotlib's inline backend as in JupyterLab (a figure per cell, each
    # drawn), so a warning raised while drawing shows here, and one cell's axes never leak into the next
    os.environ.pop("MPLBACKEND", None)
    try:
        yield tmp
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(ray, ignore_errors=True)


@pytest.fixture(scope="module")
def noise(homes, request) -> dict[str, list[str]]:
    """Each selected solution run once, two kernels at a time (each kernel its own process, so the two cores both
    work); the largest notebooks first, so that the last one to start is a short one."""
    from concurrent.futures import ThreadPoolExecutor

    # The session holds other tests and doctests too (no callspec): keep this test's own parameters.
    selected = {
        item.callspec.params["lab"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_solution_prints_no_errors_warnings_or_library_logs"
    }
    paths = [p for p in solution_notebooks(SOLUTIONS) if p.stem in selected]
    paths.sort(key=lambda p: p.stat().st_size, reverse=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip((p.stem for p in paths), pool.map(lambda p: _noise(p, homes), paths)))


@pytest.mark.timeout(3000)
@pytest.mark.parametrize("lab", [p.stem for p in solution_notebooks(SOLUTIONS)])
def test_solution_prints_no_errors_warnings_or_library_logs(noise, lab):
    found = noise[lab]
    assert not found, "noise in the reference solution's outputs:\n" + "\n".join(found)
