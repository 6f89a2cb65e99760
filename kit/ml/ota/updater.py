"""The device side of over-the-air models: one worker thread; the control thread never waits for it.

    >>> updater = Updater("models-folder", factory=host)          # doctest: +SKIP
    >>> host = updater.start() or host                            # the model to run after a restart  # doctest: +SKIP
    >>> updater.offer(DesiredModel.from_dict(shadow["desired"]["model"]))    # or offer_file(path) # doctest: +SKIP
    ... # in the model loop, on the control thread, per frame (no I/O, no waiting):
    >>> updater.observe(frame, probs, ms, sensor_class)           # doctest: +SKIP
    >>> host = updater.swap() or host                             # a committed new model, between two frames  # doctest: +SKIP

The worker (:meth:`step`, looped by :meth:`start_thread`) downloads the file (``*.part``), checks its
sha256 and card, loads it and runs the load test (:mod:`kit.ml.ota.verify`), then runs it as a shadow on
the frames :meth:`observe` handed over (:mod:`kit.ml.ota.canary`). A promoted model is committed on
disk first (:mod:`kit.ml.ota.slots`), then handed to the model loop, which takes it at its next frame:
no frame is ever scored by a half-loaded model and no control tick waits. During probation a drift alarm
that the canary did not see, or a drop in confidence, rolls it back (committed, with the reason); the
previous model is kept loaded for that. A refused or rolled-back file is not tried again.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kit.ml.ota.canary import Canary, CanaryPolicy, Verdict
from kit.ml.ota.desired import DesiredModel, kit_at_least
from kit.ml.ota.slots import ModelSlots
from kit.ml.ota.verify import CandidateError, Signature, load_host, queue_of, signature_of, verify_candidate

log = logging.getLogger("kit.ota")
# a library: its warnings go where the program sends its logs (the app configures logging), never to stderr
# through logging's last-resort handler (a notebook shows the status the lab prints instead)
log.addHandler(logging.NullHandler())

MAX_PENDING_FRAMES = 256  # frames waiting for the canary; older ones are dropped, never the control tick
FRAMES_PER_STEP = 4  # canary inferences per step of the thread, which then pauses (see start_thread)
FRAMES_PER_CHILD_STEP = 16  # frames sent at once to a candidate's own process (kit.ml.ota.worker)


class S3Source:
    """Model files from S3 (the bucket of ``kit.cloud.config``), streamed in chunks."""

    def __init__(self, bucket: str | None = None, client: Any = None) -> None:
        from kit.cloud.config import client as make_client
        from kit.cloud.config import current

        self.bucket = bucket or current().bucket
        self.client = client or make_client("s3")

    def chunks(self, key: str) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        yield from body.iter_chunks(1 << 16)

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


class Updater:
    """Over-the-air model updates for one device (see the module docstring).

    :param folder: the device's models folder (:class:`ModelSlots`), next to its store.
    :param factory: the host the app runs when nothing was delivered (its configured model); its
        signature is what a candidate must match.
    :param source: where desired models come from (:class:`S3Source`), made on first use.
    :param policy: the canary's rules (:class:`CanaryPolicy`).
    :param on_phase: called with the name of each phase as it starts (status; tests kill the process there).
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        factory: Any = None,
        source: Any = None,
        policy: CanaryPolicy | None = None,
        signature: Signature | None = None,
        on_phase: Callable[[str], None] | None = None,
        kit_version: str | None = None,
        isolate: bool | None = None,
    ) -> None:
        import kit

        self.slots = ModelSlots(folder)
        self.factory = factory
        self.source = source
        self.policy = policy or CanaryPolicy()
        self.signature = signature or (signature_of(factory) if factory is not None else Signature())
        self.on_phase = on_phase or (lambda phase: None)
        self.kit_version = kit_version or kit.__version__
        #: check and canary a candidate in a low-priority process of its own (kit.ml.ota.worker); None = when
        #: the updater runs on its thread beside a control loop, not when a caller steps it
        self.isolate = isolate
        self.phase = "idle"
        self.reason = ""
        self.running: dict[str, Any] | None = None  # committed entry {version, sha256}; None = factory
        self.host: Any = factory
        self.previous: dict[str, Any] | None = None
        self.previous_host: Any = None
        self.refused: dict[str, str] = {}
        self.swaps = 0
        self.rollbacks = 0
        self._lock = threading.Lock()
        self._wanted: tuple[DesiredModel | None, Path | None] | None = None
        self._frames: collections.deque = collections.deque(maxlen=MAX_PENDING_FRAMES)
        self._pending: Any = None  # a host the model loop takes at its next frame
        self._candidate: Any = None
        self._candidate_entry: dict[str, Any] | None = None
        self._canary: Canary | None = None
        self._probation: dict[str, Any] | None = None
        self._drift = False
        #: a drift alarm in the window before the canary began or during it: the candidate was chosen in drift
        #: (e.g. to fix it), so an alarm in its probation is not news
        self._canary_drift = False
        self._thread: threading.Thread | None = None
        self._worker: Any = None  # kit.ml.ota.worker.CandidateProcess when isolated
        self._stop = threading.Event()
        self._wake = threading.Event()

    # -- start-up ------------------------------------------------------------------------------
    def start(self) -> Any:
        """Recover the folder after a start or a crash; the delivered host to run, or None for the factory model."""
        entry = self.slots.recover()
        for event in self.slots.state()["events"]:
            if event.get("event") in ("rejected", "rolled back") and event.get("sha256"):
                self.refused[event["sha256"]] = event.get("reason", "")
        if entry is None:
            self.running, self.host = None, self.factory
            return None
        try:
            host = verify_candidate(self.slots.blob(entry["sha256"]), self.signature, sha256=entry["sha256"])
        except CandidateError as exc:  # e.g. the runtime was changed under it: back to the factory model
            self.slots.commit(None, None, "recovered", f"delivered model {entry['version']} no longer loads: {exc}")
            self.running, self.host = None, self.factory
            return None
        self.running, self.host = entry, host
        self.previous = self.slots.state().get("previous")
        if entry.get("confirmed") is False:
            # swapped but killed before its probation ended: the probation starts again (the previous model is
            # loaded from its file if it must come back)
            self._probation = {
                "frames": 0,
                "confidence": [],
                "previous": [],
                "drift": 0,
                "drift_before": bool(entry.get("drift_before", False)),
                "baseline": float(entry.get("baseline", 0.0)),
            }
            self.phase, self.reason = "probation", f"{entry['version']}: probation again after a restart"
        return host

    # -- the operator's requests (any thread) -----------------------------------------------------
    def offer(self, desired: DesiredModel) -> str:
        """Ask for ``desired``; returns what happens ("already running", "refused: ...", "queued")."""
        if self.running is not None and self.running["sha256"] == desired.sha256:
            return "already running"
        if self._candidate_entry is not None and self._candidate_entry["sha256"] == desired.sha256:
            return "in canary"
        if desired.sha256 in self.refused:
            return f"refused before: {self.refused[desired.sha256]}"
        if not kit_at_least(self.kit_version, desired.min_kit):
            reason = f"needs kit >= {desired.min_kit}, this device runs {self.kit_version}"
            self.refused[desired.sha256] = reason
            self.reason = reason
            return f"refused: {reason}"
        with self._lock:
            self._wanted = (desired, None)
        self._wake.set()
        return "queued"

    def offer_file(self, path: str | Path, *, version: str, card: str | Path | None = None) -> str:
        """A candidate made on the device (an adapted head, a ``.tflite``; or a fused model's folder, offered as
        its bundle, :mod:`kit.ml.ota.bundle`): same checks, canary and swap as a delivery."""
        import hashlib

        from kit.ml.ota.desired import model_key
        from kit.ml.ota.slots import sha256_file

        path = Path(path)
        if path.is_dir():
            from kit.ml.ota import bundle

            local: Path | bytes = bundle.pack(path)
            suffix, card = bundle.SUFFIX, card or path / bundle.CARD
            sha = hashlib.sha256(local).hexdigest()
        else:
            local, suffix, sha = path, ".tflite", sha256_file(path)
        desired = DesiredModel(version=version, key=model_key(sha, suffix), sha256=sha, min_kit="0.0.0")
        if desired.sha256 in self.refused:
            return f"refused before: {self.refused[desired.sha256]}"
        with self._lock:
            self._wanted = (desired, local)
            self._card_file = Path(card) if card else None
        self._wake.set()
        return "queued"

    def rollback(self, reason: str) -> bool:
        """Go back to the previous model now (from the worker thread or an operator); False when there is none."""
        if self.previous_host is None and self.previous is None and self.running is None:
            return False
        bad = self.running
        back_entry, back_host = self.previous, self.previous_host
        if back_host is None:
            back_host = (
                self.factory
                if back_entry is None
                else verify_candidate(
                    self.slots.blob(back_entry["sha256"]), self.signature, sha256=back_entry["sha256"]
                )
            )
        self.slots.commit(back_entry, None, "rolled back", reason)
        if bad is not None:
            self.refused[bad["sha256"]] = reason
            self.slots.note("rolled back", reason, sha256=bad["sha256"], version=bad["version"])
        self.running, self.host = back_entry, back_host
        self.previous, self.previous_host = None, None
        with self._lock:
            self._pending = back_host if back_host is not None else _FACTORY
        self._probation = None
        self.rollbacks += 1
        self.phase, self.reason = "rolled back", reason
        log.warning("model rolled back to %s: %s", back_entry["version"] if back_entry else "factory", reason)
        return True

    # -- the model loop's side (control thread: no I/O, no waiting) --------------------------------
    def observe(self, frame: Any, probs: Any, ms: float, sensor_class: int | None = None, sensors: Any = None) -> None:
        """The current model's result on a live frame, for the canary or the probation (dropped when idle).

        ``sensors`` is the frame's sensor vector (``kit.ml.sensors``): a fused candidate reads it too."""
        if self._canary is not None or self._probation is not None:
            self._frames.append((frame, np.asarray(probs), float(ms), sensor_class, sensors))

    def note_drift(self, alarm: bool) -> None:
        """The drift monitor's verdict on the last window (a new alarm in probation rolls the model back)."""
        self._drift = bool(alarm)
        if self._canary is not None and alarm:
            self._canary_drift = True
        if self._probation is not None and alarm:
            self._probation["drift"] += 1

    def swap(self) -> Any:
        """The host to use from this frame on, when a swap or rollback was committed since the last call; else None.

        The factory model comes back as the ``factory`` object given to the constructor.
        """
        if self._pending is None:
            return None
        with self._lock:
            host, self._pending = self._pending, None
        return self.factory if host is _FACTORY else host

    # -- the worker -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What the device reports as ``reported.model``."""
        running = self.running or {"version": "factory", "sha256": None}
        out = {
            "version": running["version"],
            "sha256": running["sha256"],
            "min_kit": running.get("min_kit"),
            "phase": self.phase,
            "reason": self.reason[:200],
            "swaps": self.swaps,
            "rollbacks": self.rollbacks,
        }
        # every key, null when there is nothing: a shadow merges a report into the last one, so a key left out
        # would keep its old value there (e.g. a candidate long swapped in)
        out["candidate"] = self._candidate_entry["version"] if self._candidate_entry is not None else None
        out["key"] = None
        if running["sha256"]:
            from kit.ml.ota.desired import model_key

            out["key"] = model_key(running["sha256"], self.slots.blob(running["sha256"]).suffix)
        return out

    def _set_phase(self, phase: str) -> None:
        self.phase = phase
        self.on_phase(phase)

    def step(self) -> bool:
        """Do the work that is due (a delivery, canary frames, probation); True when something was done."""
        with self._lock:
            wanted, self._wanted = self._wanted, None
        did = False
        if wanted is not None:
            self._prepare(*wanted)
            did = True
        if self._canary is not None:
            did |= self._canary_step()
        elif self._probation is not None:
            did |= self._probation_step()
        return did

    def _prepare(self, desired: DesiredModel, local: Path | bytes | None) -> None:
        sha = desired.sha256
        entry = {"version": desired.version, "sha256": sha, "min_kit": desired.min_kit}
        try:
            if not self.slots.has(sha):
                self._set_phase("downloading")
                if local is not None:
                    card_file = getattr(self, "_card_file", None)
                    card = card_file.read_bytes() if card_file else None
                    chunks = iter([local]) if isinstance(local, bytes) else _file_chunks(local)
                    self.slots.write_blob(sha, self._chunks(chunks), card, suffix=desired.suffix)
                else:
                    if self.source is None:
                        self.source = S3Source()
                    card = self.source.read(desired.card_key)
                    self.slots.write_blob(
                        sha, self._chunks(self.source.chunks(desired.key)), card, suffix=desired.suffix
                    )
        except OSError as exc:  # a digest that differs (KitFileError), a full disk: refused, said why
            self._refuse(entry, f"download: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - an endpoint problem: the request stays, tried again later
            self.phase, self.reason = "waiting", f"download failed ({type(exc).__name__}: {str(exc)[:120]}); retrying"
            with self._lock:
                if self._wanted is None:
                    self._wanted = (desired, local)
            return
        try:
            self._set_phase("verifying")
            card_path = self.slots.card(sha)
            card = card_path.read_bytes() if card_path.exists() else None
            if local is None and card is None:
                raise CandidateError("no model card came with it; deploy with `kit model deploy`, which uploads both")
            if self.isolate:
                from kit.ml.ota.worker import CandidateProcess

                if self._worker is None or self._worker.broken:
                    self._close_worker()
                    self._worker = CandidateProcess()
                host = self._worker
                host.verify(self.slots.blob(sha), self.signature, sha256=sha, card=card)
            else:
                host = verify_candidate(self.slots.blob(sha), self.signature, sha256=sha, card=card)
        except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, it is refused with the reason
            self._refuse(entry, str(exc) if isinstance(exc, CandidateError) else f"{type(exc).__name__}: {exc}")
            return
        self._drop_candidate()  # a newer delivery replaces a candidate still in its canary
        self._candidate, self._candidate_entry = host, entry
        self._canary = Canary(self.policy)
        self._canary_drift = self._drift
        self._frames.clear()
        self._set_phase("canary")
        self.reason = f"canary of {desired.version} on {self.policy.frames} live frames"

    def _chunks(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for i, chunk in enumerate(chunks):
            yield chunk
            if i == 0:
                self.on_phase("downloading-part")

    def _drop_candidate(self) -> None:
        # the candidate's process stays for the next delivery (started before control began), unless it broke
        if self._worker is not None and self._worker.broken:
            self._close_worker()

    def _close_worker(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def _refuse(self, entry: dict[str, Any], reason: str) -> None:
        self._drop_candidate()
        self.refused[entry["sha256"]] = reason
        self.slots.note("rejected", reason, sha256=entry["sha256"], version=entry["version"])
        self._candidate = self._candidate_entry = self._canary = None
        self.phase, self.reason = "rejected", f"{entry['version']}: {reason}"
        log.warning("model %s refused: %s", entry["version"], reason)

    def _drain(self, limit: int | None = None) -> list[tuple[Any, np.ndarray, float, int | None, Any]]:
        items = []
        while self._frames and (limit is None or len(items) < limit):
            try:
                items.append(self._frames.popleft())
            except IndexError:
                break
        return items

    def _canary_step(self) -> bool:
        from kit.ml.ota.worker import CandidateProcess

        canary = self._canary
        if isinstance(self._candidate, CandidateProcess):
            # the child does the inferences; this thread waits on a pipe (no interpreter lock held)
            items = self._drain(min(FRAMES_PER_CHILD_STEP, self.policy.frames - len(canary)))
            if items:
                try:
                    out, cand_ms = self._candidate.predict([item[0] for item in items], [item[4] for item in items])
                except CandidateError as exc:
                    self._refuse(self._candidate_entry, f"canary: {exc}")
                    return True
                for (_, probs, ms, sensor, _), q, c_ms in zip(items, out, cand_ms):
                    canary.add(probs, ms, q, c_ms, sensor)
            if canary.done:
                self._decide(canary.verdict())
            return bool(items)
        items = self._drain(None if self._thread is None else FRAMES_PER_STEP)
        for frame, probs, ms, sensor, vector in items:
            if canary.done:
                break
            t0 = time.perf_counter()
            try:
                queue = queue_of(self._candidate, frame, vector)
            except Exception as exc:  # noqa: BLE001
                self._refuse(self._candidate_entry, f"canary: predicting a live frame failed ({exc})")
                return True
            cand_ms = (time.perf_counter() - t0) * 1e3
            canary.add(probs, ms, queue, cand_ms, sensor)
        if canary.done:
            self._decide(canary.verdict())
        return bool(items)

    def _decide(self, verdict: Verdict) -> None:
        entry = self._candidate_entry
        if not verdict.promote:
            self._refuse(entry, "canary: " + verdict.reason)
            return
        from kit.ml.ota.worker import CandidateProcess

        self._set_phase("swapping")  # from here until the model loop's next frame: what bench/lifecycle.py times
        if isinstance(self._candidate, CandidateProcess):
            # the child checked it; this process loads it once (the model loop needs its own interpreter)
            try:
                local = load_host(self.slots.blob(entry["sha256"]))
            except Exception as exc:  # noqa: BLE001 - e.g. the file went missing: refused, said why
                self._refuse(entry, f"loading it for the swap failed ({type(exc).__name__}: {exc})")
                return
            self._drop_candidate()
            self._candidate = local
        old_entry, old_host = self.running, self.host
        baseline = verdict.figures.get("confidence_current", 0.0)
        # "confirmed": False until the probation ends, so that a restart in between runs the probation again
        drift_before = self._drift or self._canary_drift
        entry = {**entry, "confirmed": False, "baseline": round(float(baseline), 4), "drift_before": drift_before}
        self.slots.commit(entry, old_entry, "swapped", "canary: " + verdict.reason)  # on disk first
        self.on_phase("committed")
        self.running, self.host = entry, self._candidate
        self.previous, self.previous_host = old_entry, old_host if old_host is not None else None
        with self._lock:
            self._pending = self._candidate
        self.swaps += 1
        self._candidate = self._candidate_entry = self._canary = None
        self._probation = {
            "frames": 0,
            "confidence": [],
            "previous": [],
            "drift": 0,
            "drift_before": drift_before,
            "baseline": baseline,
        }
        self.phase, self.reason = "probation", f"swapped to {entry['version']}: {verdict.reason}"
        log.info("model swapped to %s (%s)", entry["version"], verdict.reason)

    def _probation_step(self) -> bool:
        items = self._drain(None if self._thread is None else FRAMES_PER_STEP)
        p = self._probation
        for frame, probs, _, _, vector in items:
            p["frames"] += 1
            p["confidence"].append(float(np.max(probs)))
            if self.previous_host is not None:
                # the previous model, kept loaded for a rollback, on the same frames: scenes change from one minute
                # to the next (at road works 8-frame means of one model range 0.59-0.84), so the canary's figure
                # of other frames is no fair baseline
                try:
                    p["previous"].append(float(np.max(queue_of(self.previous_host, frame, vector))))
                except Exception:  # noqa: BLE001 - e.g. no sensor vector for a fused previous model: the baseline
                    pass
        if p["drift"] and not p["drift_before"]:
            self.rollback(f"drift alarm after the swap to {self.running['version']} (none during its canary)")
            return True
        if p["frames"] >= self.policy.probation_frames:
            mean = float(np.mean(p["confidence"])) if p["confidence"] else p["baseline"]
            same = len(p["previous"]) == len(p["confidence"]) and p["previous"]
            before = float(np.mean(p["previous"])) if same else p["baseline"]
            if mean < before - self.policy.max_confidence_drop:
                self.rollback(
                    f"confidence on live frames {mean:.2f} after the swap, the previous model had {before:.2f}"
                    + (" on the same frames" if same else " in the canary")
                )
            else:
                self._probation = None
                self.running = {**self.running, "confirmed": True}
                self.slots.commit(self.running, self.previous, "confirmed", f"{p['frames']} frames of probation")
                self.slots.prune({e["sha256"] for e in (self.running, self.previous) if e})
                self.phase = "running"
                self.reason = f"{self.running['version']} confirmed after {p['frames']} frames (confidence {mean:.2f})"
        return bool(items)

    # -- the thread ------------------------------------------------------------------------------
    def start_thread(
        self,
        *,
        interval_s: float = 0.05,
        poll: Callable[[], None] | None = None,
        poll_s: float = 5.0,
        pause_s: float = 0.01,
    ) -> Updater:
        """Run :meth:`step` on a daemon thread (and ``poll`` every ``poll_s``: e.g. read the shadow).

        The thread pauses ``pause_s`` after each busy step (a few canary frames at most): a second thread
        that never pauses holds Python's interpreter lock often enough to delay the control thread by whole
        ticks on a busy CPU (measured by ``bench/lifecycle.py``)."""

        if self.isolate is None:
            self.isolate = True  # beside a control loop: the candidate's work goes to a process of its own
        if self.isolate and self._worker is None:
            from kit.ml.ota.worker import CandidateProcess

            # started now, before the control loop, and waited for: its start (a new interpreter importing the
            # runtime) would otherwise compete with the first control ticks
            self._worker = CandidateProcess()
            self._worker.wait_ready()

        def loop() -> None:
            next_poll = 0.0
            while not self._stop.is_set():
                try:
                    if poll is not None and time.monotonic() >= next_poll:
                        next_poll = time.monotonic() + poll_s
                        poll()
                    busy = self.step()
                except Exception as exc:  # noqa: BLE001 - the updater must outlive any one problem
                    self.reason = f"updater: {type(exc).__name__}: {str(exc)[:160]}"
                    log.warning("%s", self.reason)
                    busy = False
                if busy:
                    self._stop.wait(pause_s)
                else:
                    self._wake.wait(interval_s)
                    self._wake.clear()

        self._thread = threading.Thread(target=loop, name="kit-ota", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._close_worker()


_FACTORY = object()  # marks "back to the factory model" in the swap slot


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(1 << 14), b"")


def shadow_poller(updater: Updater, thing_name: str, client: Any = None) -> Callable[[], None]:
    """A ``poll`` for :meth:`Updater.start_thread`: read ``desired.model`` from the shadow, report ``reported.model``."""
    from kit.ml.ota.desired import DeployError

    state: dict[str, Any] = {"client": client, "reported": None}

    def poll() -> None:
        if state["client"] is None:
            from kit.cloud.config import client as make_client

            state["client"] = make_client("iot-data")
        c = state["client"]
        try:
            doc = json.loads(c.get_thing_shadow(thingName=thing_name)["payload"].read())
        except c.exceptions.ResourceNotFoundException:
            return  # no shadow yet (the app's cloud link makes the thing on its first report): nothing asked for

        wanted = (doc.get("state") or {}).get("desired", {}).get("model")
        if wanted is not None:
            try:
                updater.offer(DesiredModel.from_dict(wanted))
            except DeployError as exc:
                updater.reason = str(exc)
        status = updater.status()
        if status != state["reported"]:
            c.update_thing_shadow(
                thingName=thing_name, payload=json.dumps({"state": {"reported": {"model": status}}}).encode()
            )
            state["reported"] = status

    return poll
