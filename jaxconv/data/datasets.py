"""Data sets: scikit-learn's 8x8 digits and MNIST (IDX files) for LeNet-5, and CIFAR-10.

``cifar10()`` reads the CIFAR-10 python archive: RGB images ``(N, 32, 32, 3)`` in ``[0, 1]``.
The two digit loaders return a :class:`Digits` split with images **NHWC** ``(N, 32, 32, 1)`` float32 on
LeNet's 32x32 grid, normalized as in LeCun et al. (1998): background ``-0.1``, full ink ``1.175``
(mean roughly 0, variance roughly 1), and ``int32`` labels ``0..9``.

References:
  Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
  recognition", Proc. IEEE 86(11), 1998 (section II-A: the 32x32 input and its normalization).
  The IDX file format: http://yann.lecun.com/exdb/mnist/ (bottom of the page).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import importlib
import io
import math
import os
import pickle
import sys
import tarfile
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["CIFAR10_CLASSES", "CIFAR10_MD5", "CIFAR10_URL", "MNIST_FILES", "MNIST_SHA256",
           "MNIST_URL", "CIFARError", "Digits", "IDXError", "cifar10", "default_cache_dir",
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


_DIGEST_NAMES = {"sha256": "SHA-256", "md5": "MD5"}


def _sha256(path: Path, digest: str = "sha256") -> str:
    h = hashlib.new(digest)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, dest: Path, sha256: str | None, timeout: float, *, fn: str = "mnist",
              digest: str = "sha256",
              offline: str = "mnist(path=FOLDER) with the four IDX files") -> None:
    """Fetch ``url`` into ``dest`` atomically: a temp file in the same folder, checked, renamed.

    ``sha256`` is the expected hex digest of the ``digest`` algorithm (``"md5"`` for CIFAR-10,
    whose publisher gives only that); ``fn`` and ``offline`` word the errors.
    """
    from jaxconv._io import atomic_open

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_open(dest, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as r:
            h = hashlib.new(digest)
            for chunk in iter(lambda: r.read(1 << 20), b""):
                h.update(chunk)
                f.write(chunk)
            if sha256 is not None and h.hexdigest() != sha256:  # raised inside: nothing renamed
                raise OSError(
                    f"{fn}: {_DIGEST_NAMES[digest]} mismatch for {url}: expected {sha256}, got "
                    f"{h.hexdigest()}; the download was discarded"
                )
    except OSError as e:
        if not str(e).startswith(f"{fn}:"):
            raise OSError(
                f"{fn}: could not download {url} ({e}); nothing was written. Pass "
                f"{offline} to work offline"
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


# ---------------------------------------------------------------------------------- CIFAR-10


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # published beside the archive (MD5 only)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = "test_batch"
_CIFAR_MAX_MEMBER = 64 << 20  # a real batch is 31 MB; a larger member is not CIFAR-10


class CIFARError(ValueError):
    """The CIFAR-10 archive or one of its batches is malformed; the message names the file."""


def _reconstruct_function():
    try:  # NumPy >= 2 (numpy.core is a deprecated alias there)
        module = importlib.import_module("numpy._core.multiarray")
    except ImportError:  # pragma: no cover - NumPy 1
        module = importlib.import_module("numpy.core.multiarray")
    return module._reconstruct


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays, nothing else.

    A CIFAR batch is a dict of bytes keys, lists of ints and bytes and one uint8 array. Pickle
    runs any function a file names; only NumPy's array reconstruction is allowed here (and
    ``_codecs.encode``, how Python 3 writes bytes in the protocol-2 pickles the archive uses),
    so a crafted archive cannot execute code.
    """

    _ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    })

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which is not allowed")
        if name == "_reconstruct":
            return _reconstruct_function()
        if module == "_codecs":
            return codecs.encode
        return getattr(np, name)


def _cifar_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 32, 32, 3) uint8, labels (N,) int32)`` from one pickled batch."""
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # any malformed pickle: one error naming the file
        raise CIFARError(f"cifar10: {where} is not a CIFAR-10 batch ({e})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise CIFARError(f"cifar10: {where} is not a CIFAR-10 batch: expected a dict with "
                         f"b'data' and b'labels'")
    data, labels = batch[b"data"], batch[b"labels"]
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3072):
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CIFARError(f"cifar10: {where}: b'data' must be uint8 of shape (N, 3072), got {got}")
    if not isinstance(labels, list | np.ndarray) or len(labels) != len(data) or not all(
            isinstance(v, int | np.integer) and 0 <= v <= 9 for v in labels):
        raise CIFARError(f"cifar10: {where}: b'labels' must be {len(data)} ints 0..9, one per "
                         f"image")
    # Each row is the red, green then blue 32x32 plane (CHW): to NHWC.
    images = data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(labels, np.int32)


def _cifar_members(archive: Path) -> dict[str, bytes]:
    """The six batches' bytes from the gzipped tar archive, by name."""
    wanted = {f"{_CIFAR_DIR}/{n}": n for n in (*_CIFAR_TRAIN, _CIFAR_TEST)}
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = wanted.get(member.name)
                if name is None:
                    continue
                if not member.isfile() or member.size > _CIFAR_MAX_MEMBER:
                    raise CIFARError(f"cifar10: {archive}: {member.name} is not a regular file "
                                     f"of at most {_CIFAR_MAX_MEMBER} bytes")
                f = tar.extractfile(member)  # a file object for a regular member
                out[name] = f.read() if f is not None else b""
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise CIFARError(f"cifar10: {archive} is not a readable CIFAR-10 archive (corrupt or "
                         f"truncated: {e})") from None
    missing = [n for n in wanted.values() if n not in out]
    if missing:
        raise CIFARError(f"cifar10: {archive} lacks {', '.join(f'{_CIFAR_DIR}/{n}' for n in missing)}")
    return out


def cifar10(
    path: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    url: str | None = None,
    md5: str | None = CIFAR10_MD5,
    download: bool = True,
    timeout: float = 60.0,
) -> Digits:
    """CIFAR-10 from its python archive, read from a folder or downloaded once into a cache.

    Args:
      path: the archive ``cifar-10-python.tar.gz`` itself, or a folder holding it.
        ``None`` uses the cache, downloading the archive when it is missing.
      cache_dir: the download cache; default ``$JAXCONV_CACHE_DIR`` or the user cache directory
        (``~/.cache/jaxconv`` on Linux) + ``cifar10``.
      url: where to download from; default ``$JAXCONV_CIFAR10_URL`` or :data:`CIFAR10_URL`.
      md5: the archive's expected MD5 (``None`` skips the check); default the published
        :data:`CIFAR10_MD5`. A cached archive is re-checked on every call and fetched again when
        it does not match.
      download: when ``False`` a missing cache raises ``FileNotFoundError`` instead.
      timeout: seconds per network operation.

    Returns:
      A train/test split (:class:`Digits`'s fields): 50,000 training and 10,000 test images
      **NHWC** ``(N, 32, 32, 3)`` float32 in ``[0, 1]`` (RGB) and int32 labels ``0..9``
      (:data:`CIFAR10_CLASSES` names them).

    Raises:
      CIFARError: a corrupt or truncated archive, a missing or malformed batch (names the file);
        batches are unpickled by a restricted unpickler that allows NumPy arrays and plain
        containers only.
      OSError: a download failed or its MD5 does not match; nothing is left behind (the archive
        is written to a temporary name and renamed only once verified).

    References:
      A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009;
      https://www.cs.toronto.edu/~kriz/cifar.html (the python version's format).
    """
    if path is not None:
        archive = Path(path)
        if archive.is_dir():
            archive = archive / CIFAR10_ARCHIVE
        if not archive.is_file():
            raise FileNotFoundError(f"cifar10: {path} is neither {CIFAR10_ARCHIVE} nor a folder "
                                    "holding it")
    else:
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "cifar10"
        archive = folder / CIFAR10_ARCHIVE
        cached = archive.is_file() and (md5 is None or _sha256(archive, "md5") == md5)
        if not cached and download:
            _download(url or os.environ.get("JAXCONV_CIFAR10_URL") or CIFAR10_URL, archive, md5,
                      timeout, fn="cifar10", digest="md5",
                      offline=f"cifar10(path=...) with {CIFAR10_ARCHIVE}")
        elif not archive.is_file():
            raise FileNotFoundError(f"cifar10: no {CIFAR10_ARCHIVE} in {folder} and download=False")
    members = _cifar_members(archive)
    where = f"{archive}: {_CIFAR_DIR}/"
    train = [_cifar_batch(members[n], where + n) for n in _CIFAR_TRAIN]
    x_test, y_test = _cifar_batch(members[_CIFAR_TEST], where + _CIFAR_TEST)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return Digits(x_train.astype(np.float32) / 255, y_train, x_test.astype(np.float32) / 255, y_test)
