"""Native libraries talk on the process's stderr; a notebook shows every line. Silence them where they start.

TensorFlow prints an absl preamble and oneDNN/CPU-feature notes when it is imported, whatever
``TF_CPP_MIN_LOG_LEVEL`` says, and LiteRT prints "Created TensorFlow Lite XNNPACK delegate" when an interpreter
first allocates. Both write to file descriptor 2 from C++, so ``warnings`` and ``logging`` cannot stop them.
:func:`native_stderr` points descriptor 2 at a temporary file for the duration of a block and drops what was
written — unless the block raises, in which case it is written back, so no error is ever hidden.
:func:`install` makes every later ``import tensorflow`` (by the kit or by a lab) go through it.

    >>> from kit.ml import quiet
    >>> with quiet.native_stderr():
    ...     interpreter.allocate_tensors()     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def native_stderr() -> Iterator[None]:
    """Drop what native code writes to descriptor 2 inside the block; write it back if the block raises."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 (a daemon without stdio): nothing to silence
        yield
        return
    sink = tempfile.TemporaryFile()
    os.dup2(sink.fileno(), 2)
    try:
        yield
    except BaseException:
        os.dup2(saved, 2)
        sink.seek(0)
        sys.stderr.write(sink.read().decode(errors="replace"))
        raise
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        sink.close()


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, and runs its module code inside :func:`native_stderr`."""

    names = ("tensorflow",)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            with native_stderr():
                run(module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Import TensorFlow quietly from now on (once per process; a no-op when it is already imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own INFO and WARNING lines at run time
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())
