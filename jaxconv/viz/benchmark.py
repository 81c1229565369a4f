"""Benchmark plots: convolution time against kernel size, one line per implementation.

:func:`plot_data` turns the pytest-benchmark JSON of ``nox -s bench`` (``benchmarks/bench.py``)
into the ``{panel: {implementation: {x: ms}}}`` mapping :func:`plot_conv_vs_kernel` draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib import colormaps, rcParams
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

BASELINE = "lax"
PEERS = ("torch", "scipy")
_LABELS = {"lax": "XLA lax.conv"}


def impl_label(impl: str, backend: str = "cpu") -> str:
    """The legend name of an implementation; CPU-only peers say so on other backends."""
    label = _LABELS.get(impl, impl)
    return label + " (CPU)" if impl in PEERS and backend != "cpu" else label


def plot_data(data: Mapping[str, Any]) -> dict[str, dict[str, dict[Any, float]]]:
    """``{panel title: {implementation: {x: median ms}}}`` from a benchmark sweep's JSON.

    One panel per case and pass (``"article (forward)"``, ``"layer (fwd+bwd)"``), in the order
    the sweep ran them; in each, XLA first, then jaxconv's algorithms (first-seen order),
    ``auto``, and the peers; ``x`` is the kernel size or the problem's label.
    """
    backend = data.get("machine_info", {}).get("jaxconv", {}).get("backend", "cpu")
    panels: dict[tuple[str, str], dict[str, list[tuple[Any, Any, float]]]] = {}
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if info.get("kind") != "conv":
            continue
        series = panels.setdefault((info["case"], info["mode"]), {}).setdefault(info["impl"], [])
        series.append((info.get("order", len(series)), info.get("x", info["row"]),
                       1e3 * b["stats"]["median"]))
    rank = {BASELINE: 0, "auto": 2, **{p: 3 + i for i, p in enumerate(PEERS)}}  # algorithms: 1
    out: dict[str, dict[str, dict[Any, float]]] = {}
    for (case, mode), impls in panels.items():
        title = f"{case} ({'fwd+bwd' if mode == 'fwd+bwd' else 'forward'})"
        out[title] = {
            impl_label(impl, backend): {x: ms for _, x, ms in sorted(impls[impl], key=lambda p: p[0])}
            for impl in sorted(impls, key=lambda i: rank.get(i, 1))  # stable: first-seen order
        }
    return out


def plot_conv_vs_kernel(
    results: Mapping[str, Mapping[str, Mapping[Any, float]]],
    *,
    ax: Axes | Sequence[Axes] | None = None,
    fig: Figure | SubFigure | None = None,
    baseline: str | None = None,
    ncols: int = 3,
    ylabel: str = "median time (ms)",
) -> Figure | SubFigure:
    """Plot time against kernel size: one panel per case, one line per implementation.

    Args:
      results: ``{panel title: {implementation: {x: milliseconds}}}``, where ``x`` is a kernel
        size (numeric axis) or a label such as ``"C1"`` (categorical axis, in first-seen order);
        :func:`plot_data` builds it from the JSON of a ``nox -s bench`` sweep.
      ax: an Axes, or a sequence of Axes with one per panel, to draw into.
      fig: a Figure to lay the panels out in (ignored when ``ax`` is given); by default a new one.
      baseline: the implementation drawn thick and black (e.g. ``"XLA lax.conv"``).
      ncols: panels per row when this function lays them out.
      ylabel: the y axis label; the y axis is logarithmic.

    Returns:
      The figure drawn into. Each panel has one ``Line2D`` per implementation, in ``results``
      order, labelled with its name; nothing is shown or saved.

    Examples:
      >>> fig = plot_conv_vs_kernel({"article": {"XLA": {1: 0.15, 3: 4.3}, "fft": {1: 8.9, 3: 7.1}}})
      >>> [len(a.get_lines()) for a in fig.axes]
      [2]
    """
    titles = list(results)
    if not titles:
        raise ValueError("plot_conv_vs_kernel: results is empty; expected at least one panel")
    if ax is not None:
        axes = list(ax) if isinstance(ax, Sequence) else [ax]
        if len(axes) < len(titles):
            raise ValueError(
                f"plot_conv_vs_kernel: got {len(axes)} Axes for {len(titles)} panels ({titles})"
            )
        fig = axes[0].figure
    else:
        ncols = max(1, min(ncols, len(titles)))
        nrows = math.ceil(len(titles) / ncols)
        if fig is None:
            # a bare Figure, not pyplot: no GUI backend, no global state to leak
            fig = Figure(figsize=(4.6 * ncols, 3.6 * nrows), layout="constrained")
        axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(len(titles))]

    # One colour per implementation across all panels; the baseline thick black, auto dashed.
    # More implementations than the style's cycle has colours (10 by default; a sweep has 13):
    # tab20's 20, so no two share one.
    names = [n for n in dict.fromkeys(n for panel in results.values() for n in panel)
             if n != baseline]
    palette = [c["color"] for c in rcParams["axes.prop_cycle"]]
    if len(names) > len(palette):
        tab20 = colormaps["tab20"]
        palette = [tab20(i) for i in range(tab20.N)]
    colors = {name: palette[i % len(palette)] for i, name in enumerate(names)}
    for a, title in zip(axes, titles, strict=False):
        series = results[title]
        xs = [x for s in series.values() for x in s]
        numeric = all(isinstance(x, int | float) for x in xs)
        ticks = sorted(set(xs)) if numeric else list(dict.fromkeys(xs))
        pos = {x: (x if numeric else i) for i, x in enumerate(ticks)}
        for name, points in series.items():
            keys = sorted(points) if numeric else [x for x in ticks if x in points]
            style = {"color": colors.get(name, "black"), "marker": "o", "markersize": 3.5}
            if name == baseline:
                style.update(linewidth=2.5, zorder=3)
            elif name == "auto":
                style.update(linestyle="--", marker="s", markerfacecolor="none", markersize=6)
            if not numeric:  # separate layers, not a sweep: markers only
                style.update(linestyle="none", markersize=7)
            a.plot([pos[x] for x in keys], [points[x] for x in keys], label=name, **style)
        a.set_yscale("log")
        # Problem labels ("3x3/2 32→64") side by side would overlap: slant them.
        slant = not numeric and sum(len(str(x)) for x in ticks) > 24
        tick_kw: dict[str, Any] = {"rotation": 30, "ha": "right", "fontsize": "small"} if slant else {}
        a.set_xticks([pos[x] for x in ticks], [str(x) for x in ticks], **tick_kw)
        if not numeric:
            a.set_xlim(-0.5, len(ticks) - 0.5)
        a.set_xlabel("kernel size k (k x k)" if numeric else "layer")
        a.set_ylabel(ylabel)
        a.set_title(title)
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize="x-small")
    return fig
