"""Per-machine calibration of the cost model: ``jaxconv.calibrate()`` / ``jaxconv calibrate``.

The constants in ``cost_model.json`` were fitted on one machine; on another CPU the algorithms'
*relative* speeds shift (a wider vector unit helps GEMM-based algorithms more than XLA's
convolution emitter, a bigger cache helps FFT tiles...), and ``auto`` would then pick from the
wrong ranking. Calibration times every algorithm that has a cost model on a small set of
problems derived from the benchmark cases (each shrunk to a small batch, so the whole run takes
well under a minute), and rescales each algorithm's constants (forward and training alike) by the median ratio of
measured to estimated forward time. A per-algorithm factor is all a minute of measurement can pin down robustly; a
full refit over a large grid is ``benchmarks/fit_cost_model.py``.

The factors are stored in ``calibration.json`` beside the autotune cache, keyed by backend,
device kind and jax version, and applied by :func:`jaxconv.convolution.cost_model.constants` from then
on (in every process).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _registry, cases, cost_model, select, tuning
from ._registry import ConvConfig

FN = "calibrate"
# Batch size the benchmark problems are shrunk to, and the largest kernel size kept.
BATCH = 1
MAX_KERNEL = 7


@dataclasses.dataclass(frozen=True)
class CalibrationResult:
    """What :func:`calibrate` measured.

    Attributes:
      scales: algorithm -> factor applied to its fitted constants (measured / estimated time,
        median over the problems it ran).
      spread: algorithm -> (25th, 75th percentile) of that ratio: how well one factor fits.
      problems: how many problems were timed.
      skipped: problems not timed because the time budget ran out.
      seconds: wall time of the calibration.
      key: the calibration's key (backend, device kind, jax version).
      path: the file written, or ``None`` when ``save=False``.
    """

    scales: dict[str, float]
    spread: dict[str, tuple[float, float]]
    problems: int
    skipped: int
    seconds: float
    key: str
    path: Any

    def __str__(self) -> str:
        lines = [f"calibration for {self.key}: {self.problems} problems in {self.seconds:.1f} s"
                 + (f" ({self.skipped} skipped: time budget)" if self.skipped else ""),
                 f"  {'algorithm':<12} {'factor':>8} {'25%':>8} {'75%':>8}"]
        for name, s in sorted(self.scales.items()):
            lo, hi = self.spread[name]
            lines.append(f"  {name:<12} {s:>8.3f} {lo:>8.3f} {hi:>8.3f}")
        return "\n".join(lines)


def problems() -> list[tuple[tuple[int, ...], tuple[int, ...], ConvConfig]]:
    """The canonical problems calibration times: the benchmark problems at batch ``BATCH``.

    Taken round-robin over the cases (one of each case in turn), so that a time budget that
    runs out still leaves every kind of problem measured; kernels above ``MAX_KERNEL`` are left
    out (their compile times would take most of the budget).
    """
    per_case = [[p for p in case.problems if p.k <= MAX_KERNEL and p.spatial == 2]
                for case in cases.CASES.values()]
    per_case = [ps for ps in per_case if ps]
    out = []
    for i in range(max(map(len, per_case))):
        for p in (ps[i] for ps in per_case if i < len(ps)):
            canon = dataclasses.replace(p, x_shape=(BATCH, *p.x_shape[1:])).canonical()
            out.append((canon.x_shape, canon.kernel_shape, canon.config))
    return out


def calibrate(*, repeats: int = 3, budget_s: float = 45.0, save: bool = True,
              progress: Callable[[str], None] | None = None) -> CalibrationResult:
    """Measure the algorithms on this device and rescale the cost model's constants for it.

    Args:
      repeats: timed rounds per problem (after a warm-up), interleaved; the median counts.
      budget_s: wall-time budget; problems left when it runs out are skipped (and counted).
      save: write the factors to ``calibration.json`` beside the autotune cache, so that
        ``algorithm="auto"`` uses them in this and every later process on this device.
      progress: called with one line per problem (e.g. ``print``).

    Returns:
      A :class:`CalibrationResult`; ``print()`` it for a table.
    """
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ValueError(f"{FN}: repeats must be an int >= 1, got {repeats!r}")
    if not isinstance(budget_s, int | float) or isinstance(budget_s, bool) or not budget_s > 0:
        raise ValueError(f"{FN}: budget_s must be a number > 0, got {budget_s!r}")
    backend = jax.default_backend()
    base = cost_model.model(backend, calibrated=False)
    if base is None:
        raise ValueError(
            f"{FN}: the cost model has no constants for backend {backend!r} to calibrate "
            "(there, auto keeps 'direct' unless jaxconv.autotune measured otherwise)"
        )
    t_start = time.perf_counter()
    ratios: dict[str, list[float]] = {}
    todo = problems()
    rng = np.random.default_rng(0)
    done = 0
    for i, (x_shape, kernel_shape, config) in enumerate(todo):
        if time.perf_counter() - t_start > budget_s:
            break
        x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
        k = jnp.asarray(rng.standard_normal(kernel_shape), jnp.float32)
        line = []
        programs, ests = {}, {}
        for name in _registry.applicable(x_shape, kernel_shape, jnp.float32, config):
            est = base.estimate(name, x_shape, kernel_shape, jnp.float32, config)
            if est is None or est <= 0:
                continue
            try:
                programs[name], _ = tuning.compile_timed(name, x, k, config)
            except Exception:  # an algorithm that fails here is measured by nothing
                continue
            ests[name] = est
        fns = {name: functools.partial(c, x, k) for name, c in programs.items()}
        for name, t in tuning.interleaved_medians(fns, repeats, seed=i,
                                                  programs=programs).items():
            ratios.setdefault(name, []).append(t / ests[name])
            line.append(f"{name} {t * 1e3:.2f} ms")
        done += 1
        if progress is not None:
            progress(f"[{i + 1}/{len(todo)}] x {x_shape} k {kernel_shape}: {', '.join(line)}")
    scales, spread = {}, {}
    for name, r in ratios.items():
        logs = np.log(np.asarray(r))
        scales[name] = float(np.exp(np.median(logs)))
        spread[name] = (float(np.exp(np.percentile(logs, 25))), float(np.exp(np.percentile(logs, 75))))
    key = cost_model.calibration_key(backend)
    path = None
    if save and scales:
        # One factor per algorithm, for its forward and its training constants alike: a minute
        # of forward timings pins down how much faster or slower this machine runs it.
        path = cost_model.store_calibration(backend, {
            "scales": {mode: scales for mode in cost_model.MODES},
            "spread": {k: list(v) for k, v in spread.items()},
            "problems": done,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        select.clear_caches()
    return CalibrationResult(scales, spread, done, len(todo) - done,
                             time.perf_counter() - t_start, key, path)

