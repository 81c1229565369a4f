"""Activation functions: pure, elementwise (except softmax), dtype-preserving.

Every function takes a floating array of any shape and returns the same shape and dtype. Integer
and bool inputs raise ``TypeError`` (silently promoting them would change the dtype).
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _args

P = ParamSpec("P")


def _float_only(
    fn: Callable[Concatenate[jax.Array, P], jax.Array],
) -> Callable[Concatenate[ArrayLike, P], jax.Array]:
    """Check that ``x`` is a floating array (naming the function) and hand ``fn`` a jax.Array."""
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(x: ArrayLike, /, *args: P.args, **kwargs: P.kwargs) -> jax.Array:
        x = _args.as_array(name, "x", x)
        _args.check_float(name, "x", x)
        return fn(jnp.asarray(x), *args, **kwargs)

    # What callers may pass: any array-like (the wrapped function sees a jax.Array).
    sig = inspect.signature(fn)
    first, *rest = sig.parameters.values()
    wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[first.replace(annotation=ArrayLike), *rest])
    return wrapper


def _clip(x: jax.Array, lo: float, hi: float) -> jax.Array:
    """``clip(x, lo, hi)`` whose gradient is 1 strictly inside and 0 at and beyond the bounds.

    ``jnp.clip`` gives 0.5 at a bound (``max``'s tie rule); PyTorch's ``hardtanh``/``relu6``/
    ``hardsigmoid`` give 0, as ``relu`` does at 0. NaN passes through.
    """
    return jnp.where(x <= lo, lo, jnp.where(x >= hi, hi, x)).astype(x.dtype)


def _scalar(fn: str, name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a real number, got {value!r}")
    if positive and not float(value) > 0:
        raise ValueError(f"{fn}: {name} must be > 0, got {value!r}")
    return float(value)


@_float_only
def relu(x: jax.Array) -> jax.Array:
    """``max(x, 0)``; the gradient at exactly 0 is 0 (as PyTorch and ``jax.nn.relu``)."""
    return jax.nn.relu(x)


@_float_only
def relu6(x: jax.Array) -> jax.Array:
    """``min(max(x, 0), 6)``; the gradient is 0 at 0 and at 6 (as PyTorch)."""
    return _clip(x, 0, 6)


@_float_only
def leaky_relu(x: jax.Array, negative_slope: float = 0.01) -> jax.Array:
    """``x`` for ``x > 0``, ``negative_slope * x`` otherwise (gradient ``negative_slope`` at 0,
    as PyTorch)."""
    negative_slope = _scalar("leaky_relu", "negative_slope", negative_slope)
    return jnp.where(x > 0, x, negative_slope * x).astype(x.dtype)


@_float_only
def elu(x: jax.Array, alpha: float = 1.0) -> jax.Array:
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""
    alpha = _scalar("elu", "alpha", alpha)
    return jax.nn.elu(x, alpha).astype(x.dtype)


@_float_only
def selu(x: jax.Array) -> jax.Array:
    """Scaled ELU (Klambauer et al. 2017): ``1.0507 * elu(x, 1.67326)``."""
    return jax.nn.selu(x)


@_float_only
def gelu(x: jax.Array, approximate: bool = False) -> jax.Array:
    """Gaussian error linear unit ``x * Phi(x)``; exact (erf) by default, as PyTorch."""
    if not isinstance(approximate, bool):
        raise TypeError(f"gelu: approximate must be a bool, got {approximate!r}")
    return jax.nn.gelu(x, approximate=approximate)


@_float_only
def sigmoid(x: jax.Array) -> jax.Array:
    """``1 / (1 + exp(-x))``."""
    return jax.nn.sigmoid(x)


@_float_only
def tanh(x: jax.Array) -> jax.Array:
    """Hyperbolic tangent."""
    return jnp.tanh(x)


@_float_only
def softplus(x: jax.Array, beta: float = 1.0, threshold: float = 20.0) -> jax.Array:
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold`` (as PyTorch)."""
    beta = _scalar("softplus", "beta", beta, positive=True)
    threshold = _scalar("softplus", "threshold", threshold)
    bx = beta * x
    # jnp.logaddexp(bx, 0) is the overflow-safe log(1 + exp(bx)).
    soft = jnp.logaddexp(bx, jnp.zeros_like(bx)) / beta
    return jnp.where(bx > threshold, x, soft).astype(x.dtype)


@_float_only
def silu(x: jax.Array) -> jax.Array:
    """``x * sigmoid(x)`` (a.k.a. swish)."""
    return jax.nn.silu(x)


@_float_only
def hard_tanh(x: jax.Array, min_val: float = -1.0, max_val: float = 1.0) -> jax.Array:
    """``clip(x, min_val, max_val)``; the gradient is 0 at the bounds (as PyTorch)."""
    lo = _scalar("hard_tanh", "min_val", min_val)
    hi = _scalar("hard_tanh", "max_val", max_val)
    if lo > hi:
        raise ValueError(f"hard_tanh: min_val must be <= max_val, got {min_val!r} > {max_val!r}")
    return _clip(x, lo, hi)


@_float_only
def hard_sigmoid(x: jax.Array) -> jax.Array:
    """``relu6(x + 3) / 6`` (PyTorch's ``hardsigmoid``; gradient 0 at -3 and 3)."""
    return (_clip(x + 3, 0, 6) / 6).astype(x.dtype)


@_float_only
def lecun_tanh(x: jax.Array) -> jax.Array:
    """LeNet-5's squashing function ``1.7159 * tanh(2x / 3)`` (LeCun et al. 1998, appendix A).

    The constants make ``f(1) = 1`` and ``f(-1) = -1`` with maximal second derivative at ±1.

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(lecun_tanh(jnp.float32(1.0))), 4)
      1.0
    """
    return (1.7159 * jnp.tanh(x * (2.0 / 3.0))).astype(x.dtype)


def _check_axis(fn: str, x: jax.Array, axis: Any) -> int:
    if not _args.is_int(axis):
        raise TypeError(f"{fn}: axis must be an int, got {axis!r}")
    if not -x.ndim <= axis < max(x.ndim, 1):
        raise ValueError(f"{fn}: axis {axis} is out of range for an array of rank {x.ndim}")
    return int(axis)


@_float_only
def softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """``exp(x) / sum(exp(x))`` along ``axis`` (max-subtracted for stability)."""
    return jax.nn.softmax(x, axis=_check_axis("softmax", x, axis))


@_float_only
def log_softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """``x - logsumexp(x)`` along ``axis``."""
    return jax.nn.log_softmax(x, axis=_check_axis("log_softmax", x, axis))


ACTIVATIONS: dict[str, Callable[..., jax.Array]] = {
    f.__name__: f
    for f in (
        relu, relu6, leaky_relu, elu, selu, gelu, sigmoid, tanh, softplus, silu,
        hard_tanh, hard_sigmoid, lecun_tanh, softmax, log_softmax,
    )
}


def activation(name: str) -> Callable[..., jax.Array]:
    """Look an activation up by name, e.g. ``activation("relu")``.

    Names are those of the functions in this module; ``-`` and case are ignored
    (``"Leaky-ReLU"`` works).

    Examples:
      >>> import jax.numpy as jnp
      >>> activation("Leaky-ReLU")(jnp.array([-2.0, 3.0], jnp.float32))
      Array([-0.02,  3.  ], dtype=float32)
    """
    if not isinstance(name, str):
        raise TypeError(f"activation: name must be a string, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key not in ACTIVATIONS:
        raise ValueError(
            f"activation: unknown name {name!r}; expected one of {', '.join(sorted(ACTIVATIONS))}"
        )
    return ACTIVATIONS[key]
