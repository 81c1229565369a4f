"""The cost model behind ``algorithm="auto"``: fitted constants times each algorithm's cost terms.

An algorithm's estimated time on a backend is ``sum(constant[term] * amount[term])``, where the
amounts come from the algorithm's own :attr:`Algorithm.cost_terms` (flops of each stage, bytes
moved, per-call and per-block counts, all counted for float32 and scaled here for other dtypes)
and the constants, in seconds per unit, are fitted per backend by ``benchmarks/fit_cost_model.py``
and stored in ``cost_model.json`` beside this module, with the machine, date, grid and fit
quality they come from. An algorithm without constants for a backend is never picked by the
model there (``jaxconv.autotune`` still measures it).

``jaxconv.calibrate()`` measures per-algorithm correction factors on the user's machine and
stores them in ``calibration.json`` beside the autotune cache (keyed by backend, device kind and
jax version); :func:`constants` applies them.
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from . import _registry, cache
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


def constants(backend: str, *, calibrated: bool = True,
              mode: str = "forward") -> dict[str, dict[str, float]]:
    """Algorithm -> {term: seconds per unit} on ``backend`` (empty when none were fitted).

    ``mode="forward"``: the convolution's time; ``"train"``: its forward and backward pass
    (``train_constants``, fitted on the gradients' timings). With ``calibrated``, each
    algorithm's forward constants are multiplied by this device's calibration factor, when
    ``jaxconv.calibrate()`` has measured one.
    """
    fit = fits().get(canonical_backend(backend))
    if not fit:
        return {}
    if mode == "train":
        return dict(fit.get("train_constants", {}))
    scales = calibration(backend).get("scales", {}) if calibrated else {}
    return {
        name: {t: v * scales.get(name, 1.0) for t, v in consts.items()}
        for name, consts in fit["constants"].items()
    }


# ----------------------------------------------------------------------------- calibration

CALIBRATION_SCHEMA = "jaxconv-calibration"
CALIBRATION_FILE = "calibration.json"


def calibration_path() -> Path:
    return cache.cache_dir() / CALIBRATION_FILE


def calibration_key(backend: str) -> str:
    return f"{backend}|{cache.device_kind(backend)}|jax {jax.__version__}"


def _valid_calibration(entry: Any) -> bool:
    scales = entry.get("scales") if isinstance(entry, dict) else None
    return isinstance(scales, dict) and all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
        and math.isfinite(v) and v > 0
        for k, v in scales.items()
    )


def _read_calibrations(path: Path) -> dict[str, dict]:
    """Valid entries of the calibration file; ``{}`` when it is missing or unusable."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}  # a calibration problem must never break a convolution: the fit applies
    if not isinstance(data, dict) or data.get("schema") != CALIBRATION_SCHEMA:
        return {}
    entries = data.get("entries")
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if _valid_calibration(v)}


@functools.lru_cache(maxsize=8)
def _calibrations_at(path: str, signature: tuple[int, int] | None) -> dict[str, dict]:
    return _read_calibrations(Path(path)) if signature is not None else {}


def calibration(backend: str) -> dict[str, Any]:
    """This device's calibration entry (``{"scales": {...}, ...}``), or ``{}``."""
    path = calibration_path()
    try:
        st = path.stat()
        signature: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
    except OSError:
        signature = None
    return _calibrations_at(str(path), signature).get(calibration_key(backend), {})


def store_calibration(backend: str, entry: dict[str, Any]) -> Path:
    """Save ``entry`` as this device's calibration (merged with other devices' under a lock)."""
    path = calibration_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with cache.folder_lock(path):
        entries = _read_calibrations(path)
        entries[calibration_key(backend)] = entry
        cache.write_json_atomic(path, {"schema": CALIBRATION_SCHEMA, "version": 1,
                                       "entries": entries})
    return path


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
                     backend: str = "cpu", *, calibrated: bool = True,
                     mode: str = "forward") -> float | None:
    """Estimated run time of ``name`` in seconds (of forward + backward with ``mode="train"``),
    or ``None`` when the model cannot say."""
    consts = constants(backend, calibrated=calibrated, mode=mode).get(name)
    if consts is None or _registry.get(name).cost_terms is None:
        return None
    terms = cost_terms(name, x_shape, kernel_shape, config)
    return sum(consts.get(t, 0.0) * v * _dtype_scale(t, dtype) for t, v in terms.items())
