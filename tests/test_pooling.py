"""Pooling: reference sweeps, known answers, gradients, transformations, dtypes, NaN and errors."""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import ref_pool as ref
from conftest import every_level
from jax.test_util import check_grads
from tolerances import assert_close

import jaxconv
from jaxconv.pooling import average, extremum

# --------------------------------------------------------------------------------------------
# Canonicalization written out for the reference (independent of jaxconv._args)
# --------------------------------------------------------------------------------------------


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _ref_pads(padding, size, window, stride, dilation=(1, 1)):
    if padding == "VALID":
        return ((0, 0), (0, 0))
    if padding == "SAME":
        pads = []
        for n, k, s, d in zip(size, window, stride, dilation, strict=True):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding[0], int):
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return tuple(tuple(p) for p in padding)


def _ref_args(x_shape, window, stride, padding, dilation=1):
    window = _pair(window)
    stride = window if stride is None else _pair(stride)
    dilation = _pair(dilation)
    pads = _ref_pads(padding, x_shape[1:3], window, stride, dilation)
    return window, stride, pads, dilation


# A few shapes: odd/even, non-square, 1-3 channels. Each sweep cycles through them so that every
# configuration is compiled once only.
SHAPES = [(2, 7, 9, 3), (1, 6, 5, 2), (1, 8, 7, 1)]
WINDOWS = [3, (2, 3)]
STRIDES = [None, 1, (2, 1)]
PADDINGS = [0, 1, ((1, 0), (0, 1)), "SAME"]


def _sweep(*axes):
    """Product of ``axes``, each case prefixed with a shape from SHAPES (cycled)."""
    return [(SHAPES[i % len(SHAPES)], *case) for i, case in enumerate(itertools.product(*axes))]


def _id(value):
    """Readable test ids: ``2x7x9x3`` for shapes, ``(1, 0)`` for pairs."""
    if isinstance(value, tuple) and len(value) == 4 and all(isinstance(v, int) for v in value):
        return "x".join(map(str, value))
    return str(value).replace(" ", "")


def _x(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------------------------
# Reference sweeps (the default run keeps every level of every factor; JAXCONV_FULL_TESTS=1: all)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "window", "stride", "padding", "ceil_mode"),
    every_level(_sweep(WINDOWS, STRIDES, PADDINGS, [False, True]), k=7),
    ids=_id,
)
def test_max_pool_matches_reference(rng, shape, window, stride, padding, ceil_mode):
    x = _x(rng, shape)
    y = jaxconv.max_pool2d(x, window, stride=stride, padding=padding, ceil_mode=ceil_mode)
    w, s, p, _ = _ref_args(shape, window, stride, padding)
    assert_close(y, ref.max_pool(x, w, s, p, ceil_mode=ceil_mode))


@pytest.mark.parametrize(
    ("shape", "window", "stride", "padding", "ceil_mode"),
    _sweep([(2, 3)], [None, 2], [1, "SAME"], [False, True]),
    ids=_id,
)
def test_min_pool_matches_reference(rng, shape, window, stride, padding, ceil_mode):
    x = _x(rng, shape)
    y = jaxconv.min_pool2d(x, window, stride=stride, padding=padding, ceil_mode=ceil_mode)
    w, s, p, _ = _ref_args(shape, window, stride, padding)
    assert_close(y, ref.min_pool(x, w, s, p, ceil_mode=ceil_mode))


@pytest.mark.parametrize(
    ("shape", "kind", "dilation", "padding", "ceil_mode"),
    every_level(_sweep(["max", "min"], [2, (1, 3)], [0, 1, "SAME"], [False, True]), k=5),
    ids=_id,
)
def test_dilated_pool_matches_reference(rng, shape, kind, dilation, padding, ceil_mode):
    x = _x(rng, shape)
    fn = jaxconv.max_pool2d if kind == "max" else jaxconv.min_pool2d
    y = fn(x, 2, stride=(1, 2), padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    w, s, p, d = _ref_args(shape, 2, (1, 2), padding, dilation)
    ref_fn = ref.max_pool if kind == "max" else ref.min_pool
    assert_close(y, ref_fn(x, w, s, p, d, ceil_mode))


@pytest.mark.parametrize(
    ("shape", "window", "stride", "padding", "ceil_mode", "count_include_pad"),
    every_level(_sweep([3, (2, 3)], [None, (1, 3)], [1, ((1, 0), (0, 1)), "SAME"], [False, True],
                       [True, False]), k=7),
    ids=_id,
)
def test_avg_pool_matches_reference(
    rng, shape, window, stride, padding, ceil_mode, count_include_pad
):
    x = _x(rng, shape)
    y = jaxconv.avg_pool2d(
        x, window, stride=stride, padding=padding, ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
    )
    w, s, p, _ = _ref_args(shape, window, stride, padding)
    assert_close(y, ref.avg_pool(x, w, s, p, ceil_mode, count_include_pad))


@pytest.mark.parametrize(
    ("shape", "divisor_override", "modes"),
    _sweep([3, -2], [(False, True), (True, False)]),
    ids=_id,
)
def test_avg_pool_divisor_override(rng, shape, divisor_override, modes):
    ceil_mode, count_include_pad = modes
    x = _x(rng, shape)
    y = jaxconv.avg_pool2d(
        x, 3, stride=2, padding=1, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
        divisor_override=divisor_override,
    )
    expected = ref.avg_pool(
        x, (3, 3), (2, 2), ((1, 1), (1, 1)), ceil_mode, count_include_pad, divisor_override
    )
    assert_close(y, expected)


@pytest.mark.parametrize(
    ("shape", "norm", "config"),
    _sweep([1, 2, 3, 1.5, math.inf], [(3, 2, True), ((2, 3), (1, 2), True)]),
    ids=_id,
)
def test_lp_pool_matches_reference(rng, shape, norm, config):
    window, stride, ceil_mode = config
    x = _x(rng, shape)
    if norm != 2:
        x = np.abs(x)  # (negative sum) ** (1 / p) is NaN, as in torch
    y = jaxconv.lp_pool2d(x, norm, window, stride=stride, ceil_mode=ceil_mode)
    w, s, _, _ = _ref_args(shape, window, stride, 0)
    assert_close(y, ref.lp_pool(x, norm, w, s, ceil_mode))


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize(
    ("size", "output_size"),
    [((7, 9), 3), ((7, 9), (2, 4)), ((5, 5), (None, 3)), ((6, 4), (10, 4)), ((6, 4), 1),
     ((7, 9), (7, 9))],
)
def test_adaptive_pool_matches_reference(rng, kind, size, output_size):
    x = _x(rng, (2, *size, 3))
    fn = jaxconv.adaptive_avg_pool2d if kind == "avg" else jaxconv.adaptive_max_pool2d
    out = _pair(output_size)
    out = tuple(n if o is None else o for o, n in zip(out, size, strict=True))
    ref_fn = ref.adaptive_avg_pool if kind == "avg" else ref.adaptive_max_pool
    assert_close(fn(x, output_size), ref_fn(x, out))


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pool(rng, kind, keepdims):
    x = _x(rng, (2, 5, 6, 3))
    fn = jaxconv.global_avg_pool2d if kind == "avg" else jaxconv.global_max_pool2d
    reduce = np.mean if kind == "avg" else np.max
    assert_close(fn(x, keepdims), reduce(x, axis=(1, 2), keepdims=keepdims))
    # NCHW and unbatched
    xc = np.transpose(x, (0, 3, 1, 2))
    expected = reduce(xc, axis=(2, 3), keepdims=keepdims)
    assert_close(fn(xc, keepdims, data_format="NCHW"), expected)
    assert_close(fn(x[0], keepdims=keepdims), reduce(x[0], axis=(0, 1), keepdims=keepdims))


def test_design_example_shape():
    """The article: MaxPooling2D(5) on the 318x398 output of a 3x3 conv gives 63x79."""
    y = jaxconv.max_pool2d(jnp.zeros((1, 318, 398, 3), jnp.float32), 5)
    assert y.shape == (1, 63, 79, 3)
    assert y.dtype == jnp.float32


# --------------------------------------------------------------------------------------------
# Layouts: NCHW and unbatched inputs agree with batched NHWC
# --------------------------------------------------------------------------------------------

LAYOUT_CASES = {
    "max": lambda x, **k: jaxconv.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, **k),
    "min": lambda x, **k: jaxconv.min_pool2d(x, (2, 3), dilation=(2, 1), **k),
    "avg": lambda x, **k: jaxconv.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False,
                                             **k),
    "lp": lambda x, **k: jaxconv.lp_pool2d(x, 2, (2, 3), **k),
    "adaptive_avg": lambda x, **k: jaxconv.adaptive_avg_pool2d(x, (3, 2), **k),
    "adaptive_max": lambda x, **k: jaxconv.adaptive_max_pool2d(x, (3, 2), **k),
    "global_avg": lambda x, **k: jaxconv.global_avg_pool2d(x, True, **k),
    "global_max": lambda x, **k: jaxconv.global_max_pool2d(x, True, **k),
}


@pytest.mark.parametrize("name", list(LAYOUT_CASES))
def test_layouts_and_unbatched(rng, name):
    fn = LAYOUT_CASES[name]
    x = _x(rng, (2, 7, 6, 3))
    y = np.asarray(fn(x))
    to_nchw = functools.partial(np.transpose, axes=(0, 3, 1, 2))
    assert_close(fn(to_nchw(x), data_format="NCHW"), to_nchw(y))
    assert_close(fn(x[1]), y[1])
    assert_close(fn(to_nchw(x)[1], data_format="nchw"), to_nchw(y)[1])


# --------------------------------------------------------------------------------------------
# Known answers on arange inputs: values and gradients
# --------------------------------------------------------------------------------------------


def _img(a):
    """2-D array -> (1, H, W, 1) float64."""
    return jnp.asarray(np.asarray(a, dtype=np.float64)[None, :, :, None])


def _plane(y):
    return np.asarray(y)[0, :, :, 0]


def _grad_plane(fn, x):
    return _plane(jax.grad(lambda x: fn(x).sum())(x))


def test_max_pool_known_answer():
    x = _img(np.arange(16).reshape(4, 4))
    f = functools.partial(jaxconv.max_pool2d, window=2)
    np.testing.assert_array_equal(_plane(f(x)), [[5, 7], [13, 15]])
    np.testing.assert_array_equal(
        _grad_plane(f, x), [[0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 1]]
    )


def test_max_pool_overlapping_gradient_routing():
    x = _img(np.arange(9).reshape(3, 3))
    f = functools.partial(jaxconv.max_pool2d, window=2, stride=1)
    np.testing.assert_array_equal(_plane(f(x)), [[4, 5], [7, 8]])
    np.testing.assert_array_equal(_grad_plane(f, x), [[0, 0, 0], [0, 1, 1], [0, 1, 1]])
    # 3 of the 4 windows share the maximum 8 -> its gradient accumulates
    g = functools.partial(jaxconv.max_pool2d, window=2, stride=1, padding=1)
    np.testing.assert_array_equal(
        _plane(g(x)), [[0, 1, 2, 2], [3, 4, 5, 5], [6, 7, 8, 8], [6, 7, 8, 8]]
    )
    np.testing.assert_array_equal(_grad_plane(g, x), [[1, 1, 2], [1, 1, 2], [2, 2, 4]])


def test_max_pool_tie_gradient_goes_to_one_element():
    x = jnp.zeros((1, 2, 2, 1))
    g = _grad_plane(functools.partial(jaxconv.max_pool2d, window=2), x)
    assert g.sum() == 1 and np.count_nonzero(g) == 1


@pytest.mark.parametrize(("kind", "shape", "window"), every_level([
    (kind, shape, window) for shape, window in [
        ((2, 8, 6, 3), (2, 2)), ((2, 9, 7, 3), (2, 3)), ((1, 12, 5), (3,)),
        ((2, 4, 6, 5, 2), (2, 3, 2))]
    for kind in ["max", "min"]]))  # every shape and kind (JAXCONV_FULL_TESTS=1: every pair)
def test_non_overlapping_windows_match_reduce_window(kind, shape, window, rng):
    """stride == window without padding takes a reshape-and-reduce path with its own gradient;
    values and gradients (the first extremum of each window in row-major order, PyTorch's rule,
    on inputs full of ties) equal those of XLA's reduce_window."""
    x = jnp.asarray(rng.integers(-2, 3, size=shape), jnp.float64)  # ties everywhere
    out = tuple(s // k for s, k in zip(shape[1:-1], window, strict=True))
    init, op = (-np.inf, jax.lax.max) if kind == "max" else (np.inf, jax.lax.min)

    def reference(x):
        y = jax.lax.reduce_window(x, np.array(init, x.dtype), op, (1, *window, 1),
                                  (1, *window, 1), "VALID")
        return jnp.sum(jnp.sin(y) * jnp.arange(y.size).reshape(y.shape))

    def blocked(x):
        y = extremum._blocked_extremum(x, kind, window, out)
        return jnp.sum(jnp.sin(y) * jnp.arange(y.size).reshape(y.shape))

    np.testing.assert_array_equal(
        extremum._blocked_extremum(x, kind, window, out),
        jax.lax.reduce_window(x, np.array(init, x.dtype), op, (1, *window, 1), (1, *window, 1),
                              "VALID"))
    # jitted: one program each (eagerly, every op of both would compile on its own)
    np.testing.assert_allclose(jax.jit(jax.grad(blocked))(x), jax.jit(jax.grad(reference))(x),
                               rtol=1e-12)
    t = jnp.asarray(rng.normal(size=shape))  # forward mode too
    tangent = jax.jit(lambda f, x, t: jax.jvp(f, (x,), (t,))[1], static_argnums=0)
    np.testing.assert_allclose(tangent(blocked, x, t), tangent(reference, x, t), rtol=1e-12)


def test_max_pool_ceil_mode_known_answer():
    x = _img(np.arange(16).reshape(4, 4))
    # floor: one 3x3 window; ceil: a second one that overhangs the end
    np.testing.assert_array_equal(_plane(jaxconv.max_pool2d(x, 3, stride=2)), [[10]])
    np.testing.assert_array_equal(
        _plane(jaxconv.max_pool2d(x, 3, stride=2, ceil_mode=True)), [[10, 11], [14, 15]]
    )
    # a third window would start in the right padding only: PyTorch drops it
    x3 = _img(np.arange(9).reshape(3, 3))
    y = jaxconv.max_pool2d(x3, 2, padding=1, ceil_mode=True)
    np.testing.assert_array_equal(_plane(y), [[0, 2], [6, 8]])


@pytest.mark.parametrize(
    ("count_include_pad", "values", "grad"),
    [
        (True, [[0.25, 1.25], [2.75, 7.0]], np.full((3, 3), 0.25)),
        (False, [[1.0, 2.5], [5.5, 7.0]], [[1, 0.5, 0.5], [0.5, 0.25, 0.25], [0.5, 0.25, 0.25]]),
    ],
)
def test_avg_pool_padding_known_answer(count_include_pad, values, grad):
    x = _img(np.arange(1, 10).reshape(3, 3))
    f = functools.partial(
        jaxconv.avg_pool2d, window=2, padding=1, count_include_pad=count_include_pad
    )
    np.testing.assert_allclose(_plane(f(x)), values)
    np.testing.assert_allclose(_grad_plane(f, x), grad)


def test_avg_pool_ceil_mode_known_answer():
    x = _img(np.arange(25).reshape(5, 5))
    # the overhanging last row/column of windows is averaged over the pixels it covers
    np.testing.assert_allclose(
        _plane(jaxconv.avg_pool2d(x, 2, ceil_mode=True)),
        [[3, 5, 6.5], [13, 15, 16.5], [20.5, 22.5, 24]],
    )
    # divisor = window clipped to the padded input (True) or to the real input (False)
    col = _img([[1], [2], [3], [4]])
    kw = dict(window=(3, 1), stride=(2, 1), padding=(1, 0), ceil_mode=True)
    np.testing.assert_allclose(_plane(jaxconv.avg_pool2d(col, **kw))[:, 0], [1, 3, 2])
    np.testing.assert_allclose(
        _plane(jaxconv.avg_pool2d(col, count_include_pad=False, **kw))[:, 0], [1.5, 3, 4]
    )


def test_avg_pool_divisor_override_known_answer():
    x = _img(np.arange(16).reshape(4, 4))
    f = functools.partial(jaxconv.avg_pool2d, window=2, divisor_override=2)
    np.testing.assert_allclose(_plane(f(x)), [[5, 9], [21, 25]])
    np.testing.assert_allclose(_grad_plane(f, x), np.full((4, 4), 0.5))


def test_lp_pool_known_answer():
    x = jnp.asarray([[[3.0], [4.0], [12.0]]])  # unbatched (1, 3, 1)
    f = functools.partial(jaxconv.lp_pool2d, norm=2, window=(1, 2), ceil_mode=True)
    # torch: the clipped last window is avg-pooled over 1 pixel, then scaled by kh * kw = 2
    np.testing.assert_allclose(np.asarray(f(x))[0, :, 0], [5.0, 12.0 * math.sqrt(2)])
    g = jax.grad(lambda x: f(x).sum())(x)
    np.testing.assert_allclose(np.asarray(g)[0, :, 0], [0.6, 0.8, math.sqrt(2)])


def test_lp_pool_gradient_of_zero_window_is_zero():
    """torch: where the sum of x ** p is zero the gradient is zero (not NaN from 0 ** (1/p - 1))."""
    x = np.zeros((1, 4, 4, 1))
    x[0, 2:, 2:, 0] = 1.0
    g = jax.grad(lambda x: jaxconv.lp_pool2d(x, 2, 2).sum())(x)
    np.testing.assert_array_equal(_plane(g), np.kron([[0, 0], [0, 1]], np.full((2, 2), 0.5)))


def test_adaptive_known_answer():
    x = jnp.arange(5.0).reshape(5, 1, 1)  # unbatched (H=5, W=1, C=1); bins [0,2) [1,4) [3,5)
    avg = functools.partial(jaxconv.adaptive_avg_pool2d, output_size=(3, 1))
    mx = functools.partial(jaxconv.adaptive_max_pool2d, output_size=(3, None))
    np.testing.assert_allclose(np.asarray(avg(x)).ravel(), [0.5, 2.0, 3.5])
    np.testing.assert_allclose(np.asarray(mx(x)).ravel(), [1.0, 3.0, 4.0])
    g = jax.grad(lambda x: avg(x).sum())(x)
    np.testing.assert_allclose(np.asarray(g).ravel(), [1 / 2, 1 / 2 + 1 / 3, 1 / 3, 1 / 3 + 1 / 2, 1 / 2])
    g = jax.grad(lambda x: mx(x).sum())(x)
    np.testing.assert_array_equal(np.asarray(g).ravel(), [0, 1, 0, 1, 1])


def test_global_known_answer():
    x = jnp.arange(8.0).reshape(1, 2, 2, 2)
    np.testing.assert_allclose(jaxconv.global_avg_pool2d(x), [[3.0, 4.0]])
    np.testing.assert_allclose(jaxconv.global_max_pool2d(x), [[6.0, 7.0]])
    assert jaxconv.global_max_pool2d(x, keepdims=True).shape == (1, 1, 1, 2)
    assert jaxconv.global_avg_pool2d(x[0]).shape == (2,)


# --------------------------------------------------------------------------------------------
# Gradients (check_grads, order 2, fwd + rev, float64)
# --------------------------------------------------------------------------------------------

GRAD_CASES = {
    "max": lambda x: jaxconv.max_pool2d(x, (2, 3), stride=2, padding=(1, 0), ceil_mode=True),
    "avg": lambda x: jaxconv.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True,
                                        count_include_pad=False),
    "lp": lambda x: jaxconv.lp_pool2d(x, 1.5, (2, 3), stride=2, ceil_mode=True),
    "adaptive_avg": lambda x: jaxconv.adaptive_avg_pool2d(x, 3),
    "adaptive_max": lambda x: jaxconv.adaptive_max_pool2d(x, (3, 2)),
}
# Cheaper first-order checks for the remaining code paths.
GRAD_CASES_ORDER1 = {
    "max_dilated": lambda x: jaxconv.max_pool2d(x, 2, stride=1, dilation=(1, 2)),
    "min": lambda x: jaxconv.min_pool2d(x, 2, stride=1, padding=1),
    "global_avg": lambda x: jaxconv.global_avg_pool2d(x),
    "global_max": lambda x: jaxconv.global_max_pool2d(x),
}


def _distinct(rng):
    """Distinct, well separated (no ties for max/min), positive (fractional lp powers) values."""
    return rng.permutation(40).reshape(1, 4, 5, 2) * 0.1 + 0.05


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_check_grads(rng, name):
    check_grads(GRAD_CASES[name], (_distinct(rng),), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name", list(GRAD_CASES_ORDER1))
def test_check_grads_first_order(rng, name):
    check_grads(GRAD_CASES_ORDER1[name], (_distinct(rng),), order=1, modes=("rev",))


# --------------------------------------------------------------------------------------------
# Transformations: jit, vmap, no retracing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["max", "avg", "lp", "adaptive_max"])
def test_jit_equals_eager(rng, name):
    fn = LAYOUT_CASES[name]
    x = _x(rng, (2, 7, 6, 3))
    np.testing.assert_allclose(jax.jit(fn)(x), fn(x), rtol=1e-14, atol=0)


@pytest.mark.parametrize("name", list(LAYOUT_CASES))
def test_vmap_equals_loop(rng, name):
    fn = LAYOUT_CASES[name]
    xs = _x(rng, (3, 5, 6, 2))  # a batch of unbatched images
    looped = np.stack([np.asarray(fn(x)) for x in xs])
    assert_close(jax.vmap(fn)(xs), looped)


def test_no_retrace_on_repeated_calls(rng):
    x1, x2 = _x(rng, (1, 6, 6, 2)), _x(rng, (1, 6, 6, 2))
    jaxconv.avg_pool2d(x1, 3, padding=1)
    size = average._avg_core._cache_size()
    jaxconv.avg_pool2d(x2, 3, padding=1)
    jaxconv.avg_pool2d(x2, (3, 3), padding=(1, 1))  # the same configuration, spelled differently
    assert average._avg_core._cache_size() == size


# --------------------------------------------------------------------------------------------
# Dtypes
# --------------------------------------------------------------------------------------------

DTYPE_CASES = {
    "max": (LAYOUT_CASES["max"], lambda x: ref.max_pool(x, (3, 3), (2, 2), ((1, 1),) * 2,
                                                         ceil_mode=True)),
    "avg": (LAYOUT_CASES["avg"], lambda x: ref.avg_pool(x, (3, 3), (2, 2), ((1, 1),) * 2,
                                                         count_include_pad=False)),
    "lp": (LAYOUT_CASES["lp"], lambda x: ref.lp_pool(x, 2, (2, 3), (2, 3))),
    "adaptive_avg": (LAYOUT_CASES["adaptive_avg"], lambda x: ref.adaptive_avg_pool(x, (3, 2))),
    "adaptive_max": (LAYOUT_CASES["adaptive_max"], lambda x: ref.adaptive_max_pool(x, (3, 2))),
    "global_avg": (LAYOUT_CASES["global_avg"], lambda x: x.mean(axis=(1, 2), keepdims=True)),
}


@pytest.mark.parametrize(
    "dtype", [jnp.float32, jnp.bfloat16, jnp.float16], ids=lambda d: jnp.dtype(d).name
)
@pytest.mark.parametrize("name", list(DTYPE_CASES))
def test_dtypes_preserved_and_accurate(rng, name, dtype):
    fn, ref_fn = DTYPE_CASES[name]
    x = jnp.asarray(rng.standard_normal((2, 7, 6, 3)), dtype)
    y = fn(x)
    assert y.dtype == jnp.dtype(dtype)
    assert_close(y, ref_fn(np.asarray(x.astype(jnp.float64))))


# --------------------------------------------------------------------------------------------
# NaN
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        functools.partial(jaxconv.max_pool2d, window=2),
        functools.partial(jaxconv.max_pool2d, window=2, stride=2, dilation=(2, 1)),
        functools.partial(jaxconv.min_pool2d, window=2),
        functools.partial(jaxconv.avg_pool2d, window=2),
        functools.partial(jaxconv.adaptive_max_pool2d, output_size=2),
        functools.partial(jaxconv.adaptive_avg_pool2d, output_size=2),
    ],
    ids=["max", "max_dilated", "min", "avg", "adaptive_max", "adaptive_avg"],
)
def test_nan_in_window_gives_nan(fn):
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    x[0, 0, 0, 0] = np.nan  # the first window only (for the dilated pool: rows 0 and 2)
    y = _plane(fn(x))
    assert np.isnan(y[0, 0])
    assert not np.isnan(y[1:]).any() and not np.isnan(y[:, 1:]).any()


def test_global_max_nan():
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    x[0, 1, 1, 0] = np.nan
    y = np.asarray(jaxconv.global_max_pool2d(x))
    assert np.isnan(y[0, 0]) and y[0, 1] == 7


# --------------------------------------------------------------------------------------------
# Errors: checked before tracing, message = function, argument, rule, values received
# --------------------------------------------------------------------------------------------

X = np.zeros((1, 5, 5, 2), np.float32)

ERRORS = [
    (ValueError, r"max_pool2d: x must have rank 4 \(NHWC\) or 3 .* got rank 2",
     lambda: jaxconv.max_pool2d(np.zeros((5, 5)), 2)),
    (ValueError, r"avg_pool2d: x must have rank 4 .* got rank 5",
     lambda: jaxconv.avg_pool2d(np.zeros((1, 1, 5, 5, 1)), 2)),
    (ValueError, r"max_pool2d: window must be >= 1, got 0", lambda: jaxconv.max_pool2d(X, 0)),
    (ValueError, r"min_pool2d: window must be >= 1, got \(2, -1\)",
     lambda: jaxconv.min_pool2d(X, (2, -1))),
    (ValueError, r"avg_pool2d: stride must be >= 1, got 0",
     lambda: jaxconv.avg_pool2d(X, 2, stride=0)),
    (ValueError, r"max_pool2d: dilation must be >= 1, got 0",
     lambda: jaxconv.max_pool2d(X, 2, dilation=0)),
    (ValueError, r"max_pool2d: padding must be non-negative, got -1",
     lambda: jaxconv.max_pool2d(X, 2, padding=-1)),
    (ValueError, r"avg_pool2d: padding must be non-negative, got \(\(0, -1\), \(0, 0\)\)",
     lambda: jaxconv.avg_pool2d(X, 2, padding=((0, -1), (0, 0)))),
    (ValueError, r"max_pool2d: unknown padding 'FULL'; expected one of 'VALID', 'SAME'",
     lambda: jaxconv.max_pool2d(X, 2, padding="FULL")),
    (ValueError, r"avg_pool2d: unknown padding 'same_lower'",
     lambda: jaxconv.avg_pool2d(X, 2, padding="same_lower")),
    (ValueError, r"max_pool2d: data_format must be 'NHWC' or 'NCHW', got 'NWHC'",
     lambda: jaxconv.max_pool2d(X, 2, data_format="NWHC")),
    (ValueError, r"adaptive_avg_pool2d: data_format must be 'NHWC' or 'NCHW', got 'HWC'",
     lambda: jaxconv.adaptive_avg_pool2d(X, 2, data_format="HWC")),
    (TypeError, r"max_pool2d: x must have a floating dtype .* got int32",
     lambda: jaxconv.max_pool2d(X.astype(np.int32), 2)),
    (TypeError, r"avg_pool2d: x must have a floating dtype .* got bool",
     lambda: jaxconv.avg_pool2d(X.astype(bool), 2)),
    (TypeError, r"global_max_pool2d: x must have a floating dtype .* got uint8",
     lambda: jaxconv.global_max_pool2d(X.astype(np.uint8))),
    (TypeError, r"adaptive_max_pool2d: x must have a floating dtype .* got int64",
     lambda: jaxconv.adaptive_max_pool2d(np.zeros((4, 4, 1), np.int64), 2)),
    (ValueError, r"max_pool2d: the window \(effective size 6x6 from window \(6, 6\), dilation "
                 r"\(1, 1\)\) is larger than the padded input 5x5",
     lambda: jaxconv.max_pool2d(X, 6)),
    (ValueError, r"max_pool2d: the window \(effective size 5x9 .* larger than the padded input 7x7",
     lambda: jaxconv.max_pool2d(X, 3, padding=1, dilation=(2, 4))),
    (ValueError, r"lp_pool2d: the window .* is larger than the padded input 5x5",
     lambda: jaxconv.lp_pool2d(X, 2, (2, 6))),
    (ValueError, r"max_pool2d: padding must be at most half the window \(window=\(3, 3\)\), "
                 r"got padding=\(2, 2\)",
     lambda: jaxconv.max_pool2d(X, 3, padding=2)),
    (ValueError, r"avg_pool2d: padding must be at most half the window \(window=\(2, 4\)\), "
                 r"got padding=\(\(0, 0\), \(3, 0\)\)",
     lambda: jaxconv.avg_pool2d(X, (2, 4), padding=((0, 0), (3, 0)))),
    (ValueError, r"avg_pool2d: divisor_override must be non-zero, got 0",
     lambda: jaxconv.avg_pool2d(X, 2, divisor_override=0)),
    (TypeError, r"avg_pool2d: divisor_override must be None or an int, got 2.5",
     lambda: jaxconv.avg_pool2d(X, 2, divisor_override=2.5)),
    (ValueError, r"adaptive_avg_pool2d: output_size must be >= 1, got 0",
     lambda: jaxconv.adaptive_avg_pool2d(X, 0)),
    (ValueError, r"adaptive_max_pool2d: output_size must be >= 1, got \(None, -1\)",
     lambda: jaxconv.adaptive_max_pool2d(X, (None, -1))),
    (TypeError, r"adaptive_max_pool2d: output_size must be an int or a pair .* got 2.0",
     lambda: jaxconv.adaptive_max_pool2d(X, 2.0)),
    (ValueError, r"lp_pool2d: norm must be > 0, got 0", lambda: jaxconv.lp_pool2d(X, 0)),
    (ValueError, r"lp_pool2d: norm must be > 0, got -inf",
     lambda: jaxconv.lp_pool2d(X, -math.inf)),
    (ValueError, r"lp_pool2d: norm must be > 0, got nan", lambda: jaxconv.lp_pool2d(X, math.nan)),
    (TypeError, r"lp_pool2d: norm must be a real number, got '2'",
     lambda: jaxconv.lp_pool2d(X, "2")),
    (TypeError, r"max_pool2d: window must be an int or a pair of ints, got 2.0",
     lambda: jaxconv.max_pool2d(X, 2.0)),
    (TypeError, r"max_pool2d: window must be an int or a pair of ints, got True",
     lambda: jaxconv.max_pool2d(X, True)),
    (TypeError, r"avg_pool2d: padding must be a string, an int, .* got 1.5",
     lambda: jaxconv.avg_pool2d(X, 2, padding=1.5)),
    (TypeError, r"max_pool2d: ceil_mode must be a bool, got 1",
     lambda: jaxconv.max_pool2d(X, 2, ceil_mode=1)),
    (TypeError, r"avg_pool2d: count_include_pad must be a bool, got None",
     lambda: jaxconv.avg_pool2d(X, 2, count_include_pad=None)),
    (TypeError, r"global_avg_pool2d: keepdims must be a bool, got 'yes'",
     lambda: jaxconv.global_avg_pool2d(X, "yes")),
    (ValueError, r"global_avg_pool2d: x must have rank 4",
     lambda: jaxconv.global_avg_pool2d(np.zeros(3))),
]


@pytest.mark.parametrize(("error", "match", "call"), ERRORS, ids=[e[1][:48] for e in ERRORS])
def test_errors(error, match, call):
    with pytest.raises(error, match=match):
        call()


def test_errors_raised_before_tracing_under_jit():
    with pytest.raises(ValueError, match=r"max_pool2d: window must be >= 1, got 0"):
        jax.jit(lambda x: jaxconv.max_pool2d(x, 0))(X)
