"""How ``algorithm="auto"`` picks an algorithm: an autotune measurement, else a cost model.

The choice is made in Python, at trace time, from static shapes, dtype, config and backend:

1. If :func:`jaxconv.autotune` has measured this exact problem (backend, device kind, jax
   version, NHWC shape, HWIO shape, dtype, config) its winner is used.
2. Otherwise, on GPU and TPU, ``"direct"``: XLA lowers it to cuDNN / the MXU, which the
   algorithms here do not beat without a measurement saying so.
3. Otherwise (CPU) each applicable algorithm's time is estimated by the cost model
   (``cost_model.py``: the algorithm's own cost terms times constants fitted per backend by
   ``benchmarks/fit_cost_model.py``). The cheapest wins, with a small hedge: another
   algorithm displaces ``"direct"`` only when its estimate is below ``MARGIN`` times direct's
   (``ODD_MARGIN`` for grouped, strided or dilated problems; an algorithm's own
   ``Algorithm.margin`` replaces both); a 1x1 kernel is one GEMM (``direct`` or
   ``pointwise``); never for problems direct finishes in under ``MIN_DIRECT_SECONDS``, never
   below an algorithm's ``min_channels``, and never for dtypes or configurations the constants
   were not fitted on (then it says so in ``Selection.reason``).

:func:`select_algorithm` returns the whole picture as a :class:`Selection`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import DTypeLike

from . import _registry, cache, cost_model, tuning
from ._canonical import (
    Padding,
    PrecisionLike,
    canonicalize,
    kernel_layout,
    layouts,
    shape_specs,
)
from ._registry import ConvConfig

# Another algorithm must be estimated at most this fraction of direct's time to displace it
# (an algorithm's own ``Algorithm.margin`` can be tighter).
MARGIN = 0.95
# Odd configurations (groups > 1, strided, dilated, not float32) need a wider margin: most of the
# grid the constants were fitted on is dense, stride-1, float32.
ODD_MARGIN = 0.9
# Problems direct finishes faster than this stay direct (overheads dominate, nothing to win).
MIN_DIRECT_SECONDS = 2e-4
# dtypes the model is trusted for (float64 scales flops by 2, bytes by itemsize).
MODEL_DTYPES = ("float32", "float64")
_LAYOUTS = tuple(name for s in (1, 2, 3) for name in layouts(s))
# Backends where only a measurement (autotune) may displace XLA's convolution.
ACCELERATOR_BACKENDS = ("gpu", "cuda", "rocm", "tpu", "metal")
# Set to "1" to measure every new problem on first use (see :func:`set_autotune`).
AUTOTUNE_ENV = "JAXCONV_AUTOTUNE"
_autotune_override: bool | None = None


def set_autotune(enabled: bool | None) -> None:
    """Measure-on-first-use mode for ``algorithm="auto"`` (``torch.backends.cudnn.benchmark``).

    When on, the first trace of each problem that has no autotune entry yet times every
    applicable algorithm on the default device (as :func:`jaxconv.autotune` does), caches the
    winner on disk and uses it; later traces and later processes reuse the entry. That first
    trace takes a compile and a few runs of each algorithm. ``None`` defers to the
    ``JAXCONV_AUTOTUNE`` environment variable (``"1"``: on); the default is off.
    """
    global _autotune_override
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"set_autotune: enabled must be True, False or None, got {enabled!r}")
    _autotune_override = enabled


def autotune_enabled() -> bool:
    """Whether ``auto`` measures new problems on first use (:func:`set_autotune`)."""
    if _autotune_override is not None:
        return _autotune_override
    return os.environ.get(AUTOTUNE_ENV, "") == "1"


# --------------------------------------------------------------------------- selection


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which algorithm ``conv2d(..., algorithm="auto")`` uses for a problem, and why.

    Attributes:
      algorithm: the chosen algorithm's name.
      source: ``"autotune"`` (a cached measurement on this device) or ``"cost-model"``.
      costs: estimated seconds of each applicable algorithm the model has constants for
        (empty on backends without constants).
      unsupported: algorithm -> why it cannot serve (or why the model cannot estimate it).
      measured_ms: with ``source == "autotune"``, the cached median milliseconds per algorithm.
      reason: one line saying why ``algorithm`` was chosen.
      backend: the backend the choice is for.
      x_shape: the batched NHWC shape the algorithm sees (after non-zero padding modes).
      kernel_shape: HWIO kernel shape.
      dtype: the computation dtype's name.
      config: the canonical :class:`ConvConfig` (zero padding, stride, dilation, groups).
      mode: ``"forward"``, or ``"train"`` for the choice made when the convolution is
        differentiated (estimates and measurements are then of forward + backward).
    """

    algorithm: str
    source: str
    costs: dict[str, float]
    unsupported: dict[str, str]
    measured_ms: dict[str, float] | None
    reason: str
    backend: str
    x_shape: tuple[int, ...]
    kernel_shape: tuple[int, ...]
    dtype: str
    config: ConvConfig
    mode: str = "forward"

    def __str__(self) -> str:
        c = self.config
        spatial = len(self.x_shape) - 2
        head = (
            f"x {'x'.join(map(str, self.x_shape))} ({layouts(spatial)[0]}), kernel "
            f"{'x'.join(map(str, self.kernel_shape))} ({kernel_layout(spatial)}), {self.dtype}, stride {c.stride}, "
            f"padding {c.padding}, dilation {c.dilation}, groups {c.groups}, backend "
            f"{self.backend}"
        )
        lines = [head, f"  {'algorithm':<12} {'estimate ms':>12} {'measured ms':>12}"]
        names = list(dict.fromkeys([*self.costs, *(self.measured_ms or {})]))
        names.sort(key=lambda a: (self.measured_ms or {}).get(a, self.costs.get(a, math.inf)))
        for a in names:
            est = self.costs.get(a)
            meas = (self.measured_ms or {}).get(a)
            est_s = f"{est * 1e3:12.3f}" if est is not None else f"{'-':>12}"
            meas_s = f"{meas:12.3f}" if meas is not None else f"{'-':>12}"
            mark = "  <- chosen" if a == self.algorithm else ""
            lines.append(f"  {a:<12} {est_s} {meas_s}{mark}")
        if self.algorithm not in names:
            lines.append(f"  {self.algorithm:<12} {'-':>12} {'-':>12}  <- chosen")
        for a, why in self.unsupported.items():
            lines.append(f"  {a:<12} n/a: {why}")
        lines.append(f"chosen: {self.algorithm} ({self.source}): {self.reason}")
        return "\n".join(lines)


def _odd(dtype, config: ConvConfig) -> bool:
    return (
        config.groups != 1
        or any(v != 1 for v in config.stride)
        or any(v != 1 for v in config.dilation)
        or jnp.dtype(dtype).name != "float32"
    )


def _highest(config: ConvConfig) -> bool:
    p = config.precision
    return lax.Precision.HIGHEST in (p if isinstance(p, tuple) else (p,))


def _precision_reason(alg: _registry.Algorithm, config: ConvConfig) -> str | None:
    """Why ``auto`` must not pick ``alg`` at this precision, or ``None``."""
    if alg.error == "global" and _highest(config):
        return (f"precision='highest' asks for an error relative to each output; {alg.name}'s "
                "is relative to the largest output (auto never picks it; name it to use it)")
    return None


def _cached_choice(x_shape, kernel_shape, dtype, config, backend, mode="forward"):
    """``(winner, measured_ms)`` from the autotune cache when it applies here, else ``None``."""
    try:
        entry = cache.lookup(x_shape, kernel_shape, dtype, config, backend, mode)
    except Exception:  # a cache problem must never break a convolution
        return None
    if entry is None:
        return None
    winner = entry.get("winner")
    if winner not in _registry.names():  # tuned with an algorithm this build does not have
        return None
    alg = _registry.get(winner)
    if alg.unsupported_reason(x_shape, kernel_shape, dtype, config) is not None:
        return None
    if _precision_reason(alg, config) is not None:
        return None
    return winner, {str(k): float(v) for k, v in entry["timings_ms"].items()}


@functools.lru_cache(maxsize=1024)
def _model_choice(x_shape, kernel_shape, dtype_name, config, backend, registered,
                  mode="forward"):
    """The cost model's (algorithm, costs, unsupported, reason); pure in its (hashable) inputs.

    ``registered`` (the registry's names) is part of the key so a late registration counts.
    """
    dtype = jnp.dtype(dtype_name)
    unsupported, applicable = {}, []
    for alg in _registry.algorithms():
        why = alg.unsupported_reason(x_shape, kernel_shape, dtype, config)
        why = why or _precision_reason(alg, config)
        if why is None:
            applicable.append(alg.name)
        else:
            unsupported[alg.name] = why
    if math.prod(x_shape) == 0:  # the cost terms divide by sizes
        return "direct", {}, unsupported, "an empty input: nothing to compute"
    if cost_model.constants(backend):  # preferences were measured where the model was fitted
        for alg in _registry.algorithms():
            why = (alg.preferred(x_shape, kernel_shape, config, mode)
                   if alg.preferred is not None and alg.name in applicable else None)
            if why:
                return alg.name, {}, unsupported, why
    costs = {}
    for name in applicable:
        est = cost_model.estimate_seconds(name, x_shape, kernel_shape, dtype, config, backend,
                                          mode=mode)
        if est is not None:
            costs[name] = est
        elif cost_model.constants(backend, mode=mode):
            unsupported[name] = f"no cost-model constants on {backend} (measure it with jaxconv.autotune)"

    if cost_model.canonical_backend(backend) in ACCELERATOR_BACKENDS:
        return "direct", costs, unsupported, (
            f"on {backend} XLA's convolution (cuDNN / MXU) is kept unless jaxconv.autotune "
            "measured another algorithm faster for this problem"
        )
    if mode == "train" and not cost_model.constants(backend, mode=mode):
        name, *_ = _model_choice(x_shape, kernel_shape, dtype_name, config, backend, registered)
        return name, costs, unsupported, "no training constants: the forward choice"
    if "direct" not in costs:
        return "direct", costs, unsupported, f"no cost model for backend {backend!r}"
    if dtype.name not in MODEL_DTYPES:
        return "direct", costs, unsupported, (
            f"the cost model is not fitted for {dtype.name}; direct unless autotuned"
        )
    if len(x_shape) != 4:
        return _nd_choice(x_shape, kernel_shape, config, costs, unsupported)
    channels = min(kernel_shape[-2], kernel_shape[-1])
    candidates = {n: c for n, c in costs.items() if channels >= _registry.get(n).min_channels}
    if math.prod(kernel_shape[:-2]) == 1:
        # A 1x1 kernel is one GEMM: XLA's own (YNNPACK's) or pointwise's; the other algorithms'
        # estimates were measured up to 13x too optimistic there (im2col on the RGB cat).
        candidates = {n: c for n, c in candidates.items() if n in ("direct", "pointwise")}
    best = min(candidates, key=lambda a: candidates[a])
    direct = costs["direct"]
    if best == "direct":
        return "direct", costs, unsupported, "direct has the lowest estimate"
    if direct < MIN_DIRECT_SECONDS:
        return "direct", costs, unsupported, (
            f"small problem (direct estimated {direct * 1e3:.3f} ms < "
            f"{MIN_DIRECT_SECONDS * 1e3:.1f} ms): not worth leaving direct"
        )
    base = ODD_MARGIN if _odd(dtype, config) else MARGIN

    def margin(name: str) -> float:
        own = _registry.get(name).margin
        return base if own is None else own

    qualifying = {n: c for n, c in candidates.items() if n != "direct" and c < margin(n) * direct}
    if not qualifying:
        return "direct", costs, unsupported, (
            f"{best} is estimated {direct / costs[best]:.2f}x faster, below the "
            f"{1 / margin(best):.2f}x the model needs to leave direct"
        )
    best = min(qualifying, key=lambda a: qualifying[a])
    return best, costs, unsupported, (
        f"lowest estimate, {direct / costs[best]:.2f}x below direct's "
        f"(needs {1 / margin(best):.2f}x)"
    )


# 1-D: ``fft`` from this many effective kernel taps (stride 1), else ``direct``. Measured on the
# project's 2-core CPU (float32 ms, direct / fft): 1x65536x1, k=4097: 45 / 0.93; k=513: 3.8 /
# 0.45; k=9: 1.1 / 0.44; 8x4096x16->16, k=9: 1.1 / 3.9; k=33: 3.8 / 4.6; k=65: 7.6 / 4.6;
# 8x1024x64->64, k=33: 6.8 / 6.8; k=65: 27 / 7.7. Single-channel signals favour fft at any
# length, but those are sub-millisecond; with channels fft wins from ~33-65 taps.
FFT_1D_MIN_TAPS = 64


def _nd_choice(x_shape, kernel_shape, config: ConvConfig, costs, unsupported):
    """``auto`` for 1-D and 3-D problems: the cost model's constants were fitted on 2-D, so a
    measured rule decides instead (:data:`FFT_1D_MIN_TAPS`); 3-D stays ``direct``."""
    spatial = len(x_shape) - 2
    if spatial == 1:
        (taps,) = config.effective_kernel(tuple(kernel_shape[:-2]))
        if "fft" in unsupported or "fft" not in _registry.names():
            return "direct", costs, unsupported, "1-D: fft is not applicable here"
        if any(v != 1 for v in config.stride):
            return "direct", costs, unsupported, (
                "1-D strided: fft costs as much as stride 1, direct is kept"
            )
        if taps >= FFT_1D_MIN_TAPS:
            return "fft", costs, unsupported, (
                f"1-D rule: a {taps}-tap kernel (>= {FFT_1D_MIN_TAPS}) is faster by FFT"
            )
        return "direct", costs, unsupported, (
            f"1-D rule: a {taps}-tap kernel (< {FFT_1D_MIN_TAPS}) stays direct"
        )
    return "direct", costs, unsupported, (
        f"{spatial}-D: direct unless jaxconv.autotune measured otherwise (the cost model is "
        "fitted on 2-D)"
    )


def clear_caches() -> None:
    """Forget memoized choices (after the cost model's constants changed)."""
    _model_choice.cache_clear()


def select(x_shape, kernel_shape, dtype, config: ConvConfig, backend: str | None = None,
           *, use_cache: bool = True, mode: str = "forward") -> Selection:
    """The :class:`Selection` for canonical NHWC ``x_shape``, HWIO ``kernel_shape``, ``config``."""
    backend = jax.default_backend() if backend is None else backend
    x_shape = tuple(int(d) for d in x_shape)
    kernel_shape = tuple(int(d) for d in kernel_shape)
    dtype_name = jnp.dtype(dtype).name
    name, costs, unsupported, reason = _model_choice(x_shape, kernel_shape, dtype_name, config,
                                                     backend, _registry.names(), mode)
    costs, unsupported = dict(costs), dict(unsupported)
    cached = (_cached_choice(x_shape, kernel_shape, dtype, config, backend, mode)
              if use_cache else None)
    if cached is not None:
        winner, ms = cached
        return Selection(winner, "autotune", costs, unsupported, ms,
                         "measured fastest by jaxconv.autotune on this device", backend, x_shape,
                         kernel_shape, dtype_name, config, mode)
    return Selection(name, "cost-model", costs, unsupported, None, reason, backend, x_shape,
                     kernel_shape, dtype_name, config, mode)


def choose_algorithm(x_shape, kernel_shape, dtype, config: ConvConfig,
                     backend: str | None = None, mode: str = "forward") -> str:
    """Name of the algorithm ``auto`` uses for NHWC ``x_shape`` and HWIO ``kernel_shape``.

    The hook ``conv2d`` calls (at trace time, and on every eager call), so it skips building a
    :class:`Selection`. ``mode="train"``: the algorithm whose forward + backward is fastest,
    which ``conv2d`` switches to when it is differentiated.
    """
    backend = jax.default_backend() if backend is None else backend
    x_shape, kernel_shape = tuple(x_shape), tuple(kernel_shape)
    cached = _cached_choice(x_shape, kernel_shape, dtype, config, backend, mode)
    if cached is not None:
        return cached[0]
    if autotune_enabled() and backend == jax.default_backend() and math.prod(x_shape) > 0:
        try:
            names = [a.name for a in _registry.algorithms() if _precision_reason(a, config) is None]
            return tuning.measure(x_shape, kernel_shape, dtype, config, names=names,
                                  repeats=3, mode=mode).winner
        except Exception as e:  # measuring must never break a convolution: the model decides
            warnings.warn(f"jaxconv: measuring algorithms on first use failed ({e}); using the "
                          "cost model", cache.AutotuneCacheWarning, stacklevel=2)
    return _model_choice(x_shape, kernel_shape, jnp.dtype(dtype).name, config, backend,
                         _registry.names(), mode)[0]


def select_algorithm(
    x_shape: Sequence[int],
    kernel_shape: Sequence[int],
    *,
    dtype: DTypeLike = "float32",
    stride: int | Sequence[int] = 1,
    padding: Padding = "VALID",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    data_format: str | None = None,
    backend: str | None = None,
    precision: PrecisionLike = None,
    mode: str = "forward",
) -> Selection:
    """Which algorithm ``conv2d(..., algorithm="auto")`` would use, with every estimate.

    Arguments are validated exactly as :func:`jaxconv.conv2d` validates them. The kernel's rank
    sets the number of spatial dims, as for :func:`jaxconv.conv`: a WIO or DHWIO
    ``kernel_shape`` gives the choice of :func:`jaxconv.conv1d` / :func:`jaxconv.conv3d`.

    Args:
      x_shape: image shape ``(N, H, W, C)`` (``(N, C, H, W)`` with ``data_format="NCHW"``,
        or unbatched ``(H, W, C)``); ``(N, W, C)`` / ``(N, D, H, W, C)`` for 1-D / 3-D.
      kernel_shape: **HWIO** ``(kh, kw, C // groups, O)`` (WIO / DHWIO for 1-D / 3-D).
      dtype: the floating dtype of the computation.
      stride, padding, dilation, groups, padding_mode, precision: as for
        :func:`jaxconv.conv2d`.
      data_format: ``None`` (channels-last for the rank, ``"NHWC"`` for 2-D) or a layout name.
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"``, ...; default ``jax.default_backend()``.
      mode: ``"forward"`` (what ``auto`` runs) or ``"train"`` (what it switches to when the
        convolution is differentiated: the fastest forward + backward).

    Returns:
      A :class:`Selection`: ``.algorithm``, ``.source`` (``"autotune"`` or ``"cost-model"``),
      ``.costs`` (estimated seconds per applicable algorithm), ``.unsupported`` (reasons) and
      ``.reason``; ``print()`` it for a table.

    Examples:
      >>> import jaxconv
      >>> sel = jaxconv.select_algorithm((8, 64, 64, 32), (3, 3, 32, 32), backend="gpu")
      >>> sel.algorithm, sel.source
      ('direct', 'cost-model')
      >>> jaxconv.select_algorithm((1, 65536, 1), (4097, 1, 1), backend="cpu").algorithm
      'fft'
    """
    fn = "select_algorithm"
    if backend is not None and (not isinstance(backend, str) or not backend):
        raise TypeError(f"{fn}: backend must be None or a backend name such as 'cpu', got {backend!r}")
    if mode not in cache.MODES:
        raise ValueError(f"{fn}: mode must be one of {cache.MODES}, got {mode!r}")
    x_spec, k_spec = shape_specs(fn, x_shape, kernel_shape, dtype)
    # The layout name, else the kernel's rank (when x's rank agrees), sets the spatial dims;
    # otherwise 2-D, whose validation then says what is wrong.
    spatial = k_spec.ndim - 2
    if isinstance(data_format, str) and data_format.upper() in _LAYOUTS:
        spatial = len(data_format) - 2
    elif spatial not in (1, 2, 3) or x_spec.ndim not in (spatial + 1, spatial + 2):
        spatial = 2
    _, _, _, canon = canonicalize(fn, x_spec, k_spec, None, stride=stride, padding=padding,
                                  dilation=dilation, groups=groups, padding_mode=padding_mode,
                                  data_format=data_format, precision=precision, spatial=spatial)
    return select(canon.x_shape, canon.kernel_shape, canon.dtype, canon.config,
                  None if backend is None else backend.lower(), mode=mode)
