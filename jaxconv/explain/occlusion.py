"""Occlusion sensitivity (Zeiler & Fergus 2014): how much the target score drops when a window
of the image is replaced by a baseline value."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _checks
from ._core import acc_dtype, chunked_sum, target_scores

__all__ = ["occlusion", "window_starts"]


def window_starts(size: int, window: int, stride: int) -> np.ndarray:
    """Start offsets ``0, stride, 2 stride, ...`` plus a last one flush with the edge if needed,
    so every pixel is covered by at least one window."""
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return np.asarray(starts, np.int32)


def occlusion(
    fn: Callable[[jax.Array], jax.Array],
    x: ArrayLike,
    target: ArrayLike,
    *,
    window: int | tuple[int, int] = 8,
    stride: int | tuple[int, int] = 4,
    baseline: ArrayLike | float = 0.0,
    batch_size: int = 16,
) -> jax.Array:
    """Occlusion map: the drop of the target score when a window is replaced by ``baseline``.

    For every window position ``p`` (all channels occluded), ``d_p[n] = fn(x)[n, t] -
    fn(x with window p := baseline)[n, t]``; each pixel's attribution is the mean of ``d_p``
    over the windows covering it. Window starts are ``0, stride, 2 stride, ...``, plus one
    flush with the bottom/right edge when the stride does not land there, so every pixel is
    covered at the edges (a stride larger than the window leaves gaps between windows; those
    pixels get 0). A 1x1 window with stride 1 on a linear model gives exactly ``Σ_c w (x - baseline)``.

    Args:
      fn: ``fn(x) -> logits (N, K)``.
      x: images ``(N, H, W, C)``, floating.
      target: an int or an int array ``(N,)``.
      window: window size, an int or ``(wh, ww)``, at most the image size.
      stride: step between windows, an int or ``(sh, sw)``.
      baseline: the replacement value: a number or an array broadcastable to ``x`` (e.g. a
        per-channel mean ``(C,)`` or a blurred copy of ``x``).
      batch_size: window positions evaluated together; each ``fn`` call sees ``batch_size * N``
        images, and positions are processed chunk by chunk in a ``lax.scan`` (never all at once).

    Returns:
      ``(N, H, W)``, dtype of ``x``. Cost: ``1 + P`` forward passes for ``P`` window positions
      (``P ≈ (H / sh) (W / sw)``), no backward pass.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxconv import explain
      >>> w = jnp.arange(4.0).reshape(1, 2, 2, 1)
      >>> fn = lambda x: (x * w).sum((1, 2, 3))[:, None]
      >>> explain.occlusion(fn, jnp.ones((1, 2, 2, 1)), 0, window=1, stride=1)[0].tolist()
      [[0.0, 1.0], [2.0, 3.0]]

    References:
      M. D. Zeiler, R. Fergus, "Visualizing and understanding convolutional networks", ECCV
      2014, arXiv:1311.2901.
    """
    name = "occlusion"
    _checks.check_callable(name, "fn", fn)
    x = _checks.check_images(name, "x", x)
    k = _checks.check_logits(name, "fn", fn, x)
    t = _checks.check_target(name, target, x.shape[0], k)
    wh, ww = _checks.check_pair(name, "window", window)
    sh, sw = _checks.check_pair(name, "stride", stride)
    n, height, width, _ = x.shape
    if wh > height or ww > width:
        raise ValueError(
            f"{name}: window must fit in the image ({height}x{width}), got {(wh, ww)}"
        )
    b = _checks.check_baseline(name, baseline, x)
    batch_size = _checks.check_int(name, "batch_size", batch_size)

    rows, cols = window_starts(height, wh, sh), window_starts(width, ww, sw)
    starts = np.stack(np.meshgrid(rows, cols, indexing="ij"), -1).reshape(-1, 2)
    count = np.zeros((height, width))
    for r, c in starts:  # static: how many windows cover each pixel
        count[r:r + wh, c:c + ww] += 1

    acc = acc_dtype(x.dtype)
    full = target_scores(fn(x), t).astype(acc)
    ii = jnp.arange(height).reshape(1, height, 1)
    jj = jnp.arange(width).reshape(1, 1, width)

    def drops(st):  # st (c, 2) -> (c, N, H, W): each window's drop spread over its pixels
        r, c = st[:, 0].reshape(-1, 1, 1), st[:, 1].reshape(-1, 1, 1)
        mask = (ii >= r) & (ii < r + wh) & (jj >= c) & (jj < c + ww)  # (c, H, W)
        m5 = mask[:, None, :, :, None]
        occluded = jnp.where(m5, b[None], x[None])  # (c, N, H, W, C)
        flat = occluded.reshape((-1, *x.shape[1:]))
        scores = target_scores(fn(flat), jnp.tile(t, st.shape[0])).astype(acc)
        d = full[None] - scores.reshape(st.shape[0], n)  # (c, N)
        return d[:, :, None, None] * mask[:, None].astype(acc)

    starts_j = jnp.asarray(starts)
    total = chunked_sum(
        drops, lambda idx: (starts_j[idx], jnp.ones(idx.shape, acc)), len(starts), batch_size,
        jnp.zeros((n, height, width), acc),
    )
    return (total / jnp.asarray(np.maximum(count, 1), acc)[None]).astype(x.dtype)
