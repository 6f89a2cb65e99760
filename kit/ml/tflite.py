"""One way to make a ``.tflite`` file and one way to load one: every technique in the kit uses these.

``convert`` turns a Keras model into a TFLite flatbuffer in one of four variants:

| variant | weights | activations | input/output | needs data |
|---|---|---|---|---|
| ``float32`` | float32 | float32 | float32 | no |
| ``dynamic`` | int8 | float32 (int8 inside matmuls where the kernel allows) | float32 | no |
| ``float16`` | float16 (dequantized on CPU at load) | float32 | float32 | no |
| ``int8`` | int8 | int8 | int8 | a representative dataset |

``load`` checks that bytes are a whole TFLite model (the ``TFL3`` identifier, every table and
buffer inside the file: tflite-runtime 2.14 crashes the process on a truncated model instead of
raising) and builds an interpreter of the installed runtime (``kit.ml.runtime``) with its tensors
allocated.

    >>> from kit.ml import tflite, shipped_model
    >>> interpreter = tflite.load(shipped_model())                  # a path or the file's bytes
    >>> sorted(interpreter.get_signature_list())
    ['serving_default']
    >>> data = tflite.convert(keras_model, "int8", representative=x_train[:200])   # doctest: +SKIP

The file gets one signature, ``serving_default``, whose inputs and outputs carry the Keras names
(``frame``, ``sensors``; ``queue``, ``pedestrian``), so a host finds them by name: the order of
outputs inside a ``.tflite`` file is not the Keras order. ``convert`` needs TensorFlow (imported
inside it); ``load`` needs only a TFLite runtime.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kit.errors import KitError

VARIANTS = ("float32", "dynamic", "float16", "int8")


class ModelFileError(KitError, ValueError):
    """The model file is missing, is not a TFLite model, or the runtime cannot load it."""


def convert(
    model: Any,
    variant: str = "float32",
    *,
    representative: np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray] | None = None,
    path: str | os.PathLike | None = None,
    per_channel: bool = True,
) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer; write it to ``path`` when given.

    ``representative`` (float32 model inputs, e.g. ``kit.ml.compress.quantize.representative_frames``)
    is required for ``int8``: inputs and outputs are then int8 as well, with the scale and zero point
    stored in the file. A model with several inputs takes a dict ``{input name: array}`` (or a list
    in the model's input order), one row per example. ``per_channel=False`` gives each weight tensor
    one scale instead of one per output channel: a smaller file for a small model, sometimes less accuracy.
    """
    import tensorflow as tf

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    if variant == "int8" and representative is None:
        raise ValueError(
            "int8 needs a representative dataset to measure activation ranges: "
            "pass representative=representative_frames(x_train)"
        )
    # from_keras_model freezes the weights into constants (so they can be quantized) and names the
    # signature's inputs and outputs after the Keras ones.
    with _quiet(tf):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if not per_channel:
            converter._experimental_disable_per_channel = True  # the converter's own switch, not public API yet
        data = _convert(tf, converter, variant, _named_inputs(model, representative))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


def _named_inputs(model: Any, representative: Any) -> dict[str, np.ndarray] | None:
    """The representative data as {Keras input name: float32 array with the input's rank}."""
    if representative is None:
        return None
    names = [t.name.split(":")[0] for t in model.inputs]  # Keras 3: the Input layer's name
    if isinstance(representative, Mapping):
        missing = set(names) - set(representative)
        if missing:
            raise ValueError(f"representative data lacks input(s) {sorted(missing)}; the model takes {names}")
        arrays = [representative[n] for n in names]
    elif isinstance(representative, (list, tuple)):
        if len(representative) != len(names):
            raise ValueError(
                f"representative data has {len(representative)} arrays; the model takes {len(names)} inputs {names}"
            )
        arrays = list(representative)
    else:
        if len(names) != 1:
            raise ValueError(
                f"the model takes {len(names)} inputs {names}: pass representative as a dict name -> array"
            )
        arrays = [representative]
    out = {}
    for name, tensor, a in zip(names, model.inputs, arrays):
        a = np.asarray(a, dtype=np.float32)
        rank = len(tensor.shape)
        if a.ndim == rank - 1:
            a = a[..., None]  # grayscale frames without their channel axis
        out[name] = a
    if len({len(a) for a in out.values()}) != 1:
        raise ValueError(f"representative arrays differ in length: { {k: len(v) for k, v in out.items()} }")
    return out


@contextlib.contextmanager
def _quiet(tf: Any):
    """Silence the converter: it prints the traced signature, logs its assets and, from C++, its settings.

    What it wrote is shown again if the conversion fails, so errors are never hidden.
    """
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    sink = tempfile.TemporaryFile(mode="w+b")
    saved = []
    # The converter logs through absl, which calls logging.basicConfig() when the root logger has no handler:
    # every later warning of the program (kit.ota's in lab 08, say) would then go to stderr. A placeholder
    # handler for the duration leaves the program's logging as it was.
    root = logging.getLogger()
    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder is not None:
        root.addHandler(placeholder)
    try:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        # the process's own descriptors 1 and 2, not sys.stdout's: C++ writes there, also under Jupyter
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
            except OSError:  # no such descriptor (a daemon without stdio)
                continue
            os.dup2(sink.fileno(), fd)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    except BaseException:
        _restore(saved)
        sink.seek(0)
        sys.stderr.write(sink.read().decode(errors="replace"))
        raise
    finally:
        _restore(saved)
        sink.close()
        logger.setLevel(level)
        if placeholder is not None:
            root.removeHandler(placeholder)


def _restore(saved: list) -> None:
    while saved:
        fd, copy = saved.pop()
        os.dup2(copy, fd)
        os.close(copy)


def _convert(tf: Any, converter: Any, variant: str, representative: dict[str, np.ndarray] | None) -> bytes:
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        inputs = representative or {}
        n = len(next(iter(inputs.values())))

        def gen():
            for i in range(n):  # one example at a time, by input name (the signature's order may differ)
                yield {name: a[i : i + 1] for name, a in inputs.items()}

        converter.representative_dataset = gen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def flatbuffer_problem(buf: bytes) -> str:
    """Why `buf` is not a whole TFLite flatbuffer ("" when its tables and buffers lie inside it).

    tflite-runtime 2.14 crashes the process on a truncated model instead of raising, so the
    Model table, its vectors, each subgraph's vectors and every weight buffer are bounds-checked first.
    """
    n = len(buf)

    def u32(at: int) -> int:
        if at < 0 or at + 4 > n:
            raise IndexError(at)
        return int.from_bytes(buf[at : at + 4], "little")

    def fields(table: int) -> list[int]:
        vtable = table - int.from_bytes(buf[table : table + 4], "little", signed=True)
        size = int.from_bytes(buf[vtable : vtable + 2], "little")
        if vtable < 0 or vtable + size > n or size < 4:
            raise IndexError(vtable)
        offs = [int.from_bytes(buf[vtable + i : vtable + i + 2], "little") for i in range(4, size, 2)]
        return [table + o if o else 0 for o in offs]

    def vector(at: int, elem: int) -> tuple[int, int]:
        start = at + u32(at)
        length = u32(start)
        if start + 4 + length * elem > n:
            raise IndexError(start)
        return start + 4, length

    def tables(at: int) -> list[int]:
        start, length = vector(at, 4)
        return [start + 4 * i + u32(start + 4 * i) for i in range(length)]

    try:
        model = fields(u32(0))
        model += [0] * (8 - len(model))
        for f in model[1:8]:
            if f:
                vector(f, 1)
        for sub in tables(model[2]) if model[2] else []:
            for f in fields(sub)[:4]:  # tensors, inputs, outputs, operators
                if f:
                    vector(f, 4)
        for b in tables(model[4]) if model[4] else []:
            bf = fields(b) + [0, 0, 0]
            if bf[0]:
                vector(bf[0], 1)
            if bf[1] and bf[2]:  # weights stored after the flatbuffer (large models)
                off = int.from_bytes(buf[bf[1] : bf[1] + 8], "little")
                size = int.from_bytes(buf[bf[2] : bf[2] + 8], "little")
                if off + size > n:
                    raise IndexError(off)
    except IndexError:
        return "its tables point past the end of the file (truncated or damaged)"
    return ""


def check(content: bytes, where: str | os.PathLike = "the model") -> None:
    """Raise ``ModelFileError`` unless `content` is a whole TFLite flatbuffer (named `where` in the message)."""
    # a TFLite flatbuffer carries the identifier "TFL3" at bytes 4..8
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ModelFileError(
            f"{where} is not a TFLite model (no 'TFL3' identifier in its first bytes; {len(content)} bytes). "
            "Was it saved as .keras/.h5, truncated, or overwritten? Convert with kit.ml.tflite.convert "
            "or re-run `kit model train`."
        )
    problem = flatbuffer_problem(content)
    if problem:
        raise ModelFileError(
            f"{where} is not a whole TFLite model: {problem}. Copy it again or re-run `kit model train`."
        )


def read(path: str | os.PathLike) -> bytes:
    """The bytes of a ``.tflite`` file, checked (``FileNotFoundError`` / ``ModelFileError`` say what is wrong)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no model file at {path}; shipped models are in kit/models "
            "(kit.ml.shipped_model()), or make one with `kit model train`"
        )
    content = path.read_bytes()
    check(content, path)
    return content


def load(model: bytes | str | os.PathLike, *, num_threads: int = 1, where: str | None = None) -> Any:
    """A checked, allocated interpreter of the installed runtime for a ``.tflite`` path or its bytes."""
    from kit.ml import quiet, runtime

    if isinstance(model, (bytes, bytearray)):
        content = bytes(model)
        check(content, where or "the model")
    else:
        content = read(model)
        where = where or str(model)
    if int(num_threads) != num_threads or num_threads < 1:
        raise ValueError(f"num_threads must be a whole number >= 1, got {num_threads!r}")
    try:
        with quiet.native_stderr():  # LiteRT announces its XNNPACK delegate on stderr when it first allocates
            interpreter = runtime.Interpreter(model_content=content, num_threads=int(num_threads))
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{runtime.RUNTIME} could not load {where or 'the model'}: {exc}") from exc
    return interpreter
