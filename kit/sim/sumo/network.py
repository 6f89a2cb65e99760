"""The kit's junction as a SUMO network, built by netconvert from the small sources in ``scenario/``.

Four arms of 200 m (one lane each way and a sidewalk): the main road west-east is the kit's car
light, the side road north-south, and the kit's pedestrian crossing runs across the main road on both
sides of the junction. The built ``.net.xml`` is cached by a hash of the sources, so a change to a
source rebuilds it and nothing else does.

    >>> from kit.sim.sumo.network import build_network
    >>> build_network().name.endswith(".net.xml")
    True
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from kit.errors import KitRuntimeError

SCENARIO = Path(__file__).resolve().parent / "scenario"
SOURCES = ("intersection.nod.xml", "intersection.edg.xml", "intersection.con.xml")


class NetworkBuildError(KitRuntimeError):
    """netconvert could not build the junction from its sources."""


def netconvert() -> Path:
    """Path of the netconvert binary shipped with the ``eclipse-sumo`` wheel."""
    from kit.sim.sumo import require

    require()
    import sumo

    return Path(sumo.SUMO_HOME) / "bin" / "netconvert"


def _digest() -> str:
    h = hashlib.sha256()
    for name in SOURCES:
        h.update((SCENARIO / name).read_bytes())
    return h.hexdigest()[:12]


def build_network(cache_dir: str | Path | None = None) -> Path:
    """Build (or reuse) the junction's ``.net.xml``; returns its path."""
    folder = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / f"edge-python-sumo-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    net = folder / f"intersection-{_digest()}.net.xml"
    if net.exists():
        return net
    partial = net.with_suffix(f".{os.getpid()}.tmp.xml")
    cmd = [
        str(netconvert()),
        "--node-files",
        str(SCENARIO / SOURCES[0]),
        "--edge-files",
        str(SCENARIO / SOURCES[1]),
        "--connection-files",
        str(SCENARIO / SOURCES[2]),
        "--no-turnarounds",
        "--walkingareas",
        "--seed",
        "0",
        "--no-warnings",
        "--output-file",
        str(partial),
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "SUMO_HOME": str(netconvert().parent.parent)}
    )
    if done.returncode != 0:
        raise NetworkBuildError(f"netconvert failed on {SCENARIO}: {done.stderr.strip().splitlines()[-1:]}")
    partial.replace(net)  # atomic: a parallel build never sees half a file
    return net
