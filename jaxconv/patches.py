"""Sliding-window patches: :func:`unfold` (im2col) and its adjoint :func:`fold` (col2im).

Images are **NHWC** ``(N, H, W, C)`` or unbatched ``(H, W, C)``. A patch is flattened in
``(i, j, c)`` order -- kernel row, kernel column, channel, the channel fastest -- so that
``unfold(x, (kh, kw))`` contracted with an HWIO kernel reshaped to ``(kh * kw * C, O)`` is a
convolution. ``torch.nn.functional.unfold`` flattens in ``(c, i, j)`` order with the windows
last; for ``L = H_out * W_out``::

    ours[n, ho, wo, (i * kw + j) * C + c] == torch_unfold(x_nchw)[n, (c * kh + i) * kw + j, ho * W_out + wo]
    # i.e. torch = ours.reshape(N, L, kh * kw, C).transpose(0, 3, 2, 1).reshape(N, C * kh * kw, L)

Output size per axis (``k_eff = (k - 1) * d + 1``)::

    H_out = floor((H + pad_top + pad_bottom - k_eff) / s) + 1
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _args
from .convolution._canonical import Padding
from .pooling._window import NAMED_PADDINGS, Size, tap_views

__all__ = ["fold", "unfold"]


def _geometry(fn: str, size: tuple[int, ...], window: Any, stride: Any, padding: Any,
              dilation: Any) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...],
                                      tuple[tuple[int, int], ...], tuple[int, ...]]:
    window = _args.ntuple(fn, "window", window, 2)
    stride = _args.ntuple(fn, "stride", stride, 2)
    dilation = _args.ntuple(fn, "dilation", dilation, 2)
    eff = tuple((k - 1) * d + 1 for k, d in zip(window, dilation, strict=True))
    pads = _args.explicit_pads(fn, "padding", padding, 2)
    if pads is None:
        pads = _args.named_pads(fn, "padding", padding, size, eff, stride, NAMED_PADDINGS)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(size, pads, strict=True))
    _args.check_int32(fn, "the padded input size", padded, padded)
    out = tuple((p - k) // s + 1 for p, k, s in zip(padded, eff, stride, strict=True))
    if min(size) < 1 or min(out) < 1:
        raise ValueError(
            f"{fn}: the window (effective size {eff[0]}x{eff[1]} from window {window}, dilation "
            f"{dilation}) does not fit the padded input {padded[0]}x{padded[1]} (input "
            f"{size[0]}x{size[1]}, padding {pads}); the output would be empty"
        )
    return window, stride, dilation, pads, out


def _check_sizes(fn: str, n: int, size: tuple[int, int], c: int, pads) -> None:
    """The padded image (``unfold`` pads ``x``, ``fold`` sums into a padded buffer) and the
    image itself must have at most 2**31 - 1 elements (:func:`jaxconv._args.check_elements`)."""
    padded = tuple(m + lo + hi for m, (lo, hi) in zip(size, pads, strict=True))
    _args.check_elements(fn, "the image", f"{size[0]}x{size[1]}", "has", (n, *size, c), fn)
    _args.check_elements(fn, "padding", pads, "pads the image to", (n, *padded, c), fn)


@functools.partial(
    jax.jit, static_argnames=("window", "stride", "dilation", "pads", "out", "unbatched")
)
def _unfold_core(x, *, window, stride, dilation, pads, out, unbatched):
    if unbatched:
        x = x[None]
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    views = [v for _, v in tap_views(xp, window, stride, dilation, out)]
    y = jnp.stack(views, axis=-2)
    y = y.reshape(*y.shape[:3], window[0] * window[1] * x.shape[-1])
    return y[0] if unbatched else y


@functools.partial(
    jax.jit,
    static_argnames=("size", "window", "stride", "dilation", "pads", "out", "unbatched"),
)
def _fold_core(patches, *, size, window, stride, dilation, pads, out, unbatched):
    if unbatched:
        patches = patches[None]
    n, c = patches.shape[0], patches.shape[-1] // (window[0] * window[1])
    patches = patches.reshape(n, *out, window[0] * window[1], c)
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(size, pads, strict=True))
    x = jnp.zeros((n, *padded, c), patches.dtype)
    for t, (offsets, _) in enumerate(tap_views(x, window, stride, dilation, out)):
        index = tuple(
            slice(a * d, a * d + (o - 1) * s + 1, s)
            for a, d, s, o in zip(offsets, dilation, stride, out, strict=True)
        )
        x = x.at[(slice(None), *index, slice(None))].add(patches[..., t, :])
    (top, _), (left, _) = pads
    x = x[:, top : top + size[0], left : left + size[1]]
    return x[0] if unbatched else x


def unfold(
    x: ArrayLike, window: Size, *, stride: Size = 1, padding: Padding = 0, dilation: Size = 1
) -> jax.Array:
    """Sliding-window patches of an image (im2col), ``torch.nn.functional.unfold`` in NHWC.

    Args:
      x: images ``(N, H, W, C)`` or unbatched ``(H, W, C)``; float dtype.
      window: ``int`` or ``(kh, kw)``, >= 1.
      stride: ``int`` or ``(sh, sw)``, >= 1 (default 1).
      padding: an ``int``, ``(ph, pw)``, ``((top, bottom), (left, right))`` (zeros), or
        ``"VALID"`` / ``"SAME"`` (as ``jax.lax``).
      dilation: ``int`` or ``(dh, dw)``, >= 1.

    Returns:
      ``(N, H_out, W_out, kh * kw * C)`` (unbatched: no ``N``), ``x``'s dtype, with
      ``H_out = floor((H + pad_top + pad_bottom - (kh - 1) * dh - 1) / sh) + 1`` (same for W).
      Each patch is flattened in ``(i, j, c)`` order (kernel row, kernel column, channel): entry
      ``(i * kw + j) * C + c`` is ``x_padded[ho * sh + i * dh, wo * sw + j * dw, c]``. See the
      module docstring for the mapping to torch's ``(c, i, j)`` order.

    Raises:
      ValueError: bad rank, sizes, negative padding, a window larger than the padded input, or
        a padded image or patches of more than ``2**31 - 1`` elements.
      TypeError: non-float ``x``, malformed arguments.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(9, dtype=jnp.float32).reshape(3, 3, 1)
      >>> jaxconv.unfold(x, 2)[0, 0]
      Array([0., 1., 3., 4.], dtype=float32)
      >>> jaxconv.unfold(jnp.zeros((2, 8, 8, 3)), 3, padding=1).shape
      (2, 8, 8, 27)
    """
    fn = "unfold"
    x = _args.as_array(fn, "x", x)
    unbatched, (_, h, w, _) = _args.image_rank(fn, "x", x, "NHWC")
    _args.check_float(fn, "x", x)
    window, stride, dilation, pads, out = _geometry(fn, (h, w), window, stride, padding, dilation)
    shape = jnp.shape(x)
    n, c = (1 if unbatched else int(shape[0])), int(shape[-1])
    _check_sizes(fn, n, (h, w), c, pads)
    _args.check_elements(fn, "window", window, f"with stride {stride} gives patches of",
                         (n, *out, window[0] * window[1] * c), fn)
    return _unfold_core(
        x, window=window, stride=stride, dilation=dilation, pads=pads, out=out,
        unbatched=unbatched,
    )


def fold(
    patches: ArrayLike, output_size: Size, window: Size, *, stride: Size = 1,
    padding: Padding = 0, dilation: Size = 1,
) -> jax.Array:
    """Sum sliding-window patches back into an image (col2im): the adjoint of :func:`unfold`.

    ``torch.nn.functional.fold`` in NHWC: every patch entry is added to the pixel it was taken
    from, so overlapping windows sum and ``fold(unfold(x))`` is ``x`` times the number of windows
    covering each pixel. Padding is cropped away.

    Args:
      patches: ``(N, H_out, W_out, kh * kw * C)`` or unbatched ``(H_out, W_out, kh * kw * C)``,
        flattened in :func:`unfold`'s ``(i, j, c)`` order; float dtype.
      output_size: ``int`` or ``(H, W)``: the image size.
      window, stride, padding, dilation: as :func:`unfold`; ``H_out`` and ``W_out`` must be the
        sizes :func:`unfold` gives for an ``H x W`` image.

    Returns:
      ``(N, H, W, C)`` (unbatched: ``(H, W, C)``), the patches' dtype.

    Raises:
      ValueError: bad rank, a last axis not divisible by ``kh * kw``, ``H_out``/``W_out`` not
        matching ``output_size``, bad sizes or padding, an image or padded image of more than
        ``2**31 - 1`` elements.
      TypeError: non-float ``patches``, malformed arguments.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> ones = jnp.ones((3, 3, 1), jnp.float32)
      >>> jaxconv.fold(jaxconv.unfold(ones, 2), 3, 2)[:, :, 0]
      Array([[1., 2., 1.],
             [2., 4., 2.],
             [1., 2., 1.]], dtype=float32)
    """
    fn = "fold"
    arr: Any = _args.as_array(fn, "patches", patches)
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{fn}: patches must have rank 4 (N, H_out, W_out, kh * kw * C) or 3 (unbatched), "
            f"got rank {arr.ndim} with shape {tuple(arr.shape)}"
        )
    _args.check_float(fn, "patches", arr)
    unbatched = arr.ndim == 3
    size = _args.ntuple(fn, "output_size", output_size, 2)
    window, stride, dilation, pads, out = _geometry(fn, size, window, stride, padding, dilation)
    got = tuple(int(v) for v in arr.shape[-3:-1])
    depth = int(arr.shape[-1])
    if depth % (window[0] * window[1]) != 0:
        raise ValueError(
            f"{fn}: the last axis of patches ({depth}) must be a multiple of kh * kw = "
            f"{window[0] * window[1]} (window {window})"
        )
    if got != out:
        raise ValueError(
            f"{fn}: patches have {got[0]}x{got[1]} windows, but an output_size {size} image "
            f"gives {out[0]}x{out[1]} (window {window}, stride {stride}, padding {pads}, "
            f"dilation {dilation})"
        )
    _check_sizes(fn, 1 if unbatched else int(arr.shape[0]), (size[0], size[1]),
                 depth // (window[0] * window[1]),
                 pads)
    return _fold_core(
        arr, size=size, window=window, stride=stride, dilation=dilation, pads=pads, out=out,
        unbatched=unbatched,
    )
