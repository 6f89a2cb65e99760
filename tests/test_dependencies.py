"""pyproject.toml (pip) and environment.yml (conda) must ask for the same things."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _normal(req: str) -> str:
    return " ".join(req.replace('"', "'").split())


def pip_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs.extend(extra)
    return {_normal(r) for r in reqs}


def conda_requirements() -> tuple[str, set[str]]:
    python = ""
    pip: set[str] = set()
    in_pip = False
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        line = raw.split(" #")[0].rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped == "- pip:":
            in_pip = True
            continue
        if stripped.startswith("- python="):
            python = stripped.split("=", 1)[1]
        if in_pip and stripped.startswith("- ") and raw.startswith("      "):
            item = stripped[2:]
            if item != "-e .":
                pip.add(_normal(item))
    return python, pip


def test_conda_and_pip_list_the_same_dependencies():
    python, conda = conda_requirements()
    pip = pip_requirements()
    assert conda == pip, (
        f"only in pyproject.toml: {sorted(pip - conda)}; only in environment.yml: {sorted(conda - pip)}"
    )


def test_conda_python_matches_requires_python():
    python, _ = conda_requirements()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={python}", f"environment.yml has python={python}, pyproject says {requires}"


def test_the_sync_check_notices_a_drift(tmp_path, monkeypatch):
    # A drift must be visible to the comparison above, not hidden by normalisation.
    assert _normal("numpy==2.2.6") != _normal("numpy==2.2.5")
    assert "numpy==2.2.6" in pip_requirements()
