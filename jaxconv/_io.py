"""One rule for every file jaxconv writes: check first, write a temporary, rename.

- :func:`check_output` validates a target before any work: not a folder, its folder exists (or
  can be made) and is writable, an existing file is not read-only, and (for images) the format
  is one matplotlib can write. A failure is an ``OSError`` or ``ValueError`` naming the file.
- :func:`atomic_open` (and :func:`atomic_write`, :func:`save_figure`) write to a temporary file in
  the same folder, flush and ``fsync`` it, then ``os.replace`` it over the target. A failure (or
  an interrupt) removes the temporary and leaves whatever was at the target untouched: a file
  that was there before is never deleted, and a reader never sees a half-written file.
- Temporaries are named ``.NAME.PID.HEX.part``; those left by a process that no longer runs
  (killed mid-write) are removed the next time the same target is written.

And one rule for every JSON state file jaxconv reads back (autotune cache, calibration, cost
model): :func:`read_json` (:func:`parse_json` for text already in memory) parses within limits
(size, nesting depth, finite numbers of sane magnitude) and turns *any* failure into one
:class:`JSONFileError` naming the file, so a crafted or damaged file can never raise
``RecursionError``/``OverflowError`` deeper in the library; :func:`write_json_atomic` writes
only what it accepts.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["JSONFileError", "NotEnoughMemoryError", "atomic_open", "atomic_write", "available_memory",
           "check_output", "clean_stale", "figure_format", "parse_json", "read_json", "save_figure",
           "write_json_atomic"]

_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{32}\.part$")


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.part")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: leave its files alone
    return True


def clean_stale(path: str | os.PathLike) -> list[Path]:
    """Remove our temporaries for ``path`` whose writing process is gone; return them."""
    path = Path(path)
    removed: list[Path] = []
    try:
        entries = list(path.parent.iterdir()) if path.parent.is_dir() else []
    except OSError:
        return removed
    for p in entries:
        m = _TMP.match(p.name)
        if m and m["name"] == path.name and not _alive(int(m["pid"])):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def figure_format(path: str | os.PathLike, fn: str) -> str:
    """The matplotlib format of an image path from its extension; ``ValueError`` if unsupported."""
    from matplotlib.backend_bases import FigureCanvasBase

    supported = FigureCanvasBase.get_supported_filetypes()
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in supported:
        names = ", ".join(sorted(supported))
        got = f"extension {'.' + ext!r}" if ext else "no extension"
        raise ValueError(f"{fn}: cannot write {os.fspath(path)!r}: unsupported image format "
                         f"({got}); use one of {names}")
    return ext


def check_output(path: str | os.PathLike, fn: str, *, make_parents: bool = False,
                 image: bool = False) -> Path:
    """Check that ``path`` can be written, before any work is done; return it as a ``Path``.

    Raises ``ValueError`` (an unsupported image format with ``image=True``) or ``OSError``
    (a folder, a read-only file, a missing or read-only parent folder), naming the file.
    """
    path = Path(path)
    name = os.fspath(path)
    if image:
        figure_format(path, fn)
    if path.is_dir():
        raise IsADirectoryError(f"{fn}: cannot write {name!r}: it is a folder")
    parent = path.parent
    if not parent.is_dir():
        if parent.exists():
            raise NotADirectoryError(f"{fn}: cannot write {name!r}: {os.fspath(parent)!r} is not a folder")
        if not make_parents:
            raise FileNotFoundError(f"{fn}: cannot write {name!r}: no such folder {os.fspath(parent)!r}")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(e.errno, f"{fn}: cannot create the folder {os.fspath(parent)!r} "
                                   f"({e.strerror or e})") from None
    if path.exists():
        mode = path.stat().st_mode
        if stat.S_ISREG(mode) and not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            raise PermissionError(f"{fn}: cannot write {name!r}: the file is read-only")
        if not stat.S_ISREG(mode):
            raise OSError(f"{fn}: cannot write {name!r}: not a regular file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{fn}: cannot write {name!r}: the folder {os.fspath(parent)!r} "
                              "is not writable")
    return path


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *,
                encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary beside ``path`` for writing; on success fsync and rename it to ``path``.

    On any exception (``KeyboardInterrupt`` included) the temporary is removed and ``path`` is
    left as it was. ``mode`` is ``"wb"`` or ``"w"`` (text, ``encoding`` default UTF-8).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {os.fspath(path)!r}: it is a folder")
    clean_stale(path)
    tmp = _tmp_name(path)
    try:
        f: IO[Any]
        with (open(tmp, "xb") if mode == "wb" else open(tmp, "x", encoding=encoding or "utf-8")) as f:
            yield f
            f.flush()
            with contextlib.suppress(OSError):  # a replaced file keeps its permissions
                os.chmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[IO[Any]], Any]) -> Path:
    """Write ``data`` (bytes, text, or ``writer(file)``) to ``path`` atomically; return the path."""
    path = Path(path)
    if isinstance(data, bytes | bytearray | memoryview):
        with atomic_open(path, "wb") as f:
            f.write(data)
    elif isinstance(data, str):
        with atomic_open(path, "w") as f:
            f.write(data)
    else:
        with atomic_open(path, "wb") as f:
            data(f)
    return path


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """``fig.savefig(path, **kwargs)`` atomically; the format comes from the extension."""
    path = Path(path)
    fmt = kwargs.pop("format", None) or figure_format(path, "savefig")
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format=fmt, **kwargs)
    return path


# ----------------------------------------------------------------------------- JSON state files

MAX_JSON_BYTES = 64 * 2**20
MAX_JSON_DEPTH = 32
MAX_JSON_INT = 2**63 - 1  # larger integers are not counts or sizes (and overflow float())
# Strings are skipped whole (an escaped quote does not end one); brackets outside them count.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class JSONFileError(ValueError):
    """A JSON file that cannot be used: missing, unreadable, too large, too deep or not JSON.

    The message names the file and the reason. Attributes: ``path`` (the file), ``reason`` (the
    reason alone) and ``missing`` (``True`` when the file does not exist, the usual "nothing
    stored yet" case that callers often want to treat apart).
    """

    def __init__(self, path: str | os.PathLike, reason: str, *, missing: bool = False):
        self.path = Path(path)
        self.reason = reason
        self.missing = missing
        super().__init__(f"{os.fspath(path)}: {reason}")


def _json_depth(text: str, limit: int) -> int:
    """The bracket nesting depth of ``text``, counting stops once it exceeds ``limit``."""
    depth = deepest = 0
    for m in _JSON_TOKENS.finditer(text):
        tok = m.group()
        if tok in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif tok in "]}":
            depth -= 1
    return deepest


class _NumberError(ValueError):
    """A number the reader refuses (raised from inside ``json.loads``)."""


def _json_int(text: str) -> int:
    # Checked on the digits first: int() of a 100,000-digit string is itself slow.
    if len(text.lstrip("-")) > 19 or abs(value := int(text)) > MAX_JSON_INT:
        raise _NumberError(f"the integer {text[:24]}{'...' if len(text) > 24 else ''} is out of "
                         f"range (|n| <= 2**63 - 1)")
    return value


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NumberError(f"the number {text[:24]}{'...' if len(text) > 24 else ''} overflows a float")
    return value


def _json_constant(name: str) -> Any:
    raise _NumberError(f"{name} is not a finite number")


def read_json(path: str | os.PathLike, *, max_bytes: int = MAX_JSON_BYTES,
              max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON state file defensively; any failure is one :class:`JSONFileError`.

    Before parsing, the file must be a regular file of at most ``max_bytes`` bytes, valid UTF-8,
    with brackets nested at most ``max_depth`` deep (a cheap scan, so that no crafted file can
    reach the parser's recursion limit). While parsing, integers must satisfy
    ``|n| <= 2**63 - 1`` and other numbers must be finite floats (``NaN``, ``Infinity`` and
    ``1e999`` are refused), so every number read can be used in float arithmetic. The *content*
    (schema, types) is the caller's to check.

    Args:
      path: the file.
      max_bytes: the largest accepted file size in bytes (>= 0).
      max_depth: the deepest accepted nesting of arrays and objects (>= 1).

    Returns:
      The parsed value (``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` or ``None``).

    Raises:
      JSONFileError: the file is missing (``.missing`` is ``True``), unreadable, not a regular
        file, too large, or its content fails :func:`parse_json`; the message names the file
        and the reason.
      TypeError, ValueError: ``max_bytes`` or ``max_depth`` are not ints in range.

    Examples:
      >>> import pathlib, tempfile
      >>> from jaxconv._io import JSONFileError, read_json
      >>> p = pathlib.Path(tempfile.mkdtemp()) / "state.json"
      >>> _ = p.write_text('{"scale": 1.5, "n": [1, 2]}')
      >>> read_json(p)
      {'scale': 1.5, 'n': [1, 2]}
      >>> _ = p.write_text("[" * 100_000)
      >>> try:
      ...     read_json(p)
      ... except JSONFileError as e:
      ...     print(e.reason)
      nested more than 32 levels deep
    """
    _check_limit("read_json", "max_bytes", max_bytes, 0)
    _check_limit("read_json", "max_depth", max_depth, 1)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise JSONFileError(path, "not a regular file")
        if st.st_size > max_bytes:
            raise JSONFileError(path, f"{st.st_size} bytes, more than the {max_bytes} accepted")
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)  # the file may have grown since stat
    except FileNotFoundError:
        raise JSONFileError(path, "no such file", missing=True) from None
    except OSError as e:
        raise JSONFileError(path, f"cannot read it ({e.strerror or e})") from None
    if len(raw) > max_bytes:
        raise JSONFileError(path, f"more than the {max_bytes} bytes accepted")
    return parse_json(raw, path, max_depth=max_depth)


def parse_json(data: bytes | str, source: str | os.PathLike, *,
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON text with :func:`read_json`'s rules; for text that is not in a file of its own.

    ``data`` (bytes: UTF-8) must nest at most ``max_depth`` deep, hold integers with
    ``|n| <= 2**63 - 1`` and only finite floats. Any failure is a :class:`JSONFileError` naming
    ``source`` (e.g. a bundled resource, or a JSON field of another file).

    Examples:
      >>> from jaxconv._io import parse_json
      >>> parse_json(b'{"epoch": 3}', "extra")
      {'epoch': 3}
    """
    _check_limit("parse_json", "max_depth", max_depth, 1)
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError as e:
        raise JSONFileError(source, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not isinstance(text, str):
        raise TypeError(f"parse_json: data must be bytes or str, got {type(data).__name__}")
    if _json_depth(text, max_depth) > max_depth:
        raise JSONFileError(source, f"nested more than {max_depth} levels deep")
    try:
        return json.loads(text, parse_int=_json_int, parse_float=_json_float,
                          parse_constant=_json_constant)
    except _NumberError as e:
        raise JSONFileError(source, str(e)) from None
    except (ValueError, RecursionError, OverflowError, MemoryError) as e:
        raise JSONFileError(source, f"not valid JSON ({e})") from None


def _check_limit(fn: str, name: str, value: Any, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{fn}: {name} must be an int >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{fn}: {name} must be an int >= {low}, got {value}")


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (:func:`atomic_open`); return the path.

    Sorted keys, one-space indent, a final newline. ``NaN`` and infinities are refused
    (``ValueError``) rather than written: :func:`read_json` would refuse the file. An existing
    file keeps its permissions.
    """
    try:
        text = json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n"
    except ValueError as e:
        raise ValueError(f"write_json_atomic: cannot write {os.fspath(path)!r}: {e}") from None
    return atomic_write(path, text)


class NotEnoughMemoryError(MemoryError):
    """A computation would not fit in the available memory; raised before allocating it."""


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, best effort; ``None`` when unknown.

    Linux: ``MemAvailable`` of ``/proc/meminfo`` (page cache that can be dropped counts as
    free); elsewhere ``os.sysconf`` free pages; ``None`` when neither answers.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return pages * size if pages > 0 and size > 0 else None
