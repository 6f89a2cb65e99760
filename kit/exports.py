"""How a package of the kit exports names: one lazy table, so importing a package stays light.

Every package ``__init__`` that exports names lists them once, as ``name -> "module"`` (the name is
looked up in that module), ``name -> "module:attribute"`` (exported under another name) or
``name -> "module:"`` (the module itself), and lets
this module answer ``getattr`` and ``dir``. A name's module is imported on first use only, so
``import kit`` pulls in neither sqlite-utils nor boto3 until a program touches them:

    >>> import types
    >>> pkg = types.ModuleType("demo_pkg")
    >>> pkg.__getattr__, pkg.__dir__, pkg.__all__ = lazy("demo_pkg", {"sqrt": "math", "tau_": "math:tau"})
    >>> pkg.sqrt(9.0), round(pkg.tau_, 3), pkg.__all__
    (3.0, 6.283, ['sqrt', 'tau_'])
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` exporting ``exports`` (name -> "module[:attribute]")."""
    names = sorted(exports)

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            if name.startswith("_") or importlib.util.find_spec(f"{package}.{name}") is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            target = f"{package}.{name}:"  # a submodule, e.g. ``kit.cloud.sync`` after ``import kit.cloud``
        module_name, _, attribute = target.partition(":")
        module = importlib.import_module(module_name)
        value = module if target.endswith(":") else getattr(module, attribute or name)
        owner = sys.modules.get(package)
        if owner is not None:
            setattr(owner, name, value)  # the next lookup is an ordinary attribute
        return value

    def __dir__() -> list[str]:
        return list(names)

    return __getattr__, __dir__, names


__all__ = ["lazy"]
