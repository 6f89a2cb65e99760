"""A notebook executed top to bottom in its own kernel, kept alive so that graded tests can question it.

Student code only ever runs in that kernel: a test ships the *source* of a function that gathers values there
(:meth:`Lab.observe`) or asks for the value of an expression (:meth:`Lab.eval`), gets back plain JSON, and
judges it in its own process; the kernel's answers are untrusted data. :meth:`Lab.run` (a check with its
assertions, judged in the kernel) remains for grading files not yet moved over. With a
:class:`~course.grading.sandbox.Sandbox` the kernel runs inside bubblewrap.
The notebook runs with errors allowed (later exercises still count), a per-cell and a per-notebook time
limit, and a cap on stored output. A cell that hangs past an interrupt or kills the kernel
(``os._exit()``, a segfault, a signal) is skipped and the notebook is replayed without it in a new kernel,
so a student loses only what that cell defined.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from course.grading.sandbox import Sandbox

#: Mime type of the result a grading call publishes from inside the kernel.
RESULT_MIME = "application/vnd.edge-python.grading+json"
_TIMEOUT_NAME = "CellTimeout"

# Runs inside the student's kernel. It sees the notebook's names through a *copy* of the user namespace,
# so a check can neither overwrite a student's name nor leave its own behind.
_CALL = r"""
def __grading_call(kind, source, name, mime, arguments):
    import json, traceback
    from IPython import get_ipython
    from IPython.display import publish_display_data

    def plain(value):
        if hasattr(value, "tolist"):
            return value.tolist()
        if isinstance(value, (set, frozenset)):
            return sorted(value, key=repr)
        if hasattr(value, "isoformat"):
            return value.isoformat()
        raise TypeError(
            f"{name if kind == 'observe' else f'lab.eval({source!r})'} gave a {type(value).__name__}, which is not JSON-serialisable; "
            "return numbers, strings, lists or dicts"
        )

    namespace = dict(get_ipython().user_ns)
    filename = f"<grading: {name}>"
    try:
        if kind == "run":
            exec(compile(source, filename, "exec"), namespace)
            namespace[name]()
            result = {"ok": True}
        elif kind == "observe":
            exec(compile(source, filename, "exec"), namespace)
            args, kwargs = json.loads(arguments)
            value = namespace[name](*args, **kwargs)
            result = {"ok": True, "json": json.dumps(value, default=plain)}
        else:
            value = eval(compile(source, filename, "eval"), namespace)
            result = {"ok": True, "json": json.dumps(value, default=plain)}
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are a student's failures too
        frames = traceback.extract_tb(exc.__traceback__)
        lines = source.splitlines()
        at = [f for f in frames if f.filename == filename and 0 < (f.lineno or 0) <= len(lines)]
        inner = frames[-1] if frames else None
        text = str(exc).strip()
        if isinstance(exc, NotImplementedError) and not text:
            text = "not written yet (the `raise NotImplementedError()` placeholder is still there)"
        if len(text) > 300:
            text = text[:300] + "..."
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        if inner is not None and inner.filename != filename and inner.name not in ("<module>", "__grading_call"):
            message += f" (raised in {inner.name}())"
        if at and not (isinstance(exc, AssertionError) and text):
            message += f" at `{lines[at[-1].lineno - 1].strip()}`"
        result = {"ok": False, "type": type(exc).__name__, "message": message}
    publish_display_data({mime: result})
"""
# exit() in a notebook stops the kernel's event loop a moment later; during grading it ends the cell instead.
_PREAMBLE = r"""
def __grading_exit():
    raise SystemExit("exit() would stop the notebook's kernel; the grader kept it running")
get_ipython().ask_exit = __grading_exit
del __grading_exit
"""
_CALL_LINE = (
    "try:\n    __grading_call({kind!r}, {source!r}, {name!r}, {mime!r}, {arguments!r})\n"
    "finally:\n    del __grading_call\n"
)
#: Largest answer (characters of JSON) a kernel may give to one question; more is refused, not parsed.
ANSWER_LIMIT = 2_000_000


@dataclass
class CellProblem:
    """Something that went wrong in one cell while the notebook ran top to bottom."""

    cell: int  #: 1-based position of the cell in the notebook, as a student counts them
    kind: str  #: "error", "timeout", "crash" or "skipped"
    message: str
    snippet: str  #: the cell's first line, so the student can find it

    def __str__(self) -> str:
        return f"cell {self.cell} (`{self.snippet}`): {self.message}"


def _capped_client_class():
    """NotebookClient that stops storing a cell's output past a size limit (imported lazily: nbclient)."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_output

    class CappedClient(NotebookClient):
        output_limit = 100_000
        answer_cell = -1  #: index of the cell grading calls run in; answers published anywhere else are output
        answer_taken = False  #: a call's first answer is kept; the kernel has no say over how many more

        def output(self, outs, msg, display_id, cell_index):  # type: ignore[override]
            content = msg["content"]
            data = content.get("data") or {}
            if RESULT_MIME in data and cell_index == self.answer_cell:
                if self.answer_taken:
                    return None
                self.answer_taken = True
                answer = data[RESULT_MIME]
                if isinstance(answer, dict):  # only the fields an answer has, bounded: the grader's memory is shared
                    answer = {k: v for k, v in answer.items() if k in ("ok", "json", "type", "message")}
                    for key in ("type", "message"):
                        if isinstance(answer.get(key), str):
                            answer[key] = answer[key][:1000]
                    size = len(answer["json"]) if isinstance(answer.get("json"), str) else 0
                    if size > ANSWER_LIMIT:
                        note = f"the answer has {size} characters of JSON; at most {ANSWER_LIMIT} are read"
                        answer = {"ok": False, "type": "", "message": note}
                else:
                    answer = {"malformed": True}
                msg = dict(msg, content=dict(content, data={RESULT_MIME: answer}))
                return super().output(outs, msg, display_id, cell_index)
            size = len(content.get("text", "")) + sum(len(str(v)) for v in data.values())
            used = self.output_used.get(cell_index, 0)
            if used + size > self.output_limit:
                if used <= self.output_limit:
                    outs.append(
                        new_output(
                            "stream", name="stderr", text=f"[output beyond {self.output_limit} characters dropped]\n"
                        )
                    )
                    self.output_used[cell_index] = self.output_limit + 1
                return None
            self.output_used[cell_index] = used + size
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


def _sandboxed_manager_class(sandbox: Sandbox, private: Path):
    """A KernelManager whose kernel process starts inside ``sandbox`` with a clean environment."""
    from jupyter_client.manager import AsyncKernelManager

    class SandboxedKernelManager(AsyncKernelManager):  # nbclient polls its channels asynchronously
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            sandbox.prepare(private)  # the connection file was just written, readable by its owner only
            kw["env"] = sandbox.environment(private)
            kw["cwd"] = str(private)
            # In its own process namespace the kernel's parent is pid 1, which ipykernel would take for an
            # orphaned kernel; the sandbox dies with the grader anyway (--die-with-parent).
            argv = ["env", "JPY_PARENT_PID=1", *kernel_cmd]
            await super()._async_launch_kernel(sandbox.command(argv, private=private), **kw)

        async def _async_signal_kernel(self, signum: int) -> None:
            # The process jupyter_client started is bubblewrap; an interrupt is meant for the kernel inside
            # (the only child of the sandbox's init). Any other signal (a kill) goes to bubblewrap, which
            # takes the whole sandbox down with it.
            kernel = _grandchild(self.provisioner.process.pid) if signum == signal.SIGINT else None
            if kernel is None:
                await super()._async_signal_kernel(signum)
                return
            try:
                os.kill(kernel, signum)
            except ProcessLookupError:
                pass

    return SandboxedKernelManager


def _grandchild(pid: int) -> int | None:
    """The first child of ``pid``'s first child, from /proc (Linux)."""
    for _ in range(2):
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return None
        if not children:
            return None
        pid = int(children[0])
    return pid


class Lab:
    """One notebook executed in a fresh kernel, alive until :meth:`close`.

    >>> with Lab("solutions/01_gpio_outputs.ipynb") as lab:    # doctest: +SKIP
    ...     lab.eval("len(CYCLE)")
    4

    A missing or unreadable notebook, or a kernel that will not start, does not raise here: it is kept
    in :attr:`problem`, and every :meth:`run` / :meth:`eval` fails with that message instead.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        cell_timeout: float = 120,
        notebook_timeout: float = 600,
        call_timeout: float = 60,
        output_limit: int = 100_000,
        max_restarts: int = 5,
        cwd: str | Path | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.path = Path(path)
        self.cell_timeout = cell_timeout
        self.notebook_timeout = notebook_timeout
        self.call_timeout = call_timeout
        self.output_limit = output_limit
        self.max_restarts = max_restarts
        self.cwd = Path(cwd) if cwd else None
        self.sandbox = sandbox
        self.problem: str | None = None
        self.cell_problems: dict[int, CellProblem] = {}
        self.seconds = 0.0  #: wall time spent executing the notebook (including replays)
        self.restarts = 0
        self._client = None
        self._cells: list = []
        self._skip: set[int] = set()
        self._needs_replay = False
        self._tmp = None

    # ---- life cycle -------------------------------------------------------------------------------
    def start(self) -> Lab:
        """Execute the notebook top to bottom; never raises for anything the notebook does."""
        import nbformat

        if not self.path.exists():
            self.problem = f"no notebook {self.path.name} in {self.path.parent} (not submitted?)"
            return self
        try:
            nb = nbformat.read(self.path, as_version=4)
        except Exception as exc:  # a broken file is the student's failure, not the grader's
            self.problem = f"{self.path.name} is not a readable notebook: {type(exc).__name__}: {str(exc)[:200]}"
            return self
        self._cells = list(nb.cells)
        self._scratch = nbformat.v4.new_code_cell("")
        nb.cells = self._cells + [self._scratch]
        self._nb = nb
        self._execute(deadline=time.monotonic() + self.notebook_timeout)
        return self

    def close(self) -> None:
        """Shut the kernel down (idempotent)."""
        self._stop_kernel()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- questions from tests ---------------------------------------------------------------------
    def run(self, func: Callable[[], Any], *, timeout: float | None = None) -> None:
        """Run ``func`` inside the kernel, where it sees the notebook's names.

        The verdict comes from the kernel, so a student who controls the kernel can forge it: prefer
        :meth:`observe`, which returns values for the test to judge.

        Only the function's source travels, so it must be self-contained (imports inside it, no closures).
        Raises ``AssertionError`` with the kernel-side exception (type and message) when it fails.
        """
        __tracebackhide__ = True
        source = textwrap.dedent(inspect.getsource(func))
        self._call("run", source, func.__name__, timeout, what=f"{func.__name__}()")

    def eval(self, expr: str, *, timeout: float | None = None) -> Any:
        """The value of ``expr`` evaluated in the notebook's namespace, as JSON (numpy becomes lists).

        The value is an observation: the test decides, in its own process, whether it is right.
        """
        __tracebackhide__ = True
        result = self._call("eval", expr, "eval", timeout, what=f"lab.eval({expr!r})")
        return _parse_answer(result, f"lab.eval({expr!r})")

    def observe(self, func: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Call ``func(*args, **kwargs)`` inside the kernel and return what it returns, as JSON.

        ``func`` gathers observations (it calls the student's functions and reads what they did); it holds
        no assertions. The test judges the returned values in the grader's own process, so nothing the
        notebook does to its kernel (patched ``json``, display or builtins, harness functions found
        through ``gc``) can turn a failure into a pass: a forged observation still has to be the right
        answer to inputs the test drew at random (see the ``grading_rng`` fixture). Arguments travel as
        JSON; like :meth:`run`, only the function's source travels, so it must be self-contained.
        """
        __tracebackhide__ = True
        source = textwrap.dedent(inspect.getsource(func))
        arguments = json.dumps([list(args), kwargs])
        result = self._call("observe", source, func.__name__, timeout, what=f"{func.__name__}()", arguments=arguments)
        return _parse_answer(result, f"{func.__name__}()")

    # ---- reporting --------------------------------------------------------------------------------
    def notebook_report(self) -> dict[str, Any]:
        """What happened while the notebook ran: for the results file and the student's feedback."""
        return {
            "path": str(self.path),
            "seconds": round(self.seconds, 3),
            "restarts": self.restarts,
            "problem": self.problem,
            "cells": [asdict(p) | {"text": str(p)} for _, p in sorted(self.cell_problems.items())],
        }

    def _hint(self) -> str:
        """Why names may be missing: the cells that did not run cleanly (worst first)."""
        rank = {"crash": 0, "timeout": 1, "skipped": 2, "error": 3}
        worst = sorted(self.cell_problems.values(), key=lambda p: (rank.get(p.kind, 9), p.cell))[:2]
        return "; ".join(str(p) for p in worst)

    # ---- kernel handling --------------------------------------------------------------------------
    def _start_kernel(self) -> None:
        import tempfile

        self._stop_kernel()
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="lab-")
        cwd = str(self.cwd or self._tmp.name)
        extra = {}
        if self.sandbox is not None:
            cwd = self._sandbox_folder()
            extra["kernel_manager_class"] = _sandboxed_manager_class(self.sandbox, Path(cwd))
        client = _capped_client_class()(
            self._nb,
            **extra,
            timeout=int(self.cell_timeout),
            kernel_name="python3",
            allow_errors=True,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": _TIMEOUT_NAME, "evalue": "", "traceback": []},
            shutdown_kernel="immediate",
            resources={"metadata": {"path": cwd}},
        )
        client.output_limit = self.output_limit
        client.output_used = {}
        client.on_cell_executed = self._remember_reply
        self._client = client
        client.km = client.create_kernel_manager()
        # Unix sockets in a private folder: no TCP ports to collide between parallel graders.
        client.km.transport = "ipc"
        client.km.ip = os.path.join(cwd if self.sandbox else self._tmp.name, "kernel")
        if self.sandbox is not None:
            client.km.connection_file = os.path.join(cwd, "kernel.json")
        client.start_new_kernel()
        client.start_new_kernel_client()
        self._scratch.source = _PREAMBLE
        self._exec(self._scratch, len(self._cells), timeout=30, store_history=False)

    def _sandbox_folder(self) -> str:
        """The kernel's one writable folder: a private copy of the notebook, its home, its sockets."""
        import shutil

        folder = Path(self._tmp.name) / "work"
        if folder.exists():  # a replay after a crash starts from a clean folder again
            shutil.rmtree(folder, ignore_errors=True)
        (folder / "home").mkdir(parents=True)
        shutil.copyfile(self.path, folder / self.path.name)
        self.sandbox.prepare(folder)
        return str(folder)

    def _stop_kernel(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.km is not None:
            try:
                client._cleanup_kernel()
            except Exception:  # a kernel that is already gone is what we wanted
                pass

    def _remember_reply(self, cell, cell_index, execute_reply) -> None:
        self._last_reply = (execute_reply or {}).get("content", {})

    def _exec(self, cell, index: int, timeout: float, store_history: bool = True, iopub_timeout: int = 4) -> str:
        """Execute one cell; 'ok', 'error', 'timeout' or 'dead'."""
        from nbclient.exceptions import DeadKernelError

        client = self._client
        client.timeout = max(1, int(timeout))
        client.iopub_timeout = iopub_timeout  # also how long an interrupted cell gets to wind down
        client.output_used[index] = 0
        client.answer_cell, client.answer_taken = len(self._cells), False
        self._last_reply = {}
        try:
            client.execute_cell(cell, index, store_history=store_history)
        except DeadKernelError:
            return "dead"
        if self._last_reply.get("ename") == _TIMEOUT_NAME:
            return "timeout"
        return "error" if self._last_reply.get("status") == "error" else "ok"

    def _settled(self) -> bool:
        """After a timeout and interrupt: is the kernel idle and answering again?"""
        self._scratch.source = "pass"
        return self._exec(self._scratch, len(self._cells), timeout=3, store_history=False, iopub_timeout=1) == "ok"

    def _execute(self, deadline: float) -> None:
        started = time.monotonic()
        try:
            self._execute_until_clean(deadline)
        finally:
            self.seconds += time.monotonic() - started

    def _execute_until_clean(self, deadline: float) -> None:
        while True:
            try:
                self._start_kernel()
            except Exception as exc:
                self.problem = f"the notebook's kernel did not start: {type(exc).__name__}: {str(exc)[:200]}"
                self._stop_kernel()
                return
            if not self._run_cells(deadline):
                self._needs_replay = False
                return
            self._stop_kernel()
            if self.restarts >= self.max_restarts or time.monotonic() >= deadline:
                self.problem = (
                    f"the notebook's kernel had to be restarted {self.restarts} times "
                    f"({self._hint()}); grading stopped there"
                )
                return
            self.restarts += 1

    def _run_cells(self, deadline: float) -> bool:
        """Execute every cell not known to be fatal; True when the kernel must be restarted and replayed."""
        for index, cell in enumerate(self._cells):
            if cell.cell_type != "code" or not cell.source.strip() or index in self._skip:
                continue
            snippet = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")[:60]
            remaining = deadline - time.monotonic()
            if remaining < 1:
                self.cell_problems[index] = CellProblem(
                    index + 1,
                    "skipped",
                    f"not run: the whole notebook may take {self.notebook_timeout:.0f} s and that time was used up",
                    snippet,
                )
                continue
            outcome = self._exec(cell, index, min(self.cell_timeout, remaining))
            self.cell_problems.pop(index, None)
            if outcome == "error":
                error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
                ename = self._last_reply.get("ename") or (error or {}).get("ename", "Error")
                evalue = str(self._last_reply.get("evalue") or (error or {}).get("evalue", ""))[:200]
                self.cell_problems[index] = CellProblem(index + 1, "error", f"{ename}: {evalue}".rstrip(": "), snippet)
            elif outcome == "timeout":
                limit = min(self.cell_timeout, remaining)
                self.cell_problems[index] = CellProblem(
                    index + 1, "timeout", f"still running after {limit:.0f} s (an endless loop?); interrupted", snippet
                )
                self._skip.add(index)  # should the notebook be replayed, this cell would only hang again
                if not self._settled():
                    self.cell_problems[index].message += " but it would not stop, so it was skipped"
                    return True
            elif outcome == "dead":
                self.cell_problems[index] = CellProblem(
                    index + 1,
                    "crash",
                    "the kernel died running this cell (os._exit(), a crash, out of memory?); "
                    "the notebook was run again without it",
                    snippet,
                )
                self._skip.add(index)
                return True
        return False

    def _call(
        self, kind: str, source: str, name: str, timeout: float | None, *, what: str, arguments: str = "[[], {}]"
    ) -> dict:
        __tracebackhide__ = True
        if self.problem is None and self._needs_replay:
            self._execute(deadline=time.monotonic() + self.notebook_timeout)
        if self.problem is not None:
            raise AssertionError(self.problem)
        limit = timeout or self.call_timeout
        self._scratch.source = _CALL + _CALL_LINE.format(
            kind=kind, source=source, name=name, mime=RESULT_MIME, arguments=arguments
        )
        outcome = self._exec(self._scratch, len(self._cells), limit, store_history=False)
        if outcome == "dead":
            self._needs_replay = True
            self.restarts += 1
            if self.restarts > self.max_restarts:
                self.problem = "the notebook's kernel died too many times; grading stopped there"
            raise AssertionError(
                f"the notebook's kernel died while running {what} (os._exit(), a crash, out of memory?)"
            )
        if outcome == "timeout":
            if not self._settled():
                self._stop_kernel()
                self._needs_replay = True
                self.restarts += 1
            raise AssertionError(f"{what} did not finish within {limit:.0f} s (an endless loop, or waiting forever?)")
        result = next(
            (
                o["data"][RESULT_MIME]
                for o in self._scratch.get("outputs", [])
                if o.get("output_type") == "display_data" and RESULT_MIME in o.get("data", {})
            ),
            None,
        )
        if result is None:
            raise AssertionError(
                f"{what} gave no answer from the notebook's kernel ({self._last_reply.get('ename', 'no result')})"
            )
        result = _well_formed(result, what)
        if not result["ok"]:
            message = result["message"]
            if result.get("type") == "NameError" and self.cell_problems:
                message += f" -- these cells of the notebook failed: {self._hint()}"
            raise AssertionError(message)
        return result


def _well_formed(result: Any, what: str) -> dict:
    """The kernel's answer, checked for shape before anything reads it: it is untrusted data."""
    if not isinstance(result, dict) or not isinstance(result.get("ok"), bool):
        raise AssertionError(f"{what}: the notebook's kernel gave a malformed answer")
    if not result["ok"]:
        message = result.get("message")
        result = {
            "ok": False,
            "type": str(result.get("type", ""))[:100],
            "message": (message if isinstance(message, str) else "failed")[:1000],
        }
    return result


def _parse_answer(result: dict, what: str) -> Any:
    text = result.get("json")
    if not isinstance(text, str):
        raise AssertionError(f"{what}: the notebook's kernel gave no value")
    if len(text) > ANSWER_LIMIT:
        raise AssertionError(f"{what} gave an answer of {len(text)} characters; at most {ANSWER_LIMIT} are read")
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError(f"{what}: the notebook's kernel gave a value that is not JSON") from None
