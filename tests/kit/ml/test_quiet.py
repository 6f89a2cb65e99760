"""Native log lines are dropped at their source, and written back when something fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

_CHILD = """
import os, sys
from kit.ml.quiet import native_stderr
with native_stderr():
    os.write(2, b"dropped\\n")
os.write(2, b"kept\\n")
try:
    with native_stderr():
        os.write(2, b"shown because the block failed\\n")
        raise ValueError("boom")
except ValueError:
    pass
"""


def test_native_writes_are_dropped_unless_the_block_raises():
    run = subprocess.run(
        [sys.executable, "-c", _CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == ["kept", "shown because the block failed"]


@pytest.mark.slow
def test_tensorflow_and_litert_say_nothing_after_kit_ml_is_imported(tmp_path):
    pytest.importorskip("tensorflow")
    code = (
        "import kit.ml, tensorflow\n"
        "from kit.ml import shipped_model\nfrom kit.ml.host import ModelHost\n"
        "ModelHost(shipped_model()).predict(__import__('numpy').zeros((64, 64), 'uint8'))\nprint('ok')"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert run.stdout.strip() == "ok" and run.stderr == "", run.stderr[-1500:]
