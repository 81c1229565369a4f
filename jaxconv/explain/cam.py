"""Class activation maps: Grad-CAM and Grad-CAM++.

The network is split in two: ``body(x) -> maps (N, h, w, K)`` (usually the last convolutional
stage) and ``head(maps) -> logits (N, classes)``, so that ``head(body(x))`` is the model.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks
from ._core import acc_dtype, target_scores

__all__ = ["grad_cam", "grad_cam_plus_plus"]


def _maps_and_grads(
    name: str, body: Callable, head: Callable, x: ArrayLike, target: ArrayLike
) -> tuple[jax.Array, jax.Array, jax.Array]:
    _checks.check_callable(name, "body", body)
    _checks.check_callable(name, "head", head)
    x = _checks.check_images(name, "x", x)
    maps_shape = jax.eval_shape(body, jax.ShapeDtypeStruct(x.shape, x.dtype))
    shape = getattr(maps_shape, "shape", None)
    if shape is None or len(shape) != 4 or shape[0] != x.shape[0]:
        got = "shape " + str(tuple(shape)) if shape is not None else type(maps_shape).__name__
        raise ValueError(
            f"{name}: body(x) must return NHWC feature maps (N, h, w, K) with N = {x.shape[0]}, "
            f"got {got}"
        )
    out = jax.eval_shape(head, maps_shape)
    oshape = getattr(out, "shape", None)
    if oshape is None or len(oshape) != 2 or oshape[0] != x.shape[0] or oshape[1] < 1:
        got = "shape " + str(tuple(oshape)) if oshape is not None else type(out).__name__
        raise ValueError(
            f"{name}: head(body(x)) must return logits (N, classes) with N = {x.shape[0]}, got {got}"
        )
    t = _checks.check_target(name, target, x.shape[0], int(oshape[1]))
    maps = body(x)
    acc = acc_dtype(maps.dtype)

    def score(m):
        return target_scores(head(m), t).astype(acc).sum()

    grads = jax.grad(score)(maps)
    return x, maps.astype(acc), grads.astype(acc)


def _finish(cam: jax.Array, x: jax.Array) -> jax.Array:
    """ReLU, bilinear upsampling to the input size, then per-image min-max scaling to [0, 1]."""
    cam = jnp.maximum(cam, 0)
    n, height, width = x.shape[:3]
    cam = jax.image.resize(cam, (n, height, width), method="bilinear")
    lo = cam.min(axis=(1, 2), keepdims=True)
    cam = cam - lo
    hi = cam.max(axis=(1, 2), keepdims=True)
    cam = jnp.where(hi > 0, cam / jnp.where(hi > 0, hi, 1), 0)
    return jnp.clip(cam, 0, 1).astype(x.dtype)


def grad_cam(
    body: Callable[[jax.Array], jax.Array],
    head: Callable[[jax.Array], jax.Array],
    x: ArrayLike,
    target: ArrayLike,
) -> jax.Array:
    """Grad-CAM: feature maps weighted by their spatially averaged target gradient.

    With ``A = body(x)`` ``(N, h, w, K)`` and ``g = ∂ head(A)[target] / ∂ A``, the map is
    ``ReLU(Σ_k mean_{ij}(g[..., k]) A[..., k])`` ``(N, h, w)``, upsampled bilinearly
    (``jax.image.resize``) to the input's ``H x W`` and scaled per image to ``[0, 1]``
    (minus its minimum, divided by its maximum, as pytorch-grad-cam; an all-zero map stays 0).

    Args:
      body: ``body(x) -> maps (N, h, w, K)``, e.g. a CNN up to its last conv/ReLU stage.
      head: ``head(maps) -> logits (N, classes)``, the rest of the network.
      x: images ``(N, H, W, C)``, floating.
      target: an int or an int array ``(N,)``.

    Returns:
      ``(N, H, W)`` in ``[0, 1]``, dtype of ``x``. Cost: one forward pass and a backward pass
      through ``head`` only.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxconv import explain
      >>> body = lambda x: x
      >>> head = lambda m: m.sum((1, 2, 3))[:, None]
      >>> x = jnp.zeros((1, 4, 4, 1)).at[0, 0, 0, 0].set(1.0)
      >>> float(explain.grad_cam(body, head, x, 0)[0, 0, 0])
      1.0

    References:
      R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra, "Grad-CAM: visual
      explanations from deep networks via gradient-based localization", ICCV 2017,
      arXiv:1610.02391.
    """
    x, maps, grads = _maps_and_grads("grad_cam", body, head, x, target)
    weights = grads.mean(axis=(1, 2), keepdims=True)
    return _finish((weights * maps).sum(axis=-1), x)


def grad_cam_plus_plus(
    body: Callable[[jax.Array], jax.Array],
    head: Callable[[jax.Array], jax.Array],
    x: ArrayLike,
    target: ArrayLike,
) -> jax.Array:
    """Grad-CAM++: Grad-CAM with per-location weights from higher-order gradient terms.

    ``α = g² / (2 g² + Σ_ij A · g³)`` (0 where ``g = 0``), channel weights
    ``w_k = Σ_ij α ReLU(g)``, map ``ReLU(Σ_k w_k A_k)`` — the closed form for an exponential
    score used by the paper and pytorch-grad-cam — then upsampled and scaled to ``[0, 1]`` as
    in :func:`grad_cam`. Often better than Grad-CAM when several instances of a class appear.

    Args:
      body: ``body(x) -> maps (N, h, w, K)``.
      head: ``head(maps) -> logits (N, classes)``.
      x: images ``(N, H, W, C)``, floating.
      target: an int or an int array ``(N,)``.

    Returns:
      ``(N, H, W)`` in ``[0, 1]``, dtype of ``x``. Same cost as :func:`grad_cam`.

    References:
      A. Chattopadhyay, A. Sarkar, P. Howlader, V. N. Balasubramanian, "Grad-CAM++: improved
      visual explanations for deep convolutional networks", WACV 2018, arXiv:1710.11063.
    """
    x, maps, grads = _maps_and_grads("grad_cam_plus_plus", body, head, x, target)
    g2, g3 = grads**2, grads**3
    sum_a = maps.sum(axis=(1, 2), keepdims=True)
    denom = 2 * g2 + sum_a * g3
    denom = jnp.where(denom != 0, denom, 1)
    alpha = jnp.where(grads != 0, g2 / denom, 0)
    weights = (alpha * jnp.maximum(grads, 0)).sum(axis=(1, 2), keepdims=True)
    return _finish((weights * maps).sum(axis=-1), x)
