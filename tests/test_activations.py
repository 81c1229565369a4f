"""Activations against float64 NumPy formulas: values, dtypes, gradients, lookup, errors."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import check_grads_together
from jax.test_util import check_grads
from tolerances import DTYPES, assert_close

import jaxconv
import jaxconv.activations

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# name -> (kwargs, float64 NumPy formula)
FORMULAS = {
    "relu": ({}, lambda x: np.maximum(x, 0)),
    "relu6": ({}, lambda x: np.clip(x, 0, 6)),
    "leaky_relu": ({}, lambda x: np.where(x > 0, x, 0.01 * x)),
    "elu": ({}, lambda x: np.where(x > 0, x, np.expm1(x))),
    "selu": ({}, lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))),
    "gelu": ({}, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    "sigmoid": ({}, _sigmoid),
    "tanh": ({}, np.tanh),
    "softplus": ({}, lambda x: np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))),
    "silu": ({}, lambda x: x * _sigmoid(x)),
    "hard_tanh": ({}, lambda x: np.clip(x, -1, 1)),
    "hard_sigmoid": ({}, lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    "lecun_tanh": ({}, lambda x: 1.7159 * np.tanh(2 * x / 3)),
    "softmax": ({}, _softmax),
    "log_softmax": ({}, lambda x: np.log(_softmax(x))),
}
# non-default arguments, checked the same way
VARIANTS = [
    ("leaky_relu", dict(negative_slope=0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    ("elu", dict(alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    ("gelu", dict(approximate=True),
     lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
    ("softplus", dict(beta=2.0, threshold=5.0),
     lambda x: np.where(2 * x > 5, x, np.log1p(np.exp(np.minimum(2 * x, 5))) / 2)),
    ("hard_tanh", dict(min_val=-0.5, max_val=2.0), lambda x: np.clip(x, -0.5, 2.0)),
    ("softmax", dict(axis=0), lambda x: _softmax(x, axis=0)),
    ("log_softmax", dict(axis=0), lambda x: np.log(_softmax(x, axis=0))),
]
DESIGN_NAMES = (
    "relu relu6 leaky_relu elu selu gelu sigmoid tanh softplus silu hard_tanh hard_sigmoid "
    "lecun_tanh softmax log_softmax"
).split()


def test_every_design_activation_is_tested_and_exported():
    assert set(FORMULAS) == set(DESIGN_NAMES) == set(jaxconv.activations.ACTIVATIONS)
    for name in DESIGN_NAMES:
        assert getattr(jaxconv, name) is jaxconv.activation(name)
        assert name in jaxconv.__all__


def _inputs(dtype):
    # a grid over every regime (kinks at -3, -1, 0, 1, 3, 6; softplus threshold at 20) and the
    # kinks themselves, shaped (2, ...) so the softmax axis matters
    x = np.concatenate([np.linspace(-25, 25, 57), [-3, -1, 0, 1, 3, 6, 20, 0.5, -0.5]])
    x = jnp.asarray(x.reshape(2, -1), dtype)
    return x, np.asarray(x.astype(jnp.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(FORMULAS))
def test_values_and_dtype(name, dtype):
    kwargs, formula = FORMULAS[name]
    x, x64 = _inputs(dtype)
    y = jaxconv.activation(name)(x, **kwargs)
    assert y.dtype == jnp.dtype(dtype) and y.shape == x.shape
    assert_close(y, formula(x64), err_msg=name)


@pytest.mark.parametrize(("name", "kwargs", "formula"), VARIANTS,
                         ids=[f"{n}-{k}" for n, k, _ in VARIANTS])
def test_arguments(name, kwargs, formula):
    x, x64 = _inputs(jnp.float64)
    assert_close(jaxconv.activation(name)(x, **kwargs), formula(x64), err_msg=name)


@pytest.mark.parametrize("name", list(FORMULAS))
def test_jit_and_python_inputs(name):
    f = jaxconv.activation(name)
    x = np.array([[-1.5, 0.25, 2.0]], np.float32)
    np.testing.assert_allclose(jax.jit(f)(x), f(x), rtol=1e-6)
    # Python floats and NumPy arrays are accepted; float64 NumPy stays float64 under x64
    assert f([[-1.5, 0.25, 2.0]]).dtype == jnp.float64


@pytest.mark.parametrize("name", list(FORMULAS))
def test_nan_propagates(name):
    y = jaxconv.activation(name)(jnp.array([1.0, jnp.nan, -1.0], jnp.float32))
    assert np.isnan(y[1])


def _away_from_kinks(rng, n=12):
    x = rng.uniform(-4, 4, n)
    kinks = np.array([-3, -1, 0, 1, 3, 6])
    near = np.abs(x[:, None] - kinks).min(axis=1) < 0.05
    return np.where(near, x + 0.1, x).reshape(3, -1)


# (name, kwargs): every activation with its defaults, then the non-default arguments
GRAD_CASES = [(name, {}) for name in FORMULAS] + [(n, k) for n, k, _ in VARIANTS[:5]]


def test_check_grads(rng):
    """Second order, both modes, every activation and argument variant. The default tier checks
    them as one program (one compilation per derivative instead of 20); on a failure, or with
    ``JAXCONV_FULL_TESTS=1``, each is checked alone, so the message names the activation."""
    x = _away_from_kinks(rng)
    named = {f"{name} {kwargs}": functools.partial(jaxconv.activation(name), **kwargs)
             for name, kwargs in GRAD_CASES}
    check_grads_together(named, lambda f: check_grads(f, (x,), order=2, modes=("fwd", "rev")))


# Gradients at the kinks follow PyTorch: 0 at and beyond the bounds of the flat pieces, the
# negative slope at 0 for leaky_relu.
@pytest.mark.parametrize(
    ("name", "kwargs", "points", "expected"),
    [
        ("relu", {}, [0.0], [0.0]),
        ("relu6", {}, [0.0, 6.0, 3.0], [0.0, 0.0, 1.0]),
        ("hard_tanh", {}, [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]),
        ("hard_sigmoid", {}, [-3.0, 3.0, 0.0], [0.0, 0.0, 1 / 6]),
        ("leaky_relu", dict(negative_slope=0.1), [0.0, -1.0, 1.0], [0.1, 0.1, 1.0]),
        ("elu", dict(alpha=0.5), [0.0], [0.5]),
        ("softplus", dict(threshold=20.0), [20.0, 21.0], [1 / (1 + np.exp(-20.0)), 1.0]),
    ],
)
def test_gradient_at_special_points(name, kwargs, points, expected):
    f = jaxconv.activation(name)
    g = jax.vmap(jax.grad(lambda x: f(x, **kwargs)))(jnp.asarray(points, jnp.float64))
    np.testing.assert_allclose(g, expected, rtol=1e-12)


def test_relu_gradient_at_zero_is_zero_in_every_dtype():
    for dtype in DTYPES:
        assert jax.grad(jaxconv.relu)(jnp.zeros((), dtype)) == 0


def test_lecun_tanh_constants():
    # LeCun et al. (1998), appendix A: f(±1) = ±1, and the second derivative peaks at ±1.
    np.testing.assert_allclose(jaxconv.lecun_tanh(jnp.array([1.0, -1.0])), [1, -1], atol=1e-4)
    f2 = jax.vmap(jax.grad(jax.grad(jaxconv.lecun_tanh)))
    x = jnp.linspace(0.0, 3.0, 3001)
    assert abs(float(x[jnp.argmin(f2(x))]) - 1.0) < 0.02  # most negative f'' near x = 1
    assert jaxconv.lecun_tanh(jnp.float16(1.0)).dtype == jnp.float16


def test_softmax_sums_to_one_along_axis(rng):
    x = jnp.asarray(rng.normal(size=(3, 4, 5)), jnp.float32)
    for axis in (0, 1, -1):
        np.testing.assert_allclose(jaxconv.softmax(x, axis=axis).sum(axis=axis), 1, rtol=1e-6)
    # large logits do not overflow
    big = jnp.array([1000.0, 1000.0], jnp.float32)
    np.testing.assert_allclose(jaxconv.softmax(big), [0.5, 0.5])
    np.testing.assert_allclose(jaxconv.log_softmax(big), [-np.log(2)] * 2, rtol=1e-6)


def test_activation_lookup():
    assert jaxconv.activation("relu") is jaxconv.relu
    assert jaxconv.activation("Leaky-ReLU") is jaxconv.leaky_relu
    assert jaxconv.activation("  HARD_SIGMOID ") is jaxconv.hard_sigmoid
    with pytest.raises(ValueError, match=r"activation: unknown name 'swishy'; expected one of "
                                         r"elu, gelu, .*relu, relu6"):
        jaxconv.activation("swishy")
    with pytest.raises(TypeError, match=r"activation: name must be a string, got 3"):
        jaxconv.activation(3)
    with pytest.raises(TypeError, match=r"activation: name must be a string, got None"):
        jaxconv.activation(None)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
@pytest.mark.parametrize("name", list(FORMULAS))
def test_integer_and_bool_inputs_raise(name, dtype):
    x = np.ones((2, 3), dtype)
    with pytest.raises(TypeError, match=rf"{name}: x must have a floating dtype .* got "
                                        rf"{np.dtype(dtype).name}"):
        jaxconv.activation(name)(x)
    with pytest.raises(TypeError, match=rf"{name}: x must have a floating dtype"):
        jaxconv.activation(name)(jnp.asarray(x))


def test_argument_errors():
    x = jnp.ones(3, jnp.float32)
    with pytest.raises(TypeError, match=r"leaky_relu: negative_slope must be a real number, "
                                        r"got '0.1'"):
        jaxconv.leaky_relu(x, "0.1")
    with pytest.raises(TypeError, match=r"elu: alpha must be a real number, got True"):
        jaxconv.elu(x, True)
    with pytest.raises(ValueError, match=r"softplus: beta must be > 0, got 0"):
        jaxconv.softplus(x, beta=0)
    with pytest.raises(ValueError, match=r"hard_tanh: min_val must be <= max_val, got 2 > 1"):
        jaxconv.hard_tanh(x, 2, 1)
    with pytest.raises(TypeError, match=r"gelu: approximate must be a bool, got 'tanh'"):
        jaxconv.gelu(x, approximate="tanh")
    with pytest.raises(ValueError, match=r"softmax: axis 1 is out of range for an array of rank 1"):
        jaxconv.softmax(x, axis=1)
    with pytest.raises(TypeError, match=r"log_softmax: axis must be an int, got 0.5"):
        jaxconv.log_softmax(x, axis=0.5)
    # NumPy scalars are real numbers too
    np.testing.assert_allclose(jaxconv.leaky_relu(-x, np.float32(0.5)), -0.5 * x)
