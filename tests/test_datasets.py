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


# ---------------------------------------------------------------------------------- CIFAR-10


def fake_cifar10(folder: Path, *, n=4, seed=0, batches=None, protocol=2) -> tuple[Path, dict]:
    """A small ``cifar-10-python.tar.gz`` in the published format: six pickled dicts with
    b"data" uint8 (N, 3072) rows of R, G, B 32x32 planes and b"labels" lists; returns the path
    and the batches."""
    import io
    import pickle
    import tarfile

    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if batches is None:
        batches = {name: {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
                          b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                          b"filenames": [b"x.png"] * n} for name in names}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, batch in batches.items():
            raw = batch if isinstance(batch, bytes) else pickle.dumps(batch, protocol=protocol)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path, batches


@pytest.mark.parametrize("protocol", [2, 4])  # the archive's, and a modern one
def test_cifar10_from_folder_or_archive_is_nhwc_in_unit_range(tmp_path, protocol):
    from jaxconv.data import cifar10

    path, batches = fake_cifar10(tmp_path, protocol=protocol)
    d = cifar10(tmp_path)
    assert d.x_train.shape == (20, 32, 32, 3) and d.x_test.shape == (4, 32, 32, 3)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    # pixel (row 5, column 7) of image 2 in batch 3: red at 5*32+7, green 1024 later, blue 2048
    row = batches["data_batch_3"][b"data"][2]
    np.testing.assert_array_equal(d.x_train[4 + 4 + 2, 5, 7] * 255, row[[167, 1024 + 167, 2048 + 167]])
    np.testing.assert_array_equal(d.y_test, batches["test_batch"][b"labels"])
    np.testing.assert_array_equal(d.y_train, np.concatenate([batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)]))
    np.testing.assert_array_equal(cifar10(path).x_test, d.x_test)
    assert d.x_train.min() >= 0 and d.x_train.max() <= 1


@pytest.mark.parametrize(("mutate", "match"), [
    (lambda b: dict(b, data_batch_2=b"not a pickle"), r"data_batch_2 is not a CIFAR-10 batch"),
    (lambda b: dict(b, test_batch={b"labels": [1]}), r"test_batch is not a CIFAR-10 batch: expected a dict"),
    (lambda b: dict(b, test_batch={b"data": np.zeros((4, 3072), np.float32), b"labels": [0] * 4}),
     r"test_batch: b'data' must be uint8 of shape \(N, 3072\), got float32 \(4, 3072\)"),
    (lambda b: dict(b, test_batch={b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2]}),
     r"test_batch: b'labels' must be 4 ints 0..9"),
    (lambda b: dict(b, test_batch={b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}),
     r"b'labels' must be 1 ints 0..9"),
    (lambda b: {k: v for k, v in b.items() if k != "data_batch_5"}, r"lacks cifar-10-batches-py/data_batch_5"),
])
def test_cifar10_malformed_batches_name_the_file(tmp_path, mutate, match):
    from jaxconv.data import CIFARError, cifar10

    _, batches = fake_cifar10(tmp_path / "good")
    fake_cifar10(tmp_path / "bad", batches=mutate(batches))
    with pytest.raises(CIFARError, match=r"cifar10: .*bad/cifar-10-python\.tar\.gz.*" + match):
        cifar10(tmp_path / "bad")


def test_cifar10_refuses_pickles_that_run_code(tmp_path):
    import pickle

    from jaxconv.data import CIFARError, cifar10

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    _, batches = fake_cifar10(tmp_path / "good")
    fake_cifar10(tmp_path / "bad", batches=dict(batches, test_batch=pickle.dumps(Evil(), protocol=2)))
    with pytest.raises(CIFARError, match=r"test_batch is not a CIFAR-10 batch \(it refers to (__builtin__|builtins)\.print, which is "
                                         r"not allowed"):
        cifar10(tmp_path / "bad")


def test_cifar10_corrupt_or_missing_archive(tmp_path):
    from jaxconv.data import CIFARError, cifar10

    path, _ = fake_cifar10(tmp_path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CIFARError, match=r"cifar10: .*cifar-10-python\.tar\.gz is not a readable CIFAR-10 "
                                         r"archive \(corrupt or truncated"):
        cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"cifar10: .*empty is neither cifar-10-python\.tar\.gz nor a folder"):
        cifar10(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"cifar10: no cifar-10-python\.tar\.gz in .* and download=False"):
        cifar10(cache_dir=tmp_path / "cache", download=False)


@pytest.fixture
def served_cifar(tmp_path):
    path, batches = fake_cifar10(tmp_path / "www" / "mnist")  # the server's folder
    with _Server(tmp_path / "www") as server:
        yield server.url + path.name, hashlib.md5(path.read_bytes()).hexdigest(), server, batches


def test_cifar10_download_checks_md5_and_caches(tmp_path, served_cifar):
    from jaxconv.data import cifar10

    url, md5, server, batches = served_cifar
    cache = tmp_path / "cache"
    d = cifar10(cache_dir=cache, url=url, md5=md5)
    np.testing.assert_array_equal(d.y_test, batches["test_batch"][b"labels"])
    assert [p.name for p in cache.iterdir()] == ["cifar-10-python.tar.gz"]
    cifar10(cache_dir=cache, url=url, md5=md5)  # cached and verified: no new request
    assert len(server.requests) == 1
    (cache / "cifar-10-python.tar.gz").write_bytes(b"garbage")  # corrupt cache: fetched again
    cifar10(cache_dir=cache, url=url, md5=md5)
    assert len(server.requests) == 2


def test_cifar10_failed_download_leaves_nothing(tmp_path, served_cifar):
    from jaxconv.data import cifar10

    url, md5, _, _ = served_cifar
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match=r"cifar10: MD5 mismatch for http://127\.0\.0\.1:\d+/.*: expected 0{32}, "
                                      r"got [0-9a-f]{32}; the download was discarded"):
        cifar10(cache_dir=cache, url=url, md5="0" * 32)
    assert list(cache.iterdir()) == []
    with pytest.raises(OSError, match=r"cifar10: could not download .*nothing-here.* nothing was written\. "
                                      r"Pass cifar10\(path=\.\.\.\)"):
        cifar10(cache_dir=cache, url=url.replace("mnist", "nothing-here"), md5=md5)
    assert list(cache.iterdir()) == []


def test_cifar10_published_checksum_is_well_formed():
    from jaxconv.data.datasets import CIFAR10_MD5, CIFAR10_URL

    assert len(CIFAR10_MD5) == 32 and int(CIFAR10_MD5, 16) >= 0
    assert CIFAR10_URL.startswith("https://") and CIFAR10_URL.endswith("/cifar-10-python.tar.gz")
