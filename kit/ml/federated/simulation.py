"""Run the federation in one process with Flower's Simulation Engine, and the two baselines.

* **FedAvg** — :func:`simulate`: the real ClientApp and ServerApp, each intersection a virtual
  SuperNode (Ray actors), the history returned to the caller.
* **local-only** — each intersection trains alone on its own frames (no communication).
* **centralized** — all frames pooled in one place (what privacy and bandwidth forbid; the upper
  bound).

All three are scored on the same benchmark sets (``server_app.benchmark_sets``).

    >>> from kit.ml.federated.simulation import simulate      # doctest: +SKIP
    >>> history = simulate(num_clients=4, rounds=3, seed=0)   # doctest: +SKIP
    >>> history["accuracy"]                                   # doctest: +SKIP
    [0.31, 0.62, 0.70, 0.74]
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import numpy as np

from kit import progress
from kit.ml.federated.task import Net, client_data

__all__ = ["simulate", "local_only", "centralized"]


def simulate(
    *,
    num_clients: int = 4,
    rounds: int = 3,
    local_epochs: int = 5,
    lr: float = 0.02,
    samples_per_client: int = 600,
    seed: int = 0,
    verbose: bool = False,
) -> dict[str, Any]:
    """FedAvg across ``num_clients`` simulated intersections; returns the server's history.

    Keys: ``rounds`` (0 = before training), ``accuracy`` (benchmark, all intersections),
    ``per_client`` (benchmark accuracy per intersection, per round), ``client_evaluate``,
    ``manifest`` (what each reply carried) and ``weights`` (the final global model).
    """
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    from flwr.simulation import run_simulation

    from kit.ml.federated.client_app import app as client_app
    from kit.ml.federated.server_app import make_server_app

    results: dict[str, Any] = {}
    config = {
        "num-server-rounds": rounds,
        "local-epochs": local_epochs,
        "lr": lr,
        "samples-per-client": samples_per_client,
        "num-clients": num_clients,
        "seed": seed,
    }
    if not verbose:
        # ERROR, not WARNING: Flower warns that run_simulation is deprecated on every call (a lab's output
        # should not teach that); its errors still show
        logging.getLogger("flwr").setLevel(logging.ERROR)
    # Ray's FutureWarning "Tip: ... will no longer override accelerator visible devices": no GPUs here
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    _start_ray(verbose=verbose)
    rounds_bar = progress.bar(total=rounds, desc="FedAvg rounds", unit="round")

    def on_round(server_round: int, accuracy: float) -> None:
        rounds_bar.update(1)
        rounds_bar.set_postfix_str(f"global accuracy {accuracy:.3f}")

    run_simulation(
        server_app=make_server_app(results, config, on_round),
        client_app=client_app,
        num_supernodes=num_clients,
        backend_config={
            # one CPU per virtual intersection; Ray itself gets what the machine offers
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"logging_level": "ERROR", "log_to_driver": verbose},
        },
        verbose_logging=verbose,
    )
    rounds_bar.close()
    if not results:
        raise RuntimeError("the federated simulation ended without a result; run simulate(verbose=True) to see why")
    return results


def _start_ray(*, verbose: bool, attempts: int = 3) -> None:
    """Start Ray for the Simulation Engine, retrying a start-up that timed out.

    Ray gives its node fixed time limits to come up (its agents must report within seconds); on a
    machine busy with other work a start can miss them and Ray aborts. Flower uses a Ray that is
    already running, so we start it here, the way Flower would, and try again after a failed start.
    Flower shuts it down when the simulation ends.
    """
    import ray

    if ray.is_initialized():
        return
    # Ray's worker processes must import the kit and the apps as this process does. They inherit the
    # environment Ray starts with, so its prestarted workers serve; a runtime_env would make Ray start
    # new ones for the simulation (about 3 s more per run)
    pythonpath = os.pathsep.join(sys.path)
    if os.environ.get("PYTHONPATH"):
        pythonpath = f"{pythonpath}{os.pathsep}{os.environ['PYTHONPATH']}"
    os.environ["PYTHONPATH"] = pythonpath
    for attempt in range(1, attempts + 1):
        try:
            ray.init(
                include_dashboard=False,
                logging_level="ERROR",
                log_to_driver=verbose,
            )
            return
        except Exception as exc:  # Ray raises a bare Exception when its node does not come up in time
            ray.shutdown()
            if attempt == attempts:
                raise RuntimeError(
                    f"Ray did not start after {attempts} attempts ({exc}); the machine may be too busy: "
                    "close other heavy programs and run the cell again"
                ) from exc


def _all_data(num_clients: int, samples_per_client: int, seed: int) -> list[tuple[Any, Any]]:
    return [client_data(i, num_partitions=num_clients, n=samples_per_client, seed=seed) for i in range(num_clients)]


def local_only(
    benchmark: list[tuple[np.ndarray, np.ndarray]],
    *,
    rounds: int = 3,
    local_epochs: int = 5,
    lr: float = 0.02,
    samples_per_client: int = 600,
    seed: int = 0,
) -> dict[str, Any]:
    """Each intersection trains alone for as many epochs as FedAvg gives it in total.

    Returns ``own`` (each model on its own intersection's benchmark) and ``overall`` (each model on
    all intersections' benchmarks), per intersection.
    """
    data = _all_data(len(benchmark), samples_per_client, seed)
    x_all = np.concatenate([x for x, _ in benchmark])
    y_all = np.concatenate([y for _, y in benchmark])
    own, overall = [], []
    for pid, (train, _) in enumerate(data):
        net = Net(seed=seed)
        net.fit(train.x, train.y, epochs=rounds * local_epochs, lr=lr, seed=seed * 1000 + pid)
        own.append(net.evaluate(*benchmark[pid])["accuracy"])
        overall.append(net.evaluate(x_all, y_all)["accuracy"])
    return {"own": own, "overall": overall}


def centralized(
    benchmark: list[tuple[np.ndarray, np.ndarray]],
    *,
    rounds: int = 3,
    local_epochs: int = 5,
    lr: float = 0.02,
    samples_per_client: int = 600,
    seed: int = 0,
) -> dict[str, Any]:
    """One model on everybody's frames pooled; ``per_client`` and ``overall`` benchmark accuracy."""
    data = _all_data(len(benchmark), samples_per_client, seed)
    x = np.concatenate([train.x for train, _ in data])
    y = np.concatenate([train.y for train, _ in data])
    net = Net(seed=seed)
    net.fit(x, y, epochs=rounds * local_epochs, lr=lr, seed=seed)
    x_all = np.concatenate([x for x, _ in benchmark])
    y_all = np.concatenate([y for _, y in benchmark])
    return {
        "per_client": [net.evaluate(bx, by)["accuracy"] for bx, by in benchmark],
        "overall": net.evaluate(x_all, y_all)["accuracy"],
    }
