"""``kit model compress`` is registered without importing TensorFlow."""

from __future__ import annotations

import subprocess
import sys


def test_compress_command_is_registered_and_light():
    code = (
        "import sys, kit.cli; p = kit.cli.build_parser(); "
        "a = p.parse_args(['model', 'compress', '--out', 'x', '--fraction', '0.25']); "
        "print(a.fraction, a.out, a.func.__module__, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0.25", "x", "kit.ml.compress.cli", "False"]


def _run(*args: str) -> subprocess.CompletedProcess:
    code = "import sys, kit.cli; sys.exit(kit.cli.main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "model", "compress", *args], capture_output=True, text=True)


def test_bad_arguments_are_explained_before_any_work(tmp_path):
    for args, expected in (
        (["--fraction", "1.5"], "argument --fraction: must be at least 0 and below 1"),
        (["--sparsity", "half"], "argument --sparsity: expected a fraction such as 0.5, got 'half'"),
        (["--n-eval", "0"], "argument --n-eval: must be at least 10, got 0"),
        (["--runs", "0"], "argument --runs: must be at least 1, got 0"),
        (["--model", "nosuch", "--out", str(tmp_path / "out")], "cannot load model 'nosuch'"),
        (["--out", str(tmp_path / "file" / "sub")], "cannot create the output folder"),
    ):
        if args[0] == "--out":
            (tmp_path / "file").write_text("a file where a folder should be")
        result = _run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
    assert "models with Keras weights: intersection" in _run("--model", "nosuch", "--out", str(tmp_path / "o")).stderr
    assert not (tmp_path / "out").exists(), "nothing is written when the model cannot be loaded"
