"""Adaptive pooling (a fixed output size, PyTorch's bins) and global pooling (one value per
channel), in 1, 2 and 3 spatial dimensions."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import _args
from ..convolution._canonical import from_channels_last, to_channels_last
from . import _window

OutputSize = int | Sequence[int | None]
"""One size for every spatial axis, or one per axis where ``None`` keeps the input's."""

# --------------------------------------------------------------------------------------------
# Global pools
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("kind", "keepdims", "data_format", "unbatched"))
def _global_core(x, *, kind, keepdims, data_format, unbatched):
    dtype = x.dtype
    x = to_channels_last(x, data_format, unbatched)
    axes = tuple(range(1, x.ndim - 1))
    if kind == "avg":
        y = jnp.mean(x.astype(_args.accumulation_dtype(dtype)), axis=axes, keepdims=True)
        y = y.astype(dtype)
    else:
        y = jnp.max(x, axis=axes, keepdims=True)
    if keepdims:
        return from_channels_last(y, data_format, unbatched)
    y = y.reshape(y.shape[0], y.shape[-1])
    return y[0] if unbatched else y


def _global(fn: str, nd: int, kind: str, x: Any, keepdims: Any, data_format: Any) -> jax.Array:
    x, unbatched, _, data_format = _window.prepare(fn, x, data_format, nd)
    keepdims = _window.check_bool(fn, "keepdims", keepdims)
    return _global_core(x, kind=kind, keepdims=keepdims, data_format=data_format,
                        unbatched=unbatched)


def global_avg_pool1d(x: ArrayLike, keepdims: bool = False, *,
                      data_format: str = "NWC") -> jax.Array:
    """Mean over the sequence axis (half precision is summed in float32).

    Args:
      x: sequences, shape ``(N, W, C)`` (``(N, C, W)`` with ``data_format="NCW"``), or unbatched
        ``(W, C)`` / ``(C, W)``; float dtype.
      keepdims: keep ``W`` as a size-1 axis.
      data_format: ``"NWC"`` (default) or ``"NCW"``.

    Returns:
      ``(N, C)`` (unbatched: ``(C,)``), or with ``keepdims`` ``(N, 1, C)`` in ``x``'s layout and
      rank; ``x``'s dtype.

    Raises:
      ValueError: an empty sequence (``W == 0``), a bad rank or data_format.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.global_avg_pool1d(jnp.arange(6, dtype=jnp.float32).reshape(1, 3, 2))
      Array([[2., 3.]], dtype=float32)
    """
    return _global("global_avg_pool1d", 1, "avg", x, keepdims, data_format)


def global_avg_pool2d(x: ArrayLike, keepdims: bool = False, *,
                      data_format: str = "NHWC") -> jax.Array:
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


def global_avg_pool3d(x: ArrayLike, keepdims: bool = False, *,
                      data_format: str = "NDHWC") -> jax.Array:
    """Mean over the three spatial axes (half precision is summed in float32).

    Args:
      x: volumes, shape ``(N, D, H, W, C)`` (``(N, C, D, H, W)`` with
        ``data_format="NCDHW"``), or unbatched ``(D, H, W, C)`` / ``(C, D, H, W)``; float dtype.
      keepdims: keep ``D``, ``H`` and ``W`` as size-1 axes.
      data_format: ``"NDHWC"`` (default) or ``"NCDHW"``.

    Returns:
      ``(N, C)`` (unbatched: ``(C,)``), or with ``keepdims`` ``(N, 1, 1, 1, C)`` in ``x``'s
      layout and rank; ``x``'s dtype.

    Raises:
      ValueError: an empty spatial axis, a bad rank or data_format.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.global_avg_pool3d(jnp.ones((2, 3, 4, 5, 6)), keepdims=True).shape
      (2, 1, 1, 1, 6)
    """
    return _global("global_avg_pool3d", 3, "avg", x, keepdims, data_format)


def global_max_pool1d(x: ArrayLike, keepdims: bool = False, *,
                      data_format: str = "NWC") -> jax.Array:
    """Maximum over the sequence axis (NaN anywhere in a channel gives NaN).

    Args:
      x: sequences, shape ``(N, W, C)`` (``(N, C, W)`` with ``data_format="NCW"``), or unbatched
        ``(W, C)`` / ``(C, W)``; float dtype.
      keepdims: keep ``W`` as a size-1 axis.
      data_format: ``"NWC"`` (default) or ``"NCW"``.

    Returns:
      ``(N, C)`` (unbatched: ``(C,)``), or with ``keepdims`` ``(N, 1, C)`` in ``x``'s layout and
      rank; ``x``'s dtype.

    Raises:
      ValueError: an empty sequence (``W == 0``: no maximum), a bad rank or data_format.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.global_max_pool1d(jnp.arange(6, dtype=jnp.float32).reshape(1, 3, 2))
      Array([[4., 5.]], dtype=float32)
    """
    return _global("global_max_pool1d", 1, "max", x, keepdims, data_format)


def global_max_pool2d(x: ArrayLike, keepdims: bool = False, *,
                      data_format: str = "NHWC") -> jax.Array:
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


def global_max_pool3d(x: ArrayLike, keepdims: bool = False, *,
                      data_format: str = "NDHWC") -> jax.Array:
    """Maximum over the three spatial axes (NaN anywhere in a channel gives NaN).

    Args:
      x: volumes, shape ``(N, D, H, W, C)`` (``(N, C, D, H, W)`` with
        ``data_format="NCDHW"``), or unbatched ``(D, H, W, C)`` / ``(C, D, H, W)``; float dtype.
      keepdims: keep ``D``, ``H`` and ``W`` as size-1 axes.
      data_format: ``"NDHWC"`` (default) or ``"NCDHW"``.

    Returns:
      ``(N, C)`` (unbatched: ``(C,)``), or with ``keepdims`` ``(N, 1, 1, 1, C)`` in ``x``'s
      layout and rank; ``x``'s dtype.

    Raises:
      ValueError: an empty spatial axis, a bad rank or data_format.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.global_max_pool3d(jnp.ones((2, 3, 4, 5, 6))).shape
      (2, 6)
    """
    return _global("global_max_pool3d", 3, "max", x, keepdims, data_format)


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


def _bins(n: int, o: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive bins: ``[floor(i * n / o), ceil((i + 1) * n / o))``."""
    return [((i * n) // o, -(-((i + 1) * n) // o)) for i in range(o)]


def _adaptive_axis(x: jax.Array, axis: int, o: int, kind: str) -> jax.Array:
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
    x = to_channels_last(x, data_format, unbatched)
    if kind == "avg":
        x = x.astype(_args.accumulation_dtype(dtype))
    for axis, o in enumerate(out, start=1):
        x = _adaptive_axis(x, axis, o, kind)
    return from_channels_last(x.astype(dtype), data_format, unbatched)


def _adaptive(fn: str, nd: int, kind: str, x: Any, output_size: Any,
              data_format: Any) -> jax.Array:
    x, unbatched, shape, data_format = _window.prepare(fn, x, data_format, nd)
    out = _output_size(fn, output_size, shape[1:-1])
    return _adaptive_core(x, kind=kind, out=out, data_format=data_format, unbatched=unbatched)


def adaptive_avg_pool1d(x: ArrayLike, output_size: OutputSize, *,
                        data_format: str = "NWC") -> jax.Array:
    """Average pooling of a sequence to a fixed length, with PyTorch's bins
    (``torch.nn.functional.adaptive_avg_pool1d``).

    Output ``i`` averages inputs ``floor(i * W / W_out)`` to ``ceil((i + 1) * W / W_out)``
    (exclusive). Bins may overlap, and ``W_out > W`` is allowed.

    Args:
      x: sequences, shape ``(N, W, C)`` (``(N, C, W)`` with ``data_format="NCW"``), or unbatched
        ``(W, C)`` / ``(C, W)``; float dtype (half precision is computed in float32).
      output_size: ``W_out`` as an int or ``(W_out,)``; ``(None,)`` keeps ``W``.
      data_format: ``"NWC"`` (default) or ``"NCW"``.

    Returns:
      ``(N, W_out, C)`` in ``x``'s layout, rank and dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(5, dtype=jnp.float32).reshape(5, 1)
      >>> jaxconv.adaptive_avg_pool1d(x, 3)[:, 0]
      Array([0.5, 2. , 3.5], dtype=float32)
    """
    return _adaptive("adaptive_avg_pool1d", 1, "avg", x, output_size, data_format)


def adaptive_avg_pool2d(x: ArrayLike, output_size: OutputSize, *,
                        data_format: str = "NHWC") -> jax.Array:
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
    return _adaptive("adaptive_avg_pool2d", 2, "avg", x, output_size, data_format)


def adaptive_avg_pool3d(x: ArrayLike, output_size: OutputSize, *,
                        data_format: str = "NDHWC") -> jax.Array:
    """Average pooling of volumes to a fixed output size, with PyTorch's bins
    (``torch.nn.functional.adaptive_avg_pool3d``): along each of D, H and W, output ``i``
    averages inputs ``floor(i * n / out)`` to ``ceil((i + 1) * n / out)`` (exclusive).

    Args:
      x: volumes, shape ``(N, D, H, W, C)`` (``(N, C, D, H, W)`` with
        ``data_format="NCDHW"``), or unbatched ``(D, H, W, C)`` / ``(C, D, H, W)``; float dtype
        (half precision is computed in float32).
      output_size: an int (every axis), or ``(D_out, H_out, W_out)`` where ``None`` keeps that
        input size.
      data_format: ``"NDHWC"`` (default) or ``"NCDHW"``.

    Returns:
      ``(N, D_out, H_out, W_out, C)`` in ``x``'s layout, rank and dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.adaptive_avg_pool3d(jnp.ones((2, 5, 6, 7, 3)), (2, None, 3)).shape
      (2, 2, 6, 3, 3)
    """
    return _adaptive("adaptive_avg_pool3d", 3, "avg", x, output_size, data_format)


def adaptive_max_pool1d(x: ArrayLike, output_size: OutputSize, *,
                        data_format: str = "NWC") -> jax.Array:
    """Max pooling of a sequence to a fixed length, with PyTorch's bins (see
    :func:`adaptive_avg_pool1d`).

    Args:
      x: sequences, shape ``(N, W, C)`` (``(N, C, W)`` with ``data_format="NCW"``), or unbatched
        ``(W, C)`` / ``(C, W)``; float dtype.
      output_size: ``W_out`` as an int or ``(W_out,)``; ``(None,)`` keeps ``W``.
      data_format: ``"NWC"`` (default) or ``"NCW"``.

    Returns:
      ``(N, W_out, C)`` in ``x``'s layout, rank and dtype. NaN in a bin gives NaN; tied maxima
      share the gradient.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(5, dtype=jnp.float32).reshape(5, 1)
      >>> jaxconv.adaptive_max_pool1d(x, 3)[:, 0]
      Array([1., 3., 4.], dtype=float32)
    """
    return _adaptive("adaptive_max_pool1d", 1, "max", x, output_size, data_format)


def adaptive_max_pool2d(x: ArrayLike, output_size: OutputSize, *,
                        data_format: str = "NHWC") -> jax.Array:
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
    return _adaptive("adaptive_max_pool2d", 2, "max", x, output_size, data_format)


def adaptive_max_pool3d(x: ArrayLike, output_size: OutputSize, *,
                        data_format: str = "NDHWC") -> jax.Array:
    """Max pooling of volumes to a fixed output size, with PyTorch's bins (see
    :func:`adaptive_avg_pool3d`).

    Args:
      x: volumes, shape ``(N, D, H, W, C)`` (``(N, C, D, H, W)`` with
        ``data_format="NCDHW"``), or unbatched ``(D, H, W, C)`` / ``(C, D, H, W)``; float dtype.
      output_size: an int (every axis), or ``(D_out, H_out, W_out)`` where ``None`` keeps that
        input size.
      data_format: ``"NDHWC"`` (default) or ``"NCDHW"``.

    Returns:
      ``(N, D_out, H_out, W_out, C)`` in ``x``'s layout, rank and dtype. NaN in a bin gives NaN;
      tied maxima share the gradient.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> jaxconv.adaptive_max_pool3d(jnp.ones((5, 6, 7, 3)), 2).shape
      (2, 2, 2, 3)
    """
    return _adaptive("adaptive_max_pool3d", 3, "max", x, output_size, data_format)
