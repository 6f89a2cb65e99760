"""Install profiles: the lean base (a Pi running the app) leaves out the course, the emulator, training and SUMO,
and the app really runs without them; `make` (the README's two commands) still installs every extra.

The lean run hides every installed module whose distribution is outside the base dependencies' closure (as
pip would resolve `pip install -e .`), so an import of JupyterLab, moto or TensorFlow anywhere on the app's path
fails exactly as on a lean Pi.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
HEAVY = {
    "jupyterlab",
    "moto",
    "tensorflow",
    "tensorflow-cpu",
    "flwr",
    "ipykernel",
    "ipywidgets",
    "nbclient",
    "eclipse-sumo",
    "libsumo",
}


def _name(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name.lower()


def test_the_base_is_lean_and_the_extras_hold_the_rest():
    base = {_name(r) for r in PROJECT["dependencies"]}
    assert not base & HEAVY, f"the lean profile pulls {sorted(base & HEAVY)}: move them to an extra"
    extras = PROJECT["optional-dependencies"]
    assert {"course", "emulator", "train", "sumo"} <= set(extras)
    assert {"jupyterlab", "ipykernel", "ipywidgets"} <= {_name(r) for r in extras["course"]}
    assert "moto" in {_name(r) for r in extras["emulator"]}


def test_make_installs_every_extra():
    makefile = (ROOT / "Makefile").read_text()
    line = next(line for line in makefile.splitlines() if "pip install" in line and "-e '.[" in line)
    listed = set(line.split("-e '.[", 1)[1].split("]", 1)[0].split(","))
    assert set(PROJECT["optional-dependencies"]) <= listed, f"make installs {sorted(listed)}"


_LEAN_RUN = textwrap.dedent("""
    import importlib.abc, importlib.metadata as md, sys
    from packaging.requirements import Requirement

    def closure(names):
        seen, todo = set(), [n.lower() for n in names]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            try:
                requires = md.requires(name) or []
            except md.PackageNotFoundError:
                continue
            for raw in requires:
                req = Requirement(raw)
                if req.marker is None or req.marker.evaluate({"extra": ""}):
                    todo.append(req.name.lower())
        return {n.replace("_", "-") for n in seen}

    # Backports a library probes for before falling back to the standard library (gpiozero tries importlib_metadata
    # first) count as present: the extras install them here, a lean Pi may not have them, and either way works.
    backports = ["importlib_metadata", "importlib_resources"]
    allowed = closure(sys.argv[1].split(",") + backports) | {"edge-python", "pip", "setuptools", "packaging"}
    hidden = {module for module, dists in md.packages_distributions().items()
              if not {d.lower().replace("_", "-") for d in dists} & allowed}
    tried = set()

    class Lean(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in hidden:
                tried.add(name.split(".")[0])
                raise ImportError(f"{name} is not in the lean profile")
            return None

    sys.meta_path.insert(0, Lean())
    assert "moto" in hidden and "jupyterlab" in hidden, "the lean profile must hide the extras"
    from kit.cli import main
    code = main(sys.argv[2:])
    print("hidden imports tried:", sorted(tried))
    sys.exit(code)
""")


def test_the_lean_profile_runs_the_intersection(tmp_path):
    base = ",".join(_name(r) for r in PROJECT["dependencies"])
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            _LEAN_RUN,
            base,
            "run",
            "intersection",
            "--hours",
            "0.25",
            "--fresh",
            "--db",
            str(tmp_path / "kit.db"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT), "KIT_HOME": str(tmp_path)},
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Smart intersection" in run.stdout and "vehicles" in run.stdout, run.stdout
    assert "hidden imports tried: []" in run.stdout, run.stdout[-500:]


def test_the_local_cloud_without_the_emulator_says_what_to_install(tmp_path):
    code = textwrap.dedent("""
        import sys
        sys.modules["moto"] = None          # as if [emulator] were not installed
        from kit.cloud.emulator import LocalCloud
        from kit.errors import KitError
        try:
            LocalCloud(0, activate=False).start()
        except KitError as exc:
            print(exc)
    """)
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
    )
    assert "pip install -e '.[emulator]'" in run.stdout, run.stdout + run.stderr[-1500:]
