"""Handwritten digits for LeNet-5: scikit-learn's 8x8 digits and MNIST from IDX files.

Both loaders return a :class:`Digits` split with images **NHWC** ``(N, 32, 32, 1)`` float32 on
LeNet's 32x32 grid, normalized as in LeCun et al. (1998): background ``-0.1``, full ink ``1.175``
(mean roughly 0, variance roughly 1), and ``int32`` labels ``0..9``.

References:
  Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
  recognition", Proc. IEEE 86(11), 1998 (section II-A: the 32x32 input and its normalization).
  The IDX file format: http://yann.lecun.com/exdb/mnist/ (bottom of the page).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import sys
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["MNIST_FILES", "MNIST_SHA256", "MNIST_URL", "Digits", "IDXError", "default_cache_dir",
           "digits", "mnist", "read_idx"]

# LeNet-5's input normalization (LeCun et al. 1998, II-A): white -0.1, black 1.175.
BACKGROUND, FOREGROUND = -0.1, 1.175
TEST_SIZE = 360  # 20% of scikit-learn's 1,797 digits

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# The published SHA-256 of the original gzipped files (the same bytes on every mirror).
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

# IDX type byte -> big-endian NumPy dtype.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IDXError(ValueError):
    """An IDX file (or a pair of them) is malformed; the message names the file."""


class Digits(NamedTuple):
    """A train/test split: images ``(N, 32, 32, 1)`` float32, labels ``(N,)`` int32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _normalize(ink: np.ndarray) -> np.ndarray:
    """Map ink in ``[0, 1]`` to LeNet's ``[-0.1, 1.175]``."""
    return (BACKGROUND + (FOREGROUND - BACKGROUND) * ink).astype(np.float32)


def _stratified_split(y: np.ndarray, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``: ``test_size`` items, each class in proportion (largest remainder)."""
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * test_size / len(y)
    quota = np.floor(exact).astype(int)
    # Hand the rounding leftovers to the classes with the largest remainders (ties: lower class).
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: test_size - quota.sum()]] += 1
    rng = np.random.default_rng(seed)
    test = np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota, strict=True)]
    )
    test = np.sort(test)
    train = np.setdiff1d(np.arange(len(y)), test)
    return train, test


def digits() -> Digits:
    """scikit-learn's handwritten digits on LeNet's 32x32 grid, with a fixed stratified split.

    Each of the 1,797 8x8 images counts the ink in 4x4 blocks of a 32x32 bitmap (values 0..16),
    so 4x nearest-neighbour upsampling restores the 32x32 grid LeNet-5 expects. Ink is scaled to
    ``[0, 1]`` then normalized to LeNet's ``[-0.1, 1.175]``. The split is fixed: 360 images (20%,
    each class in proportion) held out for test, chosen by a seeded NumPy generator, so it does
    not depend on the scikit-learn version.

    Returns:
      :class:`Digits` with ``x_train`` ``(1437, 32, 32, 1)``, ``x_test`` ``(360, 32, 32, 1)``
      (float32, NHWC) and int32 labels.

    Raises:
      ModuleNotFoundError: scikit-learn is missing (``pip install 'jaxconv[data]'``).

    Examples:
      >>> from jaxconv.data import digits
      >>> d = digits()
      >>> d.x_train.shape, d.x_test.shape
      ((1437, 32, 32, 1), (360, 32, 32, 1))
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ModuleNotFoundError(
            "jaxconv.data.digits() needs scikit-learn, which is not installed; install it with "
            "pip install 'jaxconv[data]'",
            name="sklearn",
        ) from e
    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64) / 16.0  # (1797, 8, 8)
    labels = np.asarray(bunch.target, dtype=np.int32)
    images = images.repeat(4, axis=1).repeat(4, axis=2)[..., None]  # nearest 4x -> 32x32
    x = _normalize(images)
    train, test = _stratified_split(labels, TEST_SIZE, seed=0)
    return Digits(x[train], labels[train], x[test], labels[test])


# --------------------------------------------------------------------------------------- IDX


_CHUNK = 1 << 20


def _read_idx_bytes(path: Path) -> tuple[bytes, bytes]:
    """``(header, data)`` of an IDX file, gzipped or not, reading no more than the header says.

    The data size is computed from the header with Python ints (no overflow) and compared with
    what the file holds; gzip data is decompressed incrementally and reading stops as soon as it
    exceeds the declared size (a small "gzip bomb" cannot expand to gigabytes).
    """
    with path.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"  # gzip magic, whatever the file is called
        raw.seek(0)
        if gz:
            try:
                with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                    return _read_idx_stream(path, f, None)
            except (OSError, EOFError, zlib.error) as e:
                raise IDXError(f"read_idx: {path}: corrupt or truncated gzip data ({e})") from e
        return _read_idx_stream(path, raw, os.fstat(raw.fileno()).st_size)


def _read_idx_stream(path: Path, f, file_size: int | None) -> tuple[bytes, bytes]:
    head = f.read(4)
    if len(head) < 4:
        raise IDXError(f"read_idx: {path}: truncated: {len(head)} bytes, not even a 4-byte header")
    if head[0] != 0 or head[1] != 0:
        raise IDXError(
            f"read_idx: {path}: bad magic number 0x{head.hex()}; an IDX file starts with two "
            "zero bytes, a type byte and the number of dimensions"
        )
    kind, ndim = head[2], head[3]
    if kind not in _IDX_DTYPES:
        raise IDXError(
            f"read_idx: {path}: bad magic number 0x{head.hex()}: unknown type byte "
            f"0x{kind:02x} (expected one of {', '.join(f'0x{k:02x}' for k in _IDX_DTYPES)})"
        )
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise IDXError(
            f"read_idx: {path}: truncated header: {ndim} dimensions need {4 + 4 * ndim} bytes, "
            f"the file has {4 + len(dims)}"
        )
    shape = tuple(int.from_bytes(dims[4 * i:4 * i + 4], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[kind]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    header = 4 + 4 * ndim
    name = dtype.newbyteorder("=").name
    if file_size is not None:  # plain file: compare with its size before reading anything
        got = file_size - header
        if got < expected:
            raise IDXError(
                f"read_idx: {path}: truncated: shape {shape} of {name} needs {expected} data "
                f"bytes, the file has {got}"
            )
        if got > expected:
            raise IDXError(
                f"read_idx: {path}: {got - expected} trailing bytes after the data of shape "
                f"{shape}; the header's counts disagree with the file size"
            )
        data = f.read(expected)
        if len(data) != expected:
            raise IDXError(f"read_idx: {path}: truncated while reading ({len(data)} of {expected} bytes)")
        return head + dims, data
    # Read at most one chunk past the declared size: enough to count a few trailing bytes.
    limit = expected + _CHUNK
    chunks, got = [], 0
    while got <= limit:
        chunk = f.read(min(_CHUNK, limit + 1 - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got > expected:
        extra = f"{got - expected}" if got <= limit else f"over {limit - expected}"
        raise IDXError(
            f"read_idx: {path}: {extra} trailing bytes after the data of shape {shape}; the "
            f"header's counts disagree with the decompressed size (the header declares "
            f"{expected} data bytes; reading stopped there)"
        )
    if got < expected:
        raise IDXError(
            f"read_idx: {path}: truncated: shape {shape} of {name} needs {expected} data bytes, "
            f"the file has {got}"
        )
    return head + dims, b"".join(chunks)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or not) into a NumPy array.

    The IDX format: two zero bytes, a type byte (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
    ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), a byte with the number of dimensions,
    one big-endian uint32 per dimension, then the data in C order. Gzip is detected from the
    content, not the name, and decompressed no further than the header's declared size.

    Args:
      path: the file.

    Returns:
      An array of the stored shape, in the native byte order of the stored type.

    Raises:
      IDXError: bad magic, unknown type, a header or data shorter than the header announces
        (truncated) or trailing bytes; the message names the file.
      FileNotFoundError: no such file.
    """
    path = Path(path)
    head, data = _read_idx_bytes(path)
    kind, ndim = head[2], head[3]
    shape = tuple(int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[kind]
    arr = np.frombuffer(data, dtype).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


# ------------------------------------------------------------------------------------- MNIST


def default_cache_dir() -> Path:
    """Where downloads go: ``$JAXCONV_CACHE_DIR``, else the user cache directory + ``jaxconv``."""
    if env := os.environ.get("JAXCONV_CACHE_DIR"):
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "jaxconv"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, dest: Path, sha256: str | None, timeout: float) -> None:
    """Fetch ``url`` into ``dest`` atomically: a temp file in the same folder, checked, renamed."""
    from jaxconv._io import atomic_open

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_open(dest, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as r:
            h = hashlib.sha256()
            for chunk in iter(lambda: r.read(1 << 20), b""):
                h.update(chunk)
                f.write(chunk)
            if sha256 is not None and h.hexdigest() != sha256:  # raised inside: nothing renamed
                raise OSError(
                    f"mnist: SHA-256 mismatch for {url}: expected {sha256}, got {h.hexdigest()}; "
                    "the download was discarded"
                )
    except OSError as e:
        if not str(e).startswith("mnist:"):
            raise OSError(
                f"mnist: could not download {url} ({e}); nothing was written. Pass "
                "mnist(path=FOLDER) with the four IDX files to work offline"
            ) from e
        raise


def _find(folder: Path, name: str) -> Path:
    for candidate in (name, name.removesuffix(".gz")):
        if (folder / candidate).is_file():
            return folder / candidate
    raise FileNotFoundError(
        f"mnist: {folder} has neither {name} nor {name.removesuffix('.gz')}"
    )


def _fetch(cache: Path, url: str, checksums: dict[str, str | None], timeout: float) -> Path:
    for name in MNIST_FILES.values():
        dest = cache / name
        expected = checksums.get(name)
        if dest.is_file() and (expected is None or _sha256(dest) == expected):
            continue
        _download(url.rstrip("/") + "/" + name, dest, expected, timeout)
    return cache


def _mnist_split(folder: Path, images: str, labels: str) -> tuple[np.ndarray, np.ndarray]:
    ipath, lpath = _find(folder, images), _find(folder, labels)
    x, y = read_idx(ipath), read_idx(lpath)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
        raise IDXError(
            f"mnist: {ipath}: expected uint8 images of shape (N, 28, 28), got {x.dtype} {x.shape}"
        )
    if y.ndim != 1 or y.dtype != np.uint8:
        raise IDXError(f"mnist: {lpath}: expected uint8 labels of shape (N,), got {y.dtype} {y.shape}")
    if len(x) != len(y):
        raise IDXError(
            f"mnist: the counts disagree: {ipath} has {len(x)} images but {lpath} has {len(y)} labels"
        )
    if len(y) and y.max() > 9:
        raise IDXError(f"mnist: {lpath}: labels must be 0..9, found {int(y.max())}")
    # LeNet-5 centres the 28x28 digits in a 32x32 field (LeCun et al. 1998, II-A).
    x = np.pad(x.astype(np.float64) / 255.0, ((0, 0), (2, 2), (2, 2)))[..., None]
    return _normalize(x), y.astype(np.int32)


def mnist(
    path: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    url: str | None = None,
    checksums: dict[str, str | None] | None = None,
    download: bool = True,
    timeout: float = 60.0,
) -> Digits:
    """MNIST on LeNet's 32x32 grid, from a folder of IDX files or downloaded once into a cache.

    Args:
      path: a folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each gzipped ``.gz`` or not).
        ``None`` uses the cache, downloading what is missing.
      cache_dir: the download cache; default ``$JAXCONV_CACHE_DIR`` or the user cache directory
        (``~/.cache/jaxconv`` on Linux) + ``mnist``.
      url: base URL of the four ``.gz`` files; default ``$JAXCONV_MNIST_URL`` or
        :data:`MNIST_URL`.
      checksums: file name -> SHA-256 (``None`` skips the check); default the published
        :data:`MNIST_SHA256`. Cached files are re-checked on every call and fetched again when
        they do not match.
      download: when ``False`` a missing cache raises ``FileNotFoundError`` instead.
      timeout: seconds per network operation.

    Returns:
      :class:`Digits`: 60,000 training and 10,000 test images ``(N, 32, 32, 1)`` float32 (the
      28x28 digits centred with 2 pixels of background, as in the paper), int32 labels.

    Raises:
      IDXError: a malformed file, or image and label counts that disagree (names the files).
      OSError: a download failed or its SHA-256 does not match; nothing is left half-written
        (each file is written to a temporary name and renamed only once verified).
    """
    if path is not None:
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"mnist: path {folder} is not a folder")
    else:
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "mnist"
        sums: dict[str, str | None] = dict(MNIST_SHA256) if checksums is None else dict(checksums)
        if download:
            _fetch(folder, url or os.environ.get("JAXCONV_MNIST_URL") or MNIST_URL, sums, timeout)
    x_train, y_train = _mnist_split(folder, MNIST_FILES["train_images"], MNIST_FILES["train_labels"])
    x_test, y_test = _mnist_split(folder, MNIST_FILES["test_images"], MNIST_FILES["test_labels"])
    return Digits(x_train, y_train, x_test, y_test)
