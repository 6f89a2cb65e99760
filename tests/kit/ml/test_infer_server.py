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
    assert server.address[0] == "127.0.0.1"
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
    from kit.cli import main

    assert main(["model", "infer-serve", "--partition", str(tmp_path)]) == 2
    assert "partition.json" in capsys.readouterr().err


def test_stopping_the_service_mid_session_falls_back(partition, frame):
    from kit.ml.infer_server import InferClient, InferServer
    from kit.ml.partition import SplitRunner

    server = InferServer(partition).start()
    runner = SplitRunner(partition, InferClient(server.url, timeout=1.0), slowdown=1)
    assert not runner.run(frame, 3).fallback  # a kept-alive connection is open now
    server.stop()
    result = runner.run(frame, 3)
    assert result.fallback and "unreachable" in result.reason


def test_kit_model_infer_serve_runs_and_stops_on_sigterm(partition, tmp_path):
    import subprocess
    import sys

    from kit.ml.infer_server import InferClient

    folder = partition.save(tmp_path / "partition")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kit", "model", "infer-serve", "--partition", str(folder), "--rtt-ms", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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


# -- hostile and careless clients --------------------------------------------------------------------------------


def _post(port, path="/ping", body=b"", headers=None):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"X-Rtt-Ms": "nan"}, "X-Rtt-Ms must be a finite number"),
        ({"X-Rtt-Ms": "inf"}, "X-Rtt-Ms must be a finite number"),
        ({"X-Rtt-Ms": "1e9"}, "from 0 to 10000"),  # once pinned a thread for 11 days
        ({"X-Rtt-Ms": "-1"}, "from 0 to 10000"),
        ({"X-Bandwidth-Mbps": "0"}, "X-Bandwidth-Mbps must be"),
        ({"X-Bandwidth-Mbps": "-inf"}, "X-Bandwidth-Mbps must be"),
        ({"X-Bandwidth-Mbps": "ünï"}, "X-Bandwidth-Mbps must be"),
        ({"X-Bandwidth-Mbps": "0.01"}, "at most 30 s"),  # 100 kB at 10 kbit/s: 80 s of emulated link
    ],
)
def test_emulated_link_headers_are_bounded(server, headers, words):
    status, body, _ = _post(
        server.port, body=b"\0" * 100_000, headers={k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()}
    )
    assert status == 400 and words in body.decode()


def test_bad_bodies_are_refused_not_dropped(server):
    status, body, _ = _post(server.port, headers={"Transfer-Encoding": "chunked"}, body=iter([b"ab"]))
    assert status == 411
    status, body, _ = _post(
        server.port, "/infer/1", body=b"\0" * 12, headers={"X-Dtype": "int8", "X-Shape": "12", "X-Scale": "nan"}
    )
    assert status == 400 and b"NaN or infinity" in body or b"expects an activation" in body
    status, body, _ = _post(server.port, "/infer/99999999999999", body=b"")
    assert status == 404


def test_silent_slow_and_stalled_clients_are_cut_off(partition):
    from kit.ml.infer_server import InferServer

    with InferServer(partition, read_timeout_s=0.5) as server:
        idle = socket.create_connection(("127.0.0.1", server.port))
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"POST /ping HTTP/1.1\r\nHost: x\r\n")  # a header that never ends
        stalled = socket.create_connection(("127.0.0.1", server.port))
        stalled.sendall(b"POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")  # 2 of 10 bytes
        for sock in (idle, slow, stalled):
            sock.settimeout(5)
        assert idle.recv(100) == b"" and slow.recv(100) == b""  # closed by the service, no thread held
        assert stalled.recv(100).startswith(b"HTTP/1.1 408")
        for sock in (idle, slow, stalled):
            sock.close()


def test_saturated_service_answers_503_with_retry_after(partition):
    import threading

    from kit.ml.infer_server import InferClient, InferServer, ServiceBusy
    from kit.ml.partition import encode

    release = threading.Event()

    class Stuck(InferServer):
        def infer(self, k, activation):  # a model that takes until the test says so
            release.wait(10)
            return super().infer(k, activation)

    body, headers = encode(np.zeros(partition.activation_shapes[3], np.float32))
    with Stuck(partition, workers=1, queue=0) as server:
        first = threading.Thread(target=lambda: InferClient(server.url, timeout=10).infer(3, body, headers))
        first.start()
        deadline = time.monotonic() + 5
        while server._pending == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        status, reply, response_headers = _post(server.port, "/infer/3", body, headers)
        assert status == 503 and response_headers.get("retry-after") == "1" and b"busy" in reply
        with pytest.raises(ServiceBusy, match="stayed busy"):
            InferClient(server.url, timeout=0.3).infer(3, body, headers)
        assert InferClient(server.url).health()["busy"] == 1  # health is not queued behind the model
        release.set()
        first.join(10)
        assert InferClient(server.url).infer(3, body, headers)[0]["queue"].shape == (3,)


def test_bad_arguments_of_infer_serve_are_usage_errors(capsys, tmp_path, partition):
    from kit.cli import main

    folder = partition.save(tmp_path / "p")
    for argv in (
        ["--port", "-1"],
        ["--port", "99999"],
        ["--rtt-ms", "nan"],
        ["--bandwidth-mbps", "0"],
        ["--workers", "0"],
        ["--queue", "1e9"],
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["model", "infer-serve", "--partition", str(folder), *argv])
        assert exit_.value.code == 2, argv
        assert "Traceback" not in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["model", "infer-serve", "--partition", str(folder), "--port", str(taken.getsockname()[1])]) == 1
        assert "can't listen on 127.0.0.1" in capsys.readouterr().err


LOAD_CLIENTS, IDLE_CONNECTIONS, REQUESTS_EACH = 200, 256, 5
PEAK_RSS_BOUND_MB = 200


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def test_load_200_clients_and_256_idle_connections(partition, tmp_path):
    """Loopback only, bounded: 200 clients x 5 requests beside 256 idle connections.

    No connection is reset (a busy service says 503 + Retry-After and InferClient waits), /health answers
    within 1 s throughout, and the service's peak memory stays under PEAK_RSS_BOUND_MB.
    """
    import subprocess
    import sys
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from kit.ml.infer_server import InferClient
    from kit.ml.partition import encode

    folder = partition.save(tmp_path / "partition")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kit", "model", "infer-serve", "--partition", str(folder), "--read-timeout-s", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    idle: list[socket.socket] = []
    try:
        line = proc.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        port = int(url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(IDLE_CONNECTIONS)]
        shapes = partition.activation_shapes
        jobs = [encode(np.full(shapes[k], 0.5, np.float32)) + (k,) for k in range(1, partition.n_splits)]
        done = threading.Event()
        health_ms: list[float] = []
        health_errors: list[str] = []

        def probe():
            while not done.is_set():
                t0 = time.perf_counter()
                try:
                    InferClient(url, timeout=1.0).health()
                    health_ms.append((time.perf_counter() - t0) * 1e3)
                except OSError as exc:
                    health_errors.append(repr(exc))
                time.sleep(0.05)

        def client(i):
            c = InferClient(url, timeout=30)
            try:
                for r in range(REQUESTS_EACH):
                    body, headers, k = jobs[(i + r) % len(jobs)]
                    c.infer(k, body, headers)
            finally:
                c.close()

        prober = threading.Thread(target=probe)
        prober.start()
        with ThreadPoolExecutor(LOAD_CLIENTS) as pool:
            errors = [f.exception() for f in [pool.submit(client, i) for i in range(LOAD_CLIENTS)]]
        done.set()
        prober.join()
        failed = [repr(e) for e in errors if e is not None]
        assert failed == [], f"{len(failed)} of {LOAD_CLIENTS} clients failed, e.g. {failed[:3]}"
        assert health_errors == [] and health_ms, health_errors[:3]
        for sock in idle[:8]:  # the idle connections are still served
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(20).startswith(b"HTTP/1.1 200")
        peak = _peak_rss_mb(proc.pid)
        print(
            f"load: {LOAD_CLIENTS} clients x {REQUESTS_EACH} requests beside {IDLE_CONNECTIONS} idle connections; "
            f"/health max {max(health_ms):.0f} ms over {len(health_ms)} probes; service peak RSS {peak:.0f} MB"
        )
        assert peak < PEAK_RSS_BOUND_MB
    finally:
        for sock in idle:
            sock.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
