"""conv2d against an independent float64 NumPy reference, for every registered algorithm.

Every test that takes ``algorithm`` runs for each name in ``jaxconv.convolution.algorithms()`` at
collection time, so an algorithm registered later is tested on the same products, and only on
the cases it serves (``_registry.applicable``, asked at collection time as ``conv2d`` asks it:
no skipped rows). ``auto`` resolves to one of them; its choice is tested on cases of its own.

The default run keeps, for each algorithm, every level of every factor (a greedy cover, see
``conftest.cover``) and a seeded sample of the rest of the product; ``JAXCONV_FULL_TESTS=1``
runs every (algorithm, case) pair.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import check_grads_together, cover, pairwise_cases
from jax.test_util import check_grads
from ref_conv import as_pair, conv2d_ref, is_valid
from scipy import signal
from tolerances import assert_close

import jaxconv
from jaxconv.convolution import _registry, algorithms, select
from jaxconv.convolution._canonical import canonicalize
from jaxconv.convolution._conv2d import _conv_core
from jaxconv.convolution._registry import ConvConfig

# The algorithms that serve 2-D problems, this file's (a dense 3x3, a 1x1 and a depthwise one
# between them reach every 2-D algorithm; the 3-D-only ones are tested in test_conv_nd.py).
ALGORITHMS = tuple(a.name for a in algorithms() if any(
    a.check((1, 8, 8, 2), ks, np.float64, ConvConfig(groups=g)) is None
    for ks, g in (((3, 3, 2, 2), 1), ((1, 1, 2, 2), 1), ((3, 3, 1, 2), 2))))


def serving(x_shape, kernel_shape, dtype=np.float64, **kwargs) -> tuple[str, ...]:
    """The registered algorithms that serve ``conv2d(x, kernel, **kwargs)``, decided as conv2d
    decides (on the canonical problem: NHWC, batched, mode padding applied)."""
    *_, canon = canonicalize(
        "conv2d", jax.ShapeDtypeStruct(x_shape, dtype), jax.ShapeDtypeStruct(kernel_shape, dtype),
        **kwargs,
    )
    return _registry.applicable(canon.x_shape, canon.kernel_shape, canon.dtype, canon.config)


# --------------------------------------------------------------------------------------------
# The product: a pairwise covering of the factors below (every pair of levels of every two
# factors appears in at least one case), built greedily and deterministically, then filtered to
# valid combinations. A full cartesian product would be ~40k compiles.

FACTORS: dict[str, list] = {
    # (N, H, W, kh, kw)
    "shape": [(2, 7, 9, 3, 3), (1, 6, 6, 1, 1), (2, 8, 5, 2, 4), (3, 10, 11, 5, 2), (1, 5, 7, 4, 4)],
    # groups -> (C, O): plain, two groups, depthwise with channel multiplier 2
    "groups": [1, 2, "depthwise"],
    "stride": [1, 2, (2, 1), (1, 3)],
    "padding": ["VALID", "SAME", "FULL", 1, (2, 0), ((1, 1), (2, 2)), ((0, 2), (3, 1))],
    "padding_mode": ["zeros", "reflect", "replicate", "circular"],
    "dilation": [1, 2, (1, 2)],
    "bias": [False, True],
    "data_format": ["NHWC", "NCHW"],
    "unbatched": [False, True],
}
CHANNELS = {1: (3, 5), 2: (4, 6), "depthwise": (3, 6)}


# The same product for the most common layer, a 3x3 kernel at stride 1 (no dilation): the one
# every algorithm serves (Winograd serves only this), so restricted algorithms get the same
# breadth of padding forms, modes, groups and layouts.
FACTORS_3X3 = {
    "shape": [(2, 5, 6, 3, 3), (1, 8, 7, 3, 3), (3, 3, 4, 3, 3)],
    "groups": FACTORS["groups"],
    "stride": [1],
    "padding": FACTORS["padding"],
    "padding_mode": FACTORS["padding_mode"],
    "dilation": [1],
    "bias": FACTORS["bias"],
    "data_format": FACTORS["data_format"],
    "unbatched": FACTORS["unbatched"],
}


def _case(levels: dict[str, int], factors=FACTORS) -> dict:
    c = {name: factors[name][i] for name, i in levels.items()}
    n, h, w, kh, kw = c.pop("shape")
    cin, o = CHANNELS[c["groups"]]
    groups = cin if c["groups"] == "depthwise" else c["groups"]
    return dict(c, n=n, h=h, w=w, kh=kh, kw=kw, c=cin, o=o, groups=groups)


def _valid(case: dict) -> bool:
    return is_valid(
        case["h"], case["w"], case["kh"], case["kw"], stride=case["stride"],
        padding=case["padding"], dilation=case["dilation"], padding_mode=case["padding_mode"],
    )


PAIRWISE, INFEASIBLE = pairwise_cases(FACTORS, lambda lv: _case(lv, FACTORS), _valid)
PAIRWISE_3X3, INFEASIBLE_3X3 = pairwise_cases(FACTORS_3X3, lambda lv: _case(lv, FACTORS_3X3),
                                              _valid)

# Hand-picked edges the pairwise product does not force.
EDGES = [
    # kernel exactly the input size: a 1x1 output
    dict(n=1, h=4, w=5, kh=4, kw=5, c=2, o=3, groups=1, stride=1, padding="VALID",
         padding_mode="zeros", dilation=1, bias=True, data_format="NHWC", unbatched=False),
    # stride larger than the kernel (pixels skipped)
    dict(n=2, h=9, w=8, kh=1, kw=2, c=2, o=2, groups=1, stride=(3, 4), padding="VALID",
         padding_mode="zeros", dilation=1, bias=False, data_format="NHWC", unbatched=False),
    # circular padding equal to the size, reflect padding one less than the size
    dict(n=1, h=3, w=4, kh=3, kw=3, c=1, o=2, groups=1, stride=1, padding=((3, 2), (4, 0)),
         padding_mode="circular", dilation=1, bias=False, data_format="NHWC", unbatched=False),
    dict(n=1, h=3, w=4, kh=2, kw=3, c=2, o=1, groups=1, stride=1, padding=((2, 1), (3, 3)),
         padding_mode="reflect", dilation=1, bias=True, data_format="NCHW", unbatched=False),
    # depthwise with multiplier 1 (groups == C == O), SAME with stride 2 and an even kernel
    dict(n=2, h=8, w=7, kh=2, kw=4, c=5, o=5, groups=5, stride=2, padding="SAME",
         padding_mode="zeros", dilation=1, bias=True, data_format="NHWC", unbatched=False),
    # a 1x1 input made usable by FULL padding; dilated kernel spanning more than the input
    dict(n=1, h=1, w=1, kh=2, kw=2, c=1, o=1, groups=1, stride=1, padding="FULL",
         padding_mode="zeros", dilation=1, bias=False, data_format="NHWC", unbatched=True),
    dict(n=1, h=4, w=4, kh=3, kw=3, c=2, o=4, groups=2, stride=1, padding=2,
         padding_mode="replicate", dilation=3, bias=False, data_format="NCHW", unbatched=True),
    # lowercase padding string, SAME + reflect with dilation and stride
    dict(n=1, h=9, w=10, kh=3, kw=3, c=2, o=2, groups=1, stride=(2, 3), padding="same",
         padding_mode="reflect", dilation=(2, 1), bias=False, data_format="NHWC", unbatched=False),
]
CASES = PAIRWISE + PAIRWISE_3X3 + EDGES


def case_id(c: dict) -> str:
    pad = c["padding"] if isinstance(c["padding"], str) else str(c["padding"]).replace(" ", "")
    return (
        f"{c['n']}x{c['h']}x{c['w']}x{c['c']}-k{c['kh']}x{c['kw']}x{c['o']}-g{c['groups']}"
        f"-s{as_pair(c['stride'])[0]}{as_pair(c['stride'])[1]}"
        f"-d{as_pair(c['dilation'])[0]}{as_pair(c['dilation'])[1]}-p{pad}-{c['padding_mode']}"
        f"{'-bias' if c['bias'] else ''}-{c['data_format']}{'-unbatched' if c['unbatched'] else ''}"
    )


def case_shapes(c: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(x.shape, kernel.shape)`` of a case, in its layout."""
    shape = (c["n"], c["h"], c["w"], c["c"])
    if c["data_format"] == "NCHW":
        shape = (shape[0], shape[3], shape[1], shape[2])
    if c["unbatched"]:
        shape = shape[1:]
    return shape, (c["kh"], c["kw"], c["c"] // c["groups"], c["o"])


def make_inputs(c: dict, rng, dtype=np.float64):
    x_shape, k_shape = case_shapes(c)
    x = rng.uniform(-1, 1, x_shape)
    k = rng.uniform(-1, 1, k_shape)
    b = rng.uniform(-1, 1, (c["o"],)) if c["bias"] else None
    cast = lambda a: None if a is None else jnp.asarray(a, dtype)  # noqa: E731
    return cast(x), cast(k), cast(b)


def conv_kwargs(c: dict) -> dict:
    return {
        k: c[k] for k in ("stride", "padding", "dilation", "groups", "padding_mode", "data_format")
    }


def reference(c: dict, x, k, b):
    f64 = lambda a: None if a is None else np.asarray(jnp.asarray(a, jnp.float64))  # noqa: E731
    return conv2d_ref(f64(x), f64(k), f64(b), **conv_kwargs(c))


def test_the_product_covers_every_pair():
    assert not INFEASIBLE, f"pairs no valid case can hold: {sorted(INFEASIBLE)}"
    assert not INFEASIBLE_3X3, f"pairs no valid case can hold: {sorted(INFEASIBLE_3X3)}"
    assert 30 <= len(PAIRWISE) <= 60, len(PAIRWISE)
    assert 25 <= len(PAIRWISE_3X3) <= 40, len(PAIRWISE_3X3)
    assert all(_valid(c) for c in CASES)


def case_serving(c: dict, dtype=np.float64) -> tuple[str, ...]:
    return serving(*case_shapes(c), dtype=dtype, **conv_kwargs(c))


def case_levels(c: dict) -> set:
    """The levels of ``FACTORS`` a case holds (the kernel size standing for the shape)."""
    held = {f: c[f] for f in FACTORS if f not in ("shape", "groups")}
    held["groups"] = "depthwise" if c["groups"] == c["c"] > 1 else c["groups"]
    held["kernel"] = (c["kh"], c["kw"])
    levels = dict(FACTORS, kernel=[s[3:] for s in FACTORS["shape"]])
    return {(f, repr(v)) for f, v in held.items() if v in levels[f]}


def _product_levels(pair) -> set:
    """Each algorithm meets every level; each edge case meets one algorithm at least."""
    a, c = pair
    edge = {("edge", EDGES.index(c))} if c in EDGES else set()
    return edge | {(a, *level) for level in case_levels(c)}


# The cover, plus a seeded sample of the rest of the product.
PRODUCT = cover([(a, c) for c in CASES for a in case_serving(c)], _product_levels,
                k=len(ALGORITHMS) * 8)


def test_every_algorithm_meets_every_level_it_serves():
    for a in ALGORITHMS:
        want = set().union(*(case_levels(c) for c in CASES if a in case_serving(c)))
        got = set().union(*(case_levels(c) for b, c in PRODUCT if b == a))
        assert want and got == want, (a, want - got)
    assert all(a in case_serving(c) for a, c in PRODUCT)


@pytest.mark.parametrize(("algorithm", "case"), PRODUCT,
                         ids=[f"{a}-{case_id(c)}" for a, c in PRODUCT])
def test_matches_reference(algorithm, case, rng):
    x, k, b = make_inputs(case, rng)
    y = jaxconv.conv2d(x, k, b, algorithm=algorithm, **conv_kwargs(case))
    assert y.dtype == jnp.float64
    assert_close(y, reference(case, x, k, b), algorithm=algorithm, err_msg=case_id(case))


# auto: what conv2d runs is what select_algorithm reports (forward, and the training choice it
# switches to under differentiation), an algorithm that serves the case, with its accuracy.

AUTO_CASES = [PAIRWISE[0], PAIRWISE_3X3[1], EDGES[0], EDGES[4]]


@pytest.mark.parametrize("case", AUTO_CASES, ids=case_id)
def test_auto_runs_the_selected_algorithm(case, rng, monkeypatch):
    chosen = {}
    choose = select.choose_algorithm

    def spy(*args, mode="forward", **kwargs):
        chosen[mode] = choose(*args, mode=mode, **kwargs)
        return chosen[mode]

    monkeypatch.setattr(select, "choose_algorithm", spy)
    x, k, b = make_inputs(case, rng)
    y = jaxconv.conv2d(x, k, b, **conv_kwargs(case))
    for mode in ("forward", "train"):
        sel = jaxconv.select_algorithm(x.shape, k.shape, dtype=x.dtype, mode=mode,
                                       **conv_kwargs(case))
        assert chosen[mode] == sel.algorithm, (mode, chosen, sel)
        assert sel.algorithm in case_serving(case)
    named = jaxconv.conv2d(x, k, b, algorithm=chosen["forward"], **conv_kwargs(case))
    np.testing.assert_array_equal(y, named)
    assert_close(y, reference(case, x, k, b), algorithm=chosen["forward"], err_msg=case_id(case))


# --------------------------------------------------------------------------------------------
# SciPy cross-checks: correlate2d is the single-channel cross-correlation.


SCIPY_CASES = [
    ("valid", "fill", "VALID", "zeros", (3, 4)),
    ("full", "fill", "FULL", "zeros", (2, 3)),
    ("same", "fill", "SAME", "zeros", (3, 5)),
    ("same", "wrap", 1, "circular", (3, 3)),
    ("same", "wrap", (2, 1), "circular", (5, 3)),
    # 'symm' mirrors *with* the edge; for a 1-pixel pad that is exactly replicate
    ("same", "symm", 1, "replicate", (3, 3)),
]


def algorithm_pairs(configs, problem) -> list[tuple]:
    """``(algorithm, *config)`` for every config and every algorithm serving ``problem(config)``
    (``(x_shape, kernel_shape, conv2d kwargs)``): each algorithm meets one config at least and
    each config one algorithm at least (every pair under ``JAXCONV_FULL_TESTS=1``)."""
    pairs = [(a, *cfg) for cfg in configs for a in serving(*problem(cfg)[:2], **problem(cfg)[2])]
    return cover(pairs, lambda p: {("algorithm", p[0]), ("config", repr(p[1:]))})


@pytest.mark.parametrize(
    ("algorithm", "mode", "boundary", "padding", "padding_mode", "ksize"),
    algorithm_pairs(SCIPY_CASES, lambda c: ((2, 7, 8, 3), (*c[4], 3, 2),
                                            dict(padding=c[2], padding_mode=c[3]))),
)
def test_matches_scipy_correlate2d(algorithm, mode, boundary, padding, padding_mode, ksize, rng):
    x = rng.normal(size=(2, 7, 8, 3))
    k = rng.normal(size=(*ksize, 3, 2))
    y = jaxconv.conv2d(x, k, algorithm=algorithm, padding=padding, padding_mode=padding_mode)
    for n in range(2):
        for o in range(2):
            expected = sum(
                signal.correlate2d(x[n, :, :, c], k[:, :, c, o], mode=mode, boundary=boundary)
                for c in range(3)
            )
            assert_close(y[n, :, :, o], expected, algorithm=algorithm)


# --------------------------------------------------------------------------------------------
# Known answers, worked out by hand (values and gradients of sum(y)).

X16 = np.arange(16.0).reshape(1, 4, 4, 1)  # x[i, j] = 4i + j
K4 = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(2, 2, 1, 1)
X9 = np.arange(9.0).reshape(1, 3, 3, 1)


@pytest.mark.parametrize("algorithm", serving(X16.shape, K4.shape))
def test_known_answer_valid(algorithm):
    y = jaxconv.conv2d(X16, K4, algorithm=algorithm)
    # y[i, j] = x[i, j+1] + 2 x[i+1, j] + 3 x[i+1, j+1] = 24 i + 6 j + 24
    np.testing.assert_allclose(y[0, :, :, 0], [[24, 30, 36], [48, 54, 60], [72, 78, 84]])

    def loss(x, k):
        return jaxconv.conv2d(x, k, algorithm=algorithm).sum()

    dx, dk = jax.grad(loss, argnums=(0, 1))(jnp.asarray(X16), jnp.asarray(K4))
    # d/dx: the sum of the kernel taps that touch each pixel (an algorithm whose error is
    # relative to the largest output, such as fft, leaves ~1e-16 where the answer is 0)
    global_error = _registry.get(algorithm).error == "global"
    atol = 1e-14 if global_error else 0
    np.testing.assert_allclose(
        dx[0, :, :, 0], [[0, 1, 1, 1], [2, 6, 6, 4], [2, 6, 6, 4], [2, 5, 5, 3]], atol=atol
    )
    # d/dk[a, b]: the sum of x[a:a+3, b:b+3]
    np.testing.assert_allclose(dk[:, :, 0, 0], [[45, 54], [81, 90]])


@pytest.mark.parametrize("algorithm", serving((1, 4, 4), (2, 2, 1, 2), stride=2, data_format="NCHW"))
def test_known_answer_stride_bias_unbatched_nchw(algorithm):
    x = X16[0].transpose(2, 0, 1)  # (C, H, W) = (1, 4, 4)
    y = jaxconv.conv2d(x, np.ones((2, 2, 1, 2)), np.array([0.5, -1.0]), algorithm=algorithm,
                       stride=2, data_format="NCHW")
    assert y.shape == (2, 2, 2)
    np.testing.assert_allclose(y[0], [[10.5, 18.5], [42.5, 50.5]])
    np.testing.assert_allclose(y[1], [[9, 17], [41, 49]])


@pytest.mark.parametrize("algorithm", sorted(
    set.intersection(*(set(serving(X9.shape, (3, 3, 1, 1), stride=2, padding=1, padding_mode=m))
                       for m in ("zeros", "reflect", "replicate", "circular")))))
def test_known_answer_padding_modes(algorithm):
    ones = np.ones((3, 3, 1, 1))
    kw = dict(algorithm=algorithm, stride=2, padding=1)
    # x = [[0,1,2],[3,4,5],[6,7,8]] reflect-padded by 1:
    #   4 3 4 5 4 / 1 0 1 2 1 / 4 3 4 5 4 / 7 6 7 8 7 / 4 3 4 5 4
    reflect = jaxconv.conv2d(X9, ones, padding_mode="reflect", **kw)
    np.testing.assert_allclose(reflect[0, :, :, 0], [[24, 30], [42, 48]])
    # replicate: rows/cols index [0,0,1,2,2]; window sum = 9 * sum(rows) + 3 * sum(cols)
    replicate = jaxconv.conv2d(X9, ones, padding_mode="replicate", **kw)
    np.testing.assert_allclose(replicate[0, :, :, 0], [[12, 24], [48, 60]])
    # circular: rows/cols index [2,0,1,2,0]; each window holds a permutation of every row/col
    circular = jaxconv.conv2d(X9, ones, padding_mode="circular", **kw)
    np.testing.assert_allclose(circular[0, :, :, 0], [[36, 36], [36, 36]])
    zeros = jaxconv.conv2d(X9, ones, padding_mode="zeros", **kw)
    # zeros: each window sees a 2x2 corner block of x
    np.testing.assert_allclose(zeros[0, :, :, 0], [[8, 12], [20, 24]])

    # Reflected pixels send their gradient back to the pixel they copy: padded rows map to
    # [1, 0, 1, 2, 1] and are covered [1, 1, 2, 1, 1] times -> per-row weight [1, 4, 1].
    dx = jax.grad(lambda x: jaxconv.conv2d(x, ones, padding_mode="reflect", **kw).sum())(
        jnp.asarray(X9))
    np.testing.assert_allclose(dx[0, :, :, 0], [[1, 4, 1], [4, 16, 4], [1, 4, 1]])


@pytest.mark.parametrize("algorithm", serving(X16.shape, (3, 3, 1, 1), padding="SAME"))
def test_known_answer_3x3_same(algorithm):
    box = np.ones((3, 3, 1, 1))
    y = jaxconv.conv2d(X16, box, algorithm=algorithm, padding="SAME")
    np.testing.assert_allclose(
        y[0, :, :, 0], [[10, 18, 24, 18], [27, 45, 54, 39], [51, 81, 90, 63], [42, 66, 72, 50]]
    )
    dx, dk = jax.grad(lambda x, k: jaxconv.conv2d(x, k, algorithm=algorithm, padding="SAME").sum(),
                      argnums=(0, 1))(jnp.asarray(X16), jnp.asarray(box))
    # windows covering each pixel: (rows [2, 3, 3, 2]) x (cols [2, 3, 3, 2])
    np.testing.assert_allclose(
        dx[0, :, :, 0], [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]
    )
    # dk[a, b] = sum of x over rows R_a x cols C_b (R_0 = 0..2, R_1 = 0..3, R_2 = 1..3)
    np.testing.assert_allclose(dk[:, :, 0, 0], [[45, 66, 54], [84, 120, 96], [81, 114, 90]])


@pytest.mark.parametrize("algorithm", serving((1, 4, 4, 2), (2, 2, 1, 2), groups=2, dilation=2))
def test_known_answer_depthwise_dilated(algorithm):
    # Two channels, groups=2: channel 1 is channel 0 + 16; kernel taps only the 4 corners of a
    # 3x3 window via dilation 2 on a 2x2 kernel.
    x = np.concatenate([X16, X16 + 16], axis=-1)
    k = np.ones((2, 2, 1, 2))
    k[..., 1] = -1.0
    y = jaxconv.conv2d(x, k, algorithm=algorithm, groups=2, dilation=2)
    # corners of x[i:i+3, j:j+3]: 4 * (4i + j) + 2*4*2 + 2*2*... = 16 i + 4 j + 20
    np.testing.assert_allclose(y[0, :, :, 0], [[20, 24], [36, 40]])
    np.testing.assert_allclose(y[0, :, :, 1], -(np.array([[20, 24], [36, 40]]) + 64))


# --------------------------------------------------------------------------------------------
# Gradients: conv is bilinear in (x, kernel) and affine in bias, so central differences with
# eps=1 are exact for first order and for forward-over-forward (jvp is jointly quadratic in
# primals and tangents). Reverse-over-reverse as check_grads builds it, vjp(f)(p)(f(p)), is
# *cubic* when x and kernel move together, so it is checked for (x, bias) and for kernel
# separately: each is affine, and eps=1 is exact again.

GRAD_CASES = [
    dict(x=(1, 3, 4, 2), k=(2, 2, 2, 1), kw=dict(padding="FULL", padding_mode="replicate")),
    dict(x=(2, 6, 5, 4), k=(3, 2, 2, 4),
         kw=dict(stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2,
                 padding_mode="circular")),
    dict(x=(3, 5, 4), k=(3, 3, 1, 3),
         kw=dict(padding="SAME", padding_mode="reflect", data_format="NCHW", groups=3)),
]


# Each case with the algorithms it is paired with (every algorithm meets one case at least;
# every pair under JAXCONV_FULL_TESTS=1), checked together: one program per derivative, and on
# a failure the message names the algorithm.
_GRAD_PAIRS = algorithm_pairs([(i,) for i in range(len(GRAD_CASES))],
                              lambda c: (GRAD_CASES[c[0]]["x"], GRAD_CASES[c[0]]["k"],
                                         GRAD_CASES[c[0]]["kw"]))
GRAD_GROUPS = [(tuple(a for a, j in _GRAD_PAIRS if j == i), c) for i, c in enumerate(GRAD_CASES)]


def _check_bilinear(f, x, k, b):
    check_grads(f, (x, k, b), order=2, modes=("fwd",), eps=1.0)
    check_grads(lambda x, b: f(x, k, b), (x, b), order=2, modes=("rev",), eps=1.0)
    check_grads(lambda k: f(x, k, b), (k,), order=2, modes=("rev",), eps=1.0)


@pytest.mark.parametrize(("algorithms", "case"), GRAD_GROUPS,
                         ids=[str(c["kw"]) for _, c in GRAD_GROUPS])
def test_check_grads(algorithms, case, rng):
    x = rng.normal(size=case["x"])
    k = rng.normal(size=case["k"])
    b = rng.normal(size=case["k"][-1:])
    named = {a: (lambda x, k, b, a=a: jaxconv.conv2d(x, k, b, algorithm=a, **case["kw"]))
             for a in algorithms}
    check_grads_together(named, lambda f: _check_bilinear(f, x, k, b))


# --------------------------------------------------------------------------------------------
# Transformations: jit, vmap, outer jit + vmap, no retrace.

TRANSFORM_KW = dict(stride=(2, 1), padding=((1, 2), (0, 1)), padding_mode="reflect", dilation=(1, 2))


@pytest.mark.parametrize("algorithm", serving((2, 7, 6, 3), (3, 2, 3, 4), **TRANSFORM_KW))
def test_jit_equals_eager(algorithm, rng):
    x, k, b = rng.normal(size=(2, 7, 6, 3)), rng.normal(size=(3, 2, 3, 4)), rng.normal(size=4)
    eager = jaxconv.conv2d(x, k, b, algorithm=algorithm, **TRANSFORM_KW)
    jitted = jax.jit(lambda x, k, b: jaxconv.conv2d(x, k, b, algorithm=algorithm, **TRANSFORM_KW))
    np.testing.assert_allclose(jitted(x, k, b), eager, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("algorithm", serving((2, 6, 5, 2), (2, 2, 2, 3), **TRANSFORM_KW))
def test_vmap_equals_loop(algorithm, rng):
    x = rng.normal(size=(3, 2, 6, 5, 2))  # a batch of NHWC batches
    ks = rng.normal(size=(3, 2, 2, 2, 3))  # a batch of kernels
    k = ks[0]

    def f(x, k):
        return jaxconv.conv2d(x, k, algorithm=algorithm, **TRANSFORM_KW)

    loop_x = np.stack([f(xi, k) for xi in x])
    np.testing.assert_allclose(jax.vmap(f, in_axes=(0, None))(x, k), loop_x, rtol=1e-13)
    loop_k = np.stack([f(x[0], ki) for ki in ks])
    np.testing.assert_allclose(jax.vmap(f, in_axes=(None, 0))(x[0], ks), loop_k, rtol=1e-13)
    loop_xk = np.stack([f(xi, ki) for xi, ki in zip(x, ks, strict=True)])
    np.testing.assert_allclose(jax.vmap(f)(x, ks), loop_xk, rtol=1e-13)
    # vmap over single images of an unbatched call == one batched call
    unbatched = jax.vmap(f, in_axes=(0, None))(x[0], k)
    np.testing.assert_allclose(unbatched, f(x[0], k), rtol=1e-13)


@pytest.mark.parametrize("algorithm", serving((1, 5, 6, 2), (2, 3, 2, 3), padding="SAME"))
def test_under_outer_jit_and_vmap_and_grad(algorithm, rng):
    x, k = rng.normal(size=(4, 5, 6, 2)), rng.normal(size=(2, 3, 2, 3))

    def loss(k, x):
        return jnp.sum(jaxconv.conv2d(x, k, algorithm=algorithm, padding="SAME") ** 2)

    per_example = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(k, x[:, None])
    loop = np.stack([jax.grad(loss)(k, x[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(per_example, loop, rtol=1e-12)


def test_no_retrace_on_repeated_calls(rng):
    x = jnp.asarray(rng.normal(size=(1, 13, 11, 2)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(3, 3, 2, 1)), jnp.float32)
    jaxconv.conv2d(x, k)
    before = _conv_core._cache_size()
    jaxconv.conv2d(x, k)
    jaxconv.conv2d(x + 1, k * 2)
    # Equivalent spellings canonicalize to the same static configuration
    jaxconv.conv2d(x, k, stride=(1, 1), padding="valid", dilation=(1, 1), groups=1)
    jaxconv.conv2d(x, k, padding=0, algorithm="auto")
    jaxconv.conv2d(x, k, padding=((0, 0), (0, 0)), padding_mode="zeros", data_format="nhwc")
    assert _conv_core._cache_size() == before
    jaxconv.conv2d(x, k, stride=2)  # a new static config does compile once
    assert _conv_core._cache_size() == before + 1


# --------------------------------------------------------------------------------------------
# Dtypes: preserved, and accurate per the tolerance table against the float64 reference of the
# same rounded inputs.

DTYPE_CASES = [PAIRWISE[0], PAIRWISE_3X3[1], EDGES[4]]


# Every (algorithm, dtype) pair, each case at least once (every triple in the full tier).
DTYPE_TRIPLES = cover(
    [(a, d, c) for c in DTYPE_CASES for d in ("float32", "bfloat16", "float16")
     for a in case_serving(c, dtype=d)],
    lambda t: {(t[0], t[1]), case_id(t[2])},
)


@pytest.mark.parametrize(("algorithm", "dtype", "case"), DTYPE_TRIPLES,
                         ids=[f"{a}-{d}-{case_id(c)}" for a, d, c in DTYPE_TRIPLES])
def test_low_precision_dtypes(algorithm, dtype, case, rng):
    x, k, b = make_inputs(case, rng, dtype=jnp.dtype(dtype))
    y = jaxconv.conv2d(x, k, b, algorithm=algorithm, precision="highest", **conv_kwargs(case))
    assert y.dtype == jnp.dtype(dtype)
    assert_close(y, reference(case, x, k, b), algorithm=algorithm, err_msg=case_id(case))


def test_dtype_promotion(rng):
    x32 = jnp.asarray(rng.normal(size=(1, 4, 4, 1)), jnp.float32)
    k64 = jnp.asarray(rng.normal(size=(2, 2, 1, 1)), jnp.float64)
    assert jaxconv.conv2d(x32, k64).dtype == jnp.float64
    assert jaxconv.conv2d(x32, k64.astype(jnp.float16)).dtype == jnp.float32
    # bias follows the output dtype
    k32 = jnp.ones((2, 2, 1, 1), jnp.float32)
    assert jaxconv.conv2d(x32, k32, jnp.ones(1, jnp.float64)).dtype == jnp.float32


PRECISIONS = [None, "default", "highest", jax.lax.Precision.HIGH, ("highest", "highest")]


@pytest.mark.parametrize(("algorithm", "precision"), algorithm_pairs(
    [(p,) for p in PRECISIONS], lambda p: ((1, 6, 6, 2), (3, 3, 2, 2), dict(precision=p[0]))))
def test_precision_is_accepted(algorithm, precision, rng):
    x = jnp.asarray(rng.normal(size=(1, 6, 6, 2)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(3, 3, 2, 2)), jnp.float32)
    y = jaxconv.conv2d(x, k, algorithm=algorithm, precision=precision)
    # Lower precisions (bf16 passes on GPU/TPU) are loose; this only checks it is honoured.
    np.testing.assert_allclose(y, conv2d_ref(x, k), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize(("precision", "expected"), [
    ("highest", "HIGHEST"), ("HIGH", "HIGH"), (jax.lax.Precision.DEFAULT, "DEFAULT"),
])
def test_precision_reaches_lax(precision, expected):
    x = jnp.ones((1, 4, 4, 1), jnp.float32)
    k = jnp.ones((2, 2, 1, 1), jnp.float32)
    jaxpr = str(jax.make_jaxpr(
        lambda x, k: jaxconv.conv2d(x, k, algorithm="direct", precision=precision)
    )(x, k))
    assert f"Precision.{expected}" in jaxpr, jaxpr


def test_numpy_float64_inputs_without_x64_give_float32_silently():
    # NumPy's default dtype is float64; with x64 off (JAX's default) conv2d must truncate it to
    # float32 like jnp.asarray does, without a warning. x64 is on in this process, hence a child.
    code = (
        "import numpy as np, jaxconv\n"
        "y = jaxconv.conv2d(np.ones((1, 4, 4, 1)), np.ones((2, 2, 1, 1)), np.ones(1))\n"
        "assert y.dtype == np.float32, y.dtype\n"
        "assert float(y[0, 0, 0, 0]) == 5.0\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
