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
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
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


def prepare(fn: str, x: Any, data_format: Any, nd: int) -> tuple[Any, bool, tuple[int, ...], str]:
    """Check the layout, rank, float dtype and non-empty spatial axes of a pool's input.

    Returns ``(x, unbatched, spatial sizes, data_format)``.
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
    return x, unbatched, size, data_format


def check_bool(fn: str, name: str, value: Any) -> bool:
    """``value`` as a bool; ``TypeError`` for anything else (``1`` is not a flag)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{fn}: {name} must be a bool, got {value!r}")
    return bool(value)


def geometry(fn: str, size: tuple[int, ...], window: Any, stride: Any, padding: Any,
             dilation: Any, ceil_mode: Any) -> Window:
    """Canonicalize a windowed pool's arguments and compute PyTorch's output size.

    ``stride=None`` means the window. Explicit padding may be at most half the window on each
    side (PyTorch's rule); ``"SAME"`` and ``"VALID"`` as ``jax.lax``. Raises ``ValueError``
    when no window fits (the output would be empty).
    """
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
    return Window(tuple(size), window, stride, dilation, tuple(pads), tuple(full_pads),
                  tuple(out), tuple(taps))


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
    VJP for a dilated reduce_window_max).
    """
    init, op = _MONOIDS[kind]
    y = lax.reduce_window(
        x, np.array(init, x.dtype), op,
        window_dimensions=spatial(geom.taps),
        window_strides=spatial(geom.stride),
        padding=((0, 0), *geom.full_pads, (0, 0)),
        window_dilation=spatial(geom.dilation),
    )
    return crop(y, geom.out)
