"""SIGKILL at every phase of a delivery, in a real process, of a one-piece model and of a fused model's bundle:
after a restart the device runs exactly one complete model (the one it ran before, or the new one once its commit
is on disk), and nothing half-written stays."""

import json
import os
import signal
import subprocess
import sys

import pytest

from kit.ml import shipped_model
from kit.ml.host import ModelHost
from kit.ml.ota.slots import sha256_file
from kit.ml.ota.updater import Updater

CHILD = r"""
import os, signal, sys
from kit.ml import shipped_model
from kit.ml.data import make_fused_dataset
from kit.ml.host import ModelHost
from kit.ml.ota.canary import CanaryPolicy
from kit.ml.ota.updater import Updater
from kit.ml.ota.verify import queue_of

folder, model, card, version, kill_at = sys.argv[1:6]

def on_phase(phase):
    if phase == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

factory = ModelHost(shipped_model())
up = Updater(folder, factory=factory, policy=CanaryPolicy(frames=8, probation_frames=8), on_phase=on_phase)
host = up.start() or factory
up.offer_file(model, version=version, card=card or None)  # a .tflite and its card, or a fused model's folder
data = make_fused_dataset(32, seed=7, conditions="day")
up.step()
for frame, vector, label in zip(data.x, data.sensors, data.queue):
    host = up.swap() or host
    up.observe(frame, queue_of(host, frame, vector), 1.0, int(label), vector)
    up.step()
print(up.phase, up.running and up.running["version"])
"""

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ENV = {**os.environ, "PYTHONPATH": ROOT}  # the child imports this tree's kit
PHASES = ["downloading", "downloading-part", "verifying", "canary", "swapping", "committed"]


def run_child(folder, model, version, kill_at):
    card = "" if model.is_dir() else str(model.with_suffix(".json"))
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(model), card, version, kill_at],
        capture_output=True,
        text=True,
        timeout=180,
        env=ENV,
    )


def _delivered(variants, fused_variants, kind):
    """The file the device should end up with (for a fused folder: its bundle) and what to offer."""
    from kit.ml.ota import bundle

    if kind == "tflite":
        return variants["good"].read_bytes(), variants["good"]
    return bundle.pack(fused_variants["good"]), fused_variants["good"]


@pytest.mark.parametrize("kind, kill_at", [(kind, phase) for kind in ("tflite", "bundle") for phase in PHASES])
def test_sigkill_at_any_phase_leaves_exactly_one_complete_model(tmp_path, variants, fused_variants, kind, kill_at):
    content, offered = _delivered(variants, fused_variants, kind)
    out = run_child(tmp_path, offered, "good-1", kill_at)
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    leftovers = [p.name for p in tmp_path.rglob("*") if p.suffix in (".part", ".tmp")]
    factory = ModelHost(shipped_model())
    up = Updater(tmp_path, factory=factory)
    host = up.start()
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".part", ".tmp")], leftovers
    state = (
        json.loads((tmp_path / "state.json").read_text()) if (tmp_path / "state.json").exists() else {"current": None}
    )
    if kill_at == "committed":  # the commit reached the disk: the new model runs, complete
        assert state["current"]["version"] == "good-1"
        assert host is not None and host.path.read_bytes() == content
    else:  # killed before the commit: the model it ran before
        assert state["current"] is None and host is None and up.host is factory
    # and the device can carry on: the delivery completes when asked again
    done = run_child(tmp_path, offered, "good-1", "never")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "state.json").read_text())["current"]["version"] == "good-1"


def test_partial_download_left_by_a_kill_is_deleted_and_a_damaged_current_falls_back(tmp_path, variants):
    out = run_child(tmp_path, variants["good"], "good-1", "downloading-part")
    assert out.returncode == -signal.SIGKILL
    parts = list(tmp_path.glob("blobs/*.part"))
    assert parts and 0 < parts[0].stat().st_size < variants["good"].stat().st_size  # really half-written
    assert run_child(tmp_path, variants["good"], "good-1", "never").returncode == 0
    # a bad disk flips bytes of the current model: the restart falls back to the factory model and says why
    blob = tmp_path / "blobs" / f"{sha256_file(variants['good'])}.tflite"
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    up = Updater(tmp_path, factory=ModelHost(shipped_model()))
    assert up.start() is None
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["current"] is None and "no complete delivered model" in state["events"][-1]["reason"]
