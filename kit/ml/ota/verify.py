"""Is a delivered file a model this device can run in place of the current one? Checked before any canary.

In order, each failure one clear line (``CandidateError``):

1. the bytes have the sha256 the deployment named (and that the model card records for the file);
2. they are a whole TFLite model that the installed runtime loads (``kit.ml.tflite``);
3. its signature is compatible with what the app feeds and reads: the camera frame's shape, and every
   output the current model has (at least ``queue`` with 3 classes) with the same shape;
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


@dataclass(frozen=True)
class Signature:
    """What the app relies on: the frame shape (height, width) and the outputs it reads (name -> shape without batch)."""

    frame: tuple[int, int] = (64, 64)
    outputs: dict[str, tuple[int, ...]] = field(default_factory=lambda: {"queue": (3,)})


def signature_of(host: Any) -> Signature:
    """The signature of a hosted model (a ``ModelHost``); the camera model's default for other hosts."""
    if hasattr(host, "frame_shape") and hasattr(host, "outputs"):
        return Signature(tuple(host.frame_shape), {n: tuple(s.shape[1:]) for n, s in host.outputs.items()})
    return Signature()  # e.g. the early-exit host: a 64x64 frame in, 3 queue classes out


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
    try:
        tflite.check(content, path.name)
        host = ModelHost(path, num_threads=1, verify=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise CandidateError(f"the runtime can't load it: {exc}") from None
    if card is not None:
        if isinstance(card, (bytes, bytearray)):
            try:
                card = json.loads(card)
            except ValueError as exc:
                raise CandidateError(f"its model card is not JSON ({exc})") from None
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
