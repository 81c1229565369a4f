"""How ``algorithm="auto"`` picks an algorithm: the one selection policy.

The choice is made in Python, at trace time, from static shapes, dtype, config and backend, for
the forward pass (``mode="forward"``) or, when the convolution is differentiated, for its forward
and backward pass (``mode="train"``). Four mechanisms, in this order, and nothing else:

1. **Measured.** If :func:`jaxconv.autotune` (or the measure-on-first-use mode,
   ``JAXCONV_AUTOTUNE=1``) has timed this exact problem on this device (backend, device kind, jax
   version, shapes, dtype, config, mode), its winner is used. A winner was checked against
   ``direct``'s result before it could win.
2. **Candidates.** Every registered algorithm whose ``check`` accepts the problem, less those
   whose error model does not meet the requested precision (``precision="highest"`` asks for an
   error relative to each output; ``fft``, ``dft`` and Winograd's is relative to the largest).
   Every excluded algorithm is listed with its reason in :attr:`Selection.unsupported`.
3. **Where the model holds.** The constants are fitted on CPU, for float32 (and float64, which
   is float32's arithmetic at twice the bytes). On GPU and TPU (XLA lowers ``direct`` to cuDNN or
   the MXU), for other dtypes, on a backend without a fit, and for an empty problem, ``direct``
   is kept; only a measurement (1.) moves it there.
4. **Estimates, with one hedge.** Every candidate gets an estimate from the cost model
   (:class:`~jaxconv.convolution.cost_model.CostModel`: its cost terms times fitted constants); one
   without constants for its terms is listed as such, never taken as free. The lowest estimate
   wins, but it displaces ``direct`` only when it is below ``hedge`` times ``direct``'s estimate,
   where ``hedge`` (per mode, stored with the constants) is the value the fit found to lose
   least when it picked from cross-validated estimates; ``1.0`` means no hedge paid off.
   In ``mode="train"`` an estimate is of what a differentiated ``auto`` runs: the forward pick's
   forward computes the output, the training pick's forward + backward the derivatives (see
   ``_conv2d._switch_when_differentiated``), so every algorithm but the forward pick carries the
   forward pick's forward estimate on top of its own.

No rule names an algorithm: what was once a rule (depthwise on small kernels, a 1x1 kernel is
one GEMM, XLA:CPU's slow 3-channel output counts, a 1-D tap threshold) is now a cost term that
the fit learns from measurements (``benchmarks/fit_cost_model.py``).

:func:`select_algorithm` returns the whole picture as a :class:`Selection`;
``docs/choosing.md`` walks through it with the held-out regret table.
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
    spatial_of,
)
from ._registry import ConvConfig

# Backends where only a measurement (autotune) may displace XLA's convolution: XLA lowers
# ``direct`` to cuDNN / the MXU there, and the constants were fitted on CPU.
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
def _model_choice(x_shape, kernel_shape, dtype_name, config, backend, model, registered,
                  mode="forward", forward_pick=None):
    """Mechanisms 2-4 of the module docstring: ``(algorithm, costs, unsupported, reason)``.

    Pure in its (hashable) inputs; ``registered`` (the registry's names) is part of the key so a
    late registration counts, ``model`` (a :class:`CostModel` or ``None``) by identity.
    ``forward_pick`` (``mode="train"`` only): the algorithm ``auto`` runs forward, whose forward
    estimate every other algorithm's training estimate carries.
    """
    dtype = jnp.dtype(dtype_name)
    unsupported, candidates = {}, []
    for alg in _registry.algorithms():  # 2. candidates
        why = alg.unsupported_reason(x_shape, kernel_shape, dtype, config)
        why = why or _precision_reason(alg, config)
        if why is None:
            candidates.append(alg.name)
        else:
            unsupported[alg.name] = why
    # 3. where the model holds
    if math.prod(x_shape) == 0 or math.prod(kernel_shape) == 0:
        return "direct", {}, unsupported, "an empty problem: nothing to compute"
    if model is None:
        return "direct", {}, unsupported, (
            f"no cost model fitted for backend {backend!r}: direct unless jaxconv.autotune "
            "measured another algorithm faster")
    # 4. estimates
    costs = {}
    for name in candidates:
        est = model.estimate(name, x_shape, kernel_shape, dtype, config, mode)
        if est is None:
            unsupported[name] = (f"the {mode} cost model has no constants for it on {backend} "
                                 "(measure it with jaxconv.autotune)")
        else:
            costs[name] = est
    if mode == "train" and forward_pick in costs:
        primal = model.estimate(forward_pick, x_shape, kernel_shape, dtype, config, "forward")
        if primal is not None:
            costs = {a: c + (primal if a != forward_pick else 0.0) for a, c in costs.items()}
    if cost_model.canonical_backend(backend) in ACCELERATOR_BACKENDS:
        return "direct", costs, unsupported, (
            f"on {backend} XLA's convolution (cuDNN / MXU) is kept unless jaxconv.autotune "
            "measured another algorithm faster for this problem")
    if dtype.name not in cost_model.MODEL_DTYPES:
        return "direct", costs, unsupported, (
            f"the cost model is fitted for {' and '.join(cost_model.MODEL_DTYPES)}, not "
            f"{dtype.name}: direct unless jaxconv.autotune measured otherwise")
    if "direct" not in costs:
        return "direct", costs, unsupported, "direct has no estimate to compare against"
    best = min(costs, key=lambda a: costs[a])
    direct, hedge = costs["direct"], model.hedge[mode]
    if best == "direct":
        return "direct", costs, unsupported, "direct has the lowest estimate"
    if hedged_pick(costs, hedge) == "direct":
        return "direct", costs, unsupported, (
            f"{best} is estimated {direct / costs[best]:.2f}x faster, within the model's "
            f"error ({1 / hedge:.2f}x needed to leave direct)")
    return best, costs, unsupported, (
        f"lowest estimate, {direct / costs[best]:.2f}x below direct's (needs {1 / hedge:.2f}x)")


def hedged_pick(costs: dict[str, float], hedge: float) -> str:
    """Mechanism 4 on estimates ``costs`` (``direct``'s among them): the lowest, unless it is not
    below ``hedge`` times ``direct``'s; then ``direct``. The fit chooses ``hedge`` with it."""
    best = min(costs, key=lambda a: costs[a])
    return best if best == "direct" or costs[best] < hedge * costs["direct"] else "direct"


def clear_caches() -> None:
    """Forget memoized choices (after the cost model's constants changed)."""
    _model_choice.cache_clear()


def _resolve_model(backend: str, model: cost_model.CostModel | str | None):
    return cost_model.model(backend) if model == "default" else model


def select(x_shape, kernel_shape, dtype, config: ConvConfig, backend: str | None = None,
           *, use_cache: bool = True, mode: str = "forward",
           model: cost_model.CostModel | str | None = "default") -> Selection:
    """The :class:`Selection` for canonical NHWC ``x_shape``, HWIO ``kernel_shape``, ``config``.

    ``model``: the :class:`~jaxconv.convolution.cost_model.CostModel` to estimate with (default: the
    bundled fit for ``backend``, calibrated for this device; ``None``: no model).
    """
    backend = jax.default_backend() if backend is None else backend
    model = _resolve_model(backend, model)
    x_shape = tuple(int(d) for d in x_shape)
    kernel_shape = tuple(int(d) for d in kernel_shape)
    dtype_name = jnp.dtype(dtype).name
    forward = None
    if mode == "train":  # what auto runs forward (no measuring here: select only reports)
        cached = _cached_choice(x_shape, kernel_shape, dtype, config, backend) if use_cache else None
        forward = cached[0] if cached else _model_choice(
            x_shape, kernel_shape, dtype_name, config, backend, model, _registry.names())[0]
    name, costs, unsupported, reason = _model_choice(x_shape, kernel_shape, dtype_name, config,
                                                     backend, model, _registry.names(), mode,
                                                     forward)
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


#: Candidates the measure-on-first-use mode times: the model's best ``FIRST_USE_TOP_K`` plus direct.
FIRST_USE_TOP_K = 3


def choose_algorithm(x_shape, kernel_shape, dtype, config: ConvConfig,
                     backend: str | None = None, mode: str = "forward",
                     model: cost_model.CostModel | str | None = "default") -> str:
    """Name of the algorithm ``auto`` uses for NHWC ``x_shape`` and HWIO ``kernel_shape``.

    The hook ``conv2d`` calls (at trace time, and on every eager call), so it skips building a
    :class:`Selection`. ``mode="train"``: the algorithm whose forward + backward is fastest,
    which ``conv2d`` switches to when it is differentiated.
    """
    backend = jax.default_backend() if backend is None else backend
    x_shape, kernel_shape = tuple(x_shape), tuple(kernel_shape)
    model = _resolve_model(backend, model)
    cached = _cached_choice(x_shape, kernel_shape, dtype, config, backend, mode)
    if cached is not None:
        return cached[0]
    forward = (choose_algorithm(x_shape, kernel_shape, dtype, config, backend, model=model)
               if mode == "train" else None)
    name, costs, *_ = _model_choice(x_shape, kernel_shape, jnp.dtype(dtype).name, config, backend,
                                    model, _registry.names(), mode, forward)
    if autotune_enabled() and backend == jax.default_backend() and math.prod(x_shape) > 0:
        try:
            # The model's best few and direct, and whatever applies that it cannot estimate
            # (an algorithm registered without cost terms: autotune-only).
            unestimated = [a for a in _registry.applicable(x_shape, kernel_shape, dtype, config)
                           if a not in costs
                           and _precision_reason(_registry.get(a), config) is None]
            names = [*shortlist(costs, FIRST_USE_TOP_K), *unestimated] if costs else unestimated
            return tuning.measure(x_shape, kernel_shape, dtype, config, names=names,
                                  repeats=3, mode=mode).winner
        except Exception as e:  # measuring must never break a convolution: the model decides
            warnings.warn(f"jaxconv: measuring algorithms on first use failed ({e}); using the "
                          "cost model", cache.AutotuneCacheWarning, stacklevel=2)
    return name


def shortlist(costs: dict[str, float], k: int) -> list[str]:
    """The ``k`` algorithms with the lowest estimates, plus ``direct`` (the reference every
    measured winner is checked against): what a measurement times (Triton's pruning)."""
    ranked = sorted(costs, key=lambda a: costs[a])[:k]
    return ranked + (["direct"] if "direct" not in ranked else [])


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
    _, _, _, canon = canonicalize(fn, x_spec, k_spec, None, stride=stride, padding=padding,
                                  dilation=dilation, groups=groups, padding_mode=padding_mode,
                                  data_format=data_format, precision=precision,
                                  spatial=spatial_of(x_spec, k_spec, data_format))
    return select(canon.x_shape, canon.kernel_shape, canon.dtype, canon.config,
                  None if backend is None else backend.lower(), mode=mode)
