"""1-D and 3-D pooling, max-pool indices, max-unpooling, and the reliability fixes of the 2-D pools:
float64 NumPy reference sweeps, known answers, gradients, transformations and errors."""

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

# --------------------------------------------------------------------------------------------
# Canonicalization written out for the reference (independent of jaxconv)
# --------------------------------------------------------------------------------------------


def _tup(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


def _ref_pads(padding, size, window, stride, dilation):
    nd = len(size)
    if padding == "VALID":
        return ((0, 0),) * nd
    if padding == "SAME":
        pads = []
        for n, k, s, d in zip(size, window, stride, dilation, strict=True):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if isinstance(padding, int):
        return ((padding, padding),) * nd
    if isinstance(padding[0], int):
        return tuple((p, p) for p in padding)
    return tuple(tuple(p) for p in padding)


def _ref_args(shape, window, stride, padding, dilation=1):
    nd = len(shape) - 2
    window = _tup(window, nd)
    stride = window if stride is None else _tup(stride, nd)
    dilation = _tup(dilation, nd)
    return window, stride, _ref_pads(padding, shape[1:-1], window, stride, dilation), dilation


POOLS = {
    1: dict(max=jaxconv.max_pool1d, min=jaxconv.min_pool1d, avg=jaxconv.avg_pool1d,
            lp=jaxconv.lp_pool1d, adaptive_avg=jaxconv.adaptive_avg_pool1d,
            adaptive_max=jaxconv.adaptive_max_pool1d, global_avg=jaxconv.global_avg_pool1d,
            global_max=jaxconv.global_max_pool1d, unpool=jaxconv.max_unpool1d),
    2: dict(max=jaxconv.max_pool2d, unpool=jaxconv.max_unpool2d),
    3: dict(max=jaxconv.max_pool3d, min=jaxconv.min_pool3d, avg=jaxconv.avg_pool3d,
            lp=jaxconv.lp_pool3d, adaptive_avg=jaxconv.adaptive_avg_pool3d,
            adaptive_max=jaxconv.adaptive_max_pool3d, global_avg=jaxconv.global_avg_pool3d,
            global_max=jaxconv.global_max_pool3d, unpool=jaxconv.max_unpool3d),
}
SHAPES = {1: [(2, 9, 3), (1, 8, 2)], 3: [(1, 5, 6, 4, 2), (2, 4, 5, 5, 1)]}


def _sweep(nd, *axes):
    shapes = SHAPES[nd]
    return [(shapes[i % len(shapes)], *case) for i, case in enumerate(itertools.product(*axes))]


def _id(value):
    return str(value).replace(" ", "")


def _x(rng, shape):
    return rng.standard_normal(shape)


# --------------------------------------------------------------------------------------------
# Reference sweeps: max (with indices) and min, avg, lp
# --------------------------------------------------------------------------------------------

MAX_1D = _sweep(1, [2, 3], [None, 1, 2], [0, ((1, 0),), "SAME"], [1, 2], [False, True])
MAX_3D = _sweep(3, [2, (1, 2, 3)], [None, (1, 2, 1)], [(0, 1, 1), "SAME"], [1, (2, 1, 1)],
                [False, True])


# The default run keeps every level of every factor of each sweep (JAXCONV_FULL_TESTS=1: all).
@pytest.mark.parametrize(
    ("shape", "window", "stride", "padding", "dilation", "ceil_mode"),
    every_level(MAX_1D, k=5) + every_level(MAX_3D, k=4), ids=_id,
)
def test_max_pool_and_indices_match_reference(rng, shape, window, stride, padding, dilation,
                                               ceil_mode):
    nd = len(shape) - 2
    x = _x(rng, shape)
    y, idx = POOLS[nd]["max"](x, window, stride=stride, padding=padding, dilation=dilation,
                              ceil_mode=ceil_mode, return_indices=True)
    w, s, p, d = _ref_args(shape, window, stride, padding, dilation)
    assert_close(y, ref.max_pool_nd(x, w, s, p, d, ceil_mode))
    assert idx.dtype == jnp.int32
    np.testing.assert_array_equal(idx, ref.max_pool_indices_nd(x, w, s, p, d, ceil_mode))
    # the values the indices point at are the maxima
    flat = x.reshape(shape[0], -1, shape[-1])
    picked = np.take_along_axis(flat, np.asarray(idx).reshape(shape[0], -1, shape[-1]), axis=1)
    np.testing.assert_array_equal(picked.reshape(y.shape), y)


@pytest.mark.parametrize(
    ("shape", "window", "stride", "padding", "dilation", "ceil_mode"),
    MAX_1D[::8] + MAX_3D[::6], ids=_id,
)
def test_min_pool_matches_reference(rng, shape, window, stride, padding, dilation, ceil_mode):
    nd = len(shape) - 2
    x = _x(rng, shape)
    y = POOLS[nd]["min"](x, window, stride=stride, padding=padding, dilation=dilation,
                         ceil_mode=ceil_mode)
    w, s, p, d = _ref_args(shape, window, stride, padding, dilation)
    assert_close(y, ref.min_pool_nd(x, w, s, p, d, ceil_mode))


AVG_1D = _sweep(1, [2, 3], [None, 2], [1, "SAME"], [False, True], [True, False])
AVG_3D = _sweep(3, [2, (3, 1, 2)], [None, 1], [0, ((1, 0), (0, 0), (1, 1))], [False, True],
                [True, False])


@pytest.mark.parametrize(
    ("shape", "window", "stride", "padding", "ceil_mode", "count_include_pad"),
    every_level(AVG_1D, k=4) + every_level(AVG_3D, k=4), ids=_id,
)
def test_avg_pool_matches_reference(rng, shape, window, stride, padding, ceil_mode,
                                    count_include_pad):
    nd = len(shape) - 2
    x = _x(rng, shape)
    y = POOLS[nd]["avg"](x, window, stride=stride, padding=padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad)
    w, s, p, _ = _ref_args(shape, window, stride, padding)
    assert_close(y, ref.avg_pool_nd(x, w, s, p, ceil_mode, count_include_pad))


@pytest.mark.parametrize("nd", [1, 3])
@pytest.mark.parametrize("divisor_override", [3, -2])
def test_avg_pool_divisor_override(rng, nd, divisor_override):
    shape = SHAPES[nd][0]
    x = _x(rng, shape)
    y = POOLS[nd]["avg"](x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False,
                         divisor_override=divisor_override)
    w, s, p, _ = _ref_args(shape, 3, 2, 1)
    assert_close(y, ref.avg_pool_nd(x, w, s, p, True, False, divisor_override))


@pytest.mark.parametrize("norm", [1, 2, 1.5, math.inf])
@pytest.mark.parametrize(("nd", "window", "stride", "ceil_mode"),
                         [(1, 3, 2, True), (1, 2, None, False), (3, 2, 1, False),
                          (3, (2, 3, 2), (2, 2, 1), True)])
def test_lp_pool_matches_reference(rng, nd, window, stride, ceil_mode, norm):
    shape = SHAPES[nd][1]
    x = _x(rng, shape)
    if norm != 2:
        x = np.abs(x)
    y = POOLS[nd]["lp"](x, norm, window, stride=stride, ceil_mode=ceil_mode)
    w, s, _, _ = _ref_args(shape, window, stride, 0)
    assert_close(y, ref.lp_pool_nd(x, norm, w, s, ceil_mode))


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize(
    ("size", "output_size"),
    [((7,), 3), ((6,), (10,)), ((5,), (None,)), ((5, 6, 7), 3), ((5, 6, 7), (2, None, 4)),
     ((4, 3, 5), (1, 6, 5))],
    ids=_id,
)
def test_adaptive_pool_matches_reference(rng, kind, size, output_size):
    nd = len(size)
    x = _x(rng, (2, *size, 3))
    y = POOLS[nd][f"adaptive_{kind}"](x, output_size)
    out = tuple(n if o is None else o for o, n in zip(_tup(output_size, nd), size, strict=True))
    assert_close(y, ref.adaptive_pool_nd(x, out, np.mean if kind == "avg" else np.max))


@pytest.mark.parametrize("nd", [1, 3])
@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pool(rng, nd, kind, keepdims):
    x = _x(rng, SHAPES[nd][0])
    reduce = np.mean if kind == "avg" else np.max
    axes = tuple(range(1, nd + 1))
    assert_close(POOLS[nd][f"global_{kind}"](x, keepdims), reduce(x, axis=axes, keepdims=keepdims))


# --------------------------------------------------------------------------------------------
# ceil_mode: a last window may overhang the padded input, as in torch (the 2-D fix included)
# --------------------------------------------------------------------------------------------


def _ceil_grid():
    for n, k, s, p, d in itertools.product(range(1, 6), range(1, 4), range(1, 4), range(2),
                                           range(1, 4)):
        if p <= k // 2:
            yield n, k, s, p, d


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_overhanging_windows_match_reference(rng, ceil_mode):
    """Every small 1-D geometry: our output (or our error) where the reference keeps windows."""
    kept = rejected = 0
    for n, k, s, p, d in _ceil_grid():
        x = _x(rng, (1, n, 1))
        eff = (k - 1) * d + 1
        if eff <= n + 2 * p:
            continue  # an ordinary geometry, covered by the sweeps above
        starts = ref.window_starts(n, eff, s, p, p, ceil_mode)
        if not starts:
            with pytest.raises(ValueError, match=r"max_pool1d: the window .* is larger than"):
                jaxconv.max_pool1d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
            rejected += 1
            continue
        y, idx = jaxconv.max_pool1d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode,
                                    return_indices=True)
        pads = ((p, p),)
        assert_close(y, ref.max_pool_nd(x, (k,), (s,), pads, (d,), ceil_mode))
        np.testing.assert_array_equal(idx, ref.max_pool_indices_nd(x, (k,), (s,), pads, (d,),
                                                                   ceil_mode))
        if d == 1:
            z = jaxconv.avg_pool1d(x, k, stride=s, padding=p, ceil_mode=ceil_mode,
                                   count_include_pad=bool(n % 2))
            assert_close(z, ref.avg_pool_nd(x, (k,), (s,), pads, ceil_mode, bool(n % 2)))
        kept += 1
    assert rejected and (kept > 0) == ceil_mode


def test_max_pool2d_ceil_mode_dilation_overhang_is_accepted(rng):
    """torch accepts a dilated window larger than the padded input when ceil_mode rounds the
    output up to one window (this used to raise)."""
    x = _x(rng, (1, 5, 5, 2))
    y = jaxconv.max_pool2d(x, 3, padding=1, dilation=(2, 4), ceil_mode=True)
    assert y.shape == (1, 2, 1, 2)
    assert_close(y, ref.max_pool_nd(x, (3, 3), (3, 3), ((1, 1), (1, 1)), (2, 4), True))
    y = jaxconv.max_pool2d(x[:, :2, :2], 2, dilation=2, ceil_mode=True)  # 2x2, k_eff 3
    assert y.shape == (1, 1, 1, 2)
    assert_close(y, x[:, :1, :1])
    # avg and lp: the clipped window, then torch's divisor / area
    z = jaxconv.avg_pool2d(x[:, :1, :1], 2, ceil_mode=True)
    assert_close(z, x[:, :1, :1])
    with pytest.raises(ValueError, match=r"max_pool2d: the window .* larger than the padded"):
        jaxconv.max_pool2d(x[:, :2, :2], 2, dilation=2)  # floor mode: torch rejects it too


# --------------------------------------------------------------------------------------------
# Known answers: indices with ties, NaN, -inf; unpool
# --------------------------------------------------------------------------------------------


def test_indices_known_answer_with_ties():
    x = np.array([1, 3, 3, 2, 5, 5], dtype=np.float64).reshape(6, 1)
    y, i = jaxconv.max_pool1d(x, 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(np.asarray(y)[:, 0], [3, 3, 3, 5, 5])
    np.testing.assert_array_equal(np.asarray(i)[:, 0], [1, 1, 2, 4, 4])  # first of tied maxima

    a = np.arange(16.0).reshape(1, 4, 4, 1)
    _, i = jaxconv.max_pool2d(a, 2, return_indices=True)
    np.testing.assert_array_equal(np.asarray(i)[0, :, :, 0], [[5, 7], [13, 15]])
    z = np.zeros((1, 4, 4, 1))
    _, i = jaxconv.max_pool2d(z, 2, return_indices=True)
    np.testing.assert_array_equal(np.asarray(i)[0, :, :, 0], [[0, 2], [8, 10]])
    # padding: the first *real* pixel of each window wins a tie
    _, i = jaxconv.max_pool2d(z, 3, stride=2, padding=1, return_indices=True)
    np.testing.assert_array_equal(np.asarray(i)[0, :, :, 0], [[0, 1], [4, 5]])
    # channels-last, NCHW and 3-D: per-channel flattened spatial indices
    x = np.arange(24.0).reshape(1, 2, 3, 4).transpose(0, 2, 3, 1)  # (1, 3, 4, 2)
    _, i = jaxconv.max_pool2d(x, (3, 2), return_indices=True)
    np.testing.assert_array_equal(np.asarray(i)[0, 0], [[9, 9], [11, 11]])
    _, i = jaxconv.max_pool2d(x.transpose(0, 3, 1, 2), (3, 2), return_indices=True,
                              data_format="NCHW")
    np.testing.assert_array_equal(np.asarray(i)[0, :, 0], [[9, 11], [9, 11]])
    _, i = jaxconv.max_pool3d(np.arange(27.0).reshape(3, 3, 3, 1), 2, stride=1,
                              return_indices=True)
    np.testing.assert_array_equal(np.asarray(i)[..., 0].ravel(),
                                  [13, 14, 16, 17, 22, 23, 25, 26])


def test_indices_nan_and_minus_inf():
    x = np.array([1, np.nan, 2, np.nan, 0], dtype=np.float64).reshape(1, 5, 1)
    y, i = jaxconv.max_pool1d(x, 5, return_indices=True)
    assert np.isnan(np.asarray(y)).all()
    assert int(np.asarray(i).item()) == 3  # torch's CPU kernel: the last NaN
    x = np.full((1, 4, 1), -np.inf)
    y, i = jaxconv.max_pool1d(x, 2, padding=1, return_indices=True)
    np.testing.assert_array_equal(np.asarray(i).ravel(), [0, 1, 3])
    assert np.isneginf(np.asarray(y)).all()


def test_unpool_known_answer_and_round_trip(rng):
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    y, i = jaxconv.max_pool2d(x, 2, return_indices=True)
    u = jaxconv.max_unpool2d(y, i, 2)
    expected = np.zeros((4, 4))
    expected[1::2, 1::2] = [[5, 7], [13, 15]]
    np.testing.assert_array_equal(np.asarray(u)[0, :, :, 0], expected)
    for nd in (1, 2, 3):
        shape = (2, *([5] * nd), 3)
        x = np.abs(_x(rng, shape)) + 0.1  # positive: the unpooled zeros are never a maximum
        y, i = POOLS[nd]["max"](x, 3, stride=2, padding=1, return_indices=True)
        default = (np.asarray(y.shape[1:-1]) - 1) * 2 - 2 + 3
        u = POOLS[nd]["unpool"](y, i, 3, stride=2, padding=1)
        assert u.shape == (2, *default, 3)
        u = POOLS[nd]["unpool"](y, i, 3, stride=2, padding=1, output_size=shape[1:-1])
        assert_close(u, ref.max_unpool_nd(y, i, shape[1:-1]))
        # the full shape, in y's layout, is accepted too (torch: N, C, *spatial)
        u2 = POOLS[nd]["unpool"](y, i, 3, stride=2, padding=1, output_size=shape)
        assert_close(u2, u)
        # max_pool(unpool(max_pool(x))) == max_pool(x)
        y2 = POOLS[nd]["max"](u, 3, stride=2, padding=1)
        assert_close(y2, y)


def test_unpool_layouts_and_unbatched(rng):
    x = _x(rng, (2, 6, 7, 3))
    y, i = jaxconv.max_pool2d(x, 2, return_indices=True)
    u = np.asarray(jaxconv.max_unpool2d(y, i, 2, output_size=(6, 7)))
    t = (0, 3, 1, 2)
    yc, ic = jaxconv.max_pool2d(x.transpose(t), 2, return_indices=True, data_format="NCHW")
    np.testing.assert_array_equal(ic, np.asarray(i).transpose(t))
    uc = jaxconv.max_unpool2d(yc, ic, 2, output_size=(6, 7), data_format="NCHW")
    assert_close(uc, u.transpose(t))
    assert_close(jaxconv.max_unpool2d(y[1], i[1], 2, output_size=(2, 6, 7, 3)[1:]), u[1])
    x1 = _x(rng, (3, 9))  # unbatched NCW
    y1, i1 = jaxconv.max_pool1d(x1, 3, return_indices=True, data_format="NCW")
    u1 = jaxconv.max_unpool1d(y1, i1, 3, data_format="NCW")
    ref_u = ref.max_unpool_nd(np.asarray(y1).T[None], np.asarray(i1).T[None], (9,))[0].T
    assert_close(u1, ref_u)


# --------------------------------------------------------------------------------------------
# Layouts: channels-first and unbatched agree with batched channels-last
# --------------------------------------------------------------------------------------------

LAYOUT_CASES = {
    "max": lambda f, x, **k: f["max"](x, 3, stride=2, padding=1, ceil_mode=True, **k),
    "max_indices": lambda f, x, **k: f["max"](x, 2, stride=1, return_indices=True, **k)[1],
    "min": lambda f, x, **k: f["min"](x, 2, dilation=2, **k),
    "avg": lambda f, x, **k: f["avg"](x, 3, stride=2, padding=1, count_include_pad=False, **k),
    "lp": lambda f, x, **k: f["lp"](x, 2, 2, **k),
    "adaptive_avg": lambda f, x, **k: f["adaptive_avg"](x, 3, **k),
    "adaptive_max": lambda f, x, **k: f["adaptive_max"](x, 2, **k),
    "global_avg": lambda f, x, **k: f["global_avg"](x, True, **k),
    "global_max": lambda f, x, **k: f["global_max"](x, True, **k),
}
FIRST = {1: "NCW", 3: "NCDHW"}


@pytest.mark.parametrize("nd", [1, 3])
@pytest.mark.parametrize("name", list(LAYOUT_CASES))
def test_layouts_and_unbatched(rng, nd, name):
    fn = functools.partial(LAYOUT_CASES[name], POOLS[nd])
    x = _x(rng, (2, *([5] * nd), 3))
    y = np.asarray(fn(x))
    to_first = functools.partial(np.moveaxis, source=-1, destination=1)
    check = np.testing.assert_array_equal if y.dtype == np.int32 else assert_close
    check(fn(to_first(x), data_format=FIRST[nd]), to_first(y))
    check(fn(x[1]), y[1])
    check(fn(to_first(x)[1], data_format=FIRST[nd].lower()), to_first(y)[1])


# --------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------


def _distinct(rng, shape):
    return rng.permutation(math.prod(shape)).reshape(shape) * 0.1 + 0.05


GRAD_CASES = {
    "max1d": ((1, 7, 2), lambda x: jaxconv.max_pool1d(x, 3, stride=2, padding=1, ceil_mode=True)),
    "max1d_dilated": ((1, 7, 2), lambda x: jaxconv.max_pool1d(x, 2, stride=1, dilation=2)),
    "max3d_indices": ((1, 3, 4, 3, 1), lambda x: jaxconv.max_pool3d(
        x, 2, stride=1, padding=(1, 0, 1), return_indices=True)[0]),
    "min3d": ((1, 3, 4, 3, 1), lambda x: jaxconv.min_pool3d(x, (2, 2, 1), ceil_mode=True)),
    "avg1d": ((1, 7, 2), lambda x: jaxconv.avg_pool1d(x, 3, stride=2, padding=1, ceil_mode=True,
                                                      count_include_pad=False)),
    "avg3d": ((1, 3, 4, 3, 1), lambda x: jaxconv.avg_pool3d(x, 2, stride=1, padding=1)),
    "lp1d": ((1, 7, 2), lambda x: jaxconv.lp_pool1d(x, 1.5, 2, ceil_mode=True)),
    "lp3d": ((1, 3, 4, 3, 1), lambda x: jaxconv.lp_pool3d(x, 2, 2, stride=1)),
    "adaptive_avg3d": ((1, 3, 4, 3, 1), lambda x: jaxconv.adaptive_avg_pool3d(x, (2, 3, 2))),
    "adaptive_max1d": ((1, 7, 2), lambda x: jaxconv.adaptive_max_pool1d(x, 3)),
    "global_avg3d": ((1, 3, 4, 3, 1), lambda x: jaxconv.global_avg_pool3d(x)),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_check_grads(rng, name):
    shape, fn = GRAD_CASES[name]
    check_grads(fn, (_distinct(rng, shape),), order=1, modes=("fwd", "rev"))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unpool_gradient(rng, nd):
    x = _distinct(rng, (1, *([4] * nd), 2))
    y, i = POOLS[nd]["max"](x, 2, return_indices=True)
    check_grads(lambda y: POOLS[nd]["unpool"](y, i, 2), (np.asarray(y),), order=1,
                modes=("fwd", "rev"))
    # the gradient w.r.t. y gathers the cotangent at the indices
    ct = rng.standard_normal(x.shape)
    g = jax.grad(lambda y: jnp.sum(POOLS[nd]["unpool"](y, i, 2) * ct))(y)
    flat = ct.reshape(1, -1, 2)
    expected = np.take_along_axis(flat, np.asarray(i).reshape(1, -1, 2), axis=1)
    np.testing.assert_allclose(np.asarray(g).ravel(), expected.reshape(g.shape).ravel())


def test_unpool_gradient_with_duplicate_indices():
    """Overlapping windows share a maximum: each value still gets the cotangent at its index
    (torch's backward is a gather)."""
    y, i = jaxconv.max_pool1d(np.array([[1.0], [3.0], [2.0]]), 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(np.asarray(i).ravel(), [1, 1])
    ct = np.array([[10.0], [20.0], [30.0]])
    u, vjp = jax.vjp(lambda y: jaxconv.max_unpool1d(y, i, 2, stride=1), y)
    np.testing.assert_array_equal(np.asarray(u).ravel(), [0, 3, 0])
    np.testing.assert_array_equal(np.asarray(vjp(ct)[0]).ravel(), [20, 20])


# --------------------------------------------------------------------------------------------
# Transformations
# --------------------------------------------------------------------------------------------

JIT_CASES = {
    "max1d": lambda x: jaxconv.max_pool1d(x[:, 0, 0], 3, stride=2, padding=1, return_indices=True),
    "avg1d": lambda x: jaxconv.avg_pool1d(x[:, 0, 0], 2, ceil_mode=True),
    "max3d": lambda x: jaxconv.max_pool3d(x, 2, dilation=(1, 2, 1)),
    "avg3d": lambda x: jaxconv.avg_pool3d(x, 2, padding=1, count_include_pad=False),
    "lp3d": lambda x: jaxconv.lp_pool3d(x, 2, 2),
    "adaptive_max3d": lambda x: jaxconv.adaptive_max_pool3d(x, 3),
    "unpool3d": lambda x: jaxconv.max_unpool3d(
        *jaxconv.max_pool3d(x, 2, return_indices=True), 2, output_size=(5, 6, 5)),
}


@pytest.mark.parametrize("name", list(JIT_CASES))
def test_jit_equals_eager_and_vmap_equals_loop(rng, name):
    fn = JIT_CASES[name]
    x = _x(rng, (2, 5, 6, 5, 2))
    eager = fn(x)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), jax.jit(fn)(x), eager)
    looped = [fn(v[None]) for v in x]
    batched = jax.vmap(lambda v: fn(v[None]))(x)
    for k, one in enumerate(looped):
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(one), strict=True):
            np.testing.assert_allclose(a[k], b, rtol=1e-12)


def test_unpool_under_jit_drops_out_of_range_indices():
    y = jnp.ones((1, 2, 1))
    i = jnp.array([0, 99], dtype=jnp.int32).reshape(1, 2, 1)
    u = jax.jit(lambda y, i: jaxconv.max_unpool1d(y, i, 2))(y, i)
    np.testing.assert_array_equal(np.asarray(u).ravel(), [1, 0, 0, 0])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16],
                         ids=lambda d: jnp.dtype(d).name)
def test_dtypes_preserved(rng, dtype):
    x = jnp.asarray(rng.standard_normal((2, 5, 4, 6, 3)), dtype)
    x64 = np.asarray(x.astype(jnp.float64))
    y = jaxconv.avg_pool3d(x, 2, padding=1, ceil_mode=True)
    assert y.dtype == jnp.dtype(dtype)
    assert_close(y, ref.avg_pool_nd(x64, (2,) * 3, (2,) * 3, ((1, 1),) * 3, True))
    y, i = jaxconv.max_pool1d(x[:, :, 0, 0], 3, return_indices=True)
    assert y.dtype == jnp.dtype(dtype) and i.dtype == jnp.int32


# --------------------------------------------------------------------------------------------
# Errors, including the reliability issue (empty images, absurd ints, int32 sizes)
# --------------------------------------------------------------------------------------------

X1 = np.zeros((1, 5, 2), np.float32)
X2 = np.zeros((1, 5, 5, 2), np.float32)
X3 = np.zeros((1, 4, 5, 5, 2), np.float32)
Y2, I2 = (np.zeros((1, 2, 2, 2), np.float32), np.zeros((1, 2, 2, 2), np.int32))

ERRORS = [
    (ValueError, r"global_avg_pool2d: x has an empty spatial axis \(shape \(1, 0, 4, 3\)",
     lambda: jaxconv.global_avg_pool2d(np.zeros((1, 0, 4, 3)))),
    (ValueError, r"global_max_pool2d: x has an empty spatial axis \(shape \(2, 3, 4, 0\), "
                 r"layout NCHW\)",
     lambda: jaxconv.global_max_pool2d(np.zeros((2, 3, 4, 0)), data_format="NCHW")),
    (ValueError, r"global_avg_pool1d: x has an empty spatial axis",
     lambda: jaxconv.global_avg_pool1d(np.zeros((0, 3)))),
    (ValueError, r"adaptive_avg_pool2d: x has an empty spatial axis",
     lambda: jaxconv.adaptive_avg_pool2d(np.zeros((1, 0, 4, 3)), 2)),
    (ValueError, r"max_pool2d: x has an empty spatial axis",
     lambda: jaxconv.max_pool2d(np.zeros((1, 0, 4, 3)), 2, padding=1)),
    (ValueError, r"max_pool2d: stride must be at most 2\*\*31 - 1, got 9223372036854775808",
     lambda: jaxconv.max_pool2d(X2, 2, stride=2**63)),
    (ValueError, r"avg_pool2d: stride must be at most 2\*\*31 - 1, got \(1, 2\*\*40\)".replace(
        "2\\*\\*40", str(2**40)),
     lambda: jaxconv.avg_pool2d(X2, 2, stride=(1, 2**40))),
    (ValueError, r"max_pool1d: window must be at most 2\*\*31 - 1",
     lambda: jaxconv.max_pool1d(X1, 2**64)),
    (ValueError, r"max_pool3d: dilation must be at most 2\*\*31 - 1",
     lambda: jaxconv.max_pool3d(X3, 2, dilation=(1, 1, 2**63))),
    (ValueError, r"min_pool2d: padding must be at most 2\*\*31 - 1",
     lambda: jaxconv.min_pool2d(X2, 2, padding=((0, 2**63), (0, 0)))),
    (ValueError, r"avg_pool1d: divisor_override must be at most 2\*\*31 - 1",
     lambda: jaxconv.avg_pool1d(X1, 2, divisor_override=-(2**63))),
    (ValueError, r"max_pool1d: the padded input size must be at most 2\*\*31 - 1",
     lambda: jaxconv.max_pool1d(X1, 2**31 - 1, padding=2**30 - 1)),
    (ValueError, r"adaptive_max_pool2d: output_size must be at most 2\*\*31 - 1",
     lambda: jaxconv.adaptive_max_pool2d(X2, (2**31, 1))),
    (ValueError, r"max_unpool2d: the flattened output size must be at most 2\*\*31 - 1",
     lambda: jaxconv.max_unpool2d(Y2, I2, 2, stride=2**30)),
    (ValueError, r"max_pool1d: x must have rank 3 \(NWC\) or 2 \(unbatched WC\), got rank 4",
     lambda: jaxconv.max_pool1d(X2, 2)),
    (ValueError, r"avg_pool3d: x must have rank 5 \(NCDHW\) or 4 \(unbatched CDHW\), got rank 3",
     lambda: jaxconv.avg_pool3d(X1, 2, data_format="NCDHW")),
    (ValueError, r"max_pool1d: data_format must be 'NWC' or 'NCW', got 'NHWC'",
     lambda: jaxconv.max_pool1d(X1, 2, data_format="NHWC")),
    (ValueError, r"global_max_pool3d: data_format must be 'NDHWC' or 'NCDHW', got 'NCHW'",
     lambda: jaxconv.global_max_pool3d(X3, data_format="NCHW")),
    (TypeError, r"max_pool3d: window must be an int or a tuple of 3 ints, got \(2, 2\)",
     lambda: jaxconv.max_pool3d(X3, (2, 2))),
    (TypeError, r"avg_pool1d: stride must be an int or a tuple of 1 int, got \(1, 1\)",
     lambda: jaxconv.avg_pool1d(X1, 2, stride=(1, 1))),
    (ValueError, r"min_pool1d: window must be >= 1, got \(0,\)",
     lambda: jaxconv.min_pool1d(X1, (0,))),
    (TypeError, r"max_pool1d: padding must be a string, an int, a tuple of 1 int or 1 \(low, "
                r"high\) pair, got \(1, 1\)",
     lambda: jaxconv.max_pool1d(X1, 2, padding=(1, 1))),
    (ValueError, r"avg_pool3d: padding must be non-negative, got \(0, -1, 0\)",
     lambda: jaxconv.avg_pool3d(X3, 2, padding=(0, -1, 0))),
    (ValueError, r"max_pool3d: padding must be at most half the window \(window=\(2, 2, 2\)\), "
                 r"got padding=\(0, 2, 0\)",
     lambda: jaxconv.max_pool3d(X3, 2, padding=(0, 2, 0))),
    (ValueError, r"max_pool1d: the window \(effective size 7 from window \(4,\), dilation \(2,\)\) "
                 r"is larger than the padded input 5 \(input 5, padding \(\(0, 0\),\)\)",
     lambda: jaxconv.max_pool1d(X1, 4, dilation=2)),
    (ValueError, r"avg_pool3d: the window \(effective size 5x5x5 .* padded input 4x5x5",
     lambda: jaxconv.avg_pool3d(X3, 5)),
    (ValueError, r"lp_pool1d: norm must be > 0, got -1", lambda: jaxconv.lp_pool1d(X1, -1)),
    (TypeError, r"max_pool2d: return_indices must be a bool, got 1",
     lambda: jaxconv.max_pool2d(X2, 2, return_indices=1)),
    (TypeError, r"adaptive_avg_pool3d: output_size must be an int or a tuple of 3 ints or None, "
                r"got \(2, 2\)",
     lambda: jaxconv.adaptive_avg_pool3d(X3, (2, 2))),
    (ValueError, r"adaptive_max_pool1d: output_size must be >= 1, got 0",
     lambda: jaxconv.adaptive_max_pool1d(X1, 0)),
    (TypeError, r"max_pool1d: x must have a floating dtype .* got int32",
     lambda: jaxconv.max_pool1d(X1.astype(np.int32), 2)),
    (ValueError, r"max_unpool2d: invalid output_size \(6, 5\) \(spatial axis 0 must be between "
                 r"2 and 6, exclusive; the default is 4\)",
     lambda: jaxconv.max_unpool2d(Y2, I2, 2, output_size=(6, 5))),
    (ValueError, r"max_unpool2d: invalid output_size \(4, 2\) \(spatial axis 1 must be between 2 "
                 r"and 6",
     lambda: jaxconv.max_unpool2d(Y2, I2, 2, output_size=(4, 2))),
    (ValueError, r"max_unpool1d: output_size must have 1 or 3 elements, got 2",
     lambda: jaxconv.max_unpool1d(X1, np.zeros((1, 5, 2), np.int32), 2, output_size=(10, 10))),
    (TypeError, r"max_unpool2d: output_size must be None or a sequence of ints, got 4",
     lambda: jaxconv.max_unpool2d(Y2, I2, 2, output_size=4)),
    (ValueError, r"max_unpool2d: indices must lie in \[0, 16\) \(the flattened output \(4, 4\)\), "
                 r"got values from 0 to 16",
     lambda: jaxconv.max_unpool2d(Y2, I2 + np.arange(8).reshape(I2.shape) * 16 // 7, 2)),
    (ValueError, r"max_unpool2d: indices must have y's shape \(1, 2, 2, 2\), got \(1, 2, 2, 1\)",
     lambda: jaxconv.max_unpool2d(Y2, I2[..., :1], 2)),
    (TypeError, r"max_unpool3d: indices must have an integer dtype, got float32",
     lambda: jaxconv.max_unpool3d(X3, X3, 2)),
    (TypeError, r"max_unpool1d: y must have a floating dtype .* got int32",
     lambda: jaxconv.max_unpool1d(X1.astype(np.int32), X1.astype(np.int32), 2)),
    (ValueError, r"max_unpool1d: the output size \(-1,\) must be >= 1",
     lambda: jaxconv.max_unpool1d(np.zeros((1, 1, 1), np.float32), np.zeros((1, 1, 1), np.int32),
                                  1, padding=1)),
]


@pytest.mark.parametrize(("error", "match", "call"), ERRORS, ids=[e[1][:48] for e in ERRORS])
def test_errors(error, match, call):
    with pytest.raises(error, match=match):
        call()


def test_errors_raised_before_tracing_under_jit():
    with pytest.raises(ValueError, match=r"max_pool3d: window must be >= 1"):
        jax.jit(lambda x: jaxconv.max_pool3d(x, 0))(X3)
    with pytest.raises(ValueError, match=r"global_avg_pool2d: x has an empty spatial axis"):
        jax.jit(jaxconv.global_avg_pool2d)(np.zeros((1, 3, 0, 2)))


# --------------------------------------------------------------------------------------------
# Large windows: no work per window tap, no padding to the window's size (structure, then values)
# --------------------------------------------------------------------------------------------


def _equations(fn, *args):
    """The number of equations in ``fn``'s jaxpr, nested jaxprs (jit, custom rules) included."""
    def count(jaxpr):
        total = 0
        for eqn in jaxpr.eqns:
            total += 1
            for param in eqn.params.values():
                for sub in param if isinstance(param, tuple | list) else (param,):
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        total += count(inner)
        return total

    return count(jax.make_jaxpr(fn)(*args).jaxpr)


def _window_dimensions(fn, *args):
    """The window sizes of every reduce_window in ``fn``'s jaxpr (nested ones included)."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if "window_dimensions" in eqn.params:
                found.extend(eqn.params["window_dimensions"])
            for param in eqn.params.values():
                for sub in param if isinstance(param, tuple | list) else (param,):
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        walk(inner)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


def test_max_pool_indices_and_gradient_do_not_grow_with_the_window(rng):
    """max_pool2d(ones((1, 64, 64, 1)), 32, return_indices=True) ran for minutes: the indices
    (and the gradient of non-overlapping windows) were built from one strided view per tap."""
    x = jnp.asarray(rng.standard_normal((1, 32, 32, 1)))

    def indices(k):
        return lambda x: jaxconv.max_pool2d(x, k, stride=1, padding=k // 2, dilation=1,
                                            return_indices=True)[1]

    def grad(k):
        return jax.grad(lambda x: jaxconv.max_pool2d(x, k).sum())

    def dilated(k):  # forward and gradient
        return jax.grad(lambda x: jaxconv.max_pool2d(x, k, stride=1, dilation=2).sum())

    assert _equations(indices(2), x) == _equations(indices(16), x)
    assert _equations(grad(2), x) == _equations(grad(16), x)
    assert _equations(dilated(2), x) == _equations(dilated(8), x)


def test_dilated_gradient_goes_to_the_first_maximum_as_in_torch(rng):
    """Ties everywhere: the cotangent of each window lands on the position its index names."""
    x = jnp.asarray(rng.integers(0, 2, size=(2, 9, 8, 2)).astype(np.float64))
    kw = dict(stride=(2, 1), padding=1, dilation=(2, 3))
    y, idx = jaxconv.max_pool2d(x, 3, return_indices=True, **kw)
    cot = rng.standard_normal(y.shape)
    g = jax.grad(lambda x: jnp.sum(jaxconv.max_pool2d(x, 3, **kw) * cot))(x)
    expected = np.zeros((2, 72, 2))
    flat_idx, flat_cot = np.asarray(idx).reshape(2, -1, 2), cot.reshape(2, -1, 2)
    for n, c in itertools.product(range(2), range(2)):
        np.add.at(expected[n, :, c], flat_idx[n, :, c], flat_cot[n, :, c])
    assert_close(g, expected.reshape(x.shape))


def test_large_window_indices_and_gradient_match_reference(rng):
    """Window 12 (144 taps) with overlap, padding and ties; then non-overlapping 8x8 windows,
    whose gradient goes to each window's first maximum in row-major order."""
    x = jnp.asarray(rng.integers(0, 4, size=(2, 20, 18, 2)).astype(np.float64))
    y, idx = jaxconv.max_pool2d(x, 12, stride=3, padding=(6, 5), return_indices=True)
    pads = ((6, 6), (5, 5))
    assert_close(y, ref.max_pool_nd(x, (12, 12), (3, 3), pads))
    np.testing.assert_array_equal(idx, ref.max_pool_indices_nd(x, (12, 12), (3, 3), pads))

    y, idx = jaxconv.max_pool2d(x[:, :16, :16], 8, return_indices=True)
    g = jax.grad(lambda x: jnp.sum(jaxconv.max_pool2d(x, 8) * jnp.arange(1.0, 9.0).reshape(
        1, 2, 2, 2)))(x[:, :16, :16])
    expected = np.zeros((2, 256, 2))
    np.put_along_axis(expected, np.asarray(idx).reshape(2, 4, 2),
                      np.arange(1.0, 9.0).reshape(1, 4, 2).repeat(2, axis=0), axis=1)
    np.testing.assert_array_equal(g, expected.reshape(2, 16, 16, 2))


def test_windows_longer_than_the_input_gather_instead_of_padding(rng):
    """avg_pool2d with a 2**30 window and 2**29 padding on a 4x4 image ran for minutes:
    reduce_window padded to 2**30 per axis. Windows longer than the input read their taps inside
    it; the results are PyTorch's (the divisor counts the padding)."""
    x = jnp.asarray(rng.standard_normal((1, 4, 4, 2)))
    k, p = 2**30, 2**29

    def avg(x):
        return jaxconv.avg_pool2d(x, k, stride=1, padding=p)

    def pool_and_indices(x):
        return jaxconv.max_pool2d(x, k, stride=1, padding=p, return_indices=True)

    assert all(w <= 4 for w in _window_dimensions(avg, x))
    assert all(w <= 4 for w in _window_dimensions(pool_and_indices, x))
    # every one of the 5x5 windows covers the whole image
    total = np.asarray(x).sum(axis=(1, 2))
    np.testing.assert_allclose(avg(x), np.broadcast_to(total / 2.0**60, (5, 5, 1, 2)).transpose(
        2, 0, 1, 3), rtol=1e-12)
    mean = jaxconv.avg_pool2d(x, k, stride=1, padding=p, count_include_pad=False)
    np.testing.assert_allclose(mean, np.broadcast_to(np.asarray(x).mean(axis=(1, 2)),
                                                     (1, 5, 5, 2)), rtol=1e-12)
    y, idx = pool_and_indices(x)
    flat = np.asarray(x).reshape(1, 16, 2)
    np.testing.assert_array_equal(y, np.broadcast_to(flat.max(axis=1), (1, 5, 5, 2)))
    np.testing.assert_array_equal(idx, np.broadcast_to(flat.argmax(axis=1), (1, 5, 5, 2)))


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_windows_longer_than_the_input_match_reference(rng, ceil_mode):
    """The gathered path against the reference: dilation, ceil_mode, ties, NaN, all pool kinds,
    and gradients to the first maximum of each window."""
    x = rng.integers(0, 3, size=(2, 5, 4, 3)).astype(np.float64)
    x[1, 2, 1, 0] = np.nan
    window, stride, dilation, pads = (3, 7), (2, 1), (3, 1), ((1, 1), (3, 3))
    kw = dict(stride=stride, padding=(1, 3), ceil_mode=ceil_mode)
    close = functools.partial(np.testing.assert_allclose, rtol=1e-12, atol=1e-12)  # NaN == NaN
    y, idx = jaxconv.max_pool2d(x, window, dilation=dilation, return_indices=True, **kw)
    close(y, ref.max_pool_nd(x, window, stride, pads, dilation, ceil_mode))
    np.testing.assert_array_equal(
        idx, ref.max_pool_indices_nd(x, window, stride, pads, dilation, ceil_mode))
    close(jaxconv.min_pool2d(x, window, dilation=dilation, **kw),
          ref.min_pool_nd(x, window, stride, pads, dilation, ceil_mode))
    for include in (True, False):
        close(jaxconv.avg_pool2d(x, window, count_include_pad=include, **kw),
              ref.avg_pool_nd(x, window, stride, pads, ceil_mode, include))
    # no padding for lp: only a ceil_mode window overhangs the input
    close(jaxconv.lp_pool2d(np.abs(x), 2, (3, 5), stride=2, ceil_mode=True),
          ref.lp_pool_nd(np.abs(x), 2, (3, 5), (2, 2), True))

    clean = np.nan_to_num(x)
    y, idx = jaxconv.max_pool2d(clean, window, dilation=dilation, return_indices=True, **kw)
    cot = rng.standard_normal(y.shape)
    g = jax.grad(lambda x: jnp.sum(jaxconv.max_pool2d(x, window, dilation=dilation, **kw) * cot))(
        clean)
    expected = np.zeros((2, 20, 3))
    flat_idx, flat_cot = np.asarray(idx).reshape(2, -1, 3), cot.reshape(2, -1, 3)
    for n, c in itertools.product(range(2), range(3)):
        np.add.at(expected[n, :, c], flat_idx[n, :, c], flat_cot[n, :, c])
    assert_close(g, expected.reshape(clean.shape))


def test_arrays_beyond_int32_are_refused_before_tracing():
    """Size products, not only each axis, must fit int32: the arrays a pool would build."""
    tall = np.zeros((1, 2**16, 1, 1), np.float32)
    with pytest.raises(ValueError, match=r"avg_pool2d: window \(1048576, 1\) gathers its taps "
                                         r"into 1x65537x65536x1x1 = \d+ elements"):
        jax.eval_shape(lambda: jaxconv.avg_pool2d(tall, (2**20, 1), stride=1, padding=(2**19, 0)))
    big = jax.ShapeDtypeStruct((1, 2**15, 2**15, 2), jnp.float32)
    with pytest.raises(ValueError, match=r"max_pool2d: padding 1 pads the input to "
                                         r"1x32770x32770x2 = 2147745800 elements"):
        jax.eval_shape(lambda x: jaxconv.max_pool2d(x, 3, stride=1, padding=1), big)
    y = np.zeros((1, 2, 2, 2**10), np.float32)
    with pytest.raises(ValueError, match=r"max_unpool2d: output size \(2048, 2048\) makes an "
                                         r"output of 1x2048x2048x1024"):
        jaxconv.max_unpool2d(y, np.zeros(y.shape, np.int32), 1024)
