"""Average and power-average (Lp) pooling in 1, 2 and 3 spatial dimensions, with PyTorch's
divisors: a window clipped to the padded input (``count_include_pad``) or to the real input, or
``divisor_override``. Half precision is summed in float32."""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _args
from ..convolution._canonical import Padding, from_channels_last, to_channels_last
from . import _window
from ._window import Size, Window

# One divisor for every window (an int), or one tuple of divisors per spatial axis.
Divisor = int | tuple[tuple[int, ...], ...]


def _divisor(geom: Window, count_include_pad: bool) -> Divisor:
    """Per-axis divisors as in PyTorch: the window clipped to the padded (or the real) input."""
    per_axis = []
    for n, k, s, (lo, hi), o in zip(geom.size, geom.window, geom.stride, geom.pads, geom.out,
                                    strict=True):
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


def _divide(total: jax.Array, divisor: Divisor) -> jax.Array:
    if isinstance(divisor, int):
        return total / jnp.array(divisor, total.dtype)
    grid = functools.reduce(np.multiply.outer, [np.asarray(d, dtype=np.float64) for d in divisor])
    return total / jnp.asarray(grid[None, ..., None], total.dtype)


@functools.partial(jax.jit, static_argnames=("geom", "divisor", "data_format", "unbatched"))
def _avg_core(x, *, geom, divisor, data_format, unbatched):
    dtype = x.dtype
    x = to_channels_last(x, data_format, unbatched).astype(_args.accumulation_dtype(dtype))
    y = _divide(_window.reduce(x, "sum", geom), divisor)
    return from_channels_last(y.astype(dtype), data_format, unbatched)


@functools.partial(jax.jit, static_argnames=("norm", "geom", "divisor", "data_format", "unbatched"))
def _lp_core(x, *, norm, geom, divisor, data_format, unbatched):
    dtype = x.dtype
    x = to_channels_last(x, data_format, unbatched).astype(_args.accumulation_dtype(dtype))
    if math.isinf(norm):  # torch: the infinity norm is the max of |x|
        y = _window.reduce(jnp.abs(x), "max", geom)
        return from_channels_last(y.astype(dtype), data_format, unbatched)
    # integer_pow keeps x ** 2 exact and defined for negative x
    xp = x ** int(norm) if norm.is_integer() and norm <= 64 else x ** norm
    total = _divide(_window.reduce(xp, "sum", geom), divisor)
    # torch.nn.functional.lp_pool2d, literally: sign(out) * relu(|out|) * (kh * kw), ** (1 / p).
    # With ceil_mode, partial windows are avg-pooled over their clipped size then scaled by the
    # full window area, as in torch.
    total = jnp.sign(total) * jax.nn.relu(jnp.abs(total)) * math.prod(geom.window)
    y = total ** (1.0 / norm)
    return from_channels_last(y.astype(dtype), data_format, unbatched)


def _check_divisor_override(fn: str, value: Any) -> int | None:
    if value is None:
        return None
    if not _args.is_int(value):
        raise TypeError(f"{fn}: divisor_override must be None or an int, got {value!r}")
    if int(value) == 0:
        raise ValueError(f"{fn}: divisor_override must be non-zero, got {value!r}")
    _args.check_int32(fn, "divisor_override", [int(value)], value)
    return int(value)


def _avg_pool(fn: str, nd: int, x: Any, window: Any, stride: Any, padding: Any, ceil_mode: Any,
              count_include_pad: Any, divisor_override: Any, data_format: Any) -> jax.Array:
    x, unbatched, shape, data_format = _window.prepare(fn, x, data_format, nd)
    geom = _window.geometry(fn, shape, window, stride, padding, 1, ceil_mode)
    count_include_pad = _window.check_bool(fn, "count_include_pad", count_include_pad)
    override = _check_divisor_override(fn, divisor_override)
    divisor = override if override is not None else _divisor(geom, count_include_pad)
    return _avg_core(x, geom=geom, divisor=divisor, data_format=data_format, unbatched=unbatched)


def _lp_pool(fn: str, nd: int, x: Any, norm: Any, window: Any, stride: Any, ceil_mode: Any,
             data_format: Any) -> jax.Array:
    x, unbatched, shape, data_format = _window.prepare(fn, x, data_format, nd)
    if not isinstance(norm, numbers.Real) or isinstance(norm, bool | np.bool_):
        raise TypeError(f"{fn}: norm must be a real number, got {norm!r}")
    if not float(norm) > 0:
        raise ValueError(f"{fn}: norm must be > 0, got {norm!r}")
    geom = _window.geometry(fn, shape, window, stride, 0, 1, ceil_mode)
    return _lp_core(x, norm=float(norm), geom=geom, divisor=_divisor(geom, True),
                    data_format=data_format, unbatched=unbatched)


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def avg_pool1d(
    x: ArrayLike, window: Size = 2, *, stride: Size | None = None, padding: Padding = "VALID",
    ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None,
    data_format: str = "NWC",
) -> jax.Array:
    """Average pooling over windows of a sequence (``torch.nn.functional.avg_pool1d``
    semantics).

    Args:
      x: sequences, shape ``(N, W, C)`` (``(N, C, W)`` with ``data_format="NCW"``), or unbatched
        ``(W, C)`` / ``(C, W)``; float dtype. Half precision is summed in float32.
      window: ``int`` or ``(kw,)``, >= 1.
      stride: ``int`` or ``(sw,)``; ``None`` (default) means ``stride = window``.
      padding: ``"VALID"``, ``"SAME"``, an ``int``, ``(pw,)`` or ``((left, right),)``, at most
        half the window; padding holds zeros.
      ceil_mode: as :func:`max_pool1d` (a window starting in the right padding is dropped).
      count_include_pad: divide by the window clipped to the *padded* sequence (``True``,
        default) or to the *real* one (``False``).
      divisor_override: a non-zero int that replaces the divisor everywhere.
      data_format: ``"NWC"`` (default) or ``"NCW"``.

    Returns:
      ``(N, W_out, C)`` in ``x``'s layout, rank and dtype, ``W_out`` as in :func:`max_pool1d`
      with ``dilation=1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.array([1, 3, 2, 5, 4], dtype=jnp.float32).reshape(5, 1)
      >>> jaxconv.avg_pool1d(x, 2, ceil_mode=True)[:, 0]
      Array([2. , 3.5, 4. ], dtype=float32)
    """
    return _avg_pool("avg_pool1d", 1, x, window, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, data_format)


def avg_pool2d(
    x: ArrayLike, window: Size = 2, *, stride: Size | None = None, padding: Padding = "VALID",
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


def avg_pool3d(
    x: ArrayLike, window: Size = 2, *, stride: Size | None = None, padding: Padding = "VALID",
    ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None,
    data_format: str = "NDHWC",
) -> jax.Array:
    """Average pooling over volume windows (``torch.nn.functional.avg_pool3d`` semantics).

    Args:
      x: volumes, shape ``(N, D, H, W, C)`` (``(N, C, D, H, W)`` with
        ``data_format="NCDHW"``), or unbatched ``(D, H, W, C)`` / ``(C, D, H, W)``; float dtype.
        Half precision is summed in float32.
      window: ``int`` or ``(kd, kh, kw)``, >= 1.
      stride: ``int`` or ``(sd, sh, sw)``; ``None`` (default) means ``stride = window``.
      padding: ``"VALID"``, ``"SAME"``, an ``int``, ``(pd, ph, pw)`` or
        ``((front, back), (top, bottom), (left, right))``, at most half the window; padding
        holds zeros.
      ceil_mode: as :func:`max_pool3d` (a window starting in the far padding is dropped).
      count_include_pad: divide by the window clipped to the *padded* volume (``True``, default)
        or to the *real* one (``False``).
      divisor_override: a non-zero int that replaces the divisor everywhere.
      data_format: ``"NDHWC"`` (default) or ``"NCDHW"``.

    Returns:
      ``(N, D_out, H_out, W_out, C)`` in ``x``'s layout, rank and dtype, sizes as in
      :func:`max_pool3d` with ``dilation=1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(2, 2, 2, 1)
      >>> jaxconv.avg_pool3d(x, 2)
      Array([[[[3.5]]]], dtype=float32)
    """
    return _avg_pool("avg_pool3d", 3, x, window, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, data_format)


def lp_pool1d(
    x: ArrayLike, norm: float, window: Size = 2, *, stride: Size | None = None,
    ceil_mode: bool = False, data_format: str = "NWC",
) -> jax.Array:
    """Power-average pooling of a sequence, ``(sum over the window of x ** p) ** (1 / p)``, as
    ``torch.nn.functional.lp_pool1d``: ``avg_pool1d(x ** p)`` (no padding) times ``kw``,
    ``** (1 / p)``. A clipped ``ceil_mode`` window is scaled to the full ``kw``; a negative sum
    with an odd or fractional ``p`` gives NaN; ``p = inf`` is the max of ``|x|``.

    Args:
      x: sequences, shape ``(N, W, C)`` (``(N, C, W)`` with ``data_format="NCW"``), or unbatched
        ``(W, C)`` / ``(C, W)``; float dtype (half precision is computed in float32).
      norm: the power ``p > 0`` (an int or float, ``inf`` allowed).
      window: ``int`` or ``(kw,)``, >= 1.
      stride: ``int`` or ``(sw,)``; ``None`` (default) means ``stride = window``.
      ceil_mode: as :func:`max_pool1d`.
      data_format: ``"NWC"`` (default) or ``"NCW"``.

    Returns:
      ``(N, W_out, C)`` in ``x``'s layout, rank and dtype, with
      ``W_out = floor((W - kw + (sw - 1 if ceil_mode else 0)) / sw) + 1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.array([3, 4, 6, 8], dtype=jnp.float32).reshape(4, 1)
      >>> jaxconv.lp_pool1d(x, 2, 2)[:, 0]
      Array([ 5., 10.], dtype=float32)
    """
    return _lp_pool("lp_pool1d", 1, x, norm, window, stride, ceil_mode, data_format)


def lp_pool2d(
    x: ArrayLike, norm: float, window: Size = 2, *, stride: Size | None = None,
    ceil_mode: bool = False, data_format: str = "NHWC",
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


def lp_pool3d(
    x: ArrayLike, norm: float, window: Size = 2, *, stride: Size | None = None,
    ceil_mode: bool = False, data_format: str = "NDHWC",
) -> jax.Array:
    """Power-average pooling of volumes, ``(sum over the window of x ** p) ** (1 / p)``, as
    ``torch.nn.functional.lp_pool3d``: ``avg_pool3d(x ** p)`` (no padding) times
    ``kd * kh * kw``, ``** (1 / p)``. A clipped ``ceil_mode`` window is scaled to the full
    volume; a negative sum with an odd or fractional ``p`` gives NaN; ``p = inf`` is the max of
    ``|x|``.

    Args:
      x: volumes, shape ``(N, D, H, W, C)`` (``(N, C, D, H, W)`` with
        ``data_format="NCDHW"``), or unbatched ``(D, H, W, C)`` / ``(C, D, H, W)``; float dtype
        (half precision is computed in float32).
      norm: the power ``p > 0`` (an int or float, ``inf`` allowed).
      window: ``int`` or ``(kd, kh, kw)``, >= 1.
      stride: ``int`` or ``(sd, sh, sw)``; ``None`` (default) means ``stride = window``.
      ceil_mode: as :func:`max_pool3d`.
      data_format: ``"NDHWC"`` (default) or ``"NCDHW"``.

    Returns:
      ``(N, D_out, H_out, W_out, C)`` in ``x``'s layout, rank and dtype, each axis
      ``floor((n - k + (s - 1 if ceil_mode else 0)) / s) + 1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.lp_pool3d(jnp.ones((2, 2, 2, 1), jnp.float32), 2, 2)[0, 0, 0]
      Array([2.828427], dtype=float32)
    """
    return _lp_pool("lp_pool3d", 3, x, norm, window, stride, ceil_mode, data_format)
