"""Measure every applicable convolution algorithm on this device and cache the fastest.

``jaxconv.autotune(x_shape, kernel_shape, **conv_kwargs)`` times each algorithm that can serve
the (NHWC, HWIO) problem on the current default device (compile excluded, ``block_until_ready``,
median of ``repeats``) and stores the winner and all timings in the autotune cache
(:mod:`jaxconv.convolution.cache`). ``conv2d(..., algorithm="auto")`` and ``jaxconv.select_algorithm``
consult that cache before the cost model.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import re
import statistics
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from . import _registry
from . import cache as _cache
from ._canonical import Padding, PrecisionLike, canonicalize, shape_specs, spatial_of
from ._registry import ConvConfig

FN = "autotune"

@dataclasses.dataclass(frozen=True)
class AutotuneResult:
    """What :func:`autotune` measured.

    Attributes:
      winner: the fastest algorithm (the one ``algorithm="auto"`` now uses for this key).
      timings_ms: median run time of each algorithm that ran, in milliseconds.
      compile_ms: compile time of each algorithm, in milliseconds.
      failed: algorithms that were applicable but raised while compiling or running -> error.
      unsupported: algorithms that cannot serve the problem -> reason.
      key: the cache key (backend, device kind, jax version, shapes, dtype, config).
      path: the cache file written, or ``None`` when ``cache=False``.
    """

    winner: str
    timings_ms: dict[str, float]
    compile_ms: dict[str, float]
    failed: dict[str, str]
    unsupported: dict[str, str]
    key: dict[str, Any]
    path: Path | None

    def __str__(self) -> str:
        k = self.key
        lines = [
            f"autotune on {k['backend']} ({k['device_kind']}), x {_fmt_shape(k['x_shape'])} "
            f"kernel {_fmt_shape(k['kernel_shape'])} {k['dtype']}, stride {tuple(k['stride'])}, "
            f"padding {tuple(map(tuple, k['padding']))}, dilation {tuple(k['dilation'])}, "
            f"groups {k['groups']}",
            f"  {'algorithm':<12} {'median ms':>10} {'compile ms':>11}",
        ]
        for name, ms in sorted(self.timings_ms.items(), key=lambda kv: kv[1]):
            mark = "  <- winner" if name == self.winner else ""
            lines.append(f"  {name:<12} {ms:>10.3f} {self.compile_ms.get(name, float('nan')):>11.1f}{mark}")
        for name, err in self.failed.items():
            lines.append(f"  {name:<12} failed: {err}")
        for name, reason in self.unsupported.items():
            lines.append(f"  {name:<12} n/a: {reason}")
        return "\n".join(lines)


def _fmt_shape(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


# ----------------------------------------------------------------------------- measuring


def timing_loss(y):
    """The loss whose gradient times a forward + backward pass: ``sum(y * y) / 2``.

    Its cotangent is ``y`` itself, which varies as a real loss's does. ``sum(y)`` would hand the
    backward pass a constant all-ones cotangent, which XLA:CPU folds into some algorithms'
    gradients: ``mec``'s ran 1.4-2.2x faster with it than with a varying one, ``direct``'s and
    torch's not at all. Written with array methods only, so the benchmarks time torch's
    ``conv2d`` with the same loss (``y`` a JAX array or a torch tensor).
    """
    return 0.5 * (y * y).sum()


def timed(conv, mode: str = "forward"):
    """``conv(x, kernel)`` jitted as it is timed: the convolution, or with ``mode="train"`` its
    forward and backward pass (the gradients of :func:`timing_loss` w.r.t. x and kernel)."""
    if mode == "train":
        return jax.jit(jax.grad(lambda a, b: timing_loss(conv(a, b)), argnums=(0, 1)))
    return jax.jit(conv)


def timed_function(name: str, config: ConvConfig, mode: str = "forward"):
    """:func:`timed` of the registered algorithm ``name`` under ``config``."""
    fn = _registry.get(name).fn
    return timed(lambda a, b: fn(a, b, config), mode)


def compile_timed(name: str, x, kernel, config: ConvConfig, mode: str = "forward"):
    """``(compiled, compile seconds)`` of :func:`timed_function` for these operands."""
    t0 = time.perf_counter()
    compiled = timed_function(name, config, mode).lower(x, kernel).compile()
    return compiled, time.perf_counter() - t0


_HLO_METADATA = re.compile(r",\s*metadata=\{[^{}]*\}")
_HLO_PARAM_NAME = re.compile(r"[\w.\-]+: ")
_HLO_NAME = re.compile(r"%[\w.\-]+")


def program_fingerprint(compiled: Any) -> str:
    """A digest of the optimized program of a ``jax.stages.Compiled``, names and metadata aside.

    Two computations with the same fingerprint run the same XLA program (the same instructions,
    shapes, layouts, fusions and schedule), however they were written or named: on XLA:CPU
    ``pointwise``, ``im2col`` and ``mec`` all compile a stride-1 1x1 convolution to the one
    ``dot``, and ``auto`` compiles to the program of the algorithm it picks.
    """
    lines = compiled.as_text().splitlines()
    # The module header and its tables of source locations differ with the code that traced the
    # program; the computations start at the first line naming one.
    start = next((i for i, line in enumerate(lines) if line.startswith(("%", "ENTRY"))),
                 len(lines))
    names: dict[str, str] = {}

    def rename(m: re.Match) -> str:
        return names.setdefault(m.group(0), f"%{len(names)}")

    digest = hashlib.sha256()
    for line in lines[start:]:
        line = _HLO_METADATA.sub("", line)
        if line.startswith(("%", "ENTRY")):  # a computation's signature names its parameters
            line = _HLO_PARAM_NAME.sub("", line)
        digest.update(_HLO_NAME.sub(rename, line).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def same_programs(compiled: Mapping[str, Any]) -> dict[str, str]:
    """``name -> the first name`` (in ``compiled``'s order) whose program has the same
    :func:`program_fingerprint`; a name whose program is its own maps to itself."""
    first: dict[str, str] = {}
    return {name: first.setdefault(program_fingerprint(c), name) for name, c in compiled.items()}


def interleaved_times(fns: Mapping[str, Any], rounds: int, *, budget_s: float = math.inf,
                      seed: int = 0, programs: Mapping[str, Any] | None = None,
                      warm_each_round: bool = False,
                      rest_s: Mapping[str, float] | None = None) -> dict[str, list[float]]:
    """Seconds of each zero-argument callable, one per round, timed in interleaved rounds.

    The one timing harness of jaxconv (``autotune``, ``calibrate``, the cost-model fit and the
    benchmarks): every callable runs once to warm up, then once per round, the rounds each in a
    fresh random order (a call right after another algorithm's ran up to 1.8x slower on
    XLA:CPU, so a fixed order biases whoever follows whom), ``block_until_ready`` inside the
    timed span. Rounds stop early, after at least one, when ``budget_s`` is spent; a callable
    whose warm-up alone took over ``budget_s`` is timed by that run only.

    ``programs`` maps names of ``fns`` to the ``jax.stages.Compiled`` they call: names whose
    programs are the same (:func:`same_programs`) are timed once, as one, and share its times.
    Timing copies of one program measures only the machine's noise, and the fastest of several
    copies turns that noise into a false difference (the same ``dot`` timed under three names
    on a 1x1 layer came out up to 1.4x apart). ``warm_each_round`` calls each callable once
    untimed right before its timed call (whole networks, whose neighbour's buffers evict
    theirs); ``rest_s`` sleeps that long after the named callables' timed calls (torch's
    OpenMP threads spin on after a call and slow whoever runs next).
    """
    alias = same_programs(programs) if programs else {}
    timed = {name: fn for name, fn in fns.items() if alias.get(name, name) == name}
    rest_s = rest_s or {}
    times: dict[str, list[float]] = {}
    for name, fn in timed.items():  # warm-up: first-run allocations, caches
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times[name] = [time.perf_counter() - t0] if time.perf_counter() - t0 > budget_s else []
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for r in range(rounds):
        if r and time.perf_counter() - start > budget_s:
            break
        order = [n for n in timed if len(times[n]) <= r]
        for i in rng.permutation(len(order)):
            name = order[i]
            if warm_each_round:
                jax.block_until_ready(timed[name]())
            t0 = time.perf_counter()
            jax.block_until_ready(timed[name]())
            times[name].append(time.perf_counter() - t0)
            if name in rest_s:
                time.sleep(rest_s[name])
    return {name: times[alias.get(name, name)] for name in fns}


def interleaved_medians(fns: Mapping[str, Any], rounds: int, **kwargs: Any) -> dict[str, float]:
    """The median of each callable's :func:`interleaved_times` (same arguments)."""
    return {name: statistics.median(t)
            for name, t in interleaved_times(fns, rounds, **kwargs).items()}


def autotune(
    x_shape: Sequence[int],
    kernel_shape: Sequence[int],
    *,
    dtype: DTypeLike = "float32",
    repeats: int = 5,
    cache: bool = True,
    algorithms: Sequence[str] | None = None,
    stride: int | Sequence[int] = 1,
    padding: Padding = "VALID",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    data_format: str | None = None,
    precision: PrecisionLike = None,
    mode: str = "forward",
    top_k: int | None = None,
) -> AutotuneResult:
    """Time every applicable algorithm on the default device; cache and return the fastest.

    Args:
      x_shape: image shape, ``(N, H, W, C)`` (or ``(N, C, H, W)`` with ``data_format="NCHW"``,
        or unbatched ``(H, W, C)``), as for :func:`jaxconv.conv2d`; ``(N, W, C)`` /
        ``(N, D, H, W, C)`` for 1-D / 3-D (the kernel's rank sets the spatial dims, as for
        :func:`jaxconv.conv`).
      kernel_shape: **HWIO** ``(kh, kw, C // groups, O)`` (WIO / DHWIO for 1-D / 3-D).
      dtype: the floating dtype of ``x`` and ``kernel``.
      repeats: timed runs per algorithm (after one compile and one warm-up run); the median counts.
      cache: write the winner and all timings to the autotune cache, so that
        ``conv2d(..., algorithm="auto")`` uses it for this problem on this device.
      algorithms: restrict the candidates (default: every registered algorithm that applies).
      stride, padding, dilation, groups, padding_mode, precision: as for
        :func:`jaxconv.conv2d`; the problem is canonicalized exactly as ``conv2d`` does.
      data_format: ``None`` (channels-last for the rank, ``"NHWC"`` for 2-D) or a layout name.
      mode: ``"forward"`` times the convolution; ``"train"`` its forward and backward pass (the
        gradients w.r.t. x and kernel), the choice ``auto`` makes when it is differentiated.
      top_k: time only the cost model's ``top_k`` best candidates (among ``algorithms``) plus
        ``direct`` (Triton's pruning); ``None`` times them all. Every result is checked against
        ``direct``'s before it may win.

    Returns:
      An :class:`AutotuneResult` (``.winner``, ``.timings_ms``, ``.compile_ms``, ...).

    Examples:
      >>> import jaxconv
      >>> r = jaxconv.autotune((1, 16, 16, 3), (3, 3, 3, 4), repeats=1, cache=False)
      >>> r.winner in r.timings_ms
      True
    """
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ValueError(f"{FN}: repeats must be an int >= 1, got {repeats!r}")
    if mode not in _cache.MODES:
        raise ValueError(f"{FN}: mode must be one of {_cache.MODES}, got {mode!r}")
    x_spec, k_spec = shape_specs(FN, x_shape, kernel_shape, dtype)
    _, _, _, canon = canonicalize(FN, x_spec, k_spec, None, stride=stride, padding=padding,
                                  dilation=dilation, groups=groups, padding_mode=padding_mode,
                                  data_format=data_format, precision=precision,
                                  spatial=spatial_of(x_spec, k_spec, data_format))

    if algorithms is None:
        names = _registry.names()
    elif isinstance(algorithms, str) or not isinstance(algorithms, Sequence) or not all(
        isinstance(a, str) for a in algorithms
    ):
        raise TypeError(
            f"{FN}: algorithms must be None or a sequence of algorithm names such as "
            f"['direct', 'fft'], got {algorithms!r}"
        )
    else:
        names = tuple(algorithms)
    if not names:
        raise ValueError(f"{FN}: algorithms must name at least one algorithm, got {algorithms!r}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"{FN}: top_k must be None or an int >= 1, got {top_k!r}")
    unknown = [n for n in names if n not in _registry.names()]
    if unknown:
        raise ValueError(f"{FN}: unknown algorithms {unknown}; registered: {list(_registry.names())}")
    if top_k is not None:
        from . import select  # select measures through this module: imported on use

        costs = select.select(canon.x_shape, canon.kernel_shape, canon.dtype, canon.config,
                              use_cache=False, mode=mode).costs
        ranked = {n: c for n, c in costs.items() if n in names}
        if ranked:
            names = tuple(select.shortlist(ranked, top_k))
    return measure(canon.x_shape, canon.kernel_shape, canon.dtype, canon.config, names=names,
                   repeats=repeats, cache=cache, mode=mode)


def measure(x_shape: Sequence[int], kernel_shape: Sequence[int], dtype: DTypeLike,
            config: ConvConfig, *, names: Sequence[str] | None = None, repeats: int = 5,
            cache: bool = True, mode: str = "forward") -> AutotuneResult:
    """:func:`autotune` on a canonical problem (batched channels-last shapes, zero-padding config).

    What ``auto`` calls in its measure-on-first-use mode (``JAXCONV_AUTOTUNE=1``).
    """
    x_nhwc, kshape, dtype = tuple(x_shape), tuple(kernel_shape), jnp.dtype(dtype)
    names = _registry.names() if names is None else tuple(names)
    unsupported = {}
    candidates = []
    for name in names:
        reason = _registry.get(name).unsupported_reason(x_nhwc, kshape, dtype, config)
        if reason is None:
            candidates.append(name)
        else:
            unsupported[name] = reason

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(x_nhwc), dtype)
    kernel = jnp.asarray(rng.standard_normal(kshape), dtype)
    compiled, compiles, failed = {}, {}, {}
    for name in dict.fromkeys([*candidates, "direct"] if "direct" in candidates else candidates):
        try:
            compiled[name], c = compile_timed(name, x, kernel, config, mode)
        except Exception as e:  # an algorithm that breaks (e.g. out of memory) just loses
            failed[name] = _first_line(e)
            continue
        compiles[name] = c * 1e3
    # Every result is checked against direct's before it may win (XLA's algorithm picker does
    # the same against its reference): a wrong fast answer must never be cached.
    reference = _outputs(compiled["direct"], x, kernel) if "direct" in compiled else None
    for name in list(compiled):
        try:
            out = _outputs(compiled[name], x, kernel)
        except Exception as e:
            failed[name] = _first_line(e)
            del compiled[name]
            continue
        if reference is not None and not _agrees(out, reference, dtype):
            failed[name] = "its result differs from direct's beyond the algorithms' tolerance"
            del compiled[name]
    if not compiled:
        raise RuntimeError(f"{FN}: no algorithm could run this problem: {failed or unsupported}")
    medians = interleaved_medians({n: functools.partial(f, x, kernel) for n, f in compiled.items()},
                                  repeats, programs=compiled)
    timings = {n: t * 1e3 for n, t in medians.items()}
    winner = min(timings, key=lambda a: timings[a])

    backend = jax.default_backend()
    key = _cache.make_key(x_nhwc, kshape, dtype, config, backend, mode=mode)
    path = None
    if cache:
        entry = {
            "winner": winner,
            "timings_ms": timings,
            "compile_ms": compiles,
            "repeats": repeats,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        try:
            path = _cache.store(key, entry)
        except OSError as e:
            warnings.warn(f"jaxconv: cannot write the autotune cache {_cache.cache_path()}: {e}",
                          _cache.AutotuneCacheWarning, stacklevel=2)
    return AutotuneResult(winner, timings, compiles, failed, unsupported, key, path)


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def _outputs(compiled, x, kernel) -> list[np.ndarray]:
    return [np.asarray(a, np.float64) for a in jax.tree.leaves(compiled(x, kernel))]


#: Largest error, relative to the reference's largest magnitude, a measured algorithm may show
#: against direct (per dtype; far above every algorithm's documented tolerance, far below a
#: wrong answer's).
AGREEMENT = {"float64": 1e-9, "float32": 1e-3, "bfloat16": 6e-2, "float16": 2e-2}


def _agrees(out: list[np.ndarray], ref: list[np.ndarray], dtype) -> bool:
    tol = AGREEMENT.get(jnp.dtype(dtype).name, 1e-3)
    for a, b in zip(out, ref, strict=True):
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        if a.shape != b.shape or not np.all(np.abs(a - b) <= tol * max(scale, 1e-30)):
            return False
    return True
