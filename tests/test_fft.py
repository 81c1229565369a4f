"""What is specific to ``algorithm="fft"`` (the shared products live in ``test_conv.py``)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
from conftest import FULL, every_level
from ref_conv import conv2d_ref
from tolerances import assert_close

import jaxconv
from jaxconv.convolution import _batching, _registry, fft
from jaxconv.convolution._registry import ConvConfig
from jaxconv.convolution.direct import conv_direct


def _smooth(m: int, radices=(2, 3, 5, 7)) -> bool:
    for r in radices:
        while m % r == 0:
            m //= r
    return m == 1


@pytest.mark.parametrize("n", [*range(1, 130), 320, 321, 400, 401, 1000, 1031, 4097])
def test_next_fast_len_is_the_smallest_smooth_length(n):
    m = fft.next_fast_len(n)
    assert m >= n and _smooth(m)
    assert not any(_smooth(j) for j in range(n, m))


def test_next_fast_len_known_values_and_radices():
    assert [fft.next_fast_len(n) for n in (1, 11, 13, 97, 321, 1031)] == [1, 12, 14, 98, 324, 1050]
    assert fft.next_fast_len(7, radices=(2,)) == 8
    assert fft.next_fast_len(11, radices=(2, 3, 5)) == 12


@pytest.mark.parametrize("bad", [0, -3])
def test_next_fast_len_rejects_non_positive(bad):
    with pytest.raises(ValueError, match="next_fast_len: n must be >= 1"):
        fft.next_fast_len(bad)


def test_next_fast_len_rejects_bad_radices():
    with pytest.raises(ValueError, match="radices must be integers >= 2"):
        fft.next_fast_len(10, radices=(1,))


# One program per call: eagerly, each of the transforms' ops compiles on its own.
_jit_fft = jax.jit(fft.conv_fft, static_argnames=("config", "tiles"))


@pytest.mark.parametrize(
    ("x_shape", "k_shape", "groups", "tiles"),
    [
        ((2, 70, 90, 3), (5, 5, 3, 3), 1, (16, 32)),  # elementwise path, uneven last blocks
        *([((1, 64, 64, 3), (7, 4, 3, 6), 1, (24, 16))] if FULL else []),
        ((3, 40, 48, 16), (3, 3, 16, 16), 1, (16, 16)),  # GEMM path
        ((2, 40, 40, 8), (3, 3, 2, 8), 4, (24, 24)),  # grouped
        ((1, 50, 30, 6), (5, 3, 1, 12), 6, (32, 16)),  # depthwise, multiplier 2
    ],
)
def test_overlap_save_matches_single_fft_and_direct(x_shape, k_shape, groups, tiles, rng):
    x = jnp.asarray(rng.standard_normal(x_shape))
    k = jnp.asarray(rng.standard_normal(k_shape))
    config = ConvConfig(groups=groups, padding=((1, 2), (0, 3)), stride=(1, 2), dilation=(2, 1))
    single = _jit_fft(x, k, config, tiles=None)
    tiled = _jit_fft(x, k, config, tiles=tiles)
    ref = jax.jit(conv_direct, static_argnums=2)(x, k, config)
    assert_close(single, ref, algorithm="fft")
    assert_close(tiled, ref, algorithm="fft")
    np.testing.assert_allclose(tiled, single, atol=1e-12 * float(jnp.max(jnp.abs(ref))))


@pytest.mark.parametrize(("x_shape", "k", "o"), [((1, 320, 400, 3), 31, 3), ((2, 64, 64, 32), 7, 32)])
def test_large_images_float32_error_scales_with_max_abs_y(x_shape, k, o, rng):
    """The float32 error, over every path ``auto`` tiling picks, stays << eps * log2(L^2)."""
    x = rng.standard_normal(x_shape).astype(np.float32)
    kern = (rng.standard_normal((k, k, x_shape[-1], o)) / k).astype(np.float32)
    ref = conv2d_ref(x, kern)
    scale = float(np.max(np.abs(ref)))
    lh, lw = fft.next_fast_len(x_shape[1]), fft.next_fast_len(x_shape[2])
    bound = float(np.finfo(np.float32).eps) * np.log2(lh * lw) * scale
    for tiles in ("auto", None):
        y = np.asarray(_jit_fft(jnp.asarray(x), jnp.asarray(kern), ConvConfig(), tiles=tiles))
        err = float(np.max(np.abs(y - ref)))
        assert err <= bound, (tiles, err / scale)
        assert_close(y, ref, algorithm="fft")
    # per element the error is *not* relative: the smallest outputs are far off relatively
    # (this is why the tolerance is against max|y|)
    assert y.dtype == np.float32


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_accumulates_in_float32(dtype, rng):
    # 31x31x8 = 7688 products per output: accumulated in bfloat16 the error would be ~1e-1.
    x = jnp.asarray(rng.standard_normal((1, 48, 56, 8)), dtype)
    k = jnp.asarray(rng.standard_normal((31, 31, 8, 2)), dtype)
    y = jaxconv.conv2d(x, k, algorithm="fft")
    assert y.dtype == dtype
    ref = conv2d_ref(np.asarray(x, np.float64), np.asarray(k, np.float64))
    # only the final rounding to ``dtype`` remains: half an ulp of |y| plus float32's FFT error
    eps = float(jnp.finfo(dtype).eps)
    err = np.abs(np.asarray(y, np.float64) - ref)
    assert np.all(err <= 0.5 * eps * np.abs(ref) + 1e-5 * np.max(np.abs(ref)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stride": 2, "padding": "SAME", "dilation": 2},
        {"groups": 2, "padding": 1},
        {"padding_mode": "reflect", "padding": "SAME"},
    ],
)
def test_gradients_match_direct(kwargs, rng):
    x = jnp.asarray(rng.standard_normal((2, 11, 13, 4)))
    k = jnp.asarray(rng.standard_normal((3, 4, 4 // kwargs.get("groups", 1), 6)))
    w = jnp.asarray(rng.standard_normal(jaxconv.conv2d(x, k, **kwargs).shape))

    def loss(algorithm):
        return lambda x, k: jnp.sum(w * jnp.tanh(jaxconv.conv2d(x, k, algorithm=algorithm, **kwargs)))

    gf = jax.jit(jax.grad(loss("fft"), argnums=(0, 1)))(x, k)
    gd = jax.jit(jax.grad(loss("direct"), argnums=(0, 1)))(x, k)
    for a, b in zip(gf, gd, strict=True):
        assert_close(a, np.asarray(b), algorithm="fft")


@pytest.mark.parametrize(("xs", "ks", "kwargs"), [
    ((5, 9, 8, 3), (3, 3, 3, 4), {"stride": 2, "padding": "SAME"}),  # 2 a chunk, 1 after
    ((4, 40, 3), (5, 3, 2), {"padding": 2, "dilation": 2}),  # 1-D, overlap-save blocks
], ids=["2-D remainder", "1-D"])
def test_batch_loop_matches_direct(xs, ks, kwargs, monkeypatch, rng):
    """A batch whose spectra pass LOOP_BYTES runs as a loop over chunks of images: values and
    both gradients as direct's (direct's float64 result; fft's tolerance)."""
    cfg = jaxconv.conv1d if len(xs) == 3 else jaxconv.conv2d
    canon = ConvConfig(stride=(2, 2), padding=((0, 1), (0, 1))) if len(xs) == 4 else ConvConfig(
        padding=((2, 2),), dilation=(2,))
    def spectra(n):
        return fft.fft_model_terms((n, *xs[1:]), ks, canon)["byte"]

    per_image = spectra(2) - spectra(1)
    monkeypatch.setattr(fft, "LOOP_BYTES", spectra(1) - per_image)  # the kernel's spectrum
    monkeypatch.setattr(fft, "CHUNK_BYTES", 2 * per_image)
    assert fft.batch_chunk(xs, ks, canon) == 2
    x, k = jnp.asarray(rng.standard_normal(xs)), jnp.asarray(rng.standard_normal(ks))
    w = jnp.asarray(rng.standard_normal(cfg(x, k, **kwargs).shape))

    def loss(algorithm):
        return lambda x, k: jnp.sum(w * cfg(x, k, algorithm=algorithm, **kwargs))

    @jax.jit
    def both(x, k):
        return (cfg(x, k, algorithm="fft", **kwargs), cfg(x, k, algorithm="direct", **kwargs),
                jax.grad(loss("fft"), argnums=(0, 1))(x, k),
                jax.grad(loss("direct"), argnums=(0, 1))(x, k))

    y, want, grads, wanted = both(x, k)
    assert_close(y, np.asarray(want), algorithm="fft")
    for a, b in zip(grads, wanted, strict=True):
        assert_close(a, np.asarray(b), algorithm="fft")


def test_batch_loop_bounds_the_working_memory():
    """Large batches loop over chunks of images: the compiled temporaries stay near a chunk's
    spectra, not the whole batch's (81 MiB here, whole)."""
    xs, ks = (8, 128, 128, 3), (7, 7, 3, 32)
    assert 1 <= fft.batch_chunk(xs, ks, ConvConfig(stride=(2, 2), padding=((3, 3), (3, 3)))) < 8
    f = jax.jit(lambda x, k: jaxconv.conv2d(x, k, stride=2, padding=3, algorithm="fft"))
    temp = f.lower(jax.ShapeDtypeStruct(xs, jnp.float32), jax.ShapeDtypeStruct(
        ks, jnp.float32)).compile().memory_analysis().temp_size_in_bytes
    assert temp < 32 * 2**20, temp


@pytest.mark.parametrize(("xs", "ks", "config", "faults"), [
    ((1, 320, 400, 3), (7, 7, 3, 8), ConvConfig(), False),  # the cat: ~12 MiB
    ((8, 128, 128, 3), (7, 7, 3, 32), ConvConfig(stride=(2, 2), padding=((3, 3), (3, 3))),
     False),  # 81 MiB whole, a loop over chunks of images
    ((2, 32, 32, 32, 16), (3, 3, 3, 16, 16), ConvConfig((1, 1, 1), ((1, 1),) * 3, (1, 1, 1)), True),
    ((1, 14, 14, 256), (3, 3, 256, 256), ConvConfig(padding=((1, 1), (1, 1))), True),
], ids=["image", "looped batch", "volume", "deep kernel"])
def test_fault_term_is_the_temporaries_of_the_program_that_runs(xs, ks, config, faults):
    """``fault_byte`` prices temporaries past glibc's mmap threshold: zero below it (a loop
    over chunks of images keeps a large batch below it), the whole estimate above it (a
    volume's or a deep layer's kernel spectra, which no loop over images shrinks). The
    estimate is within 1.7x of what XLA compiles."""
    est = fft.temporaries(xs, ks, config)
    terms = fft.fft_model_terms(xs, ks, config)
    assert terms["fault_byte"] == (est if faults else 0.0)
    assert (est > _batching.MMAP_THRESHOLD) == faults
    f = jax.jit(lambda x, k: fft.conv_fft(x, k, config))
    temp = f.lower(jax.ShapeDtypeStruct(xs, jnp.float32), jax.ShapeDtypeStruct(
        ks, jnp.float32)).compile().memory_analysis().temp_size_in_bytes
    assert 1 / 1.7 < est / temp < 1.7, (est / 2**20, temp / 2**20)


def test_check_grads_tiny():
    x = jnp.arange(2 * 5 * 6 * 2, dtype=jnp.float64).reshape(2, 5, 6, 2) / 10
    k = jnp.linspace(-1.0, 1.0, 2 * 3 * 2 * 3).reshape(2, 3, 2, 3)
    f = lambda x, k: jaxconv.conv2d(x, k, stride=(1, 2), padding=1, algorithm="fft")  # noqa: E731
    # conv is bilinear, so first-order differences with eps=1 are exact. (order=2 with eps=1
    # fails for "direct" too on jax 0.10: the check differentiates the VJP in its cotangent.)
    jax.test_util.check_grads(f, (x, k), order=1, modes=("fwd", "rev"), eps=1.0)


def test_jit_and_vmap(rng):
    x = jnp.asarray(rng.standard_normal((3, 2, 9, 10, 3)))
    k = jnp.asarray(rng.standard_normal((3, 3, 3, 4)))
    f = jax.jit(lambda x: jaxconv.conv2d(x, k, algorithm="fft", padding="SAME"))
    y = jax.vmap(f)(x)
    assert y.shape == (3, 2, 9, 10, 4)
    for i in range(3):
        assert_close(y[i], conv2d_ref(np.asarray(x[i]), np.asarray(k), padding="SAME"), algorithm="fft")


@pytest.mark.parametrize(("x_shape", "k_shape", "tiles"), [
    ((1, 320, 400, 3), (10, 10, 3, 3), (64, 64)),  # the cat: blocks cover 1.2-1.3x, kept
    ((1, 512, 512, 3), (5, 5, 3, 8), (64, 64)),  # RGB: the elementwise contraction's blocks
    ((1, 512, 512, 16), (5, 5, 16, 16), (24, 24)),  # 16 x 16 channels: the GEMMs' blocks
    ((8, 64, 64, 32), (11, 11, 32, 32), None),  # 2 blocks of 48 for 64 points: one FFT
    ((8, 64, 64, 32), (7, 7, 32, 32), None),  # 3 blocks of 32 for 64 points
    ((2, 96, 320, 16), (13, 13, 16, 16), (96, 64)),  # per axis: H whole, W in blocks
])
def test_blocks_never_cover_much_more_than_one_fft(x_shape, k_shape, tiles):
    assert fft.choose_tiles(x_shape, k_shape, ConvConfig()) == tiles


def test_cost_terms_describe_the_computation():
    """The registered terms count the plan conv_fft runs: 24x24 overlap-save tiles (3 x 3
    blocks of 22 outputs per 64x64 image), a GEMM over 32 x 32 channels per frequency,
    blocks * (C + O) transforms."""
    assert fft.choose_tiles((8, 64, 64, 32), (3, 3, 32, 32), ConvConfig()) == (24, 24)
    t = fft.fft_model_terms((8, 64, 64, 32), (3, 3, 32, 32), ConvConfig())
    blocks, freqs = 8 * 3 * 3, 24 * 13
    assert t["transform"] == blocks * (32 + 32)
    assert t["gemm_flop"] == pytest.approx(8.0 * freqs * blocks * 32 * 32) and t["ew_flop"] == 0
    assert t["fft_flop"] == pytest.approx(2.5 * 576 * math.log2(576) * blocks * 64)
    few = fft.fft_model_terms((1, 320, 400, 3), (5, 5, 3, 3), ConvConfig())
    assert few["gemm_flop"] == 0 and few["ew_flop"] > 0  # 3 x 3 channels: elementwise


def test_registered_and_serves_everything():
    names = [a.name for a in jaxconv.algorithms()]
    assert "fft" in names
    algo = _registry.get("fft")
    config = ConvConfig(stride=(3, 2), dilation=(2, 3), groups=2, padding=((4, 0), (1, 1)))
    assert algo.unsupported_reason((1, 5, 5, 2), (2, 2, 1, 2), jnp.float16, config) is None


# fft and dft: the guards both share (spectral_call); dft serves groups == 1 only. The default
# run keeps every configuration, bad value and algorithm (JAXCONV_FULL_TESTS=1: every triple).
NON_FINITE = every_level([
    (kwargs, bad, algorithm)
    for kwargs in [dict(), dict(padding="SAME"), dict(stride=2, dilation=2, padding="SAME"),
                   dict(groups=3, padding=2), dict(padding=1, stride=(1, 3))]
    for bad in [np.nan, np.inf, -np.inf] for algorithm in ["fft", "dft"]
    if algorithm == "fft" or kwargs.get("groups", 1) == 1
])


@pytest.mark.parametrize(("kwargs", "bad", "algorithm"), NON_FINITE)
def test_non_finite_inputs_stay_in_their_receptive_field(kwargs, bad, algorithm):
    """One bad pixel makes exactly the outputs that read it non-finite, as a direct sum does
    (not a whole transform tile), and the others keep their values."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 40, 44, 3)).astype(np.float32)
    x[1, 17, 9, 1] = bad
    k = rng.standard_normal((5, 5, 3 // kwargs.get("groups", 1), 6)).astype(np.float32)
    y = np.asarray(jaxconv.conv2d(x, k, algorithm=algorithm, **kwargs))
    ref = np.asarray(jaxconv.conv2d(x, k, algorithm="direct", precision="highest", **kwargs))
    np.testing.assert_array_equal(~np.isfinite(y), ~np.isfinite(ref))
    assert 0 < (~np.isfinite(ref)).sum() < ref.size // 10
    ok = np.isfinite(ref)
    assert np.abs(y[ok] - ref[ok]).max() <= 1e-5 * np.abs(ref[ok]).max()


def test_finite_inputs_near_the_float_range_stay_finite():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((1, 40, 40, 3)) * 1e36).astype(np.float32)
    k = (rng.standard_normal((7, 7, 3, 3)) * 1e-3).astype(np.float32)
    y = np.asarray(jaxconv.conv2d(x, k, algorithm="fft"))
    ref = np.asarray(jaxconv.conv2d(x, k, algorithm="direct", precision="highest"))
    assert np.isfinite(y).all()
    assert np.abs(y - ref).max() <= 1e-5 * np.abs(ref).max()


@pytest.mark.parametrize("shapes", [((1, 320, 400, 3), (15, 15, 3, 3)),
                                    ((8, 64, 64, 32), (3, 3, 32, 32))])
def test_precision_highest_keeps_auto_to_elementwise_errors(shapes):
    """``precision="highest"``: auto only picks algorithms whose error is relative to each
    output (never fft or winograd), even where the cost model would."""
    sel = jaxconv.select_algorithm(*shapes, backend="cpu", precision="highest")
    assert _registry.get(sel.algorithm).error == "elementwise"
    assert "relative to each output" in sel.unsupported["fft"]
