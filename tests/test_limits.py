"""Sizes at the edges: empty inputs through every named algorithm, size products past what XLA
can build (validated before anything is traced or allocated), and the transposed convolution's
cost at large strides."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv
from jaxconv.conv import _registry
from jaxconv.conv._canonical import canonicalize

# ------------------------------------------------------------------------------ empty inputs

# (x shape channels-last, kernel shape, keyword arguments): an empty batch, no input channels,
# or both, across the configurations that make some algorithm applicable.
EMPTY = [
    ((0, 6, 6, 3), (3, 3, 3, 4), {}),
    ((2, 6, 6, 0), (3, 3, 0, 4), {}),
    ((0, 6, 6, 0), (3, 3, 0, 4), {}),
    ((2, 6, 6, 0), (3, 3, 0, 4), dict(groups=2, padding=1)),
    ((0, 6, 6, 4), (3, 3, 1, 8), dict(groups=4, padding="SAME")),
    ((0, 9, 9, 3), (3, 3, 3, 2), dict(stride=2, padding=1, dilation=2)),
    ((0, 5, 5, 16), (1, 1, 16, 16), {}),
    ((2, 5, 5, 0), (1, 1, 0, 16), dict(stride=2)),
    ((0, 7, 7, 32), (3, 3, 32, 32), {}),
    ((0, 6, 6, 3), (2, 2, 3, 4), dict(padding=1, padding_mode="reflect")),
    ((0, 8, 3), (3, 3, 2), dict(padding="SAME")),
    ((2, 8, 0), (3, 0, 2), {}),
    ((0, 4, 4, 4, 2), (2, 2, 2, 2, 3), dict(stride=2)),
    ((1, 4, 4, 4, 0), (2, 2, 2, 0, 3), {}),
]


def _applicable(x_shape, kernel_shape, kwargs):
    x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    k = jax.ShapeDtypeStruct(kernel_shape, jnp.float32)
    *_, canon = canonicalize("test", x, k, spatial=len(x_shape) - 2, **kwargs)
    return _registry.applicable(canon.x_shape, canon.kernel_shape, canon.dtype, canon.config)


EMPTY_CASES = [
    pytest.param(xs, ks, kw, name, id=f"{xs}-{ks}-{kw}-{name}")
    for xs, ks, kw in EMPTY
    for name in _applicable(xs, ks, kw)
]


def test_every_algorithm_meets_an_empty_input():
    served = {name for *_, name in (p.values for p in EMPTY_CASES)}
    assert served == {a.name for a in jaxconv.algorithms()}


@pytest.mark.parametrize(("x_shape", "kernel_shape", "kwargs", "name"), EMPTY_CASES)
def test_named_algorithms_on_empty_inputs_match_direct(x_shape, kernel_shape, kwargs, name):
    x = jnp.ones(x_shape, jnp.float32)
    k = jnp.ones(kernel_shape, jnp.float32)

    def conv(algorithm):
        return lambda x, k: jaxconv.conv(x, k, algorithm=algorithm, **kwargs)

    ref, ref_vjp = jax.vjp(conv("direct"), x, k)
    y, y_vjp = jax.vjp(conv(name), x, k)
    # no sum has a term: zeros of direct's output shape (N, *out, O)
    assert y.shape == ref.shape and y.dtype == ref.dtype
    assert y.shape[0] == x_shape[0] and y.shape[-1] == kernel_shape[-1]
    np.testing.assert_array_equal(y, np.zeros(ref.shape, np.float32))
    ct = jnp.ones(ref.shape, ref.dtype)
    for g, g_ref, arg in zip(y_vjp(ct), ref_vjp(ct), (x, k), strict=True):
        assert g.shape == arg.shape
        np.testing.assert_array_equal(g, g_ref)


# ------------------------------------------------------------------------------ transposed cost


def _largest_intermediate(f, *args) -> int:
    """Elements of the largest value ``f``'s jaxpr computes, sub-jaxprs included."""

    def walk(jaxpr) -> int:
        most = 0
        for eqn in jaxpr.eqns:
            for v in eqn.outvars:
                most = max(most, int(np.prod(v.aval.shape)))
            for param in eqn.params.values():
                for sub in param if isinstance(param, tuple | list) else (param,):
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        most = max(most, walk(inner))
        return most

    return walk(jax.make_jaxpr(f)(*args).jaxpr)


@pytest.mark.parametrize("stride", [10, 1000, 100_000])
def test_transposed_cost_does_not_grow_with_the_stride(stride):
    # one input sample, three taps: 3 outputs, whatever the stride (it had built `stride` phases)
    x, k = jnp.ones((1, 1, 1)), jnp.arange(1.0, 4.0).reshape(3, 1, 1)

    def f(x, k):
        return jaxconv.conv_transpose1d(x, k, stride=stride)

    np.testing.assert_array_equal(f(x, k)[0, :, 0], [1.0, 2.0, 3.0])
    assert _largest_intermediate(f, x, k) == 3
    grad = jax.grad(lambda x, k: f(x, k).sum(), argnums=(0, 1))
    assert _largest_intermediate(grad, x, k) == 3


def test_transposed_output_far_from_the_origin():
    # stride (10**4, 10**5), the first 9999 rows cropped: output rows 9999 .. 10002 of the full
    # output hold x[1] * k[0 .. 2] after a row of zeros; the columns are k's, one per tap
    x = jnp.arange(1.0, 3.0).reshape(1, 2, 1, 1)
    k = jnp.arange(1.0, 10.0).reshape(3, 3, 1, 1)

    def f(x, k):
        return jaxconv.conv_transpose2d(x, k, stride=(10**4, 10**5), padding=((9999, 0), (0, 0)))

    y = f(x, k)
    expected = np.zeros((4, 3))
    expected[1:] = 2.0 * np.arange(1.0, 10.0).reshape(3, 3)
    np.testing.assert_array_equal(y[0, :, :, 0], expected)
    assert _largest_intermediate(f, x, k) <= 4 * 3 * 2
