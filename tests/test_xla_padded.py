"""What is specific to ``algorithm="xla_padded"`` (XLA's convolution kept off the VALID path).

The shared products of ``tests/test_conv.py`` cover its results, gradients and transformations;
here: exact equality with ``direct`` (it must be the same convolution, only padded and cropped)
on VALID and padded configurations, including strides and dilations where the appended zero row
does or does not create an extra output row, gradients equal to direct's, and the padding it adds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv
from jaxconv.convolution import _registry, cost_model
from jaxconv.convolution._registry import ConvConfig
from jaxconv.convolution.direct import conv_direct
from jaxconv.convolution.xla_padded import EXTRA_BOTTOM_ROWS, conv_xla_padded, padded_config

CONFIGS = [
    ConvConfig(),
    ConvConfig(stride=(2, 2)),  # H=13, k=3: (13 - 3) % 2 == 0, the extra row adds no output
    ConvConfig(stride=(3, 2)),  # (13 - 3) % 3 == 1
    ConvConfig(stride=(2, 3), dilation=(2, 1)),  # (13 - 5) % 2 == 0
    ConvConfig(stride=(5, 1)),  # (13 - 3) % 5 == 0, 4 == s - 1: the extra row adds one output
    ConvConfig(stride=(1, 1), dilation=(3, 2)),
    ConvConfig(groups=2),
    ConvConfig(stride=(2, 1), groups=4),  # depthwise
    ConvConfig(padding=((1, 1), (1, 1))),  # already padded: passed to XLA unchanged
    ConvConfig(stride=(2, 3), padding=((1, 3), (2, 0)), dilation=(2, 1)),
    ConvConfig(padding=((0, 0), (0, 2))),
]


def _inputs(rng, config, dtype=np.float64, h=13, w=11):
    x = jnp.asarray(rng.normal(size=(2, h, w, 4)), dtype)
    k = jnp.asarray(rng.normal(size=(3, 2, 4 // config.groups, 8)), dtype)
    return x, k


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_equals_direct(config, rng):
    x, k = _inputs(rng, config)
    got = conv_xla_padded(x, k, config)
    want = conv_direct(x, k, config)
    assert got.shape == want.shape == (2, *config.output_hw((13, 11), (3, 2)), 8)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("h", range(7, 13))
@pytest.mark.parametrize("stride", [1, 2, 3, 4])
def test_every_remainder(h, stride, rng):
    """Every (H - k_eff) % stride: the crop always leaves exactly direct's rows."""
    config = ConvConfig(stride=(stride, 1), dilation=(2, 1))
    x, k = _inputs(rng, config, h=h)
    np.testing.assert_allclose(conv_xla_padded(x, k, config), conv_direct(x, k, config),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config", [ConvConfig(), ConvConfig(stride=(2, 2), dilation=(1, 2)),
                                    ConvConfig(padding=((1, 1), (0, 1)), groups=2)], ids=str)
def test_gradient_equals_direct(config, rng):
    x, k = _inputs(rng, config)
    g = jnp.asarray(rng.normal(size=conv_direct(x, k, config).shape))

    def loss(fn):
        return jax.jit(jax.grad(lambda a, b: jnp.sum(fn(a, b, config) * g), argnums=(0, 1)))

    for got, want in zip(loss(conv_xla_padded)(x, k), loss(conv_direct)(x, k), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_float32_through_conv2d_vmap(rng):
    x = rng.normal(size=(3, 2, 20, 18, 5)).astype(np.float32)
    k = rng.normal(size=(5, 5, 5, 6)).astype(np.float32)

    def f(a, algorithm):
        return jaxconv.conv2d(a, k, algorithm=algorithm)

    got = jax.jit(jax.vmap(lambda a: f(a, "xla_padded")))(x)
    want = jax.vmap(lambda a: f(a, "direct"))(x)
    assert got.shape == want.shape == (3, 2, 16, 14, 6)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def test_padded_config():
    valid = ConvConfig(stride=(2, 3), dilation=(1, 2), groups=2)
    run = padded_config(valid)
    assert run.padding == ((0, EXTRA_BOTTOM_ROWS), (0, 0))
    assert (run.stride, run.dilation, run.groups) == (valid.stride, valid.dilation, valid.groups)
    padded = ConvConfig(padding=((0, 0), (1, 0)))
    assert padded_config(padded) is padded


def test_registered_with_cost_terms():
    alg = _registry.get("xla_padded")
    assert "VALID" in alg.serves
    # with zero padding it would run exactly direct: it says so instead of serving
    padded = ConvConfig(padding=((1, 1), (1, 1)))
    assert "exactly direct" in alg.unsupported_reason((1, 8, 8, 3), (3, 3, 3, 2), np.float32, padded)
    assert alg.unsupported_reason((1, 8, 8, 3), (3, 3, 3, 2), np.float32, ConvConfig()) is None
    terms = cost_model.cost_terms("xla_padded", (8, 64, 64, 32), (3, 3, 32, 32), ConvConfig())
    # one extra output row (63 instead of 62) on the padded path
    assert terms["flop"] == 2.0 * 8 * 63 * 62 * 9 * 32 * 32
