"""The transformations composed in both orders, as the suite checks them against ``direct``.

:func:`composed` gives three functions of an algorithm name: reverse mode over a ``vmap`` (the
gradient of a batched loss), a ``vmap`` over reverse mode (per-example gradients) and forward
mode over a ``vmap`` (in the kernel). A test runs each for the algorithm and for ``direct`` and
compares the leaves.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def composed(conv: Callable, loss: Callable, x, k) -> tuple[Callable, ...]:
    """``(grad_of_vmap, vmap_of_grad, jvp_of_vmap)``, each ``f(algorithm) -> pytree``.

    ``conv(x, k, algorithm)`` is the convolution under test, ``loss(y)`` a scalar of its output;
    the ``vmap`` runs over ``x``'s leading axis, the gradients are in ``x`` and ``k``, and the
    JVP is in ``k`` with tangent ``0.1 * k``.
    """
    def grad_of_vmap(a):
        return jax.grad(lambda xx, kk: jnp.sum(jax.vmap(lambda xi: loss(conv(xi, kk, a)))(xx)),
                        argnums=(0, 1))(x, k)

    def vmap_of_grad(a):
        return jax.vmap(lambda xi: jax.grad(lambda xi, kk: loss(conv(xi, kk, a)),
                                            argnums=(0, 1))(xi, k))(x)

    def jvp_of_vmap(a):
        return jax.jvp(lambda kk: jax.vmap(lambda xi: conv(xi, kk, a))(x), (k,), (0.1 * k,))

    return grad_of_vmap, vmap_of_grad, jvp_of_vmap
