"""Sizes at the edges: empty inputs through every named algorithm, size products past what XLA
can build (validated before anything is traced or allocated), and the transposed convolution's
cost at large strides."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import cover

import jaxconv
from jaxconv.convolution import _registry
from jaxconv.convolution._canonical import canonicalize

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
    ((0, 9, 9, 3), (3, 3, 3, 2), dict(padding=2, dilation=2)),
    ((2, 9, 9, 0), (3, 3, 0, 2), dict(padding=2, dilation=(1, 2))),
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


# Every algorithm meets an empty batch and another empty axis (where it serves one), every empty
# input an algorithm (JAXCONV_FULL_TESTS=1: every algorithm that serves each).
EMPTY_CASES = [
    pytest.param(xs, ks, kw, name, id=f"{xs}-{ks}-{kw}-{name}")
    for i, xs, ks, kw, name in cover(
        [(i, xs, ks, kw, name) for i, (xs, ks, kw) in enumerate(EMPTY)
         for name in _applicable(xs, ks, kw)],
        lambda c: {("algorithm", c[4], "empty batch" if c[1][0] == 0 else "empty other axis"),
                   ("case", c[0])})
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


# ------------------------------------------------------------------------------ size products

# Each extent fits int32 but a product does not: XLA aborted the process on these (SIGABRT,
# "overflow in static extent product"), so they are only ever traced abstractly here
# (jax.eval_shape on shape stand-ins: nothing is compiled or allocated). The checks must raise
# before any of that.
BIG = 2**30 - 100  # padding: padded extents 2**31 - 196, fitting int32
LIMIT = r"; an array {} builds must have at most 2\*\*31 - 1"


def _abstract(f, *shapes):
    """``f`` traced on float32 shape stand-ins (raises what its validation raises)."""
    return jax.eval_shape(f, *(jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes))


@pytest.mark.parametrize(
    ("fn", "x_shape", "k_shape", "kwargs", "match"),
    [
        (jaxconv.conv2d, (1, 4, 4, 1), (3, 3, 1, 1), dict(padding=BIG),
         r"^conv2d: padding \(\(1073741724, 1073741724\), \(1073741724, 1073741724\)\) pads the "
         r"input to 1x2147483452x2147483452x1 = 4611685176613836304 elements"),
        (jaxconv.conv3d, (1, 4, 4, 4, 1), (3, 3, 3, 1, 1), dict(padding=2**21),
         r"^conv3d: padding .* pads the input to 1x4194308x4194308x4194308x1 = \d+ elements"),
        # XLA multiplies extents in order: a later 0 did not save it from the overflow
        (jaxconv.conv3d, (1, 4, 4, 4, 0), (3, 3, 3, 0, 1), dict(padding=2**21),
         r"^conv3d: padding .* 1x4194308x4194308x4194308x0 = \d+ elements \(an empty axis "
         r"counted as 1\)"),
        (jaxconv.conv2d, (1, 4, 4, 1), (3, 3, 1, 1), dict(padding=BIG, padding_mode="replicate"),
         r"^conv2d: padding .* pads the input to 1x2147483452x2147483452x1 = \d+ elements"),
        (jaxconv.conv2d, (1, 2**15, 2**15, 1), (1, 1, 1, 4), dict(padding="SAME"),
         r"^conv2d: kernel \(1, 1, 1, 4\) with stride \(1, 1\) and dilation \(1, 1\) on the "
         r"padded input 32768x32768 gives an output of 1x32768x32768x4 = 4294967296 elements"),
        (jaxconv.conv1d, (2**16, 2**16, 1), (1, 1, 1), {},
         r"^conv1d: x \(channels-last shape \(65536, 65536, 1\)\) has 65536x65536x1 = "
         r"4294967296 elements"),
    ],
)
def test_convolution_size_products(fn, x_shape, k_shape, kwargs, match):
    with pytest.raises(ValueError, match=match + LIMIT.format("the convolution")):
        _abstract(lambda x, k: fn(x, k, **kwargs), x_shape, k_shape)


def test_shape_only_entry_points_check_the_products_too():
    with pytest.raises(ValueError, match=r"^select_algorithm: padding .* pads the input to "):
        jaxconv.select_algorithm((1, 4, 4, 1), (3, 3, 1, 1), padding=BIG)


@pytest.mark.parametrize(
    ("f", "shape", "match"),
    [
        (lambda x: jaxconv.unfold(x, 3, padding=BIG), (1, 4, 4, 1),
         r"^unfold: padding \(\(1073741724, 1073741724\), \(1073741724, 1073741724\)\) pads the "
         r"image to 1x2147483452x2147483452x1 = 4611685176613836304 elements"),
        (lambda x: jaxconv.unfold(x, 4), (2**14, 2**14, 4),
         r"^unfold: window \(4, 4\) with stride \(1, 1\) gives patches of 1x16381x16381x64 = "
         r"17173578304 elements"),
        (lambda p: jaxconv.fold(p, 2**16, 1), (2**16, 2**16, 1),
         r"^fold: the image 65536x65536 has 1x65536x65536x1 = 4294967296 elements"),
        (lambda p: jaxconv.fold(p, 4, 1, padding=BIG), (2**31 - 196, 2**31 - 196, 1),
         r"^fold: padding .* pads the image to 1x2147483452x2147483452x1 = \d+ elements"),
    ],
)
def test_patches_size_products(f, shape, match):
    name = match[1:match.index(":")]
    with pytest.raises(ValueError, match=match + LIMIT.format(name)):
        _abstract(f, shape)


@pytest.mark.parametrize(
    ("f", "x_shape", "k_shape", "match"),
    [
        (lambda x, k: jaxconv.conv_transpose2d(x, k, stride=2), (1, 2**11, 2**11, 1),
         (2, 2, 256, 1),
         r"^conv_transpose2d: stride \(2, 2\) on input \(2048, 2048\) \(kernel \(2, 2\), padding "
         r"\(\(0, 0\), \(0, 0\)\), dilation \(1, 1\)\) gives an output of 1x4096x4096x256 = "
         r"4294967296 elements"),
        # an output of 2**30 elements, interleaved from phases of 6 rows per axis for its 4
        (lambda x, k: jaxconv.conv_transpose3d(x, k, stride=3, padding=((2, 0),) * 3),
         (2**14, 2, 2, 2, 1), (3, 3, 3, 2**10, 1),
         r"^conv_transpose3d: stride \(3, 3, 3\) on input \(2, 2, 2\) .* interleaves its phases "
         r"in 16384x6x6x6x1024 = 3623878656 elements"),
    ],
)
def test_transposed_size_products(f, x_shape, k_shape, match):
    with pytest.raises(ValueError, match=match + LIMIT.format("the transposed convolution")):
        _abstract(f, x_shape, k_shape)


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
