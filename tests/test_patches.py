"""unfold / fold: the float64 reference, the adjoint identity, gradients, jit/vmap and errors."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import ref_pool as ref
from conftest import every_level
from jax.test_util import check_grads
from tolerances import assert_close

import jaxconv


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pads(padding, size, window, stride, dilation):
    if padding == "SAME":
        pads = []
        for n, k, s, d in zip(size, window, stride, dilation, strict=True):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if isinstance(padding, int):
        return ((padding, padding),) * 2
    if isinstance(padding[0], int):
        return tuple((p, p) for p in padding)
    return tuple(tuple(p) for p in padding)


SHAPES = [(2, 7, 6, 3), (1, 5, 8, 2)]
# The default run keeps every level of every factor (JAXCONV_FULL_TESTS=1: the whole product).
CASES = every_level([
    (SHAPES[i % 2], *case)
    for i, case in enumerate(
        itertools.product([2, (3, 2)], [1, (2, 3)], [0, (1, 0), ((0, 2), (1, 1)), "SAME"], [1, (2, 1)])
    )
], k=8)


@pytest.mark.parametrize(("shape", "window", "stride", "padding", "dilation"), CASES,
                         ids=lambda v: str(v).replace(" ", ""))
def test_unfold_fold_match_reference_and_are_adjoint(rng, shape, window, stride, padding,
                                                      dilation):
    x = rng.standard_normal(shape)
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    p = jaxconv.unfold(x, window, **kw)
    w, s, d = _pair(window), _pair(stride), _pair(dilation)
    pads = _pads(padding, shape[1:3], w, s, d)
    expected = ref.unfold(x, w, s, pads, d)
    assert_close(p, expected)
    patches = rng.standard_normal(expected.shape)
    folded = jaxconv.fold(patches, shape[1:3], window, **kw)
    assert folded.shape == shape
    assert_close(folded, ref.fold(patches, shape[1:3], w, s, pads, d))
    # <unfold(x), p> == <x, fold(p)>
    np.testing.assert_allclose(np.vdot(np.asarray(p), patches), np.vdot(x, np.asarray(folded)),
                               rtol=1e-12)


def test_known_answer_and_torch_order():
    x = jnp.arange(12.0).reshape(1, 3, 4, 1)
    p = jaxconv.unfold(x, 2)
    np.testing.assert_array_equal(p[0, 0, 0], [0, 1, 4, 5])
    assert p.shape == (1, 2, 3, 4)
    # (i, j, c): the channel is fastest
    x2 = jnp.stack([x[..., 0], 100 + x[..., 0]], axis=-1)
    np.testing.assert_array_equal(jaxconv.unfold(x2, 2)[0, 0, 0], [0, 100, 1, 101, 4, 104, 5, 105])
    ones = jnp.ones((3, 3, 1))
    np.testing.assert_array_equal(
        jaxconv.fold(jaxconv.unfold(ones, 2), 3, 2)[:, :, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    )
    # unfold contracted with an HWIO kernel is a convolution
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 5, 3))
    k = rng.standard_normal((3, 2, 3, 4))
    y = jaxconv.unfold(x, (3, 2), padding=1) @ k.reshape(-1, 4)
    conv = jax.lax.conv_general_dilated(x, k, (1, 1), ((1, 1), (1, 1)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    assert_close(y, conv)


def test_unbatched_and_dtypes(rng):
    x = rng.standard_normal((2, 5, 6, 3))
    p = jaxconv.unfold(x, 3, stride=2, padding=1)
    assert_close(jaxconv.unfold(x[1], 3, stride=2, padding=1), p[1])
    assert_close(jaxconv.fold(p[1], (5, 6), 3, stride=2, padding=1),
                 jaxconv.fold(p, (5, 6), 3, stride=2, padding=1)[1])
    for dtype in (jnp.float32, jnp.bfloat16):
        y = jaxconv.unfold(x.astype(dtype), 2)
        assert y.dtype == jnp.dtype(dtype)
        assert jaxconv.fold(y, (5, 6), 2).dtype == jnp.dtype(dtype)


def test_gradients(rng):
    x = rng.standard_normal((1, 4, 5, 2))
    check_grads(lambda x: jaxconv.unfold(x, 2, padding=1, dilation=(1, 2)), (x,), order=1,
                modes=("fwd", "rev"))
    p = rng.standard_normal((1, 3, 4, 8))
    check_grads(lambda p: jaxconv.fold(p, (4, 5), 2, stride=1, padding=0), (p,), order=1,
                modes=("fwd", "rev"))
    # fold is the transpose of unfold
    _, vjp = jax.vjp(lambda x: jaxconv.unfold(x, 2), x)
    assert_close(vjp(p)[0], jaxconv.fold(p, (4, 5), 2))


def test_jit_and_vmap(rng):
    x = rng.standard_normal((3, 5, 6, 2))

    def f(x):
        return jaxconv.fold(jaxconv.unfold(x, 3, stride=2, padding="SAME"), (5, 6), 3, stride=2,
                            padding="SAME")

    np.testing.assert_allclose(jax.jit(f)(x), f(x), rtol=1e-14)
    np.testing.assert_allclose(jax.vmap(f)(x), np.stack([f(v) for v in x]), rtol=1e-14)


X = np.zeros((1, 5, 5, 2), np.float32)
P = np.zeros((1, 4, 4, 8), np.float32)
ERRORS = [
    (ValueError, r"unfold: x must have rank 4 \(NHWC\) or 3", lambda: jaxconv.unfold(X[0, 0], 2)),
    (TypeError, r"unfold: x must have a floating dtype .* got int32",
     lambda: jaxconv.unfold(X.astype(np.int32), 2)),
    (ValueError, r"unfold: window must be >= 1, got 0", lambda: jaxconv.unfold(X, 0)),
    (ValueError, r"unfold: stride must be at most 2\*\*31 - 1", lambda: jaxconv.unfold(X, 2, stride=2**63)),
    (ValueError, r"unfold: padding must be non-negative", lambda: jaxconv.unfold(X, 2, padding=-1)),
    (ValueError, r"unfold: the window \(effective size 7x2 .* does not fit the padded input 5x5",
     lambda: jaxconv.unfold(X, 2, dilation=(6, 1))),
    (ValueError, r"unfold: the window .* does not fit the padded input 0x5",
     lambda: jaxconv.unfold(np.zeros((1, 0, 5, 1)), 1)),
    (ValueError, r"fold: patches must have rank 4 .* got rank 2", lambda: jaxconv.fold(P[0, 0], 5, 2)),
    (ValueError, r"fold: the last axis of patches \(8\) must be a multiple of kh \* kw = 9",
     lambda: jaxconv.fold(P, 6, 3)),
    (ValueError, r"fold: patches have 4x4 windows, but an output_size \(6, 5\) image gives 5x4",
     lambda: jaxconv.fold(P, (6, 5), 2)),
    (TypeError, r"fold: output_size must be an int or a pair of ints, got None",
     lambda: jaxconv.fold(P, None, 2)),
    (TypeError, r"fold: patches must have a floating dtype", lambda: jaxconv.fold(P.astype(int), 5, 2)),
]


@pytest.mark.parametrize(("error", "match", "call"), ERRORS, ids=[e[1][:40] for e in ERRORS])
def test_errors(error, match, call):
    with pytest.raises(error, match=match):
        call()
