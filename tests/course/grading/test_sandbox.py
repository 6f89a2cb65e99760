"""course.grading.sandbox: how a kernel is wrapped, and what --sandbox does where bubblewrap is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from course import ROOT, grade
from course.grading.sandbox import Sandbox, SandboxUnavailable, available, resolve


def test_the_command_binds_the_kit_and_course_read_only_and_nothing_else_of_the_repository(tmp_path):
    cmd = Sandbox(memory_bytes=2**31).command(["python", "-c", "pass"], private=tmp_path)
    binds = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--ro-bind"]
    assert str(ROOT / "kit") in binds and str(ROOT / "course") in binds
    assert not any(b in (str(ROOT), str(ROOT / "tests"), str(ROOT / "solutions")) for b in binds)
    assert cmd[cmd.index("--bind") + 1] == str(tmp_path)  # the one writable folder
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in cmd
    assert f"--data={2**31}" in cmd and cmd[-3:] == ["python", "-c", "pass"]


def test_a_missing_bubblewrap_is_refused_warned_or_accepted_as_asked():
    assert "not installed" in available("no-such-bwrap")
    with pytest.raises(SandboxUnavailable, match="--sandbox required, but bubblewrap"):
        resolve("required", bwrap="no-such-bwrap")
    with pytest.warns(UserWarning, match="NO SANDBOX"):
        assert resolve("auto", bwrap="no-such-bwrap") is None
    assert resolve("off") is None
    with pytest.raises(ValueError, match="choose one of required, auto, off"):
        resolve("sometimes")


def test_course_grade_says_in_one_line_what_is_wrong_with_its_limits(tmp_path, capsys):
    (tmp_path / "alice").mkdir()
    assert grade.main([str(tmp_path), "--memory", "lots", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == "error: --memory 'lots': give a size such as 3G or 1500M"
    assert grade.main([str(tmp_path), "--memory", "100M", "--quiet"]) == 2
    assert "at least 256M" in capsys.readouterr().err
    assert grade.main([str(tmp_path), "--cpu-time", "0", "--quiet"]) == 2
    assert "give a positive number of seconds" in capsys.readouterr().err
    assert grade._bytes("3G") == 3 * 2**30 and grade._bytes("1500M") == 1500 * 2**20


@pytest.mark.skipif(available() is not None, reason="needs bubblewrap")
def test_inside_the_sandbox_the_repository_and_home_are_out_of_view_and_memory_is_bounded(tmp_path):
    box = Sandbox(memory_bytes=512 * 2**20)
    box.prepare(tmp_path)
    probe = (
        "import os\n"
        f"print(os.path.exists({str(ROOT / 'tests')!r}), os.path.exists({str(ROOT / 'solutions')!r}),"
        f" os.path.exists({str(Path.home() / '.bashrc')!r}), os.path.exists({str(ROOT / 'kit')!r}))\n"
        "try:\n    bytearray(2 * 2**30)\nexcept MemoryError:\n    print('MemoryError')\n"
    )
    done = subprocess.run(
        box.command([sys.executable, "-c", probe], private=tmp_path),
        env=box.environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == ["False", "False", "False", "True", "MemoryError"], done.stderr
    if os.geteuid() == 0:
        box_uid = subprocess.run(
            box.command(["id", "-u"], private=tmp_path),
            env=box.environment(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
        assert box_uid == str(box.uid)
