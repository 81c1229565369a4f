"""Max-pool indices and max-unpooling in 1, 2 and 3 spatial dimensions, PyTorch's convention:
an index is a position in the flattened *unpadded* spatial grid of its channel (``h * W + w`` in
2-D), in the channels-last or channels-first layout of the input."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from .. import _args
from ..convolution._canonical import from_channels_last, to_channels_last
from . import _window
from ._window import Size, Window


def _torch_choice(a, b):
    """The candidate ``(value, position)`` that PyTorch's scan of a window keeps of ``a`` and
    ``b``: a NaN (of two, the later), else the larger value, else the earlier position.

    PyTorch scans the taps in row-major order (which is the order of their positions) and takes
    a tap when ``value > max`` or ``value`` is NaN. This choice is a maximum under a total
    order, so a reduction may combine candidates in any order and grouping.
    """
    (va, ia), (vb, ib) = a, b
    na, nb = jnp.isnan(va), jnp.isnan(vb)
    take_b = jnp.where(na & nb, ib > ia,
                       jnp.where(na | nb, nb, (vb > va) | ((vb == va) & (ib < ia))))
    return jnp.where(take_b, vb, va), jnp.where(take_b, ib, ia)


def _first_positions(geom: Window) -> np.ndarray:
    """``(1, *out, 1)`` int32: each window's first position in the input (PyTorch's index for a
    window whose values are all ``-inf``: it starts there and no tap is larger)."""
    size, stride, dilation, out = geom.size, geom.stride, geom.dilation, geom.out
    grids = []
    for o, s, d, (lo, _) in zip(out, stride, dilation, geom.pads, strict=True):
        start = np.arange(o, dtype=np.int64) * s - lo
        grids.append(np.where(start < 0, start + (-start + d - 1) // d * d, start))
    flat = sum(g * math.prod(size[i + 1 :])
               for i, g in enumerate(np.meshgrid(*grids, indexing="ij", sparse=True)))
    return np.broadcast_to(flat, out).astype(np.int32).reshape(_window.spatial(out))


@functools.partial(jax.jit, static_argnames=("geom", "data_format", "unbatched"))
def max_indices(x: jax.Array, *, geom: Window, data_format: str, unbatched: bool) -> jax.Array:
    """PyTorch's max-pool indices (see :func:`_torch_choice`): one reduction over the pairs
    (value, flat position) of every window, whatever the window size.

    Padding is ``(-inf, 2**31 - 1)``: it loses to every position of the input, so a window
    whose values are all ``-inf`` keeps its first position, as in PyTorch; a window of padding
    only (possible with dilation) gets its first position too.
    """
    x = lax.stop_gradient(to_channels_last(x, data_format, unbatched))
    position = jnp.zeros(x.shape, jnp.int32)
    for axis in range(len(geom.size)):
        step = math.prod(geom.size[axis + 1 :])
        position = position + lax.broadcasted_iota(jnp.int32, x.shape, axis + 1) * step
    init = (np.array(-np.inf, x.dtype), np.array(_args.INT32_MAX, np.int32))
    if geom.gathers:  # windows longer than the input: their taps inside it, an axis at a time
        value = x
        for axis in reversed(range(1, x.ndim - 1)):
            table = _window.window_positions(geom, axis - 1)
            pairs = tuple(_window.gather_windows(a, axis, table, fill)
                          for a, fill in zip((value, position), init, strict=True))
            value, position = lax.reduce(pairs, init, _torch_choice, (axis + 1,))
    else:
        _, position = lax.reduce_window(
            (x, position), init, _torch_choice,
            window_dimensions=_window.spatial(geom.taps),
            window_strides=_window.spatial(geom.stride),
            padding=((0, 0), *geom.full_pads, (0, 0)),
            window_dilation=_window.spatial(geom.dilation),
        )
        position = _window.crop(position, geom.out)
    position = jnp.where(position == _args.INT32_MAX, _first_positions(geom), position)
    return from_channels_last(position, data_format, unbatched)


# --------------------------------------------------------------------------------------------
# Max-unpooling
# --------------------------------------------------------------------------------------------


def _unpool_size(fn: str, output_size: Any, default: tuple[int, ...], stride: tuple[int, ...],
                 data_format: str, unbatched: bool) -> tuple[int, ...]:
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
    y = to_channels_last(y, data_format, unbatched)
    indices = to_channels_last(indices, data_format, unbatched).astype(jnp.int32)
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
    return from_channels_last(x, data_format, unbatched)


def _max_unpool(fn: str, nd: int, y: Any, indices: Any, window: Any, stride: Any, padding: Any,
                output_size: Any, data_format: Any) -> jax.Array:
    data_format = _args.check_data_format(fn, data_format, nd)
    y = _args.as_array(fn, "y", y)
    indices = _args.as_array(fn, "indices", indices)
    unbatched, shape = _args.image_rank(fn, "y", y, data_format, nd)
    size = shape[1:-1]
    _args.check_float(fn, "y", y)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"{fn}: indices must have an integer dtype, got {indices.dtype}")
    if tuple(indices.shape) != tuple(y.shape):
        raise ValueError(
            f"{fn}: indices must have y's shape {tuple(y.shape)}, got {tuple(indices.shape)}"
        )
    window = _args.ntuple(fn, "window", window, nd)
    stride = window if stride is None else _args.ntuple(fn, "stride", stride, nd)
    padding = _args.ntuple(fn, "padding", padding, nd, minimum=0)
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
    _window.check_elements(fn, "output size", out, "makes an output of",
                           (shape[0], *out, shape[-1]))
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


def max_unpool1d(
    y: ArrayLike, indices: ArrayLike, window: Size, *, stride: Size | None = None,
    padding: Size = 0, output_size: Sequence[int] | None = None, data_format: str = "NWC",
) -> jax.Array:
    """Inverse of :func:`max_pool1d` with ``return_indices=True``
    (``torch.nn.functional.max_unpool1d``): each value of ``y`` goes to the position its index
    names along its channel's sequence; everything else is zero. Linear (and differentiable) in
    ``y``: the gradient of each value is the cotangent at its index, also where several values
    share an index (then one of them is kept; the duplicates that overlapping max-pool windows
    produce are equal).

    Args:
      y: pooled values, shape ``(N, W_in, C)`` (``(N, C, W_in)`` with ``data_format="NCW"``), or
        unbatched ``(W_in, C)`` / ``(C, W_in)``; float dtype.
      indices: integer array of ``y``'s shape, as returned by :func:`max_pool1d`. Concrete
        indices outside the output raise ``ValueError``; under ``jit`` they are dropped.
      window: ``int`` or ``(kw,)``: the pool's window.
      stride: ``int`` or ``(sw,)``; ``None`` (default) means ``stride = window``.
      padding: ``int`` or ``(pw,)``: the pool's (symmetric) padding.
      output_size: ``None`` (default) for ``W = (W_in - 1) * sw - 2 * pw + kw``, or ``(W,)``
        (or the whole output shape in ``y``'s layout), strictly between ``default - sw`` and
        ``default + sw`` (PyTorch's rule: it resolves the sizes that ``floor`` in the pool's
        output size made ambiguous).
      data_format: ``"NWC"`` (default) or ``"NCW"``.

    Returns:
      ``(N, W, C)`` in ``y``'s layout, rank and dtype.

    Raises:
      ValueError: bad rank, shapes, sizes or output_size; indices out of range (when concrete).
      TypeError: non-float ``y``, non-integer ``indices``, malformed arguments.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.array([1, 3, 2, 5, 4], dtype=jnp.float32).reshape(5, 1)
      >>> y, i = jaxconv.max_pool1d(x, 2, return_indices=True)
      >>> jaxconv.max_unpool1d(y, i, 2, output_size=(5,))[:, 0]
      Array([0., 3., 0., 5., 0.], dtype=float32)
    """
    return _max_unpool("max_unpool1d", 1, y, indices, window, stride, padding, output_size,
                       data_format)


def max_unpool2d(
    y: ArrayLike, indices: ArrayLike, window: Size, *, stride: Size | None = None,
    padding: Size = 0, output_size: Sequence[int] | None = None, data_format: str = "NHWC",
) -> jax.Array:
    """Inverse of :func:`max_pool2d` with ``return_indices=True``
    (``torch.nn.functional.max_unpool2d``): each value of ``y`` goes to the pixel its index
    ``h * W + w`` names in its channel; everything else is zero. Linear (and differentiable) in
    ``y``: as in torch, the gradient of each value of ``y`` is the cotangent at its index, also
    where several values share an index (then one of them is kept; the duplicates that
    overlapping max-pool windows produce are equal).

    Args:
      y: pooled values, shape ``(N, H_in, W_in, C)`` (``(N, C, H_in, W_in)`` with
        ``data_format="NCHW"``), or unbatched ``(H_in, W_in, C)`` / ``(C, H_in, W_in)``; float
        dtype.
      indices: integer array of ``y``'s shape, as returned by :func:`max_pool2d`. Concrete
        indices outside the output raise ``ValueError``; under ``jit`` they are dropped.
      window: ``int`` or ``(kh, kw)``: the pool's window.
      stride: ``int`` or ``(sh, sw)``; ``None`` (default) means ``stride = window``.
      padding: ``int`` or ``(ph, pw)``: the pool's (symmetric) padding.
      output_size: ``None`` (default) for ``H = (H_in - 1) * sh - 2 * ph + kh`` (same for W), or
        ``(H, W)`` (or the whole output shape in ``y``'s layout), each strictly between
        ``default - s`` and ``default + s`` (PyTorch's rule: it resolves the sizes that
        ``floor`` in the pool's output size made ambiguous).
      data_format: ``"NHWC"`` (default) or ``"NCHW"``.

    Returns:
      ``(N, H, W, C)`` in ``y``'s layout, rank and dtype.

    Raises:
      ValueError: bad rank, shapes, sizes or output_size; indices out of range (when concrete).
      TypeError: non-float ``y``, non-integer ``indices``, malformed arguments.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(16, dtype=jnp.float32).reshape(4, 4, 1)
      >>> y, i = jaxconv.max_pool2d(x, 2, return_indices=True)
      >>> jaxconv.max_unpool2d(y, i, 2)[:, :, 0]
      Array([[ 0.,  0.,  0.,  0.],
             [ 0.,  5.,  0.,  7.],
             [ 0.,  0.,  0.,  0.],
             [ 0., 13.,  0., 15.]], dtype=float32)
    """
    return _max_unpool("max_unpool2d", 2, y, indices, window, stride, padding, output_size,
                       data_format)


def max_unpool3d(
    y: ArrayLike, indices: ArrayLike, window: Size, *, stride: Size | None = None,
    padding: Size = 0, output_size: Sequence[int] | None = None, data_format: str = "NDHWC",
) -> jax.Array:
    """Inverse of :func:`max_pool3d` with ``return_indices=True``
    (``torch.nn.functional.max_unpool3d``): each value of ``y`` goes to the voxel its index
    ``(d * H + h) * W + w`` names in its channel; everything else is zero. Linear (and
    differentiable) in ``y``: the gradient of each value is the cotangent at its index, also
    where several values share an index (then one of them is kept).

    Args:
      y: pooled values, shape ``(N, D_in, H_in, W_in, C)`` (``(N, C, D_in, H_in, W_in)`` with
        ``data_format="NCDHW"``), or unbatched ``(D_in, H_in, W_in, C)`` /
        ``(C, D_in, H_in, W_in)``; float dtype.
      indices: integer array of ``y``'s shape, as returned by :func:`max_pool3d`. Concrete
        indices outside the output raise ``ValueError``; under ``jit`` they are dropped.
      window: ``int`` or ``(kd, kh, kw)``: the pool's window.
      stride: ``int`` or ``(sd, sh, sw)``; ``None`` (default) means ``stride = window``.
      padding: ``int`` or ``(pd, ph, pw)``: the pool's (symmetric) padding.
      output_size: ``None`` (default) for ``(n - 1) * s - 2 * p + k`` per axis, or
        ``(D, H, W)`` (or the whole output shape in ``y``'s layout), each strictly between
        ``default - s`` and ``default + s`` (PyTorch's rule).
      data_format: ``"NDHWC"`` (default) or ``"NCDHW"``.

    Returns:
      ``(N, D, H, W, C)`` in ``y``'s layout, rank and dtype.

    Raises:
      ValueError: bad rank, shapes, sizes or output_size; indices out of range (when concrete).
      TypeError: non-float ``y``, non-integer ``indices``, malformed arguments.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(8, dtype=jnp.float32).reshape(2, 2, 2, 1)
      >>> y, i = jaxconv.max_pool3d(x, 2, return_indices=True)
      >>> int(i[0, 0, 0, 0]), jaxconv.max_unpool3d(y, i, 2).shape
      (7, (2, 2, 2, 1))
    """
    return _max_unpool("max_unpool3d", 3, y, indices, window, stride, padding, output_size,
                       data_format)
