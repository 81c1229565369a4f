"""The N-d windowed reduction behind every windowed pool, and the checks at its boundary.

A pool's arguments become a :class:`Window` (static, hashable geometry) once, before tracing;
the jitted cores then reduce batched channels-last arrays ``(N, *spatial, C)`` over it.
PyTorch's geometry, per axis (``k`` window, ``s`` stride, ``d`` dilation, ``lo``/``hi``
padding, ``k_eff = (k - 1) * d + 1``)::

    out = floor((n + lo + hi - k_eff + (s - 1 if ceil_mode else 0)) / s) + 1
    if ceil_mode and (out - 1) * s >= n + lo: out -= 1   # no window starts in the right padding
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import _args

Size = int | Sequence[int]
"""One int for every spatial axis, or one per axis."""

NAMED_PADDINGS = ("VALID", "SAME")


class Window(NamedTuple):
    """A windowed pool's geometry, one entry per spatial axis (a jit static argument)."""

    size: tuple[int, ...]  # the input's spatial sizes
    window: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]  # as requested
    # plus the high-side padding that a ceil_mode window overhanging the end needs
    full_pads: tuple[tuple[int, int], ...]
    out: tuple[int, ...]
    # the window less the taps that lie beyond the padded input in every window
    taps: tuple[int, ...]

    @property
    def gathers(self) -> bool:
        """Whether some window is longer than the input along its axis. Padding then makes up
        most of what ``reduce_window`` would build and scan (a 2**30 window over 4 pixels pads
        to 2**30 per axis), so each window's taps inside the input are gathered instead."""
        return any((k - 1) * d + 1 > n
                   for n, k, d in zip(self.size, self.window, self.dilation, strict=True))


def prepare(fn: str, x: Any, data_format: Any, nd: int) -> tuple[Any, bool, tuple[int, ...], str]:
    """Check the layout, rank, float dtype and non-empty spatial axes of a pool's input.

    Returns ``(x, unbatched, batched channels-last shape, data_format)``.
    """
    data_format = _args.check_data_format(fn, data_format, nd)
    x = _args.as_array(fn, "x", x)
    unbatched, shape = _args.image_rank(fn, "x", x, data_format, nd)
    _args.check_float(fn, "x", x)
    size = shape[1:-1]
    if min(size) < 1:
        raise ValueError(
            f"{fn}: x has an empty spatial axis (shape {tuple(x.shape)}, layout "
            f"{data_format if not unbatched else data_format[1:]}); pooling needs at least one "
            "pixel per spatial axis"
        )
    return x, unbatched, shape, data_format


def check_bool(fn: str, name: str, value: Any) -> bool:
    """``value`` as a bool; ``TypeError`` for anything else (``1`` is not a flag)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{fn}: {name} must be a bool, got {value!r}")
    return bool(value)


def geometry(fn: str, shape: tuple[int, ...], window: Any, stride: Any, padding: Any,
             dilation: Any, ceil_mode: Any) -> Window:
    """Canonicalize a windowed pool's arguments for an input of batched channels-last ``shape``
    and compute PyTorch's output size.

    ``stride=None`` means the window. Explicit padding may be at most half the window on each
    side (PyTorch's rule); ``"SAME"`` and ``"VALID"`` as ``jax.lax``. Raises ``ValueError``
    when no window fits (the output would be empty) and when an array the reduction builds
    would have more than ``2**31 - 1`` elements.
    """
    size = shape[1:-1]
    nd = len(size)
    window = _args.ntuple(fn, "window", window, nd)
    stride = window if stride is None else _args.ntuple(fn, "stride", stride, nd)
    dilation = _args.ntuple(fn, "dilation", dilation, nd)
    ceil_mode = check_bool(fn, "ceil_mode", ceil_mode)
    eff = tuple((k - 1) * d + 1 for k, d in zip(window, dilation, strict=True))

    pads = _args.explicit_pads(fn, "padding", padding, nd)
    if pads is None:
        pads = _args.named_pads(fn, "padding", padding, size, eff, stride, NAMED_PADDINGS)
    elif any(p > k // 2 for side, k in zip(pads, window, strict=True) for p in side):
        symmetric = all(lo == hi for lo, hi in pads)
        shown = tuple(lo for lo, _ in pads) if symmetric else pads
        raise ValueError(
            f"{fn}: padding must be at most half the window (window={window}), got padding={shown}"
        )

    padded = tuple(n + lo + hi for n, (lo, hi) in zip(size, pads, strict=True))
    out = []
    for n, k, s, (lo, _), p in zip(size, eff, stride, pads, padded, strict=True):
        o = (p - k + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (o - 1) * s >= n + lo:
            o -= 1
        out.append(o)
    if min(out) < 1:
        x_ = "x".join
        raise ValueError(
            f"{fn}: the window (effective size {x_(map(str, eff))} from window {window}, "
            f"dilation {dilation}) is larger than the padded input {x_(map(str, padded))} (input "
            f"{x_(map(str, size))}, padding {tuple(pads)}); the output would be empty"
        )

    taps, full_pads = [], []
    for k, d, s, (lo, hi), p, o in zip(window, dilation, stride, pads, padded, out, strict=True):
        t = min(k, (p - 1) // d + 1)  # taps at offsets >= p are outside every window's reach
        extra = max((o - 1) * s + (t - 1) * d + 1 - p, 0)
        taps.append(t)
        full_pads.append((lo, hi + extra))
    full = [n + lo + hi for n, (lo, hi) in zip(size, full_pads, strict=True)]
    _args.check_int32(fn, "the padded input size", full, tuple(full))
    geom = Window(tuple(size), window, stride, dilation, tuple(pads), tuple(full_pads),
                  tuple(out), tuple(taps))
    n, c = shape[0], shape[-1]
    if geom.gathers:
        # the largest block gathered: axes after `axis` already reduced, `axis` as (out, taps)
        for axis in reversed(range(nd)):
            block = (n, *size[:axis], out[axis], int(_tap_counts(geom, axis).max()),
                     *out[axis + 1 :], c)
            check_elements(fn, "window", window, "gathers its taps into", block)
    elif full != list(size):
        check_elements(fn, "padding", padding, "pads the input to", (n, *full, c))
    return geom


def check_elements(fn: str, name: str, value: Any, what: str, shape: Sequence[int]) -> None:
    """``ValueError`` naming ``name`` unless an array of ``shape`` fits XLA's int32 indexing."""
    count = math.prod(shape)
    if count > _args.INT32_MAX:
        raise ValueError(
            f"{fn}: {name} {value} {what} {'x'.join(map(str, shape))} = {count} elements; an "
            "array the pool builds must have at most 2**31 - 1"
        )


def _first_taps(geom: Window, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per window along ``axis``: its first position in the input, and the index of its first
    tap that lies there (taps before it fall in the left padding)."""
    s, d, lo, o = geom.stride[axis], geom.dilation[axis], geom.pads[axis][0], geom.out[axis]
    start = np.arange(o, dtype=np.int64) * s - lo
    first = np.maximum(-start + d - 1, 0) // d
    return start + first * d, first


def _tap_counts(geom: Window, axis: int) -> np.ndarray:
    """How many taps of each window along ``axis`` lie in the input (not in any padding)."""
    n, k, d = geom.size[axis], geom.window[axis], geom.dilation[axis]
    begin, first = _first_taps(geom, axis)
    last = np.minimum(k - 1, first + (n - 1 - begin) // d)
    return np.maximum(last - first + 1, 0)


def window_positions(geom: Window, axis: int) -> np.ndarray:
    """``(out, kmax)`` int32: the input positions that each window along ``axis`` reads, in tap
    order, then ``n`` (the axis size: a slot the caller fills with the reduction's identity)."""
    n, d = geom.size[axis], geom.dilation[axis]
    begin, _ = _first_taps(geom, axis)
    counts = _tap_counts(geom, axis)
    j = np.arange(max(int(counts.max()), 1))
    table = begin[:, None] + j * d
    return np.where(j < counts[:, None], table, n).astype(np.int32)


def gather_windows(x: jax.Array, axis: int, table: np.ndarray, fill: Any) -> jax.Array:
    """``x`` with ``axis`` replaced by ``table``'s two axes: ``table[i, j]`` is the position read
    for window ``i``, tap ``j``; position ``x.shape[axis]`` reads ``fill``.

    One static gather: unlike a matrix of weights, a NaN or inf stays inside its own windows.
    """
    n = x.shape[axis]
    if (table == n).any():
        pad = [(0, 0)] * x.ndim
        pad[axis] = (0, 1)
        x = jnp.pad(x, pad, constant_values=np.array(fill, x.dtype))
    g = jnp.take(x, jnp.asarray(table.reshape(-1)), axis=axis, mode="clip")
    return g.reshape(*g.shape[:axis], *table.shape, *g.shape[axis + 1 :])


# --------------------------------------------------------------------------------------------
# Inside the jitted cores: batched channels-last arrays
# --------------------------------------------------------------------------------------------


def spatial(seq: Sequence[Any]) -> tuple[Any, ...]:
    """``(1, *seq, 1)``: a per-spatial-axis tuple extended over the batch and channel axes."""
    return (1, *seq, 1)


def tap_views(
    xp: jax.Array, taps: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
    out: Sequence[int],
) -> list[tuple[tuple[int, ...], jax.Array]]:
    """One strided view ``(N, *out, C)`` of the padded ``xp`` per window tap, in row-major tap
    order, each with its tap offsets: the view of tap ``a`` holds ``xp[o * s + a * d]`` per axis.
    """
    views = []
    for offsets in itertools.product(*(range(t) for t in taps)):
        index = tuple(
            slice(a * d, a * d + (o - 1) * s + 1, s)
            for a, d, s, o in zip(offsets, dilation, stride, out, strict=True)
        )
        views.append((offsets, xp[(slice(None), *index, slice(None))]))
    return views


def crop(y: jax.Array, out: Sequence[int]) -> jax.Array:
    """The first ``out`` outputs per spatial axis: a window clipped to the padded input (see
    :func:`geometry`) can leave a few more windows in the reduction than PyTorch has."""
    return y[(slice(None), *(slice(0, o) for o in out), slice(None))]


# the identity (the padding's value) and the operation of each reduction
_MONOIDS = {"max": (-np.inf, lax.max), "min": (np.inf, lax.min), "sum": (0, lax.add)}


def reduce(x: jax.Array, kind: str, geom: Window) -> jax.Array:
    """Reduce every window of ``x`` (``kind``: ``"max"``, ``"min"`` or ``"sum"``), padding
    with the reduction's identity: ``(N, *geom.out, C)``.

    With the identities -inf / +inf / 0, lax dispatches to the differentiable
    reduce_window_max / _min / _sum primitives (max and min only without dilation: JAX has no
    VJP for a dilated reduce_window_max). Windows longer than the input
    (:attr:`Window.gathers`) are gathered instead, an axis at a time; max and min then route the
    gradient to the first extremum in row-major order, as reduce_window's gradient does.
    """
    init, op = _MONOIDS[kind]
    if geom.gathers:
        # the last axis first: then the first extremum of each row, among the rows the first
        # one holding the window's extremum, is the window's first in row-major order
        for axis in reversed(range(1, x.ndim - 1)):
            g = gather_windows(x, axis, window_positions(geom, axis - 1), init)
            if kind == "sum":
                x = jnp.sum(g, axis=axis + 1)
            else:
                pick = jnp.argmax if kind == "max" else jnp.argmin
                first = pick(g, axis=axis + 1, keepdims=True)
                x = jnp.take_along_axis(g, first, axis=axis + 1).squeeze(axis + 1)
        return x
    y = lax.reduce_window(
        x, np.array(init, x.dtype), op,
        window_dimensions=spatial(geom.taps),
        window_strides=spatial(geom.stride),
        padding=((0, 0), *geom.full_pads, (0, 0)),
        window_dilation=spatial(geom.dilation),
    )
    return crop(y, geom.out)
