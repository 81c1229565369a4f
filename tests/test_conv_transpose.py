"""conv_transpose1d/2d/3d: the float64 scatter reference, the adjoint of the forward conv (its
vjp), gradients, transformations and errors. Parity with torch is in
``test_parity_torch_conv_nd.py``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from ref_conv import conv_transpose_ref, transpose_pads

import jaxconv

FNS = {1: jaxconv.conv_transpose1d, 2: jaxconv.conv_transpose2d, 3: jaxconv.conv_transpose3d}
FORWARD = {1: jaxconv.conv1d, 2: jaxconv.conv2d, 3: jaxconv.conv3d}
FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}


def out_size(case):
    sp = case["spatial"]
    pads, extra = transpose_pads(case["padding"], case["size"], case["ksize"], case["stride"],
                                 case["dilation"])
    op = case["output_padding"]
    op = (op,) * sp if np.ndim(op) == 0 else op
    return [(m - 1) * s - lo - hi + d * (k - 1) + 1 + e + p
            for m, s, (lo, hi), d, k, e, p in zip(case["size"], case["stride"], pads,
                                                  case["dilation"], case["ksize"], extra, op,
                                                  strict=True)]


def random_case(rnd, spatial):
    """A valid seeded configuration: every padding form, output_padding, groups, layouts."""
    while True:
        groups = int(rnd.choice([1, 2, 3]))
        stride = tuple(int(v) for v in rnd.integers(1, 4, spatial))
        dilation = tuple(int(v) for v in rnd.integers(1, 3, spatial))
        ksize = tuple(int(v) for v in rnd.integers(1, 4 if spatial == 3 else 5, spatial))
        form = int(rnd.integers(0, 5))
        if form == 0:
            padding = int(rnd.integers(0, 3))
        elif form == 1:
            padding = tuple(int(v) for v in rnd.integers(0, 3, spatial))
        elif form == 2:
            padding = tuple(tuple(int(u) for u in rnd.integers(0, 3, 2)) for _ in range(spatial))
        else:
            padding = ["SAME", "VALID"][form - 3]
        if isinstance(padding, str):
            output_padding = 0
        else:
            output_padding = tuple(int(rnd.integers(0, max(s, d)))
                                   for s, d in zip(stride, dilation, strict=True))
        case = dict(
            spatial=spatial, n=int(rnd.integers(1, 3)), groups=groups,
            cin=groups * int(rnd.integers(1, 3)), og=int(rnd.integers(1, 3)),
            size=tuple(int(v) for v in rnd.integers(1, 5 if spatial == 3 else 7, spatial)),
            stride=stride, dilation=dilation, ksize=ksize, padding=padding,
            output_padding=output_padding, bias=bool(rnd.integers(0, 2)),
            channels_first=bool(rnd.integers(0, 2)), unbatched=bool(rnd.integers(0, 4) == 0),
        )
        if min(out_size(case)) >= 1:
            return case


CASES = [random_case(np.random.default_rng(seed), sp) for sp in (1, 2, 3)
         for seed in range(10 if sp < 3 else 8)]


def _id(c):
    return (f"{c['spatial']}d-{c['n']}x{'x'.join(map(str, c['size']))}x{c['cin']}-"
            f"k{'x'.join(map(str, c['ksize']))}-og{c['og']}-g{c['groups']}-s{c['stride']}-"
            f"p{c['padding']}-op{c['output_padding']}-d{c['dilation']}"
            f"{'-bias' if c['bias'] else ''}{'-cf' if c['channels_first'] else ''}"
            f"{'-unbatched' if c['unbatched'] else ''}").replace(" ", "")


def test_cases_cover_the_padding_forms():
    kinds = {type(c["padding"]).__name__ if not isinstance(c["padding"], str) else c["padding"]
             for c in CASES}
    assert kinds == {"int", "tuple", "SAME", "VALID"}
    assert any(isinstance(c["padding"], tuple) and isinstance(c["padding"][0], tuple)
               for c in CASES)
    assert any(not isinstance(c["output_padding"], int) and any(c["output_padding"])
               for c in CASES)
    assert {c["groups"] for c in CASES} == {1, 2, 3}


# "auto" resolves to "direct" (the one algorithm serving transposed convolutions): one case of
# each rank is enough for it.
REFERENCE_PAIRS = [("direct", c) for c in CASES] + [("auto", c) for c in CASES[::10]]


@pytest.mark.parametrize(("algorithm", "case"), REFERENCE_PAIRS,
                         ids=[f"{a}-{_id(c)}" for a, c in REFERENCE_PAIRS])
def test_matches_reference(algorithm, case, rng):
    sp = case["spatial"]
    x = rng.normal(size=(case["n"], *case["size"], case["cin"]))
    k = rng.normal(size=(*case["ksize"], case["og"], case["cin"]))
    b = rng.normal(size=case["og"] * case["groups"]) if case["bias"] else None
    data_format = FIRST[sp] if case["channels_first"] else None
    if case["channels_first"]:
        x = np.moveaxis(x, -1, 1)
    if case["unbatched"]:
        x = x[0]
    kw = dict(stride=case["stride"], padding=case["padding"],
              output_padding=case["output_padding"], dilation=case["dilation"],
              groups=case["groups"])
    fmt = {} if data_format is None else dict(data_format=data_format)
    y = FNS[sp](x, k, b, algorithm=algorithm, **kw, **fmt)
    ref = conv_transpose_ref(x, k, b, data_format=data_format, **kw)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------
# The adjoint: conv_transpose(y, k) == vjp of conv(., k) at y, with the same stride / padding.

ADJOINT_CASES = [
    (1, dict(stride=2, padding=1), (9,), (3,)),
    (1, dict(stride=3, padding="SAME", dilation=2), (4,), (2,)),
    (2, dict(stride=(2, 3), padding="SAME"), (3, 4), (3, 2)),
    (2, dict(stride=(3, 3), padding="SAME"), (3, 2), (2, 1)),  # kernel shorter than the stride
    (2, dict(stride=2, padding=((0, 2), (1, 0)), groups=2, dilation=(1, 2)), (4, 4), (3, 2)),
    (2, dict(padding=3), (8, 7), (2, 2)),  # padding > d * (k - 1): a crop
    (3, dict(stride=(2, 1, 2), padding="VALID"), (2, 3, 2), (2, 2, 1)),
    (3, dict(stride=2, padding=1, groups=2), (3, 2, 2), (3, 3, 2)),
]


@pytest.mark.parametrize(("spatial", "kw", "size", "ksize"), ADJOINT_CASES,
                         ids=[f"{c[0]}d-{c[1]}" for c in ADJOINT_CASES])
def test_equals_the_vjp_of_the_forward_conv(spatial, kw, size, ksize, rng):
    groups = kw.get("groups", 1)
    y = rng.normal(size=(2, *size, 2 * groups))  # the forward conv's output: C_in channels
    k = rng.normal(size=(*ksize, 3, 2 * groups))  # forward: 3 * groups -> 2 * groups channels
    t = FNS[spatial](y, k, **kw)
    u = jnp.zeros((2, *t.shape[1:-1], 3 * groups))
    fwd, vjp = jax.vjp(lambda u: FORWARD[spatial](u, k, **kw), u)
    assert fwd.shape == y.shape  # the transposed output is a valid forward input
    np.testing.assert_allclose(t, vjp(jnp.asarray(y))[0], rtol=1e-12, atol=1e-12)
    if kw.get("padding") == "SAME":
        assert t.shape[1:-1] == tuple(m * s for m, s in zip(size, np.broadcast_to(
            kw["stride"], (spatial,)), strict=True))


@pytest.mark.parametrize(
    ("xs", "ks", "kw"),
    [
        # shapes on which an lhs_dilation formulation aborted XLA:CPU (see transpose.py)
        ((1, 1, 3, 1, 6), (3, 2, 2, 1, 6),
         dict(stride=(3, 2, 3), padding=(2, 1, 0), output_padding=(2, 0, 0), groups=3)),
        ((2, 1, 4, 2), (2, 2, 1, 2),
         dict(stride=(1, 2), padding=(1, 2), output_padding=(1, 1), dilation=(2, 1), groups=2)),
        # phases without taps (k < s), gcd(stride, dilation) > 1, padding > d * (k - 1)
        ((1, 3, 2), (1, 2, 2), dict(stride=3, output_padding=2)),
        ((1, 4, 2), (3, 1, 2), dict(stride=4, dilation=2, padding=5, output_padding=1)),
        # strides longer than the output (only the phases that reach it are built), mixed
        # with a dense axis, a crop far from the origin, runs of tapless phases
        ((2, 1, 2), (3, 1, 2), dict(stride=50)),
        ((1, 3, 2, 2), (2, 3, 2, 2),
         dict(stride=(40, 3), padding=((38, 37), (1, 0)), dilation=(1, 2), groups=2)),
        ((1, 2, 2, 3, 1), (2, 2, 3, 1, 1), dict(stride=(30, 1, 7), padding=((29, 0), (0, 0), (3, 8)))),
        ((1, 3, 1), (3, 2, 1), dict(stride=6, dilation=4, padding=((3, 1),), output_padding=5)),
    ],
)
def test_polyphase_edge_cases(xs, ks, kw, rng):
    x, k = rng.normal(size=xs), rng.normal(size=ks)
    sp = len(ks) - 2
    ref = conv_transpose_ref(x, k, **kw)
    np.testing.assert_allclose(FNS[sp](x, k, **kw), ref, rtol=1e-12, atol=1e-12)
    dx, dk = jax.grad(lambda x, k: jnp.sum(FNS[sp](x, k, **kw) ** 2), argnums=(0, 1))(x, k)
    assert dx.shape == x.shape and dk.shape == k.shape


def test_output_padding_selects_among_forward_inputs(rng):
    # stride 2: forward inputs of 7 and 8 both give 4 outputs (k=3, p=1); output_padding picks
    y, k = rng.normal(size=(1, 4, 2)), rng.normal(size=(3, 1, 2))
    for n, op in ((7, 0), (8, 1)):
        t = jaxconv.conv_transpose1d(y, k, stride=2, padding=1, output_padding=op)
        _, vjp = jax.vjp(lambda u: jaxconv.conv1d(u, k, stride=2, padding=1),
                         jnp.zeros((1, n, 1)))
        np.testing.assert_allclose(t, vjp(jnp.asarray(y))[0], rtol=1e-12, atol=1e-12)


def test_known_answer():
    y = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1)
    k = np.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
    t = jaxconv.conv_transpose1d(y, k, stride=2)
    # each input scatters [1, 10, 100] * y_i at 2 i
    np.testing.assert_allclose(t[0, :, 0], [1, 10, 102, 20, 203, 30, 300])
    t = jaxconv.conv_transpose1d(y, k, stride=2, padding=1, output_padding=1, bias=[0.5])
    np.testing.assert_allclose(t[0, :, 0], [10.5, 102.5, 20.5, 203.5, 30.5, 300.5])
    # groups: two independent channels, kernels [1, 1] and [1, -1]
    k2 = np.array([[1.0, 1.0], [1.0, -1.0]]).reshape(2, 1, 2)  # (k, C_out // g, C_in)
    y2 = np.array([[1.0, 5.0], [2.0, 7.0]]).reshape(1, 2, 2)
    t = jaxconv.conv_transpose1d(y2, k2, groups=2)
    np.testing.assert_allclose(t[0], [[1, 5], [3, 2], [2, -7]])


def test_dtypes(rng):
    y = rng.normal(size=(1, 4, 4, 2)).astype(np.float32)
    k = rng.normal(size=(3, 3, 5, 2)).astype(np.float32)
    t = jaxconv.conv_transpose2d(y, k, stride=2, padding=1, precision="highest")
    assert t.dtype == jnp.float32 and t.shape == (1, 7, 7, 5)
    np.testing.assert_allclose(t, conv_transpose_ref(y, k, stride=2, padding=1), rtol=1e-5,
                               atol=1e-5)
    assert jaxconv.conv_transpose2d(y.astype(jnp.bfloat16), k).dtype == jnp.float32


# --------------------------------------------------------------------------------------------
# Gradients (bilinear: eps=1 is exact, see tests/test_conv.py), jit, vmap.

GRAD_CASES = [
    (1, (2, 4, 2), (3, 3, 2), dict(stride=2, padding=1, output_padding=1, groups=2)),
    (1, (1, 2, 2), (3, 1, 2), dict(stride=40, padding=((38, 0),), dilation=2)),  # sparse
    (2, (1, 3, 2, 2), (2, 3, 1, 2), dict(stride=(2, 1), padding="SAME", dilation=(1, 2))),
    (3, (1, 2, 2, 3, 1), (2, 1, 2, 2, 1), dict(stride=2, padding=((1, 0), (0, 0), (0, 1)))),
]


@pytest.mark.parametrize(("spatial", "xs", "ks", "kw"), GRAD_CASES,
                         ids=[f"{c[0]}d" for c in GRAD_CASES])
def test_check_grads(spatial, xs, ks, kw, rng):
    x, k = rng.normal(size=xs), rng.normal(size=ks)
    b = rng.normal(size=ks[-2] * kw.get("groups", 1))

    @jax.jit
    def f(x, k, b):
        return FNS[spatial](x, k, b, **kw)

    check_grads(f, (x, k, b), order=2, modes=("fwd",), eps=1.0)
    check_grads(lambda x, b: f(x, k, b), (x, b), order=2, modes=("rev",), eps=1.0)
    check_grads(lambda k: f(x, k, b), (k,), order=2, modes=("rev",), eps=1.0)


def test_jit_and_vmap(rng):
    kw = dict(stride=2, padding=1, output_padding=1, data_format="NCHW")
    x = rng.normal(size=(3, 2, 4, 3, 3))  # a batch of NCHW batches
    ks = rng.normal(size=(3, 3, 2, 2, 4))

    def f(x, k):
        return jaxconv.conv_transpose2d(x, k, **kw)

    eager = f(x[0], ks[0])
    np.testing.assert_allclose(jax.jit(f)(x[0], ks[0]), eager, rtol=1e-14, atol=1e-14)
    loop = np.stack([f(xi, ki) for xi, ki in zip(x, ks, strict=True)])
    np.testing.assert_allclose(jax.vmap(f)(x, ks), loop, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jax.vmap(f, in_axes=(0, None))(x[0], ks[0]), eager, rtol=1e-12,
                               atol=1e-12)


# --------------------------------------------------------------------------------------------
# Errors, before tracing, naming the function and the argument.

X2 = np.zeros((1, 4, 4, 2))
K2 = np.zeros((3, 3, 5, 2))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: jaxconv.conv_transpose2d(X2, np.zeros((3, 3, 5, 3))), ValueError,
         r"^conv_transpose2d: kernel.shape\[-1\] must be x's channels C_in=2 .* got kernel "
         r"shape \(3, 3, 5, 3\)"),
        (lambda: jaxconv.conv_transpose2d(X2, np.zeros((3, 3, 2))), ValueError,
         r"^conv_transpose2d: kernel must have rank 4 \(\*k, C_out // groups, C_in\) in HWIO"),
        (lambda: jaxconv.conv_transpose2d(X2, K2, groups=3), ValueError,
         r"^conv_transpose2d: groups=3 must divide the input channels C_in=2"),
        (lambda: jaxconv.conv_transpose2d(X2, K2, stride=2, output_padding=2), ValueError,
         r"^conv_transpose2d: output_padding must be smaller than either stride or dilation "
         r"on each axis, got output_padding \(2, 2\) with stride \(2, 2\) and dilation \(1, 1\)"),
        (lambda: jaxconv.conv_transpose1d(np.zeros((1, 4, 2)), np.zeros((3, 5, 2)),
                                          output_padding=-1),
         ValueError, r"^conv_transpose1d: output_padding must be >= 0"),
        (lambda: jaxconv.conv_transpose2d(X2, K2, stride=2, padding="SAME", output_padding=1),
         ValueError, r"^conv_transpose2d: output_padding must be 0 with padding='SAME'"),
        (lambda: jaxconv.conv_transpose2d(X2, K2, padding="FULL"), ValueError,
         r"^conv_transpose2d: unknown padding 'FULL'"),
        (lambda: jaxconv.conv_transpose2d(X2, K2, padding=(1, 2, 3)), TypeError,
         r"^conv_transpose2d: padding must be"),
        (lambda: jaxconv.conv_transpose1d(np.zeros((1, 1, 2)), np.zeros((1, 5, 2)), padding=1),
         ValueError, r"^conv_transpose1d: the output would be empty: .* gives \(-1,\)"),
        (lambda: jaxconv.conv_transpose2d(X2, K2, bias=np.zeros(2)), ValueError,
         r"^conv_transpose2d: bias must have shape \(5,\)"),
        (lambda: jaxconv.conv_transpose2d(X2, K2, algorithm="fft"), ValueError,
         r"^conv_transpose2d: unknown algorithm 'fft'; transposed convolutions serve 'auto', "
         r"'direct' \(other algorithms may be added later\)"),
        (lambda: jaxconv.conv_transpose3d(X2[0], K2), ValueError,
         r"^conv_transpose3d: x must have rank 5 \(NDHWC\) or 4"),
        (lambda: jaxconv.conv_transpose2d(X2, K2, data_format="NCW"), ValueError,
         r"^conv_transpose2d: data_format must be 'NHWC' or 'NCHW'"),
        (lambda: jaxconv.conv_transpose2d(X2.astype(np.int32), K2), TypeError,
         r"^conv_transpose2d: x must have a floating dtype"),
        (lambda: jaxconv.conv_transpose2d(X2, K2, stride=0), ValueError,
         r"^conv_transpose2d: stride must be >= 1"),
        (lambda: jaxconv.conv_transpose2d(X2, K2, precision="best"), ValueError,
         r"^conv_transpose2d: unknown precision 'best'"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
