"""kit.ml.partition: cost model, wire format, and cutting a model into parts that compose to the whole."""

from __future__ import annotations

import numpy as np
import pytest

from kit.ml.partition import NETWORKS, Network, Profile, best_split, decode, encode, estimate_ms


def _profile(**kw):
    # 3 layers: splits 0 (all-cloud) .. 3 (all-device); device 10x slower than the cloud
    base = dict(
        device_ms=[0.0, 0.1, 0.5, 1.0],
        cloud_ms=[1.0, 0.9, 0.5, 0.0],
        up_bytes=[4096, 65536, 512, 0],
        down_bytes=100,
        overhead_ms=0.2,
        overhead_ms_per_kib=0.0,
        slowdown=10.0,
    )
    base.update(kw)
    return Profile(**base)


@pytest.mark.tflite
def test_network_rejects_nonsense_with_the_value():
    with pytest.raises(ValueError, match="bandwidth_mbps must be > 0.*got 0"):
        Network(bandwidth_mbps=0, rtt_ms=5)
    with pytest.raises(ValueError, match="rtt_ms must be >= 0"):
        Network(bandwidth_mbps=1, rtt_ms=-1)
    assert Network(1.0, 0.0).transfer_ms(125_000) == pytest.approx(1000.0)


@pytest.mark.tflite
def test_estimate_is_the_sum_of_device_link_and_cloud_terms():
    p = _profile()
    net = Network(bandwidth_mbps=8.0, rtt_ms=20.0)  # 1 byte per microsecond
    est = estimate_ms(p, net)
    assert est[0] == pytest.approx(0.2 + 20 + 1.0 + (4096 + 100) / 1000)
    assert est[2] == pytest.approx(10 * 0.5 + 0.2 + 20 + 0.5 + (512 + 100) / 1000)
    assert est[3] == pytest.approx(10 * 1.0)  # all-device: no network at all


@pytest.mark.tflite
def test_best_split_moves_with_the_network():
    p = _profile()
    assert best_split(p, Network(bandwidth_mbps=1000, rtt_ms=0.1)) == 0  # fast link: all-cloud
    assert best_split(p, Network(bandwidth_mbps=0.1, rtt_ms=200)) == 3  # slow link: all-device
    mid = _profile(device_ms=[0.0, 0.1, 0.2, 3.0])
    assert best_split(mid, Network(bandwidth_mbps=1.0, rtt_ms=5)) == 2  # small activation, heavy tail


@pytest.mark.tflite
def test_three_named_networks_are_ordered_fast_to_slow():
    bws = [NETWORKS[n].bandwidth_mbps for n in ("fibre", "4g", "rural")]
    assert bws == sorted(bws, reverse=True)


@pytest.mark.tflite
def test_encode_decode_roundtrip_float_and_int8():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4, 3)).astype(np.float32)
    body, headers = encode(a)
    assert len(body) == a.size * 4
    np.testing.assert_array_equal(decode(body, headers), a)
    body8, headers8 = encode(a, int8=True)
    assert len(body8) == a.size
    scale = float(headers8["X-Scale"])
    np.testing.assert_allclose(decode(body8, headers8), a, atol=scale / 2 + 1e-7)


@pytest.mark.tflite
def test_decode_says_what_is_wrong():
    with pytest.raises(ValueError, match="needs 12"):
        decode(b"\0" * 8, {"X-Dtype": "float32", "X-Shape": "3,4"})
    with pytest.raises(ValueError, match="X-Dtype must be"):
        decode(b"", {"X-Dtype": "float64", "X-Shape": "0"})
    with pytest.raises(ValueError, match="X-Shape header"):
        decode(b"", {"X-Dtype": "float32", "X-Shape": "a,b"})


@pytest.fixture(scope="module")
def partition():
    pytest.importorskip("tensorflow")
    from kit.ml.partition import Partition, build_split_model

    return Partition.from_model(build_split_model(32, seed=0, width=8))


@pytest.mark.slow
def test_parts_compose_to_the_full_model_at_every_split(partition):
    from kit.ml.partition import Part

    frame = np.random.default_rng(1).integers(0, 256, (32, 32)).astype(np.uint8)
    n = partition.n_splits
    full = Part(partition.a[n])(frame.astype(np.float32))["queue"]
    assert partition.a[0] is None and partition.b[n] is None
    for k in range(n):
        x = frame.astype(np.float32) if k == 0 else Part(partition.a[k])(frame.astype(np.float32))["activation"][0]
        assert x.shape == tuple(partition.activation_shapes[k]) or k == 0
        out = Part(partition.b[k])(x)["queue"]
        np.testing.assert_allclose(out, full, atol=1e-5, err_msg=f"split {k}")


@pytest.mark.slow
def test_activation_sizes_and_save_load(partition, tmp_path):
    from kit.ml.partition import Partition

    sizes = partition.activation_bytes
    assert sizes[0] == 32 * 32  # the raw uint8 frame
    assert sizes[1] == 32 * 32 * 4  # rescaled to float32: 4x the frame
    assert max(sizes) > 4 * sizes[0]  # a lower layer's activation is bigger than the frame
    assert sizes[-1] == 0  # all-device sends nothing
    assert partition.activation_bytes_int8()[2] == sizes[2] // 4 + 4
    again = Partition.load(partition.save(tmp_path / "p"))
    assert again.layer_names == partition.layer_names and again.b[3] == partition.b[3]


@pytest.mark.tflite
def test_load_missing_folder_says_how_to_make_one(tmp_path):
    from kit.ml.partition import Partition

    with pytest.raises(FileNotFoundError, match="Partition.from_model"):
        Partition.load(tmp_path)


@pytest.mark.slow
def test_split_model_rejects_out_of_range_split():
    pytest.importorskip("tensorflow")
    from kit.ml.partition import build_split_model, split_model

    model = build_split_model(16, seed=0, width=4)
    with pytest.raises(ValueError, match="between 0 .* and 8"):
        split_model(model, 9)


@pytest.mark.slow
def test_plot_marks_every_split(partition):
    from kit.ml.partition import plot

    p = Profile(
        device_ms=[0.0] + [0.1] * partition.n_splits,
        cloud_ms=[0.1] * partition.n_splits + [0.0],
        up_bytes=partition.activation_bytes,
        down_bytes=100,
        overhead_ms=0.2,
        layer_names=partition.layer_names,
    )
    fig = plot(p)
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == partition.n_splits + 1
