"""The ClientApp called directly with a message, as a SuperNode would call it."""

import numpy as np
import pytest

flwr_app = pytest.importorskip("flwr.app")
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, Metadata, MetricRecord, RecordDict  # noqa: E402

from kit.ml.federated.client_app import app  # noqa: E402
from kit.ml.federated.task import Net  # noqa: E402


def _message(kind: str, weights, **config) -> Message:
    metadata = Metadata(
        run_id=1,
        message_id="m1",
        src_node_id=0,
        dst_node_id=1,
        reply_to_message_id="",
        group_id="1",
        created_at=0.0,
        ttl=3600.0,
        message_type=kind,
    )
    content = RecordDict(
        {"arrays": ArrayRecord(weights), "config": ConfigRecord({"samples-per-client": 60, "seed": 0, **config})}
    )
    return Message(content, metadata=metadata)


def _context(partition: int = 0) -> Context:
    return Context(
        run_id=1,
        node_id=1,
        node_config={"partition-id": partition, "num-partitions": 4},
        state=RecordDict(),
        run_config={},
    )


def test_train_reply_holds_weights_and_scalar_metrics_only():
    weights = Net(seed=0).get_weights()
    reply = app(_message(MessageType.TRAIN, weights, **{"server-round": 1, "local-epochs": 1, "lr": 0.02}), _context())
    assert not reply.has_error()
    assert set(reply.content.keys()) == {"arrays", "metrics"}
    arrays, metrics = reply.content["arrays"], reply.content["metrics"]
    assert isinstance(arrays, ArrayRecord) and isinstance(metrics, MetricRecord)
    new = arrays.to_numpy_ndarrays()
    assert [w.shape for w in new] == [w.shape for w in weights]  # exactly the model, nothing the size of a frame
    assert any(not np.array_equal(a, b) for a, b in zip(new, weights))  # and it trained
    assert set(metrics.keys()) == {"train-loss", "num-examples"} and metrics["num-examples"] == 42


def test_evaluate_reply_holds_metrics_only():
    reply = app(_message(MessageType.EVALUATE, Net(seed=0).get_weights()), _context(2))
    assert set(reply.content.keys()) == {"metrics"}
    assert set(reply.content["metrics"].keys()) == {"accuracy", "loss", "num-examples"}
    assert 0.0 <= reply.content["metrics"]["accuracy"] <= 1.0


def test_a_node_without_an_identity_is_told_how_to_start():
    ctx = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    with pytest.raises(ValueError, match='--node-config "partition-id=0 num-partitions=3"'):
        app(_message(MessageType.EVALUATE, Net(seed=0).get_weights()), ctx)
