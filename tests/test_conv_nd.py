"""conv1d, conv3d and conv (any rank) against the independent float64 N-d NumPy reference.

Every algorithm that serves 1-D / 3-D (``direct`` and ``fft``) runs on a seeded product of
shapes, groups, strides, every padding form, padding modes, dilations, bias, data formats and
unbatched inputs (every level of every factor appears; see ``test_the_cases_cover_every_level``),
only on the cases it serves. The default run keeps every level for each algorithm and a seeded
sample of the rest (``JAXCONV_FULL_TESTS=1``: every pair). ``auto`` resolves to one of them: it
runs on its own cases. The 2-D-only algorithms must refuse with a reason.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compositions import composed
from conftest import cover
from jax.test_util import check_grads
from ref_conv import conv_ref, is_valid_nd
from tolerances import assert_close

import jaxconv
from jaxconv.convolution import ConvConfig, _registry, cache, fft, select
from jaxconv.convolution._canonical import canonicalize

FNS = {1: jaxconv.conv1d, 3: jaxconv.conv3d}
LAYOUTS = {1: ("NWC", "NCW"), 3: ("NDHWC", "NCDHW")}


def serving(spatial: int) -> tuple[str, ...]:
    """Registered algorithms whose check accepts a ``spatial``-D problem (direct, fft)."""
    x = (1, *(8,) * spatial, 2)
    k = ((3,) * spatial + (2, 2))
    cfg = ConvConfig(stride=(1,) * spatial, padding=((0, 0),) * spatial,
                     dilation=(1,) * spatial)
    return _registry.applicable(x, k, np.float32, cfg)


ALGS_ND = tuple(sorted(set(serving(1)) | set(serving(3))))

FACTORS = {
    1: {
        # (N, W, k)
        "shape": [(2, 9, 3), (1, 7, 1), (3, 12, 4), (1, 16, 5)],
        "groups": [1, 2, "depthwise"],
        "stride": [1, 2, 3],
        "padding": ["VALID", "SAME", "FULL", 1, (2,), ((0, 3),)],
        "padding_mode": ["zeros", "reflect", "replicate", "circular"],
        "dilation": [1, 2],
        "bias": [False, True],
        "data_format": list(LAYOUTS[1]),
        "unbatched": [False, True],
    },
    3: {
        # (N, D, H, W, kd, kh, kw)
        "shape": [(1, 4, 5, 6, 2, 3, 2), (2, 5, 4, 4, 3, 1, 2), (1, 3, 6, 5, 1, 2, 3)],
        "groups": [1, 2, "depthwise"],
        "stride": [1, 2, (1, 2, 3)],
        "padding": ["VALID", "SAME", "FULL", 1, (1, 0, 2), ((0, 1), (2, 0), (1, 1))],
        "padding_mode": ["zeros", "reflect", "replicate", "circular"],
        "dilation": [1, (2, 1, 1)],
        "bias": [False, True],
        "data_format": list(LAYOUTS[3]),
        "unbatched": [False, True],
    },
}
CHANNELS = {1: (3, 5), 2: (4, 6), "depthwise": (3, 6)}
N_CASES = {1: 16, 3: 10}


def _case(spatial, levels):
    c = {name: FACTORS[spatial][name][i] for name, i in levels.items()}
    shape = c.pop("shape")
    n, size, ksize = shape[0], shape[1:1 + spatial], shape[1 + spatial:]
    cin, o = CHANNELS[c["groups"]]
    groups = cin if c["groups"] == "depthwise" else c["groups"]
    return dict(c, n=n, size=size, ksize=ksize, c=cin, o=o, groups=groups, spatial=spatial)


def _valid(case):
    return is_valid_nd(case["size"], case["ksize"], stride=case["stride"],
                       padding=case["padding"], dilation=case["dilation"],
                       padding_mode=case["padding_mode"])


def make_cases(spatial):
    """At least ``N_CASES`` valid cases, seeded, until every level of every factor is used: each
    new case forces one level not yet seen and draws the other factors at random."""
    rnd = np.random.default_rng(spatial)
    factors = FACTORS[spatial]
    uncovered = [(f, i) for f, v in factors.items() for i in range(len(v))]
    cases = []
    while uncovered or len(cases) < N_CASES[spatial]:
        target = uncovered[0] if uncovered else None
        for _ in range(200):
            levels = {f: int(rnd.integers(0, len(v))) for f, v in factors.items()}
            if target is not None:
                levels[target[0]] = target[1]
            case = _case(spatial, levels)
            if _valid(case):
                break
        else:
            raise AssertionError(f"no valid {spatial}-D case with {target}")
        cases.append(case)
        uncovered = [(f, i) for f, i in uncovered if levels[f] != i]
    return cases


CASES = [c for sp in (1, 3) for c in make_cases(sp)]


def _id(c):
    return (f"{c['spatial']}d-{c['n']}x{'x'.join(map(str, c['size']))}x{c['c']}-"
            f"k{'x'.join(map(str, c['ksize']))}x{c['o']}-g{c['groups']}-s{c['stride']}-"
            f"p{c['padding']}-{c['padding_mode']}-d{c['dilation']}"
            f"{'-bias' if c['bias'] else ''}-{c['data_format']}"
            f"{'-unbatched' if c['unbatched'] else ''}").replace(" ", "")


def _kw(c):
    return dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
                groups=c["groups"], padding_mode=c["padding_mode"], data_format=c["data_format"])


def case_serving(c) -> tuple[str, ...]:
    """The algorithms that serve a case, as ``conv`` decides (on the canonical problem)."""
    x_shape = (c["n"], *c["size"], c["c"])
    if c["data_format"][1] == "C":
        x_shape = (x_shape[0], x_shape[-1], *x_shape[1:-1])
    k_shape = (*c["ksize"], c["c"] // c["groups"], c["o"])
    *_, canon = canonicalize("conv", jax.ShapeDtypeStruct(x_shape[c["unbatched"]:], np.float64),
                             jax.ShapeDtypeStruct(k_shape, np.float64), spatial=c["spatial"],
                             **_kw(c))
    return _registry.applicable(canon.x_shape, canon.kernel_shape, canon.dtype, canon.config)


def _levels(pair) -> set:
    a, c = pair
    return {(a, c["spatial"], f, repr(c[f])) for f in ("groups", "stride", "padding",
                                                        "padding_mode", "dilation", "bias",
                                                        "data_format", "unbatched", "ksize")}


# Each algorithm on every level of every factor, per rank, plus a seeded sample of the rest.
PRODUCT = cover([(a, c) for c in CASES for a in case_serving(c)], _levels, k=30)


def test_the_cases_cover_every_level():
    for sp in (1, 3):
        cases = [c for c in CASES if c["spatial"] == sp]
        for f, levels in FACTORS[sp].items():
            if f == "shape":
                seen = {(c["n"], *c["size"], *c["ksize"]) for c in cases}
            elif f == "groups":
                seen = {("depthwise" if c["groups"] == c["c"] == 3 else c["groups"]) for c in cases}
            else:
                seen = {repr(c[f]) for c in cases}
                levels = [repr(v) for v in levels]
            missing = [v for v in levels if v not in seen]
            assert not missing, f"{sp}-D {f}: levels {missing} never tested"


def test_algorithms_serving_each_rank():
    assert set(serving(1)) == {"direct", "fft"}
    assert set(serving(3)) == {"direct", "fft", "depth_direct", "depth_mec"}
    assert "direct" in serving(2) and "im2col" in serving(2)
    assert not {"depth_direct", "depth_mec"} & set(serving(2))
    with pytest.raises(ValueError, match=r"^conv2d: algorithm='depth_mec' cannot serve these "
                       r"arguments: depth_mec serves 3-D convolutions \(got 2 spatial dims\)\. "
                       r"Algorithms that can: 'direct'"):
        jaxconv.conv2d(np.ones((1, 5, 5, 2)), np.ones((3, 3, 2, 2)), algorithm="depth_mec")


def test_the_product_keeps_every_level():
    full = [(a, c) for c in CASES for a in case_serving(c)]
    assert set().union(*map(_levels, PRODUCT)) == set().union(*map(_levels, full))
    assert {a for a, _ in PRODUCT} == set(ALGS_ND)


@pytest.mark.parametrize(("algorithm", "case"), PRODUCT,
                         ids=[f"{a}-{_id(c)}" for a, c in PRODUCT])
def test_matches_reference(algorithm, case, rng):
    sp = case["spatial"]
    x = rng.normal(size=(case["n"], *case["size"], case["c"]))
    k = rng.normal(size=(*case["ksize"], case["c"] // case["groups"], case["o"]))
    b = rng.normal(size=case["o"]) if case["bias"] else None
    if case["data_format"][1] == "C":
        x = np.moveaxis(x, -1, 1)
    if case["unbatched"]:
        x = x[0]
    kw = _kw(case)
    y = FNS[sp](x, k, b, algorithm=algorithm, **kw)
    ref = conv_ref(x, k, b, **kw)
    assert_close(y, ref, algorithm=algorithm)
    # conv() with the same kernel dispatches on its rank and gives the same result
    np.testing.assert_array_equal(jaxconv.conv(x, k, b, algorithm=algorithm, **kw), y)


@pytest.mark.parametrize("algorithm", ("auto", *ALGS_ND))
def test_float32(algorithm, rng):
    if algorithm in ("auto", *serving(1)):
        x = rng.normal(size=(2, 40, 3)).astype(np.float32)
        k = rng.normal(size=(7, 3, 4)).astype(np.float32)
    else:  # the 3-D-only algorithms
        x = rng.normal(size=(2, 9, 8, 7, 3)).astype(np.float32)
        k = rng.normal(size=(3, 3, 3, 3, 4)).astype(np.float32)
    y = jaxconv.conv(x, k, algorithm=algorithm, padding="SAME")
    assert y.dtype == jnp.float32
    assert_close(y, conv_ref(x, k, padding="SAME"), algorithm=None if algorithm == "auto"
                 else algorithm)


def test_conv_dispatches_on_the_kernel_rank(rng):
    x2, k2 = rng.normal(size=(2, 6, 7, 4)), rng.normal(size=(3, 2, 2, 6))
    kw = dict(stride=(2, 1), padding="SAME", groups=2, padding_mode="reflect")
    np.testing.assert_array_equal(jaxconv.conv(x2, k2, **kw), jaxconv.conv2d(x2, k2, **kw))
    xc = np.moveaxis(x2, -1, 1)
    np.testing.assert_array_equal(jaxconv.conv(xc, k2, groups=2, data_format="NCHW"),
                                  jaxconv.conv2d(xc, k2, groups=2, data_format="NCHW"))
    x1, k1 = rng.normal(size=(2, 9, 4)), rng.normal(size=(3, 4, 2))
    np.testing.assert_array_equal(jaxconv.conv(x1, k1, padding=1), jaxconv.conv1d(x1, k1, padding=1))
    x3, k3 = rng.normal(size=(3, 4, 5, 2)), rng.normal(size=(2, 2, 2, 2, 3))  # unbatched
    np.testing.assert_array_equal(jaxconv.conv(x3, k3), jaxconv.conv3d(x3, k3))


def test_known_answers():
    x = np.arange(6.0).reshape(1, 6, 1)
    y = jaxconv.conv1d(x, np.array([1.0, -1.0]).reshape(2, 1, 1), padding="FULL")
    np.testing.assert_allclose(y[0, :, 0], [0, -1, -1, -1, -1, -1, 5])
    # circular: [5, 0, 1, 2, 3, 4, 5, 0] summed by threes
    y = jaxconv.conv1d(x, np.ones((3, 1, 1)), padding=1, padding_mode="circular")
    np.testing.assert_allclose(y[0, :, 0], [6, 3, 6, 9, 12, 9])
    v = np.arange(27.0).reshape(1, 3, 3, 3, 1)  # v[d, h, w] = 9 d + 3 h + w
    y = jaxconv.conv3d(v, np.ones((2, 2, 2, 1, 1)), stride=2, padding="SAME", bias=[0.5])
    # windows: 8 corners at the origin, 1-wide slabs at the far faces (SAME pads at the end)
    assert y.shape == (1, 2, 2, 2, 1)
    np.testing.assert_allclose(y[0, 0, 0, 0, 0], (0 + 1 + 3 + 4 + 9 + 10 + 12 + 13) + 0.5)
    np.testing.assert_allclose(y[0, 1, 1, 1, 0], 26.5)


# --------------------------------------------------------------------------------------------
# Gradients (see tests/test_conv.py: eps=1 is exact for a bilinear op), jit, vmap.

GRAD_CASES = [
    dict(x=(2, 7, 4), k=(3, 2, 4), kw=dict(stride=2, padding="SAME", dilation=2, groups=2,
                                            padding_mode="reflect")),
    dict(x=(3, 1, 6), k=(4, 1, 2), kw=dict(padding="FULL", padding_mode="circular",
                                            data_format="NCW")),
    dict(x=(1, 3, 4, 3, 2), k=(2, 2, 1, 2, 2), kw=dict(stride=(1, 2, 1), padding=1,
                                                      padding_mode="replicate")),
]
# The depth-lowered algorithms: the depth taps' stride, dilation and the groups through the
# stacking.
DEPTH_GRAD_CASE = dict(x=(2, 7, 4, 3, 4), k=(2, 2, 2, 2, 4),
                       kw=dict(stride=(2, 1, 1), dilation=(2, 1, 1), groups=2,
                               padding=((1, 0), (0, 1), (1, 1))))

# fft: second order through the transforms compiles slowly, so first order on two cases
GRAD_PARAMS = [("direct", c, 2) for c in GRAD_CASES] + [("fft", GRAD_CASES[0], 1),
                                                          ("fft", GRAD_CASES[2], 1)] + [
    (a, c, 1) for a in ("depth_direct", "depth_mec") for c in (GRAD_CASES[-1], DEPTH_GRAD_CASE)]


@pytest.mark.parametrize(("algorithm", "case", "order"), GRAD_PARAMS,
                         ids=lambda v: f"{len(v['k']) - 2}d-{v['kw']}" if isinstance(v, dict)
                         else str(v))
def test_check_grads(algorithm, case, order, rng):
    assert algorithm in ALGS_ND
    x = rng.normal(size=case["x"])
    k = rng.normal(size=case["k"])
    b = rng.normal(size=case["k"][-1:])

    @jax.jit
    def f(x, k, b):
        return jaxconv.conv(x, k, b, algorithm=algorithm, **case["kw"])

    check_grads(f, (x, k, b), order=order, modes=("fwd",), eps=1.0)
    check_grads(lambda x, b: f(x, k, b), (x, b), order=order, modes=("rev",), eps=1.0)
    check_grads(lambda k: f(x, k, b), (k,), order=order, modes=("rev",), eps=1.0)


@pytest.mark.parametrize(("algorithm", "spatial"),
                         [(a, sp) for a in ALGS_ND for sp in (1, 3) if a in serving(sp)])
def test_jit_vmap(algorithm, spatial, rng):
    fn = FNS[spatial]
    kw = dict(stride=2, padding="SAME", padding_mode="reflect")
    x = rng.normal(size=(3, 2, *(5,) * spatial, 2))  # a batch of batches
    ks = rng.normal(size=(3, *(2,) * spatial, 2, 3))

    def f(x, k):
        return fn(x, k, algorithm=algorithm, **kw)

    eager = f(x[0], ks[0])
    np.testing.assert_allclose(jax.jit(f)(x[0], ks[0]), eager, rtol=1e-14, atol=1e-14)
    loop = np.stack([f(xi, ki) for xi, ki in zip(x, ks, strict=True)])
    np.testing.assert_allclose(jax.vmap(f)(x, ks), loop, rtol=1e-12, atol=1e-13)
    # vmap over unbatched inputs == one batched call
    np.testing.assert_allclose(jax.vmap(f, in_axes=(0, None))(x[0], ks[0]), eager, rtol=1e-12,
                               atol=1e-13)


# --------------------------------------------------------------------------------------------
# fft on 1-D and 3-D: long kernels, robustness (non-finite inputs, huge values), auto's rule.


def test_fft_and_direct_agree_on_a_long_1d_kernel(rng):
    x = rng.normal(size=(1, 4096, 1)).astype(np.float32)
    k = rng.normal(size=(513, 1, 1)).astype(np.float32)
    ref = conv_ref(x, k)
    for algorithm in ("direct", "fft"):
        y = jaxconv.conv1d(x, k, algorithm=algorithm)
        assert_close(y, ref, algorithm=algorithm)
    # overlap-save blocks along the one axis, and one FFT of the whole signal
    cfg = ConvConfig(stride=(1,), padding=((0, 0),), dilation=(1,))
    assert fft.choose_tiles(x.shape, k.shape, cfg) is not None
    whole = fft.conv_fft(jnp.asarray(x), jnp.asarray(k), cfg, tiles=None)
    assert_close(whole, ref, algorithm="fft")


@pytest.mark.parametrize("spatial", [1, 3])
def test_fft_confines_non_finite_inputs(spatial, rng):
    fn = FNS[spatial]
    size = (40,) if spatial == 1 else (5, 6, 4)
    x = rng.normal(size=(2, *size, 2))
    k = rng.normal(size=(*(3,) * spatial, 2, 2))
    bad = x.copy()
    where = (0, *(s // 2 for s in size), 1)
    bad[where] = np.inf
    y = np.asarray(fn(bad, k, algorithm="fft", padding=1))
    expect = np.asarray(fn(bad, k, algorithm="direct", padding=1))
    np.testing.assert_array_equal(np.isnan(y) | np.isinf(y), ~np.isfinite(expect))
    ok = np.isfinite(expect)
    np.testing.assert_allclose(y[ok], expect[ok], rtol=1e-9, atol=1e-9)
    assert np.isfinite(y[1]).all()  # the other image is untouched


@pytest.mark.parametrize("spatial", [1, 3])
def test_fft_scales_huge_inputs(spatial, rng):
    fn = FNS[spatial]
    size = (64,) if spatial == 1 else (4, 5, 6)
    x = (rng.normal(size=(1, *size, 1)) * 1e36).astype(np.float32)
    k = (rng.normal(size=(*(3,) * spatial, 1, 1)) * 10).astype(np.float32)
    y = fn(x, k, algorithm="fft")
    assert np.isfinite(np.asarray(y)).all()
    assert_close(y, conv_ref(x, k), algorithm="fft")


def test_auto_estimates_1d():
    """1-D problems are estimated like 2-D ones (no tap rule): the 4097-tap signal, where the
    FFT's advantage is largest, goes to fft; precision='highest' excludes it."""
    long = jaxconv.select_algorithm((1, 65536, 1), (4097, 1, 1), backend="cpu")
    assert long.algorithm == "fft", str(long)
    assert set(long.costs) == {"direct", "fft"}
    assert jaxconv.select_algorithm((1, 65536, 1), (4097, 1, 1), precision="highest",
                                    backend="cpu").algorithm == "direct"
    # channels-first layout name and unbatched shapes
    sel = jaxconv.select_algorithm((2, 65536), (4097, 2, 1), data_format="NCW", backend="cpu")
    assert sel.x_shape == (1, 65536, 2) and set(sel.costs) == {"direct", "fft"}


def test_select_for_3d_and_its_table():
    sel = jaxconv.select_algorithm((2, 8, 8, 8, 3), (3, 3, 3, 3, 4), backend="cpu")
    assert set(sel.costs) == {"direct", "fft", "depth_direct", "depth_mec"}
    assert sel.unsupported["im2col"] == "im2col serves 2-D convolutions (got 3 spatial dims)"
    text = str(sel)
    assert "(NDHWC)" in text and "(DHWIO)" in text
    # the 2-D path is unchanged: a 2-D problem still reports NHWC
    assert "(NHWC)" in str(jaxconv.select_algorithm((1, 8, 8, 3), (3, 3, 3, 2), backend="cpu"))


@pytest.mark.parametrize("spatial", [1, 3])
def test_cost_terms_are_rank_generic(spatial):
    x = (2, *(16,) * spatial, 4)
    k = (*(3,) * spatial, 4, 8)
    cfg = ConvConfig(stride=(1,) * spatial, padding=((1, 1),) * spatial,
                     dilation=(1,) * spatial)
    from jaxconv.convolution import cost_model

    for name in ("direct", "fft"):
        terms = cost_model.cost_terms(name, x, k, cfg)
        assert all(np.isfinite(v) and v >= 0 for v in terms.values()), terms
    assert fft.fft_lengths(x, k, cfg) == (18,) * spatial


# --------------------------------------------------------------------------------------------
# Errors, before tracing, naming the function.


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: jaxconv.conv1d(np.zeros((2, 8, 3)), np.zeros((3, 3, 3, 2))), ValueError,
         r"^conv1d: kernel must have rank 3 \(k, C // groups, O\) in WIO layout, got rank 4"),
        (lambda: jaxconv.conv1d(np.zeros((2, 3, 8, 3)), np.zeros((3, 3, 2))), ValueError,
         r"^conv1d: x must have rank 3 \(NWC\) or 2 \(unbatched WC\), got rank 4"),
        (lambda: jaxconv.conv1d(np.zeros((2, 8, 3)), np.zeros((3, 3, 2)), data_format="NCHW"),
         ValueError, r"^conv1d: data_format must be 'NWC' or 'NCW', got 'NCHW'"),
        (lambda: jaxconv.conv3d(np.zeros((1, 4, 4, 4, 3)), np.zeros((2, 2, 2, 2, 2))),
         ValueError, r"^conv3d: kernel expects 3 input channels .* but kernel.shape\[3\] is 2"),
        (lambda: jaxconv.conv3d(np.zeros((1, 4, 4, 4, 2)), np.zeros((2, 2, 2, 2, 2)),
                                stride=(1, 2)), TypeError, r"^conv3d: stride"),
        (lambda: jaxconv.conv3d(np.zeros((1, 4, 4, 4, 2)), np.zeros((2, 2, 2, 2, 2)),
                                padding=4, padding_mode="reflect"),
         ValueError, r"^conv3d: padding_mode='reflect' needs padding < input size, but the "
                     r"depth padding is \(4, 4\) for depth 4"),
        (lambda: jaxconv.conv1d(np.zeros((1, 4, 1)), np.zeros((6, 1, 1))), ValueError,
         r"^conv1d: the kernel \(effective size 6 .* is larger than the padded input 4"),
        (lambda: jaxconv.conv1d(np.zeros((1, 8, 1)), np.zeros((3, 1, 1)), algorithm="im2col"),
         ValueError, r"^conv1d: algorithm='im2col' cannot serve these arguments: im2col serves "
                     r"2-D convolutions \(got 1 spatial dims\)\. Algorithms that can: 'direct', "
                     r"'fft'"),
        (lambda: jaxconv.conv3d(np.zeros((1, 4, 4, 4, 1)), np.zeros((3, 3, 3, 1, 1)),
                                algorithm="winograd"),
         ValueError, r"^conv3d: algorithm='winograd' cannot serve these arguments: winograd "
                     r"serves 2-D convolutions \(got 3 spatial dims\)"),
        (lambda: jaxconv.conv1d(np.zeros((1, 8, 1)), np.zeros((3, 1, 1)),
                                algorithm="xla_padded"),
         ValueError, r"xla_padded serves 2-D convolutions \(got 1 spatial dims\)"),
        (lambda: jaxconv.conv3d(np.zeros((1, 4, 4, 4, 1)), np.zeros((3, 3, 3, 1, 1)),
                                algorithm="mec"),
         ValueError, r"^conv3d: algorithm='mec' cannot serve these arguments: mec serves 2-D "
                     r"convolutions \(got 3 spatial dims\)"),
        (lambda: jaxconv.conv3d(np.zeros((1, 4, 4, 4, 1)), np.zeros((3, 3, 3, 1, 1)),
                                algorithm="dft"),
         ValueError, r"^conv3d: algorithm='dft' cannot serve these arguments: dft serves 2-D "
                     r"convolutions \(got 3 spatial dims\)"),
        (lambda: jaxconv.conv1d(np.zeros((1, 8, 1)), np.zeros((3, 1, 1)), algorithm="nope"),
         ValueError, r"^conv1d: unknown algorithm 'nope'"),
        (lambda: jaxconv.conv(np.zeros((1, 2, 3, 4, 5, 1)), np.zeros((1, 1, 1, 1, 1, 1))),
         ValueError, r"^conv: the kernel's rank sets the number of spatial dims .*supported: "
                     r"rank 3 \(WIO: 1-D\), rank 4 \(HWIO: 2-D\), rank 5 \(DHWIO: 3-D\); got "
                     r"rank 6"),
        (lambda: jaxconv.conv(np.zeros((8, 1)), np.zeros((3,))), ValueError,
         r"^conv: the kernel's rank .* got rank 1"),
        (lambda: jaxconv.conv(np.zeros((1, 8, 1)), np.zeros((3, 1, 1)), data_format="NHWC"),
         ValueError, r"^conv: data_format must be 'NWC' or 'NCW', got 'NHWC'"),
        (lambda: jaxconv.conv1d(np.zeros((1, 8, 1), np.int32), np.zeros((3, 1, 1))), TypeError,
         r"^conv1d: x must have a floating dtype"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_measure_on_first_use_and_the_cache_serve_1d(monkeypatch, tmp_path, rng):
    monkeypatch.setenv("JAXCONV_CACHE_DIR", str(tmp_path))
    cache.clear_memory_cache()
    x = rng.normal(size=(1, 200, 2)).astype(np.float32)
    k = rng.normal(size=(9, 2, 3)).astype(np.float32)
    select.set_autotune(True)
    try:
        y = jaxconv.conv1d(x, k)
    finally:
        select.set_autotune(None)
    assert_close(y, conv_ref(x, k), algorithm="fft")
    sel = jaxconv.select_algorithm(x.shape, k.shape)
    assert sel.source == "autotune" and set(sel.measured_ms) == {"direct", "fft"}
    cache.clear_memory_cache()


@pytest.mark.parametrize("algorithm", ["depth_direct", "depth_mec"])
def test_depth_lowered_under_composed_transformations(algorithm, rng):
    """vmap inside grad and jvp, grad inside vmap: the depth-lowered algorithms give direct's
    derivatives (the stacking's transpose, then the inner algorithm's gradients)."""
    x = rng.normal(size=(2, 1, 5, 4, 3, 4))
    k = rng.normal(size=(3, 2, 2, 2, 6))
    kw = dict(padding="SAME", groups=2, stride=(2, 1, 1))

    def conv(x, k, a):
        return jaxconv.conv3d(x, k, algorithm=a, **kw)

    for transformed in composed(conv, lambda y: jnp.sum(y ** 2), x, k):
        for got, want in zip(jax.tree.leaves(transformed(algorithm)),
                             jax.tree.leaves(transformed("direct")), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())
