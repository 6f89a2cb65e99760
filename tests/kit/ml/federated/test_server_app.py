import numpy as np
import pytest

pytest.importorskip("flwr")
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict  # noqa: E402

from kit.ml.federated.server_app import DEFAULTS, benchmark_sets, describe_content  # noqa: E402
from kit.ml.federated.task import Net  # noqa: E402


def test_describe_content_lists_records_shapes_and_bytes():
    weights = Net().get_weights()
    content = RecordDict(
        {
            "arrays": ArrayRecord(weights),
            "metrics": MetricRecord({"train-loss": 0.5, "num-examples": 10}),
            "config": ConfigRecord({"lr": 0.1}),
        }
    )
    d = describe_content(content)
    assert d["arrays"] == {
        "type": "ArrayRecord",
        "shapes": [[256, 32], [32], [32, 3], [3]],
        "dtypes": ["float32"],
        "nbytes": sum(w.nbytes for w in weights),
    }
    assert d["metrics"] == {"type": "MetricRecord", "keys": ["num-examples", "train-loss"]}
    assert d["config"] == {"type": "ConfigRecord", "keys": ["lr"]}


def test_a_frame_would_show_in_the_manifest():
    """The audit is not blind: an image smuggled into a reply shows up with its shape."""
    frame = np.zeros((32, 32), np.uint8)
    d = describe_content(RecordDict({"arrays": ArrayRecord([frame])}))
    assert d["arrays"]["shapes"] == [[32, 32]] and d["arrays"]["dtypes"] == ["uint8"]


def test_benchmark_sets_use_frames_no_client_trains_on():
    from kit.ml.federated.task import client_data

    bench = benchmark_sets(2, n=20, seed=0)
    assert len(bench) == 2 and bench[0][0].shape == (10, 256)
    train, test = client_data(0, num_partitions=2, n=20, seed=0)
    assert not any(np.array_equal(b, t) for b in bench[0][0] for t in np.concatenate([train.x, test.x]))


def test_app_config_defaults_match_the_app_folder():
    import tomllib
    from pathlib import Path

    app = Path(__file__).resolve().parents[4] / "kit" / "ml" / "federated" / "app" / "pyproject.toml"
    config = tomllib.loads(app.read_text())["tool"]["flwr"]["app"]["config"]
    assert set(config) == set(DEFAULTS), "every run-config key the ServerApp reads is declared in the app, and no other"
    assert "federations" not in tomllib.loads(app.read_text())["tool"]["flwr"], (
        "SuperLink connections belong in $FLWR_HOME/config.toml; flwr 1.42 would rewrite this file to move them"
    )
