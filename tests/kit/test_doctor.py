from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import kit.doctor
from kit.cli import main
from kit.doctor import OPTIONAL, diagnose, format_report
from kit.pins import ENV_FACTORY


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(ENV_FACTORY, raising=False)


def test_report_names_factory_reason_and_versions():
    report = diagnose()
    assert report["pins"]["factory"] == "mock"
    assert "not a Raspberry Pi" in report["pins"]["reason"]
    assert report["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert report["versions"]["gpiozero"].startswith("2.")
    assert set(report["optional"]) == set(OPTIONAL)
    text = format_report(report)
    assert "mock (SimFactory)" in text and "why:" in text and "gpiozero" in text


def test_kit_doctor_command(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "pins      mock" in out and "optional parts:" in out


def test_kit_doctor_json(capsys):
    import json

    assert main(["doctor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pins"]["simulated"] is True


def test_everything_missing_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    monkeypatch.setattr(kit.doctor.shutil, "which", lambda name: None)

    def broken(dist):
        raise RuntimeError("metadata is broken")

    monkeypatch.setattr(kit.doctor.metadata, "version", broken)
    report = diagnose()
    assert all(not entry["present"] for entry in report["optional"].values())
    assert report["versions"]["gpiozero"] is None
    text = format_report(report)
    assert "missing" in text and "MISSING" in text


def test_find_spec_errors_count_as_missing(monkeypatch):
    def boom(name, *a):
        raise ValueError("half-installed")

    monkeypatch.setattr(importlib.util, "find_spec", boom)
    assert not any(entry["present"] for entry in diagnose()["optional"].values())


def test_bad_factory_is_reported(monkeypatch, capsys):
    monkeypatch.setenv(ENV_FACTORY, "nonsense")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM" in out and "'nonsense'" in out


def test_doctor_imports_nothing_heavy():
    code = (
        "import sys, kit.doctor; kit.doctor.format_report(kit.doctor.diagnose()); "
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        .stdout.strip()
        .split(",")
    )
    assert not loaded & {"tensorflow", "boto3", "moto", "flwr", "paho", "ai_edge_litert"}


def test_doctor_names_the_tflite_runtime_in_use(monkeypatch):
    from kit.doctor import diagnose

    monkeypatch.delenv("KIT_RUNTIME", raising=False)
    assert diagnose()["inference"]["runtime"] == "ai_edge_litert"
    monkeypatch.setenv("KIT_RUNTIME", "nonsense")
    report = diagnose()["inference"]
    assert report["runtime"] is None and "KIT_RUNTIME" in report["why"]


def test_doctor_knows_the_runtimes_kit_ml_knows():
    from kit import doctor
    from kit.ml import runtime

    assert doctor.RUNTIMES == runtime.RUNTIMES and doctor.ENV == runtime.ENV
