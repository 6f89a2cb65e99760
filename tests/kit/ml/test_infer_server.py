"""kit.ml.infer_server: part B over HTTP on 127.0.0.1, shaping, bad requests, fallback when the cloud is gone."""
from __future__ import annotations

import socket
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SIZE = 32


@pytest.fixture(scope="module")
def partition():
    pytest.importorskip("tensorflow")
    from kit.ml.partition import Partition, build_split_model

    return Partition.from_model(build_split_model(SIZE, seed=0, width=8))


@pytest.fixture()
def server(partition):
    from kit.ml.infer_server import InferServer

    with InferServer(partition) as s:
        yield s


@pytest.fixture()
def frame():
    return np.random.default_rng(3).integers(0, 256, (SIZE, SIZE)).astype(np.uint8)


def test_listens_on_loopback_on_a_free_port(server, partition):
    from kit.ml.infer_server import InferClient

    assert server.url.startswith("http://127.0.0.1:") and server.port > 0
    assert server._httpd.server_address[0] == "127.0.0.1"
    health = InferClient(server.url).health()
    assert health["ok"] and health["splits"] == partition.n_splits


def test_every_split_gives_the_on_device_answer(server, partition, frame):
    from kit.ml.infer_server import InferClient
    from kit.ml.partition import SplitRunner

    runner = SplitRunner(partition, InferClient(server.url), slowdown=1)
    full = runner.full(frame)["queue"].ravel()
    for k in range(partition.n_splits + 1):
        result = runner.run(frame, k)
        assert not result.fallback, result.reason
        np.testing.assert_allclose(result.outputs["queue"].ravel(), full, atol=1e-5, err_msg=f"split {k}")
    assert server.requests == partition.n_splits


def test_int8_activations_keep_the_answer(server, partition, frame):
    from kit.ml.infer_server import InferClient
    from kit.ml.partition import SplitRunner

    runner = SplitRunner(partition, InferClient(server.url), slowdown=1, int8=True)
    full = runner.full(frame)["queue"].ravel()
    for k in range(1, partition.n_splits):
        np.testing.assert_allclose(runner.run(frame, k).outputs["queue"].ravel(), full, atol=0.05, err_msg=f"split {k}")


def test_wrong_activation_shape_is_refused_with_the_expected_shape(server, partition):
    from kit.ml.infer_server import InferClient
    from kit.ml.partition import encode

    body, headers = encode(np.zeros((5, 5, 2), np.float32))
    with pytest.raises(ValueError, match=r"split 3 expects an activation of shape \(8, 8, 2\), got \(5, 5, 2\)"):
        InferClient(server.url).infer(3, body, headers)


def test_split_without_a_cloud_part_is_refused(server, partition):
    from kit.ml.infer_server import InferClient
    from kit.ml.partition import encode

    body, headers = encode(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="has no cloud part"):
        InferClient(server.url).infer(partition.n_splits, body, headers)


def test_shaping_adds_rtt_and_transfer_time(server):
    from kit.ml.infer_server import InferClient
    from kit.ml.partition import Network

    client = InferClient(server.url)
    client.ping()
    assert client.ping(network=Network(bandwidth_mbps=1e6, rtt_ms=30)) >= 30
    # 12.5 kB at 1 Mbit/s is 100 ms on the wire
    assert client.ping(b"\0" * 12_500, network=Network(bandwidth_mbps=1.0, rtt_ms=0)) >= 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_service_falls_back_to_the_device_and_says_so(partition, frame):
    from kit.ml.infer_server import InferClient
    from kit.ml.partition import SplitRunner

    runner = SplitRunner(partition, InferClient(f"http://127.0.0.1:{_free_port()}", timeout=1.0), slowdown=1)
    result = runner.run(frame, 3)
    assert result.fallback and "unreachable" in result.reason and "on the device" in result.reason
    np.testing.assert_allclose(result.outputs["queue"], runner.full(frame)["queue"], atol=1e-6)


def test_slow_service_times_out_into_the_fallback(partition, frame):
    from kit.ml.infer_server import InferClient, InferServer
    from kit.ml.partition import Network, SplitRunner

    with InferServer(partition, network=Network(bandwidth_mbps=100, rtt_ms=400)) as slow:
        runner = SplitRunner(partition, InferClient(slow.url, timeout=0.1), slowdown=1)
        t0 = time.perf_counter()
        result = runner.run(frame, 0)
        assert result.fallback and "timed out" in result.reason
        assert time.perf_counter() - t0 < 0.35


def test_stop_closes_the_port(partition):
    from kit.ml.infer_server import InferClient, InferServer

    server = InferServer(partition).start()
    url = server.url
    server.stop()
    with pytest.raises(OSError):
        InferClient(url, timeout=0.5).health()


def test_cli_parses_infer_serve():
    import argparse

    from kit.ml import infer_cli

    parser = argparse.ArgumentParser()
    infer_cli.add_commands(parser.add_subparsers())
    args = parser.parse_args(["infer-serve", "--partition", "p", "--bandwidth-mbps", "2", "--rtt-ms", "8"])
    assert args.func is infer_cli._serve and args.bandwidth_mbps == 2.0 and args.port == 0


def test_cli_missing_partition_folder_is_a_clear_error(tmp_path, capsys):
    import argparse

    from kit.ml import infer_cli

    parser = argparse.ArgumentParser()
    infer_cli.add_commands(parser.add_subparsers())
    assert infer_cli._serve(parser.parse_args(["infer-serve", "--partition", str(tmp_path)])) == 2
    assert "partition.json" in capsys.readouterr().err


def test_stopping_the_service_mid_session_falls_back(partition, frame):
    from kit.ml.infer_server import InferClient, InferServer
    from kit.ml.partition import SplitRunner

    server = InferServer(partition).start()
    runner = SplitRunner(partition, InferClient(server.url, timeout=1.0), slowdown=1)
    assert not runner.run(frame, 3).fallback      # a kept-alive connection is open now
    server.stop()
    result = runner.run(frame, 3)
    assert result.fallback and "unreachable" in result.reason


def test_kit_model_infer_serve_runs_and_stops_on_sigterm(partition, tmp_path):
    import subprocess
    import sys

    from kit.ml.infer_server import InferClient

    folder = partition.save(tmp_path / "partition")
    proc = subprocess.Popen([sys.executable, "-m", "kit", "model", "infer-serve", "--partition", str(folder), "--rtt-ms", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split(" at ")[1].split()[0]
        assert InferClient(url, timeout=5).health()["splits"] == partition.n_splits
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_oversized_or_bad_content_length_is_refused(server):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.putrequest("POST", "/infer/0")
    conn.putheader("Content-Length", str(10**12))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and b"Content-Length must be" in response.read()
    conn.close()
