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


def test_model_info_lists_every_shipped_model_the_apps_default_first(capsys):
    from kit.ml.card import shipped_cards

    assert main(["model", "info"]) == 0
    out = capsys.readouterr().out
    assert "TFLite runtime:" in out
    names = shipped_cards()
    assert {"intersection", "early_exit", "queue_int8"} <= set(names)
    lines = [line for line in out.splitlines() if not line.startswith(" ") and ":" in line][1:]
    assert [line.split(":")[0].split(" ")[0] for line in lines] == names
    assert "(the app's default)" in lines[0]
    assert out.count("files match card") == len(names)


@pytest.mark.slow
def test_model_bench_prints_size_accuracy_latency(capsys):
    assert main(["model", "bench", "--n", "100", "--runs", "20", "--no-keras"]) == 0
    out = capsys.readouterr().out
    assert "p50 ms" in out
    from kit.ml.card import shipped_cards

    rows = [line.split()[0] for line in out.splitlines()[1:]]
    assert rows == shipped_cards(), "every shipped model is benchmarked, the app's default first"
