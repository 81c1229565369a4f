"""Running a convolution over a large batch a few images at a time.

XLA:CPU allocates a program's temporaries on every call, and above glibc's mmap threshold
(32 MiB) that allocation is fresh pages the kernel faults in (~0.3 ms per MiB on the project's
CPU). Algorithms whose intermediates grow with the batch (``mec``'s lowered input, a strided
``depthwise`` layer's padded input, ``fft``'s spectra) run large batches through
:func:`over_images`, so the temporaries stay about one chunk.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

#: glibc's largest mmap threshold: a temporary allocation above it is always fresh pages.
MMAP_THRESHOLD = 32 * 2**20


def over_images(fn: Callable, x, nb: int):
    """``fn(x)`` computed ``nb`` images at a time: a ``lax.map`` over the full chunks, the rest
    after it. Each chunk is checkpointed: the backward pass recomputes its intermediates
    rather than storing those of every chunk."""
    n = x.shape[0]
    full = n // nb

    def chunk(i):
        return fn(lax.dynamic_slice_in_dim(x, i * nb, nb, axis=0))

    y = lax.map(jax.checkpoint(chunk), jnp.arange(full))
    y = y.reshape(full * nb, *y.shape[2:])
    if full * nb < n:
        y = jnp.concatenate([y, fn(x[full * nb:])])
    return y
