"""What is specific to the fast special-case algorithms ``depthwise`` and ``pointwise``.

The shared products of ``tests/test_conv.py`` run both automatically (they are registered on
import, and run on the cases they serve); here: denser products over what each one serves
(kernel sizes 1-7, channel multipliers, strides, dilations, paddings that leave rows unread or
outputs reading only padding), gradients (against ``direct``'s and by ``check_grads`` to second
order, forward and reverse), transformations, low-precision dtypes, refusals, and that neither
ever calls XLA's convolution. The depthwise and pointwise products run whole under
``JAXCONV_FULL_TESTS=1``; by default, a sample of their all-pairs covering that keeps every level
of every factor (and the long gradient sweeps one case per form, see each test).
"""

from __future__ import annotations

import functools
import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FULL, every_level, pairwise_cases
from jax.test_util import check_grads
from ref_conv import conv2d_ref, is_valid
from tolerances import assert_close

import jaxconv
from jaxconv.convolution import _registry, depthwise, pointwise
from jaxconv.convolution._registry import ConvConfig
from jaxconv.convolution.direct import conv_direct


def _kw(stride, padding, dilation, groups):
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _ok(h, w, kh, kw, stride, padding, dilation):
    return is_valid(h, w, kh, kw, stride=stride, padding=padding, dilation=dilation)


# --------------------------------------------------------------------------------------------
# depthwise: kernel sizes 1, 3, 5, 7 (and non-square), multipliers 1-3, strides, dilations,
# paddings (named, symmetric, asymmetric, larger than the kernel reach).

DW_SHAPES = [(2, 11, 9, 3), (1, 8, 13, 4)]  # (N, H, W, C), odd and even sizes
DW_KERNELS = [(1, 1), (3, 3), (5, 5), (7, 7), (2, 3)]
DW_MULTIPLIERS = [1, 2, 3]
DW_STRIDES = [1, 2, (1, 3)]
DW_PADDINGS = ["VALID", "SAME", ((1, 2), (3, 0)), ((4, 0), (0, 5))]
DW_DILATIONS = [1, (2, 1)]

DW_FACTORS = [DW_SHAPES, DW_KERNELS, DW_MULTIPLIERS, DW_STRIDES, DW_PADDINGS, DW_DILATIONS]


def _dw_ok(c) -> bool:
    return _ok(c[0][1], c[0][2], *c[1], c[3], c[4], c[5])


DW_ALL = [
    c for c in itertools.product(*DW_FACTORS)
    # one multiplier per (kernel, stride) pair off the plain path keeps the product ~400 cases
    if (c[2] == 1 or (DW_KERNELS.index(c[1]) + DW_STRIDES.index(c[3])) % 3 == c[2] - 1)
    and _dw_ok(c)
]


def _pairwise(factors: list[list], valid) -> tuple[list[tuple], set]:
    """All-pairs covering of positional factors: tuples of one level of each."""
    return pairwise_cases(dict(enumerate(factors)),
                          lambda lv: tuple(factors[f][i] for f, i in lv.items()), valid)


DW_PAIRWISE, DW_INFEASIBLE = _pairwise(DW_FACTORS, _dw_ok)
DW_CASES = DW_ALL if FULL else every_level(DW_PAIRWISE, k=7)


def _dw_id(c):
    (n, h, w, ch), (kh, kw), m, s, p, d = c
    return f"{n}x{h}x{w}x{ch}-k{kh}x{kw}-m{m}-s{s}-p{str(p).replace(' ', '')}-d{d}"


@pytest.mark.parametrize("case", DW_CASES, ids=_dw_id)
def test_depthwise_matches_reference(case, rng):
    (n, h, w, c), (kh, kw), m, stride, padding, dilation = case
    x = rng.uniform(-1, 1, (n, h, w, c))
    k = rng.uniform(-1, 1, (kh, kw, 1, c * m))
    kwargs = _kw(stride, padding, dilation, c)
    y = jaxconv.conv2d(x, k, algorithm="depthwise", **kwargs)
    assert y.dtype == jnp.float64
    assert_close(y, conv2d_ref(x, k, **kwargs), algorithm="depthwise", err_msg=_dw_id(case))


def test_depthwise_product_size():
    assert 300 <= len(DW_ALL) <= 450, len(DW_ALL)
    assert not DW_INFEASIBLE, DW_INFEASIBLE
    assert 20 <= len(DW_PAIRWISE) <= 40, len(DW_PAIRWISE)


# --------------------------------------------------------------------------------------------
# pointwise: groups 1 / 2 / C, strides, dilation (a no-op), paddings including outputs that
# read only padding and pads larger than the stride.

PW_SHAPES = [(2, 7, 9, 4, 8), (1, 6, 5, 8, 4), (3, 1, 1, 4, 8)]  # (N, H, W, C, O)
PW_GROUPS = [1, 2, 4]
PW_STRIDES = [1, 2, (3, 1), (2, 4)]
PW_PADDINGS = ["VALID", "SAME", 1, ((3, 1), (0, 2)), ((0, 4), (5, 0))]
PW_DILATIONS = [1, 3]

PW_FACTORS = [PW_SHAPES, PW_GROUPS, PW_STRIDES, PW_PADDINGS, PW_DILATIONS]
PW_ALL = [c for c in itertools.product(*PW_FACTORS) if c[4] == 1 or c[1] == 2]
PW_PAIRWISE, PW_INFEASIBLE = _pairwise(PW_FACTORS, lambda c: True)
PW_CASES = PW_ALL if FULL else every_level(PW_PAIRWISE, k=7)


def _pw_id(c):
    (n, h, w, ch, o), g, s, p, d = c
    return f"{n}x{h}x{w}x{ch}-o{o}-g{g}-s{s}-p{str(p).replace(' ', '')}-d{d}"


def test_pointwise_product_size():
    assert len(PW_ALL) == 240 and not PW_INFEASIBLE, (len(PW_ALL), PW_INFEASIBLE)
    assert 20 <= len(PW_PAIRWISE) <= 30, len(PW_PAIRWISE)


@pytest.mark.parametrize("case", PW_CASES, ids=_pw_id)
def test_pointwise_matches_reference(case, rng):
    (n, h, w, c, o), groups, stride, padding, dilation = case
    x = rng.uniform(-1, 1, (n, h, w, c))
    k = rng.uniform(-1, 1, (1, 1, c // groups, o))
    kwargs = _kw(stride, padding, dilation, groups)
    y = jaxconv.conv2d(x, k, algorithm="pointwise", **kwargs)
    assert y.dtype == jnp.float64
    assert_close(y, conv2d_ref(x, k, **kwargs), algorithm="pointwise", err_msg=_pw_id(case))


def test_pointwise_output_reading_only_padding_is_zero():
    k = jnp.ones((1, 1, 3, 2))
    # a 1x1 image padded by 3 in front, stride 4: the one output reads padding only
    y = jaxconv.conv2d(jnp.ones((1, 1, 1, 3)), k, stride=4, padding=((3, 0), (3, 0)),
                       algorithm="pointwise")
    np.testing.assert_array_equal(y, np.zeros((1, 1, 1, 2)))
    # 2 rows padded (3, 1), stride 2: outputs read padded rows 0, 2, 4 = input rows -3, -1, 1
    y = jaxconv.conv2d(jnp.ones((1, 2, 2, 3)), k, stride=2, padding=((3, 1), (0, 0)),
                       algorithm="pointwise")
    np.testing.assert_array_equal(y[0, :, :, 0], [[0], [0], [3]])


# --------------------------------------------------------------------------------------------
# Gradients: against direct's (a nonlinear loss, so the cotangent is not constant) and by
# check_grads. conv is bilinear, so eps=1 central differences are exact for first order and
# forward-over-forward; reverse order 2 is checked for x and kernel separately (each affine).

GRAD_CASES = [
    ("depthwise", (2, 6, 7, 3), (3, 3, 1, 3), dict(padding="SAME", groups=3)),
    ("depthwise", (1, 9, 8, 2), (3, 2, 1, 4),
     dict(stride=(2, 3), padding=((0, 3), (2, 1)), dilation=(2, 1), groups=2)),
    ("depthwise", (2, 5, 6, 2), (2, 3, 1, 2), dict(stride=2, padding=((4, 0), (0, 5)), groups=2)),
    ("depthwise", (1, 10, 9, 2), (1, 3, 1, 6), dict(stride=(3, 1), dilation=(1, 2), groups=2)),
    ("depthwise", (1, 7, 7, 1), (5, 5, 1, 1), dict(padding=2, groups=1)),
    ("pointwise", (2, 5, 6, 4), (1, 1, 4, 3), dict()),
    ("pointwise", (2, 7, 6, 4), (1, 1, 2, 6), dict(stride=(2, 3), padding=((3, 1), (0, 2)),
                                                   groups=2)),
    ("pointwise", (1, 4, 5, 4), (1, 1, 1, 4), dict(padding="SAME", groups=4, dilation=2)),
    # 17 output rows (prime): the kernel gradient folds them into 16 blocks of 2, past the
    # bottom on zero rows -- one image (taps run past it) and two (the product is padded)
    ("depthwise", (1, 19, 6, 2), (3, 3, 1, 4), dict(groups=2)),
    ("depthwise", (1, 35, 5, 2), (3, 3, 1, 2), dict(stride=2, groups=2)),
    ("depthwise", (2, 19, 6, 2), (3, 3, 1, 2), dict(groups=2)),
]


def _grad_id(c):
    return f"{c[0]}-{c[1]}-{c[2]}-{c[3]}".replace(" ", "")


@pytest.mark.parametrize("case", GRAD_CASES, ids=_grad_id)
def test_gradients_match_direct(case, rng):
    algorithm, xs, ks, kwargs = case
    x, k = rng.normal(size=xs), rng.normal(size=ks)

    def loss(x, k, algorithm):
        return jnp.sum(jnp.sin(jaxconv.conv2d(x, k, algorithm=algorithm, **kwargs)))

    got = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(x, k, algorithm)
    want = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(x, k, "direct")
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)


DW_GRAD_CONFIGS = [
    ((2, 6, 7, 3), (3, 3, 1, 3), ConvConfig(padding=((1, 1), (1, 1)), groups=3)),
    ((1, 9, 11, 2), (3, 2, 1, 4),
     ConvConfig(stride=(2, 3), padding=((0, 3), (2, 1)), dilation=(2, 1), groups=2)),
    # padding beyond the kernel's reach (negative pads in the gather form), rows left unread
    ((1, 5, 6, 2), (2, 3, 1, 2), ConvConfig(stride=(2, 2), padding=((4, 0), (0, 5)), groups=2)),
    ((1, 10, 9, 2), (1, 3, 1, 2), ConvConfig(stride=(3, 1), dilation=(1, 2), groups=2)),
    ((2, 8, 7, 2), (5, 4, 1, 2), ConvConfig(stride=(1, 2), padding=((2, 3), (1, 0)), groups=2)),
    # N * H_out = 17 and 38 output rows: the kernel gradient pads the rows to fold them
    ((1, 17, 6, 2), (3, 3, 1, 2), ConvConfig(padding=((1, 1), (1, 1)), groups=2)),
    ((2, 19, 5, 3), (2, 2, 1, 3), ConvConfig(padding=((1, 0), (0, 1)), groups=3)),
]


# The gather form compiles for seconds per config: the default run gathers on the strided,
# dilated config and the one padded beyond the kernel's reach, and scatters on the others but
# the first and the 17-row one: with their 3x3 kernels (9 taps, SCATTER_MAX_TAPS) they scatter
# unforced, and test_gradients_match_direct runs them already (GRAD_CASES 0: the same problem;
# GRAD_CASES 8: 17 rows of a 3x3, two groups), test_check_grads_second_order the first forward.
DW_GRAD_FORMS = [
    (shapes, taps) for i, shapes in enumerate(DW_GRAD_CONFIGS) for taps in (0, 100)
    if FULL or ((taps == 0) == (i in (1, 2)) and i not in (0, 5))
]


@pytest.mark.parametrize(("shapes", "scatter_max_taps"), DW_GRAD_FORMS,
                         ids=[f"{c[2]}-{'scatter' if t else 'gather'}" for c, t in DW_GRAD_FORMS])
def test_depthwise_both_input_gradient_forms(shapes, scatter_max_taps, monkeypatch, rng):
    """Both forms of the input gradient (chosen by kernel size) against direct's."""
    monkeypatch.setattr(depthwise, "SCATTER_MAX_TAPS", scatter_max_taps)
    xs, ks, config = shapes
    x, k = jnp.asarray(rng.normal(size=xs)), jnp.asarray(rng.normal(size=ks))
    ct = jnp.asarray(rng.normal(size=jax.eval_shape(functools.partial(conv_direct, config=config), x, k).shape))
    t = (jnp.asarray(rng.normal(size=xs)), jnp.asarray(rng.normal(size=ks)))

    # jitted (one program, not hundreds of eager ops), traced after the monkeypatch
    @functools.partial(jax.jit, static_argnums=0)
    def gradients(fn, x, k, ct, t):
        f = functools.partial(fn, config=config)
        # reverse mode, and forward mode, which evaluates the transposed forms
        return jax.vjp(f, x, k)[1](ct), jax.jvp(f, (x, k), t)[1]

    got = gradients(depthwise.conv_depthwise, x, k, ct, t)
    want = gradients(conv_direct, x, k, ct, t)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


TAP_CHUNK_CASES = [((1, 20, 17, 1), (9, 9, 1, 1), ConvConfig(padding=((4, 4), (4, 4)))),
                   ((2, 11, 12, 3), (7, 5, 1, 3),
                    ConvConfig(stride=(2, 1), dilation=(1, 2), groups=3))]


# The 9x9 kernel compiles 3 x 81 unrolled taps (5-17 s on 2 cores): the default run sums 7x5 in
# chunks of 16 (16 + 16 + 3, the last one short: the same lines as 64 + 17); the full tier sums
# both kernels in both chunk sizes.
def _values_and_direct(fn, x, k, config, rng):
    """``(fn(x, k), direct(x, k))``, asserting on the way that ``fn``'s gradients (for a random
    cotangent) equal ``direct``'s to 1e-12."""
    ct = jnp.asarray(rng.normal(size=jax.eval_shape(functools.partial(fn, config=config), x, k).shape))

    @jax.jit  # one program: eagerly, each of the hundreds of tap ops compiles on its own
    def both(x, k, ct):
        y, pull = jax.vjp(functools.partial(fn, config=config), x, k)
        want, pull_want = jax.vjp(functools.partial(conv_direct, config=config), x, k)
        return y, want, pull(ct), pull_want(ct)

    y, want, grads, wanted = both(x, k, ct)
    for g, w in zip(grads, wanted, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    return y, want


@pytest.mark.parametrize("max_fused_taps", [16, 64] if FULL else [16],
                         ids=["chunks-of-16", "default"] if FULL else ["chunks-of-16"])
def test_depthwise_tap_chunks_match_direct(max_fused_taps, monkeypatch, rng):
    """Kernels with more taps than one fusion sums (here 9x9 = 81 in the default chunks, and
    7x5 = 35 in chunks of 16, the last one short) are summed chunk by chunk: values and both
    gradients as direct's."""
    monkeypatch.setattr(depthwise, "MAX_FUSED_TAPS", max_fused_taps)
    cases = TAP_CHUNK_CASES if FULL else TAP_CHUNK_CASES[1:]
    for xs, ks, config in cases:
        x, k = jnp.asarray(rng.normal(size=xs)), jnp.asarray(rng.normal(size=ks))
        y, want = _values_and_direct(depthwise.conv_depthwise, x, k, config, rng)
        np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("xs", "ks", "config"), [
    # 5 images, 2 a chunk: a loop over two chunks, the fifth image after it
    ((5, 9, 8, 3), (3, 3, 1, 3), ConvConfig(stride=(2, 2), padding=((1, 1), (1, 1)), groups=3)),
    # a channel multiplier, unequal strides and dilation, padding at the end only
    ((4, 8, 7, 2), (3, 2, 1, 4), ConvConfig(stride=(2, 1), padding=((0, 2), (1, 0)),
                                            dilation=(1, 2), groups=2)),
], ids=["remainder", "multiplier"])
def test_depthwise_batch_loop_matches_direct(xs, ks, config, monkeypatch, rng):
    """A strided layer over LOOP_BYTES runs as a loop over chunks of images: values and both
    gradients as direct's, under vmap as well."""
    per_image = 8 * (np.prod(xs[1:]) + np.prod(config.output_hw(xs[1:3], ks[:2])) * ks[-1])
    monkeypatch.setattr(depthwise, "LOOP_BYTES", 0)
    monkeypatch.setattr(depthwise, "CHUNK_BYTES", 2 * per_image)
    assert depthwise.batch_chunk(xs, ks, config, 8) == 2
    x, k = jnp.asarray(rng.normal(size=xs)), jnp.asarray(rng.normal(size=ks))
    y, want = _values_and_direct(depthwise.conv_depthwise, x, k, config, rng)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    ks2 = jnp.stack([k, 2 * k])
    got = jax.jit(jax.vmap(lambda k: depthwise.conv_depthwise(x, k, config)))(ks2)
    np.testing.assert_allclose(got[1], 2 * want, rtol=1e-12, atol=1e-12)


def test_depthwise_batch_loop_bounds_the_working_memory():
    """A large strided layer loops over its images: the compiled temporaries stay near one
    chunk, not the padded input of the whole batch (47 MiB here), forward and backward."""
    xs, ks = (16, 69, 69, 152), (3, 3, 1, 152)
    assert depthwise.batch_chunk(xs, ks, ConvConfig(stride=(2, 2), padding=((1, 1), (1, 1)),
                                                    groups=152)) == 2

    def conv(x, k):
        return jaxconv.conv2d(x, k, stride=2, padding="SAME", groups=152, algorithm="depthwise")

    args = (jax.ShapeDtypeStruct(xs, jnp.float32), jax.ShapeDtypeStruct(ks, jnp.float32))
    x_bytes = 4 * np.prod(xs)
    temp = jax.jit(conv).lower(*args).compile().memory_analysis().temp_size_in_bytes
    assert temp < x_bytes / 2, (temp, x_bytes)
    grad = jax.jit(jax.grad(lambda x, k: jnp.sum(conv(x, k) ** 2), argnums=(0, 1)))
    temp = grad.lower(*args).compile().memory_analysis().temp_size_in_bytes
    assert temp < 1.5 * x_bytes, (temp, x_bytes)


# Strided, padded at the end only: the forward reads its taps from x itself, each tap padded at
# its end (MobileNet's SAME stride 2 on even sizes; a dilated tap wholly past the end; a
# channel multiplier; VALID at stride 3).
UNPADDED_CASES = [
    ((2, 8, 8, 3), (3, 3, 1, 3), ConvConfig(stride=(2, 2), padding=((0, 1), (0, 1)), groups=3)),
    ((1, 7, 9, 4), (3, 2, 1, 4), ConvConfig(stride=(2, 3), padding=((0, 0), (0, 2)),
                                            dilation=(1, 2), groups=4)),
    ((1, 5, 5, 2), (3, 3, 1, 2), ConvConfig(stride=(2, 1), padding=((0, 4), (0, 0)),
                                            dilation=(3, 1), groups=2)),
    ((1, 6, 6, 2), (3, 3, 1, 4), ConvConfig(stride=(2, 2), padding=((0, 1), (0, 1)), groups=2)),
    ((1, 9, 9, 1), (3, 3, 1, 1), ConvConfig(stride=(3, 3), groups=1)),
]


def test_depthwise_reads_strided_taps_unpadded(rng):
    """Where :func:`depthwise.reads_unpadded` holds, values equal the float64 reference and
    both gradients equal direct's (the gradients themselves keep the padded form)."""
    assert not depthwise.reads_unpadded(ConvConfig(padding=((0, 1), (0, 1))))  # stride 1
    assert not depthwise.reads_unpadded(ConvConfig(stride=(2, 2), padding=((1, 1), (0, 1))))
    for xs, ks, config in UNPADDED_CASES:
        assert depthwise.reads_unpadded(config)
        x, k = jnp.asarray(rng.normal(size=xs)), jnp.asarray(rng.normal(size=ks))
        y, want = _values_and_direct(depthwise.conv_depthwise, x, k, config, rng)
        ref = conv2d_ref(np.asarray(x), np.asarray(k), stride=config.stride,
                         padding=config.padding, dilation=config.dilation, groups=config.groups)
        np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(want, ref, rtol=1e-12, atol=1e-12)


def test_tap_fused_serves_few_channels_and_short_sums(rng):
    """What tap_fused serves (1-4 channels, groups 1, at most MAX_TERMS terms per output), its
    values against the float64 reference on the forms its tap reads take (padded copy, strided
    unpadded, dilated), and gradients exactly direct's."""
    from jaxconv.convolution import tap_fused

    check = tap_fused.TAP_FUSED.unsupported_reason
    assert "at most 4 input channels" in check((1, 8, 8, 5), (3, 3, 5, 2), np.float32, ConvConfig())
    assert "groups == 1" in check((1, 8, 8, 4), (3, 3, 2, 2), np.float32, ConvConfig(groups=2))
    assert "multiply-adds" in check((1, 9, 9, 3), (5, 5, 3, 2), np.float32, ConvConfig())
    assert check((1, 9, 9, 1), (8, 8, 1, 2), np.float32, ConvConfig()) is None  # 64 terms
    for xs, ks, config in [
        ((2, 9, 8, 3), (3, 3, 3, 5), ConvConfig(padding=((1, 1), (1, 1)))),
        ((1, 8, 10, 3), (3, 3, 3, 9), ConvConfig(stride=(2, 2), padding=((0, 1), (0, 1)))),
        ((1, 11, 7, 1), (5, 3, 1, 4), ConvConfig(stride=(1, 2), padding=((2, 0), (0, 3)),
                                                  dilation=(2, 1))),
    ]:
        x, k = jnp.asarray(rng.normal(size=xs)), jnp.asarray(rng.normal(size=ks))
        y, _ = _values_and_direct(tap_fused.conv_tap_fused, x, k, config, rng)
        ref = conv2d_ref(np.asarray(x), np.asarray(k), stride=config.stride,
                         padding=config.padding, dilation=config.dilation)
        np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


# Second order through depthwise's custom JVP compiles for seconds per case: the default run
# keeps one case per form of the kernel gradient's fold and input gradient; the row-fold edge
# cases and the 5x5 (scatter-free) one run second order with -m slow (first order, above,
# checks every case in the default run).
_SLOW_SECOND_ORDER = {(1, 19, 6, 2), (1, 35, 5, 2), (2, 19, 6, 2), (1, 7, 7, 1)}


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.slow) if c[1] in _SLOW_SECOND_ORDER else c
    for i, c in enumerate(GRAD_CASES) if FULL or i not in (5, 7)],  # one pointwise by default
    ids=_grad_id)
def test_check_grads_second_order(case, rng):
    algorithm, xs, ks, kwargs = case
    x, k = rng.normal(size=xs), rng.normal(size=ks)

    @jax.jit
    def f(x, k):
        return jaxconv.conv2d(x, k, algorithm=algorithm, **kwargs)

    check_grads(f, (x, k), order=2, modes=("fwd",), eps=1.0)
    check_grads(lambda x: f(x, k), (x,), order=2, modes=("rev",), eps=1.0)
    check_grads(lambda k: f(x, k), (k,), order=2, modes=("rev",), eps=1.0)


def test_depthwise_hessian_vector_products_match_direct(rng):
    """Mixed second derivatives (x and kernel together), forward-over-reverse and reverse-over-
    reverse, through the custom JVP's transposed forms."""
    x, k = rng.normal(size=(1, 6, 5, 2)), rng.normal(size=(3, 3, 1, 4))
    kwargs = dict(stride=(2, 1), padding="SAME", groups=2)

    def loss(p, algorithm):
        return jnp.sum(jnp.tanh(jaxconv.conv2d(p[0], p[1], algorithm=algorithm, **kwargs)))

    v = (rng.normal(size=x.shape), rng.normal(size=k.shape))
    for outer in (jax.jvp, None):
        def hvp(algorithm, outer=outer):
            g = jax.grad(lambda p: loss(p, algorithm))
            if outer is None:  # reverse over reverse
                return jax.grad(lambda p: sum(jnp.vdot(a, b) for a, b in zip(g(p), v, strict=True)))((x, k))
            return outer(g, ((x, k),), (v,))[1]

        for a, b in zip(hvp("depthwise"), hvp("direct"), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-11)


# --------------------------------------------------------------------------------------------
# Transformations.

TRANSFORM = [
    ("depthwise", (2, 7, 6, 3), (3, 2, 1, 6), dict(stride=(2, 1), padding=((1, 2), (0, 1)),
                                                   dilation=(1, 2), groups=3)),
    ("pointwise", (2, 7, 6, 4), (1, 1, 2, 6), dict(stride=(2, 1), padding=((1, 2), (0, 1)),
                                                   groups=2)),
]


@pytest.mark.parametrize("case", TRANSFORM, ids=lambda c: c[0])
def test_jit_equals_eager(case, rng):
    algorithm, xs, ks, kwargs = case
    x, k = rng.normal(size=xs), rng.normal(size=ks)
    eager = jaxconv.conv2d(x, k, algorithm=algorithm, **kwargs)
    jitted = jax.jit(lambda x, k: jaxconv.conv2d(x, k, algorithm=algorithm, **kwargs))(x, k)
    np.testing.assert_allclose(jitted, eager, rtol=1e-14, atol=1e-14)
    # the algorithm's own function, run op by op (no jit anywhere), agrees to rounding
    config = ConvConfig(stride=(2, 1), padding=((1, 2), (0, 1)),
                        dilation=kwargs.get("dilation", (1, 1)), groups=kwargs["groups"])
    with jax.disable_jit():
        op_by_op = _registry.get(algorithm).fn(jnp.asarray(x), jnp.asarray(k), config)
    np.testing.assert_allclose(op_by_op, eager, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", TRANSFORM, ids=lambda c: c[0])
def test_vmap_equals_loop(case, rng):
    algorithm, xs, ks, kwargs = case
    x = rng.normal(size=(3, *xs))
    ks_ = rng.normal(size=(3, *ks))

    def f(x, k):
        return jaxconv.conv2d(x, k, algorithm=algorithm, **kwargs)

    np.testing.assert_allclose(jax.vmap(f, in_axes=(0, None))(x, ks_[0]),
                               np.stack([f(xi, ks_[0]) for xi in x]), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(jax.vmap(f)(x, ks_),
                               np.stack([f(xi, ki) for xi, ki in zip(x, ks_, strict=True)]),
                               rtol=1e-13, atol=1e-13)
    # per-example gradients: vmap of grad
    def loss(k, x):
        return jnp.sum(f(x[None], k) ** 2)

    per_example = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(ks_[0], x[0])
    loop = np.stack([jax.grad(loss)(ks_[0], xi) for xi in x[0]])
    np.testing.assert_allclose(per_example, loop, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("in_axes", [
    *([(0, None)] if FULL else []), pytest.param((None, 0), marks=pytest.mark.slow), (0, 0)],
    ids=str)
def test_depthwise_vmap_of_gradients_gather_form(in_axes, rng):
    """vmap of first and second derivatives through the gather-form input gradient (5x4)."""
    x, k = rng.normal(size=(3, 1, 9, 8, 2)), rng.normal(size=(3, 5, 4, 1, 4))
    x, k = (x if in_axes[0] == 0 else x[0]), (k if in_axes[1] == 0 else k[0])
    kwargs = dict(stride=(2, 1), padding=((3, 1), (2, 2)), groups=2)

    def loss(x, k, algorithm):
        return jnp.sum(jnp.sin(jaxconv.conv2d(x, k, algorithm=algorithm, **kwargs)))

    def grads(algorithm):
        return jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(*in_axes, None))(x, k, algorithm)

    def hvp(algorithm):
        def one(x, k):
            return jax.jvp(lambda x: jax.grad(loss, argnums=1)(x, k, algorithm), (x,), (x,))[1]
        return jax.vmap(one, in_axes=in_axes)(x, k)

    for a, b in zip(grads("depthwise"), grads("direct"), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(hvp("depthwise"), hvp("direct"), rtol=1e-10, atol=1e-11)


# --------------------------------------------------------------------------------------------
# Dtypes: bfloat16 / float16 accumulate in float32, rounded once.

DTYPE_CASES = [
    ("depthwise", (2, 9, 8, 16), (7, 7, 1, 32), dict(padding="SAME", groups=16)),
    ("depthwise", (1, 10, 11, 8), (3, 3, 1, 8), dict(stride=2, padding=1, groups=8)),
    ("pointwise", (2, 6, 7, 64), (1, 1, 64, 16), dict()),
    ("pointwise", (2, 6, 7, 64), (1, 1, 16, 16), dict(stride=2, padding="SAME", groups=4)),
]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("case", DTYPE_CASES, ids=_grad_id)
def test_low_precision_dtypes(case, dtype, rng):
    algorithm, xs, ks, kwargs = case
    x = jnp.asarray(rng.uniform(-1, 1, xs), dtype)
    k = jnp.asarray(rng.uniform(-1, 1, ks), dtype)
    y = jaxconv.conv2d(x, k, algorithm=algorithm, precision="highest", **kwargs)
    assert y.dtype == jnp.dtype(dtype)
    ref = conv2d_ref(np.asarray(x, np.float64), np.asarray(k, np.float64), **kwargs)
    assert_close(y, ref, algorithm=algorithm)
    if dtype == "float32":
        return
    # accumulated in float32: the float32 result rounded once, to within one rounding
    y32 = jaxconv.conv2d(x.astype(jnp.float32), k.astype(jnp.float32), algorithm="direct",
                         precision="highest", **kwargs)
    np.testing.assert_allclose(
        np.asarray(y, np.float32), np.asarray(y32.astype(dtype), np.float32),
        atol=float(jnp.finfo(dtype).eps) * float(jnp.max(jnp.abs(y32))),
    )


def test_low_precision_gradients_keep_dtype(rng):
    for algorithm, xs, ks, kwargs in DTYPE_CASES if FULL else DTYPE_CASES[1:3]:
        x = jnp.asarray(rng.uniform(-1, 1, xs), jnp.bfloat16)
        k = jnp.asarray(rng.uniform(-1, 1, ks), jnp.bfloat16)
        dx, dk = jax.grad(
            lambda x, k, a=algorithm, kw=kwargs: jnp.sum(
                jaxconv.conv2d(x, k, algorithm=a, **kw).astype(jnp.float32)),
            argnums=(0, 1))(x, k)
        assert dx.dtype == dk.dtype == jnp.bfloat16


def test_pointwise_passes_precision_to_the_dot():
    x, k = jnp.ones((1, 4, 4, 2), jnp.float32), jnp.ones((1, 1, 2, 3), jnp.float32)
    jaxpr = str(jax.make_jaxpr(
        lambda x, k: jaxconv.conv2d(x, k, algorithm="pointwise", precision="highest"))(x, k))
    assert "dot_general" in jaxpr and "Precision.HIGHEST" in jaxpr, jaxpr


@pytest.mark.parametrize("case", GRAD_CASES[:5] + GRAD_CASES[5:6], ids=_grad_id)
def test_no_convolution_emitter(case, rng):
    """Neither algorithm (nor its gradients, to second order) calls lax.conv_general_dilated."""
    algorithm, xs, ks, kwargs = case
    x, k = jnp.asarray(rng.normal(size=xs)), jnp.asarray(rng.normal(size=ks))

    def loss(x, k):
        return jnp.sum(jnp.sin(jaxconv.conv2d(x, k, algorithm=algorithm, **kwargs)))

    for fn in (loss, jax.grad(loss, argnums=(0, 1)),
               jax.grad(lambda x, k: jnp.sum(jax.grad(loss)(x, k) ** 2), argnums=(0, 1))):
        jaxpr = str(jax.make_jaxpr(fn)(x, k))
        assert "conv_general_dilated" not in jaxpr


# --------------------------------------------------------------------------------------------
# Refusals: conv2d names the reason and the algorithms that can.


@pytest.mark.parametrize(
    ("algorithm", "xs", "ks", "kwargs", "reason"),
    [
        ("depthwise", (1, 8, 8, 64), (3, 3, 64, 8), {},
         "depthwise needs groups == C (x has C=64, groups=1)"),
        ("depthwise", (1, 8, 8, 4), (3, 3, 2, 4), dict(groups=2),
         "depthwise needs groups == C (x has C=4, groups=2)"),
        ("pointwise", (1, 8, 8, 4), (3, 3, 4, 4), {}, "pointwise needs a 1x1 kernel (got kernel 3x3)"),
        ("pointwise", (1, 8, 8, 4), (1, 2, 2, 4), dict(groups=2),
         "pointwise needs a 1x1 kernel (got kernel 1x2)"),
        ("channel_padded", (1, 8, 8, 4), (3, 3, 4, 4), {},
         "channel_padded pads the input channels to a multiple of 4; C=4 already is one "
         "(that is direct)"),
        ("channel_padded", (1, 8, 8, 6), (3, 3, 3, 4), dict(groups=2),
         "channel_padded serves groups == 1 (got groups=2)"),
        ("tap_fused", (1, 8, 8, 8), (3, 3, 8, 4), {},
         "tap_fused serves at most 4 input channels (C=8)"),
        ("tap_fused", (1, 12, 12, 3), (5, 5, 3, 4), {},
         "tap_fused serves at most 64 multiply-adds per output (kh * kw * C = 75)"),
    ],
)
def test_refuses_with_reason(algorithm, xs, ks, kwargs, reason):
    message = (
        rf"conv2d: algorithm='{algorithm}' cannot serve these arguments: {re.escape(reason)}\. "
        r"Algorithms that can: 'direct'.* \(or 'auto'\)"
    )
    with pytest.raises(ValueError, match=message):
        jaxconv.conv2d(np.zeros(xs), np.zeros(ks), algorithm=algorithm, **kwargs)


def test_depthwise_runs_apart_from_its_consumers(rng):
    """The forward and input-gradient tap sums sit in a ``cond`` (a fusion boundary on XLA:CPU);
    a reduction after them, NaN in the kernel's first element, and a kernel batched under vmap
    (where the predicate is batched) all give direct's answer."""
    x = jnp.asarray(rng.normal(size=(3, 9, 8, 2)))
    k = jnp.asarray(rng.normal(size=(3, 3, 1, 4)))

    def pooled(x, k, algorithm):
        y = jaxconv.conv2d(x, k, groups=2, padding=1, algorithm=algorithm)
        return jaxconv.max_pool2d(jaxconv.relu(y))

    jaxpr = str(jax.make_jaxpr(lambda x, k: pooled(x, k, "depthwise"))(x, k))
    assert "cond[" in jaxpr
    np.testing.assert_allclose(jax.jit(pooled, static_argnums=2)(x, k, "depthwise"),
                               pooled(x, k, "direct"), rtol=1e-12, atol=1e-12)
    grad = jax.grad(lambda x, k, a: jnp.sum(pooled(x, k, a) ** 2), argnums=(0, 1))
    for g, w in zip(grad(x, k, "depthwise"), grad(x, k, "direct"), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    nan_k = k.at[0, 0, 0, 0].set(jnp.nan)
    got = jaxconv.conv2d(x, nan_k, groups=2, algorithm="depthwise")
    want = jaxconv.conv2d(x, nan_k, groups=2, algorithm="direct")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[..., 0]).all() and not np.isnan(got[..., 1:]).any()
    np.testing.assert_allclose(got[..., 1:], want[..., 1:], rtol=1e-12, atol=1e-12)
    ks = jnp.stack([k, 2 * k])
    batched = jax.vmap(lambda k: jaxconv.conv2d(x, k, groups=2, algorithm="depthwise"))(ks)
    for b in range(2):
        np.testing.assert_allclose(batched[b], conv_direct(x, ks[b], ConvConfig(groups=2)),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("stride", "bound"), [(1, 5.0), (2, 2.5)])
def test_depthwise_gradients_keep_the_taps_in_their_fusions(stride, bound):
    """The tap sums and the kernel gradient's fold stay inside loop fusions: the gradients'
    temporary buffers stay within a few times the input (3.2x at stride 1, 1.6x at stride 2).
    Two rewrites that compute the same values made XLA:CPU write every tap's product out
    (9-12x, 3.9x) and ran the training 3-8x slower: folding with ``jnp.sum`` per tap, and the
    tap sum with ``lax.mul`` / ``broadcast_in_dim`` instead of its operators."""
    xs, ks = (2, 20, 20, 8), (3, 3, 1, 8)
    grads = jax.jit(jax.grad(lambda x, k: jnp.sum(jaxconv.conv2d(
        x, k, stride=stride, padding="SAME", groups=8, algorithm="depthwise") ** 2),
        argnums=(0, 1)))
    compiled = grads.lower(jax.ShapeDtypeStruct(xs, jnp.float32),
                           jax.ShapeDtypeStruct(ks, jnp.float32)).compile()
    assert compiled.memory_analysis().temp_size_in_bytes < bound * 4 * np.prod(xs)


@pytest.mark.parametrize(("rows", "expected"), [
    (1, (1, 1)), (7, (7, 7)), (256, (16, 256)), (224, (16, 224)), (18, (9, 18)), (24, (12, 24)),
    (17, (16, 32)), (38, (16, 48)), (13, (13, 13)),
])
def test_depthwise_fold_plan(rows, expected):
    assert depthwise._fold(rows) == expected


def test_checks_accept_what_they_serve():
    f32 = jnp.dtype("float32")
    assert depthwise.check((2, 9, 9, 5), (7, 7, 1, 15), f32, ConvConfig(groups=5)) is None
    assert depthwise.check((2, 9, 9, 1), (3, 3, 1, 2), f32, ConvConfig(groups=1)) is None
    assert pointwise.check((2, 9, 9, 6), (1, 1, 2, 6), f32,
                           ConvConfig(stride=(2, 3), padding=((4, 0), (1, 1)), groups=3)) is None
    names = _registry.applicable((2, 9, 9, 5), (1, 1, 1, 5), f32, ConvConfig(groups=5))
    assert "depthwise" in names and "pointwise" in names


# --------------------------------------------------------------------------------------------
# The shared reference tests pick both up.


def test_shared_reference_tests_cover_both():
    import test_conv

    assert {"depthwise", "pointwise"} <= set(test_conv.ALGORITHMS)
    f64 = jnp.dtype("float64")
    served = {"depthwise": 0, "pointwise": 0}
    for c in test_conv.CASES:
        config = ConvConfig(groups=c["groups"])
        for name in served:
            why = _registry.get(name).unsupported_reason(
                (c["n"], c["h"], c["w"], c["c"]), (c["kh"], c["kw"], c["c"] // c["groups"], c["o"]),
                f64, config)
            served[name] += why is None
    assert served["depthwise"] >= 10 and served["pointwise"] >= 3, served


# --------------------------------------------------------------------------------------------
# channel_padded: XLA's convolution with the input channels padded to a multiple of 4.


@pytest.mark.parametrize(("c", "kwargs"), every_level(  # JAXCONV_FULL_TESTS=1: every pair
    [(c, kwargs) for kwargs in [dict(), dict(stride=2, padding=3),
                                dict(padding="SAME", dilation=(1, 2))] for c in [1, 3, 5, 6]]),
    ids=str)
def test_channel_padded_matches_direct_and_its_gradients(c, kwargs, rng):
    x = rng.normal(size=(2, 11, 10, c))
    k = rng.normal(size=(3, 4, c, 5))

    def loss(x, k, algorithm):
        return jnp.sum(jnp.sin(jaxconv.conv2d(x, k, algorithm=algorithm, **kwargs)))

    np.testing.assert_allclose(jaxconv.conv2d(x, k, algorithm="channel_padded", **kwargs),
                               jaxconv.conv2d(x, k, algorithm="direct", **kwargs),
                               rtol=1e-12, atol=1e-12)
    got = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(x, k, "channel_padded")
    want = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(x, k, "direct")
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize(("xs", "ks", "config", "reason"), [
    ((2, 9, 9, 4), (3, 3, 4, 8), ConvConfig(), "C=4 already is one"),
    ((2, 9, 9, 6), (3, 3, 3, 6), ConvConfig(groups=2), "serves groups == 1 (got groups=2)"),
    ((2, 9, 3), (3, 3, 8), ConvConfig(stride=(1,), padding=((0, 0),), dilation=(1,)),
     "serves 2-D convolutions (got 1 spatial dims)"),
])
def test_channel_padded_refuses_with_reason(xs, ks, config, reason):
    from jaxconv.convolution import channel_padded

    assert reason in channel_padded.check(xs, ks, jnp.float32, config)


@pytest.mark.parametrize(("xs", "ks", "config", "slow"), [
    ((8, 64, 64, 3), (3, 3, 3, 17), ConvConfig(), True),  # the slow ranges: 17-32, 65-80
    ((8, 64, 64, 3), (3, 3, 3, 32), ConvConfig(), True),
    ((8, 64, 64, 3), (3, 3, 3, 80), ConvConfig(), True),
    ((8, 128, 128, 3), (7, 7, 3, 32), ConvConfig(stride=(2, 2)), True),  # a stem
    ((8, 64, 64, 3), (3, 3, 3, 16), ConvConfig(), False),  # XLA's 3 channels fast
    ((8, 64, 64, 3), (3, 3, 3, 33), ConvConfig(), False),
    ((4, 112, 112, 5), (3, 3, 5, 24), ConvConfig(), False),  # measured for C = 3 only
    ((8, 64, 64, 6), (3, 3, 3, 24), ConvConfig(groups=2), False),
])
def test_slow_rgb_outputs_are_a_cost_term_of_direct(xs, ks, config, slow):
    """XLA:CPU's slow 3-channel output counts are no rule of auto's: a term of direct's cost,
    equal to its flops where the path is slow, which the fit prices."""
    from jaxconv.convolution import cost_model, direct

    assert direct.slow_rgb_path(xs, ks, config) == slow
    terms = cost_model.cost_terms("direct", xs, ks, config)
    flops = max(v for t, v in terms.items() if t.startswith("flop") and t != "flop_rgb_slow")
    assert terms["flop_rgb_slow"] == (flops if slow else 0.0)
