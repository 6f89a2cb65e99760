"""``kit model infer-serve``: the local "cloud" half of a split model (part B over HTTP on 127.0.0.1).

    kit model infer-serve --partition DIR                     # a folder written by Partition.save
    kit model infer-serve --port 8765 --bandwidth-mbps 4 --rtt-ms 8
    kit model infer-serve --build DIR                         # cut the kit's split model into DIR first (TensorFlow)

Shaping (bandwidth, round-trip time) happens in the service; see ``kit.ml.infer_server``.
"""
from __future__ import annotations

import argparse
import signal
import sys


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("infer-serve", help="serve part B of a split model over HTTP on 127.0.0.1 (edge/cloud partitioning)",
                       description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--partition", metavar="DIR", help="folder with partition.json and b_K.tflite parts")
    where.add_argument("--build", metavar="DIR", help="cut kit.ml.partition.build_split_model into DIR, then serve it")
    p.add_argument("--seed", type=int, default=0, help="seed of the model built by --build (default 0)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free one, printed)")
    p.add_argument("--bandwidth-mbps", type=float, default=None, help="shape the link to this many megabits/s")
    p.add_argument("--rtt-ms", type=float, default=None, help="add this round-trip time (ms) to every request")
    p.add_argument("--threads", type=int, default=1, help="TFLite threads per part (default 1)")
    p.set_defaults(func=_serve)


register = add_commands  # the name the top-level ``kit`` command table uses


def _serve(args: argparse.Namespace) -> int:
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
        print(f"kit model infer-serve: {exc}", file=sys.stderr)
        return 2
    network = None
    if args.bandwidth_mbps is not None or args.rtt_ms is not None:
        try:
            network = Network(bandwidth_mbps=args.bandwidth_mbps or 1e6, rtt_ms=args.rtt_ms or 0.0)
        except ValueError as exc:
            print(f"kit model infer-serve: {exc}", file=sys.stderr)
            return 2
    server = InferServer(partition, port=args.port, network=network, num_threads=args.threads).start()
    shaping = "no shaping"
    if network is not None:
        bandwidth = "unlimited" if args.bandwidth_mbps is None else f"{network.bandwidth_mbps:g} Mbit/s"
        shaping = f"shaped: {bandwidth}, RTT {network.rtt_ms:g} ms"
    print(f"serving {partition.n_splits} splits of {folder} at {server.url} ({shaping}); Ctrl-C stops", flush=True)
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
