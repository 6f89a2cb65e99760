"""The README is part of the product: its wiring table and commands must match the code."""

from __future__ import annotations

import re
from pathlib import Path

from kit.board import wiring_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_wiring_table_is_the_boards():
    block = re.search(r"<!-- wiring:start -->(.*)<!-- wiring:end -->", README, re.S)
    assert block, "README.md lost its <!-- wiring:start/end --> block"
    assert wiring_table() in block.group(1), (
        "README wiring table differs from kit.board.wiring_table(); paste the new one"
    )


def test_quick_start_has_the_two_commands_and_they_exist_in_the_makefile():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^make (\w+)", quick, re.M)
    assert commands == ["demo", "test"], commands
    makefile = (ROOT / "Makefile").read_text()
    for target in commands + ["lab"]:
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no '{target}' target"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
