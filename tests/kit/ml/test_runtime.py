"""The TFLite runtime choice: first installed of LiteRT, tflite-runtime, TensorFlow; KIT_RUNTIME forces one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kit.ml import runtime

pytestmark = pytest.mark.tflite


def test_a_runtime_is_in_use_and_reported():
    assert runtime.RUNTIME in runtime.RUNTIMES
    info = runtime.describe()
    assert info["runtime"] == runtime.RUNTIME and info["version"] and not info["error"]
    if os.environ.get(runtime.ENV):
        assert runtime.RUNTIME == os.environ[runtime.ENV]


def test_load_names_the_runtime_and_its_interpreter():
    name, interpreter = runtime.load(runtime.RUNTIME)
    assert name == runtime.RUNTIME and interpreter is runtime.Interpreter


def test_unknown_runtime_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="ai_edge_litert"):
        runtime.load("tflite2")


def test_missing_forced_runtime_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(runtime.RuntimeMissing, match="pip install tflite-runtime"):
        runtime.load("tflite_runtime")


def _import_with(env_value: str, extra: str = "") -> list[str]:
    env = dict(os.environ, KIT_RUNTIME=env_value)
    code = "import sys, kit.ml.runtime as r; print(r.RUNTIME, 'tensorflow' in sys.modules, r.ERROR != '')" + extra
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return (done.stdout + done.stderr).split()


def test_importing_stays_possible_when_the_forced_runtime_is_wrong_but_using_it_fails():
    out = _import_with("no_such_runtime", "; r.Interpreter(model_path='x.tflite')")
    assert out[:3] == ["none", "False", "True"], out
    assert "kit.ml.runtime.RuntimeMissing:" in out and "no_such_runtime" in " ".join(out)


def test_environment_forces_the_runtime_without_importing_tensorflow():
    out = _import_with(runtime.RUNTIME)
    assert out[0] == runtime.RUNTIME
    if runtime.RUNTIME != "tensorflow":
        assert out[1] == "False", "the interpreter alone must not pull in TensorFlow"
