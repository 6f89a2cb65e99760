"""The Flower ClientApp: what runs on each intersection (a SuperNode on a Pi, or a simulated one).

It trains the shared network on the intersection's own frames and answers with the new weights
and a few numbers (loss, accuracy, how many examples). Frames stay on the device: the reply is
built only from ``Net.get_weights()`` and scalar metrics (``tests/kit/ml/federated`` checks it).

Which intersection a node is comes from its node config (``partition-id``, ``num-partitions``),
set by the Simulation Engine or by ``flower-supernode --node-config``.
"""

from __future__ import annotations

from functools import lru_cache

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from kit.ml.federated.task import ClientData, Net, client_data

app = ClientApp()


@lru_cache(maxsize=8)
def _cached_data(partition_id: int, num_partitions: int, n: int, seed: int) -> tuple[ClientData, ClientData]:
    return client_data(partition_id, num_partitions=num_partitions, n=n, seed=seed)


def _local_data(context: Context, config: ConfigRecord) -> tuple[ClientData, ClientData]:
    """This node's frames; the server's config (sent with each message) wins over the run config."""
    node, run = context.node_config, context.run_config
    if "partition-id" not in node or "num-partitions" not in node:
        raise ValueError(
            f"this SuperNode does not know which intersection it is (node config {dict(node)}); start it with "
            '--node-config "partition-id=0 num-partitions=3"'
        )
    return _cached_data(
        int(node["partition-id"]),
        int(node["num-partitions"]),
        int(config.get("samples-per-client", run.get("samples-per-client", 600))),
        int(config.get("seed", run.get("seed", 0))),
    )


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Local SGD from the global weights; reply with weights and metrics only."""
    config = msg.content["config"]
    train_set, _ = _local_data(context, config)
    net = Net().set_weights(msg.content["arrays"].to_numpy_ndarrays())
    server_round = int(config.get("server-round", 0))
    loss = net.fit(
        train_set.x,
        train_set.y,
        epochs=int(config.get("local-epochs", 5)),
        lr=float(config.get("lr", 0.02)),
        seed=int(config.get("seed", 0)) * 1000 + server_round * 10 + int(context.node_config["partition-id"]),
    )
    content = RecordDict(
        {
            "arrays": ArrayRecord(net.get_weights()),
            "metrics": MetricRecord({"train-loss": loss, "num-examples": len(train_set)}),
        }
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Accuracy of the global weights on this intersection's own held-out frames."""
    _, test_set = _local_data(context, msg.content["config"])
    net = Net().set_weights(msg.content["arrays"].to_numpy_ndarrays())
    scores = net.evaluate(test_set.x, test_set.y)
    metrics = MetricRecord(
        {
            "accuracy": scores["accuracy"],
            "loss": scores["loss"],
            "num-examples": len(test_set),
        }
    )
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
