"""Gradient attributions: saliency, SmoothGrad and integrated gradients.

Every function explains ``fn(x) -> logits (N, K)`` at NHWC images ``x`` ``(N, H, W, C)`` for one
output per image (``target``: an int or an int array ``(N,)``) and returns an attribution with
the shape and dtype of ``x``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks
from ._core import acc_dtype, chunked_sum, input_grads, target_scores

__all__ = [
    "IG_METHODS",
    "completeness_gap",
    "integrated_gradients",
    "saliency",
    "smoothgrad",
]

IG_METHODS = ("trapezoid", "riemann_left", "riemann_right", "riemann_middle")
MAX_COUNT = 2**31 - 1  # steps and samples: int32 indices (memory does not grow with them)


def _prepare(
    name: str, fn: Callable, x: ArrayLike, target: ArrayLike
) -> tuple[jax.Array, jax.Array]:
    _checks.check_callable(name, "fn", fn)
    x = _checks.check_images(name, "x", x)
    k = _checks.check_logits(name, "fn", fn, x)
    t = _checks.check_target(name, target, x.shape[0], k)
    return x, t


def saliency(fn: Callable[[jax.Array], jax.Array], x: ArrayLike, target: ArrayLike) -> jax.Array:
    """Vanilla gradient saliency: ``∂ fn(x)[n, target[n]] / ∂ x[n]``.

    The signed gradient is returned; Simonyan et al. plot ``max_c |grad|`` (take
    ``jnp.abs(s).max(-1)``), captum's ``Saliency`` defaults to ``|grad|``.

    Args:
      fn: ``fn(x) -> logits (N, K)``; must be differentiable in ``x``.
      x: images ``(N, H, W, C)``, floating.
      target: the explained output, an int or an int array ``(N,)`` in ``[0, K)``.

    Returns:
      ``(N, H, W, C)``, dtype of ``x``. Cost: one forward and one backward pass.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxconv import explain
      >>> w = jnp.arange(4.0).reshape(1, 2, 2, 1)
      >>> fn = lambda x: (x * w).sum((1, 2, 3))[:, None]
      >>> explain.saliency(fn, jnp.ones((1, 2, 2, 1)), 0)[0, ..., 0].tolist()
      [[0.0, 1.0], [2.0, 3.0]]

    References:
      K. Simonyan, A. Vedaldi, A. Zisserman, "Deep inside convolutional networks: visualising
      image classification models and saliency maps", ICLR workshop 2014, arXiv:1312.6034.
    """
    x, t = _prepare("saliency", fn, x, target)
    return input_grads(fn, x[None], t)[0].astype(x.dtype)


def smoothgrad(
    fn: Callable[[jax.Array], jax.Array],
    x: ArrayLike,
    target: ArrayLike,
    *,
    key: jax.Array,
    samples: int = 50,
    sigma: float = 0.15,
    batch_size: int = 16,
) -> jax.Array:
    """SmoothGrad: the input gradient averaged over Gaussian-noised copies of each image.

    ``mean_s ∇ fn(x + ε_s)[target]`` with ``ε_s ~ N(0, σ_n²)`` and ``σ_n = sigma * (max x[n] -
    min x[n])``, a fraction of each image's value range (Smilkov et al. use 10-20 %).

    Args:
      fn: ``fn(x) -> logits (N, K)``.
      x: images ``(N, H, W, C)``, floating.
      target: an int or an int array ``(N,)`` in ``[0, K)``.
      key: a PRNG key for the noise.
      samples: noisy copies per image (``1 <= samples <= 2**31 - 1``); copy ``i`` is drawn with
        ``jax.random.fold_in(key, i)``.
      sigma: noise level as a fraction of each image's range (>= 0; 0 gives the plain gradient).
      batch_size: noisy copies evaluated together: each ``fn`` call sees ``batch_size * N``
        images. The samples are drawn and summed chunk by chunk inside a loop, so memory is that
        of one chunk whatever ``samples`` is (time grows with it).

    Returns:
      ``(N, H, W, C)``, dtype of ``x``. Cost: ``samples`` forward and backward passes.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxconv import explain
      >>> fn = lambda x: 2.0 * x.sum((1, 2, 3))[:, None]
      >>> g = explain.smoothgrad(fn, jnp.ones((1, 2, 2, 1)), 0, key=jax.random.key(0), samples=4)
      >>> g[0, ..., 0].tolist()
      [[2.0, 2.0], [2.0, 2.0]]

    References:
      D. Smilkov, N. Thorat, B. Kim, F. Viégas, M. Wattenberg, "SmoothGrad: removing noise by
      adding noise", arXiv:1706.03825, 2017.
    """
    name = "smoothgrad"
    x, t = _prepare(name, fn, x, target)
    key = _checks.check_key(name, key)
    samples = _checks.check_int(name, "samples", samples, maximum=MAX_COUNT)
    sigma = _checks.check_real(name, "sigma", sigma)
    batch_size = _checks.check_int(name, "batch_size", batch_size)

    acc = acc_dtype(x.dtype)
    xa = x.astype(acc)
    spread = xa.max(axis=(1, 2, 3)) - xa.min(axis=(1, 2, 3))
    scale = (sigma * spread).reshape(-1, 1, 1, 1)

    def sample_keys(idx):  # fold_in(key, i) is split(key, samples)[i], made one chunk at a time
        return jax.vmap(lambda i: jax.random.fold_in(key, i))(idx), jnp.full(idx.shape, 1.0 / samples, acc)

    def grads(ks):
        noise = jax.vmap(lambda k: jax.random.normal(k, x.shape, acc))(ks)
        noisy = (xa[None] + noise * scale[None]).astype(x.dtype)
        return input_grads(fn, noisy, t)

    out = chunked_sum(grads, sample_keys, samples, batch_size, jnp.zeros(x.shape, acc))
    return out.astype(x.dtype)


def _ig_nodes(method: str, steps: int, idx: jax.Array, dtype) -> tuple[jax.Array, jax.Array]:
    """Quadrature nodes ``alpha`` in [0, 1] and weights (summing to 1 over all ``steps``) of the
    node indices ``idx``."""
    i = idx.astype(dtype)
    if method == "trapezoid":
        ends = (idx == 0) | (idx == steps - 1)
        return i / (steps - 1), jnp.where(ends, 0.5, 1.0).astype(dtype) * jnp.asarray(1.0 / (steps - 1), dtype)
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (i + offset) / steps, jnp.full(idx.shape, 1.0 / steps, dtype)


def integrated_gradients(
    fn: Callable[[jax.Array], jax.Array],
    x: ArrayLike,
    target: ArrayLike,
    *,
    baseline: ArrayLike | float | None = None,
    steps: int = 64,
    method: str = "trapezoid",
    batch_size: int = 16,
    return_gap: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Integrated gradients: ``(x - x') * ∫₀¹ ∇ fn(x' + α (x - x'))[target] dα``.

    The integral is a quadrature over ``steps`` points of the straight path from the baseline
    ``x'`` to ``x``. IG satisfies *completeness*: the attributions of an image sum to
    ``fn(x)[t] - fn(x')[t]`` up to the quadrature error. That error, the **completeness gap**
    ``sum(attr) - (fn(x)[t] - fn(x')[t])`` per image, comes back with ``return_gap=True``
    (or from :func:`completeness_gap`); Sundararajan et al. suggest increasing ``steps`` until
    it is within ~5 % of the score difference.

    Args:
      fn: ``fn(x) -> logits (N, K)``.
      x: images ``(N, H, W, C)``, floating.
      target: an int or an int array ``(N,)`` in ``[0, K)``.
      baseline: ``None`` (all zeros, the default), a number, or an array broadcastable to ``x``
        (e.g. a blurred image, or a per-channel mean ``(C,)``).
      steps: quadrature points (>= 1; >= 2 for ``"trapezoid"``; at most ``2**31 - 1``).
      method: ``"trapezoid"`` (default: both end points, half weight), ``"riemann_left"``,
        ``"riemann_right"`` or ``"riemann_middle"`` (midpoint rule).
      batch_size: path points evaluated together (each ``fn`` call sees ``batch_size * N``
        images); the path points are made and summed chunk by chunk in a loop, so memory does
        not grow with ``steps`` (time does).
      return_gap: also return the completeness gap ``(N,)``.

    Returns:
      Attributions ``(N, H, W, C)`` in ``x``'s dtype; with ``return_gap=True`` the pair
      ``(attributions, gap)``, gap ``(N,)`` accumulated in at least float32. Cost: ``steps``
      forward and backward passes (``+2`` forwards for the gap).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxconv import explain
      >>> fn = lambda x: (x ** 2).sum((1, 2, 3))[:, None]
      >>> x = jnp.full((1, 1, 2, 1), 3.0)
      >>> attr, gap = explain.integrated_gradients(fn, x, 0, steps=8, return_gap=True)
      >>> [round(a, 4) for a in attr[0, 0, :, 0].tolist()], abs(float(gap[0])) < 1e-4
      ([9.0, 9.0], True)

    References:
      M. Sundararajan, A. Taly, Q. Yan, "Axiomatic attribution for deep networks", ICML 2017,
      arXiv:1703.01365.
    """
    name = "integrated_gradients"
    x, t = _prepare(name, fn, x, target)
    b = _checks.check_baseline(name, baseline, x)
    method = _checks.check_choice(name, "method", method, IG_METHODS)
    steps = _checks.check_int(name, "steps", steps, minimum=2 if method == "trapezoid" else 1,
                              maximum=MAX_COUNT)
    batch_size = _checks.check_int(name, "batch_size", batch_size)
    if not isinstance(return_gap, bool):
        raise TypeError(f"{name}: return_gap must be a bool, got {return_gap!r}")

    acc = acc_dtype(x.dtype)
    xa, ba = x.astype(acc), b.astype(acc)
    delta = xa - ba

    def grads(al):
        path = (ba[None] + al.reshape(-1, 1, 1, 1, 1) * delta[None]).astype(x.dtype)
        return input_grads(fn, path, t)

    mean_grad = chunked_sum(grads, lambda idx: _ig_nodes(method, steps, idx, acc), steps, batch_size,
                            jnp.zeros(x.shape, acc))
    attr = delta * mean_grad
    if not return_gap:
        return attr.astype(x.dtype)
    return attr.astype(x.dtype), _gap(fn, x, b, t, attr)


def _gap(fn, x, b, t, attr) -> jax.Array:
    acc = acc_dtype(attr.dtype)
    fx = target_scores(fn(x), t).astype(acc)
    fb = target_scores(fn(b), t).astype(acc)
    return attr.astype(acc).sum(axis=(1, 2, 3)) - (fx - fb)


def completeness_gap(
    fn: Callable[[jax.Array], jax.Array],
    x: ArrayLike,
    target: ArrayLike,
    attributions: ArrayLike,
    *,
    baseline: ArrayLike | float | None = None,
) -> jax.Array:
    """The completeness gap ``sum(attr[n]) - (fn(x)[n, t] - fn(x')[n, t])`` per image.

    Zero for exact integrated gradients (and for any method satisfying completeness, e.g.
    DeepLIFT's rescale rule); its size measures the quadrature error of
    :func:`integrated_gradients` — the sanity check of Sundararajan et al.

    Args:
      fn: ``fn(x) -> logits (N, K)``.
      x: images ``(N, H, W, C)``.
      target: an int or an int array ``(N,)``.
      attributions: ``(N, H, W, C)``, e.g. from :func:`integrated_gradients`.
      baseline: the baseline the attributions were computed with (``None``: zeros).

    Returns:
      ``(N,)`` in at least float32. Two forward passes.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxconv import explain
      >>> fn = lambda x: x.sum((1, 2, 3))[:, None]
      >>> x = jnp.ones((1, 2, 2, 1))
      >>> float(explain.completeness_gap(fn, x, 0, x)[0])
      0.0

    References:
      M. Sundararajan, A. Taly, Q. Yan, "Axiomatic attribution for deep networks", ICML 2017.
    """
    name = "completeness_gap"
    x, t = _prepare(name, fn, x, target)
    b = _checks.check_baseline(name, baseline, x)
    a = _checks.check_images(name, "attributions", attributions)
    if a.shape != x.shape:
        raise ValueError(
            f"{name}: attributions must have x's shape {tuple(x.shape)}, got {tuple(a.shape)}"
        )
    return _gap(fn, x, b, t, a)
