"""The clickable simulator in a real browser: lab 00 in JupyterLab in headless Chromium, its button clicked.

JupyterLab runs on a free loopback port with a fresh workspace folder (restored tabs would raise a kernel
dialog); Playwright drives Debian's chromium (``apt-get install chromium``; ``playwright install`` cannot
download browsers here). The notebook is the student's lab 00 exactly as ``labs/`` ships it, exercises not done:
like a student, the test runs the cell that makes the board and then the simulator cell (Shift+Enter on each),
so the simulator must work before any exercise is solved.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.slow


def _need(thing: str, ok: bool) -> None:
    if ok:
        return
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI must have {thing} (.ci/run installs it)")
    pytest.skip(f"{thing} is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _student_lab00(folder: Path) -> Path:
    """labs/00_welcome.ipynb as a student gets it (the build names the edge-python kernel)."""
    path = folder / "welcome.ipynb"
    shutil.copy(ROOT / "labs" / "00_welcome.ipynb", path)
    source = "".join(c.source for c in nbformat.read(path, as_version=4).cells)
    assert "raise NotImplementedError()" in source, "expected the blank student lab, not a solution"
    return path


@pytest.fixture
def jupyterlab(tmp_path):
    _need("chromium", Path(CHROMIUM).exists())
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("ipywidgets")
    port, token = _free_port(), "edge-python-browser-test"
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        MPLBACKEND="Agg",
    )
    # the `edge-python` kernel as `make lab` installs it, here in a private data folder
    spec = tmp_path / "data" / "kernels" / "edge-python"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (Edge Python)",
                "language": "python",
            }
        )
    )
    env["JUPYTER_PATH"] = str(tmp_path / "data")
    (tmp_path / "work").mkdir()
    _student_lab00(tmp_path / "work")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp_path / 'work'}",
            "--ServerApp.open_browser=False",
            "--LabApp.news_url=",
            "--LabApp.extension_manager=readonly",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        + (["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "server.log", "wb"),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "JupyterLab did not start: " + (tmp_path / "server.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/lab/tree/welcome.ipynb?token={token}"
    finally:
        _stop(server)


def _stop(server: subprocess.Popen) -> None:
    """The server and its kernels: they share its session (process group)."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, None)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            pass
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _picture(page) -> str:
    return page.locator(".widget-html svg").first.evaluate("node => node.outerHTML")


def test_clicking_the_button_widget_changes_the_picture(jupyterlab, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(jupyterlab)
            page.locator(".jp-Notebook").first.wait_for(timeout=90_000)
            page.get_by_text("Python 3 (Edge Python) | Idle").wait_for(timeout=90_000)  # the named kernel is up
            for marker in ("board = Board(seed=0)", "Simulator(board)"):  # run these two cells, as a student would
                cell = page.locator(".jp-CodeCell", has_text=marker).first
                cell.scroll_into_view_if_needed()
                cell.locator(".cm-content").click()
                page.keyboard.press("Shift+Enter")
            press = page.locator("button.widget-button", has_text="Press the button")
            press.wait_for(timeout=240_000)
            press.scroll_into_view_if_needed()
            before = _picture(page)
            assert "<svg" in before
            page.screenshot(path=str(tmp_path / "before.png"))
            press.click()
            deadline = time.monotonic() + 60
            while _picture(page) == before and time.monotonic() < deadline:
                page.wait_for_timeout(250)
            after = _picture(page)
            page.screenshot(path=str(tmp_path / "after.png"))
            if os.environ.get("KIT_BROWSER_SHOTS"):
                for name in ("before.png", "after.png"):
                    shutil.copy(tmp_path / name, Path(os.environ["KIT_BROWSER_SHOTS"]) / name)
            assert after != before, "the picture did not change after the button was clicked"
            # the lab's when_pressed callback ran in the kernel: the pedestrian green lamp is now lit
            assert 'id="ped-green" data-lit="0"' in before and 'id="ped-green" data-lit="1"' in after
        finally:
            browser.close()
