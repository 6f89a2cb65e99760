"""Is a delivered file a model this device can run in place of the current one? Checked before any canary.

In order, each failure one clear line (``CandidateError``):

1. the bytes have the sha256 the deployment named (and that the model card records for the file);
2. they are a whole TFLite model that the installed runtime loads (``kit.ml.tflite``), or a model bundle
   (``kit.ml.ota.bundle``: the fused model's two parts, each with the sha256 its card lists);
3. its signature is compatible with what the app feeds and reads: the camera frame's shape, the sensor
   vector (a fused model: the same readings by name), and every output the current model has (at least
   ``queue`` with 3 classes) with the same shape;
4. a load test: a few synthetic frames give finite outputs, probabilities in 0..1 that sum to 1.

    >>> from kit.ml import shipped_model
    >>> from kit.ml.host import ModelHost
    >>> host = verify_candidate(shipped_model(), signature_of(ModelHost(shipped_model())))
    >>> host.output_names
    ['pedestrian', 'queue']
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kit.errors import KitRuntimeError


class CandidateError(KitRuntimeError):
    """A delivered model failed a check (named in the message); the device keeps running the current one."""


def _app_sensors() -> tuple[str, ...]:
    from kit.ml.sensors import SENSORS

    return tuple(SENSORS)


@dataclass(frozen=True)
class Signature:
    """What the app relies on: the frame shape (height, width), the outputs it reads (name -> shape without
    batch) and the sensor vector it can feed beside the frame (``kit.ml.sensors.SENSORS``; empty: none)."""

    frame: tuple[int, int] = (64, 64)
    outputs: dict[str, tuple[int, ...]] = field(default_factory=lambda: {"queue": (3,)})
    sensors: tuple[str, ...] = field(default_factory=_app_sensors)


def signature_of(host: Any) -> Signature:
    """The signature of a hosted model (a ``ModelHost``); the camera model's default for other hosts.

    A fused host's is the default too: the app reads its queue, and its pedestrian output when a model has
    one (a delivered queue-only model leaves the pedestrian to the PIR sensor)."""
    if hasattr(host, "frame_shape") and hasattr(host, "outputs"):
        return Signature(tuple(host.frame_shape), {n: tuple(s.shape[1:]) for n, s in host.outputs.items()})
    return Signature()  # e.g. the early-exit host: a 64x64 frame in, 3 queue classes out


def load_host(path: str | Path, *, num_threads: int = 1) -> Any:
    """The host of a model file the device committed (checked before): a ``ModelHost``, or a ``FusedHost``
    for a model bundle (:mod:`kit.ml.ota.bundle`)."""
    from kit.ml.host import ModelHost
    from kit.ml.ota import bundle

    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if bundle.is_bundle(head):
        return bundle.load(path.read_bytes(), where=str(path), num_threads=num_threads)
    return ModelHost(path, num_threads=num_threads, verify=False)


def queue_of(host: Any, frame: Any, sensors: Any = None) -> np.ndarray:
    """The queue probabilities (3,) of any hosted model for one frame (a fused one also reads ``sensors``)."""
    from kit.ml.fusion import FusedHost

    if isinstance(host, FusedHost):
        if sensors is None:
            raise CandidateError("a fused model needs the sensor vector with each frame; none was given")
        return np.asarray(host.predict(frame, sensors).queue_probs, np.float64).reshape(-1)
    out = host.predict(frame)
    if hasattr(out, "probs"):  # the early-exit host
        return np.asarray(out.probs, np.float64).reshape(-1)
    return np.asarray(out["queue"][0], np.float64)


def _card_problems(card: dict[str, Any], sha256: str, host: Any) -> list[str]:
    problems = []
    listed = card.get("sha256")
    digests = set(listed.values()) if isinstance(listed, dict) else {listed}
    if sha256 not in digests:
        problems.append(
            f"the model card does not list this file's sha256 {sha256[:12]}... (it lists "
            f"{', '.join(str(d)[:12] + '...' for d in digests if d) or 'none'})"
        )
    outputs = card.get("outputs")
    if isinstance(outputs, dict) and outputs and not set(outputs) <= set(host.output_names):
        problems.append(f"the card names outputs {sorted(outputs)} but the file has {host.output_names}")
    return problems


def verify_candidate(
    path: str | Path,
    expected: Signature,
    *,
    sha256: str | None = None,
    card: bytes | dict[str, Any] | None = None,
    seed: int = 0,
) -> Any:
    """Run every check on the model file at ``path``; the loaded ``ModelHost`` when all pass."""
    from kit.ml import tflite
    from kit.ml.host import ModelHost

    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise CandidateError(f"can't read the delivered model {path} ({exc.strerror})") from None
    digest = hashlib.sha256(content).hexdigest()
    if sha256 is not None and digest != sha256:
        raise CandidateError(f"sha256 mismatch: the file is {digest[:12]}..., the deployment says {sha256[:12]}...")
    if card is not None and isinstance(card, (bytes, bytearray)):
        try:
            card = json.loads(card)
        except ValueError as exc:
            raise CandidateError(f"its model card is not JSON ({exc})") from None
    from kit.ml.ota import bundle

    if bundle.is_bundle(content):
        return _verify_bundle(content, path, expected, card, seed)
    try:
        tflite.check(content, path.name)
        host = ModelHost(path, num_threads=1, verify=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise CandidateError(f"the runtime can't load it: {exc}") from None
    if card is not None:
        problems = _card_problems(card, digest, host)
        if problems:
            raise CandidateError("card check failed: " + "; ".join(problems))
    if len(host.input.shape) != 4 or tuple(host.frame_shape) != tuple(expected.frame) or host.input.shape[-1] != 1:
        raise CandidateError(
            f"signature: it takes frames of {host.input.shape[1:]}, the camera gives {(*expected.frame, 1)}"
        )
    if host.extra_inputs:
        raise CandidateError(
            f"signature: it also needs input(s) {sorted(host.extra_inputs)} that the app does not feed"
        )
    for name, shape in expected.outputs.items():
        if name not in host.outputs:
            raise CandidateError(f"signature: it has no output {name!r} (it has {host.output_names})")
        got = tuple(host.outputs[name].shape[1:])
        if got != tuple(shape):
            raise CandidateError(f"signature: output {name!r} has shape {got}, the app reads {tuple(shape)}")
    rng = np.random.default_rng(seed)
    frames = np.stack(
        [
            np.zeros(expected.frame, np.uint8),
            np.full(expected.frame, 255, np.uint8),
            rng.integers(0, 256, expected.frame, dtype=np.uint8),
        ]
    )
    try:
        out = host.predict(frames)
    except Exception as exc:  # noqa: BLE001 - whatever the runtime raises, the candidate is refused
        raise CandidateError(f"load test: predicting 3 frames failed ({type(exc).__name__}: {exc})") from None
    for name, value in out.items():
        if not np.isfinite(value).all():
            raise CandidateError(f"load test: output {name!r} has NaN or infinite values")
    queue = out.get("queue")
    if queue is not None and (
        queue.min() < -1e-3 or queue.max() > 1 + 1e-3 or not np.allclose(queue.sum(axis=1), 1.0, atol=0.05)
    ):
        raise CandidateError(
            "load test: 'queue' is not a probability distribution (values outside 0..1 or not summing to 1)"
        )
    return host


def _verify_bundle(content: bytes, path: Path, expected: Signature, card: dict[str, Any] | None, seed: int) -> Any:
    """The checks of a model bundle (the fused model's parts): each part against the card, then the signature
    (frame, the sensor vector by name, queue and pedestrian outputs) and a load test with sensor vectors."""
    from kit.ml.ota import bundle

    try:
        host = bundle.load(content, where=str(path))
    except bundle.BundleError as exc:
        raise CandidateError(str(exc)) from None
    except (ValueError, RuntimeError, OSError) as exc:
        raise CandidateError(f"the runtime can't load it: {exc}") from None
    inner = host.card
    if card is not None:
        listed = card.get("sha256") if isinstance(card, dict) else None
        parts = {p.path.name: p.size_bytes for p in (host.stem, host.rest)}
        wrong = [n for n in parts if not isinstance(listed, dict) or listed.get(n) != inner["sha256"].get(n)]
        if wrong:
            raise CandidateError(
                f"card check failed: the delivered card does not list the bundle's {', '.join(sorted(wrong))}"
            )
    names = tuple(((inner.get("inputs") or {}).get("sensors") or {}).get("names") or ())
    if not expected.sensors:
        raise CandidateError("signature: a fused model needs the sensor vector, and this app feeds frames only")
    if names != tuple(expected.sensors):
        raise CandidateError(
            f"signature: it reads the sensors {list(names)}, the app feeds {list(expected.sensors)} "
            "(another version of kit.ml.sensors)"
        )
    stem = host.stem
    if len(stem.input.shape) != 4 or tuple(stem.frame_shape) != tuple(expected.frame) or stem.input.shape[-1] != 1:
        raise CandidateError(
            f"signature: it takes frames of {stem.input.shape[1:]}, the camera gives {(*expected.frame, 1)}"
        )
    for part in (stem, host.rest):
        extra = part.extra_inputs
        if set(extra) != {"sensors"} or tuple(extra["sensors"].shape[1:]) != (len(names),):
            raise CandidateError(
                f"signature: {part.path.name} takes {sorted(extra) or 'no'} extra input(s), "
                f"not the {len(names)} sensor readings its card names"
            )
    shapes = {"queue": (3,), "pedestrian": (1,)}
    for name, shape in expected.outputs.items():
        if shapes.get(name) != tuple(shape):
            raise CandidateError(f"signature: the app reads {name!r} {tuple(shape)}, a fused model gives {shapes}")
    if tuple(host.rest.outputs["queue"].shape[1:]) != (3,) or tuple(host.rest.outputs["pedestrian"].shape[1:]) != (1,):
        raise CandidateError(f"signature: its rest gives {host.rest.output_names} of other shapes than {shapes}")
    rng = np.random.default_rng(seed)
    frames = [np.zeros(expected.frame, np.uint8), np.full(expected.frame, 255, np.uint8)]
    frames.append(rng.integers(0, 256, expected.frame, dtype=np.uint8))
    vectors = [np.zeros(len(names), np.float32), np.ones(len(names), np.float32)]
    vectors.append(rng.random(len(names)).astype(np.float32))
    try:
        out = host.both(np.stack(frames), np.stack(vectors))
    except Exception as exc:  # noqa: BLE001 - whatever the runtime raises, the candidate is refused
        raise CandidateError(f"load test: predicting 3 frames failed ({type(exc).__name__}: {exc})") from None
    for name, value in out.items():
        if not np.isfinite(value).all():
            raise CandidateError(f"load test: output {name!r} has NaN or infinite values")
    for name in ("exit_queue", "queue"):
        q = out[name]
        if q.min() < -1e-3 or q.max() > 1 + 1e-3 or not np.allclose(q.sum(axis=1), 1.0, atol=0.05):
            raise CandidateError(f"load test: {name!r} is not a probability distribution")
    return host
