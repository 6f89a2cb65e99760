"""A candidate model checked and canaried in a process of its own, at low priority: the control thread never waits.

The updater's heavy work on a delivered file (loading it, the load test, one inference per canary frame)
runs C++ code that holds Python's interpreter lock, so on the app's process it delays the control thread,
and on a busy CPU the scheduler gives it the same share as the control loop. Here it runs in a child
process started with ``spawn`` (no copy of the app's threads or locks) and ``nice``-d, so the kernel runs
the control loop first; the updater's thread only sends frames down a pipe and waits for the answer
(waiting releases the lock).

    >>> proc = CandidateProcess()                                          # doctest: +SKIP
    >>> proc.verify("blobs/ab12....tflite", Signature(), sha256="ab12...")  # CandidateError when refused  # doctest: +SKIP
    >>> probs, ms = proc.predict(frames)          # (n, 3) queue probabilities, per-frame milliseconds    # doctest: +SKIP
    >>> proc.close()                                                        # doctest: +SKIP

The updater starts one when its thread starts (before the control loop: starting a process costs the
parent a fork and page-table copy) and keeps it for every later candidate.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import numpy as np

from kit.ml.ota.verify import CandidateError, Signature

NICE = 10  # added to the child's niceness: the control loop's process keeps the CPU when both want it
TIMEOUT_S = 120.0  # a child that answers nothing for this long is stopped and the candidate refused


def _serve(conn: Any, nice: int) -> None:
    """The child's loop: ("verify", path, frame, outputs, sha256, card) and ("predict", frames) until "quit"."""
    import time

    try:
        os.nice(nice)
    except OSError:  # not allowed: still a process of its own, without the interpreter lock of the app
        pass
    import kit.ml.host  # noqa: F401 - the runtime's import now, so the first candidate is checked at once
    from kit.ml.ota.verify import queue_of, verify_candidate

    host = None
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg[0] == "quit":
            return
        try:
            if msg[0] == "ping":
                conn.send(("ok", None))
            elif msg[0] == "verify":
                _, path, frame, outputs, sensors, sha256, card = msg
                expected = Signature(tuple(frame), dict(outputs), tuple(sensors))
                host = verify_candidate(path, expected, sha256=sha256, card=card)
                conn.send(("ok", None))
            elif msg[0] == "predict":
                probs, ms = [], []
                for frame, vector in zip(msg[1], msg[2]):
                    t0 = time.perf_counter()
                    probs.append(queue_of(host, frame, vector))
                    ms.append((time.perf_counter() - t0) * 1e3)
                conn.send(("ok", (np.stack(probs), ms)))
        except CandidateError as exc:
            conn.send(("refused", str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which refuses the candidate
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class CandidateProcess:
    """One candidate's checks and canary inferences in a low-priority child process (see the module docstring)."""

    def __init__(self, nice: int = NICE) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, nice), name="kit-ota-candidate", daemon=True)
        self._proc.start()
        child.close()
        self.broken = False  # True once the child died or hung: the updater starts another for the next candidate

    def _ask(self, *msg: Any) -> Any:
        try:
            self._conn.send(msg)
            if not self._conn.poll(TIMEOUT_S):
                self.broken = True
                raise CandidateError(f"the candidate's process answered nothing in {TIMEOUT_S:g} s")
            status, value = self._conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            self.broken = True
            code = self._proc.exitcode
            raise CandidateError(f"the candidate's process ended ({exc or 'exit code ' + str(code)})") from None
        if status == "refused":
            raise CandidateError(value)
        if status == "error":
            raise CandidateError(f"the candidate's process failed: {value}")
        return value

    def wait_ready(self) -> bool:
        """Wait until the child has started and imported the runtime; False (and ``broken``) when it did not."""
        try:
            self._ask("ping")
            return True
        except CandidateError:
            return False

    def verify(self, path: str | Path, expected: Signature, *, sha256: str, card: bytes | None) -> None:
        """Every check of :func:`kit.ml.ota.verify.verify_candidate`, in the child; CandidateError when refused."""
        self._ask(
            "verify", str(path), tuple(expected.frame), dict(expected.outputs), tuple(expected.sensors), sha256, card
        )

    def predict(self, frames: list[Any], sensors: list[Any] | None = None) -> tuple[np.ndarray, list[float]]:
        """The candidate's queue probabilities (n, 3) on ``frames`` and its milliseconds per frame (measured there);
        ``sensors``, each frame's sensor vector (or None), for a fused candidate."""
        vectors = [None if v is None else np.asarray(v, np.float32) for v in (sensors or [None] * len(frames))]
        return self._ask("predict", [np.asarray(f) for f in frames], vectors)

    def close(self) -> None:
        try:
            self._conn.send(("quit",))
        except (OSError, BrokenPipeError):
            pass
        self._proc.join(5.0)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5.0)
        self._conn.close()
