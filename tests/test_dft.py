"""What is specific to ``algorithm="dft"`` (the shared products live in ``test_conv.py``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ref_conv import conv2d_ref
from tolerances import assert_close

import jaxconv
from jaxconv.convolution import _registry, dft
from jaxconv.convolution._registry import ConvConfig


@pytest.mark.parametrize(("h", "w"), [(8, 8), (7, 9), (1, 5), (12, 1)])
def test_matrices_are_the_discrete_fourier_transform(h, w, rng):
    """Each matrix against numpy's FFT: forward along W (real half-spectrum), forward along H
    on interleaved (re, im) rows, and the inverses back to the signal."""
    m = dft._matrices(h, w, 1, 1, (1, 1), (1, 1), h, w)
    wf = w // 2 + 1
    x = rng.standard_normal((w, 3))
    spec = np.fft.rfft(x, axis=0)
    np.testing.assert_allclose(m["w"] @ x, np.concatenate([spec.real, spec.imag]), atol=1e-12)
    z = rng.standard_normal((h, 3)) + 1j * rng.standard_normal((h, 3))
    rows = np.stack([z.real, z.imag], axis=1).reshape(2 * h, 3)  # (h, re/im) interleaved
    full = np.fft.fft(z, axis=0)
    np.testing.assert_allclose(m["h_re"] @ rows, full.real, atol=1e-12)
    np.testing.assert_allclose(m["h_im"] @ rows, full.imag, atol=1e-12)
    back = m["ih_cos"] @ full.real - m["ih_sin"] @ full.imag
    np.testing.assert_allclose(back, z.real, atol=1e-12)
    half = np.fft.rfft(x, axis=0)
    assert m["iw"].shape == (w, 2 * wf)
    np.testing.assert_allclose(m["iw"] @ np.concatenate([half.real, half.imag]), x, atol=1e-12)


@pytest.mark.parametrize(("x_shape", "k_shape", "kwargs"), [
    ((2, 17, 23, 5), (4, 3, 5, 7), dict()),  # odd sides: no Nyquist column
    ((2, 16, 22, 3), (3, 5, 3, 4), dict(stride=(2, 3), padding=((1, 2), (0, 3)))),
    ((1, 20, 19, 4), (3, 3, 4, 6), dict(dilation=(2, 3), padding="SAME")),
    ((3, 9, 12, 2), (2, 2, 2, 3), dict(stride=3, dilation=2)),
    ((1, 6, 6, 1), (6, 6, 1, 1), dict()),  # the kernel covers the image: one output
])
def test_matches_float64_reference(x_shape, k_shape, kwargs, rng):
    x = rng.standard_normal(x_shape)
    k = rng.standard_normal(k_shape)
    ref = conv2d_ref(x, k, **kwargs)
    y = np.asarray(jaxconv.conv2d(x.astype(np.float32), k.astype(np.float32), algorithm="dft",
                                  **kwargs))
    assert y.shape == ref.shape
    assert_close(y, ref, algorithm="dft")


def test_float64_is_exact_to_its_tolerance(rng):
    with jax.enable_x64(True):
        x = rng.standard_normal((2, 30, 26, 4))
        k = rng.standard_normal((7, 5, 4, 3))
        y = np.asarray(jaxconv.conv2d(jnp.asarray(x), jnp.asarray(k), algorithm="dft",
                                      stride=2, padding="SAME"))
    assert y.dtype == np.float64
    ref = conv2d_ref(x, k, stride=2, padding="SAME")
    assert np.abs(y - ref).max() <= 1e-12 * np.abs(ref).max()


@pytest.mark.parametrize(("x_shape", "k_shape", "kwargs", "reason"), [
    ((1, 8, 8, 4), (3, 3, 2, 4), dict(groups=2), "dft serves groups == 1 (got groups=2)"),
    ((1, 16, 3), (3, 3, 3), dict(), "dft"),
    ((1, 250, 40, 1), (3, 3, 1, 1), dict(padding=4), "dft serves padded sides up to 256 (got 258x48)"),
])
def test_refuses_with_reason(x_shape, k_shape, kwargs, reason):
    conv = jaxconv.conv1d if len(x_shape) == 3 else jaxconv.conv2d
    with pytest.raises(ValueError, match="dft") as err:
        conv(np.zeros(x_shape, np.float32), np.zeros(k_shape, np.float32), algorithm="dft",
             **kwargs)
    assert reason in str(err.value)


def test_cost_terms_count_the_gemms():
    config = ConvConfig()
    small = dft.dft_cost_terms((8, 64, 64, 32), (11, 11, 32, 32), config)
    wide = dft.dft_cost_terms((8, 64, 64, 64), (11, 11, 64, 32), config)
    assert small["product_flop"] == 8.0 * 64 * 33 * 8 * 32 * 32
    assert wide["product_flop"] == 2 * small["product_flop"]
    assert wide["transform_flop"] > small["transform_flop"]
    assert all(v >= 0 for v in small.values())
    assert _registry.get("dft").cost_terms is dft.dft_cost_terms


def test_layer_error_scales_with_max_abs_y(rng):
    """The GEMM transforms of a 64-point side keep float32 errors well inside fft's bound."""
    x = rng.standard_normal((2, 64, 64, 32)).astype(np.float32)
    k = (rng.standard_normal((11, 11, 32, 32)) / 11).astype(np.float32)
    ref = conv2d_ref(x, k)
    y = np.asarray(jaxconv.conv2d(x, k, algorithm="dft"))
    bound = float(np.finfo(np.float32).eps) * np.log2(64 * 64) * np.abs(ref).max()
    assert np.abs(y - ref).max() <= bound
