"""Measure every applicable convolution algorithm on this device and cache the fastest.

``jaxconv.autotune(x_shape, kernel_shape, **conv_kwargs)`` times each algorithm that can serve
the (NHWC, HWIO) problem on the current default device (compile excluded, ``block_until_ready``,
median of ``repeats``) and stores the winner and all timings in a JSON file in the user cache
directory. ``conv2d(..., algorithm="auto")`` and ``jaxconv.select_algorithm`` consult that cache
before the cost model.

Cache file: ``autotune.json`` in ``$JAXCONV_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxconv``, else
``~/.cache/jaxconv`` (``platformdirs.user_cache_dir("jaxconv")`` when that package is installed
and neither variable is set). Entries are keyed by backend, device kind, jax version, the
batched NHWC shape the algorithm sees (after reflect / replicate / circular padding), the HWIO
kernel shape, dtype and the canonical config (stride, zero padding, dilation, groups, precision).
A file that is not valid JSON or not this schema is ignored with an :class:`AutotuneCacheWarning`
and replaced on the next write; writes go to a temporary file in the same directory and are
moved into place with ``os.replace``, so a reader never sees half a file.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _registry
from ._registry import ConvConfig

FN = "autotune"
SCHEMA = "jaxconv-autotune"
VERSION = 1
FILENAME = "autotune.json"

# The benchmark cases of DESIGN.md: name -> [(x NHWC, kernel HWIO), ...], VALID, stride 1.
CASES: dict[str, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {
    "article": [((1, 320, 400, 3), (k, k, 3, 3)) for k in (1, 3, 5, 7, 10, 15, 21, 31)],
    "layer": [((8, 64, 64, 32), (k, k, 32, 32)) for k in (1, 3, 5, 7, 11, 15)],
    "lenet": [((256, 32, 32, 1), (5, 5, 1, 6)), ((256, 14, 14, 6), (5, 5, 6, 16))],
}


class AutotuneCacheWarning(UserWarning):
    """The autotune cache file could not be used (corrupt, foreign or unwritable); it is ignored."""


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


# ----------------------------------------------------------------------------- cache location


def cache_dir() -> Path:
    """The directory that holds ``autotune.json`` (not created here)."""
    env = os.environ.get("JAXCONV_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "jaxconv"
    return _default_cache_dir()


@functools.lru_cache(maxsize=1)
def _default_cache_dir() -> Path:
    try:  # optional, never a dependency
        import platformdirs
    except ImportError:
        return Path.home() / ".cache" / "jaxconv"
    return Path(platformdirs.user_cache_dir("jaxconv"))


def cache_path() -> Path:
    return cache_dir() / FILENAME


# ----------------------------------------------------------------------------- keys


def _precision_str(precision) -> str | None:
    if precision is None:
        return None
    if isinstance(precision, tuple):
        return ",".join(str(_precision_str(p)) for p in precision)
    return getattr(precision, "name", str(precision))


@functools.lru_cache(maxsize=16)
def device_kind(backend: str) -> str | None:
    """The device kind of ``backend``'s first device, or ``None`` when the backend is absent."""
    try:
        return str(jax.devices(backend)[0].device_kind)
    except RuntimeError:
        return None


def make_key(x_shape, kernel_shape, dtype, config: ConvConfig, backend: str,
             kind: str | None = None) -> dict[str, Any]:
    """The cache key of a canonical (NHWC, HWIO, dtype, config) problem on ``backend``."""
    return {
        "backend": backend,
        "device_kind": device_kind(backend) if kind is None else kind,
        "jax": jax.__version__,
        "x_shape": [int(d) for d in x_shape],
        "kernel_shape": [int(d) for d in kernel_shape],
        "dtype": jnp.dtype(dtype).name,
        "stride": list(config.stride),
        "padding": [list(p) for p in config.padding],
        "dilation": list(config.dilation),
        "groups": int(config.groups),
        "precision": _precision_str(config.precision),
    }


def _key_str(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


# ----------------------------------------------------------------------------- the cache file

_lock = threading.Lock()
# path -> (stat signature, entries); a file is parsed once and re-read only when it changes.
_memory: dict[str, tuple[tuple[int, int] | None, dict[str, dict]]] = {}


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _parse(path: Path) -> dict[str, dict]:
    """Entries of the cache file; ``{}`` (with a warning) when it is corrupt or foreign."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        warnings.warn(f"jaxconv: cannot read the autotune cache {path}: {e}; ignoring it",
                      AutotuneCacheWarning, stacklevel=3)
        return {}
    try:
        data = json.loads(text)
    except ValueError as e:
        warnings.warn(f"jaxconv: the autotune cache {path} is not valid JSON ({e}); ignoring it "
                      "(it is rewritten by the next autotune)", AutotuneCacheWarning, stacklevel=3)
        return {}
    if (
        not isinstance(data, dict)
        or data.get("schema") != SCHEMA
        or data.get("version") != VERSION
        or not isinstance(data.get("entries"), dict)
    ):
        found = (data.get("schema"), data.get("version")) if isinstance(data, dict) else type(data).__name__
        warnings.warn(f"jaxconv: the autotune cache {path} is not a {SCHEMA} version {VERSION} "
                      f"file (found {found}); ignoring it (it is rewritten by the next autotune)",
                      AutotuneCacheWarning, stacklevel=3)
        return {}
    return {k: v for k, v in data["entries"].items()
            if isinstance(v, dict) and isinstance(v.get("winner"), str)}


def _entries(path: Path) -> dict[str, dict]:
    sig = _signature(path)
    with _lock:
        cached = _memory.get(str(path))
        if cached is not None and cached[0] == sig:
            return cached[1]
        entries = _parse(path) if sig is not None else {}
        _memory[str(path)] = (sig, entries)
        return entries


def clear_memory_cache() -> None:
    """Forget the in-memory copy of every cache file (the files themselves are kept)."""
    with _lock:
        _memory.clear()


def lookup(x_shape, kernel_shape, dtype, config: ConvConfig, backend: str) -> dict | None:
    """The cached entry for this problem on ``backend`` (this device kind, this jax), or ``None``."""
    entries = _entries(cache_path())
    kind = device_kind(backend) if entries else None
    if kind is None:
        return None
    return entries.get(_key_str(make_key(x_shape, kernel_shape, dtype, config, backend, kind)))


def _write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{FILENAME}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def store(key: dict[str, Any], entry: dict[str, Any]) -> Path:
    """Add ``entry`` under ``key`` to the cache file (re-read first, so concurrent tuners merge)."""
    path = cache_path()
    with _lock:
        _memory.pop(str(path), None)
    with warnings.catch_warnings():  # a corrupt or foreign file is being replaced: no warning
        warnings.simplefilter("ignore", AutotuneCacheWarning)
        entries = dict(_entries(path))
    entries[_key_str(key)] = {**entry, "key": key}
    _write_atomic(path, {"schema": SCHEMA, "version": VERSION, "entries": entries})
    with _lock:
        _memory[str(path)] = (_signature(path), entries)
    return path


# ----------------------------------------------------------------------------- measuring


def _time_algorithm(name: str, x, kernel, config: ConvConfig, repeats: int) -> tuple[float, float]:
    """(compile seconds, median run seconds) of one algorithm on NHWC ``x``, HWIO ``kernel``."""
    fn = _registry.get(name).fn
    jitted = jax.jit(lambda a, b: fn(a, b, config))
    t0 = time.perf_counter()
    compiled = jitted.lower(x, kernel).compile()
    compile_s = time.perf_counter() - t0
    compiled(x, kernel).block_until_ready()  # warm-up: first-run allocations, caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        compiled(x, kernel).block_until_ready()
        times.append(time.perf_counter() - t0)
    return compile_s, statistics.median(times)


def autotune(
    x_shape,
    kernel_shape,
    *,
    dtype="float32",
    repeats: int = 5,
    cache: bool = True,
    algorithms: Sequence[str] | None = None,
    stride=1,
    padding="VALID",
    dilation=1,
    groups: int = 1,
    padding_mode: str = "zeros",
    data_format: str = "NHWC",
    precision=None,
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

    Returns:
      An :class:`AutotuneResult` (``.winner``, ``.timings_ms``, ``.compile_ms``, ...).

    Examples:
      >>> import jaxconv
      >>> r = jaxconv.autotune((1, 16, 16, 3), (3, 3, 3, 4), repeats=1, cache=False)
      >>> r.winner in r.timings_ms
      True
    """
    from ._conv2d import _canonicalize

    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ValueError(f"{FN}: repeats must be an int >= 1, got {repeats!r}")
    x_spec, k_spec = _specs(FN, x_shape, kernel_shape, dtype)
    _, _, _, canon = _rename_errors(FN, _canonicalize, x_spec, k_spec, None, stride=stride,
                                    padding=padding, dilation=dilation, groups=groups,
                                    padding_mode=padding_mode, data_format=data_format,
                                    precision=precision)
    x_nhwc, dtype, config = canon.x_nhwc, jnp.dtype(canon.dtype), canon.config
    kshape = tuple(int(d) for d in k_spec.shape)

    names = _registry.names() if algorithms is None else tuple(algorithms)
    unknown = [n for n in names if n not in _registry.names()]
    if unknown:
        raise ValueError(f"{FN}: unknown algorithms {unknown}; registered: {list(_registry.names())}")
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
            c, t = _time_algorithm(name, x, kernel, config, repeats)
        except Exception as e:  # an algorithm that breaks (e.g. out of memory) just loses
            failed[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            continue
        compiles[name], timings[name] = c * 1e3, t * 1e3
    if not timings:
        raise RuntimeError(f"{FN}: no algorithm could run this problem: {failed or unsupported}")
    winner = min(timings, key=timings.get)

    backend = jax.default_backend()
    key = make_key(x_nhwc, kshape, dtype, config, backend)
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
            path = store(key, entry)
        except OSError as e:
            warnings.warn(f"jaxconv: cannot write the autotune cache {cache_path()}: {e}",
                          AutotuneCacheWarning, stacklevel=2)
    return AutotuneResult(winner, timings, compiles, failed, unsupported, key, path)


def _specs(fn: str, x_shape, kernel_shape, dtype):
    """``jax.ShapeDtypeStruct`` stand-ins for conv2d's validation, with readable errors."""
    out = []
    for name, shape in (("x_shape", x_shape), ("kernel_shape", kernel_shape)):
        if isinstance(shape, str) or not isinstance(shape, Sequence) or not all(
            isinstance(d, int | np.integer) and not isinstance(d, bool) for d in shape
        ):
            raise TypeError(f"{fn}: {name} must be a tuple of ints, got {shape!r}")
        if any(d < 0 for d in shape):
            raise ValueError(f"{fn}: {name} must have non-negative sizes, got {tuple(shape)}")
        try:
            dt = jnp.dtype(dtype)
        except TypeError as e:
            raise TypeError(f"{fn}: unknown dtype {dtype!r}") from e
        out.append(jax.ShapeDtypeStruct(tuple(int(d) for d in shape), dt))
    return out


def _rename_errors(fn: str, func, *args, **kwargs):
    """Call conv2d's validation, reporting errors under ``fn`` instead of ``conv2d``."""
    try:
        return func(*args, **kwargs)
    except (ValueError, TypeError) as e:
        msg = str(e)
        if msg.startswith("conv2d:"):
            msg = f"{fn}:" + msg[len("conv2d:"):]
        raise type(e)(msg) from None


# ----------------------------------------------------------------------------- the CLI


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(p) for p in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 8x64x64x32, got {text!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return shape


def _parse_pair(text: str):
    parts = text.lower().replace("x", ",").split(",")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or a pair like 2,1, got {text!r}") from None
    if len(vals) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected an int or a pair like 2,1, got {text!r}")
    return vals[0] if len(vals) == 1 else tuple(vals)


def _parse_padding(text: str):
    if text.upper() in ("VALID", "SAME", "FULL"):
        return text.upper()
    parts = text.replace("x", ",").split(",")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected VALID, SAME, FULL, an int, ph,pw or top,bottom,left,right; got {text!r}"
        ) from None
    if len(vals) == 1:
        return vals[0]
    if len(vals) == 2:
        return tuple(vals)
    if len(vals) == 4:
        return ((vals[0], vals[1]), (vals[2], vals[3]))
    raise argparse.ArgumentTypeError(f"expected 1, 2 or 4 padding values, got {text!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """``jaxconv autotune``: measure and cache the fastest convolution algorithm for a shape."""
    parser = argparse.ArgumentParser(
        prog="jaxconv autotune",
        description="Time every applicable convolution algorithm on the default device and cache "
        f"the fastest for algorithm='auto' (cache: {cache_path()}).",
    )
    parser.add_argument("x_shape", nargs="?", type=_parse_shape, help="NHWC image shape, e.g. 8x64x64x32")
    parser.add_argument("kernel_shape", nargs="?", type=_parse_shape,
                        help="HWIO kernel shape, e.g. 3x3x32x32")
    parser.add_argument("--case", choices=sorted(CASES), help="tune one of DESIGN.md's benchmark cases")
    parser.add_argument("--stride", type=_parse_pair, default=1)
    parser.add_argument("--padding", type=_parse_padding, default="VALID")
    parser.add_argument("--dilation", type=_parse_pair, default=1)
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--padding-mode", default="zeros",
                        choices=("zeros", "reflect", "replicate", "circular"))
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-cache", action="store_true", help="measure only; do not write the cache")
    args = parser.parse_args(argv)

    if args.case is not None:
        if args.x_shape is not None:
            parser.error("give either --case or X_SHAPE KERNEL_SHAPE, not both")
        problems = CASES[args.case]
    elif args.x_shape is None or args.kernel_shape is None:
        parser.error("X_SHAPE and KERNEL_SHAPE are required (or --case article|layer|lenet)")
    else:
        problems = [(args.x_shape, args.kernel_shape)]

    kwargs = dict(stride=args.stride, padding=args.padding, dilation=args.dilation,
                  groups=args.groups, padding_mode=args.padding_mode)
    path = None
    for x_shape, kernel_shape in problems:
        try:
            result = autotune(x_shape, kernel_shape, dtype=args.dtype, repeats=args.repeats,
                              cache=not args.no_cache, **kwargs)
        except (ValueError, TypeError) as e:
            print(f"jaxconv autotune: {e}", file=sys.stderr)
            return 2
        print(result)
        print(f"winner: {result.winner}\n")
        path = result.path or path
    if path is not None:
        print(f"cached in {path}")
    return 0
