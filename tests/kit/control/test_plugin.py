"""A student's controller plugged into the app: `kit run intersection --controller module:Class`."""

import re
import subprocess
import sys
import textwrap

import pytest

from kit.control.plugin import ControllerError, load_policy
from kit.errors import UsageError

MODULE = textwrap.dedent("""
    class EveryMinute:
        '''Ends the car green once a minute when someone waits, whatever the queue.'''
        def __init__(self):
            self.calls = 0
        def __call__(self, obs, timings):
            self.calls += 1
            return obs.ped_request and obs.phase_s >= max(60.0, timings.min_green_s)

    def broken(obs, timings):
        raise ZeroDivisionError
    NOT_CALLABLE = 3

    class NeedsArgs:
        def __init__(self, x):
            pass

    def one_argument(obs):
        return True

    class Raises:
        def __call__(self, obs, timings):
            return obs.no_such_field
""")


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    (tmp_path / "my_plugin_ctl.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    yield tmp_path
    sys.modules.pop("my_plugin_ctl", None)


def test_a_class_is_made_once_and_found_in_the_current_folder(plugin_dir):
    policy = load_policy("my_plugin_ctl:EveryMinute").__wrapped__
    assert type(policy).__name__ == "EveryMinute" and policy.calls == 0


def test_an_exception_in_the_controller_names_the_controller_and_its_line(plugin_dir):
    from kit.control.adaptive import AdaptiveTimings, Observation

    obs = Observation(phase_s=30, queue=False, ped_request=True, ped_wait_s=5, night=False)
    with pytest.raises(ControllerError) as err:
        load_policy("my_plugin_ctl:Raises")(obs, AdaptiveTimings())
    assert str(err.value).startswith(
        "--controller 'my_plugin_ctl:Raises' raised my_plugin_ctl.py line 23: AttributeError: "
    )
    assert err.value.exit_code == 1


@pytest.mark.parametrize(
    "spec, words",
    [
        ("my_plugin_ctl", "module:Name"),
        ("my_plugin_ctl:Missing", "has no 'Missing'"),
        ("no_such_module_xyz:A", "no module 'no_such_module_xyz'"),
        ("my_plugin_ctl:NOT_CALLABLE", "give a policy"),
        ("my_plugin_ctl:NeedsArgs", "made with no arguments"),
        ("my plugin:A", "module:Name"),
        ("my_plugin_ctl:one_argument", "one_argument takes (obs); the app calls it with two arguments"),
    ],
)
def test_a_wrong_name_says_what_to_fix(plugin_dir, spec, words):
    with pytest.raises(UsageError, match=re.escape(words)):
        load_policy(spec)


def test_the_app_runs_the_plugged_controller(plugin_dir):
    from kit.apps.intersection import AppOptions, IntersectionApp
    from kit.store import Store

    app = IntersectionApp(
        Store(":memory:"),
        AppOptions(seed=3, hours=0.5, model=None, start="2026-10-15T08:00:00", controller="my_plugin_ctl:EveryMinute"),
    )
    try:
        summary = app.run()
    finally:
        app.close()
    policy = app.controller.policy.__wrapped__
    assert type(policy).__name__ == "EveryMinute" and policy.calls > 100
    greens = [s for name, s in app.controller.phase_log if name == "car_green"]
    # the app's stop cuts the green in progress to its minimum (the wind-down), so the last one may be short
    assert summary["crossings"] > 0 and len(greens) > 2 and min(greens[:-1]) >= 60.0
    assert greens[-1] >= app.controller.timings.min_green_s


def test_cli_plugin_and_a_bad_one(plugin_dir):
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "kit",
            "run",
            "intersection",
            "--controller",
            "my_plugin_ctl:EveryMinute",
            "--hours",
            "0.2",
            "--no-model",
            "--fresh",
            "--db",
            str(plugin_dir / "kit.db"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert "my_plugin_ctl:EveryMinute control" in ok.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "kit",
            "run",
            "intersection",
            "--controller",
            "my_plugin_ctl:Nope",
            "--db",
            str(plugin_dir / "bad.db"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "has no 'Nope'" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (plugin_dir / "bad.db").exists()


@pytest.mark.parametrize(
    "source, line",
    [
        ("class X(:\n    pass\n", "--controller 'broken_ctl:X': broken_ctl.py line 1: SyntaxError: "),
        (
            "import math\nx = 1 / 0\n",
            "--controller 'broken_ctl:X': importing 'broken_ctl' failed: broken_ctl.py line 2: ZeroDivisionError: division by zero",
        ),
        (
            "def X(obs, timings):\n    return obs.nope\n",
            "--controller 'broken_ctl:X' raised broken_ctl.py line 2: AttributeError: ",
        ),
    ],
)
def test_cli_a_controller_that_breaks_gets_one_line(plugin_dir, source, line):
    (plugin_dir / "broken_ctl.py").write_text(source)
    run = subprocess.run(
        [sys.executable, "-m", "kit", "run", "intersection", "--controller", "broken_ctl:X", "--hours", "0.05"]
        + ["--no-model", "--fresh", "--db", str(plugin_dir / "kit.db")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode in (1, 2) and "Traceback" not in run.stderr and "internal error" not in run.stderr
    [said] = run.stderr.strip().splitlines()
    assert line in said, said
