"""Run the convolutions of an existing Flax NNX model through jaxconv.

``flax.nnx.Conv`` calls whatever function its ``conv_general_dilated`` attribute holds, with
``jax.lax.conv_general_dilated``'s signature; :func:`use_jaxconv` sets it, on every ``nnx.Conv``
of a model, to :func:`jaxconv.conv_general_dilated` with the algorithm asked for (or back to
lax's). The parameters are untouched: the same model, the same outputs up to each algorithm's
rounding.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import jax
from flax import nnx

from ..convolution import _registry
from ..convolution.general import conv_general_dilated

__all__ = ["use_jaxconv"]

M = TypeVar("M", bound=nnx.Module)


@dataclasses.dataclass(frozen=True)
class JaxconvHook:
    """:func:`jaxconv.conv_general_dilated` with ``algorithm`` fixed: what :func:`use_jaxconv`
    installs. Equal for equal algorithms, so switching a model twice keeps its compiled steps
    (``nnx.jit`` caches on the static attributes)."""

    algorithm: str = "auto"

    def __call__(self, *args: Any, **kwargs: Any) -> jax.Array:
        return conv_general_dilated(*args, algorithm=self.algorithm, **kwargs)


def use_jaxconv(model: M, *, algorithm: str | None = "auto") -> M:
    """Route every ``flax.nnx.Conv`` of ``model`` through :func:`jaxconv.conv_general_dilated`.

    The model is changed in place (its ``nnx.Conv`` layers, subclasses included, get a new
    ``conv_general_dilated``; nothing else changes) and returned, so it also reads
    ``model = use_jaxconv(MyNet(rngs=...))``. ``nnx.ConvTranspose`` calls
    ``lax.conv_transpose`` itself, with no hook, and is left alone.

    Args:
      model: any ``flax.nnx.Module``; its convolutions may sit at any depth.
      algorithm: ``"auto"`` (jaxconv picks per layer, forward and training separately), a name
        from ``jaxconv.algorithms()`` for every layer, or ``None`` to switch back to
        ``jax.lax.conv_general_dilated`` (plain Flax).

    Returns:
      ``model``.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from jaxconv.models import use_jaxconv
      >>> model = nnx.Sequential(nnx.Conv(3, 8, (3, 3), rngs=nnx.Rngs(0)), nnx.relu,
      ...                        nnx.Conv(8, 4, (3, 3), strides=2, rngs=nnx.Rngs(1)))
      >>> plain = model(jnp.ones((1, 8, 8, 3)))
      >>> fast = use_jaxconv(model)(jnp.ones((1, 8, 8, 3)))
      >>> bool(jnp.allclose(plain, fast, atol=1e-5))
      True
      >>> conv = use_jaxconv(model, algorithm=None).layers[0]
      >>> conv.conv_general_dilated is jax.lax.conv_general_dilated
      True
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(
            f"use_jaxconv: model must be a flax.nnx.Module, got {type(model).__name__}"
        )
    known = _registry.names()
    if algorithm is not None and (
        not isinstance(algorithm, str) or (algorithm != "auto" and algorithm not in known)
    ):
        raise ValueError(
            f"use_jaxconv: unknown algorithm {algorithm!r}; expected None (lax), 'auto' or one "
            f"of {', '.join(map(repr, known))}"
        )
    fn = jax.lax.conv_general_dilated if algorithm is None else JaxconvHook(algorithm)
    for _, module in nnx.iter_modules(model):
        if isinstance(module, nnx.Conv):
            module.conv_general_dilated = fn
    return model
