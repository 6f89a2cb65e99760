"""Draining the outbox to the cloud: retries, exponential backoff with jitter, a circuit breaker.

* A batch that cannot be sent because the cloud is unreachable (connection refused, timeout,
  5xx, throttling) is kept and retried as the same batch, so it keeps its S3 key; it does not
  count against the item (an outage is not the reading's fault, nothing is dead-lettered).
* A setup problem (no such bucket, access denied) raises :class:`SyncError`; the data stays queued.
  No credentials at all (or a missing profile) raises botocore's own error, as any boto3 call would, and
  is never retried as if it were an outage.
* ``on_outage`` hears when the endpoint stops answering and when it answers again: once per change,
  not once per retry, so a loop left running for days logs an outage in one line.
* A batch the cloud refuses (other 4xx) is failed in the outbox, which dead-letters it after
  ``outbox_max_attempts``.
* After ``failures_to_open`` transport failures in a row the circuit opens: no request for
  ``open_seconds``; then one trial request (half-open) decides.
* Delays are ``uniform(0, min(cap, base * 2**n))`` ("full jitter") from a seeded generator.

    >>> from kit.cloud.sync import Backoff
    >>> [round(d, 3) for d in Backoff(base=1, cap=8, seed=0).delays(4)]
    [0.844, 1.516, 1.682, 2.071]
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kit.errors import KitRuntimeError

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
# What turning an item into an object's row can raise (a time no calendar has, a value JSON cannot hold).
_ENCODING_ERRORS = (ValueError, TypeError, OverflowError, OSError)


class Backoff:
    """Exponential backoff with full jitter, reproducible from ``seed``."""

    def __init__(self, *, base: float = 0.5, cap: float = 30.0, seed: int = 0) -> None:
        self.base, self.cap = base, cap
        self._rng = random.Random(seed)
        self.attempt = 0

    def next(self) -> float:
        """The next delay in seconds (grows with each call until :meth:`reset`)."""
        delay = self._rng.uniform(0, min(self.cap, self.base * 2**self.attempt))
        self.attempt += 1
        return delay

    def delays(self, n: int) -> list[float]:
        return [self.next() for _ in range(n)]

    def reset(self) -> None:
        self.attempt = 0


class CircuitBreaker:
    """Stops calling a dead endpoint: opens after ``failures_to_open`` failures in a row.

    >>> cb = CircuitBreaker(failures_to_open=2, open_seconds=10, clock=lambda: 0.0)
    >>> cb.failure(); cb.failure(); cb.state
    'open'
    """

    def __init__(
        self, *, failures_to_open: int = 3, open_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures_to_open, self.open_seconds, self.clock = failures_to_open, open_seconds, clock
        self.failures = 0
        self.opened_at: float | None = None
        self.opens = 0

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return CLOSED
        return HALF_OPEN if self.clock() - self.opened_at >= self.open_seconds else OPEN

    def allow(self) -> bool:
        """May a request be made now? (closed, or half-open for one trial)."""
        return self.state != OPEN

    def retry_in(self) -> float:
        """Seconds until the next trial is allowed (0 when allowed now)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.open_seconds - (self.clock() - self.opened_at))

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.failures_to_open:
            if self.state != OPEN:
                self.opens += 1
            self.opened_at = self.clock()


class SyncError(KitRuntimeError):
    """The cloud refuses every request (no bucket, no permission): retrying will not help."""


# Answers that mean "this device is set up wrong", not "this data is wrong": stop, keep the data.
SETUP_ERRORS = {
    "NoSuchBucket",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
    "AccountProblem",
}


def transient(exc: BaseException) -> bool:
    """True when ``exc`` means "the cloud is unreachable or busy", not "this data is refused" or "this device is
    set up wrong"."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, _setup_errors()):
        return False
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        return status >= 500 or status == 429 or "Throttl" in code or code in {"RequestTimeout", "SlowDown"}
    return isinstance(exc, (BotoCoreError, OSError))


def _setup_errors() -> tuple[type[BaseException], ...]:
    """botocore's errors that no request was made for: the device's setup is wrong, waiting will not fix it."""
    from botocore import exceptions as e

    return (e.NoCredentialsError, e.PartialCredentialsError, e.ProfileNotFound, e.NoRegionError)


@dataclass
class SyncReport:
    """What a :meth:`Sync.drain` did."""

    sent: int = 0  # outbox items acknowledged
    objects: int = 0  # objects written
    requests: int = 0  # upload attempts (PUTs tried)
    bytes: int = 0  # gzipped bytes of the objects written
    failures: int = 0  # failed attempts (transient or refused)
    refused: int = 0  # items failed in the outbox (4xx)
    waited: float = 0.0  # seconds spent in backoff
    depth: int = 0  # outbox depth at the end
    circuit: str = CLOSED
    keys: list[str] = field(default_factory=list, repr=False)

    def __str__(self) -> str:
        return (
            f"sent {self.sent} readings in {self.objects} objects ({self.bytes} bytes), {self.failures} failed "
            f"attempts, outbox depth {self.depth}, circuit {self.circuit}"
        )


class Sync:
    """Moves the outbox of a :class:`kit.store.Store` to S3 through an :class:`~kit.cloud.uploader.Uploader`.

    >>> import kit.cloud
    >>> from kit import Store
    >>> from kit.cloud.sync import Sync
    >>> with kit.cloud.LocalCloud():                       # doctest: +SKIP
    ...     store = Store(":memory:")
    ...     store.readings.append("pot", 0.5)
    ...     print(Sync(store).drain())
    sent 1 readings in 1 objects ...
    """

    def __init__(
        self,
        store: Any,
        uploader: Any = None,
        *,
        batch_size: int | None = None,
        lease_seconds: float = 30.0,
        backoff: Backoff | None = None,
        breaker: CircuitBreaker | None = None,
        seed: int = 0,
        sleep: Callable[[float], None] = time.sleep,
        on_progress: Callable[[SyncReport], None] | None = None,
        on_outage: Callable[[BaseException | None], None] | None = None,
        lazy: bool = False,
    ) -> None:
        # lazy=True: no network here (a device, or `kit cloud sync --wait/--follow`, must start with its endpoint
        # down); the bucket is made (locally) by the first step that reaches the endpoint. The default makes it at
        # once, so a one-shot command fails early with one clear line when the endpoint is down.
        self._needs_bucket = False
        if uploader is None:
            from kit.cloud.config import current
            from kit.cloud.uploader import Uploader

            uploader = Uploader(device_id=store.params.get("device_id"))
            if current().local:  # on AWS the bucket is provisioned; the device may only PutObject
                if lazy:
                    self._needs_bucket = True
                else:
                    uploader.ensure_bucket()
        self.store, self.uploader = store, uploader
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.backoff = backoff or Backoff(seed=seed)
        self.breaker = breaker or CircuitBreaker()
        self.sleep = sleep
        self.on_progress = on_progress
        self.on_outage = on_outage
        self.outage: BaseException | None = None  # the error that took the endpoint away; None while it answers
        self._held: list[Any] = []  # a leased batch that met an outage: resent as is

    def _batch_limit(self) -> int:
        return int(self.batch_size or self.store.params.get("upload_batch_size"))

    def step(self, report: SyncReport | None = None) -> int:
        """Send at most one batch; returns the items acknowledged (0: nothing to send, circuit open or failure)."""
        report = report if report is not None else SyncReport()
        if not self.breaker.allow():
            return 0
        items = self._held or self.store.outbox.lease(limit=self._batch_limit(), lease_seconds=self.lease_seconds)
        if not items:
            return 0
        items = self._without_bad(items, report)
        if not items:
            return 0
        ids = [item.id for item in items]
        report.requests += 1
        try:
            if self._needs_bucket:
                self.uploader.ensure_bucket()
                self._needs_bucket = False
            uploads = self.uploader.upload(items)
        except Exception as exc:  # noqa: BLE001 - sorted just below; anything else is re-raised
            report.failures += 1
            if not transient(exc):
                if isinstance(exc, _setup_errors()):
                    self._held = items
                    raise
                if not _is_client_error(exc):
                    raise
                code = exc.response.get("Error", {}).get("Code", "")  # type: ignore[attr-defined]
                if code in SETUP_ERRORS:
                    self._held = items
                    raise SyncError(
                        f"the cloud refused the upload to bucket {self.uploader.bucket!r}: {code}. "
                        "Check the bucket name (KIT_BUCKET), run 'kit cloud provision', and check the "
                        "device's credentials and policy (docs/cloud.md)"
                    ) from exc
                self._held = []
                self.store.outbox.fail(ids, f"{type(exc).__name__}: {exc}")
                report.refused += len(ids)
                self.breaker.success()  # the endpoint answered
                self._answered()
                return 0
            self._held = items
            self.breaker.failure()
            if self.outage is None:
                self.outage = exc
                if self.on_outage:
                    self.on_outage(exc)
            return 0
        self._held = []
        self.store.outbox.ack(ids)
        self.breaker.success()
        self._answered()
        self.backoff.reset()
        report.sent += len(ids)
        report.objects += len(uploads)
        report.bytes += sum(u.bytes for u in uploads)
        report.keys.extend(u.key for u in uploads)
        return len(ids)

    def _answered(self) -> None:
        if self.outage is not None:
            self.outage = None
            if self.on_outage:
                self.on_outage(None)

    def _without_bad(self, items: list[Any], report: SyncReport) -> list[Any]:
        """Dead-letter, one by one and with the reason, items that can never be encoded (e.g. a time that is no
        date); the good neighbours of a bad item go on as a batch."""
        group = getattr(self.uploader, "group", None)
        if group is None:
            return items
        try:
            group(items)
            return items
        except _ENCODING_ERRORS:
            pass  # find which ones below
        good = []
        for item in items:
            try:
                group([item])
                good.append(item)
            except _ENCODING_ERRORS as exc:  # a bad item, not a bad batch
                self.store.outbox.dead_letter([item.id], f"cannot be uploaded: {type(exc).__name__}: {exc}")
                report.refused += 1
        return good

    def due(self, now: float, *, max_age_s: float | None = None) -> bool:
        """Is an upload due: a full batch waits, or the oldest waiting item is ``max_age_s`` old (default: the
        ``upload_max_age_s`` parameter)? A batch a failed attempt holds is always due (when the circuit allows)."""
        if self._held:
            return True
        outbox = self.store.outbox
        if outbox.depth() >= self._batch_limit():
            return True
        oldest = outbox.oldest_ts()
        age = float(max_age_s if max_age_s is not None else self.store.params.get("upload_max_age_s"))
        return oldest is not None and now - oldest >= age

    def drain(self, *, timeout: float | None = None, wait_open: bool = False) -> SyncReport:
        """Send until the outbox is empty, the circuit opens (unless ``wait_open``) or ``timeout`` s pass."""
        report = SyncReport()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not self.breaker.allow():
                if not wait_open:
                    break
                pause = self.breaker.retry_in()
                if deadline is not None:
                    pause = min(pause, max(0.0, deadline - time.monotonic()))
                self.sleep(pause)
                report.waited += pause
                continue
            failures, refused = report.failures, report.refused
            sent = self.step(report)
            if sent:
                if self.on_progress:
                    report.depth = self.store.outbox.depth()
                    self.on_progress(report)
                continue
            if report.failures == failures:
                break  # nothing (more) to lease
            if report.refused > refused:
                continue  # the endpoint answered "no" (a data problem, counted per item): no backoff sleep
            if self.breaker.allow():
                pause = self.backoff.next()
                if deadline is not None:
                    pause = min(pause, max(0.0, deadline - time.monotonic()))
                self.sleep(pause)
                report.waited += pause
        report.depth = self.store.outbox.depth()
        report.circuit = self.breaker.state
        return report

    def run(self, stop: Any, *, interval_s: float = 5.0) -> SyncReport:
        """Keep the outbox drained until ``stop`` (a ``threading.Event``) is set: the device's background loop.

        Each round drains what is queued (stopping early while the circuit is open), then waits
        ``interval_s`` or until the circuit allows the next trial, whichever is later.

            >>> import threading
            >>> stop = threading.Event()
            >>> threading.Thread(target=Sync(store).run, args=(stop,), daemon=True).start()   # doctest: +SKIP
        """
        total = SyncReport()
        while not stop.is_set():
            report = self.drain()
            for name in ("sent", "objects", "requests", "bytes", "failures", "refused"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.keys.extend(report.keys)
            stop.wait(max(interval_s, self.breaker.retry_in()))
        total.depth = self.store.outbox.depth()
        total.circuit = self.breaker.state
        return total


def _is_client_error(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError)
