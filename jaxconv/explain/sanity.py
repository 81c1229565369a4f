"""Sanity checks for saliency methods (Adebayo et al. 2018): model-parameter randomization and a
rank correlation to compare attributions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _checks

__all__ = ["model_parameter_randomization", "rank_correlation"]


def _ranks(a: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank (as ``scipy.stats.rankdata``)."""
    s = np.sort(a)
    return (np.searchsorted(s, a, "left") + np.searchsorted(s, a, "right") + 1) / 2.0


def rank_correlation(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman's rank correlation of two equally sized arrays (both flattened).

    The Pearson correlation of the ranks (ties averaged), in NumPy — no SciPy needed.

    Args:
      a: any shape.
      b: the same number of elements as ``a``.

    Returns:
      A float in ``[-1, 1]``; ``nan`` when either array is constant (undefined).

    Examples:
      >>> from jaxconv.explain import rank_correlation
      >>> rank_correlation([1, 2, 3, 4], [10, 20, 30, 1000])
      1.0
      >>> rank_correlation([1, 2, 3], [3, 2, 1])
      -1.0

    References:
      C. Spearman, "The proof and measurement of association between two things", Am. J.
      Psychol. 15(1), 1904.
    """
    name = "rank_correlation"
    x = np.asarray(a, dtype=np.float64).ravel() if _numeric(a) else None
    y = np.asarray(b, dtype=np.float64).ravel() if _numeric(b) else None
    if x is None or y is None:
        bad = "a" if x is None else "b"
        raise TypeError(f"{name}: {bad} must be a real-valued array, got {_checks.short(a if x is None else b)}")
    if x.size != y.size or x.size < 2:
        raise ValueError(
            f"{name}: a and b must have the same number of elements, at least 2, got {x.size} and {y.size}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{name}: a and b must be finite (no nan or inf)")
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    if den == 0:
        return float("nan")
    return float(np.clip((rx * ry).sum() / den, -1.0, 1.0))


def _numeric(v: Any) -> bool:
    try:
        a = np.asarray(v)
    except Exception:
        return False
    return a.dtype != object and (np.issubdtype(a.dtype, np.number) or a.dtype == bool) and not np.iscomplexobj(a)


def _top(path) -> str:
    k = path[0]
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def model_parameter_randomization(
    attribute: Callable[[Any], ArrayLike],
    params: Any,
    layers: Sequence[str],
    *,
    key: jax.Array,
    cascading: bool = True,
    absolute: bool = True,
) -> dict[str, float]:
    """Model-parameter randomization test: attributions of the trained vs randomized model.

    ``layers`` are re-drawn one at a time in the given order (top, i.e. output, layer first, as
    Adebayo et al.): **cascading** keeps earlier layers randomized (progressively destroying
    the model), **independent** (``cascading=False``) randomizes one layer at a time. Each
    leaf is replaced by Gaussian noise with the leaf's own mean and standard deviation (a leaf
    with zero spread, e.g. zero-initialized biases, keeps its value). After each step the
    attribution is compared with the original by :func:`rank_correlation` per example (of
    ``|attr|`` when ``absolute``), averaged over the batch.

    A method whose maps barely change when the weights are destroyed (correlation staying near
    1) is not explaining the model.

    Args:
      attribute: ``attribute(params) -> attributions (N, ...)`` for fixed inputs and targets,
        e.g. ``lambda p: explain.saliency(lambda x: apply(p, x), x, t)``.
      params: a pytree (dict, ``nnx.State``, ...) whose top-level keys name the layers.
      layers: the top-level names to randomize, in order.
      key: a PRNG key for the random weights.
      cascading: cumulative (default) or independent randomization.
      absolute: compare absolute attributions (default) or signed ones.

    Returns:
      ``{layer: mean Spearman correlation with the original attributions}``, in order.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxconv import explain
      >>> x = jnp.linspace(0.1, 1.0, 16).reshape(1, 4, 4, 1)
      >>> params = {"w": jnp.linspace(-1.0, 1.0, 16).reshape(1, 4, 4, 1)}
      >>> attr = lambda p: explain.saliency(lambda z: (z * p["w"]).sum((1, 2, 3))[:, None], x, 0)
      >>> r = explain.model_parameter_randomization(attr, params, ["w"], key=jax.random.key(0))
      >>> list(r), r["w"] < 0.9
      (['w'], True)

    References:
      J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt, B. Kim, "Sanity checks for
      saliency maps", NeurIPS 2018, arXiv:1810.03292.
    """
    name = "model_parameter_randomization"
    _checks.check_callable(name, "attribute", attribute)
    key = _checks.check_key(name, key)
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise TypeError(f"{name}: layers must be a non-empty sequence of names, got {layers!r}")
    leaves = jax.tree_util.tree_leaves_with_path(params)
    names = list(dict.fromkeys(_top(p) for p, _ in leaves if p))
    unknown = [lay for lay in layers if not isinstance(lay, str) or lay not in names]
    if unknown:
        raise ValueError(f"{name}: layers must be top-level names of params {names}, got {unknown[0]!r}")
    for flag, value in (("cascading", cascading), ("absolute", absolute)):
        if not isinstance(value, bool):
            raise TypeError(f"{name}: {flag} must be a bool, got {value!r}")

    def prep(a):
        a = np.asarray(jnp.asarray(a, jnp.float32), np.float64)
        return np.abs(a) if absolute else a

    reference = prep(attribute(params))
    if reference.ndim < 1 or reference.shape[0] < 1:
        raise ValueError(f"{name}: attribute(params) must return an array (N, ...), got shape {reference.shape}")

    def randomize(tree, layer, k):
        def one(path, leaf):
            if not path or _top(path) != layer or not hasattr(leaf, "shape"):
                return leaf
            nonlocal k
            k, sub = jax.random.split(k)
            arr = jnp.asarray(leaf)
            if not jnp.issubdtype(arr.dtype, jnp.floating) or arr.size < 2:
                return leaf
            mean, std = arr.mean(), arr.std()
            return (mean + std * jax.random.normal(sub, arr.shape, arr.dtype)).astype(arr.dtype)

        return jax.tree_util.tree_map_with_path(one, tree)

    out: dict[str, float] = {}
    current = params
    for i, layer in enumerate(layers):
        base = current if cascading else params
        current = randomize(base, layer, jax.random.fold_in(key, i))
        attr = prep(attribute(current))
        if attr.shape != reference.shape:
            raise ValueError(
                f"{name}: attribute returned shape {attr.shape} after randomizing {layer!r}, "
                f"expected {reference.shape}"
            )
        rhos = [rank_correlation(r, a) for r, a in zip(reference, attr, strict=True)]
        out[layer] = float(np.nanmean(rhos)) if not np.all(np.isnan(rhos)) else float("nan")
    return out
