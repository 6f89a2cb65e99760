"""Which TFLite interpreter the kit uses: LiteRT, else tflite-runtime, else TensorFlow's own.

All three expose the same ``Interpreter`` class. LiteRT (``ai-edge-litert``) is the maintained
successor of tflite-runtime and works with numpy 1 and 2; ``tflite-runtime`` 2.14 is what many
Raspberry Pi tutorials install (it needs numpy<2); ``tensorflow.lite`` works wherever TensorFlow does.

    >>> from kit.ml import runtime
    >>> runtime.RUNTIME in runtime.RUNTIMES
    True
    >>> from kit.ml import shipped_model
    >>> interpreter = runtime.Interpreter(model_path=str(shipped_model("intersection")))

Set ``KIT_RUNTIME`` to ``ai_edge_litert``, ``tflite_runtime`` or ``tensorflow`` to force one (an
error says how to install it when it is missing). ``kit doctor`` reports ``RUNTIME`` and ``VERSION``
(``RUNTIME == "none"`` and ``ERROR`` say why when no runtime can be imported).

Importing this module loads the interpreter (a few tens of milliseconds), never TensorFlow unless
it is the only runtime installed or is forced.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from kit.errors import KitError

# name -> (module holding Interpreter, distribution to pip install)
RUNTIMES: dict[str, tuple[str, str]] = {
    "ai_edge_litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite_runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
    "tensorflow": ("tensorflow.lite.python.interpreter", "tensorflow"),
}
ENV = "KIT_RUNTIME"


class RuntimeMissing(KitError, ImportError):
    """No TFLite interpreter could be imported (or the forced one is missing)."""


def _version(name: str) -> str:
    from importlib import metadata

    dist = RUNTIMES[name][1]
    for candidate in (dist, "tensorflow-cpu") if name == "tensorflow" else (dist,):
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def load(name: str | None = None) -> tuple[str, Any]:
    """(runtime name, Interpreter class): `name`, else ``$KIT_RUNTIME``, else the first one installed."""
    forced = name or os.environ.get(ENV) or None
    if forced is not None:
        if forced not in RUNTIMES:
            raise ValueError(
                f"{ENV}={forced!r} is not a TFLite runtime the kit knows; choose one of {sorted(RUNTIMES)}"
            )
        order = [forced]
    else:
        order = list(RUNTIMES)
    errors = []
    for candidate in order:
        module_name, _ = RUNTIMES[candidate]
        try:
            return candidate, importlib.import_module(module_name).Interpreter
        except (ImportError, AttributeError) as exc:  # e.g. tflite-runtime 2.14 under numpy 2
            errors.append(f"{candidate}: {exc}")
    installs = " or ".join(f"`pip install {RUNTIMES[c][1]}`" for c in order)
    raise RuntimeMissing(
        f"no TFLite runtime could be imported ({'; '.join(errors)}). Install one: {installs}"
        + (f" (or unset {ENV})" if forced else "")
    )


def _unavailable(error: Exception) -> Any:
    def Interpreter(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - stands in for the class
        raise RuntimeMissing(str(error)) from error

    return Interpreter


try:
    RUNTIME, Interpreter = load()
    """The runtime in use and its ``Interpreter`` class."""
    ERROR = ""
except (RuntimeMissing, ValueError) as _exc:
    # importing stays possible (kit doctor reports the problem); making an interpreter raises it
    RUNTIME, Interpreter, ERROR = "none", _unavailable(_exc), str(_exc)

VERSION = _version(RUNTIME) if RUNTIME in RUNTIMES else ""
"""Version of the installed runtime package."""


def describe() -> dict[str, str]:
    """What ``kit doctor`` shows: runtime name, package version, and whether it was forced."""
    return {"runtime": RUNTIME, "version": VERSION, "forced_by": ENV if os.environ.get(ENV) else "", "error": ERROR}
