"""``kit doctor``: which pin factory is in use and why, the versions that matter, and what is missing.

It never crashes: every check reports its own failure. Optional parts are looked up with
``importlib.util.find_spec`` (nothing heavy is imported), so it answers in well under a second.

    >>> from kit.doctor import diagnose
    >>> report = diagnose()
    >>> report["pins"]["factory"]
    'mock'
    >>> "gpiozero" in report["versions"]
    True
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import sys
from importlib import metadata
from typing import Any

# module to look for -> (distribution for its version, what it is for)
OPTIONAL: dict[str, tuple[str, str]] = {
    "ai_edge_litert": ("ai-edge-litert", "run .tflite models (LiteRT)"),
    "tflite_runtime": ("tflite-runtime", "run .tflite models (older runtime, Python <= 3.11)"),
    "tensorflow": ("tensorflow tensorflow-cpu", "train and convert models (the [train] extra)"),
    "boto3": ("boto3", "cloud: S3, IoT shadow"),
    "moto": ("moto", "cloud: the local AWS endpoint"),
    "paho.mqtt": ("paho-mqtt", "MQTT client"),
    "flwr": ("flwr", "federated learning"),
    "picamera2": ("picamera2", "the Pi Camera (on a Pi only)"),
}
# kit.ml.runtime's order and names (importing it would load an interpreter; a test keeps the two equal)
RUNTIMES: dict[str, tuple[str, str]] = {
    "ai_edge_litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite_runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
    "tensorflow": ("tensorflow.lite.python.interpreter", "tensorflow"),
}
ENV = "KIT_RUNTIME"
PROGRAMS = {"mosquitto": "MQTT broker for the cloud labs (apt-get install mosquitto)"}


def _version(dists: str) -> str | None:
    """Version of the first installed distribution among space-separated names."""
    for dist in dists.split():
        try:
            return metadata.version(dist)
        except Exception:  # not installed, or a broken install: neither may stop the doctor
            continue
    return None


def _present(module: str) -> bool:
    top, _, rest = module.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):  # a half-installed package
        return False
    if spec is None or not rest:
        return spec is not None
    # find_spec("paho.mqtt") would import paho; look for the sub-package on disk instead
    child = rest.split(".")[0]
    return any(
        os.path.isdir(os.path.join(loc, child)) or os.path.isfile(os.path.join(loc, child + ".py"))
        for loc in (spec.submodule_search_locations or [])
    )


def _pins() -> dict[str, Any]:
    try:
        from kit.pins import choose_factory, raspberry_pi_model

        choice = choose_factory()
        info = {
            "factory": choice.name,
            "class": type(choice.factory).__name__,
            "reason": choice.reason,
            "simulated": choice.simulated,
            "raspberry_pi": raspberry_pi_model(),
        }
        if choice.simulated:
            choice.factory.close()
        return info
    except Exception as exc:
        return {"factory": None, "error": f"{type(exc).__name__}: {exc}"}


def _inference() -> dict[str, Any]:
    """The TFLite runtime kit.ml would use (same order and KIT_RUNTIME rule), found without importing it."""
    try:
        forced = os.environ.get(ENV) or None
        if forced is not None and forced not in RUNTIMES:
            return {"runtime": None, "why": f"{ENV}={forced!r} is not one of {sorted(RUNTIMES)}"}
        order = [forced] if forced else list(RUNTIMES)
        for name in order:
            if _present(RUNTIMES[name][0].rsplit(".", 1)[0]):
                why = f"forced by {ENV}" if forced else "the first installed of " + ", ".join(RUNTIMES)
                return {
                    "runtime": name,
                    "version": _version(RUNTIMES[name][1] + (" tensorflow-cpu" if name == "tensorflow" else "")),
                    "why": why,
                }
        need = RUNTIMES[forced][1] if forced else "ai-edge-litert"
        return {"runtime": None, "why": f"no TFLite runtime installed: pip install {need}"}
    except Exception as exc:  # a broken install must not stop the doctor
        return {"runtime": None, "why": f"{type(exc).__name__}: {exc}"}


def diagnose() -> dict[str, Any]:
    """Everything ``kit doctor`` prints, as a dict (pins, versions, optional parts, programs)."""
    versions = {
        "python": platform.python_version(),
        "kit": _version("edge-python") or "not installed (running from a checkout)",
        "gpiozero": _version("gpiozero"),
        "numpy": _version("numpy"),
    }
    optional = {
        module: {"present": _present(module), "version": _version(dist), "for": why}
        for module, (dist, why) in OPTIONAL.items()
    }
    for _module, entry in optional.items():
        if not entry["present"]:
            entry["version"] = None
    programs = {name: {"path": shutil.which(name), "for": why} for name, why in PROGRAMS.items()}
    return {
        "pins": _pins(),
        "inference": _inference(),
        "versions": versions,
        "optional": optional,
        "programs": programs,
        "platform": f"{platform.system()} {platform.machine()}",
    }


def format_report(report: dict[str, Any]) -> str:
    """The doctor's report as text for a terminal."""
    lines = ["Edge Python kit doctor", ""]
    pins = report["pins"]
    if pins.get("factory"):
        lines.append(f"pins      {pins['factory']} ({pins['class']})")
        lines.append(f"          why: {pins['reason']}")
    else:
        lines.append(f"pins      PROBLEM: {pins.get('error')}")
    inference = report["inference"]
    if inference.get("runtime"):
        lines.append(f"models    {inference['runtime']} {inference.get('version') or ''}".rstrip())
    else:
        lines.append("models    no TFLite runtime")
    lines.append(f"          why: {inference['why']}")
    lines.append(f"platform  {report['platform']}")
    for name, version in report["versions"].items():
        lines.append(f"{name:<9} {version or 'MISSING'}")
    lines += ["", "optional parts:"]
    for module, entry in report["optional"].items():
        state = f"ok {entry['version'] or ''}".rstrip() if entry["present"] else "missing"
        lines.append(f"  {module:<15} {state:<18} {entry['for']}")
    lines += ["", "programs:"]
    for name, entry in report["programs"].items():
        lines.append(f"  {name:<15} {entry['path'] or 'missing':<18} {entry['for']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        report = diagnose()
    except Exception as exc:  # the last line of defence: the doctor itself must not crash
        print(f"kit doctor could not finish: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        import json

        print(json.dumps(report, indent=2, default=str))
    else:
        print(format_report(report))
    return 0 if report["pins"].get("factory") else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="which pins are in use and why, versions, what is missing")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)
