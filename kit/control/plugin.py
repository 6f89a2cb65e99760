"""A controller of your own in the app: ``kit run intersection --controller module:Class``.

The app's controller runs the kit's phase plan and asks a *policy* when the car green should end
(:func:`kit.control.adaptive.actuated_policy` by default). A plug-in is any importable callable
``policy(obs, timings) -> bool`` (an :class:`~kit.control.adaptive.Observation` and
:class:`~kit.control.adaptive.AdaptiveTimings`), or a class whose instances are such callables (made
with no arguments, so it may keep state between ticks). The module is looked up on ``sys.path`` and,
failing that, in the current folder, where a lab writes it.

    >>> from kit.control.plugin import load_policy
    >>> policy = load_policy("kit.control.adaptive:actuated_policy")
    >>> policy.__name__
    'actuated_policy'
    >>> load_policy("nowhere")
    Traceback (most recent call last):
    ...
    kit.errors.UsageError: --controller 'nowhere': give module:Name (e.g. my_controller:MyController), or adaptive / learned
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from kit.errors import KitRuntimeError, UsageError

__all__ = ["load_policy", "is_plugin", "ControllerError"]


def is_plugin(spec: str) -> bool:
    """True for a ``module:Name`` choice (as opposed to a built-in controller's name)."""
    return ":" in spec


def _where(exc: BaseException) -> str:
    """``file.py line N: `` of the deepest frame outside the kit and Python's import machinery ('' if none)."""
    kit_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not os.path.abspath(f.filename).startswith(kit_dir + os.sep) and not f.filename.startswith("<frozen")
    ]
    return f"{os.path.basename(frames[-1].filename)} line {frames[-1].lineno}: " if frames else ""


def _import_once(module: str, spec: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise
    except SyntaxError as exc:  # the student's file does not parse: where, and what the parser said
        where = f"{os.path.basename(exc.filename or module)} line {exc.lineno}"
        raise UsageError(f"--controller {spec!r}: {where}: {type(exc).__name__}: {exc.msg}") from None
    except Exception as exc:  # noqa: BLE001 - the student's module failed while it was imported
        raise UsageError(
            f"--controller {spec!r}: importing {module!r} failed: {_where(exc)}{type(exc).__name__}: {exc}"
        ) from None


def _import(module: str, spec: str) -> Any:
    try:
        return _import_once(module, spec)
    except ModuleNotFoundError as exc:
        here = os.getcwd()
        if exc.name != module.split(".")[0] or here in sys.path:
            raise UsageError(f"--controller {spec!r}: module {module!r} could not be imported ({exc})") from None
    sys.path.insert(0, here)  # the folder the command runs in, as `python -m` would have it
    try:
        return _import_once(module, spec)
    except ModuleNotFoundError as exc:
        raise UsageError(f"--controller {spec!r}: no module {exc.name!r} on the path or in {here}") from None


class ControllerError(KitRuntimeError):
    """A controller of your own raised an exception while the app asked it: the run stops, with this one line."""


def _checked(policy: Callable[[Any, Any], bool], spec: str) -> Callable[[Any, Any], bool]:
    """``policy`` as the app calls it: an exception it raises names the controller and the line, not the kit."""

    @functools.wraps(policy, updated=())
    def call(obs: Any, timings: Any) -> bool:
        try:
            return policy(obs, timings)
        except Exception as exc:  # noqa: BLE001 - the student's code: say where it broke, in one line
            raise ControllerError(
                f"--controller {spec!r} raised {_where(exc)}{type(exc).__name__}: {exc} "
                "(the run stopped; fix the controller and run again)"
            ) from exc

    return call


def load_policy(spec: str) -> Callable[[Any, Any], bool]:
    """The policy named by ``spec`` (``module:Name``): a function, or an instance of a class made with no arguments.

    Every problem is a :class:`~kit.errors.UsageError` naming what to fix (the command line prints one line).
    """
    module, _, name = spec.partition(":")
    if not module or not name or not all(p.isidentifier() for p in (*module.split("."), *name.split("."))):
        raise UsageError(
            f"--controller {spec!r}: give module:Name (e.g. my_controller:MyController), or adaptive / learned"
        )
    obj: Any = _import(module, spec)
    for part in name.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"--controller {spec!r}: module {module!r} has no {part!r}")
        obj = getattr(obj, part)
    if inspect.isclass(obj):
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001 - a student's class: say what broke, in one line
            raise UsageError(
                f"--controller {spec!r}: {name}() failed ({type(exc).__name__}: {exc}); "
                "a controller class is made with no arguments"
            ) from None
    if not callable(obj):
        raise UsageError(
            f"--controller {spec!r}: {name} is a {type(obj).__name__}; give a policy "
            "policy(obs, timings) -> bool, or a class whose instances are one"
        )
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check before it is called
        signature = None
    if signature is not None:
        try:
            signature.bind(None, None)
        except TypeError:
            raise UsageError(
                f"--controller {spec!r}: {name} takes ({', '.join(signature.parameters)}); the app calls it "
                "with two arguments, policy(obs, timings) -> bool"
            ) from None
    return _checked(obj, spec)
