"""``import kit`` must stay light: no boto3, TensorFlow, moto, Flower or paho on import."""

from __future__ import annotations

import subprocess
import sys

HEAVY = [
    "boto3",
    "botocore",
    "tensorflow",
    "keras",
    "moto",
    "flwr",
    "ray",
    "paho",
    "ai_edge_litert",
    "matplotlib",
    "libsumo",
    "sumo",
    "traci",
    "gymnasium",
]


def test_import_kit_pulls_in_nothing_heavy():
    code = "import sys, kit, kit.cli; kit.cli.build_parser(); print(','.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(out.strip().split(","))
    assert not loaded & set(HEAVY), f"import kit loaded {sorted(loaded & set(HEAVY))}"
