"""Digits and MNIST loaders: the digits split, IDX parsing (good and corrupt files), downloads."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from jaxconv.data import IDXError, mnist, read_idx
from jaxconv.data import digits as digits_fn

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
          np.float64: 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX encoding written independently of the reader: header, big-endian data."""
    arr = np.asarray(arr)
    header = bytes([0, 0, _CODES[arr.dtype.type], arr.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray, *, gz: bool = False) -> Path:
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def fake_mnist(folder: Path, *, n_train=5, n_test=3, gz=True, seed=0) -> dict[str, np.ndarray]:
    """Four small MNIST-like IDX files; returns the arrays by file stem."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in arrays.items():
        write_idx(folder / (stem + (".gz" if gz else "")), arr, gz=gz)
    return arrays


# ------------------------------------------------------------------------------------ digits


@pytest.fixture(scope="module")
def digits_data():
    pytest.importorskip("sklearn")
    return digits_fn()


def test_digits_shapes_and_split(digits_data):
    x_train, y_train, x_test, y_test = digits_data
    assert x_train.shape == (1437, 32, 32, 1) and x_test.shape == (360, 32, 32, 1)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    # LeNet's normalization: background -0.1, full ink 1.175.
    assert x_train.min() == pytest.approx(-0.1) and x_train.max() == pytest.approx(1.175)
    # Stratified: every class holds 20% of its images, within rounding.
    from sklearn.datasets import load_digits

    counts = np.bincount(load_digits().target, minlength=10)
    np.testing.assert_allclose(np.bincount(y_test, minlength=10), counts * 360 / 1797, atol=1)


def test_digits_split_is_fixed(digits_data):
    again = digits_fn()
    for a, b in zip(digits_data, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_digits_is_4x_nearest_upsampling(digits_data):
    from sklearn.datasets import load_digits

    x = digits_data.x_train[..., 0]
    blocks = x.reshape(-1, 8, 4, 8, 4)
    assert np.all(blocks == blocks[:, :, :1, :, :1])  # each 4x4 block is one 8x8 pixel
    small = blocks[:, :, 0, :, 0]
    ink = (small + 0.1) / 1.275 * 16
    assert np.allclose(ink, np.round(ink), atol=1e-4)
    assert {tuple(a.ravel()) for a in np.round(ink[:50]).astype(int)} <= {
        tuple(a.ravel()) for a in load_digits().images.astype(int)
    }


def test_digits_missing_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'jaxconv\[data\]'"):
        digits_fn()


# --------------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "arr",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-3, 0, 7], dtype=np.int8),
        np.array([[1, -2], [300, -32768]], dtype=np.int16),
        np.array([1, 2**31 - 1, -(2**31)], dtype=np.int32),
        np.array([[0.5, -1.25]], dtype=np.float32),
        np.array([np.pi], dtype=np.float64),
    ],
    ids=lambda a: getattr(a, "dtype", "").__str__(),
)
def test_read_idx_round_trip(tmp_path, arr, gz):
    path = write_idx(tmp_path / "a.idx", arr, gz=gz)
    out = read_idx(path)
    assert out.shape == arr.shape and out.dtype == arr.dtype
    np.testing.assert_array_equal(out, arr)


def test_read_idx_empty_array(tmp_path):
    out = read_idx(write_idx(tmp_path / "e", np.zeros((0, 28, 28), np.uint8)))
    assert out.shape == (0, 28, 28)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: b"\x01\x02" + b[2:], r"bad magic number 0x0102"),
        (lambda b: b[:2] + b"\x07" + b[3:], r"unknown type byte 0x07"),
        (lambda b: b[:3], r"truncated: 3 bytes"),
        (lambda b: b[:10], r"truncated header: 3 dimensions need 16 bytes"),
        (lambda b: b[:-5], r"truncated: shape \(2, 3, 4\) of uint8 needs 24 data bytes, the file has 19"),
        (lambda b: b + b"\x00\x00", r"2 trailing bytes .* counts disagree"),
    ],
    ids=["bad-magic", "bad-type", "tiny", "short-header", "truncated-data", "trailing"],
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_corrupt_files_name_the_file(tmp_path, mutate, match, gz):
    data = mutate(idx_bytes(np.zeros((2, 3, 4), np.uint8)))
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(IDXError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_truncated_gzip(tmp_path):
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8)))[:40])
    with pytest.raises(IDXError, match=r"t\.gz: corrupt or truncated gzip"):
        read_idx(path)


def test_idx_error_is_a_value_error():
    assert issubclass(IDXError, ValueError)


# ------------------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_folder(tmp_path, gz):
    arrays = fake_mnist(tmp_path, gz=gz)
    d = mnist(tmp_path)
    assert d.x_train.shape == (5, 32, 32, 1) and d.x_test.shape == (3, 32, 32, 1)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    np.testing.assert_array_equal(d.y_train, arrays["train-labels-idx1-ubyte"])
    # 28x28 centred in 32x32: 2 pixels of background (-0.1) on every side.
    assert np.all(d.x_train[:, :2] == np.float32(-0.1)) and np.all(d.x_train[:, :, -2:] == np.float32(-0.1))
    inner = d.x_test[:, 2:30, 2:30, 0]
    np.testing.assert_allclose(inner, -0.1 + 1.275 * arrays["t10k-images-idx3-ubyte"] / 255, atol=1e-6)


def test_mnist_counts_disagree(tmp_path):
    fake_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(IDXError, match=r"counts disagree: .*train-images-idx3-ubyte has 5 images "
                                         r"but .*train-labels-idx1-ubyte has 4 labels"):
        mnist(tmp_path)


def test_mnist_wrong_image_shape(tmp_path):
    fake_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 27, 28), np.uint8))
    with pytest.raises(IDXError, match=r"t10k-images-idx3-ubyte: expected uint8 images of shape \(N, 28, 28\)"):
        mnist(tmp_path)


def test_mnist_missing_file(tmp_path):
    fake_mnist(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"neither t10k-labels-idx1-ubyte\.gz nor"):
        mnist(tmp_path)


class _Server:
    """A static file server on 127.0.0.1 in a thread, counting the requests it answers."""

    def __init__(self, root: Path):
        self.requests: list[str] = []
        log = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                log.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def served(tmp_path):
    arrays = fake_mnist(tmp_path / "www" / "mnist", gz=True)
    sums = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (tmp_path / "www" / "mnist").iterdir()
    }
    with _Server(tmp_path / "www") as server:
        yield server, sums, arrays


def test_mnist_download_checks_sha256_and_caches(tmp_path, served):
    server, sums, arrays = served
    cache = tmp_path / "cache"
    d = mnist(cache_dir=cache, url=server.url, checksums=sums)
    np.testing.assert_array_equal(d.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert sorted(p.name for p in cache.iterdir()) == sorted(sums)
    assert len(server.requests) == 4
    mnist(cache_dir=cache, url=server.url, checksums=sums)  # cached and verified: no new request
    assert len(server.requests) == 4


def test_mnist_download_mismatch_leaves_nothing(tmp_path, served):
    server, sums, _ = served
    cache = tmp_path / "cache"
    bad = dict(sums, **{"train-labels-idx1-ubyte.gz": "0" * 64})
    with pytest.raises(OSError, match=r"SHA-256 mismatch for http://127\.0\.0\.1:\d+/mnist/"
                                      r"train-labels-idx1-ubyte\.gz: expected 0{64}, got [0-9a-f]{64}"):
        mnist(cache_dir=cache, url=server.url, checksums=bad)
    # The file before it was verified and kept; the mismatching one left no trace, no temp file.
    assert sorted(p.name for p in cache.iterdir()) == ["train-images-idx3-ubyte.gz"]


def test_mnist_download_failure_leaves_nothing(tmp_path, served):
    server, sums, _ = served
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match=r"could not download .*/nothing-here/train-images-idx3-ubyte"
                                      r"\.gz .*nothing was written"):
        mnist(cache_dir=cache, url=server.url.replace("mnist", "nothing-here"), checksums=sums)
    assert list(cache.iterdir()) == []


def test_mnist_corrupt_cache_is_fetched_again(tmp_path, served):
    server, sums, _ = served
    cache = tmp_path / "cache"
    mnist(cache_dir=cache, url=server.url, checksums=sums)
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    mnist(cache_dir=cache, url=server.url, checksums=sums)
    assert server.requests[-1].endswith("t10k-labels-idx1-ubyte.gz") and len(server.requests) == 5


def test_mnist_no_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"neither train-images-idx3-ubyte\.gz"):
        mnist(cache_dir=tmp_path / "empty", download=False)


def test_published_checksums_are_well_formed():
    from jaxconv.data.datasets import MNIST_FILES, MNIST_SHA256

    assert set(MNIST_SHA256) == set(MNIST_FILES.values())
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in MNIST_SHA256.values())
