"""Every variant measured the same way: hosted by ``ModelHost``, one table, one Pareto plot.

For each ``.tflite`` file: its size on disk, gzipped (what an over-the-air update ships) and of its
weights alone, the parameters and MACs of the Keras model it came from, queue-class accuracy and pedestrian F1 on
held-out frames (another seed), and latency p50/p95 at batch 1 after a warm-up.

    >>> from kit.ml.compress.evaluate import measure, Table
    >>> table = Table([measure("float32.tflite", held_out, macs=1_509_632, params=11_316),
    ...                measure("int8.tflite", held_out, macs=1_509_632, params=11_316)])   # doctest: +SKIP
    >>> print(table)                                     # doctest: +SKIP
    >>> table.choose(latency_ms=5, memory_kb=40).name    # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kit.ml.compress.prune import gzip_size


def weight_bytes(path: str | os.PathLike) -> int:
    """Bytes of constant data (weights, biases) in a ``.tflite`` file; the rest is graph and quantization metadata.

    A small model's file is far from 4x smaller in int8: each per-channel quantized tensor also stores
    a float32 scale and an int64 zero point per channel, and the graph itself takes a few KB.
    """
    return anatomy(path)["weights"]


def anatomy(path: str | os.PathLike) -> dict[str, int]:
    """Where the bytes of a ``.tflite`` file go: ``weights``, ``quantization``, ``names``, ``graph``, ``total``.

    ``weights`` is the constant data (kernels, biases); ``quantization`` the scales and zero points
    (a float32 scale and an int64 zero point per tensor, or per output channel of a per-channel
    quantized tensor); ``names`` the tensor names; ``graph`` everything else (operators, shapes,
    signature, metadata, flatbuffer tables). The parts add up to ``total``, the file size.

    The int8 file of a small model is far from 4x smaller than its float32 file: only ``weights`` shrink
    4x, ``quantization`` is new, and ``graph`` and ``names`` stay as they were.
    """
    try:
        from tensorflow.lite.tools import flatbuffer_utils
    except ImportError:  # pragma: no cover - LiteRT ships the same helper
        from ai_edge_litert.tools import flatbuffer_utils
    raw = Path(path).read_bytes()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(raw))
    used = {t.buffer for g in model.subgraphs for t in g.tensors}
    weights = sum(len(model.buffers[i].data) for i in used if model.buffers[i].data is not None)
    quant = names = 0
    for g in model.subgraphs:
        for t in g.tensors:
            names += len(t.name or b"")
            q = t.quantization
            if q is not None:
                quant += sum(np.asarray(v).nbytes for v in (q.scale, q.zeroPoint, q.min, q.max) if v is not None)
    weights, quant, names = int(weights), int(quant), int(names)
    return {
        "weights": weights,
        "quantization": quant,
        "names": names,
        "graph": len(raw) - weights - quant - names,
        "total": len(raw),
    }


def anatomy_table(paths: dict[str, str | os.PathLike]) -> str:
    """``{name: .tflite path}`` -> a text table of :func:`anatomy` in KB, one file per line."""
    w = max([10] + [len(n) + 2 for n in paths])
    lines = [
        "where the bytes go (KB): weights, scales and zero points, tensor names, graph (operators, shapes, signature)",
        f"{'file':<{w}}{'weights':>9}{'quant':>8}{'names':>8}{'graph':>8}{'total':>9}",
    ]
    for name, path in paths.items():
        a = anatomy(path)
        lines.append(
            f"{name:<{w}}{a['weights'] / 1024:>9.1f}{a['quantization'] / 1024:>8.1f}{a['names'] / 1024:>8.1f}"
            f"{a['graph'] / 1024:>8.1f}{a['total'] / 1024:>9.1f}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Row:
    """One measured variant. Sizes in bytes, latency in milliseconds, accuracy as a fraction."""

    name: str
    path: str
    size_bytes: int
    gzip_bytes: int
    weight_bytes: int
    params: int
    macs: int
    queue_accuracy: float
    pedestrian_f1: float
    p50_ms: float
    p95_ms: float
    note: str = ""
    p25_ms: float = float("nan")  # the interquartile range of the timed runs: the noise a ranking must beat
    p75_ms: float = float("nan")

    @property
    def size_kb(self) -> float:
        return self.size_bytes / 1024

    @property
    def gzip_kb(self) -> float:
        return self.gzip_bytes / 1024

    def faster_than(self, other: Row) -> bool:
        """Clearly faster: this row's slower quartile (p75) is below the other's faster quartile (p25).

        Latencies whose interquartile ranges overlap are a tie: the difference is inside the timing noise.
        A row without quartiles (made by hand) compares its medians.
        """
        mine = self.p75_ms if not np.isnan(self.p75_ms) else self.p50_ms
        theirs = other.p25_ms if not np.isnan(other.p25_ms) else other.p50_ms
        return mine < theirs


def measure(
    path: str | os.PathLike,
    data: Any,
    *,
    macs: int,
    params: int,
    name: str | None = None,
    note: str = "",
    runs: int = 100,
    warmup: int = 10,
    num_threads: int = 1,
) -> Row:
    """Host the model at ``path`` and measure it on ``data`` (a ``kit.ml.data.Dataset`` of held-out frames).

    The model needs a ``queue`` output; without a ``pedestrian`` output its F1 is NaN (shown as ``-``).
    """
    from kit.ml.card import evaluate
    from kit.ml.host import ModelHost

    host = ModelHost(path, num_threads=num_threads)
    if "queue" not in host.outputs:
        raise ValueError(
            f"{path} has outputs {host.output_names}; measure() scores a 'queue' output "
            "(3 class probabilities: empty, short, long)"
        )
    if "pedestrian" in host.outputs:
        metrics = evaluate(host, data)
    else:  # a queue-only model (the capstone's early-exit network): no pedestrian F1 to report
        probs = host.predict_batches(data.x)["queue"]
        metrics = {"queue_accuracy": float(np.mean(probs.argmax(axis=1) == data.queue)), "pedestrian_f1": float("nan")}
    lat = host.latency(data.x[: min(len(data), 50)], warmup=warmup, runs=runs)
    return Row(
        name=name or Path(path).stem,
        path=str(path),
        size_bytes=Path(path).stat().st_size,
        gzip_bytes=gzip_size(path),
        weight_bytes=weight_bytes(path),
        params=int(params),
        macs=int(macs),
        queue_accuracy=float(metrics["queue_accuracy"]),
        pedestrian_f1=float(metrics["pedestrian_f1"]),
        p50_ms=float(lat["p50_ms"]),
        p95_ms=float(lat["p95_ms"]),
        note=note,
        p25_ms=float(lat.get("p25_ms", lat["p50_ms"])),
        p75_ms=float(lat.get("p75_ms", lat["p50_ms"])),
    )


class Table:
    """The trade-off table: rows of :class:`Row`, compared with a baseline row (``float32``).

    >>> table = Table(rows)                              # doctest: +SKIP
    >>> table["int8"].size_kb                            # doctest: +SKIP
    >>> table.pareto()                                   # doctest: +SKIP
    >>> table.plot()                                     # doctest: +SKIP
    """

    def __init__(self, rows: list[Row] | None = None, *, baseline: str = "float32") -> None:
        self.rows: list[Row] = list(rows or [])
        self.baseline = baseline

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | str) -> Row:
        if isinstance(key, int):
            return self.rows[key]
        for row in self.rows:
            if row.name == key:
                return row
        raise KeyError(f"no variant named {key!r}; the table has {[r.name for r in self.rows]}")

    def names(self) -> list[str]:
        return [r.name for r in self.rows]

    def records(self) -> list[dict[str, Any]]:
        """Rows as plain dicts (JSON-ready)."""
        return [asdict(r) for r in self.rows]

    def to_json(self) -> str:
        return json.dumps(self.records(), indent=2)

    def pareto(self) -> list[Row]:
        """Rows no other row beats on accuracy, latency and size at once (the ones worth choosing from).

        Latency counts only where it is outside the noise (:meth:`Row.faster_than`): two variants whose
        interquartile ranges overlap are equally fast, so timing jitter never puts a variant on the front.
        """
        front = []
        for r in self.rows:
            dominated = any(
                o is not r
                and o.queue_accuracy >= r.queue_accuracy
                and not r.faster_than(o)
                and o.size_bytes <= r.size_bytes
                and (o.queue_accuracy > r.queue_accuracy or o.faster_than(r) or o.size_bytes < r.size_bytes)
                for o in self.rows
            )
            if not dominated:
                front.append(r)
        return front

    def choose(self, *, latency_ms: float, memory_kb: float) -> Row | None:
        """The most accurate row within both budgets (ties: faster, then smaller); None when nothing fits."""
        fits = [r for r in self.rows if r.p50_ms <= latency_ms and r.size_kb <= memory_kb]
        if not fits:
            return None
        return sorted(fits, key=lambda r: (-r.queue_accuracy, r.p50_ms, r.size_bytes))[0]

    def __str__(self) -> str:
        base = next((r for r in self.rows if r.name == self.baseline), self.rows[0] if self.rows else None)
        w = max([22] + [len(r.name) + 1 for r in self.rows])
        head = (
            f"{'variant':<{w}}{'size KB':>9}{'gzip KB':>9}{'wts KB':>8}{'x smaller':>10}{'params':>9}{'MACs M':>8}"
            f"{'x fewer':>8}{'queue acc':>10}{'Δ pts':>7}{'ped F1':>8}{'p50 ms':>8}{'IQR ms':>16}{'p95 ms':>8}  note"
        )
        lines = [head]
        for r in self.rows:
            smaller = base.size_bytes / r.size_bytes if base else float("nan")
            fewer = base.macs / r.macs if base and r.macs else float("nan")
            delta = 100 * (r.queue_accuracy - base.queue_accuracy) if base else float("nan")
            f1 = "-" if np.isnan(r.pedestrian_f1) else f"{r.pedestrian_f1:.3f}"  # a model without that head
            iqr = "-" if np.isnan(r.p25_ms) else f"{r.p25_ms:.3f}–{r.p75_ms:.3f}"
            lines.append(
                f"{r.name:<{w}}{r.size_kb:>9.1f}{r.gzip_kb:>9.1f}{r.weight_bytes / 1024:>8.1f}{smaller:>10.2f}{r.params:>9,}{r.macs / 1e6:>8.2f}"
                f"{fewer:>8.2f}{r.queue_accuracy:>10.3f}{delta:>+7.1f}{f1:>8}{r.p50_ms:>8.3f}"
                f"{iqr:>16}{r.p95_ms:>8.3f}  {r.note}"
            )
        return "\n".join(lines)

    def plot(self, ax: Any = None, *, span: float = 10.0) -> Any:
        """Accuracy against median latency with its interquartile range as a bar; marker area ∝ file size;
        Pareto-front variants (latency compared outside the noise only) ringed in red.

        Rows more than ``span`` accuracy points below the best are listed under the title instead of
        squashing the axis (a broken calibration lands at chance level).
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4.5))
        best = max(100 * r.queue_accuracy for r in self.rows)
        shown = [r for r in self.rows if 100 * r.queue_accuracy >= best - span]
        hidden = [r for r in self.rows if r not in shown]
        biggest = max(r.size_kb for r in self.rows)
        front = self.pareto()
        for i, r in enumerate(shown, start=1):
            on_front = r in front
            if not np.isnan(r.p25_ms):  # the spread of the timed runs: bars that overlap rank nothing
                ax.errorbar(
                    r.p50_ms,
                    100 * r.queue_accuracy,
                    xerr=[[r.p50_ms - r.p25_ms], [r.p75_ms - r.p50_ms]],
                    fmt="none",
                    ecolor="0.4",
                    elinewidth=1,
                    capsize=3,
                    zorder=1,
                )
            ax.scatter(
                r.p50_ms,
                100 * r.queue_accuracy,
                s=30 + 600 * r.size_kb / biggest,
                alpha=0.45,
                edgecolor="r" if on_front else "k",
                linewidth=2 if on_front else 0.8,
                label=f"{i} {r.name} ({r.size_kb:.0f} KB){' *' if on_front else ''}",
            )
            # numbers instead of names: variants with equal accuracy sit on top of each other
            ax.annotate(str(i), (r.p50_ms, 100 * r.queue_accuracy), fontsize=8, ha="center", va="center")
        ax.set_xscale("log")
        # a narrow range of a log axis gets crowded minor labels (3.4e-2, 3.6e-2...): label 1-2-5 steps instead
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("latency: median and interquartile range (ms, batch 1, log scale)")
        ax.set_ylabel("queue accuracy on held-out frames (%)")
        title = "Compression trade-offs (marker area ∝ file size)"
        if hidden:
            title += "\noff the chart: " + ", ".join(f"{r.name} {100 * r.queue_accuracy:.0f} %" for r in hidden)
        ax.set_title(title, fontsize=10)
        ax.margins(x=0.15, y=0.25)
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1),
            fontsize=7,
            markerscale=0.4,
            title="* Pareto front",
            title_fontsize=7,
            frameon=False,
        )
        return ax
