"""Grading units on a Dask distributed cluster: ``python -m course.grade ... --scheduler ADDR``.

Each :class:`~course.grading.unit.Unit` travels to a worker as a task (its notebook and grading files as
bytes); the worker grades it with :func:`course.grading.unit.run_on_worker` (the student's kernel in the
worker machine's bubblewrap sandbox) and sends back the :class:`~course.grading.unit.LabResult`. Results come
back in the order units finish. A worker needs the course's environment (``pip install -e '.[course]'``,
bubblewrap), nothing else: no submissions, no ``tests/``.

``distributed`` is imported here only, and this module only when ``--scheduler`` is given.
"""

from __future__ import annotations

from collections.abc import Iterator

from course.grading.unit import LabResult, Limits, Unit, run_on_worker


class SchedulerUnreachable(RuntimeError):
    """No Dask scheduler answered at the address given with ``--scheduler``."""


def _connect(scheduler: str, connect_timeout_s: float):
    from distributed import Client
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:
        # The address's shape first: a Client that fails on a malformed address complains again when it is
        # garbage-collected, with a traceback.
        scheme, location = parse_address(scheduler)
        get_backend(scheme)
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise SchedulerUnreachable(
            f"--scheduler {scheduler}: not a scheduler address ({exc}); give what `dask scheduler` prints, "
            "e.g. tcp://10.0.0.5:8786"
        ) from exc
    try:
        return Client(scheduler, timeout=f"{connect_timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerUnreachable(
            f"--scheduler {scheduler}: no Dask scheduler answered ({exc}); start one with `dask scheduler` "
            "and give its address, e.g. tcp://10.0.0.5:8786"
        ) from exc


def check_scheduler(scheduler: str, *, connect_timeout_s: float = 20) -> int:
    """The number of workers the scheduler at ``scheduler`` has now; :class:`SchedulerUnreachable` if none answers."""
    with _connect(scheduler, connect_timeout_s) as client:
        return len(client.scheduler_info(n_workers=-1)["workers"])


def grade_on_cluster(
    units: list[Unit], limits: Limits, scheduler: str, *, connect_timeout_s: float = 20
) -> Iterator[tuple[Unit, LabResult | BaseException]]:
    """Send every unit to the cluster at ``scheduler``; yield ``(unit, result or error)`` as each one finishes.

    A task that fails (a worker lost twice, a bug in the grader) yields its exception, so that the caller
    records that unit as not graded and the rest of the class is still graded.
    """
    from distributed import as_completed

    client = _connect(scheduler, connect_timeout_s)
    with client:
        futures = {}
        for unit in units:
            # pure=False: grading draws fresh inputs each time; the key names the unit on the dashboard.
            future = client.submit(
                run_on_worker,
                unit,
                limits,
                pure=False,
                retries=1,  # a worker lost mid-unit (machine gone): grade it once more elsewhere
                key=f"grade-{unit.lab}-{unit.student}-{unit.notebook_hash[:12]}",
            )
            futures[future] = unit
        for future in as_completed(futures, loop=client.loop):
            unit = futures[future]
            try:
                yield unit, future.result()
            except Exception as exc:  # noqa: BLE001 - reported as this unit's grader error
                yield unit, exc
            future.release()
