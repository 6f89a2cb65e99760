"""`kit model info` and `kit model bench` on the shipped model; sub-command modules are listed in one place."""
from __future__ import annotations

import argparse

import pytest

from kit.cli import main
from kit.ml import cli


def test_subcommands_come_from_a_list_of_modules(monkeypatch):
    seen = []

    class Fake:
        @staticmethod
        def add_commands(sub):
            seen.append(sub)
            sub.add_parser("fake")

    monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS, Fake])
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    assert seen, "every listed module is asked for its commands"
    assert parser.parse_args(["model", "fake"])


def test_model_info_lists_the_shipped_model(capsys):
    assert main(["model", "info"]) == 0
    out = capsys.readouterr().out
    assert "TFLite runtime:" in out and "intersection" in out and "file matches card" in out


@pytest.mark.slow
def test_model_bench_prints_size_accuracy_latency(capsys):
    assert main(["model", "bench", "--n", "100", "--runs", "20", "--no-keras"]) == 0
    out = capsys.readouterr().out
    assert "p50 ms" in out and "intersection" in out
