"""Guided backpropagation and the deconvnet, as modified-gradient ReLUs (no global state).

Both methods back-propagate the target score like a gradient but change the rule at every ReLU:

- gradient: ``g_in = g_out * [x > 0]`` (the forward mask);
- deconvnet (Zeiler & Fergus 2014): ``g_in = ReLU(g_out)`` (the forward mask is ignored);
- guided backprop (Springenberg et al. 2015): ``g_in = ReLU(g_out) * [x > 0]`` (both).

The rules are ReLUs with a ``jax.custom_vjp`` (:func:`guided_relu`, :func:`deconv_relu`) whose
forward pass is the ordinary ReLU. The model must take its activation as an argument, e.g.
``lambda x, activation: model(x, activation=activation)`` for :class:`jaxconv.models.LeNet5`.
Max pooling needs nothing special: its VJP routes the signal through the recorded argmax
positions, which are exactly the deconvnet's "switches".
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks
from ._core import input_grads

__all__ = ["deconv_relu", "deconvnet", "guided_backprop", "guided_relu"]


@jax.custom_vjp
def guided_relu(x: jax.Array) -> jax.Array:
    """ReLU whose backward pass keeps positive gradients at positive inputs only.

    Forward ``max(x, 0)``; backward ``g * [x > 0] * [g > 0]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxconv.explain import guided_relu
      >>> f = lambda x: (guided_relu(x) * jnp.array([1.0, -1.0, 1.0])).sum()
      >>> jax.grad(f)(jnp.array([1.0, 1.0, -1.0])).tolist()
      [1.0, 0.0, 0.0]

    References:
      J. T. Springenberg, A. Dosovitskiy, T. Brox, M. Riedmiller, "Striving for simplicity: the
      all convolutional net", ICLR workshop 2015, arXiv:1412.6806.
    """
    return jnp.maximum(x, jnp.zeros((), x.dtype))


def _guided_fwd(x):
    return guided_relu(x), x


def _guided_bwd(x, g):
    return (jnp.where((x > 0) & (g > 0), g, jnp.zeros((), g.dtype)),)


guided_relu.defvjp(_guided_fwd, _guided_bwd)


@jax.custom_vjp
def deconv_relu(x: jax.Array) -> jax.Array:
    """ReLU whose backward pass is the ReLU of the incoming gradient (the deconvnet rule).

    Forward ``max(x, 0)``; backward ``max(g, 0)``, whatever the sign of ``x``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxconv.explain import deconv_relu
      >>> f = lambda x: (deconv_relu(x) * jnp.array([1.0, -1.0, 1.0])).sum()
      >>> jax.grad(f)(jnp.array([1.0, 1.0, -1.0])).tolist()
      [1.0, 0.0, 1.0]

    References:
      M. D. Zeiler, R. Fergus, "Visualizing and understanding convolutional networks", ECCV
      2014, arXiv:1311.2901.
    """
    return jnp.maximum(x, jnp.zeros((), x.dtype))


def _deconv_fwd(x):
    return deconv_relu(x), None


def _deconv_bwd(_, g):
    return (jnp.maximum(g, jnp.zeros((), g.dtype)),)


deconv_relu.defvjp(_deconv_fwd, _deconv_bwd)


def _modified(name: str, relu: Callable, fn: Callable, x: ArrayLike, target: ArrayLike) -> jax.Array:
    _checks.check_callable(name, "fn", fn)
    x = _checks.check_images(name, "x", x)

    def model(z):
        return fn(z, activation=relu)

    k = _checks.check_logits(name, "fn", model, x)
    t = _checks.check_target(name, target, x.shape[0], k)
    return input_grads(model, x[None], t)[0].astype(x.dtype)


def guided_backprop(
    fn: Callable[..., jax.Array], x: ArrayLike, target: ArrayLike
) -> jax.Array:
    """Guided backpropagation: the target's gradient with every ReLU replaced by :func:`guided_relu`.

    Args:
      fn: ``fn(x, activation=act) -> logits (N, K)``, a network that uses ``act`` for each of
        its ReLUs (e.g. ``lambda x, activation: model(x, activation=activation)`` for
        :class:`jaxconv.models.LeNet5`). Its forward values are unchanged.
      x: images ``(N, H, W, C)``, floating.
      target: an int or an int array ``(N,)``.

    Returns:
      ``(N, H, W, C)``, dtype of ``x``. Cost: one forward and one backward pass.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxconv import explain
      >>> fn = lambda x, activation: -activation(x).sum((1, 2, 3))[:, None]
      >>> explain.guided_backprop(fn, jnp.ones((1, 1, 2, 1)), 0)[0, 0, :, 0].tolist()
      [0.0, 0.0]

    References:
      J. T. Springenberg, A. Dosovitskiy, T. Brox, M. Riedmiller, "Striving for simplicity: the
      all convolutional net", ICLR workshop 2015, arXiv:1412.6806.
    """
    return _modified("guided_backprop", guided_relu, fn, x, target)


def deconvnet(fn: Callable[..., jax.Array], x: ArrayLike, target: ArrayLike) -> jax.Array:
    """Deconvnet reconstruction: the target's gradient with every ReLU replaced by :func:`deconv_relu`.

    Convolutions back-propagate through their transposes and max pools through their argmax
    switches (their ordinary VJPs); only the ReLUs change.

    Args:
      fn: ``fn(x, activation=act) -> logits (N, K)`` (see :func:`guided_backprop`).
      x: images ``(N, H, W, C)``, floating.
      target: an int or an int array ``(N,)``.

    Returns:
      ``(N, H, W, C)``, dtype of ``x``. Cost: one forward and one backward pass.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxconv import explain
      >>> fn = lambda x, activation: activation(x).sum((1, 2, 3))[:, None]
      >>> explain.deconvnet(fn, -jnp.ones((1, 1, 2, 1)), 0)[0, 0, :, 0].tolist()
      [1.0, 1.0]

    References:
      M. D. Zeiler, R. Fergus, "Visualizing and understanding convolutional networks", ECCV
      2014, arXiv:1311.2901.
    """
    return _modified("deconvnet", deconv_relu, fn, x, target)
