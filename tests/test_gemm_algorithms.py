"""What is specific to the GEMM-based algorithms ``im2col`` and ``winograd``.

The shared products of ``tests/test_conv.py`` cover their results, gradients and transformations;
here: im2col's chunking (a tiny chunk size against ``direct``), winograd's refusals, winograd's
float32 error against a float64 reference, gradients against ``direct``'s, the cost helpers.
The chunk-size products keep every config at the smallest chunk and every chunk size once by
default (every pair under ``JAXCONV_FULL_TESTS=1``).
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FULL, cover
from ref_conv import conv2d_ref

import jaxconv
from jaxconv.convolution import cost_model, im2col, mec, winograd
from jaxconv.convolution._registry import ConvConfig
from jaxconv.convolution.direct import conv_direct

CONFIGS = [
    ConvConfig(),
    ConvConfig(stride=(2, 3), padding=((1, 3), (2, 0)), dilation=(2, 1)),
    ConvConfig(padding=((1, 1), (1, 1)), groups=2),
    ConvConfig(stride=(1, 2), dilation=(1, 2), groups=4),  # depthwise
]


def chunk_pairs(configs, chunks) -> list[tuple]:
    """``(config, chunk_bytes)``: each config at the smallest chunk, each chunk size once."""
    def levels(pair):
        config, chunk = pair
        return {("chunk", chunk)} | ({("smallest", str(config))} if chunk == chunks[0] else set())

    return cover([(c, b) for c in configs for b in chunks], levels)


@pytest.mark.parametrize(("config", "chunk_bytes"), chunk_pairs(CONFIGS, [1, 700, 6000, 10**9]),
                         ids=str)
def test_im2col_chunks_match_direct(config, chunk_bytes, rng):
    x = jnp.asarray(rng.normal(size=(4, 13, 11, 4)))
    k = jnp.asarray(rng.normal(size=(3, 2, 4 // config.groups, 8)))
    got = im2col.conv_im2col(x, k, config, chunk_bytes=chunk_bytes)
    np.testing.assert_allclose(got, conv_direct(x, k, config), rtol=1e-12, atol=1e-12)


ROW = 6 * 3 * 2 * 3 * 8  # one output row's patches: W_out * kh * kw * C * itemsize
IMAGE = 7 * ROW


@pytest.mark.parametrize(
    ("chunk_bytes", "expected"),
    [(10**9, (6, 7)), (3 * IMAGE, (3, 7)), (4 * IMAGE, (3, 7)), (4 * ROW, (1, 4)), (1, (1, 1))],
)
def test_plan_chunks(chunk_bytes, expected):
    """Whole images while they fit (a divisor of N of them), else equal blocks of output rows."""
    plan = im2col.plan_chunks((6, 9, 7, 3), (3, 2, 3, 5), ConvConfig(), chunk_bytes, itemsize=8)
    assert plan == expected


def test_im2col_chunking_through_conv2d_and_grad(monkeypatch, rng):
    """A tiny module limit forces one output row per chunk; results and gradients still match."""
    monkeypatch.setattr(im2col, "CPU_CHUNK_BYTES", 1)
    monkeypatch.setattr(im2col, "MAX_PATCH_BYTES", 1)
    x = rng.normal(size=(2, 9, 8, 3))  # a shape no other test traces, so this compiles afresh
    k = rng.normal(size=(2, 3, 3, 2))
    assert im2col.im2col_cost_terms(x.shape, k.shape, ConvConfig(), itemsize=8)["chunks"] == 16

    def loss(x, k, algorithm):
        return jnp.sum(jnp.sin(jaxconv.conv2d(x, k, padding=(0, 1), algorithm=algorithm)))

    np.testing.assert_allclose(
        jaxconv.conv2d(x, k, algorithm="im2col"), jaxconv.conv2d(x, k, algorithm="direct"),
        rtol=1e-12,
    )
    got = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(x, k, "im2col")
    want = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(x, k, "direct")
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize(
    ("kernel", "kwargs", "got"),
    [
        ((5, 5), {}, "kernel 5x5, stride (1, 1), dilation (1, 1)"),
        ((3, 2), {}, "kernel 3x2, stride (1, 1), dilation (1, 1)"),
        ((1, 1), {}, "kernel 1x1, stride (1, 1), dilation (1, 1)"),
        ((3, 3), dict(stride=2), "kernel 3x3, stride (2, 2), dilation (1, 1)"),
        ((3, 3), dict(stride=(1, 2)), "kernel 3x3, stride (1, 2), dilation (1, 1)"),
        ((3, 3), dict(dilation=2), "kernel 3x3, stride (1, 1), dilation (2, 2)"),
    ],
)
def test_winograd_refuses_with_reason(kernel, kwargs, got):
    x = np.zeros((1, 12, 12, 2))
    k = np.zeros((*kernel, 2, 1))
    message = (
        r"conv2d: algorithm='winograd' cannot serve these arguments: winograd serves 3x3 kernels "
        rf"with stride 1 and dilation 1 \(got {re.escape(got)}\)\. Algorithms that can: "
        r"'direct', .*'im2col'.* \(or 'auto'\)"
    )
    with pytest.raises(ValueError, match=message):
        jaxconv.conv2d(x, k, algorithm="winograd", **kwargs)


def test_winograd_serves_groups_padding_and_dtypes():
    cfg = ConvConfig(padding=((2, 0), (1, 3)), groups=4)
    for dtype in ("float64", "float32", "bfloat16", "float16"):
        assert winograd.check((1, 5, 5, 4), (3, 3, 1, 8), jnp.dtype(dtype), cfg) is None


@pytest.mark.parametrize("channels", [8, 128])
def test_winograd_float32_error_vs_float64_reference(channels, rng):
    """F(2x2, 3x3) in float32 is as accurate as direct: max error <= 2x direct's + 1 ulp."""
    x = rng.normal(size=(2, 18, 21, channels)).astype(np.float32)
    k = rng.normal(size=(3, 3, channels, 16)).astype(np.float32)
    ref = conv2d_ref(x.astype(np.float64), k.astype(np.float64), padding="SAME")
    scale = np.max(np.abs(ref))
    err = {
        a: np.max(np.abs(np.asarray(jaxconv.conv2d(x, k, padding="SAME", algorithm=a)) - ref))
        for a in ("direct", "winograd")
    }
    assert err["winograd"] <= 2 * err["direct"] + 1.2e-7 * scale, err
    assert err["winograd"] <= 1e-6 * scale, err


@pytest.mark.parametrize("algorithm", ["im2col", "mec", "winograd"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_accumulates_in_float32(algorithm, dtype, rng):
    """bfloat16 / float16 results are the float32 result rounded once (not a low-precision sum)."""
    x = jnp.asarray(rng.normal(size=(1, 10, 10, 64)), dtype)
    k = jnp.asarray(rng.normal(size=(3, 3, 64, 4)), dtype)
    y = jaxconv.conv2d(x, k, algorithm=algorithm)
    assert y.dtype == jnp.dtype(dtype)
    y32 = jaxconv.conv2d(x.astype(jnp.float32), k.astype(jnp.float32), algorithm="direct")
    np.testing.assert_allclose(
        np.asarray(y, np.float32), y32.astype(dtype).astype(jnp.float32),
        atol=2 * float(jnp.finfo(dtype).eps) * float(jnp.max(jnp.abs(y32))),
    )


GRAD_KW = [
    dict(),
    dict(padding="SAME", groups=2),
    dict(padding=((0, 2), (1, 1)), groups=4),
]
GRAD_CASES = [
    *((a, kw) for a in ("im2col", "mec", "winograd") for kw in GRAD_KW),
    *((a, dict(stride=(2, 1), dilation=(1, 2), padding=1)) for a in ("im2col", "mec")),
    ("mec", dict(stride=(3, 2), dilation=(2, 1), padding=(2, 1))),
]


@pytest.mark.parametrize(("algorithm", "kwargs"), GRAD_CASES, ids=str)
def test_gradients_match_direct(algorithm, kwargs, rng):
    x = rng.normal(size=(2, 9, 10, 4))
    k = rng.normal(size=(3, 3, 4 // kwargs.get("groups", 1), 8))

    def loss(x, k, algorithm):
        return jnp.sum(jnp.cos(jaxconv.conv2d(x, k, algorithm=algorithm, **kwargs)))

    got = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(x, k, algorithm)
    want = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(x, k, "direct")
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-11)
    # forward mode too (the custom JVP)
    t = rng.normal(size=x.shape), rng.normal(size=k.shape)
    got_t = jax.jvp(lambda x, k: loss(x, k, algorithm), (x, k), t)[1]
    want_t = jax.jvp(lambda x, k: loss(x, k, "direct"), (x, k), t)[1]
    np.testing.assert_allclose(got_t, want_t, rtol=1e-10)


# 48 input channels per group: the input gradient is the Winograd convolution of the output
# gradient (im2col.input_gradient_path), padding up to 2 per side and groups through it.
OWN_DX_CASES = [((1, 5, 6, 96), (3, 3, 48, 4), dict(padding=((2, 0), (1, 1)), groups=2)),
                ((2, 4, 5, 48), (3, 3, 48, 3), dict(padding=((1, 1), (1, 1))))]


@pytest.mark.parametrize("algorithm", ["winograd", "winograd4"])
@pytest.mark.parametrize(("xs", "ks", "kwargs"), OWN_DX_CASES, ids=["groups", "same"])
def test_own_input_gradient_values_gradients_and_vmap(algorithm, xs, ks, kwargs, rng):
    from jax.test_util import check_grads

    x, k = rng.normal(size=xs), rng.normal(size=ks)
    assert im2col.input_gradient_path(ks, ConvConfig(**kwargs)) == "own"

    def f(x, k, algorithm=algorithm):
        return jaxconv.conv2d(x, k, algorithm=algorithm, **kwargs)

    # bilinear: eps=1 is exact (tests/test_conv.py)
    check_grads(jax.jit(f), (x, k), order=2, modes=("fwd",), eps=1.0)
    check_grads(jax.jit(lambda x: f(x, k)), (x,), order=2, modes=("rev",), eps=1.0)

    def loss(x, k, algorithm):
        return jnp.sum(jnp.sin(f(x, k, algorithm)))

    xb, kb = np.stack([x, 2 * x]), np.stack([k, -k])
    for g in (jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(0, 0, None)),
              lambda xb, kb, a: jax.grad(lambda xb, kb: jax.vmap(loss, in_axes=(0, 0, None))(
                  xb, kb, a).sum(), argnums=(0, 1))(xb, kb)):
        for got, want in zip(g(xb, kb, algorithm), g(xb, kb, "direct"), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_cost_terms():
    cfg = ConvConfig()
    t = im2col.im2col_cost_terms((8, 64, 64, 32), (5, 5, 32, 16), cfg)
    assert t["patch_bytes"] == 8 * 60 * 60 * 25 * 32 * 4
    assert t["flops"] >= 2 * 8 * 60 * 60 * 25 * 32 * 16
    assert t["flops"] <= 2 * 8 * 64 * 60 * 25 * 32 * 16  # at most one padded row per block
    assert t["chunk_bytes"] <= max(im2col.CPU_CHUNK_BYTES, im2col.MAX_PATCH_BYTES)
    w = winograd.winograd_cost_terms((8, 64, 64, 32), (3, 3, 32, 16), cfg)
    assert w["tiles"] == 8 * 31 * 31
    assert w["flops"] == 2 * 16 * 8 * 31 * 31 * 32 * 16
    # the kernel read, its 16 / 36 transformed taps written and read back
    assert w["kernel_bytes"] == (9 + 2 * 16) * 32 * 16 * 4
    w4 = winograd.winograd_cost_terms((8, 64, 64, 32), (3, 3, 32, 16), cfg, m=4)
    assert w4["kernel_bytes"] == (9 + 2 * 36) * 32 * 16 * 4


def test_deep_layers_charge_for_the_kernel():
    """With a few small images and many channels the kernel weighs as much as the
    activations: its bytes are a cost term of direct, mec and both Winograd variants, and the
    fitted constants have a price for it in both modes (possibly zero: the fit decides)."""
    cfg = ConvConfig(padding=((1, 1), (1, 1)))
    x, k = (4, 7, 7, 512), (3, 3, 512, 512)
    for name in ("direct", "mec", "winograd", "winograd4"):
        assert cost_model.cost_terms(name, x, k, cfg)["kernel_byte"] >= 4 * 9 * 512 * 512, name
        for mode in cost_model.MODES:
            assert "kernel_byte" in cost_model.model("cpu").constants[mode][name], (name, mode)


def test_im2col_working_memory_is_bounded():
    """The patch matrix is never built whole: the compiled temporaries stay well under the
    input's size (the whole patch matrix would be kh * kw = 81 times it)."""
    shape, k = (1, 256, 256, 16), 9
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    kernel = jax.ShapeDtypeStruct((k, k, 16, 16), jnp.float32)
    compiled = jax.jit(lambda a, b: im2col.conv_im2col(a, b, ConvConfig())).lower(x, kernel).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    input_bytes = 4 * np.prod(shape)
    assert temp < input_bytes + 4 * im2col.CPU_CHUNK_BYTES, (temp, input_bytes)


# The default run: each tile size m and each config once (JAXCONV_FULL_TESTS=1: every pair).
@pytest.mark.parametrize(("m", "config"), [
    (m, c) for i, c in enumerate([ConvConfig(padding=((1, 1), (1, 1))),
                                  ConvConfig(padding=((0, 2), (1, 0)), groups=2)])
    for m in (2, 4) if FULL or (m == 4) == (i == 0)], ids=str)
def test_winograd_batch_chunks_match_direct(monkeypatch, m, config, rng):
    """A tiny limit splits the batch into one-image chunks (a lax.map); results and gradients
    still match direct's."""
    monkeypatch.setattr(winograd, "CHUNK_ABOVE_BYTES", 0)
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)
    x = jnp.asarray(rng.normal(size=(3, 9, 7, 4)))
    k = jnp.asarray(rng.normal(size=(3, 3, 4 // config.groups, 6)))
    assert winograd.plan_chunks(x.shape, k.shape, config, m) == 1
    np.testing.assert_allclose(winograd.conv_winograd(x, k, config, m=m),
                               conv_direct(x, k, config), rtol=1e-9, atol=1e-9)

    def loss(f, x, k):
        return jnp.sum(jnp.sin(f(x, k)))

    got = jax.grad(loss, argnums=(1, 2))(lambda a, b: winograd.conv_winograd(a, b, config, m=m),
                                         x, k)
    want = jax.grad(loss, argnums=(1, 2))(lambda a, b: conv_direct(a, b, config), x, k)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-9)


def test_winograd_plan_chunks():
    """Whole batch while the transformed output is small; else the largest divisor of N whose
    chunk fits, and never less than one image."""
    cfg = ConvConfig(padding=((1, 1), (1, 1)))
    assert winograd.plan_chunks((8, 32, 32, 64), (3, 3, 64, 64), cfg, 2) == 8
    # ResNet-50's 8x56x56x64: 51 MB transformed by F(2x2), 6.4 MB per image
    assert winograd.plan_chunks((8, 56, 56, 64), (3, 3, 64, 64), cfg, 2) == 2
    assert winograd.plan_chunks((1, 512, 512, 64), (3, 3, 64, 64), cfg, 2) == 1


# ---------------------------------------------------------------------------------------- mec


MEC_CONFIGS = [
    *CONFIGS,
    # kh = 3, dh = 2, sh = 2: every tap reads the even rows; the odd phase is skipped
    ConvConfig(stride=(2, 1), padding=((2, 1), (0, 0)), dilation=(2, 1)),
    # sh = 3 > kh * dh: one phase per tap
    ConvConfig(stride=(3, 3), padding=((1, 1), (1, 1))),
]


@pytest.mark.parametrize(("config", "chunk_bytes"), chunk_pairs(MEC_CONFIGS, [1, 900, 5000, None]),
                         ids=str)
def test_mec_chunks_and_phases_match_the_reference(config, chunk_bytes, rng):
    """Whole batch, groups of images and row blocks of one image all give the reference."""
    x = rng.normal(size=(5, 13, 11, 4))
    k = rng.normal(size=(3, 2, 4 // config.groups, 8))
    want = conv2d_ref(x, k, stride=config.stride, padding=config.padding,
                      dilation=config.dilation, groups=config.groups)
    got = mec.conv_mec(jnp.asarray(x), jnp.asarray(k), config, chunk_bytes=chunk_bytes)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_mec_plan_chunks():
    """Equal groups of whole images while one fits; else equal row blocks of one image."""
    same = ConvConfig(padding=((1, 1), (1, 1)))
    # 8x32x32x64 -> 64, 3x3: 32 rows x 32 x (3 * 64 + 3 * 64) floats = 1.5 MiB per image
    assert mec.plan_chunks((8, 32, 32, 64), (3, 3, 64, 64), same) == (4, 32)  # 4 + 4, not 6 + 2
    assert mec.plan_chunks((8, 32, 32, 64), (3, 3, 64, 64), same, 2**30) == (8, 32)
    assert mec.plan_chunks((8, 32, 32, 64), (3, 3, 64, 64), same, 1) == (1, 1)  # one row each
    # 1x512x512x64, 3x3: 384 MiB of P and Z -> 39 blocks of 14 rows (at most 10 MiB each)
    assert mec.plan_chunks((1, 512, 512, 64), (3, 3, 64, 64), same) == (1, 14)
    assert mec.plan_chunks((0, 8, 8, 8), (3, 3, 8, 8), same) == (1, 8)


def test_mec_cost_terms():
    """The GEMM's flops count the rows past the output that the taps read (no more), and a
    strided problem's phases carry only their own taps."""
    t = mec.mec_cost_terms((8, 64, 64, 32), (5, 5, 32, 16), ConvConfig())
    m = 8 * 64 * 60  # every input row, 60 output columns
    assert t["flop"] == 2 * m * (5 * 32) * (5 * 16)
    assert t["byte"] == 4 * m * (5 * 32 + 5 * 16)
    # stride 2, 3 taps: phase 0 holds taps 0 and 2, phase 1 tap 1 -> 3 taps' worth of flops
    s = mec.mec_cost_terms((1, 9, 9, 4), (3, 3, 4, 2), ConvConfig(stride=(2, 2)))
    ho = wo = 4
    assert s["flop"] == 2 * ((ho + 1) * 2 + ho * 1) * wo * 3 * 4 * 2


@pytest.mark.parametrize("n, unrolled_bytes", [
    (2, None),  # two chunks, unrolled
    (17, None),  # more than MAX_UNROLLED chunks: a loop over 8, the 17th image after it
    (4, 1),  # two chunks, but more than UNROLLED_BYTES in all: a loop
])
def test_mec_batch_loop_matches_the_reference(n, unrolled_bytes, rng, monkeypatch):
    if unrolled_bytes is not None:
        monkeypatch.setattr(mec, "UNROLLED_BYTES", unrolled_bytes)
    x = rng.normal(size=(n, 9, 8, 3))
    k = rng.normal(size=(3, 3, 3, 4))
    cfg = ConvConfig(padding=((1, 1), (0, 2)))
    chunk = 2 * cfg.output_hw((9, 8), (3, 3))[0] * mec._row_bytes(x.shape, k.shape, cfg)
    assert mec.plan_chunks(x.shape, k.shape, cfg, chunk)[0] == 2  # 2 images a chunk
    assert (math.ceil(n / 2) > mec.MAX_UNROLLED) == (n == 17)
    want = conv2d_ref(x, k, padding=cfg.padding)
    run = jax.jit(mec.conv_mec, static_argnames=("config", "chunk_bytes"))
    np.testing.assert_allclose(run(jnp.asarray(x), jnp.asarray(k), cfg, chunk_bytes=chunk),
                               want, rtol=1e-10, atol=1e-10)

    def loss(f, x, k):
        return jnp.sum(jnp.sin(f(x, k)))

    grad = jax.jit(jax.grad(loss, argnums=(1, 2)), static_argnums=0)
    got = grad(lambda a, b: mec.conv_mec(a, b, cfg, chunk_bytes=chunk), x, k)
    want = grad(lambda a, b: conv_direct(a, b, cfg), x, k)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("shape", [(32, 64, 64, 64), (8, 64, 64, 32), (1, 512, 512, 64)],
                         ids=["many images", "a few large images", "one large image"])
def test_mec_working_memory_is_bounded(shape):
    """Many chunks, or a few whose lowered input and GEMM output pass UNROLLED_BYTES, run as a
    loop: the compiled temporaries stay near the padded input and the output, not the lowered
    input and GEMM output of the whole batch, forward and backward."""
    n, h, w, c = shape
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    kernel = jax.ShapeDtypeStruct((5, 5, c, 64), jnp.float32)
    cfg = ConvConfig(padding=((2, 2), (2, 2)))
    whole = 4 * n * (h + 4) * w * (5 * c + 5 * 64)  # P and Z of the whole batch
    io = 4 * n * (h + 4) * (w + 4) * c + 4 * n * h * w * 64  # the padded input and the output
    fwd = jax.jit(lambda a, b: mec.conv_mec(a, b, cfg)).lower(x, kernel).compile()
    temp = fwd.memory_analysis().temp_size_in_bytes
    assert temp < io + whole / 8, (temp, io, whole)
    # backward: each chunk's lowered input is rebuilt, not stored for the whole batch
    grad = jax.jit(jax.grad(lambda a, b: jnp.sum(mec.conv_mec(a, b, cfg)), argnums=(0, 1)))
    temp = grad.lower(x, kernel).compile().memory_analysis().temp_size_in_bytes
    assert temp < 3 * io + whole / 8, (temp, io, whole)


@pytest.mark.parametrize("blocks, unrolled_bytes", [
    (3, None),  # unrolled row blocks
    (10, None),  # more than MAX_UNROLLED: a loop over them
    (3, 1),  # more than UNROLLED_BYTES in all: a loop
])
def test_mec_row_blocks_of_one_image(blocks, unrolled_bytes, rng, monkeypatch):
    if unrolled_bytes is not None:
        monkeypatch.setattr(mec, "UNROLLED_BYTES", unrolled_bytes)
    x = rng.normal(size=(1, 20, 9, 4))
    k = rng.normal(size=(3, 2, 4, 5))
    cfg = ConvConfig(stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(2, 1))
    ho = cfg.output_hw((20, 9), (3, 2))[0]
    chunk = math.ceil(ho / blocks) * mec._row_bytes(x.shape, k.shape, cfg)
    nb, rows = mec.plan_chunks(x.shape, k.shape, cfg, chunk)
    assert nb == 1 and math.ceil(ho / rows) == blocks
    assert (blocks > mec.MAX_UNROLLED) == (blocks == 10)
    want = conv2d_ref(x, k, stride=cfg.stride, padding=cfg.padding, dilation=cfg.dilation)
    got = mec.conv_mec(jnp.asarray(x), jnp.asarray(k), cfg, chunk_bytes=chunk)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
