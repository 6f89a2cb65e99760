"""An adapted head as a complete model file: new queue-head weights written into a float32 ``.tflite``.

On-device adaptation (:mod:`kit.ml.adapt`) retrains the softmax head in numpy. To deliver that head
through the same verification, canary and swap as any other model, the device writes the new weights
in place of the old ones inside a copy of the running ``.tflite``: a fully-connected layer's weights are
one float32 buffer (stored transposed, ``(classes, features)``) and its bias another, so the patched
file is the same model with another head, loaded by the same runtime. No TensorFlow is needed.

    >>> import numpy as np
    >>> from kit.ml import shipped_model
    >>> kernel, bias = shipped_head()
    >>> data = patch_head(shipped_model().read_bytes(), kernel, bias, kernel * 2, bias)
    >>> len(data) == shipped_model().stat().st_size
    True

``features(host, frames)`` gives the 64 pooled features the head reads (the runtime keeps the
intermediate tensor when asked), so the head can be trained on them on the device.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from kit.errors import UsageError

POOL_TENSOR = "pool"  # kit.ml.model: the global average pooling the heads read


def shipped_head(name: str = "intersection") -> tuple[np.ndarray, np.ndarray]:
    """The queue head (kernel (64, 3), bias (3,)) of a shipped float32 model, from its Keras weights."""
    from kit.ml import MODELS_DIR

    w = np.load(MODELS_DIR / f"{name}.weights.npz")
    arrays = [w[k] for k in sorted(w.files, key=lambda k: int(k.split("_")[1]))]
    return arrays[-2].astype(np.float32), arrays[-1].astype(np.float32)


def patch_head(
    content: bytes, kernel: np.ndarray, bias: np.ndarray, new_kernel: np.ndarray, new_bias: np.ndarray
) -> bytes:
    """A copy of ``content`` with the head (kernel, bias) replaced by (new_kernel, new_bias), same shapes."""
    kernel, bias = np.asarray(kernel, np.float32), np.asarray(bias, np.float32)
    new_kernel, new_bias = np.asarray(new_kernel, np.float32), np.asarray(new_bias, np.float32)
    if new_kernel.shape != kernel.shape or new_bias.shape != bias.shape:
        raise UsageError(
            f"the new head must have the old one's shapes {kernel.shape}, {bias.shape}; "
            f"got {new_kernel.shape}, {new_bias.shape}"
        )
    if not (np.isfinite(new_kernel).all() and np.isfinite(new_bias).all()):
        raise UsageError("the new head has NaN or infinite weights; adapt again with a smaller learning rate")
    out = bytearray(content)
    for old, new in ((kernel.T.copy(), new_kernel.T.copy()), (bias, new_bias)):
        raw = old.tobytes()
        at = content.find(raw)
        if at < 0 or content.find(raw, at + 1) >= 0:
            raise UsageError(
                "the head's weights are not stored once, as float32, in this model file: only a float32 "
                "model made from these weights can be patched"
            )
        out[at : at + len(raw)] = new.tobytes()
    return bytes(out)


def features(path: str | Path, frames: np.ndarray) -> np.ndarray:
    """The pooled features (n, 64) the head of the model at ``path`` reads, for uint8 frames (n, h, w)."""
    from kit.ml import quiet, runtime, tflite

    content = tflite.read(path)
    import warnings

    with warnings.catch_warnings(), quiet.native_stderr():  # XNNPACK announces itself on stderr when it allocates
        warnings.simplefilter("ignore")  # the runtime warns that keeping tensors is for debugging
        it = runtime.Interpreter(model_content=content, num_threads=1, experimental_preserve_all_tensors=True)
        it.allocate_tensors()
    pool = [d["index"] for d in it.get_tensor_details() if f"/{POOL_TENSOR}" in d["name"] and len(d["shape"]) == 2]
    if not pool:
        raise UsageError(f"{path} has no '{POOL_TENSOR}' tensor; head adaptation needs the kit's camera model")
    inp = it.get_input_details()[0]
    out = []
    for frame in np.asarray(frames):
        it.set_tensor(inp["index"], (frame.astype(np.float32) / 255.0).reshape(inp["shape"]))
        it.invoke()
        out.append(it.get_tensor(pool[0])[0].copy())
    return np.stack(out)


def write_candidate(
    content: bytes, folder: str | Path, name: str, *, base_card: dict[str, Any] | None = None, note: str = ""
) -> Path:
    """Write ``NAME.tflite`` and a card listing its sha256 (``NAME.json``) into ``folder``; the model's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.tflite"
    path.write_bytes(content)
    card = {k: v for k, v in (base_card or {}).items() if not k.startswith("_")}
    card.update(
        {
            "name": name,
            "file": path.name,
            "sha256": hashlib.sha256(content).hexdigest(),
            "size_bytes": len(content),
            "reproduce": note or card.get("reproduce", ""),
        }
    )
    path.with_suffix(".json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return path


def adapted_model(
    path: str | Path,
    frames: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    epochs: int = 300,
    lr: float = 0.5,
    l2: float = 1e-3,
    name: str = "intersection",
) -> bytes:
    """On-device head adaptation (:class:`kit.ml.adapt.SoftmaxHead`) on labelled frames, as a complete ``.tflite``.

    ``labels`` are queue classes (e.g. from the ultrasonic sensor's queue count); the head starts from the
    shipped one and an L2 pull keeps it near it. The result is a candidate for :meth:`Updater.offer_file`.
    """
    from kit.ml.adapt import SoftmaxHead

    kernel, bias = shipped_head(name)
    head = SoftmaxHead(kernel.copy(), bias.copy()).fit(
        features(path, frames), np.asarray(labels), epochs=epochs, lr=lr, l2=l2, seed=seed
    )
    return patch_head(Path(path).read_bytes(), kernel, bias, head.weights, head.bias)
