"""The Flower ServerApp: FedAvg over the intersections, with the global model scored every round.

Each round the SuperLink sends the global weights to every intersection, each trains locally
(``client_app.py``), and FedAvg averages the replies weighted by example count. After each round
the server scores the global model on a benchmark set: frames rendered from every
intersection's profile with a seed no client uses (the city's own labelled frames).

The strategy also keeps a *wire manifest*: for every reply it received, which records it held,
their types, array shapes and byte counts. That is how the tests prove that only model weights
and a few metrics cross the network.

Run configuration (``[tool.flwr.app.config]`` in ``app/pyproject.toml``, or ``--run-config``):
``num-server-rounds``, ``local-epochs``, ``lr``, ``samples-per-client``, ``num-clients``, ``seed``,
and ``result-path`` (write the history as JSON there when not empty).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from kit.ml.federated.task import Net, client_data

__all__ = ["AuditedFedAvg", "DEFAULTS", "benchmark_sets", "run_federation", "make_server_app", "app"]

DEFAULTS: dict[str, Any] = {
    "num-server-rounds": 3,
    "local-epochs": 5,
    "lr": 0.02,
    "samples-per-client": 600,
    "num-clients": 4,
    "seed": 0,
    "result-path": "",
}
# Benchmark frames come from a seed far from the clients' seeds, so no client trained on them.
BENCHMARK_SEED_OFFSET = 7919


def describe_content(content: Any) -> dict[str, Any]:
    """What a message carried, record by record: type, and for arrays their shapes and bytes."""
    out: dict[str, Any] = {}
    for name, record in content.items():
        entry: dict[str, Any] = {"type": type(record).__name__}
        if isinstance(record, ArrayRecord):
            arrays = record.to_numpy_ndarrays()
            entry["shapes"] = [list(a.shape) for a in arrays]
            entry["dtypes"] = sorted({str(a.dtype) for a in arrays})
            entry["nbytes"] = int(sum(a.nbytes for a in arrays))
        elif isinstance(record, MetricRecord):
            entry["keys"] = sorted(record.keys())
        else:
            entry["keys"] = sorted(getattr(record, "keys", lambda: [])())
        out[name] = entry
    return out


class AuditedFedAvg(FedAvg):
    """FedAvg that writes down what each client reply contained (see :func:`describe_content`).

    >>> strategy = AuditedFedAvg(min_available_nodes=3)
    >>> strategy.manifest          # filled round by round: {"round": r, "content": {...}}
    []
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.manifest: list[dict[str, Any]] = []

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        for msg in replies:
            if msg.has_content():
                self.manifest.append({"round": server_round, "content": describe_content(msg.content)})
        return super().aggregate_train(server_round, replies)


def benchmark_sets(num_clients: int, *, n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(features, labels) of held-out frames for each intersection profile."""
    sets = []
    for pid in range(num_clients):
        _, test = client_data(pid, num_partitions=num_clients, n=n, seed=seed + BENCHMARK_SEED_OFFSET, test_share=0.5)
        sets.append((test.x, test.y))
    return sets


def run_federation(
    grid: Grid, run_config: dict[str, Any], on_round: Callable[[int, float], None] | None = None
) -> dict[str, Any]:
    """FedAvg for ``num-server-rounds`` rounds; returns the history (and final weights as lists of arrays).

    ``on_round(round, accuracy)`` is called after each round's evaluation (a progress bar, a log line).
    """
    cfg = {**DEFAULTS, **dict(run_config)}
    num_clients = int(cfg["num-clients"])
    seed = int(cfg["seed"])
    bench = benchmark_sets(num_clients, n=int(cfg["samples-per-client"]) // 2, seed=seed)
    # sent with every message so that clients build the same local data whatever their run config
    data_config = {"samples-per-client": int(cfg["samples-per-client"]), "seed": seed}
    history: dict[str, Any] = {"rounds": [], "accuracy": [], "per_client": []}

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        net = Net().set_weights(arrays.to_numpy_ndarrays())
        per_client = [net.evaluate(x, y)["accuracy"] for x, y in bench]
        overall = net.evaluate(np.concatenate([x for x, _ in bench]), np.concatenate([y for _, y in bench]))["accuracy"]
        history["rounds"].append(server_round)
        history["accuracy"].append(overall)
        history["per_client"].append(per_client)
        if on_round is not None and server_round > 0:
            on_round(server_round, overall)
        return MetricRecord({"accuracy": overall})

    strategy = AuditedFedAvg(
        fraction_train=1.0,
        fraction_evaluate=1.0,
        min_train_nodes=num_clients,
        min_evaluate_nodes=num_clients,
        min_available_nodes=num_clients,
    )
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(Net(seed=seed).get_weights()),
        num_rounds=int(cfg["num-server-rounds"]),
        train_config=ConfigRecord({"local-epochs": int(cfg["local-epochs"]), "lr": float(cfg["lr"]), **data_config}),
        evaluate_config=ConfigRecord(data_config),
        evaluate_fn=evaluate,
    )
    history["client_evaluate"] = {
        int(r): {k: float(v) for k, v in m.items()} for r, m in result.evaluate_metrics_clientapp.items()
    }
    history["manifest"] = strategy.manifest
    history["weights"] = result.arrays.to_numpy_ndarrays()
    return history


def make_server_app(
    results: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    on_round: Callable[[int, float], None] | None = None,
) -> ServerApp:
    """A ServerApp. ``config`` overrides the run config; ``results`` (when given) receives the history and
    ``on_round`` each round's accuracy, which works with the Simulation Engine, where the ServerApp runs in the
    caller's process."""
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        history = run_federation(grid, {**dict(context.run_config), **(config or {})}, on_round)
        if results is not None:
            results.update(history)
        path = str(context.run_config.get("result-path", ""))
        if path:
            public = {k: v for k, v in history.items() if k != "weights"}
            public["weight_shapes"] = [list(w.shape) for w in history["weights"]]
            with open(path, "w", encoding="utf-8") as f:
                json.dump(public, f, indent=1)
        print(
            "global accuracy per round: "
            + ", ".join(f"{r}: {a:.3f}" for r, a in zip(history["rounds"], history["accuracy"]))
        )

    return server


app = make_server_app()
