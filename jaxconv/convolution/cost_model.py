"""The cost model behind ``algorithm="auto"``: fitted constants times each algorithm's cost terms.

An algorithm's estimated time is ``sum(constant[term] * amount[term])``: the amounts come from the
algorithm's own :attr:`Algorithm.cost_terms` (flops of each stage, bytes moved, per-call and
per-block counts, counted for float32 and scaled here for float64), the constants (seconds per
unit) are fitted per backend and per mode (``"forward"``: the convolution; ``"train"``: its
forward and backward pass) by ``benchmarks/fit_cost_model.py``, the only writer of
``cost_model.json``, which records beside them how they were obtained (machine, date, jax
version, the sampled grid and its seed, the error measured on held-out problems).

A :class:`CostModel` is a value: the selector takes one, so tests and :func:`jaxconv.calibrate`
hand it another instead of patching modules. :func:`model` returns the bundled fit for a backend,
rescaled by this device's calibration (``calibration.json`` beside the autotune cache) when
``jaxconv.calibrate()`` has measured one.

A constant is never taken as zero when it is missing: an algorithm whose terms lack a constant
has no estimate (and ``auto`` says so), and :meth:`CostModel.missing` lists the gaps, which the
tests require to be empty for the bundled fit.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from .. import _io
from . import _registry, cache
from ._registry import ConvConfig

SCHEMA = "jaxconv-cost-model"
VERSION = 2
DATA_FILE = "cost_model.json"
MODES = ("forward", "train")
#: How the algorithms' gradients run, as a number: raised whenever one changes, so that
#: training timings measured before (``benchmarks/fit_cost_model.py``'s raw files) are not
#: fitted with the new code. 2: ``gemm_gradients``' kernel gradient through XLA where faster.
TRAINING_REVISION = 2
#: dtypes the constants hold for (float64 is float32's arithmetic at twice the bytes).
MODEL_DTYPES = ("float32", "float64")


class CostModelWarning(UserWarning):
    """The bundled cost model was fitted with another jax version than the one running."""


def canonical_backend(backend: str) -> str:
    return "gpu" if backend in ("cuda", "rocm") else backend


def _dtype_scale(term: str, dtype: Any) -> float:
    size = jnp.dtype(dtype).itemsize
    return size / 4.0 if ("flop" in term or "byte" in term) else 1.0


def cost_terms(name: str, x_shape: Any, kernel_shape: Any, config: ConvConfig,
               mode: str = "forward") -> dict[str, float]:
    """The cost terms of algorithm ``name`` for channels-last ``x_shape`` and ``kernel_shape``.

    The algorithm's own terms (:attr:`Algorithm.cost_terms`), counted as for float32
    (``flop``-like terms in floating-point operations, ``byte``-like terms in bytes of float32
    data), plus the terms every algorithm shares:

    - ``thin_flop``: the direct sum's flops over ``min(C / groups, O)``. Thin problems (an RGB
      image, a depthwise layer, a 1x1 kernel onto 3 channels) make thin GEMMs and short
      vectors, whose time per flop grows as the narrower side shrinks;
    - ``pixel``: output positions, unless the algorithm prices them itself (``direct``, per
      path): a cost per position whatever the channels (a 1x1 kernel from 3 onto 3 channels on
      the cat took ``pointwise`` 1.7 ms, ~13 ns a position, 10x its flop-and-byte estimate).

    The fit gives each algorithm its own price for each. Terms named ``dx_*`` and ``dk_*`` price
    the input and kernel gradients and exist in ``mode="train"`` only. Raises ``KeyError`` for
    an algorithm without cost terms.
    """
    fn = _registry.get(name).cost_terms
    if fn is None:
        raise KeyError(f"algorithm {name!r} has no cost terms")
    x_shape = tuple(int(d) for d in x_shape)
    kernel_shape = tuple(int(d) for d in kernel_shape)
    terms = dict(fn(x_shape, kernel_shape, config))
    out = config.output_hw(x_shape[1:-1], kernel_shape[:-2])
    cg, o = kernel_shape[-2:]
    flop = 2.0 * x_shape[0] * math.prod(out) * math.prod(kernel_shape[:-2]) * cg * o
    terms["thin_flop"] = flop / max(1, min(cg, o))
    if not any(t.startswith("pixel") for t in terms):
        terms["pixel"] = float(x_shape[0] * math.prod(out))
    if mode == "forward":
        terms = {t: v for t, v in terms.items() if not t.startswith(("dx_", "dk_"))}
    return terms


@dataclasses.dataclass(frozen=True, eq=False)
class CostModel:
    """Fitted constants for one backend: ``constants[mode][algorithm][term]`` seconds per unit.

    Attributes:
      backend: the backend the constants were fitted on (``"cpu"``).
      constants: per mode (``"forward"``, ``"train"``), per algorithm, per cost term.
      hedge: per mode, the fraction of ``direct``'s estimate another algorithm's must be under
        for ``auto`` to leave ``direct``: one over the fit's median estimation error, so the
        model only moves away from XLA's convolution when it is surer than its own spread.
      provenance: how the constants were obtained (machine, date, jax version, grid, seed,
        held-out error), as written by ``benchmarks/fit_cost_model.py``.
    """

    backend: str
    constants: Mapping[str, Mapping[str, Mapping[str, float]]]
    hedge: Mapping[str, float]
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def estimate(self, name: str, x_shape: Any, kernel_shape: Any, dtype: Any,
                 config: ConvConfig, mode: str = "forward") -> float | None:
        """Estimated seconds of ``name`` (forward, or forward + backward with ``mode="train"``);
        ``None`` when the model has no constants for it or for one of its non-zero terms.
        An algorithm that reduces the problem to another's (``Algorithm.reduces_to``) is
        estimated as that algorithm on the reduced problem."""
        reduces_to = _registry.get(name).reduces_to
        if reduces_to is not None:
            inner, xs, ks, cfg = reduces_to(tuple(x_shape), tuple(kernel_shape), config)
            return self.estimate(inner, xs, ks, dtype, cfg, mode)
        consts = self.constants.get(mode, {}).get(name)
        if consts is None or _registry.get(name).cost_terms is None:
            return None
        total = 0.0
        for term, amount in cost_terms(name, x_shape, kernel_shape, config, mode).items():
            if amount == 0:
                continue
            if term not in consts:
                return None
            total += consts[term] * amount * _dtype_scale(term, dtype)
        return total

    def missing(self, name: str, x_shape: Any, kernel_shape: Any, config: ConvConfig,
                mode: str = "forward") -> list[str]:
        """The terms of ``name`` on this problem that have no constant in ``mode``."""
        consts = self.constants.get(mode, {}).get(name, {})
        return [t for t in cost_terms(name, x_shape, kernel_shape, config, mode)
                if t not in consts]

    def scaled(self, scales: Mapping[str, Mapping[str, float]]) -> CostModel:
        """A copy whose constants of algorithm ``a`` in mode ``m`` are multiplied by
        ``scales[m][a]`` (calibration)."""
        constants = {
            mode: {name: {t: v * scales.get(mode, {}).get(name, 1.0) for t, v in terms.items()}
                   for name, terms in per_alg.items()}
            for mode, per_alg in self.constants.items()
        }
        return dataclasses.replace(self, constants=constants)

    def to_json(self) -> dict[str, Any]:
        return {"constants": {m: {a: dict(t) for a, t in c.items()} for m, c in self.constants.items()},
                "hedge": dict(self.hedge), "provenance": dict(self.provenance)}


class CostModelError(ValueError):
    """A cost-model record that is not a valid fit (the message names the file and the fault)."""


def _positive_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def _parse_json(data: bytes, source: str) -> Any:
    """JSON from ``data`` by the library's safe reader; a failure is a :class:`CostModelError`."""
    try:
        return _io.parse_json(data, source)
    except _io.JSONFileError as e:
        raise CostModelError(f"jaxconv: {e}") from None


def from_record(backend: str, record: Any, source: str = DATA_FILE) -> CostModel:
    """Validate one backend's record of a cost-model file and build the :class:`CostModel`."""
    def bad(what: str) -> CostModelError:
        return CostModelError(f"jaxconv: {source}: backend {backend!r}: {what}")

    if not isinstance(record, dict):
        raise bad(f"the record must be an object, got {type(record).__name__}")
    constants, hedge = record.get("constants"), record.get("hedge")
    if not isinstance(constants, dict) or set(constants) != set(MODES):
        raise bad(f"'constants' must hold exactly the modes {MODES}")
    for mode, per_alg in constants.items():
        if not isinstance(per_alg, dict):
            raise bad(f"constants[{mode!r}] must be an object")
        for name, terms in per_alg.items():
            if not isinstance(terms, dict) or not all(
                    isinstance(t, str) and _positive_number(v) for t, v in terms.items()):
                raise bad(f"constants[{mode!r}][{name!r}] must map terms to finite numbers >= 0")
    if not isinstance(hedge, dict) or set(hedge) != set(MODES) or not all(
            _positive_number(h) and 0 < h <= 1 for h in hedge.values()):
        raise bad(f"'hedge' must map {MODES} to numbers in (0, 1], got {hedge!r}")
    provenance = record.get("provenance", {})
    if not isinstance(provenance, dict):
        raise bad("'provenance' must be an object")
    return CostModel(backend, constants, hedge, provenance)


def read(path: Path | str | None = None) -> dict[str, CostModel]:
    """Backend -> :class:`CostModel` from a cost-model file (default: the bundled one)."""
    if path is None:
        source = DATA_FILE
        data = _parse_json(resources.files(__package__).joinpath(DATA_FILE).read_bytes(), source)
    else:
        source = str(path)
        try:
            data = _io.read_json(path)
        except _io.JSONFileError as e:
            raise CostModelError(f"jaxconv: {e}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("version") != VERSION:
        raise CostModelError(f"jaxconv: {source} is not a {SCHEMA} version {VERSION} file")
    fits = data.get("fits")
    if not isinstance(fits, dict):
        raise CostModelError(f"jaxconv: {source}: 'fits' must be an object")
    return {b: from_record(b, r, source) for b, r in fits.items()}


@functools.lru_cache(maxsize=1)
def bundled() -> dict[str, CostModel]:
    """The bundled fits, read once; warns when they were fitted with another jax version."""
    models = read()
    for m in models.values():
        fitted = m.provenance.get("jax")
        if fitted and fitted != jax.__version__:
            warnings.warn(
                f"jaxconv: the cost model for {m.backend} was fitted with jax {fitted}, this is "
                f"jax {jax.__version__}: XLA's speeds may have moved (run jaxconv.calibrate() or "
                "benchmarks/fit_cost_model.py)", CostModelWarning, stacklevel=2)
    return models


# ----------------------------------------------------------------------------- calibration

CALIBRATION_SCHEMA = "jaxconv-calibration"
CALIBRATION_FILE = "calibration.json"


def calibration_path() -> Path:
    return cache.cache_dir() / CALIBRATION_FILE


def calibration_key(backend: str) -> str:
    return f"{backend}|{cache.device_kind(backend)}|jax {jax.__version__}"


def _valid_scales(scales: Any) -> bool:
    return isinstance(scales, dict) and all(
        isinstance(k, str) and _positive_number(v) and v > 0 for k, v in scales.items())


def _valid_calibration(entry: Any) -> bool:
    scales = entry.get("scales") if isinstance(entry, dict) else None
    return isinstance(scales, dict) and set(scales) <= set(MODES) and all(
        _valid_scales(s) for s in scales.values())


def _read_calibrations(path: Path) -> dict[str, dict]:
    """Valid entries of the calibration file; ``{}`` when it is missing or unusable (a
    calibration problem must never break a convolution: the bundled fit applies)."""
    try:
        data = _io.read_json(path)
    except _io.JSONFileError as e:
        if e.missing:
            return {}
        warnings.warn(f"{e}; ignoring it (jaxconv calibrate rewrites it)",
                      cache.AutotuneCacheWarning, stacklevel=3)
        return {}
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
    """This device's calibration entry (``{"scales": {mode: {algorithm: factor}}, ...}``), or ``{}``."""
    path = calibration_path()
    try:
        st = path.stat()
        signature: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
    except OSError:
        signature = None
    return _calibrations_at(str(path), signature).get(calibration_key(backend), {})


def store_calibration(backend: str, entry: dict[str, Any]) -> Path:
    """Save ``entry`` as this device's calibration (merged with other devices' under a lock;
    an unreadable file is replaced)."""
    path = calibration_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with cache.folder_lock(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cache.AutotuneCacheWarning)
            entries = _read_calibrations(path)
        entries[calibration_key(backend)] = entry
        _io.write_json_atomic(path, {"schema": CALIBRATION_SCHEMA, "version": 2,
                                     "entries": entries})
    return path


def model(backend: str, *, calibrated: bool = True) -> CostModel | None:
    """The cost model ``auto`` uses on ``backend`` (``None`` where none was fitted), rescaled by
    this device's calibration when ``calibrated`` and one was measured."""
    fit = bundled().get(canonical_backend(backend))
    if fit is None or not calibrated:
        return fit
    scales = calibration(backend).get("scales")
    return _scaled(fit, _freeze(scales)) if scales else fit


def _freeze(scales: Mapping[str, Mapping[str, float]]) -> tuple:
    return tuple(sorted((m, tuple(sorted(s.items()))) for m, s in scales.items()))


@functools.lru_cache(maxsize=8)
def _scaled(fit: CostModel, frozen: tuple) -> CostModel:
    # one object per (fit, scales): the selector memoizes its choices per model object
    return fit.scaled({m: dict(s) for m, s in frozen})


def estimate_seconds(name: str, x_shape: Any, kernel_shape: Any, dtype: Any, config: ConvConfig,
                     backend: str = "cpu", *, calibrated: bool = True,
                     mode: str = "forward") -> float | None:
    """Estimated run time of ``name`` in seconds on ``backend`` (forward + backward with
    ``mode="train"``), or ``None`` when the model cannot say."""
    m = model(backend, calibrated=calibrated)
    return None if m is None else m.estimate(name, x_shape, kernel_shape, dtype, config, mode)
