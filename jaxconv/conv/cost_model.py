"""The cost model behind ``algorithm="auto"``: fitted constants times each algorithm's cost terms.

An algorithm's estimated time on a backend is ``sum(constant[term] * amount[term])``, where the
amounts come from the algorithm's own :attr:`Algorithm.cost_terms` (flops of each stage, bytes
moved, per-call and per-block counts, all counted for float32 and scaled here for other dtypes)
and the constants, in seconds per unit, are fitted per backend by ``benchmarks/fit_cost_model.py``
and stored in ``cost_model.json`` beside this module, with the machine, date, grid and fit
quality they come from. An algorithm without constants for a backend is never picked by the
model there (``jaxconv.autotune`` still measures it).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jax.numpy as jnp

from . import _registry
from ._registry import ConvConfig

SCHEMA = "jaxconv-cost-model"
VERSION = 1
DATA_FILE = "cost_model.json"


def canonical_backend(backend: str) -> str:
    return "gpu" if backend in ("cuda", "rocm") else backend


@functools.lru_cache(maxsize=1)
def fits() -> dict[str, dict[str, Any]]:
    """Backend -> the fit record of ``cost_model.json`` (constants, machine, date, quality)."""
    text = resources.files(__package__).joinpath(DATA_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    if data.get("schema") != SCHEMA or data.get("version") != VERSION:
        raise RuntimeError(f"jaxconv: {DATA_FILE} is not a {SCHEMA} version {VERSION} file")
    return data["fits"]


def constants(backend: str) -> dict[str, dict[str, float]]:
    """Algorithm -> {term: seconds per unit} on ``backend`` (empty when none were fitted)."""
    fit = fits().get(canonical_backend(backend))
    return fit["constants"] if fit else {}


def cost_terms(name: str, x_shape: Any, kernel_shape: Any, config: ConvConfig) -> dict[str, float]:
    """The cost terms of algorithm ``name`` for channels-last ``x_shape`` and ``kernel_shape``.

    Counted as for float32 (``flop``-like terms in floating-point operations, ``byte``-like terms
    in bytes of float32 data); :func:`estimate_seconds` scales them for other dtypes. Raises
    ``KeyError`` for an algorithm without cost terms.
    """
    terms = _registry.get(name).cost_terms
    if terms is None:
        raise KeyError(f"algorithm {name!r} has no cost terms")
    return terms(tuple(int(d) for d in x_shape), tuple(int(d) for d in kernel_shape), config)


def _dtype_scale(term: str, dtype: Any) -> float:
    size = jnp.dtype(dtype).itemsize
    return size / 4.0 if ("flop" in term or "byte" in term) else 1.0


def estimate_seconds(name: str, x_shape: Any, kernel_shape: Any, dtype: Any, config: ConvConfig,
                     backend: str = "cpu") -> float | None:
    """Estimated run time of ``name`` in seconds, or ``None`` when the model cannot say."""
    consts = constants(backend).get(name)
    if consts is None or _registry.get(name).cost_terms is None:
        return None
    terms = cost_terms(name, x_shape, kernel_shape, config)
    return sum(consts.get(t, 0.0) * v * _dtype_scale(t, dtype) for t, v in terms.items())
