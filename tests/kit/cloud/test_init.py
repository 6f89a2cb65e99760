"""``import kit.cloud`` is light: boto3, moto and paho load only when a client, server or connection is made."""

from __future__ import annotations

import subprocess
import sys


def test_import_kit_cloud_pulls_in_no_sdk():
    code = "import sys, kit.cloud, kit.cloud.cli; print(','.join(sorted({m.split('.')[0] for m in sys.modules})))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        .stdout.strip()
        .split(",")
    )
    assert not loaded & {"boto3", "botocore", "moto", "paho", "werkzeug"}, sorted(loaded)
