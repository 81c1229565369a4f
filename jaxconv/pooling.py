"""Pooling: max / min / average / power-average, global and adaptive, with PyTorch's semantics.

Images are **NHWC** ``(N, H, W, C)`` by default (``data_format="NCHW"`` for ``(N, C, H, W)``), or
unbatched ``(H, W, C)`` / ``(C, H, W)``, returned with the same rank. Every function checks its
arguments before tracing, then calls a jitted core whose configuration is static.

Windowed pools share PyTorch's geometry, written per axis (``k`` window, ``s`` stride, ``d``
dilation, ``p_lo``/``p_hi`` padding, ``k_eff = (k - 1) * d + 1``)::

    out = floor((H + p_lo + p_hi - k_eff + (s - 1 if ceil_mode else 0)) / s) + 1
    # with ceil_mode, a last window starting in the right padding is dropped:
    if ceil_mode and (out - 1) * s >= H + p_lo: out -= 1

Explicit padding may be at most half the window on each side (PyTorch's rule, so that no window
lies in the padding only); ``"SAME"`` (output ``ceil(H / s)``, the odd extra pad at the end, as
``jax.lax``) and ``"VALID"`` are accepted too.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _args

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "avg_pool2d",
    "global_avg_pool2d",
    "global_max_pool2d",
    "lp_pool2d",
    "max_pool2d",
    "min_pool2d",
]

_PADDINGS = ("VALID", "SAME")


# --------------------------------------------------------------------------------------------
# Validation at the boundary
# --------------------------------------------------------------------------------------------


def _prepare(fn: str, x: Any, data_format: Any):
    """Common checks: layout, array, rank, float dtype. Returns ``(x, unbatched, nhwc, fmt)``."""
    data_format = _args.check_data_format(fn, data_format)
    x = _args.as_array(fn, "x", x)
    unbatched, nhwc = _args.image_rank(fn, "x", x, data_format)
    _args.check_float(fn, "x", x)
    return x, unbatched, nhwc, data_format


def _check_bool(fn: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{fn}: {name} must be a bool, got {value!r}")
    return bool(value)


def _window_geometry(
    fn: str,
    size: _args.Pair,
    window: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: Any,
):
    """Canonicalize a windowed pool's arguments and compute PyTorch's output size.

    Returns ``(window, stride, dilation, pads, full_pads, out)``: ``pads`` as requested and
    ``full_pads`` with the extra bottom/right padding that ``ceil_mode`` needs for a last window
    that overhangs the end, so that a plain reduction over ``full_pads`` yields ``out``.
    """
    window = _args.pair(fn, "window", window)
    stride = window if stride is None else _args.pair(fn, "stride", stride)
    dilation = _args.pair(fn, "dilation", dilation)
    ceil_mode = _check_bool(fn, "ceil_mode", ceil_mode)
    eff = tuple((k - 1) * d + 1 for k, d in zip(window, dilation, strict=True))

    pads = _args.explicit_pads(fn, "padding", padding)
    if pads is None:
        pads = _args.named_pads(fn, "padding", padding, size, eff, stride, _PADDINGS)
    else:
        half = (window[0] // 2, window[1] // 2)
        if any(p > h for side, h in zip(pads, half, strict=True) for p in side):
            symmetric = all(lo == hi for lo, hi in pads)
            shown = (pads[0][0], pads[1][0]) if symmetric else pads
            raise ValueError(
                f"{fn}: padding must be at most half the window (window={window}), "
                f"got padding={shown}"
            )

    padded = tuple(n + lo + hi for n, (lo, hi) in zip(size, pads, strict=True))
    if eff[0] > padded[0] or eff[1] > padded[1]:
        raise ValueError(
            f"{fn}: the window (effective size {eff[0]}x{eff[1]} from window {window}, dilation "
            f"{dilation}) is larger than the padded input {padded[0]}x{padded[1]} (input "
            f"{size[0]}x{size[1]}, padding {pads}); the output would be empty"
        )

    out, full_pads = [], []
    for n, k, s, (lo, hi), p in zip(size, eff, stride, pads, padded, strict=True):
        o = (p - k + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (o - 1) * s >= n + lo:
            o -= 1
        extra = max((o - 1) * s + k - p, 0)
        out.append(o)
        full_pads.append((lo, hi + extra))
    return window, stride, dilation, tuple(pads), tuple(full_pads), tuple(out)


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
    if len(set(per_axis[0])) == 1 and len(set(per_axis[1])) == 1:
        return per_axis[0][0] * per_axis[1][0]  # one divisor everywhere: a scalar
    return tuple(per_axis)


# --------------------------------------------------------------------------------------------
# Jitted cores
# --------------------------------------------------------------------------------------------


@functools.partial(
    jax.jit,
    static_argnames=("kind", "window", "stride", "dilation", "pads", "data_format", "unbatched"),
)
def _extremum_core(x, *, kind, window, stride, dilation, pads, data_format, unbatched):
    x = _args.to_nhwc(x, data_format, unbatched)
    # -inf / +inf are the identities of max / min, which makes lax dispatch to the
    # differentiable reduce_window_max / reduce_window_min primitives.
    init, op = (-np.inf, lax.max) if kind == "max" else (np.inf, lax.min)
    if dilation == (1, 1):
        y = lax.reduce_window(
            x,
            np.array(init, x.dtype),
            op,
            window_dimensions=(1, *window, 1),
            window_strides=(1, *stride, 1),
            padding=((0, 0), *pads, (0, 0)),
        )
    else:
        y = _dilated_extremum(x, init, kind, window, stride, dilation, pads)
    return _args.from_nhwc(y, data_format, unbatched)


def _dilated_extremum(x, init, kind, window, stride, dilation, pads):
    """One strided slice per window tap, then a reduction over the taps.

    JAX cannot transpose reduce_window_max with window dilation (no VJP), so a dilated
    window is unrolled into ``kh * kw`` strided views instead; tied extrema share the gradient.
    """
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=np.array(init, x.dtype))
    (kh, kw), (sh, sw), (dh, dw) = window, stride, dilation
    oh = (x.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (x.shape[2] - (kw - 1) * dw - 1) // sw + 1
    taps = [
        x[:, a * dh : a * dh + (oh - 1) * sh + 1 : sh, b * dw : b * dw + (ow - 1) * sw + 1 : sw]
        for a in range(kh)
        for b in range(kw)
    ]
    stacked = jnp.stack(taps, axis=-1)
    return jnp.max(stacked, axis=-1) if kind == "max" else jnp.min(stacked, axis=-1)


def _window_sum(x, window, stride, pads):
    return lax.reduce_window(
        x,
        np.array(0, x.dtype),
        lax.add,
        window_dimensions=(1, *window, 1),
        window_strides=(1, *stride, 1),
        padding=((0, 0), *pads, (0, 0)),
    )


def _divide(total, divisor):
    if isinstance(divisor, int):
        return total / jnp.array(divisor, total.dtype)
    dh, dw = (np.asarray(d, dtype=np.float64) for d in divisor)
    return total / jnp.asarray(np.outer(dh, dw)[None, :, :, None], total.dtype)


@functools.partial(
    jax.jit,
    static_argnames=("window", "stride", "pads", "divisor", "data_format", "unbatched"),
)
def _avg_core(x, *, window, stride, pads, divisor, data_format, unbatched):
    dtype = x.dtype
    x = _args.to_nhwc(x, data_format, unbatched).astype(_args.accumulation_dtype(dtype))
    y = _divide(_window_sum(x, window, stride, pads), divisor)
    return _args.from_nhwc(y.astype(dtype), data_format, unbatched)


@functools.partial(
    jax.jit,
    static_argnames=("norm", "window", "stride", "pads", "divisor", "data_format", "unbatched"),
)
def _lp_core(x, *, norm, window, stride, pads, divisor, data_format, unbatched):
    dtype = x.dtype
    x = _args.to_nhwc(x, data_format, unbatched).astype(_args.accumulation_dtype(dtype))
    if math.isinf(norm):  # torch: the infinity norm is the max of |x|
        y = lax.reduce_window(
            jnp.abs(x), np.array(-np.inf, x.dtype), lax.max,
            (1, *window, 1), (1, *stride, 1), ((0, 0), *pads, (0, 0)),
        )
        return _args.from_nhwc(y.astype(dtype), data_format, unbatched)
    # integer_pow keeps x ** 2 exact and defined for negative x
    xp = x ** int(norm) if norm.is_integer() and norm <= 64 else x ** norm
    out = _divide(_window_sum(xp, window, stride, pads), divisor)
    # torch.nn.functional.lp_pool2d, literally: sign(out) * relu(|out|) * (kh * kw), ** (1 / p).
    # With ceil_mode, partial windows are avg-pooled over their clipped size then scaled by the
    # full window area, as in torch.
    out = jnp.sign(out) * jax.nn.relu(jnp.abs(out)) * (window[0] * window[1])
    y = out ** (1.0 / norm)
    return _args.from_nhwc(y.astype(dtype), data_format, unbatched)


# --------------------------------------------------------------------------------------------
# Windowed pools
# --------------------------------------------------------------------------------------------


def _extremum_pool(fn, kind, x, window, stride, padding, dilation, ceil_mode, data_format):
    x, unbatched, (_, h, w, _), data_format = _prepare(fn, x, data_format)
    window, stride, dilation, _, full_pads, _ = _window_geometry(
        fn, (h, w), window, stride, padding, dilation, ceil_mode
    )
    return _extremum_core(
        x, kind=kind, window=window, stride=stride, dilation=dilation, pads=full_pads,
        data_format=data_format, unbatched=unbatched,
    )


def max_pool2d(
    x, window=2, *, stride=None, padding="VALID", dilation=1, ceil_mode=False, data_format="NHWC"
):
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
      data_format: ``"NHWC"`` (default) or ``"NCHW"``.

    Returns:
      ``(N, H_out, W_out, C)`` in ``x``'s layout, rank and dtype, where
      ``H_out = floor((H + pad_top + pad_bottom - k_eff + (sh - 1 if ceil_mode else 0)) / sh) + 1``
      (minus one if that last window starts at or after ``H + pad_top``; same for W).
      A NaN anywhere in a window makes that output NaN. The gradient goes to one maximal element
      per window (with ``dilation > 1``, tied maxima share it equally).

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
    """
    return _extremum_pool(
        "max_pool2d", "max", x, window, stride, padding, dilation, ceil_mode, data_format
    )


def min_pool2d(
    x, window=2, *, stride=None, padding="VALID", dilation=1, ceil_mode=False, data_format="NHWC"
):
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
    return _extremum_pool(
        "min_pool2d", "min", x, window, stride, padding, dilation, ceil_mode, data_format
    )


def _check_divisor_override(fn: str, value: Any) -> int | None:
    if value is None:
        return None
    if not _args.is_int(value):
        raise TypeError(f"{fn}: divisor_override must be None or an int, got {value!r}")
    if int(value) == 0:
        raise ValueError(f"{fn}: divisor_override must be non-zero, got {value!r}")
    return int(value)


def avg_pool2d(
    x,
    window=2,
    *,
    stride=None,
    padding="VALID",
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
    data_format="NHWC",
):
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
    fn = "avg_pool2d"
    x, unbatched, (_, h, w, _), data_format = _prepare(fn, x, data_format)
    window, stride, _, pads, full_pads, out = _window_geometry(
        fn, (h, w), window, stride, padding, 1, ceil_mode
    )
    count_include_pad = _check_bool(fn, "count_include_pad", count_include_pad)
    override = _check_divisor_override(fn, divisor_override)
    divisor = (
        override
        if override is not None
        else _avg_divisor((h, w), window, stride, pads, out, count_include_pad)
    )
    return _avg_core(
        x, window=window, stride=stride, pads=full_pads, divisor=divisor,
        data_format=data_format, unbatched=unbatched,
    )


def lp_pool2d(x, norm, window=2, *, stride=None, ceil_mode=False, data_format="NHWC"):
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
    fn = "lp_pool2d"
    x, unbatched, (_, h, w, _), data_format = _prepare(fn, x, data_format)
    if not isinstance(norm, numbers.Real) or isinstance(norm, bool | np.bool_):
        raise TypeError(f"{fn}: norm must be a real number, got {norm!r}")
    if not float(norm) > 0:
        raise ValueError(f"{fn}: norm must be > 0, got {norm!r}")
    norm = float(norm)
    window, stride, _, pads, full_pads, out = _window_geometry(
        fn, (h, w), window, stride, 0, 1, ceil_mode
    )
    divisor = _avg_divisor((h, w), window, stride, pads, out, True)
    return _lp_core(
        x, norm=norm, window=window, stride=stride, pads=full_pads, divisor=divisor,
        data_format=data_format, unbatched=unbatched,
    )


# --------------------------------------------------------------------------------------------
# Global pools
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("kind", "keepdims", "data_format", "unbatched"))
def _global_core(x, *, kind, keepdims, data_format, unbatched):
    dtype = x.dtype
    x = _args.to_nhwc(x, data_format, unbatched)
    if kind == "avg":
        y = jnp.mean(x.astype(_args.accumulation_dtype(dtype)), axis=(1, 2), keepdims=True).astype(dtype)
    else:
        y = jnp.max(x, axis=(1, 2), keepdims=True)
    if keepdims:
        return _args.from_nhwc(y, data_format, unbatched)
    y = y[:, 0, 0, :]
    return y[0] if unbatched else y


def global_avg_pool2d(x, keepdims=False, *, data_format="NHWC"):
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

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(1, 2, 2, 2)
      >>> jaxconv.global_avg_pool2d(x)
      Array([[3., 4.]], dtype=float32)
    """
    fn = "global_avg_pool2d"
    x, unbatched, _, data_format = _prepare(fn, x, data_format)
    keepdims = _check_bool(fn, "keepdims", keepdims)
    return _global_core(
        x, kind="avg", keepdims=keepdims, data_format=data_format, unbatched=unbatched
    )


def global_max_pool2d(x, keepdims=False, *, data_format="NHWC"):
    """Maximum over the spatial axes (NaN anywhere in a channel gives NaN).

    Args:
      x: images, shape ``(N, H, W, C)`` (``(N, C, H, W)`` with ``data_format="NCHW"``), or
        unbatched ``(H, W, C)`` / ``(C, H, W)``; float dtype.
      keepdims: keep ``H`` and ``W`` as size-1 axes.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``.

    Returns:
      ``(N, C)`` (unbatched: ``(C,)``), or with ``keepdims`` ``(N, 1, 1, C)`` in ``x``'s layout
      and rank; ``x``'s dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(1, 2, 2, 2)
      >>> jaxconv.global_max_pool2d(x, keepdims=True).shape
      (1, 1, 1, 2)
    """
    fn = "global_max_pool2d"
    x, unbatched, _, data_format = _prepare(fn, x, data_format)
    keepdims = _check_bool(fn, "keepdims", keepdims)
    return _global_core(
        x, kind="max", keepdims=keepdims, data_format=data_format, unbatched=unbatched
    )


# --------------------------------------------------------------------------------------------
# Adaptive pools
# --------------------------------------------------------------------------------------------


def _output_size(fn: str, output_size: Any, size: _args.Pair) -> _args.Pair:
    """Canonicalize ``int | (int | None, int | None)``; ``None`` keeps that input size."""
    if _args.is_int(output_size):
        value = (output_size, output_size)
    elif (
        isinstance(output_size, Sequence)
        and not isinstance(output_size, str)
        and len(output_size) == 2
        and all(v is None or _args.is_int(v) for v in output_size)
    ):
        value = tuple(output_size)
    else:
        raise TypeError(
            f"{fn}: output_size must be an int or a pair of ints or None, got {output_size!r}"
        )
    out = tuple(n if v is None else int(v) for v, n in zip(value, size, strict=True))
    if min(out) < 1:
        raise ValueError(f"{fn}: output_size must be >= 1, got {output_size!r}")
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
    x = _args.to_nhwc(x, data_format, unbatched)
    if kind == "avg":
        x = x.astype(_args.accumulation_dtype(dtype))
    y = _adaptive_axis(_adaptive_axis(x, 1, out[0], kind), 2, out[1], kind)
    return _args.from_nhwc(y.astype(dtype), data_format, unbatched)


def _adaptive(fn, kind, x, output_size, data_format):
    x, unbatched, (_, h, w, _), data_format = _prepare(fn, x, data_format)
    out = _output_size(fn, output_size, (h, w))
    return _adaptive_core(x, kind=kind, out=out, data_format=data_format, unbatched=unbatched)


def adaptive_avg_pool2d(x, output_size, *, data_format="NHWC"):
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


def adaptive_max_pool2d(x, output_size, *, data_format="NHWC"):
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
