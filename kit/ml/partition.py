"""Edge/cloud partitioning: run the first layers on the device and the rest on a cloud service.

A model is cut after layer ``k``: the device runs part A (the frame up to the cut), sends the
activation at the cut over the network, and the cloud runs part B and sends the answer back.
``k = 0`` is all-cloud (the raw uint8 frame is sent); ``k = n`` is all-device (nothing is sent).
Which cut is fastest depends on the network: a lower layer's activation is often *bigger* than the
frame, so early cuts pay for it on a slow link; late cuts make the (slow) device do all the work.

The cost model, for a split ``k`` and a network (bandwidth, round-trip time)::

    T(k) = slowdown * device_ms(A_k)                                  # measured on this machine
         + [k < n] * (overhead_ms(bytes) + rtt_ms                     # HTTP on loopback, measured
                      + 8 * (up_bytes(k) + down_bytes) / bandwidth    # activation sizes, counted
                      + cloud_ms(B_k))                                # measured by the cloud service

``slowdown`` stands for how much slower the device is than the cloud machine (a Pi 4 core against
a recent server core is roughly 20x, ``DEFAULT_SLOWDOWN``). On a laptop the device executor emulates it by sleeping for
``(slowdown - 1)`` times each part's measured compute time; on a real Pi use ``slowdown=1``.
The bandwidth and round-trip time are shaped by the inference service (see ``kit.ml.infer_server``).

    >>> from kit.ml.partition import build_split_model, Partition, Network
    >>> part = Partition.from_model(build_split_model(seed=0))       # needs TensorFlow
    >>> part.n_splits, part.activation_bytes[0]                      # 0 = the raw 64x64 frame
    (8, 4096)
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kit.ml import tflite

# How much slower the device is than the cloud machine, unless told otherwise: a Pi 4 core runs float
# convolutions roughly 20x slower than one core of a recent x86 server with AVX-512 (XNNPACK on both).
DEFAULT_SLOWDOWN = 20.0


@dataclass(frozen=True)
class Network:
    """A network condition between the device and the cloud.

    >>> Network(bandwidth_mbps=1.0, rtt_ms=40.0, name="4G, one bar").transfer_ms(4096)
    32.768
    """

    bandwidth_mbps: float
    rtt_ms: float
    name: str = ""

    def __post_init__(self) -> None:
        if not self.bandwidth_mbps > 0:
            raise ValueError(f"Network.bandwidth_mbps must be > 0 (megabits per second), got {self.bandwidth_mbps!r}")
        if self.rtt_ms < 0:
            raise ValueError(f"Network.rtt_ms must be >= 0 (milliseconds), got {self.rtt_ms!r}")

    def transfer_ms(self, nbytes: int) -> float:
        """Milliseconds to push ``nbytes`` through the link (no round trip)."""
        return nbytes * 8.0 / (self.bandwidth_mbps * 1e6) * 1e3


# Three conditions used by the bench and lab 07.
NETWORKS: dict[str, Network] = {
    "fibre": Network(bandwidth_mbps=100.0, rtt_ms=2.0, name="fibre"),
    "4g": Network(bandwidth_mbps=4.0, rtt_ms=8.0, name="4g"),
    "rural": Network(bandwidth_mbps=0.25, rtt_ms=100.0, name="rural"),
}


class Part:
    """One ``.tflite`` part of a model: one input tensor in, a dict of named outputs out.

    >>> a = Part(open("a_3.tflite", "rb").read())  # doctest: +SKIP
    >>> a(frame)["activation"].shape  # doctest: +SKIP
    (1, 16, 16, 2)
    """

    def __init__(self, content: bytes, *, num_threads: int = 1, name: str = "part") -> None:
        self.name = name
        self.content = content
        self._interp = tflite.load(content, num_threads=num_threads, where=f"part {name!r}")
        self._runner = self._interp.get_signature_runner()
        inputs = self._runner.get_input_details()
        if len(inputs) != 1:
            raise ValueError(f"part {name!r} has {len(inputs)} inputs; a part takes exactly one tensor")
        self.input_name, details = next(iter(inputs.items()))
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in details["shape"][1:])
        self.output_names: list[str] = sorted(self._runner.get_output_details())

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        x = np.asarray(x, dtype=np.float32)
        if self.input_shape[-1:] == (1,) and x.shape in (self.input_shape[:-1], (1, *self.input_shape[:-1])):
            x = x[..., None]  # a grayscale camera frame has no channel axis
        if x.shape == self.input_shape:
            x = x[None]
        if x.shape[1:] != self.input_shape or x.shape[0] != 1:
            raise ValueError(
                f"part {self.name!r} expects one tensor of shape {self.input_shape} (or (1, *shape)), got {x.shape}; "
                "check that the device and the cloud use parts cut at the same split"
            )
        return {k: np.asarray(v) for k, v in self._runner(**{self.input_name: x}).items()}

    def time_ms(self, x: np.ndarray, *, runs: int = 20, warmup: int = 3) -> float:
        """Median milliseconds of one call on ``x`` (after ``warmup`` calls)."""
        for _ in range(warmup):
            self(x)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            self(x)
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)


def build_split_model(size: int = 64, *, seed: int = 0, width: int = 192) -> Any:
    """A chain CNN that can be cut after any layer (queue class, 3-way softmax).

    The input ``frame`` takes raw pixel values 0..255 (so the all-cloud split sends the uint8 frame);
    the first layer rescales to float (4x the bytes). ``conv1`` works at full resolution and makes
    the biggest activation; the strided ``stem`` squeezes it to a quarter of the frame's bytes; the
    heavy convolutions come after it; ``gap`` leaves a short vector.
    """
    import keras

    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((size, size, 1), name="frame")
    x = L.Rescaling(1.0 / 255, name="rescale")(inp)
    x = L.Conv2D(16, 5, padding="same", activation="relu", name="conv1")(x)
    x = L.Conv2D(2, 4, strides=4, padding="same", activation="relu", name="stem")(x)
    x = L.Conv2D(width, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.Conv2D(width, 3, padding="same", activation="relu", name="conv3")(x)
    x = L.Conv2D(width * 2, 3, strides=2, padding="same", activation="relu", name="conv4")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(3, activation="softmax", name="queue")(x)
    return keras.Model(inp, out, name="split_model")


def _output_name(tensor: Any) -> str:
    return tensor._keras_history[0].name


def split_model(model: Any, k: int) -> tuple[Any | None, Any | None]:
    """Cut a Keras model after its ``k``-th layer: ``(part_a, part_b)`` Keras models sharing weights.

    ``part_a`` maps ``frame`` to ``{"activation": ...}`` (``None`` for ``k = 0``); ``part_b`` maps the
    activation to the model's named outputs (``None`` for ``k = n``). Only cuts where one tensor
    carries everything forward are valid.
    """
    import keras

    layers = _layers(model)
    n = len(layers)
    if not 0 <= k <= n:
        raise ValueError(f"split must be between 0 (all-cloud) and {n} (all-device), got {k}")
    outputs = {_output_name(t): t for t in model.outputs}
    if k == 0:
        return None, keras.Model(model.inputs[0], outputs, name="b_0")
    if k == n:
        return keras.Model(model.inputs[0], outputs, name=f"a_{n}"), None
    cut = layers[k - 1].output
    try:
        b = keras.Model(cut, outputs, name=f"b_{k}")
    except Exception as exc:  # keras names the missing input; say what it means here
        raise ValueError(
            f"cannot cut after layer {k} ({layers[k - 1].name!r}): later layers need more than its output ({exc})"
        ) from exc
    a = keras.Model(model.inputs[0], {"activation": cut}, name=f"a_{k}")
    return a, b


def _layers(model: Any) -> list[Any]:
    return [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"]


@dataclass
class Partition:
    """Every cut of one model as ``.tflite`` parts: ``a[k]`` runs on the device, ``b[k]`` in the cloud.

    ``a[0]`` and ``b[n]`` are ``None``; ``a[n]`` is the full model (the on-device fallback).
    ``activation_bytes[k]`` is what crosses the network at split ``k`` as float32 (uint8 at ``k = 0``).
    Save with ``save(dir)``; the inference service loads the same folder.
    """

    layer_names: list[str]
    activation_shapes: list[tuple[int, ...]]
    a: list[bytes | None]
    b: list[bytes | None]
    output_names: list[str] = field(default_factory=list)

    @property
    def n_splits(self) -> int:
        """The number of layers ``n``; splits run from 0 (all-cloud) to ``n`` (all-device)."""
        return len(self.layer_names)

    @property
    def activation_bytes(self) -> list[int]:
        sizes = []
        for k, shape in enumerate(self.activation_shapes):
            count = int(np.prod(shape))
            sizes.append(count if k == 0 else 0 if k == self.n_splits else 4 * count)
        return sizes

    def activation_bytes_int8(self) -> list[int]:
        """Bytes on the wire when activations travel as int8 plus one float32 scale."""
        return [b if k in (0, self.n_splits) else b // 4 + 4 for k, b in enumerate(self.activation_bytes)]

    @classmethod
    def from_model(cls, model: Any) -> Partition:
        """Cut ``model`` at every layer and convert each part to ``.tflite`` (needs TensorFlow)."""
        layers = _layers(model)
        n = len(layers)
        shapes = [tuple(int(d) for d in model.inputs[0].shape[1:])]
        shapes += [tuple(int(d) for d in layer.output.shape[1:]) for layer in layers]
        a: list[bytes | None] = [None] * (n + 1)
        b: list[bytes | None] = [None] * (n + 1)
        for k in range(n + 1):
            part_a, part_b = split_model(model, k)
            a[k] = tflite.convert(part_a) if part_a is not None else None
            b[k] = tflite.convert(part_b) if part_b is not None else None
        names = sorted(_output_name(t) for t in model.outputs)
        return cls([layer.name for layer in layers], shapes, a, b, names)

    def save(self, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(self.n_splits + 1):
            for side, parts in (("a", self.a), ("b", self.b)):
                if parts[k] is not None:
                    (folder / f"{side}_{k}.tflite").write_bytes(parts[k])
        meta = {
            "layer_names": self.layer_names,
            "activation_shapes": self.activation_shapes,
            "output_names": self.output_names,
        }
        (folder / "partition.json").write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Partition:
        folder = Path(folder)
        meta_path = folder / "partition.json"
        if not meta_path.exists():
            raise FileNotFoundError(
                f"no partition.json in {str(folder)!r}: make one with Partition.from_model(model).save(folder)"
            )
        meta = json.loads(meta_path.read_text())
        n = len(meta["layer_names"])

        def read(side: str, k: int) -> bytes | None:
            path = folder / f"{side}_{k}.tflite"
            return path.read_bytes() if path.exists() else None

        return cls(
            meta["layer_names"],
            [tuple(s) for s in meta["activation_shapes"]],
            [read("a", k) for k in range(n + 1)],
            [read("b", k) for k in range(n + 1)],
            meta.get("output_names", []),
        )


def encode(activation: np.ndarray, *, int8: bool = False) -> tuple[bytes, dict[str, str]]:
    """Activation -> wire bytes and headers. Float32 as is, or int8 with one symmetric scale."""
    activation = np.ascontiguousarray(activation, dtype=np.float32)
    shape = ",".join(str(d) for d in activation.shape)
    if not int8:
        return activation.tobytes(), {"X-Dtype": "float32", "X-Shape": shape}
    scale = float(np.max(np.abs(activation))) / 127.0 or 1.0
    q = np.clip(np.round(activation / scale), -127, 127).astype(np.int8)
    return q.tobytes(), {"X-Dtype": "int8", "X-Shape": shape, "X-Scale": repr(scale)}


def decode(body: bytes, headers: Any) -> np.ndarray:
    """Wire bytes and headers -> float32 activation (the inverse of :func:`encode`; uint8 for frames)."""
    dtype = headers.get("X-Dtype", "float32")
    try:
        shape = tuple(int(d) for d in headers.get("X-Shape", "").split(","))
    except ValueError:
        raise ValueError(f"X-Shape header must be comma-separated integers, got {headers.get('X-Shape')!r}") from None
    if dtype not in ("float32", "int8", "uint8"):
        raise ValueError(f"X-Dtype must be float32, int8 or uint8, got {dtype!r}")
    array = np.frombuffer(body, dtype=np.dtype(dtype))
    if array.size != int(np.prod(shape)):
        raise ValueError(f"body holds {array.size} {dtype} values but X-Shape {shape} needs {int(np.prod(shape))}")
    array = array.reshape(shape).astype(np.float32)
    if dtype == "int8":
        array *= float(headers.get("X-Scale", "1"))
    return array


@dataclass
class Profile:
    """Measured costs of every split of one partition (milliseconds, bytes)."""

    device_ms: list[float]
    cloud_ms: list[float]
    up_bytes: list[int]
    down_bytes: int
    overhead_ms: float
    overhead_ms_per_kib: float = 0.0
    slowdown: float = DEFAULT_SLOWDOWN
    layer_names: list[str] = field(default_factory=list)

    @property
    def n_splits(self) -> int:
        return len(self.device_ms) - 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_ms(profile: Profile, network: Network) -> list[float]:
    """Predicted end-to-end milliseconds for every split under ``network`` (the cost model above)."""
    n = profile.n_splits
    out = []
    for k in range(n + 1):
        t = profile.slowdown * profile.device_ms[k]
        if k < n:
            t += profile.overhead_ms + profile.overhead_ms_per_kib * profile.up_bytes[k] / 1024
            t += network.rtt_ms + profile.cloud_ms[k]
            t += network.transfer_ms(profile.up_bytes[k] + profile.down_bytes)
        out.append(t)
    return out


def best_split(profile: Profile, network: Network) -> int:
    """The split with the lowest predicted end-to-end latency under ``network``."""
    est = estimate_ms(profile, network)
    return int(np.argmin(est))


class SplitRunner:
    """Runs a frame split at ``k``: part A here (emulating a slower device), part B on the cloud service.

    When the service is unreachable or too slow it falls back to the full model on the device, and the
    result says so (``fallback=True`` and ``reason``).

        >>> runner = SplitRunner(partition, client, slowdown=8)  # doctest: +SKIP
        >>> result = runner.run(frame, split=3, network=NETWORKS["4g"])  # doctest: +SKIP
        >>> result.outputs["queue"], result.ms, result.fallback  # doctest: +SKIP
    """

    def __init__(
        self,
        partition: Partition,
        client: Any,
        *,
        slowdown: float = DEFAULT_SLOWDOWN,
        int8: bool = False,
        num_threads: int = 1,
        device_ms: Sequence[float] | None = None,
    ) -> None:
        if slowdown < 1:
            raise ValueError(f"slowdown is how much slower the device is than this machine (>= 1), got {slowdown!r}")
        self.partition = partition
        self.client = client
        self.slowdown = float(slowdown)
        self.int8 = int8
        n = partition.n_splits
        self.parts_a = [
            Part(c, num_threads=num_threads, name=f"a_{k}") if c is not None else None
            for k, c in enumerate(partition.a)
        ]
        self.full = self.parts_a[n]
        if device_ms is not None and len(device_ms) != n + 1:
            raise ValueError(f"device_ms needs one time per split (0..{n}), got {len(device_ms)}")
        self.device_ms = list(device_ms) if device_ms is not None else None

    def _device(self, fn: Callable[[], Any], k: int) -> Any:
        # The emulated device takes `slowdown` times this machine's time for part A. With reference
        # times (device_ms, e.g. Profile.device_ms) it pads to slowdown x reference, so a busy laptop
        # does not make the emulated Pi slower; without them it stretches the time just measured.
        t0 = time.perf_counter()
        value = fn()
        spent = time.perf_counter() - t0
        target = self.slowdown * (self.device_ms[k] / 1e3 if self.device_ms is not None else spent)
        if target > spent:
            time.sleep(target - spent)
        return value

    def run(self, frame: np.ndarray, split: int, *, network: Network | None = None) -> SplitResult:
        """One frame end to end at ``split``; ``network`` shapes the link (None: the service's default)."""
        n = self.partition.n_splits
        if not 0 <= split <= n:
            raise ValueError(f"split must be between 0 (all-cloud) and {n} (all-device), got {split}")
        frame = np.asarray(frame)
        t0 = time.perf_counter()
        if split == n:
            outputs = self._device(lambda: self.full(frame.astype(np.float32)), n)
            return SplitResult(outputs, (time.perf_counter() - t0) * 1e3, split)
        if split == 0:
            body, headers = (
                np.ascontiguousarray(frame, dtype=np.uint8).tobytes(),
                {"X-Dtype": "uint8", "X-Shape": ",".join(map(str, frame.shape))},
            )
        else:
            part = self.parts_a[split]
            body, headers = self._device(
                lambda: encode(part(frame.astype(np.float32))["activation"][0], int8=self.int8), split
            )
        try:
            outputs, _info = self.client.infer(split, body, headers, network=network)
        except (OSError, TimeoutError) as exc:
            outputs = self._device(lambda: self.full(frame.astype(np.float32)), n)
            problem = (
                f"timed out after {getattr(self.client, 'timeout', '?')} s"
                if isinstance(exc, TimeoutError)
                else f"unreachable ({exc})"
            )
            reason = f"cloud service {problem}; ran the full model on the device"
            return SplitResult(outputs, (time.perf_counter() - t0) * 1e3, split, fallback=True, reason=reason)
        return SplitResult(outputs, (time.perf_counter() - t0) * 1e3, split)


@dataclass
class SplitResult:
    outputs: dict[str, np.ndarray]
    ms: float
    split: int
    fallback: bool = False
    reason: str = ""


def profile(
    partition: Partition,
    client: Any,
    frame: np.ndarray,
    *,
    slowdown: float = DEFAULT_SLOWDOWN,
    runs: int = 15,
    num_threads: int = 1,
) -> Profile:
    """Measure every split's device time (here), cloud time (reported by the service) and bytes.

    The cloud time is the service's own compute time for part B (``X-Compute-Ms``), measured with
    shaping off; ``overhead_ms`` is the HTTP round trip on loopback for a tiny request.
    """
    n = partition.n_splits
    frame = np.asarray(frame, dtype=np.float32)
    device = [0.0] * (n + 1)
    cloud = [0.0] * (n + 1)
    activations: dict[int, np.ndarray] = {0: frame}
    for k in range(1, n + 1):
        part = Part(partition.a[k], num_threads=num_threads, name=f"a_{k}")
        device[k] = part.time_ms(frame, runs=runs)
        if k < n:
            activations[k] = part(frame)["activation"][0]
    fast = Network(bandwidth_mbps=1e6, rtt_ms=0.0, name="unshaped")
    down = 0
    for k in range(n):
        if k == 0:
            body, headers = (
                frame.astype(np.uint8).tobytes(),
                {"X-Dtype": "uint8", "X-Shape": ",".join(map(str, frame.shape))},
            )
        else:
            body, headers = encode(activations[k])
        times = []
        for i in range(runs + 2):
            _, info = client.infer(k, body, headers, network=fast)
            if i >= 2:
                times.append(info["compute_ms"])
            down = max(down, info["response_bytes"])
        cloud[k] = statistics.median(times)
    # HTTP and copying on loopback: a fixed part and a part per KiB sent, from pings of two sizes
    big = b"\0" * (256 * 1024)
    fixed = statistics.median(client.ping(network=fast) for _ in range(runs))
    loaded = statistics.median(client.ping(big, network=fast) for _ in range(runs))
    per_kib = max(0.0, (loaded - fixed) / 256)
    return Profile(
        device, cloud, partition.activation_bytes, down, fixed, per_kib, float(slowdown), list(partition.layer_names)
    )


def measure(runner: SplitRunner, frames: np.ndarray, network: Network) -> list[float]:
    """Measured median end-to-end milliseconds of every split under ``network`` (one frame after another)."""
    out = []
    for k in range(runner.partition.n_splits + 1):
        times = [runner.run(f, k, network=network).ms for f in frames]
        out.append(statistics.median(times))
    return out


def plot(
    profile: Profile, networks: dict[str, Network] | None = None, measured: dict[str, list[float]] | None = None
) -> Any:
    """Activation size per split (bars) and predicted (lines) / measured (dots) latency per network."""
    import matplotlib.pyplot as plt

    networks = networks or NETWORKS
    n = profile.n_splits
    names = ["frame"] + (profile.layer_names or [str(k) for k in range(1, n + 1)])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.bar(range(n + 1), [b / 1024 for b in profile.up_bytes], color="tab:gray")
    top.set_ylabel("sent at split (KiB)")
    top.set_title("what crosses the network after each layer")
    for name, net in networks.items():
        est = estimate_ms(profile, net)
        (line,) = bottom.plot(range(n + 1), est, marker="", label=f"{name}: model")
        if measured and name in measured:
            bottom.plot(range(n + 1), measured[name], "o", color=line.get_color(), label=f"{name}: measured")
        k = int(np.argmin(est))
        bottom.plot([k], [est[k]], "*", color=line.get_color(), markersize=14)
    bottom.set_yscale("log")
    bottom.set_ylabel("end-to-end latency (ms)")
    bottom.set_xticks(range(n + 1), names, rotation=45, ha="right")
    bottom.set_xlabel("cut after layer (0 = all-cloud, right = all-device)")
    bottom.legend(fontsize=7)
    fig.tight_layout()
    return fig
