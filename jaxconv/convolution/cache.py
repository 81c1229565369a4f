"""The autotune cache: measured winners per problem and device, in one JSON file.

File: ``autotune.json`` in ``$JAXCONV_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxconv``, else
``~/.cache/jaxconv`` (``platformdirs.user_cache_dir("jaxconv")`` when that package is installed
and neither variable is set). Entries are keyed by backend, device kind, jax version, the
batched channels-last shape the algorithm sees (after reflect / replicate / circular padding),
the kernel shape, dtype and the canonical config (stride, zero padding, dilation, groups,
precision).

A cache problem never breaks a convolution: a file that cannot be read or decoded (read with
:func:`jaxconv._io.read_json`'s limits: size, nesting depth, finite numbers), or is not this
schema, is ignored with one :class:`AutotuneCacheWarning`; malformed entries are dropped (with one
warning) and disappear at the next write. Writers take an exclusive ``fcntl`` lock on the
cache's folder, re-read the file under it and merge, so concurrent tuners lose
nothing; the new file is written to a temporary file in the same folder, fsynced and moved into
place with ``os.replace`` (a reader never sees half a file), keeping the old file's permissions.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from .. import _io
from ._registry import ConvConfig

try:  # POSIX; elsewhere writers are serialized within one process only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

SCHEMA = "jaxconv-autotune"
VERSION = 1
FILENAME = "autotune.json"


class AutotuneCacheWarning(UserWarning):
    """The autotune cache file could not be used (corrupt, foreign or unwritable); it is ignored."""


# ----------------------------------------------------------------------------- location


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


def _precision_str(precision: Any) -> str | None:
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


MODES = ("forward", "train")


def make_key(x_shape: Any, kernel_shape: Any, dtype: Any, config: ConvConfig, backend: str,
             kind: str | None = None, mode: str = "forward") -> dict[str, Any]:
    """The cache key of a canonical (channels-last, kernel, dtype, config) problem on ``backend``.

    ``mode="train"`` keys the measurement of forward + backward (gradients w.r.t. x and kernel).
    """
    key = {
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
    if mode != "forward":
        key["mode"] = mode
    return key


def key_str(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


# ----------------------------------------------------------------------------- reading

_lock = threading.Lock()
# path -> (stat signature, entries); a file is parsed once and re-read only when it changes.
_memory: dict[str, tuple[tuple[int, int] | None, dict[str, dict]]] = {}


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def valid_entry(entry: Any) -> bool:
    """An entry ``auto`` can use: a winner name and finite, non-negative timings."""
    if not isinstance(entry, dict) or not isinstance(entry.get("winner"), str):
        return False
    ms = entry.get("timings_ms")
    if not isinstance(ms, dict):
        return False
    return all(
        isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
        and math.isfinite(v) and v >= 0
        for k, v in ms.items()
    )


def _warn(message: str) -> None:
    warnings.warn(f"jaxconv: {message}", AutotuneCacheWarning, stacklevel=4)


def _parse(path: Path, *, quiet: bool = False) -> dict[str, dict]:
    """Valid entries of the cache file; ``{}`` (with a warning) when it is unusable."""
    say = (lambda _m: None) if quiet else _warn
    try:
        data = _io.read_json(path)
    except _io.JSONFileError as e:
        if not e.missing:
            say(f"the autotune cache {path} is unusable: {e.reason}; ignoring it (it is "
                "rewritten by the next autotune)")
        return {}
    if (
        not isinstance(data, dict)
        or data.get("schema") != SCHEMA
        or data.get("version") != VERSION
        or not isinstance(data.get("entries"), dict)
    ):
        found = (data.get("schema"), data.get("version")) if isinstance(data, dict) else type(data).__name__
        say(f"the autotune cache {path} is not a {SCHEMA} version {VERSION} file (found "
            f"{found}); ignoring it (it is rewritten by the next autotune)")
        return {}
    entries = {k: v for k, v in data["entries"].items() if valid_entry(v)}
    dropped = len(data["entries"]) - len(entries)
    if dropped:
        say(f"the autotune cache {path} has {dropped} malformed entr"
            f"{'y' if dropped == 1 else 'ies'}; ignoring them (they are dropped by the next "
            "autotune)")
    return entries


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


def lookup(x_shape: Any, kernel_shape: Any, dtype: Any, config: ConvConfig,
           backend: str, mode: str = "forward") -> dict | None:
    """The cached entry for this problem on ``backend`` (this device kind, this jax), or ``None``."""
    entries = _entries(cache_path())
    kind = device_kind(backend) if entries else None
    if kind is None:
        return None
    return entries.get(key_str(make_key(x_shape, kernel_shape, dtype, config, backend, kind, mode)))


# ----------------------------------------------------------------------------- writing


@contextlib.contextmanager
def folder_lock(path: Path) -> Iterator[None]:
    """Exclusive lock on ``path``'s folder across processes (and threads of this one).

    The folder, not a lock file, so that nothing but the cache itself is ever left behind.
    """
    with _write_lock:
        if fcntl is None:  # pragma: no cover
            yield
            return
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


_write_lock = threading.Lock()


def store(key: dict[str, Any], entry: dict[str, Any]) -> Path:
    """Add ``entry`` under ``key`` to the cache file, merged with what is there under a lock."""
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(path):
        entries = _parse(path, quiet=True)  # a corrupt or foreign file is being replaced
        entries[key_str(key)] = {**entry, "key": key}
        _io.write_json_atomic(path, {"schema": SCHEMA, "version": VERSION, "entries": entries})
        with _lock:
            _memory[str(path)] = (_signature(path), entries)
    return path
