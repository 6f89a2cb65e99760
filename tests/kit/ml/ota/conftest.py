"""Model files for the over-the-air tests: the shipped float32 model and head-patched variants of it."""

from __future__ import annotations

import numpy as np
import pytest

from kit.ml import shipped_model
from kit.ml.card import load_card
from kit.ml.data import make_dataset
from kit.ml.ota.headpatch import patch_head, shipped_head, write_candidate


@pytest.fixture(scope="session")
def variants(tmp_path_factory):
    """name -> .tflite path (each with its card): "good" (same decisions, another file), "flat" (unsure
    of everything), "rolled" (confident and wrong: every class shifted by one)."""
    folder = tmp_path_factory.mktemp("ota-models")
    base = shipped_model().read_bytes()
    kernel, bias = shipped_head()
    card = load_card("intersection")
    heads = {
        "good": (kernel, bias + np.float32(1e-3)),
        "flat": (kernel * np.float32(0.0), bias * np.float32(0.0)),
        "rolled": (np.roll(kernel, 1, axis=1), np.roll(bias, 1)),
    }
    return {
        name: write_candidate(patch_head(base, kernel, bias, k, b), folder, name, base_card=card)
        for name, (k, b) in heads.items()
    }


@pytest.fixture(scope="session")
def day_frames():
    """64 daylight frames and their true queue classes (what a sensor would say)."""
    data = make_dataset(64, seed=4242, conditions="day")
    return data.x, data.queue


def _fused_folder(folder, stem, rest, note):
    """A fused model folder (card.json + float32 parts) like kit/models/fusion, its card listing these parts."""
    import hashlib
    import json

    from kit.ml import MODELS_DIR

    folder.mkdir(parents=True, exist_ok=True)
    card = json.loads((MODELS_DIR / "fusion" / "card.json").read_text())
    (folder / "stem.tflite").write_bytes(stem)
    (folder / "rest.tflite").write_bytes(rest)
    card["sha256"] = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in ("stem.tflite", "rest.tflite")}
    card["files"] = ["stem.tflite", "rest.tflite"]
    card["precision"], card["reproduce"] = "float32", note
    (folder / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return folder


def _queue_head(content, name):
    """The queue head (kernel (features, 3), bias (3,)) stored in a float32 fused part, read by the runtime."""
    from kit.ml import tflite

    it = tflite.load(content)
    found = {d["name"]: d["index"] for d in it.get_tensor_details()}
    kernel = next(i for n, i in found.items() if n.endswith(f"/{name}_1/MatMul"))
    bias = next(i for n, i in found.items() if n.endswith(f"/{name}_1/BiasAdd"))
    return it.get_tensor(kernel).T.copy(), it.get_tensor(bias).copy()


@pytest.fixture(scope="session")
def fused_variants(tmp_path_factory):
    """name -> a fused model folder: "good" (the shipped model's float32 parts: same decisions, another bundle than
    the int8 one the app runs), "rolled" (both queue heads, the stem's exit and the rest's, shifted by one class)."""
    from kit.ml import MODELS_DIR

    root = tmp_path_factory.mktemp("ota-fused")
    stem = (MODELS_DIR / "fusion" / "stem.tflite").read_bytes()
    rest = (MODELS_DIR / "fusion" / "rest.tflite").read_bytes()
    rolled = []
    for content, head in ((stem, "exit_queue"), (rest, "queue")):
        kernel, bias = _queue_head(content, head)
        rolled.append(patch_head(content, kernel, bias, np.roll(kernel, 1, axis=1), np.roll(bias, 1)))
    return {
        "good": _fused_folder(root / "good", stem, rest, "the shipped fusion model's float32 parts"),
        "rolled": _fused_folder(root / "rolled", *rolled, "queue heads rolled by one class: confident and wrong"),
    }


@pytest.fixture(scope="session")
def fused_frames():
    """64 daylight frames with their sensor vectors and true queue classes."""
    from kit.ml.data import make_fused_dataset

    data = make_fused_dataset(64, seed=4243, conditions="day")
    return data.x, data.sensors, data.queue
