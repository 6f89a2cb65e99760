"""ModelHost: run a ``.tflite`` model on camera frames, by name, quantized or not, and time it honestly.

    >>> from kit.ml import shipped_model
    >>> from kit.ml.host import ModelHost
    >>> from kit.sim.camera import SimCamera
    >>> from kit.sim.world import World
    >>> host = ModelHost(shipped_model(), num_threads=1)
    >>> frame = SimCamera(World(seed=1)).capture()   # uint8 (64, 64), as camera.capture() gives
    >>> out = host.predict(frame)
    >>> out["queue"].shape, out["pedestrian"].shape
    ((1, 3), (1, 1))
    >>> host.latency(frame, runs=20)["p50_ms"] > 0  # after a warm-up, over many runs
    True

Outputs are matched by the names in the model's signature (the order of outputs inside a
``.tflite`` file is not the order of the Keras model). Int8/uint8 inputs and outputs are
(de)quantized here with the scale and zero point stored in the file, so callers always pass
frames (uint8 0..255, or float 0..1) and get floats back. Only numpy and a TFLite runtime are
needed (see ``kit.ml.runtime``).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kit.errors import UsageError
from kit.ml import quiet, runtime, tflite
from kit.ml.tflite import ModelFileError  # noqa: F401 - raised here, importable from here


class ModelInputError(UsageError):
    """Frames given to the model have the wrong shape, dtype or range."""


def _card_sha256(card_file: Path, model: Path) -> str | None:
    """The sha256 ``card_file`` records for ``model`` (``None`` when the card does not describe that file)."""
    from kit.ml.card import ModelCard

    try:
        card = ModelCard.from_dict(json.loads(card_file.read_text()), card_file.parent)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelFileError(
            f"{card_file} (the model card of {model.name}) can't be read ({exc!r:.120}); "
            "restore it from the kit, or move it away to load the model unchecked"
        ) from None
    return card.sha256.get(model.name)


def verify_against_card(path: str | Path, content: bytes) -> Path | None:
    """Check ``content`` (the bytes of ``path``) against the sha256 of its model card; the card's path, or None.

    The card is ``NAME.json`` beside ``NAME.tflite`` or ``card.json`` in the same folder, when it lists
    the file. A mismatch raises ``ModelFileError`` naming both digests and what to do.
    """
    path = Path(path)
    for card_file in (path.with_suffix(".json"), path.parent / "card.json"):
        if card_file == path or not card_file.is_file():
            continue
        expected = _card_sha256(card_file, path)
        if expected is None:
            continue
        actual = hashlib.sha256(content).hexdigest()
        if actual != expected:
            raise ModelFileError(
                f"{path} does not match its model card {card_file.name}: sha256 {actual[:16]}..., the card says "
                f"{str(expected)[:16]}...; the file was changed or damaged. Reinstall or restore it (shipped models "
                "come with the kit), or retrain it with the card's reproduce command."
            )
        return card_file
    return None


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (batch first), dtype and quantization (scale, zero point; scale 0 = not quantized) of a tensor."""

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    def __repr__(self) -> str:
        # a lab shows `host.input`: plain values, not numpy's dtype('float32')
        return (
            f"TensorSpec(name={self.name!r}, index={self.index}, shape={self.shape}, dtype={self.dtype.name}, "
            f"scale={self.scale}, zero_point={self.zero_point})"
        )


def _spec(name: str, d: dict[str, Any]) -> TensorSpec:
    scale, zero = d.get("quantization", (0.0, 0))
    return TensorSpec(
        name, int(d["index"]), tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]), float(scale), int(zero)
    )


def resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a 2-D frame: block averages for whole-number shrink factors, nearest pixel otherwise."""
    h, w = frame.shape
    if (h, w) == (height, width):
        return frame
    if h % height == 0 and w % width == 0:
        fh, fw = h // height, w // width
        return frame.reshape(height, fh, width, fw).mean(axis=(1, 3))
    rows = ((np.arange(height) + 0.5) * h / height).astype(int)
    cols = ((np.arange(width) + 0.5) * w / width).astype(int)
    return frame[rows][:, cols]


class ModelHost:
    """A TFLite model ready to run on frames: named inputs and outputs, quantization, batches, timing.

        >>> import numpy as np
        >>> from kit.ml import MODELS_DIR
        >>> host = ModelHost(MODELS_DIR / "intersection.tflite", num_threads=2)
        >>> host.input.shape, host.output_names
        ((1, 64, 64, 1), ['pedestrian', 'queue'])
        >>> frames = np.zeros((5, 64, 64), np.uint8)  # (n, 64, 64) uint8 camera frames
        >>> {name: scores.shape for name, scores in sorted(host.predict(frames).items())}
        {'pedestrian': (5, 1), 'queue': (5, 3)}

    Wrong frames raise ``ModelInputError`` saying what was expected; a missing or broken file
    raises ``FileNotFoundError`` or ``ModelFileError``. ``predict`` is safe to call from several
    threads (one call runs at a time: a TFLite interpreter is not re-entrant).

    A model that comes with a card (``NAME.json`` beside ``NAME.tflite``, or ``card.json`` in its
    folder, as every shipped model does) is checked against the card's sha256 before it is loaded: a
    file with flipped bytes raises ``ModelFileError`` instead of predicting silently. ``verify=False``
    skips the check (for a file whose card is about to be written).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        num_threads: int = 1,
        signature: str | None = None,
        verify: bool = True,
        content: bytes | None = None,
    ) -> None:
        self.path = Path(path)
        if content is None:
            content = tflite.read(self.path)  # missing, not TFLite, or truncated: one clear error
            self.card_path = verify_against_card(self.path, content) if verify else None
        else:  # the bytes of a file inside another (a model bundle, kit.ml.ota.bundle, checks them): path names it
            tflite.check(content, str(self.path))
            self.card_path = None
        if int(num_threads) != num_threads or num_threads < 1:
            raise ValueError(f"num_threads must be a whole number >= 1, got {num_threads!r}")
        self.num_threads = int(num_threads)
        with quiet.native_stderr():  # LiteRT announces its XNNPACK delegate on stderr when it allocates
            self.interpreter = tflite.load(content, num_threads=self.num_threads, where=str(self.path))
        self.runtime = runtime.RUNTIME
        self.size_bytes = len(content)
        self._lock = threading.Lock()
        self.inputs, self.outputs = self._read_signature(signature)
        self._batch = self.input.shape[0]

    def _read_signature(self, signature: str | None) -> tuple[dict[str, TensorSpec], dict[str, TensorSpec]]:
        signatures = self.interpreter.get_signature_list()
        if signature is not None and signature not in signatures:
            raise ModelFileError(f"{self.path} has no signature {signature!r}; it has {sorted(signatures)}")
        if signatures:
            key = signature or next(iter(signatures))
            if len(signatures) > 1 and key != next(iter(signatures)):
                # the tensor indices of other signatures belong to other subgraphs
                raise ModelFileError(f"only the first signature of a multi-signature model can be hosted, got {key!r}")
            runner = self.interpreter.get_signature_runner(key)
            ins = {n: _spec(n, d) for n, d in runner.get_input_details().items()}
            outs = {n: _spec(n, d) for n, d in runner.get_output_details().items()}
        else:  # no signature (old converters): fall back on tensor names
            ins = {d["name"]: _spec(d["name"], d) for d in self.interpreter.get_input_details()}
            outs = {d["name"]: _spec(d["name"], d) for d in self.interpreter.get_output_details()}
        if len(ins) > 1:
            # a fused model: the camera frame is the input named "frame" (or the only image-shaped one);
            # the others (e.g. "sensors") are passed by name to predict()/run()
            images = [n for n, spec in ins.items() if len(spec.shape) == 4]
            frame = "frame" if "frame" in ins else (images[0] if len(images) == 1 else None)
            if frame is None:
                raise ModelFileError(
                    f"{self.path} has inputs {sorted(ins)} and none is the camera frame (name one input 'frame')"
                )
            ins = {frame: ins[frame], **{n: spec for n, spec in ins.items() if n != frame}}
        return ins, outs

    # -- what the model expects -----------------------------------------------------------
    @property
    def input(self) -> TensorSpec:
        """The frame input tensor (the only input of a camera model)."""
        return next(iter(self.inputs.values()))

    @property
    def extra_inputs(self) -> dict[str, TensorSpec]:
        """Inputs besides the frame (e.g. ``sensors`` of a fused model), passed to ``predict`` by name."""
        return {n: spec for n, spec in self.inputs.items() if n != self.input_name}

    @property
    def input_name(self) -> str:
        return self.input.name

    @property
    def output_names(self) -> list[str]:
        return sorted(self.outputs)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(height, width) of the frames the model takes."""
        return self.input.shape[1], self.input.shape[2]

    @property
    def quantized(self) -> bool:
        """True when the model's input is integer (int8/uint8) and frames are quantized here."""
        return self.input.quantized

    def __repr__(self) -> str:
        kind = f"{self.input.dtype.name} in" + (" (quantized)" if self.quantized else "")
        return (
            f"<ModelHost {self.path.name} {kind}, input {self.input_name} {self.input.shape}, "
            f"outputs {self.output_names}, {self.runtime}, {self.num_threads} thread(s)>"
        )

    # -- frames in ------------------------------------------------------------------------
    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        """A camera frame of any size, gray or RGB, as the uint8 (height, width) frame the model takes."""
        from kit.camera import to_gray

        gray = to_gray(frame).astype(np.float32)
        h, w = self.frame_shape
        return (resize(gray, h, w) + 0.5).astype(np.uint8) if gray.shape != (h, w) else gray.astype(np.uint8)

    def to_input(self, frames: np.ndarray) -> np.ndarray:
        """Frames (one or a batch; uint8 0..255 or float 0..1) as the float32 (n, h, w, c) array the model takes."""
        x = np.asarray(frames)
        _, h, w, c = self.input.shape
        if x.dtype == np.uint8:
            x = x.astype(np.float32) * np.float32(1 / 255)
        elif np.issubdtype(x.dtype, np.floating):
            if x.size and not np.isfinite(x).all():
                raise ModelInputError("float frames must be in 0..1, got NaN or infinite values")
            if x.size and (x.min() < 0 or x.max() > 1):
                raise ModelInputError(
                    f"float frames must be in 0..1, got values from {x.min():.3g} to {x.max():.3g}; "
                    "pass uint8 frames (0..255) as the camera gives them, or divide by 255"
                )
            x = x.astype(np.float32, copy=False)
        else:
            raise ModelInputError(
                f"frames must be uint8 (0..255) or float (0..1), got dtype {x.dtype}; "
                "use camera.capture() frames or host.preprocess(frame)"
            )
        if x.shape in ((h, w), (h, w, c)):
            x = x.reshape(1, h, w, c)
        elif x.ndim == 3 and x.shape[1:] == (h, w):
            x = x.reshape(x.shape[0], h, w, c)
        elif x.ndim == 4 and x.shape[1:] == (h, w, c):
            pass
        else:
            raise ModelInputError(
                f"input {self.input_name!r} takes frames of shape ({h}, {w}) or batches (n, {h}, {w}), got {x.shape}; "
                f"convert a camera frame with host.preprocess(frame) (gray, resized to {h}x{w})"
            )
        if x.shape[0] == 0:
            raise ModelInputError("got an empty batch (0 frames)")
        return x

    def _quantize(self, x: np.ndarray, spec: TensorSpec | None = None) -> np.ndarray:
        spec = spec or self.input
        if not spec.quantized:
            return x.astype(spec.dtype, copy=False)
        info = np.iinfo(spec.dtype)
        q = np.round(x / spec.scale) + spec.zero_point
        return np.clip(q, info.min, info.max).astype(spec.dtype)

    @staticmethod
    def _dequantize(spec: TensorSpec, y: np.ndarray) -> np.ndarray:
        if not spec.quantized:
            return y.astype(np.float32, copy=False)
        return (y.astype(np.float32) - spec.zero_point) * np.float32(spec.scale)

    # -- running --------------------------------------------------------------------------
    def _resize_batch(self, n: int) -> bool:
        if n == self._batch:
            return True
        try:
            for spec in self.inputs.values():
                self.interpreter.resize_tensor_input(spec.index, [n, *spec.shape[1:]])
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError):  # a model converted with a fixed batch of 1
            for spec in self.inputs.values():
                self.interpreter.resize_tensor_input(spec.index, list(spec.shape))
            self.interpreter.allocate_tensors()
            self._batch = self.input.shape[0]
            return False
        self._batch = n
        return True

    def _run(self, q: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        it = self.interpreter
        for name, value in q.items():
            it.set_tensor(self.inputs[name].index, value)
        it.invoke()
        return {name: self._dequantize(spec, it.get_tensor(spec.index)) for name, spec in self.outputs.items()}

    def predict(self, frames: np.ndarray, **extra: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model: output name -> float32 array with the batch first ((1, ...) for a single frame).

        A fused model takes its other inputs by name, one row per frame:
        ``host.predict(frame, sensors=vector)``.
        """
        x = self.to_input(frames)
        return self.run(x, **{name: self._extra(name, value, len(x)) for name, value in extra.items()})

    def _extra(self, name: str, value: Any, n: int) -> np.ndarray:
        spec = self.extra_inputs.get(name)
        if spec is None:
            raise ModelInputError(f"{self.path.name} has no input {name!r}; its inputs are {list(self.inputs)}")
        v = np.asarray(value, dtype=np.float32)
        if v.shape == spec.shape[1:]:
            v = v[None]
        if v.shape != (n, *spec.shape[1:]):
            raise ModelInputError(
                f"input {name!r} takes one row of shape {spec.shape[1:]} per frame ({n} frame(s)), got {v.shape}"
            )
        if not np.isfinite(v).all():
            raise ModelInputError(f"input {name!r} has NaN or infinite values; mark a failed sensor as missing instead")
        return v

    def run(self, x: np.ndarray, **extra: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model on a float array already shaped like the input, batch first (no frame checks).

        For models whose input is not a camera frame (e.g. the second part of a split model taking
        activations); int8 inputs are still quantized here and outputs dequantized.
        """
        x = np.asarray(x)
        if x.ndim != len(self.input.shape) or x.shape[1:] != self.input.shape[1:] or x.shape[0] < 1:
            raise ModelInputError(
                f"input {self.input_name!r} takes arrays of shape (n, {', '.join(map(str, self.input.shape[1:]))}), "
                f"got {x.shape}"
            )
        if not np.issubdtype(x.dtype, np.floating):
            raise ModelInputError(f"run() takes float arrays (it quantizes them itself), got dtype {x.dtype}")
        missing = set(self.extra_inputs) - set(extra)
        if missing:
            raise ModelInputError(
                f"{self.path.name} also takes input(s) {sorted(missing)}: "
                f"pass them by name, e.g. host.predict(frame, {sorted(missing)[0]}=...)"
            )
        q = {self.input_name: self._quantize(x.astype(np.float32, copy=False))}
        for name, value in extra.items():
            q[name] = self._quantize(self._extra(name, value, len(x)), self.inputs[name])
        n = x.shape[0]
        with self._lock:
            if self._resize_batch(n):
                return self._run(q)
            parts = [self._run({k: v[i : i + 1] for k, v in q.items()}) for i in range(n)]
        return {name: np.concatenate([p[name] for p in parts]) for name in self.outputs}

    def predict_batches(self, frames: np.ndarray, batch_size: int = 64, **extra: np.ndarray) -> dict[str, np.ndarray]:
        """``predict`` over many frames in chunks of `batch_size` (keeps memory flat); extra inputs follow."""
        parts = [
            self.predict(frames[i : i + batch_size], **{k: np.asarray(v)[i : i + batch_size] for k, v in extra.items()})
            for i in range(0, len(frames), batch_size)
        ]
        return {name: np.concatenate([p[name] for p in parts]) for name in self.outputs}

    def latency(
        self, frames: np.ndarray, *, warmup: int = 10, runs: int = 100, batch_size: int = 1, **extra: np.ndarray
    ) -> dict[str, Any]:
        """Wall-clock time of ``predict`` per call after `warmup` calls: p50, p95, p25/p75 (the spread), mean (ms) over `runs`.

        Frames are taken in turn (`batch_size` per call) from `frames` (one frame or a batch), so
        the figures include preprocessing and (de)quantization: what an application pays.
        ``per_frame_ms`` is p50 divided by the batch size. Extra inputs of a fused model are given as
        one row (e.g. ``sensors=vector``), repeated for every frame of a call.
        """
        rows = {
            k: np.repeat(np.asarray(v, dtype=np.float32).reshape(1, -1), batch_size, axis=0) for k, v in extra.items()
        }
        x = np.asarray(frames)
        if x.shape in (self.frame_shape, (*self.frame_shape, self.input.shape[3])):
            x = x[None]  # one frame
        if runs < 1 or warmup < 0 or batch_size < 1:
            raise ValueError(f"need runs >= 1, warmup >= 0, batch_size >= 1; got {runs}, {warmup}, {batch_size}")
        reps = -(-batch_size // len(x))
        pool = np.concatenate([x] * reps) if reps > 1 else x
        starts = [(i * batch_size) % (len(pool) - batch_size + 1) for i in range(warmup + runs)]
        for s in starts[:warmup]:
            self.predict(pool[s : s + batch_size], **rows)
        times = np.empty(runs)
        clock = time.perf_counter
        for k, s in enumerate(starts[warmup:]):
            chunk = pool[s : s + batch_size]
            t0 = clock()
            self.predict(chunk, **rows)
            times[k] = clock() - t0
        times *= 1e3
        p25, p50, p75, p95 = np.percentile(times, [25, 50, 75, 95])
        return {
            "p50_ms": float(p50),
            "p95_ms": float(p95),
            "p25_ms": float(p25),
            "p75_ms": float(p75),
            "mean_ms": float(times.mean()),
            "min_ms": float(times.min()),
            "per_frame_ms": float(p50 / batch_size),
            "runs": runs,
            "warmup": warmup,
            "batch_size": batch_size,
            "num_threads": self.num_threads,
            "runtime": self.runtime,
        }
