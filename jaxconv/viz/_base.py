"""Shared plumbing: figure/axes creation without pyplot, array conversion."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def figure(width: float = 6.4, height: float = 4.8, **kwargs: Any) -> Figure:
    """A new ``matplotlib.figure.Figure`` (constrained layout), detached from pyplot.

    Detached figures need no GUI backend, are never shown, and are freed with their last
    reference (pyplot would keep them open and warn after 20). Save with ``fig.savefig(path)``.
    """
    kwargs.setdefault("layout", "constrained")
    return Figure(figsize=(width, height), **kwargs)


def as_numpy(x: Any, name: str, fn: str) -> np.ndarray:
    """A float64 NumPy copy of an array-like (JAX arrays included)."""
    a = np.asarray(x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"{fn}: {name} must be a numeric array, got dtype {a.dtype}")
    return a.astype(np.float64)


def as_hwc(x: Any, name: str, fn: str) -> np.ndarray:
    """``(H, W)``, ``(H, W, C)`` or ``(1, H, W, C)`` → ``(H, W, C)`` float64."""
    a = as_numpy(x, name, fn)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or min(a.shape) < 1:
        raise ValueError(
            f"{fn}: {name} must be an image (H, W), (H, W, C) or (1, H, W, C) with sizes >= 1, "
            f"got shape {np.shape(x)}"
        )
    return a


def axes_grid(
    ax: Axes | Sequence[Axes] | None,
    n: int,
    *,
    ncols: int | None = None,
    panel: tuple[float, float] = (2.0, 2.0),
    fn: str = "viz",
) -> list[Axes]:
    """``n`` axes to draw panels in.

    ``ax=None`` makes a new figure with a grid; a sequence of at least ``n`` axes is used as
    given; a single ``Axes`` is split into an inset grid covering it (its own frame is hidden),
    so any function can draw into one cell of a caller's layout.
    """
    ncols = ncols or min(n, max(1, math.ceil(math.sqrt(n * 1.5))))
    nrows = math.ceil(n / ncols)
    if ax is None:
        fig = figure(panel[0] * ncols, panel[1] * nrows)
        axs = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
        for extra in axs[n:]:
            extra.set_axis_off()
        return axs[:n]
    if isinstance(ax, Axes):
        if n == 1:
            return [ax]
        ax.set_axis_off()
        gap = 0.04
        w, h = (1 - gap * (ncols - 1)) / ncols, (1 - gap * (nrows - 1)) / nrows
        out = []
        for i in range(n):
            r, c = divmod(i, ncols)
            out.append(ax.inset_axes((c * (w + gap), 1 - (r + 1) * h - r * gap, w, h)))
        return out
    axs = list(ax)
    if len(axs) < n or not all(isinstance(a, Axes) for a in axs):
        raise ValueError(f"{fn}: ax must be None, an Axes or a sequence of >= {n} Axes, got {len(axs)}")
    return axs[:n]


def clean(ax: Axes) -> None:
    """No ticks or frame: for images."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def fmt_shape(shape: Sequence[int]) -> str:
    """``(318, 398, 3)`` → ``"318×398×3"``."""
    return "×".join(str(int(s)) for s in shape)
