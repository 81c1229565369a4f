"""Pooling in 1, 2 and 3 spatial dimensions: max / min / average / power-average, global and
adaptive, max-pool indices and max-unpooling, with PyTorch's semantics.

Images are channels-last: **NWC** ``(N, W, C)`` in 1-D, **NHWC** ``(N, H, W, C)`` in 2-D and
**NDHWC** ``(N, D, H, W, C)`` in 3-D (``data_format="NCW"`` / ``"NCHW"`` / ``"NCDHW"`` for
channels-first), or unbatched (no ``N``), returned with the same rank. Every function checks its
arguments before tracing, then calls a jitted core whose configuration is static; one private
N-d core serves the 1-D, 2-D and 3-D functions.

Windowed pools share PyTorch's geometry, written per axis (``k`` window, ``s`` stride, ``d``
dilation, ``p_lo``/``p_hi`` padding, ``k_eff = (k - 1) * d + 1``)::

    out = floor((H + p_lo + p_hi - k_eff + (s - 1 if ceil_mode else 0)) / s) + 1
    # with ceil_mode, a last window starting in the right padding is dropped:
    if ceil_mode and (out - 1) * s >= H + p_lo: out -= 1
    # and out must be >= 1 (with ceil_mode, a window may overhang the padded input, as in torch)

Explicit padding may be at most half the window on each side (PyTorch's rule, so that no window
lies in the padding only); ``"SAME"`` (output ``ceil(H / s)``, the odd extra pad at the end, as
``jax.lax``) and ``"VALID"`` are accepted too. Sizes, strides, paddings and every output or padded
dimension must fit in int32 (``2**31 - 1``).
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from . import _args

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "global_avg_pool1d",
    "global_avg_pool2d",
    "global_avg_pool3d",
    "global_max_pool1d",
    "global_max_pool2d",
    "global_max_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "min_pool1d",
    "min_pool2d",
    "min_pool3d",
]

_PADDINGS = ("VALID", "SAME")
INT32_MAX = _args.INT32_MAX


# --------------------------------------------------------------------------------------------
# Validation at the boundary (N-d; the 2-D messages are those of jaxconv._args)
# --------------------------------------------------------------------------------------------


def check_format(fn: str, nd: int, data_format: Any) -> str:
    """Upper-cased ``data_format``, one of the two layouts of ``nd`` spatial dimensions."""
    return _args.check_data_format(fn, data_format, nd)


def check_rank(fn: str, name: str, x: Any, nd: int, data_format: str):
    """Validate the rank; return ``(unbatched, N, spatial sizes, C)`` whatever the layout."""
    unbatched, shape = _args.image_rank(fn, name, x, data_format, nd)
    return unbatched, shape[0], shape[1:-1], shape[-1]





def int_tuple(fn: str, name: str, value: Any, nd: int, *, minimum: int = 1) -> tuple[int, ...]:
    """Canonicalize ``int | (int,) * nd`` to a tuple of ``nd`` ints in ``[minimum, 2**31 - 1]``."""
    return _args.ntuple(fn, name, value, nd, minimum=minimum)


def explicit_pads(fn: str, name: str, value: Any, nd: int):
    """``int | (p,) * nd | ((lo, hi),) * nd`` to per-axis ``(lo, hi)``; ``None`` for a string."""
    return _args.explicit_pads(fn, name, value, nd)


def named_pads(fn: str, name: str, value: str, size, eff, stride):
    """Explicit pads for ``"VALID" | "SAME"`` (SAME as ``jax.lax``: the odd pad at the end)."""
    key = value.upper()
    if key not in _PADDINGS:
        raise ValueError(
            f"{fn}: unknown {name} {value!r}; expected one of {', '.join(map(repr, _PADDINGS))}, "
            "an int, a pair or pairs of pairs"
        )
    pads = []
    for n, k, s in zip(size, eff, stride, strict=True):
        if key == "VALID":
            pads.append((0, 0))
        else:
            total = max((-(-n // s) - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
    return tuple(pads)


def _prepare(fn: str, x: Any, data_format: Any, nd: int = 2):
    """Common checks: layout, array, rank, float dtype, non-empty spatial axes.

    Returns ``(x, unbatched, spatial sizes, data_format)``.
    """
    data_format = check_format(fn, nd, data_format)
    x = _args.as_array(fn, "x", x)
    unbatched, _, size, _ = check_rank(fn, "x", x, nd, data_format)
    _args.check_float(fn, "x", x)
    if min(size) < 1:
        raise ValueError(
            f"{fn}: x has an empty spatial axis (shape {tuple(x.shape)}, layout "
            f"{data_format if not unbatched else data_format[1:]}); pooling needs at least one "
            "pixel per spatial axis"
        )
    return x, unbatched, size, data_format


def _check_bool(fn: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{fn}: {name} must be a bool, got {value!r}")
    return bool(value)


def _window_geometry(fn, size, window, stride, padding, dilation, ceil_mode):
    """Canonicalize a windowed pool's arguments and compute PyTorch's output size.

    Returns ``(window, stride, dilation, pads, full_pads, out, taps)``: ``pads`` as requested,
    ``full_pads`` with the extra high-side padding that ``ceil_mode`` needs for a last window
    that overhangs the end, so that a plain reduction over ``full_pads`` with ``taps`` (the
    window, less the taps that lie beyond the padded input in every window) yields ``out``.
    """
    nd = len(size)
    window = int_tuple(fn, "window", window, nd)
    stride = window if stride is None else int_tuple(fn, "stride", stride, nd)
    dilation = int_tuple(fn, "dilation", dilation, nd)
    ceil_mode = _check_bool(fn, "ceil_mode", ceil_mode)
    eff = tuple((k - 1) * d + 1 for k, d in zip(window, dilation, strict=True))

    pads = explicit_pads(fn, "padding", padding, nd)
    if pads is None:
        pads = named_pads(fn, "padding", padding, size, eff, stride)
    else:
        if any(p > k // 2 for side, k in zip(pads, window, strict=True) for p in side):
            symmetric = all(lo == hi for lo, hi in pads)
            shown = tuple(lo for lo, _ in pads) if symmetric else pads
            raise ValueError(
                f"{fn}: padding must be at most half the window (window={window}), "
                f"got padding={shown}"
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
    return window, stride, dilation, tuple(pads), tuple(full_pads), tuple(out), tuple(taps)


def _avg_divisor(size, window, stride, pads, out, count_include_pad):
    """Per-axis divisors as in PyTorch: the window clipped to the padded (or the real) input."""
    per_axis = []
    for n, k, s, (lo, hi), o in zip(size, window, stride, pads, out, strict=True):
        counts = []
        for i in range(o):
            start = i * s - lo
            end = min(start + k, n + hi)
            if count_include_pad:
                counts.append(end - start)
            else:
                counts.append(min(end, n) - max(start, 0))
        per_axis.append(tuple(counts))
    if all(len(set(c)) == 1 for c in per_axis):
        return math.prod(c[0] for c in per_axis)  # one divisor everywhere: a scalar
    return tuple(per_axis)


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------


def to_last(x, data_format: str, unbatched: bool):
    """Bring ``x`` to batched channels-last (inside the jitted core)."""
    if unbatched:
        x = x[None]
    if data_format[1] == "C":
        x = jnp.moveaxis(x, 1, -1)
    return x


def from_last(y, data_format: str, unbatched: bool):
    """Inverse of :func:`to_last`."""
    if data_format[1] == "C":
        y = jnp.moveaxis(y, -1, 1)
    if unbatched:
        y = y[0]
    return y


# --------------------------------------------------------------------------------------------
# Jitted cores (channels-last, any number of spatial axes)
# --------------------------------------------------------------------------------------------


def _spatial(seq):
    """``(1, *seq, 1)``: a per-spatial-axis tuple extended over the batch and channel axes."""
    return (1, *seq, 1)


def _tap_views(xp, taps, stride, dilation, out):
    """One strided view of the padded ``xp`` per window tap, in row-major tap order."""
    views = []
    for offsets in itertools.product(*(range(t) for t in taps)):
        index = tuple(
            slice(a * d, a * d + (o - 1) * s + 1, s)
            for a, d, s, o in zip(offsets, dilation, stride, out, strict=True)
        )
        views.append((offsets, xp[(slice(None), *index, slice(None))]))
    return views


def _crop(y, out):
    """The first ``out`` outputs per spatial axis: a window clipped to the padded input (see
    :func:`_window_geometry`) can leave a few more windows in the reduction than PyTorch has."""
    return y[(slice(None), *(slice(0, o) for o in out), slice(None))]


@functools.partial(
    jax.jit,
    static_argnames=(
        "kind", "window", "stride", "dilation", "pads", "out", "data_format", "unbatched"
    ),
)
def _extremum_core(x, *, kind, window, stride, dilation, pads, out, data_format, unbatched):
    x = to_last(x, data_format, unbatched)
    # -inf / +inf are the identities of max / min, which makes lax dispatch to the
    # differentiable reduce_window_max / reduce_window_min primitives.
    init, op = (-np.inf, lax.max) if kind == "max" else (np.inf, lax.min)
    if window == stride and all(d == 1 for d in dilation) and not any(map(any, pads)):
        y = _blocked_extremum(x, kind, window, out)
    elif all(d == 1 for d in dilation):
        y = lax.reduce_window(
            x,
            np.array(init, x.dtype),
            op,
            window_dimensions=_spatial(window),
            window_strides=_spatial(stride),
            padding=((0, 0), *pads, (0, 0)),
        )
    else:
        y = _dilated_extremum(x, init, kind, window, stride, dilation, pads, out)
    return from_last(_crop(y, out), data_format, unbatched)


def _blocks(x, window, out):
    """Channels-last ``x`` cut into its non-overlapping windows: ``(N, o1, k1, o2, k2, ..., C)``
    (the rows and columns past the last whole window dropped)."""
    x = x[(slice(None), *(slice(0, o * k) for o, k in zip(out, window, strict=True)), slice(None))]
    return x.reshape(x.shape[0], *(d for o, k in zip(out, window, strict=True) for d in (o, k)),
                     x.shape[-1])


def _window_axes(nd: int) -> tuple[int, ...]:
    return tuple(2 + 2 * i for i in range(nd))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _blocked_extremum(x, kind, window, out):
    """Max / min over non-overlapping windows (``stride == window``, no padding or dilation) as
    a reshape and a reduction.

    Its derivative (:func:`_blocked_extremum_jvp`) routes each window's tangent from its first
    extremum in row-major order, as ``reduce_window``'s and PyTorch's gradients do (``jnp.max``'s
    would share it among ties). XLA:CPU's gradient of ``reduce_window`` (a select-and-scatter)
    was measured 24x slower than this one's on 8x56x56x144 with 2x2 windows (42 against 1.7
    ms); the forward pass is as fast.
    """
    blocks = _blocks(x, window, out)
    axes = _window_axes(len(window))
    return jnp.max(blocks, axis=axes) if kind == "max" else jnp.min(blocks, axis=axes)


@_blocked_extremum.defjvp
def _blocked_extremum_jvp(kind, window, out, primals, tangents):
    """The tangent, written as the transpose of the gradient we want reverse mode to run
    (:func:`_first_extremum_gradient`), as in ``conv.depthwise``: transposition is an involution,
    so ``jax.grad`` runs exactly that function; forward mode evaluates its transpose."""
    (x,), (t,) = primals, tangents
    y = _blocked_extremum(x, kind, window, out)
    firsts, seen = [], jnp.zeros(y.shape, bool)
    for _, tap in _tap_views(x, window, window, (1,) * len(window), out):
        hit = tap == y
        firsts.append(hit & ~seen)
        seen = seen | hit
    to_x = functools.partial(_first_extremum_gradient, firsts, window, out, x.shape)
    (dy,) = jax.linear_transpose(to_x, jax.ShapeDtypeStruct(y.shape, t.dtype))(t)
    return y, dy


def _first_extremum_gradient(firsts, window, out, x_shape, g):
    """``g`` (one value per window) placed at each window's first extremum (``firsts``: one
    mask per window tap, row-major), zeros elsewhere -> ``x_shape``. Elementwise per tap, in the
    blocked layout: no transposes, no scatter."""
    nd = len(window)
    taps = list(itertools.product(*(range(k) for k in window)))
    pieces = {a: jnp.where(first, g, jnp.zeros((), g.dtype))
              for a, first in zip(taps, firsts, strict=True)}
    # (N, o1, ..., o_nd, C) pieces -> (N, o1, k1, ..., o_nd, k_nd, C), last window axis first
    for i in reversed(range(nd)):
        pieces = {key[:i]: jnp.stack([pieces[(*key[:i], a)] for a in range(window[i])],
                                     axis=i + 2)
                  for key in {k[:i] for k in pieces}}
    dx = pieces[()].reshape(x_shape[0], *(o * k for o, k in zip(out, window, strict=True)),
                            x_shape[-1])
    # rows and columns past the last whole window get nothing
    return jnp.pad(dx, ((0, 0), *((0, s - o * k) for s, o, k in zip(x_shape[1:-1], out, window,
                                                                    strict=True)), (0, 0)))


def _dilated_extremum(x, init, kind, window, stride, dilation, pads, out):
    """One strided slice per window tap, then a reduction over the taps.

    JAX cannot transpose reduce_window_max with window dilation (no VJP), so a dilated
    window is unrolled into ``prod(window)`` strided views instead; tied extrema share the
    gradient.
    """
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=np.array(init, x.dtype))
    stacked = jnp.stack([v for _, v in _tap_views(x, window, stride, dilation, out)], axis=-1)
    return jnp.max(stacked, axis=-1) if kind == "max" else jnp.min(stacked, axis=-1)


@functools.partial(
    jax.jit,
    static_argnames=(
        "size", "window", "stride", "dilation", "pads", "out", "data_format", "unbatched"
    ),
)
def _argmax_core(x, *, size, window, stride, dilation, pads, out, data_format, unbatched):
    """PyTorch's max-pool indices: the window's taps scanned in row-major order, a tap replacing
    the running maximum when ``value > max`` or ``value`` is NaN (so the first of tied maxima and
    the last NaN win); a window without a larger value keeps its first real position."""
    x = lax.stop_gradient(to_last(x, data_format, unbatched))
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=np.array(-np.inf, x.dtype))
    flat_strides = [math.prod(size[i + 1 :]) for i in range(len(size))]

    def flat(positions):
        grids = np.meshgrid(*positions, indexing="ij", sparse=True)
        total = sum(g.astype(np.int64) * fs for g, fs in zip(grids, flat_strides, strict=True))
        return jnp.asarray(np.broadcast_to(total, out).astype(np.int32).reshape(_spatial(out)))

    first = []
    for o, s, d, (lo, _) in zip(out, stride, dilation, pads, strict=True):
        start = np.arange(o) * s - lo
        first.append(np.where(start < 0, start + (-start + d - 1) // d * d, start))
    best = jnp.full(xp.shape[:1] + out + xp.shape[-1:], -np.inf, x.dtype)
    index = jnp.broadcast_to(flat(first), best.shape)
    for offsets, v in _tap_views(xp, window, stride, dilation, out):
        positions = [
            np.arange(o) * s + a * d - lo
            for o, s, a, d, (lo, _) in zip(out, stride, offsets, dilation, pads, strict=True)
        ]
        take = (v > best) | jnp.isnan(v)
        best = jnp.where(take, v, best)
        index = jnp.where(take, flat(positions), index)
    return from_last(index, data_format, unbatched)


def _window_sum(x, window, stride, pads):
    return lax.reduce_window(
        x,
        np.array(0, x.dtype),
        lax.add,
        window_dimensions=_spatial(window),
        window_strides=_spatial(stride),
        padding=((0, 0), *pads, (0, 0)),
    )


def _divide(total, divisor):
    if isinstance(divisor, int):
        return total / jnp.array(divisor, total.dtype)
    grid = functools.reduce(np.multiply.outer, [np.asarray(d, dtype=np.float64) for d in divisor])
    return total / jnp.asarray(grid[None, ..., None], total.dtype)


@functools.partial(
    jax.jit,
    static_argnames=("window", "stride", "pads", "out", "divisor", "data_format", "unbatched"),
)
def _avg_core(x, *, window, stride, pads, out, divisor, data_format, unbatched):
    dtype = x.dtype
    x = to_last(x, data_format, unbatched).astype(_args.accumulation_dtype(dtype))
    y = _divide(_crop(_window_sum(x, window, stride, pads), out), divisor)
    return from_last(y.astype(dtype), data_format, unbatched)


@functools.partial(
    jax.jit,
    static_argnames=(
        "norm", "window", "area", "stride", "pads", "out", "divisor", "data_format", "unbatched"
    ),
)
def _lp_core(x, *, norm, window, area, stride, pads, out, divisor, data_format, unbatched):
    dtype = x.dtype
    x = to_last(x, data_format, unbatched).astype(_args.accumulation_dtype(dtype))
    if math.isinf(norm):  # torch: the infinity norm is the max of |x|
        y = lax.reduce_window(
            jnp.abs(x), np.array(-np.inf, x.dtype), lax.max,
            _spatial(window), _spatial(stride), ((0, 0), *pads, (0, 0)),
        )
        return from_last(_crop(y, out).astype(dtype), data_format, unbatched)
    # integer_pow keeps x ** 2 exact and defined for negative x
    xp = x ** int(norm) if norm.is_integer() and norm <= 64 else x ** norm
    total = _divide(_crop(_window_sum(xp, window, stride, pads), out), divisor)
    # torch.nn.functional.lp_pool2d, literally: sign(out) * relu(|out|) * (kh * kw), ** (1 / p).
    # With ceil_mode, partial windows are avg-pooled over their clipped size then scaled by the
    # full window area, as in torch.
    total = jnp.sign(total) * jax.nn.relu(jnp.abs(total)) * area
    y = total ** (1.0 / norm)
    return from_last(y.astype(dtype), data_format, unbatched)


# --------------------------------------------------------------------------------------------
# Windowed pools: N-d implementations
# --------------------------------------------------------------------------------------------


def _max_pool(fn, nd, kind, x, window, stride, padding, dilation, ceil_mode, data_format,
              return_indices=False):
    x, unbatched, size, data_format = _prepare(fn, x, data_format, nd)
    window, stride, dilation, _, full_pads, out, taps = _window_geometry(
        fn, size, window, stride, padding, dilation, ceil_mode
    )
    return_indices = _check_bool(fn, "return_indices", return_indices)
    y = _extremum_core(
        x, kind=kind, window=taps, stride=stride, dilation=dilation, pads=full_pads, out=out,
        data_format=data_format, unbatched=unbatched,
    )
    if not return_indices:
        return y
    _args.check_int32(fn, "the flattened spatial size of x (for int32 indices)", [math.prod(size)],
                math.prod(size))
    indices = _argmax_core(
        x, size=size, window=taps, stride=stride, dilation=dilation, pads=full_pads, out=out,
        data_format=data_format, unbatched=unbatched,
    )
    return y, indices


def _check_divisor_override(fn: str, value: Any) -> int | None:
    if value is None:
        return None
    if not _args.is_int(value):
        raise TypeError(f"{fn}: divisor_override must be None or an int, got {value!r}")
    if int(value) == 0:
        raise ValueError(f"{fn}: divisor_override must be non-zero, got {value!r}")
    _args.check_int32(fn, "divisor_override", [int(value)], value)
    return int(value)


def _avg_pool(fn, nd, x, window, stride, padding, ceil_mode, count_include_pad, divisor_override,
              data_format):
    x, unbatched, size, data_format = _prepare(fn, x, data_format, nd)
    window, stride, _, pads, full_pads, out, taps = _window_geometry(
        fn, size, window, stride, padding, 1, ceil_mode
    )
    count_include_pad = _check_bool(fn, "count_include_pad", count_include_pad)
    override = _check_divisor_override(fn, divisor_override)
    divisor = (
        override
        if override is not None
        else _avg_divisor(size, window, stride, pads, out, count_include_pad)
    )
    return _avg_core(
        x, window=taps, stride=stride, pads=full_pads, out=out, divisor=divisor,
        data_format=data_format, unbatched=unbatched,
    )


def _lp_pool(fn, nd, x, norm, window, stride, ceil_mode, data_format):
    x, unbatched, size, data_format = _prepare(fn, x, data_format, nd)
    if not isinstance(norm, numbers.Real) or isinstance(norm, bool | np.bool_):
        raise TypeError(f"{fn}: norm must be a real number, got {norm!r}")
    if not float(norm) > 0:
        raise ValueError(f"{fn}: norm must be > 0, got {norm!r}")
    norm = float(norm)
    window, stride, _, pads, full_pads, out, taps = _window_geometry(
        fn, size, window, stride, 0, 1, ceil_mode
    )
    divisor = _avg_divisor(size, window, stride, pads, out, True)
    return _lp_core(
        x, norm=norm, window=taps, area=math.prod(window), stride=stride, pads=full_pads, out=out,
        divisor=divisor, data_format=data_format, unbatched=unbatched,
    )


# --------------------------------------------------------------------------------------------
# Docstrings of the 1-D and 3-D functions (the 2-D ones are written out below)
# --------------------------------------------------------------------------------------------

_DIMS = {
    1: dict(
        layout="NWC", cf="NCW", shape="(N, W, C)", cshape="(N, C, W)", ushape="(W, C)",
        ucshape="(C, W)", k="(kw,)", s="(sw,)", d="(dw,)", p="(pw,)", pairs="((left, right),)",
        out="(N, W_out, C)", first="W", axes="W", spatial="(W_out,)", flat="w",
    ),
    3: dict(
        layout="NDHWC", cf="NCDHW", shape="(N, D, H, W, C)", cshape="(N, C, D, H, W)",
        ushape="(D, H, W, C)", ucshape="(C, D, H, W)", k="(kd, kh, kw)", s="(sd, sh, sw)",
        d="(dd, dh, dw)", p="(pd, ph, pw)",
        pairs="((front, back), (top, bottom), (left, right))", out="(N, D_out, H_out, W_out, C)",
        first="D", axes="D, H and W", spatial="(D_out, H_out, W_out)",
        flat="(d * H + h) * W + w",
    ),
}

_X_DOC = """x: inputs, shape ``{shape}`` (``{cshape}`` with ``data_format="{cf}"``), or unbatched
        ``{ushape}`` / ``{ucshape}``; float dtype (float16, bfloat16, float32, float64)."""

_WINDOW_DOC = """window: ``int`` or ``{k}``, >= 1.
      stride: ``int`` or ``{s}``, >= 1; ``None`` (default) means ``stride = window``."""

_MAX_DOC = """{title} pooling over {nd}-D windows (``torch.nn.functional.{torch}`` semantics{extra}).

    Args:
      """ + _X_DOC + """
      """ + _WINDOW_DOC + """
      padding: ``"VALID"``, ``"SAME"`` (output ``ceil({first} / s)``), an ``int``, ``{p}`` or
        ``{pairs}``; explicit padding is at most half the window on each side and is filled
        with ``{fill}``.
      dilation: ``int`` or ``{d}``; the window spans ``k_eff = (k - 1) * d + 1`` pixels.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped (PyTorch).{indices_arg}
      data_format: ``"{layout}"`` (default) or ``"{cf}"``.

    Returns:
      ``{out}`` in ``x``'s layout, rank and dtype, where per axis
      ``out = floor((n + pad_lo + pad_hi - k_eff + (s - 1 if ceil_mode else 0)) / s) + 1``
      (minus one if that last window starts at or after ``n + pad_lo``). NaN in a window gives
      NaN.{indices_ret}

    Raises:
      ValueError: bad rank, empty spatial axes, sizes <= 0 or beyond int32, negative padding or
        more than half the window, window larger than the padded input, unknown padding string
        or data_format.
      TypeError: non-float ``x``, malformed arguments.

    Examples:
{examples}
    """

_INDICES_ARG = """
      return_indices: also return the position of each maximum as int32 indices into the
        flattened *unpadded* {axes} grid of its channel (``{flat}``, PyTorch's convention, in
        ``x``'s layout), for :func:`max_unpool{nd}d`. Tied maxima give the first; NaN gives the last
        NaN of the window (PyTorch's CPU kernel)."""

_INDICES_RET = """ With ``return_indices``: ``(y, indices)``, ``indices`` int32 of
      ``y``'s shape."""

_AVG_DOC = """Average pooling over {nd}-D windows (``torch.nn.functional.avg_pool{nd}d`` semantics).

    Args:
      """ + _X_DOC + """ Half precision is summed in float32.
      """ + _WINDOW_DOC + """
      padding: ``"VALID"``, ``"SAME"``, an ``int``, ``{p}`` or ``{pairs}``, at most half the
        window; padding holds zeros.
      ceil_mode: as :func:`max_pool{nd}d` (a window starting in the right padding is dropped).
      count_include_pad: divide by the window clipped to the *padded* input (``True``, default)
        or to the *real* input (``False``).
      divisor_override: a non-zero int that replaces the divisor everywhere.
      data_format: ``"{layout}"`` (default) or ``"{cf}"``.

    Returns:
      ``{out}`` in ``x``'s layout, rank and dtype, sizes as in :func:`max_pool{nd}d` with
      ``dilation=1``.

    Examples:
{examples}
    """

_LP_DOC = """Power-average pooling, ``(sum over the window of x ** p) ** (1 / p)``, as
    ``torch.nn.functional.lp_pool{nd}d``: ``avg_pool{nd}d(x ** p)`` (no padding), times the window
    volume, ``** (1 / p)`` (see :func:`lp_pool2d` for the details: ceil_mode windows are scaled to
    the full volume, negative sums with odd or fractional ``p`` give NaN, ``p = inf`` is the max
    of ``|x|``).

    Args:
      """ + _X_DOC + """
      norm: the power ``p > 0`` (an int or float, ``inf`` allowed).
      """ + _WINDOW_DOC + """
      ceil_mode: as :func:`max_pool{nd}d`.
      data_format: ``"{layout}"`` (default) or ``"{cf}"``.

    Returns:
      ``{out}`` in ``x``'s layout, rank and dtype, sizes as in :func:`max_pool{nd}d` without
      padding and dilation.

    Examples:
{examples}
    """


def _doc(template: str, nd: int, examples: str, **extra: str) -> str:
    return template.format(nd=nd, examples=examples, **_DIMS[nd], **extra)


def _max_doc(nd, kind, examples):
    if kind == "max":
        return _doc(_MAX_DOC, nd, examples, title="Max", torch=f"max_pool{nd}d", extra="",
                    fill="-inf", indices_arg=_INDICES_ARG.format(nd=nd, **_DIMS[nd]),
                    indices_ret=_INDICES_RET)
    return _doc(_MAX_DOC, nd, examples, title="Min", torch=f"max_pool{nd}d", extra=" with min",
                fill="+inf", indices_arg="", indices_ret="")


# --------------------------------------------------------------------------------------------
# Windowed pools: public functions
# --------------------------------------------------------------------------------------------

MaxPoolResult = jax.Array | tuple[jax.Array, jax.Array]


def max_pool1d(
    x: ArrayLike, window: Any = 2, *, stride: Any = None, padding: Any = "VALID",
    dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False,
    data_format: str = "NWC",
) -> MaxPoolResult:
    return _max_pool("max_pool1d", 1, "max", x, window, stride, padding, dilation, ceil_mode,
                     data_format, return_indices)


max_pool1d.__doc__ = _max_doc(1, "max", """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.array([1, 3, 2, 5, 4], dtype=jnp.float32).reshape(5, 1)
      >>> jaxconv.max_pool1d(x, 2, ceil_mode=True)[:, 0]
      Array([3., 5., 4.], dtype=float32)
      >>> jaxconv.max_pool1d(x, 2, return_indices=True)[1][:, 0]
      Array([1, 3], dtype=int32)""")


def max_pool3d(
    x: ArrayLike, window: Any = 2, *, stride: Any = None, padding: Any = "VALID",
    dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False,
    data_format: str = "NDHWC",
) -> MaxPoolResult:
    return _max_pool("max_pool3d", 3, "max", x, window, stride, padding, dilation, ceil_mode,
                     data_format, return_indices)


max_pool3d.__doc__ = _max_doc(3, "max", """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(64, dtype=jnp.float32).reshape(1, 4, 4, 4, 1)
      >>> jaxconv.max_pool3d(x, 2)[0, :, :, :, 0]
      Array([[[21., 23.],
              [29., 31.]],
      <BLANKLINE>
             [[53., 55.],
              [61., 63.]]], dtype=float32)
      >>> jaxconv.max_pool3d(jnp.zeros((2, 8, 9, 10, 3)), 3, stride=2, padding=1).shape
      (2, 4, 5, 5, 3)""")


def min_pool1d(
    x: ArrayLike, window: Any = 2, *, stride: Any = None, padding: Any = "VALID",
    dilation: Any = 1, ceil_mode: bool = False, data_format: str = "NWC",
) -> jax.Array:
    return _max_pool("min_pool1d", 1, "min", x, window, stride, padding, dilation, ceil_mode,
                     data_format)


min_pool1d.__doc__ = _max_doc(1, "min", """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.array([1, 3, 2, 5, 4], dtype=jnp.float32).reshape(5, 1)
      >>> jaxconv.min_pool1d(x, 2, stride=1)[:, 0]
      Array([1., 2., 2., 4.], dtype=float32)""")


def min_pool3d(
    x: ArrayLike, window: Any = 2, *, stride: Any = None, padding: Any = "VALID",
    dilation: Any = 1, ceil_mode: bool = False, data_format: str = "NDHWC",
) -> jax.Array:
    return _max_pool("min_pool3d", 3, "min", x, window, stride, padding, dilation, ceil_mode,
                     data_format)


min_pool3d.__doc__ = _max_doc(3, "min", """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(64, dtype=jnp.float32).reshape(1, 4, 4, 4, 1)
      >>> jaxconv.min_pool3d(x, 2)[0, :, 0, 0, 0]
      Array([ 0., 32.], dtype=float32)""")


def avg_pool1d(
    x: ArrayLike, window: Any = 2, *, stride: Any = None, padding: Any = "VALID",
    ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None,
    data_format: str = "NWC",
) -> jax.Array:
    return _avg_pool("avg_pool1d", 1, x, window, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, data_format)


avg_pool1d.__doc__ = _doc(_AVG_DOC, 1, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.array([1, 3, 2, 5, 4], dtype=jnp.float32).reshape(5, 1)
      >>> jaxconv.avg_pool1d(x, 2, ceil_mode=True)[:, 0]
      Array([2. , 3.5, 4. ], dtype=float32)""")


def avg_pool3d(
    x: ArrayLike, window: Any = 2, *, stride: Any = None, padding: Any = "VALID",
    ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None,
    data_format: str = "NDHWC",
) -> jax.Array:
    return _avg_pool("avg_pool3d", 3, x, window, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, data_format)


avg_pool3d.__doc__ = _doc(_AVG_DOC, 3, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(2, 2, 2, 1)
      >>> jaxconv.avg_pool3d(x, 2)
      Array([[[[3.5]]]], dtype=float32)""")


def lp_pool1d(
    x: ArrayLike, norm: float, window: Any = 2, *, stride: Any = None, ceil_mode: bool = False,
    data_format: str = "NWC",
) -> jax.Array:
    return _lp_pool("lp_pool1d", 1, x, norm, window, stride, ceil_mode, data_format)


lp_pool1d.__doc__ = _doc(_LP_DOC, 1, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.array([3, 4, 6, 8], dtype=jnp.float32).reshape(4, 1)
      >>> jaxconv.lp_pool1d(x, 2, 2)[:, 0]
      Array([ 5., 10.], dtype=float32)""")


def lp_pool3d(
    x: ArrayLike, norm: float, window: Any = 2, *, stride: Any = None, ceil_mode: bool = False,
    data_format: str = "NDHWC",
) -> jax.Array:
    return _lp_pool("lp_pool3d", 3, x, norm, window, stride, ceil_mode, data_format)


lp_pool3d.__doc__ = _doc(_LP_DOC, 3, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.lp_pool3d(jnp.ones((2, 2, 2, 1), jnp.float32), 2, 2)[0, 0, 0]
      Array([2.828427], dtype=float32)""")


def max_pool2d(
    x: ArrayLike, window: Any = 2, *, stride: Any = None, padding: Any = "VALID",
    dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False,
    data_format: str = "NHWC",
) -> MaxPoolResult:
    """Max pooling over spatial windows (``torch.nn.functional.max_pool2d`` semantics).

    Args:
      x: images, shape ``(N, H, W, C)`` (``(N, C, H, W)`` with ``data_format="NCHW"``), or
        unbatched ``(H, W, C)`` / ``(C, H, W)``; float dtype (float16, bfloat16, float32, float64).
      window: ``int`` or ``(kh, kw)``, >= 1.
      stride: ``int`` or ``(sh, sw)``, >= 1; ``None`` (default) means ``stride = window``
        (Keras and PyTorch: a 5x5 pool of a 318x398 image gives 63x79).
      padding: ``"VALID"``, ``"SAME"`` (output ``ceil(H / sh)``), an ``int``, a pair ``(ph, pw)`` or
        pairs ``((top, bottom), (left, right))``; explicit padding is at most half the window on
        each side and is filled with ``-inf``.
      dilation: ``int`` or ``(dh, dw)``; the window spans ``k_eff = (k - 1) * d + 1`` pixels.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped (PyTorch).
      return_indices: also return the position of each maximum as int32 indices into the
        flattened *unpadded* ``H x W`` grid of its channel (``h * W + w``, PyTorch's convention,
        in ``x``'s layout), for :func:`max_unpool2d`. Tied maxima give the first in row-major
        window order; NaN gives the last NaN of the window (PyTorch's CPU kernel).
      data_format: ``"NHWC"`` (default) or ``"NCHW"``.

    Returns:
      ``(N, H_out, W_out, C)`` in ``x``'s layout, rank and dtype, where
      ``H_out = floor((H + pad_top + pad_bottom - k_eff + (sh - 1 if ceil_mode else 0)) / sh) + 1``
      (minus one if that last window starts at or after ``H + pad_top``; same for W).
      A NaN anywhere in a window makes that output NaN. The gradient goes to one maximal element
      per window (with ``dilation > 1``, tied maxima share it equally). With
      ``return_indices``: ``(y, indices)``, ``indices`` int32 of ``y``'s shape.

    Raises:
      ValueError: bad rank, sizes <= 0, negative padding or more than half the window, window
        larger than the padded input, unknown padding string or data_format.
      TypeError: non-float ``x``, malformed arguments.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(16, dtype=jnp.float32).reshape(1, 4, 4, 1)
      >>> jaxconv.max_pool2d(x, 2)[0, :, :, 0]
      Array([[ 5.,  7.],
             [13., 15.]], dtype=float32)
      >>> jaxconv.max_pool2d(jnp.zeros((1, 318, 398, 3)), 5).shape
      (1, 63, 79, 3)
      >>> jaxconv.max_pool2d(x, 2, return_indices=True)[1][0, :, :, 0]
      Array([[ 5,  7],
             [13, 15]], dtype=int32)
    """
    return _max_pool(
        "max_pool2d", 2, "max", x, window, stride, padding, dilation, ceil_mode, data_format,
        return_indices,
    )


def min_pool2d(
    x: ArrayLike, window: Any = 2, *, stride: Any = None, padding: Any = "VALID",
    dilation: Any = 1, ceil_mode: bool = False, data_format: str = "NHWC",
) -> jax.Array:
    """Min pooling over spatial windows: :func:`max_pool2d` with ``min``, padding ``+inf``.

    Args:
      x: images, shape ``(N, H, W, C)`` (``(N, C, H, W)`` with ``data_format="NCHW"``), or
        unbatched ``(H, W, C)`` / ``(C, H, W)``; float dtype.
      window: ``int`` or ``(kh, kw)``, >= 1.
      stride: ``int`` or ``(sh, sw)``; ``None`` means ``stride = window``.
      padding: as :func:`max_pool2d`; explicit padding is filled with ``+inf``.
      dilation: ``int`` or ``(dh, dw)``.
      ceil_mode: as :func:`max_pool2d`.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``.

    Returns:
      ``(N, H_out, W_out, C)`` in ``x``'s layout, rank and dtype, ``H_out`` as in
      :func:`max_pool2d`. NaN in a window gives NaN.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(16, dtype=jnp.float32).reshape(1, 4, 4, 1)
      >>> jaxconv.min_pool2d(x, 2)[0, :, :, 0]
      Array([[ 0.,  2.],
             [ 8., 10.]], dtype=float32)
    """
    return _max_pool(
        "min_pool2d", 2, "min", x, window, stride, padding, dilation, ceil_mode, data_format
    )


def avg_pool2d(
    x: ArrayLike, window: Any = 2, *, stride: Any = None, padding: Any = "VALID",
    ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None,
    data_format: str = "NHWC",
) -> jax.Array:
    """Average pooling over spatial windows (``torch.nn.functional.avg_pool2d`` semantics).

    Args:
      x: images, shape ``(N, H, W, C)`` (``(N, C, H, W)`` with ``data_format="NCHW"``), or
        unbatched ``(H, W, C)`` / ``(C, H, W)``; float dtype. Half-precision inputs are summed
        in float32.
      window: ``int`` or ``(kh, kw)``, >= 1.
      stride: ``int`` or ``(sh, sw)``; ``None`` means ``stride = window``.
      padding: ``"VALID"``, ``"SAME"``, an ``int``, ``(ph, pw)`` or ``((top, bottom), (left,
        right))``, at most half the window; padding holds zeros. (Keras' ``"same"`` average
        is ``padding="SAME", count_include_pad=False``.)
      ceil_mode: as :func:`max_pool2d` (a window starting in the right padding is dropped).
      count_include_pad: divide by the window clipped to the *padded* input (``True``, default;
        the part of a ``ceil_mode`` window beyond the padding is never counted) or to the *real*
        input (``False``).
      divisor_override: a non-zero int that replaces the divisor everywhere.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``.

    Returns:
      ``(N, H_out, W_out, C)`` in ``x``'s layout, rank and dtype, ``H_out`` as in
      :func:`max_pool2d` with ``dilation=1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(16, dtype=jnp.float32).reshape(1, 4, 4, 1)
      >>> jaxconv.avg_pool2d(x, 2)[0, :, :, 0]
      Array([[ 2.5,  4.5],
             [10.5, 12.5]], dtype=float32)
    """
    return _avg_pool("avg_pool2d", 2, x, window, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, data_format)


def lp_pool2d(
    x: ArrayLike, norm: float, window: Any = 2, *, stride: Any = None, ceil_mode: bool = False,
    data_format: str = "NHWC",
) -> jax.Array:
    """Power-average pooling, ``(sum over the window of x ** p) ** (1 / p)``, as in PyTorch.

    Follows ``torch.nn.functional.lp_pool2d`` literally: ``out = avg_pool2d(x ** p)`` (no padding,
    ``count_include_pad=True``), then ``(sign(out) * relu(|out|) * kh * kw) ** (1 / p)``. So for
    full windows this is the p-norm of the window; with ``ceil_mode`` a clipped last window is
    scaled to the full window area; a negative window sum with an odd or fractional ``p`` gives
    NaN; ``p = inf`` gives the max of ``|x|``. Where a window's sum of ``x ** p`` is zero the
    (reverse-mode) gradient is zero, as in torch.

    Args:
      x: images, shape ``(N, H, W, C)`` (``(N, C, H, W)`` with ``data_format="NCHW"``), or
        unbatched ``(H, W, C)`` / ``(C, H, W)``; float dtype (half precision is computed in
        float32).
      norm: the power ``p > 0`` (an int or float, ``inf`` allowed).
      window: ``int`` or ``(kh, kw)``, >= 1.
      stride: ``int`` or ``(sh, sw)``; ``None`` means ``stride = window``.
      ceil_mode: as :func:`max_pool2d`.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``.

    Returns:
      ``(N, H_out, W_out, C)`` in ``x``'s layout, rank and dtype, with
      ``H_out = floor((H - kh + (sh - 1 if ceil_mode else 0)) / sh) + 1`` (PyTorch's drop rule
      for the last ``ceil_mode`` window applies).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.array([[3.0, 4.0], [0.0, 0.0]], dtype=jnp.float32).reshape(2, 2, 1)
      >>> jaxconv.lp_pool2d(x, 2, 2)[:, :, 0]
      Array([[5.]], dtype=float32)
    """
    return _lp_pool("lp_pool2d", 2, x, norm, window, stride, ceil_mode, data_format)


# --------------------------------------------------------------------------------------------
# Global pools
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("kind", "keepdims", "data_format", "unbatched"))
def _global_core(x, *, kind, keepdims, data_format, unbatched):
    dtype = x.dtype
    x = to_last(x, data_format, unbatched)
    axes = tuple(range(1, x.ndim - 1))
    if kind == "avg":
        y = jnp.mean(x.astype(_args.accumulation_dtype(dtype)), axis=axes, keepdims=True)
        y = y.astype(dtype)
    else:
        y = jnp.max(x, axis=axes, keepdims=True)
    if keepdims:
        return from_last(y, data_format, unbatched)
    y = y.reshape(y.shape[0], y.shape[-1])
    return y[0] if unbatched else y


def _global(fn, nd, kind, x, keepdims, data_format):
    x, unbatched, _, data_format = _prepare(fn, x, data_format, nd)
    keepdims = _check_bool(fn, "keepdims", keepdims)
    return _global_core(
        x, kind=kind, keepdims=keepdims, data_format=data_format, unbatched=unbatched
    )


def global_avg_pool2d(x: ArrayLike, keepdims: bool = False, *, data_format: str = "NHWC") -> jax.Array:
    """Mean over the spatial axes.

    Args:
      x: images, shape ``(N, H, W, C)`` (``(N, C, H, W)`` with ``data_format="NCHW"``), or
        unbatched ``(H, W, C)`` / ``(C, H, W)``; float dtype (half precision is summed in
        float32).
      keepdims: keep ``H`` and ``W`` as size-1 axes.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``.

    Returns:
      ``(N, C)`` (unbatched: ``(C,)``), or with ``keepdims`` ``(N, 1, 1, C)`` in ``x``'s layout
      and rank; ``x``'s dtype.

    Raises:
      ValueError: an empty spatial axis (``H == 0`` or ``W == 0``: the mean of no pixels), a
        bad rank or data_format.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(1, 2, 2, 2)
      >>> jaxconv.global_avg_pool2d(x)
      Array([[3., 4.]], dtype=float32)
    """
    return _global("global_avg_pool2d", 2, "avg", x, keepdims, data_format)


def global_max_pool2d(x: ArrayLike, keepdims: bool = False, *, data_format: str = "NHWC") -> jax.Array:
    """Maximum over the spatial axes (NaN anywhere in a channel gives NaN).

    Args:
      x: images, shape ``(N, H, W, C)`` (``(N, C, H, W)`` with ``data_format="NCHW"``), or
        unbatched ``(H, W, C)`` / ``(C, H, W)``; float dtype.
      keepdims: keep ``H`` and ``W`` as size-1 axes.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``.

    Returns:
      ``(N, C)`` (unbatched: ``(C,)``), or with ``keepdims`` ``(N, 1, 1, C)`` in ``x``'s layout
      and rank; ``x``'s dtype.

    Raises:
      ValueError: an empty spatial axis (``H == 0`` or ``W == 0``: no maximum), a bad rank or
        data_format.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(1, 2, 2, 2)
      >>> jaxconv.global_max_pool2d(x, keepdims=True).shape
      (1, 1, 1, 2)
    """
    return _global("global_max_pool2d", 2, "max", x, keepdims, data_format)


_GLOBAL_DOC = """{title} over the spatial axes ({axes}){nan}.

    Args:
      """ + _X_DOC + """
      keepdims: keep the spatial axes as size-1 axes.
      data_format: ``"{layout}"`` (default) or ``"{cf}"``.

    Returns:
      ``(N, C)`` (unbatched: ``(C,)``), or with ``keepdims`` the spatial axes of size 1, in
      ``x``'s layout and rank; ``x``'s dtype.

    Raises:
      ValueError: an empty spatial axis, a bad rank or data_format.

    Examples:
{examples}
    """


def global_avg_pool1d(x: ArrayLike, keepdims: bool = False, *, data_format: str = "NWC") -> jax.Array:
    return _global("global_avg_pool1d", 1, "avg", x, keepdims, data_format)


def global_avg_pool3d(
    x: ArrayLike, keepdims: bool = False, *, data_format: str = "NDHWC"
) -> jax.Array:
    return _global("global_avg_pool3d", 3, "avg", x, keepdims, data_format)


def global_max_pool1d(x: ArrayLike, keepdims: bool = False, *, data_format: str = "NWC") -> jax.Array:
    return _global("global_max_pool1d", 1, "max", x, keepdims, data_format)


def global_max_pool3d(
    x: ArrayLike, keepdims: bool = False, *, data_format: str = "NDHWC"
) -> jax.Array:
    return _global("global_max_pool3d", 3, "max", x, keepdims, data_format)


global_avg_pool1d.__doc__ = _doc(_GLOBAL_DOC, 1, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.global_avg_pool1d(jnp.arange(6, dtype=jnp.float32).reshape(1, 3, 2))
      Array([[2., 3.]], dtype=float32)""", title="Mean", nan=" (half precision is summed in float32)")
global_avg_pool3d.__doc__ = _doc(_GLOBAL_DOC, 3, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.global_avg_pool3d(jnp.ones((2, 3, 4, 5, 6)), keepdims=True).shape
      (2, 1, 1, 1, 6)""", title="Mean", nan=" (half precision is summed in float32)")
global_max_pool1d.__doc__ = _doc(_GLOBAL_DOC, 1, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.global_max_pool1d(jnp.arange(6, dtype=jnp.float32).reshape(1, 3, 2))
      Array([[4., 5.]], dtype=float32)""", title="Maximum", nan="; NaN in a channel gives NaN")
global_max_pool3d.__doc__ = _doc(_GLOBAL_DOC, 3, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.global_max_pool3d(jnp.ones((2, 3, 4, 5, 6))).shape
      (2, 6)""", title="Maximum", nan="; NaN in a channel gives NaN")


# --------------------------------------------------------------------------------------------
# Adaptive pools
# --------------------------------------------------------------------------------------------


def _output_size(fn: str, output_size: Any, size: tuple[int, ...]) -> tuple[int, ...]:
    """Canonicalize ``int | (int | None,) * nd``; ``None`` keeps that input size."""
    nd = len(size)
    if _args.is_int(output_size):
        value = (output_size,) * nd
    elif (
        isinstance(output_size, Sequence)
        and not isinstance(output_size, str)
        and len(output_size) == nd
        and all(v is None or _args.is_int(v) for v in output_size)
    ):
        value = tuple(output_size)
    else:
        what = "a pair of ints or None" if nd == 2 else f"a tuple of {nd} ints or None"
        raise TypeError(f"{fn}: output_size must be an int or {what}, got {output_size!r}")
    out = tuple(n if v is None else int(v) for v, n in zip(value, size, strict=True))
    if min(out) < 1:
        raise ValueError(f"{fn}: output_size must be >= 1, got {output_size!r}")
    _args.check_int32(fn, "output_size", out, output_size)
    return out


def _bins(n: int, o: int):
    """PyTorch's adaptive bins: ``[floor(i * n / o), ceil((i + 1) * n / o))``."""
    return [((i * n) // o, -(-((i + 1) * n) // o)) for i in range(o)]


def _adaptive_axis(x, axis: int, o: int, kind: str):
    """Pool ``x`` along ``axis`` into ``o`` PyTorch bins with one static gather.

    The bins are gathered as an ``(o, kmax)`` block (``kmax`` the longest bin); positions past a
    bin's end point at an appended slot holding the reduction's identity (``0`` or ``-inf``),
    never at a duplicate. Unlike an averaging matrix, a NaN or inf stays inside its own bins.
    """
    n = x.shape[axis]
    if n % o == 0:  # equal, disjoint bins: a reshape, no gather
        g = x.reshape(*x.shape[:axis], o, n // o, *x.shape[axis + 1 :])
        return jnp.max(g, axis=axis + 1) if kind == "max" else jnp.mean(g, axis=axis + 1)
    bins = _bins(n, o)
    kmax = max(e - s for s, e in bins)
    idx = np.full((o, kmax), n, dtype=np.int32)
    for i, (s, e) in enumerate(bins):
        idx[i, : e - s] = np.arange(s, e)
    if any(e - s < kmax for s, e in bins):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (0, 1)
        x = jnp.pad(x, pad, constant_values=0 if kind == "avg" else -np.inf)
    g = jnp.take(x, jnp.asarray(idx.reshape(-1)), axis=axis, mode="clip")
    g = g.reshape(*g.shape[:axis], o, kmax, *g.shape[axis + 1 :])
    if kind == "max":
        # a plain max (not argmax + gather) compiles several times faster; tied maxima share
        # the gradient equally, as with jnp.max
        return jnp.max(g, axis=axis + 1)
    counts = np.array([e - s for s, e in bins], dtype=np.float64)
    shape = [1] * x.ndim
    shape[axis] = o
    return jnp.sum(g, axis=axis + 1) / jnp.asarray(counts.reshape(shape), g.dtype)


@functools.partial(jax.jit, static_argnames=("kind", "out", "data_format", "unbatched"))
def _adaptive_core(x, *, kind, out, data_format, unbatched):
    dtype = x.dtype
    x = to_last(x, data_format, unbatched)
    if kind == "avg":
        x = x.astype(_args.accumulation_dtype(dtype))
    for axis, o in enumerate(out, start=1):
        x = _adaptive_axis(x, axis, o, kind)
    return from_last(x.astype(dtype), data_format, unbatched)


def _adaptive(fn, kind, x, output_size, data_format, nd=2):
    x, unbatched, size, data_format = _prepare(fn, x, data_format, nd)
    out = _output_size(fn, output_size, size)
    return _adaptive_core(x, kind=kind, out=out, data_format=data_format, unbatched=unbatched)


def adaptive_avg_pool2d(x: ArrayLike, output_size: Any, *, data_format: str = "NHWC") -> jax.Array:
    """Average pooling to a fixed output size, with PyTorch's bins.

    Output row ``i`` averages input rows ``floor(i * H / H_out)`` to ``ceil((i + 1) * H / H_out)``
    (exclusive); the same for columns. Bins may overlap, and ``H_out > H`` is allowed.

    Args:
      x: images, shape ``(N, H, W, C)`` (``(N, C, H, W)`` with ``data_format="NCHW"``), or
        unbatched ``(H, W, C)`` / ``(C, H, W)``; float dtype (half precision is computed in
        float32).
      output_size: ``H_out = W_out`` as an int, or ``(H_out, W_out)`` where ``None`` keeps that
        input size.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``.

    Returns:
      ``(N, H_out, W_out, C)`` in ``x``'s layout, rank and dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(5, dtype=jnp.float32).reshape(5, 1, 1)
      >>> jaxconv.adaptive_avg_pool2d(x, (3, 1))[:, 0, 0]
      Array([0.5, 2. , 3.5], dtype=float32)
    """
    return _adaptive("adaptive_avg_pool2d", "avg", x, output_size, data_format)


def adaptive_max_pool2d(x: ArrayLike, output_size: Any, *, data_format: str = "NHWC") -> jax.Array:
    """Max pooling to a fixed output size, with PyTorch's bins (see :func:`adaptive_avg_pool2d`).

    Args:
      x: images, shape ``(N, H, W, C)`` (``(N, C, H, W)`` with ``data_format="NCHW"``), or
        unbatched ``(H, W, C)`` / ``(C, H, W)``; float dtype.
      output_size: an int, or ``(H_out, W_out)`` where ``None`` keeps that input size.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``.

    Returns:
      ``(N, H_out, W_out, C)`` in ``x``'s layout, rank and dtype. NaN in a bin gives NaN; the
      gradient goes to the maximal element of each bin (tied maxima share it equally).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(5, dtype=jnp.float32).reshape(5, 1, 1)
      >>> jaxconv.adaptive_max_pool2d(x, (3, 1))[:, 0, 0]
      Array([1., 3., 4.], dtype=float32)
    """
    return _adaptive("adaptive_max_pool2d", "max", x, output_size, data_format)


_ADAPTIVE_DOC = """{title} pooling to a fixed output size with PyTorch's bins
    (``torch.nn.functional.adaptive_{kind}_pool{nd}d``): output ``i`` of an axis of size ``n``
    pools inputs ``floor(i * n / out)`` to ``ceil((i + 1) * n / out)`` (exclusive), on each of
    {axes}. Bins may overlap, and ``out > n`` is allowed.

    Args:
      """ + _X_DOC + """
      output_size: an int (every spatial axis), or ``{spatial}`` where ``None`` keeps that input
        size.
      data_format: ``"{layout}"`` (default) or ``"{cf}"``.

    Returns:
      ``{out}`` in ``x``'s layout, rank and dtype.{nan}

    Examples:
{examples}
    """


def adaptive_avg_pool1d(x: ArrayLike, output_size: Any, *, data_format: str = "NWC") -> jax.Array:
    return _adaptive("adaptive_avg_pool1d", "avg", x, output_size, data_format, 1)


def adaptive_avg_pool3d(
    x: ArrayLike, output_size: Any, *, data_format: str = "NDHWC"
) -> jax.Array:
    return _adaptive("adaptive_avg_pool3d", "avg", x, output_size, data_format, 3)


def adaptive_max_pool1d(x: ArrayLike, output_size: Any, *, data_format: str = "NWC") -> jax.Array:
    return _adaptive("adaptive_max_pool1d", "max", x, output_size, data_format, 1)


def adaptive_max_pool3d(
    x: ArrayLike, output_size: Any, *, data_format: str = "NDHWC"
) -> jax.Array:
    return _adaptive("adaptive_max_pool3d", "max", x, output_size, data_format, 3)


_AVG_NOTE = " Half precision is computed in float32."
_MAX_NOTE = " NaN in a bin gives NaN; tied maxima share the gradient."
adaptive_avg_pool1d.__doc__ = _doc(_ADAPTIVE_DOC, 1, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(5, dtype=jnp.float32).reshape(5, 1)
      >>> jaxconv.adaptive_avg_pool1d(x, 3)[:, 0]
      Array([0.5, 2. , 3.5], dtype=float32)""", title="Average", kind="avg", nan=_AVG_NOTE)
adaptive_avg_pool3d.__doc__ = _doc(_ADAPTIVE_DOC, 3, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.adaptive_avg_pool3d(jnp.ones((2, 5, 6, 7, 3)), (2, None, 3)).shape
      (2, 2, 6, 3, 3)""", title="Average", kind="avg", nan=_AVG_NOTE)
adaptive_max_pool1d.__doc__ = _doc(_ADAPTIVE_DOC, 1, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(5, dtype=jnp.float32).reshape(5, 1)
      >>> jaxconv.adaptive_max_pool1d(x, 3)[:, 0]
      Array([1., 3., 4.], dtype=float32)""", title="Max", kind="max", nan=_MAX_NOTE)
adaptive_max_pool3d.__doc__ = _doc(_ADAPTIVE_DOC, 3, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.adaptive_max_pool3d(jnp.ones((5, 6, 7, 3)), 2).shape
      (2, 2, 2, 3)""", title="Max", kind="max", nan=_MAX_NOTE)


# --------------------------------------------------------------------------------------------
# Max-unpooling
# --------------------------------------------------------------------------------------------


def _unpool_size(fn, output_size, default, stride, data_format, unbatched):
    """PyTorch's ``_unpool_output_size``: ``nd`` ints, or the full output shape in ``x``'s
    layout; each within ``(default - stride, default + stride)`` exclusive."""
    nd = len(default)
    if output_size is None:
        return default
    if (
        not isinstance(output_size, Sequence)
        or isinstance(output_size, str)
        or not all(_args.is_int(v) for v in output_size)
    ):
        raise TypeError(f"{fn}: output_size must be None or a sequence of ints, got {output_size!r}")
    full = nd + (1 if unbatched else 2)
    if len(output_size) == full and len(output_size) != nd:
        first = data_format[1] == "C"
        start = (0 if unbatched else 1) + (1 if first else 0)
        sizes = tuple(int(v) for v in output_size[start : start + nd])
    elif len(output_size) == nd:
        sizes = tuple(int(v) for v in output_size)
    else:
        raise ValueError(
            f"{fn}: output_size must have {nd} or {full} elements, got {len(output_size)} "
            f"({output_size!r})"
        )
    for axis, (o, dflt, s) in enumerate(zip(sizes, default, stride, strict=True)):
        if not dflt - s < o < dflt + s:
            raise ValueError(
                f"{fn}: invalid output_size {output_size!r} (spatial axis {axis} must be between "
                f"{dflt - s} and {dflt + s}, exclusive; the default is {dflt})"
            )
    return sizes


@functools.partial(jax.jit, static_argnames=("out", "data_format", "unbatched"))
def _unpool_core(y, indices, *, out, data_format, unbatched):
    y = to_last(y, data_format, unbatched)
    indices = to_last(indices, data_format, unbatched).astype(jnp.int32)
    n, c = y.shape[0], y.shape[-1]
    total = math.prod(out)
    m = math.prod(y.shape[1:-1])
    values = jnp.moveaxis(y, -1, 1).reshape(n, c, m)
    flat = jnp.moveaxis(indices, -1, 1).reshape(n, c, m)
    flat = jnp.where((flat < 0) | (flat >= total), total, flat)  # out of range: dropped
    batch = jnp.arange(n, dtype=jnp.int32).reshape(n, 1, 1)
    channel = jnp.arange(c, dtype=jnp.int32).reshape(1, c, 1)
    # unique_indices: the transpose is then a gather, so every value of y gets the cotangent at
    # its index, as in torch's max_unpool backward, even where overlapping windows repeat an
    # index (max-pooling gives such duplicates equal values; otherwise one of them is kept).
    x = jnp.zeros((n, c, total), y.dtype).at[batch, channel, flat].set(
        values, mode="drop", unique_indices=True
    )
    x = jnp.moveaxis(x.reshape(n, c, *out), 1, -1)
    return from_last(x, data_format, unbatched)


def _max_unpool(fn, nd, y, indices, window, stride, padding, output_size, data_format):
    data_format = check_format(fn, nd, data_format)
    y = _args.as_array(fn, "y", y)
    indices = _args.as_array(fn, "indices", indices)
    unbatched, _, size, _ = check_rank(fn, "y", y, nd, data_format)
    _args.check_float(fn, "y", y)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"{fn}: indices must have an integer dtype, got {indices.dtype}")
    if tuple(indices.shape) != tuple(y.shape):
        raise ValueError(
            f"{fn}: indices must have y's shape {tuple(y.shape)}, got {tuple(indices.shape)}"
        )
    window = int_tuple(fn, "window", window, nd)
    stride = window if stride is None else int_tuple(fn, "stride", stride, nd)
    padding = int_tuple(fn, "padding", padding, nd, minimum=0)
    default = tuple(
        (n - 1) * s - 2 * p + k for n, s, p, k in zip(size, stride, padding, window, strict=True)
    )
    out = _unpool_size(fn, output_size, default, stride, data_format, unbatched)
    if min(out) < 1:
        raise ValueError(
            f"{fn}: the output size {out} must be >= 1 (input {size}, window {window}, stride "
            f"{stride}, padding {padding})"
        )
    _args.check_int32(fn, "the flattened output size", [math.prod(out)], out)
    try:
        idx = np.asarray(indices)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        idx = None  # traced: checked at run time by dropping out-of-range indices
    if idx is not None:
        total = math.prod(out)
        if idx.size and (idx.min() < 0 or idx.max() >= total):
            raise ValueError(
                f"{fn}: indices must lie in [0, {total}) (the flattened output {out}), got values "
                f"from {idx.min()} to {idx.max()}"
            )
    return _unpool_core(y, indices, out=out, data_format=data_format, unbatched=unbatched)


_UNPOOL_DOC = """Inverse of :func:`max_pool{nd}d` with ``return_indices=True``
    (``torch.nn.functional.max_unpool{nd}d``): each value of ``y`` goes to the position its index
    names in the flattened {axes} grid of its channel; everything else is zero. Linear (and
    differentiable) in ``y``: as in torch, the gradient of each value of ``y`` is the cotangent
    at its index, also where several values share an index (then one of them is kept; the
    duplicates that overlapping max-pool windows produce are equal).

    Args:
      y: pooled values, shape ``{shape}`` (``{cshape}`` with ``data_format="{cf}"``), or
        unbatched ``{ushape}`` / ``{ucshape}``; float dtype.
      indices: integer array of ``y``'s shape, as returned by :func:`max_pool{nd}d`. Concrete
        indices outside the output raise ``ValueError``; under ``jit`` they are dropped.
      window: ``int`` or ``{k}``: the pool's window.
      stride: ``int`` or ``{s}``; ``None`` (default) means ``stride = window``.
      padding: ``int`` or ``{p}``: the pool's (symmetric) padding.
      output_size: ``None`` (default) for ``(n - 1) * s - 2 * p + k`` per axis, or the spatial
        sizes (``{nd}`` ints, or the whole output shape in ``y``'s layout), each strictly
        between ``default - s`` and ``default + s`` (PyTorch's rule; this resolves the sizes
        that ``floor`` in the pool's output size made ambiguous).
      data_format: ``"{layout}"`` (default) or ``"{cf}"``.

    Returns:
      ``y``'s layout, rank and dtype with the spatial sizes above.

    Raises:
      ValueError: bad rank, shapes, sizes or output_size; indices out of range (when concrete).
      TypeError: non-float ``y``, non-integer ``indices``, malformed arguments.

    Examples:
{examples}
    """


def max_unpool1d(
    y: ArrayLike, indices: ArrayLike, window: Any, *, stride: Any = None, padding: Any = 0,
    output_size: Sequence[int] | None = None, data_format: str = "NWC",
) -> jax.Array:
    return _max_unpool("max_unpool1d", 1, y, indices, window, stride, padding, output_size,
                       data_format)


def max_unpool2d(
    y: ArrayLike, indices: ArrayLike, window: Any, *, stride: Any = None, padding: Any = 0,
    output_size: Sequence[int] | None = None, data_format: str = "NHWC",
) -> jax.Array:
    return _max_unpool("max_unpool2d", 2, y, indices, window, stride, padding, output_size,
                       data_format)


def max_unpool3d(
    y: ArrayLike, indices: ArrayLike, window: Any, *, stride: Any = None, padding: Any = 0,
    output_size: Sequence[int] | None = None, data_format: str = "NDHWC",
) -> jax.Array:
    return _max_unpool("max_unpool3d", 3, y, indices, window, stride, padding, output_size,
                       data_format)


_DIMS[2] = dict(
    layout="NHWC", cf="NCHW", shape="(N, H, W, C)", cshape="(N, C, H, W)", ushape="(H, W, C)",
    ucshape="(C, H, W)", k="(kh, kw)", s="(sh, sw)", d="(dh, dw)", p="(ph, pw)",
    pairs="((top, bottom), (left, right))", out="(N, H_out, W_out, C)", first="H",
    axes="H and W", spatial="(H_out, W_out)",
)
max_unpool1d.__doc__ = _doc(_UNPOOL_DOC, 1, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.array([1, 3, 2, 5, 4], dtype=jnp.float32).reshape(5, 1)
      >>> y, i = jaxconv.max_pool1d(x, 2, return_indices=True)
      >>> jaxconv.max_unpool1d(y, i, 2, output_size=(5,))[:, 0]
      Array([0., 3., 0., 5., 0.], dtype=float32)""")
max_unpool2d.__doc__ = _doc(_UNPOOL_DOC, 2, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(16, dtype=jnp.float32).reshape(4, 4, 1)
      >>> y, i = jaxconv.max_pool2d(x, 2, return_indices=True)
      >>> jaxconv.max_unpool2d(y, i, 2)[:, :, 0]
      Array([[ 0.,  0.,  0.,  0.],
             [ 0.,  5.,  0.,  7.],
             [ 0.,  0.,  0.,  0.],
             [ 0., 13.,  0., 15.]], dtype=float32)""")
max_unpool3d.__doc__ = _doc(_UNPOOL_DOC, 3, """      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(2, 2, 2, 1)
      >>> y, i = jaxconv.max_pool3d(x, 2, return_indices=True)
      >>> int(i[0, 0, 0, 0]), jaxconv.max_unpool3d(y, i, 2).shape
      (7, (2, 2, 2, 1))""")
