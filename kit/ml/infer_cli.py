"""``kit model infer-serve``: the local "cloud" half of a split model (part B over HTTP on 127.0.0.1).

    kit model infer-serve --partition DIR                     # a folder written by Partition.save
    kit model infer-serve --port 8765 --bandwidth-mbps 4 --rtt-ms 8
    kit model infer-serve --build DIR                         # cut the kit's split model into DIR first (TensorFlow)

Shaping (bandwidth, round-trip time) happens in the service; see ``kit.ml.infer_server``.
"""

from __future__ import annotations

import argparse
import signal


def add_commands(sub: argparse._SubParsersAction) -> None:
    from kit.argtypes import float_range, int_range

    p = sub.add_parser(
        "infer-serve",
        help="serve part B of a split model over HTTP on 127.0.0.1 (edge/cloud partitioning)",
        description=__doc__.split("\n\n")[0],
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--partition", metavar="DIR", help="folder with partition.json and b_K.tflite parts")
    where.add_argument("--build", metavar="DIR", help="cut kit.ml.partition.build_split_model into DIR, then serve it")
    p.add_argument(
        "--seed", type=int_range(0, 2**32 - 1), default=0, help="seed of the model built by --build (default 0)"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; put TLS in front before exposing it)",
    )
    p.add_argument("--port", type=int_range(0, 65535), default=0, help="port (default 0: a free one, printed)")
    p.add_argument(
        "--bandwidth-mbps",
        type=float_range(0, 100_000, low_open=True),
        default=None,
        help="shape the link to this many megabits/s",
    )
    p.add_argument(
        "--rtt-ms", type=float_range(0, 10_000), default=None, help="add this round-trip time (ms) to every request"
    )
    p.add_argument("--threads", type=int_range(1, 64), default=1, help="TFLite threads per part (default 1)")
    p.add_argument("--workers", type=int_range(1, 64), default=2, help="requests running part B at once (default 2)")
    p.add_argument(
        "--queue",
        type=int_range(0, 10_000),
        default=64,
        help="requests waiting for a worker; more get 503 + Retry-After (default 64)",
    )
    p.add_argument(
        "--read-timeout-s",
        type=float_range(0, 3600, low_open=True),
        default=10.0,
        help="close a connection whose request stops arriving for this long (default 10)",
    )
    p.set_defaults(func=_serve)


register = add_commands  # the name the top-level ``kit`` command table uses


def _serve(args: argparse.Namespace) -> int:
    from kit.errors import UsageError
    from kit.ml.infer_server import InferServer
    from kit.ml.partition import Network, Partition, build_split_model

    if args.build:
        partition = Partition.from_model(build_split_model(seed=args.seed))
        partition.save(args.build)
        folder = args.build
    else:
        folder = args.partition
    try:
        partition = Partition.load(folder)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    network = None
    if args.bandwidth_mbps is not None or args.rtt_ms is not None:
        network = Network(bandwidth_mbps=args.bandwidth_mbps or 100_000.0, rtt_ms=args.rtt_ms or 0.0)
    server = InferServer(
        partition,
        host=args.host,
        port=args.port,
        network=network,
        num_threads=args.threads,
        workers=args.workers,
        queue=args.queue,
        read_timeout_s=args.read_timeout_s,
    ).start()
    shaping = "no shaping"
    if network is not None:
        bandwidth = "unlimited" if args.bandwidth_mbps is None else f"{network.bandwidth_mbps:g} Mbit/s"
        shaping = f"shaped: {bandwidth}, RTT {network.rtt_ms:g} ms"
    print(
        f"serving {partition.n_splits} splits of {folder} at {server.url} ({shaping}; {args.workers} workers, "
        f"queue {args.queue}); Ctrl-C stops",
        flush=True,
    )
    signal.signal(signal.SIGTERM, _interrupt)  # systemd and `kill` stop it as cleanly as Ctrl-C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
