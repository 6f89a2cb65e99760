"""The federation in Flower's Simulation Engine (what the lab runs), against the two baselines."""

import numpy as np
import pytest

pytest.importorskip("ray")

from kit.ml.federated.server_app import benchmark_sets  # noqa: E402
from kit.ml.federated.simulation import centralized, local_only, simulate  # noqa: E402
from kit.ml.federated.task import Net  # noqa: E402

MODEL_BYTES = sum(w.nbytes for w in Net().get_weights())


@pytest.fixture(scope="module")
def history():
    return simulate(num_clients=4, rounds=2, local_epochs=2, samples_per_client=200, seed=0)


@pytest.mark.slow
def test_fedavg_improves_the_global_model(history):
    assert history["rounds"] == [0, 1, 2]
    assert history["accuracy"][-1] > history["accuracy"][0] + 0.1, history["accuracy"]
    assert len(history["per_client"][-1]) == 4
    assert set(history["client_evaluate"]) == {1, 2}


@pytest.mark.slow
def test_only_weights_and_metrics_come_back(history):
    assert len(history["manifest"]) == 4 * 2  # four intersections, two rounds
    for entry in history["manifest"]:
        content = entry["content"]
        assert set(content) == {"arrays", "metrics"}
        assert content["arrays"]["type"] == "ArrayRecord"
        assert content["arrays"]["shapes"] == [[256, 32], [32], [32, 3], [3]]
        assert content["arrays"]["nbytes"] == MODEL_BYTES
        assert content["metrics"] == {"type": "MetricRecord", "keys": ["num-examples", "train-loss"]}


@pytest.mark.slow
def test_final_weights_match_the_reported_accuracy(history):
    bench = benchmark_sets(4, n=100, seed=0)
    net = Net().set_weights(history["weights"])
    x = np.concatenate([b[0] for b in bench])
    y = np.concatenate([b[1] for b in bench])
    assert net.evaluate(x, y)["accuracy"] == pytest.approx(history["accuracy"][-1])


def test_baselines_score_every_intersection():
    bench = benchmark_sets(4, n=40, seed=0)
    local = local_only(bench, rounds=1, local_epochs=1, samples_per_client=40, seed=0)
    central = centralized(bench, rounds=1, local_epochs=1, samples_per_client=40, seed=0)
    assert len(local["own"]) == len(local["overall"]) == 4 == len(central["per_client"])
    assert 0.0 <= central["overall"] <= 1.0
