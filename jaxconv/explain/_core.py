"""Shared machinery: the target score, its input gradient, and chunked weighted sums."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax


def acc_dtype(dtype) -> jnp.dtype:
    """The accumulation dtype for ``dtype``: at least float32 (bfloat16/float16 sum in float32)."""
    return jnp.promote_types(dtype, jnp.float32)


def target_scores(logits: jax.Array, target: jax.Array) -> jax.Array:
    """``logits[n, target[n]]`` for every ``n``: shape ``(N,)``."""
    return jnp.take_along_axis(logits, target[:, None], axis=1)[:, 0]


def input_grads(fn: Callable, xs: jax.Array, target: jax.Array) -> jax.Array:
    """Gradients of each image's target score w.r.t. that image, for a stack ``(c, N, H, W, C)``.

    The ``c`` copies are folded into one batch of ``c * N`` images, so ``fn`` is called once.
    Images in a batch are independent, so the gradient of the summed scores is each image's own.
    """
    c, n = xs.shape[:2]
    flat = xs.reshape((c * n, *xs.shape[2:]))
    tt = jnp.tile(target, c)

    def total(z):
        return target_scores(fn(z), tt).astype(acc_dtype(z.dtype)).sum()

    return jax.grad(total)(flat).reshape(xs.shape)


def chunked_sum(
    g: Callable[[jax.Array], jax.Array],
    item: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
    count: int,
    chunk: int,
    init: jax.Array,
) -> jax.Array:
    """``sum_{i < count} w_i * g(item_i)`` evaluated ``chunk`` items at a time in a loop.

    ``item(idx)`` makes the items and weights of the integer indices ``idx`` ``(c,)`` (a stack
    ``(c, ...)`` and ``(c,)``); ``g`` maps a stack of ``c`` items to ``(c, *init.shape)``. Items
    are made inside the loop from their indices, never as one array of ``count``, so memory is
    one chunk's whatever ``count`` is (up to ``2**31 - 1``). The last chunk repeats item
    ``count - 1`` with weight 0 where ``count`` is not a multiple of ``chunk``.
    """
    c = min(chunk, count)
    n_chunks = -(-count // c)
    lane = jnp.arange(c)

    def body(k, acc):
        start = k * c  # <= count - 1: no int32 overflow below
        room = count - 1 - start
        it, w = item(start + jnp.minimum(lane, room))
        w = jnp.where(lane <= room, w, 0).astype(init.dtype)
        vals = g(it).astype(init.dtype)
        return acc + jnp.tensordot(w, vals, axes=1)

    return lax.fori_loop(0, n_chunks, body, init)
