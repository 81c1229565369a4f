"""Shared machinery: the target score, its input gradient, and chunked weighted sums."""

from __future__ import annotations

import math
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
    items: jax.Array,
    weights: jax.Array,
    chunk: int,
    init: jax.Array,
) -> jax.Array:
    """``sum_i weights[i] * g(items[i:i+1])`` evaluated ``chunk`` items at a time (``lax.scan``).

    ``g`` maps a stack of ``c`` items to a stack ``(c, *init.shape)``. Only one chunk of
    intermediates is alive at a time; the item count is padded up to a multiple of ``chunk``
    with zero-weight copies of the first item.
    """
    m = weights.shape[0]
    c = min(chunk, m)
    n_chunks = math.ceil(m / c)
    pad = n_chunks * c - m
    if pad:
        items = jnp.concatenate([items, jnp.repeat(items[:1], pad, axis=0)], axis=0)
        weights = jnp.concatenate([weights, jnp.zeros((pad,), weights.dtype)])
    items = items.reshape((n_chunks, c, *items.shape[1:]))
    weights = weights.reshape((n_chunks, c)).astype(init.dtype)

    def body(acc, xs):
        it, w = xs
        vals = g(it).astype(init.dtype)
        return acc + jnp.tensordot(w, vals, axes=1), None

    acc, _ = lax.scan(body, init, (items, weights))
    return acc
