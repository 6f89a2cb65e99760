"""``kit model compress`` is registered without importing TensorFlow."""
from __future__ import annotations

import subprocess
import sys


def test_compress_command_is_registered_and_light():
    code = ("import sys, kit.cli; p = kit.cli.build_parser(); "
            "a = p.parse_args(['model', 'compress', '--out', 'x', '--fraction', '0.25']); "
            "print(a.fraction, a.out, a.func.__module__, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0.25", "x", "kit.ml.compress.cli", "False"]
