"""How ``algorithm="auto"`` picks an algorithm: an autotune measurement, else a cost model.

The choice is made in Python, at trace time, from static shapes, dtype, config and backend:

1. If :func:`jaxconv.autotune` has measured this exact problem (backend, device kind, jax
   version, NHWC shape, HWIO shape, dtype, config) its winner is used.
2. Otherwise, on GPU and TPU, ``"direct"``: XLA lowers it to cuDNN / the MXU, which the
   algorithms here do not beat without a measurement saying so.
3. Otherwise (CPU) each applicable algorithm's time is estimated as a linear model in a few
   static *cost terms* (a fixed per-call cost, flops of each stage, bytes moved; see
   :func:`cost_terms`) with per-backend constants fitted by ``benchmarks/fit_cost_model.py``
   (table :data:`COST_CONSTANTS`). The cheapest wins, but the model is conservative: another
   algorithm displaces ``"direct"`` only when its estimate is below ``MARGIN`` times direct's,
   never for 1x1 kernels (already one GEMM in XLA) or strided / dilated convolutions (XLA is
   relatively much faster there than the stride-1 fit says), never for problems direct finishes in under
   ``MIN_DIRECT_SECONDS``, and never for dtypes or
   configurations the constants were not fitted on (then it says so in ``Selection.reason``).

:func:`select_algorithm` returns the whole picture as a :class:`Selection`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from . import _registry
from ._registry import ConvConfig

# --------------------------------------------------------------------------- model constants
#
# Seconds per unit of each cost term (see ``cost_terms``), per backend and algorithm.
# Fitted by ``python benchmarks/fit_cost_model.py``: every algorithm timed over a grid of 52
# VALID float32 problems (DESIGN.md's article, layer and lenet cases, counted double, plus a
# spread of N, H = W, C, O and k) and direct also on each one's SAME variant, the algorithms of
# each problem round-robin, minimum of 5 rounds; then
# least squares on log-time with a soft-L1 loss, constants kept non-negative. Fit quality
# (estimate / measurement, median): direct 1.41x, fft 1.18x, im2col 1.19x, winograd 1.15x,
# xla_padded 1.17x (worst 2-6x); hence the margins below. Measured 2026-11-28 15:21 UTC on the
# project's shared 2-core x86-64 CPU machine under heavy load from other processes (load average
# 7-8: the absolute constants are inflated, the comparisons between algorithms less so),
# jax 0.10.2. Terms the fit sets to ~0 did not explain any
# measurement. Re-run the script and paste its table here when the algorithms or the machine
# change. An algorithm without constants for a backend is never picked by the model there
# (``jaxconv.autotune`` still measures it). No GPU/TPU rows: there only autotune leaves direct.
COST_CONSTANTS: dict[str, dict[str, dict[str, float]]] = {
    "cpu": {
        "direct": {"call": 0.000189, "flop": 3.36e-11, "patch": 8.68e-10, "flop_padded": 0.0,
                   "patch_padded": 9.12e-10, "byte": 1.57e-09},
        "fft": {"call": 0.0, "fft_flop": 1.1e-10, "transform": 1.08e-06, "gemm_flop": 5.22e-11,
                "gemm_weight": 0.0, "ew_flop": 0.0, "kernel_flop": 1.43e-10, "byte": 0.0},
        "im2col": {"call": 2.59e-05, "flop": 8.95e-12, "patch_byte": 2.31e-10, "chunk": 6.62e-12},
        "xla_padded": {"call": 8.84e-05, "flop": 5.59e-12, "patch": 2.08e-10, "tap": 2.5e-09,
                       "byte": 1.45e-09},
        "winograd": {"call": 1.38e-13, "flop": 7.31e-12, "tile": 1.52e-08, "transform_byte": 1.21e-10},
    },
}

# Another algorithm must be estimated at most this fraction of direct's time to displace it.
MARGIN = 0.7
# Odd configurations (groups > 1, not float32) need a wider margin: the grid the constants were
# fitted on is dense, stride-1, float32. (Strided and dilated problems always stay direct.)
ODD_MARGIN = 0.4
# Per-algorithm margins, tighter than MARGIN where the fit was measured too optimistic: im2col's
# estimates on LeNet's shapes (256x32x32x1 -> 6 and 256x14x14x6 -> 16, 5x5) were 0.59x and 0.53x
# of direct's while it measured 1.0-1.2x of direct's time (benchmark run of 2026-11-28 15:50 UTC,
# quiet 2-core CPU), so it must promise twice direct's speed.
ALGORITHM_MARGIN = {"im2col": 0.5}
# Problems direct finishes faster than this stay direct (overheads dominate, nothing to win).
MIN_DIRECT_SECONDS = 2e-4
# dtypes the model is trusted for (float64 scales flops by 2, bytes by itemsize).
MODEL_DTYPES = ("float32", "float64")
# ``xla_padded`` (XLA's convolution on its padded path) is only considered with at least this many
# input channels per group and output channels: with fewer, every problem of the fit's grid ran
# 0-25% slower on the padded path than direct's VALID one (the RGB cat, LeNet, C = O = 16), while
# with 24-64 channels it ran 1.1-7x faster; its model does not separate the two sharply enough.
XLA_PADDED_MIN_CHANNELS = 24
# Backends where only a measurement (autotune) may displace XLA's convolution.
ACCELERATOR_BACKENDS = ("gpu", "cuda", "rocm", "tpu", "metal")


# --------------------------------------------------------------------------- cost terms


def _geometry(x_shape, kernel_shape, config: ConvConfig):
    n, h, w, c = (int(d) for d in x_shape)
    kh, kw, cg, o = (int(d) for d in kernel_shape)
    ho, wo = config.output_hw((h, w), (kh, kw))
    return n, h, w, c, kh, kw, cg, o, ho, wo


def _direct_terms(x_shape, kernel_shape, dtype, config):
    n, h, w, c, kh, kw, cg, o, ho, wo = _geometry(x_shape, kernel_shape, config)
    (pt, pb), (pl, pr) = config.padding
    taps = n * ho * wo * kh * kw
    # XLA:CPU runs a convolution with any zero padding through a different path, on some shapes
    # much faster than the unpadded (VALID) one (3.5-5x on the layer case, 8x64x64x32), so the
    # two get separate flop and patch constants.
    padded = any(p for pads in config.padding for p in pads)
    flop, patch = 2.0 * taps * cg * o, float(taps * c)
    return {
        "call": 1.0,
        "flop": 0.0 if padded else flop,
        # elements of the (virtual) patch matrix XLA:CPU packs: dominant when O is small
        "patch": 0.0 if padded else patch,
        "flop_padded": flop if padded else 0.0,
        "patch_padded": patch if padded else 0.0,
        "byte": float(n * (h + pt + pb) * (w + pl + pr) * c + n * ho * wo * o),
    }


def _xla_padded_terms(x_shape, kernel_shape, dtype, config):
    # XLA's convolution on the padded path always (jaxconv/conv/xla_padded.py appends a zero row
    # to VALID problems and crops the output): direct's padded-path terms, counted on the
    # configuration XLA actually runs (the extra output row included).
    from .xla_padded import padded_config

    run = padded_config(config)
    n, h, w, c, kh, kw, cg, o, ho, wo = _geometry(x_shape, kernel_shape, run)
    (pt, pb), (pl, pr) = run.padding
    taps = n * ho * wo * kh * kw
    return {
        "call": 1.0,
        "flop": 2.0 * taps * cg * o,
        "patch": float(taps * c),
        # per (output point, kernel tap) whatever C: what few-channel problems (the RGB cat,
        # LeNet's first layer) pay on this path, where the flops and patch terms are small
        "tap": float(taps),
        "byte": float(n * (h + pt + pb) * (w + pl + pr) * c + n * ho * wo * o),
    }


def _fft_terms(x_shape, kernel_shape, dtype, config):
    # Counted here from the FFT module's own plan (fast lengths, overlap-save blocks), so the
    # terms follow what conv_fft actually runs.
    from . import fft as _fft_module

    n, h, w, c, kh, kw, cg, o, _, _ = _geometry(x_shape, kernel_shape, config)
    (pt, pb), (pl, pr) = config.padding
    hp, wp = h + pt + pb, w + pl + pr
    choose_tiles = getattr(_fft_module, "choose_tiles", None)
    tiles = choose_tiles(x_shape, kernel_shape, config) if choose_tiles is not None else None
    if tiles is None:
        lh, lw = _fft_module.next_fast_len(hp), _fft_module.next_fast_len(wp)
        blocks = n
    else:
        (lh, lw), (eh, ew) = tiles, config.effective_kernel((kh, kw))
        blocks = n * -(-(hp - eh + 1) // (lh - eh + 1)) * -(-(wp - ew + 1) // (lw - ew + 1))
    freqs = lh * (lw // 2 + 1)
    per_fft = 2.5 * lh * lw * math.log2(max(lh * lw, 2))
    contraction = 8.0 * freqs * blocks * cg * o
    gemm = cg * (o // config.groups) > getattr(_fft_module, "ELEMENTWISE_MAX_CO", 16)
    return {
        "call": 1.0,
        "fft_flop": per_fft * blocks * (c + o),
        "transform": float(blocks * (c + o)),  # per 2-D transform overhead (many small images)
        "gemm_flop": contraction if gemm else 0.0,
        # the per-frequency GEMMs have only `blocks` rows: for few rows they are bound by
        # streaming the (F, 2C, 2O) kernel spectra, i.e. by flops / rows
        "gemm_weight": contraction / blocks if gemm else 0.0,
        "ew_flop": 0.0 if gemm else contraction,
        "kernel_flop": 2.0 * cg * o * freqs * (kh + kw),
        "byte": 8.0 * freqs * (blocks * (c + o) + cg * o),
    }


def _im2col_terms(x_shape, kernel_shape, dtype, config):
    from .im2col import im2col_cost_terms

    t = im2col_cost_terms(x_shape, kernel_shape, config, itemsize=4)
    return {
        "call": 1.0,
        "flop": float(t["flops"]),
        "patch_byte": float(t["patch_bytes"]),
        "chunk": float(t["chunks"]),  # one lax.map iteration each
    }


def _winograd_terms(x_shape, kernel_shape, dtype, config):
    from .winograd import winograd_cost_terms

    t = winograd_cost_terms(x_shape, kernel_shape, config, itemsize=4)
    return {
        "call": 1.0,
        "flop": float(t["flops"]),
        "tile": 16.0 * t["tiles"],  # per transformed point, whatever C (slow for few channels)
        "transform_byte": float(t["transformed_bytes"]),
    }


def _shift_gemm_terms(x_shape, kernel_shape, dtype, config):
    # one (N*Ho*Wo, C) @ (C, O) GEMM per kernel tap, accumulated into the output
    n, _, _, c, kh, kw, cg, o, ho, wo = _geometry(x_shape, kernel_shape, config)
    taps = n * ho * wo * kh * kw
    return {
        "call": 1.0,
        "flop": 2.0 * taps * cg * o,
        "traffic": float(taps * (c + o)),
        "gemms": float(kh * kw * config.groups),
    }


# name -> fn(x_shape, kernel_shape, dtype, config) -> {term: amount}; amounts are float32 units.
TERMS = {
    "direct": _direct_terms,
    "xla_padded": _xla_padded_terms,
    "fft": _fft_terms,
    "im2col": _im2col_terms,
    "winograd": _winograd_terms,
    "shift_gemm": _shift_gemm_terms,
}


def cost_terms(name: str, x_shape, kernel_shape, dtype, config: ConvConfig) -> dict[str, float]:
    """The cost terms of algorithm ``name`` for NHWC ``x_shape`` / HWIO ``kernel_shape``.

    Terms are counted as for float32 (``flop``-like terms in floating-point operations,
    ``byte``-like terms in bytes of float32 data); :func:`estimate_seconds` scales them for
    other dtypes. Raises ``KeyError`` for an algorithm the model does not know.
    """
    return TERMS[name](tuple(x_shape), tuple(kernel_shape), dtype, config)


def _dtype_scale(term: str, dtype) -> float:
    size = jnp.dtype(dtype).itemsize
    return size / 4.0 if ("flop" in term or "byte" in term) else 1.0


def estimate_seconds(name: str, x_shape, kernel_shape, dtype, config: ConvConfig,
                     backend: str = "cpu") -> float | None:
    """Estimated run time of ``name`` in seconds, or ``None`` when the model has no constants."""
    consts = COST_CONSTANTS.get(_canonical_backend(backend), {}).get(name)
    if consts is None or name not in TERMS:
        return None
    terms = cost_terms(name, x_shape, kernel_shape, dtype, config)
    return sum(consts.get(t, 0.0) * v * _dtype_scale(t, dtype) for t, v in terms.items())


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

    def __str__(self) -> str:
        c = self.config
        head = (
            f"x {'x'.join(map(str, self.x_shape))} (NHWC), kernel "
            f"{'x'.join(map(str, self.kernel_shape))} (HWIO), {self.dtype}, stride {c.stride}, "
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


def _canonical_backend(backend: str) -> str:
    return "gpu" if backend in ("cuda", "rocm") else backend


def _odd(dtype, config: ConvConfig) -> bool:
    return (
        config.groups != 1
        or config.stride != (1, 1)
        or config.dilation != (1, 1)
        or jnp.dtype(dtype).name != "float32"
    )


def _cached_choice(x_shape, kernel_shape, dtype, config, backend):
    """``(winner, measured_ms)`` from the autotune cache when it applies here, else ``None``."""
    from .autotune import lookup

    try:
        entry = lookup(x_shape, kernel_shape, dtype, config, backend)
    except Exception:  # a cache problem must never break a convolution
        return None
    if entry is None:
        return None
    winner = entry.get("winner")
    if winner not in _registry.names():  # tuned with an algorithm this build does not have
        return None
    if _registry.get(winner).unsupported_reason(x_shape, kernel_shape, dtype, config) is not None:
        return None
    ms = entry.get("timings_ms")
    ms = {str(k): float(v) for k, v in ms.items()} if isinstance(ms, dict) else None
    return winner, ms


@functools.lru_cache(maxsize=1024)
def _model_choice(x_shape, kernel_shape, dtype_name, config, backend, registered):
    """The cost model's (algorithm, costs, unsupported, reason); pure in its (hashable) inputs.

    ``registered`` (the registry's names) is part of the key so a late registration counts.
    """
    dtype = jnp.dtype(dtype_name)
    unsupported, applicable = {}, []
    for alg in _registry.algorithms():
        why = alg.unsupported_reason(x_shape, kernel_shape, dtype, config)
        if why is None:
            applicable.append(alg.name)
        else:
            unsupported[alg.name] = why
    costs = {}
    for name in applicable:
        est = estimate_seconds(name, x_shape, kernel_shape, dtype, config, backend)
        if est is not None:
            costs[name] = est
        elif _canonical_backend(backend) in COST_CONSTANTS:
            unsupported[name] = f"no cost-model constants on {backend} (measure it with jaxconv.autotune)"

    if _canonical_backend(backend) in ACCELERATOR_BACKENDS:
        return "direct", costs, unsupported, (
            f"on {backend} XLA's convolution (cuDNN / MXU) is kept unless jaxconv.autotune "
            "measured another algorithm faster for this problem"
        )
    if "direct" not in costs:
        return "direct", costs, unsupported, f"no cost model for backend {backend!r}"
    if dtype.name not in MODEL_DTYPES:
        return "direct", costs, unsupported, (
            f"the cost model is not fitted for {dtype.name}; direct unless autotuned"
        )
    if kernel_shape[0] * kernel_shape[1] == 1:
        return "direct", costs, unsupported, "a 1x1 kernel is a single GEMM in XLA already"
    if config.stride != (1, 1) or config.dilation != (1, 1):
        # XLA:CPU's strided / dilated convolution was measured 2-20x faster than the stride-1
        # fit predicts (e.g. 8x64x64x32, 5x5, stride 2: 6 ms where stride 1 takes 136 ms).
        return "direct", costs, unsupported, (
            "the cost model is fitted on stride 1, dilation 1; strided or dilated convolutions "
            "stay direct unless jaxconv.autotune measured otherwise"
        )
    candidates = dict(costs)
    if min(kernel_shape[2], kernel_shape[3]) < XLA_PADDED_MIN_CHANNELS:
        candidates.pop("xla_padded", None)
    best = min(candidates, key=candidates.get)
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
        return min(base, ALGORITHM_MARGIN.get(name, base))

    qualifying = {n: c for n, c in candidates.items() if n != "direct" and c < margin(n) * direct}
    if not qualifying:
        return "direct", costs, unsupported, (
            f"{best} is estimated {direct / costs[best]:.2f}x faster, below the "
            f"{1 / margin(best):.2f}x the model needs to leave direct"
        )
    best = min(qualifying, key=qualifying.get)
    return best, costs, unsupported, (
        f"lowest estimate, {direct / costs[best]:.2f}x below direct's "
        f"(needs {1 / margin(best):.2f}x)"
    )


def select(x_shape, kernel_shape, dtype, config: ConvConfig, backend: str | None = None,
           *, use_cache: bool = True) -> Selection:
    """The :class:`Selection` for canonical NHWC ``x_shape``, HWIO ``kernel_shape``, ``config``."""
    backend = jax.default_backend() if backend is None else backend
    x_shape = tuple(int(d) for d in x_shape)
    kernel_shape = tuple(int(d) for d in kernel_shape)
    dtype_name = jnp.dtype(dtype).name
    name, costs, unsupported, reason = _model_choice(x_shape, kernel_shape, dtype_name, config,
                                                     backend, _registry.names())
    costs, unsupported = dict(costs), dict(unsupported)
    cached = _cached_choice(x_shape, kernel_shape, dtype, config, backend) if use_cache else None
    if cached is not None:
        winner, ms = cached
        return Selection(winner, "autotune", costs, unsupported, ms,
                         "measured fastest by jaxconv.autotune on this device", backend, x_shape,
                         kernel_shape, dtype_name, config)
    return Selection(name, "cost-model", costs, unsupported, None, reason, backend, x_shape,
                     kernel_shape, dtype_name, config)


def choose_algorithm(x_shape, kernel_shape, dtype, config: ConvConfig,
                     backend: str | None = None) -> str:
    """Name of the algorithm ``auto`` uses for NHWC ``x_shape`` and HWIO ``kernel_shape``.

    The hook ``conv2d`` calls (at trace time, and on every eager call), so it skips building a
    :class:`Selection`.
    """
    backend = jax.default_backend() if backend is None else backend
    x_shape, kernel_shape = tuple(x_shape), tuple(kernel_shape)
    cached = _cached_choice(x_shape, kernel_shape, dtype, config, backend)
    if cached is not None:
        return cached[0]
    return _model_choice(x_shape, kernel_shape, jnp.dtype(dtype).name, config, backend,
                         _registry.names())[0]


def select_algorithm(
    x_shape,
    kernel_shape,
    *,
    dtype="float32",
    stride=1,
    padding="VALID",
    dilation=1,
    groups: int = 1,
    padding_mode: str = "zeros",
    data_format: str = "NHWC",
    backend: str | None = None,
    precision: Any = None,
) -> Selection:
    """Which algorithm ``conv2d(..., algorithm="auto")`` would use, with every estimate.

    Arguments are validated exactly as :func:`jaxconv.conv2d` validates them.

    Args:
      x_shape: image shape ``(N, H, W, C)`` (``(N, C, H, W)`` with ``data_format="NCHW"``,
        or unbatched ``(H, W, C)``).
      kernel_shape: **HWIO** ``(kh, kw, C // groups, O)``.
      dtype: the floating dtype of the computation.
      stride, padding, dilation, groups, padding_mode, data_format, precision: as for
        :func:`jaxconv.conv2d`.
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"``, ...; default ``jax.default_backend()``.

    Returns:
      A :class:`Selection`: ``.algorithm``, ``.source`` (``"autotune"`` or ``"cost-model"``),
      ``.costs`` (estimated seconds per applicable algorithm), ``.unsupported`` (reasons) and
      ``.reason``; ``print()`` it for a table.

    Examples:
      >>> import jaxconv
      >>> sel = jaxconv.select_algorithm((8, 64, 64, 32), (3, 3, 32, 32), backend="gpu")
      >>> sel.algorithm, sel.source
      ('direct', 'cost-model')
    """
    from ._conv2d import _canonicalize
    from .autotune import _rename_errors, _specs

    fn = "select_algorithm"
    if backend is not None and (not isinstance(backend, str) or not backend):
        raise TypeError(f"{fn}: backend must be None or a backend name such as 'cpu', got {backend!r}")
    x_spec, k_spec = _specs(fn, x_shape, kernel_shape, dtype)
    _, _, _, canon = _rename_errors(fn, _canonicalize, x_spec, k_spec, None, stride=stride,
                                    padding=padding, dilation=dilation, groups=groups,
                                    padding_mode=padding_mode, data_format=data_format,
                                    precision=precision)
    return select(canon.x_nhwc, k_spec.shape, canon.dtype, canon.config,
                  None if backend is None else backend.lower())
