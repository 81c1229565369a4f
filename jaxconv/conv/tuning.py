"""Measure every applicable convolution algorithm on this device and cache the fastest.

``jaxconv.autotune(x_shape, kernel_shape, **conv_kwargs)`` times each algorithm that can serve
the (NHWC, HWIO) problem on the current default device (compile excluded, ``block_until_ready``,
median of ``repeats``) and stores the winner and all timings in the autotune cache
(:mod:`jaxconv.conv.cache`). ``conv2d(..., algorithm="auto")`` and ``jaxconv.select_algorithm``
consult that cache before the cost model.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from . import _registry
from . import cache as _cache
from ._canonical import Padding, PrecisionLike, canonicalize, shape_specs
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


def timed_function(name: str, config: ConvConfig, mode: str = "forward"):
    """The jitted computation timed for ``name``: the convolution, or with ``mode="train"`` its
    forward and backward pass (the gradients of :func:`timing_loss` w.r.t. x and kernel)."""
    fn = _registry.get(name).fn
    if mode == "train":
        return jax.jit(jax.grad(lambda a, b: timing_loss(fn(a, b, config)), argnums=(0, 1)))
    return jax.jit(lambda a, b: fn(a, b, config))


def _time_algorithm(name: str, x, kernel, config: ConvConfig, repeats: int,
                    mode: str = "forward") -> tuple[float, float]:
    """(compile seconds, median run seconds) of one algorithm on NHWC ``x``, HWIO ``kernel``."""
    jitted = timed_function(name, config, mode)
    t0 = time.perf_counter()
    compiled = jitted.lower(x, kernel).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(x, kernel))  # warm-up: first-run allocations, caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(x, kernel))
        times.append(time.perf_counter() - t0)
    return compile_s, statistics.median(times)


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
    data_format: str = "NHWC",
    precision: PrecisionLike = None,
    mode: str = "forward",
) -> AutotuneResult:
    """Time every applicable algorithm on the default device; cache and return the fastest.

    Args:
      x_shape: image shape, ``(N, H, W, C)`` (or ``(N, C, H, W)`` with ``data_format="NCHW"``,
        or unbatched ``(H, W, C)``), as for :func:`jaxconv.conv2d`.
      kernel_shape: **HWIO** ``(kh, kw, C // groups, O)``.
      dtype: the floating dtype of ``x`` and ``kernel``.
      repeats: timed runs per algorithm (after one compile and one warm-up run); the median counts.
      cache: write the winner and all timings to the autotune cache, so that
        ``conv2d(..., algorithm="auto")`` uses it for this problem on this device.
      algorithms: restrict the candidates (default: every registered algorithm that applies).
      stride, padding, dilation, groups, padding_mode, data_format, precision: as for
        :func:`jaxconv.conv2d`; the problem is canonicalized exactly as ``conv2d`` does.
      mode: ``"forward"`` times the convolution; ``"train"`` its forward and backward pass (the
        gradients w.r.t. x and kernel), the choice ``auto`` makes when it is differentiated.

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
                                  data_format=data_format, precision=precision)

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
    unknown = [n for n in names if n not in _registry.names()]
    if unknown:
        raise ValueError(f"{FN}: unknown algorithms {unknown}; registered: {list(_registry.names())}")
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
    timings, compiles, failed = {}, {}, {}
    for name in candidates:
        try:
            c, t = _time_algorithm(name, x, kernel, config, repeats, mode)
        except Exception as e:  # an algorithm that breaks (e.g. out of memory) just loses
            failed[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            continue
        compiles[name], timings[name] = c * 1e3, t * 1e3
    if not timings:
        raise RuntimeError(f"{FN}: no algorithm could run this problem: {failed or unsupported}")
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
