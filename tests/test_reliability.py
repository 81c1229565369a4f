"""Reliability: atomic writes, hostile inputs (checkpoints, IDX files, images, specs), CLI errors."""

from __future__ import annotations

import gzip
import json
import os
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest

from jaxconv import _io

ROOT = pathlib.Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ atomic writes


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    _io.atomic_write(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"precious")

    def writer(f):
        f.write(b"half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _io.atomic_write(target, writer)
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_atomic_write_cleans_stale_temporaries_of_dead_processes(tmp_path):
    target = tmp_path / "m.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".m.json.{pid}.{'a' * 32}.part"
    stale.write_text("{")
    other = tmp_path / f".other.json.{pid}.{'b' * 32}.part"  # another target's: not ours to clean
    other.write_text("{")
    _io.atomic_write(target, "{}")
    assert not stale.exists() and other.exists()


def test_check_output_rejects_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"cat\.bmp.*unsupported image format"):
        _io.check_output(tmp_path / "cat.bmp", "show", image=True)
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        _io.check_output(tmp_path, "show")
    ro = tmp_path / "ro.png"
    ro.write_bytes(b"x")
    ro.chmod(0o444)
    with pytest.raises(PermissionError, match=r"ro\.png.*read-only"):
        _io.check_output(ro, "show", image=True)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        _io.check_output(tmp_path / "nope" / "x.png", "show")
    assert _io.check_output(tmp_path / "new" / "x.png", "f", make_parents=True).parent.is_dir()


def test_available_memory_is_a_positive_int_or_none():
    m = _io.available_memory()
    assert m is None or (isinstance(m, int) and m > 0)


# ------------------------------------------------------------------------------ models


@pytest.mark.parametrize("variant", ["modern", "classic"])
def test_lenet_on_an_empty_batch_gives_empty_outputs(variant):
    import jax.numpy as jnp

    from jaxconv.models import LeNet5

    model = LeNet5(4, variant=variant, rngs=0)  # algorithm "auto": selection never sees N=0
    assert model(jnp.zeros((0, 32, 32, 1))).shape == (0, 4)
    feats = model.features(jnp.zeros((0, 32, 32, 1)))
    full = model.features(jnp.zeros((1, 32, 32, 1)))
    assert list(feats) == list(full)
    assert all(feats[k].shape == (0, *full[k].shape[1:]) for k in full)


def test_param_shapes_match_the_models():
    import jax
    from flax import nnx

    from jaxconv.models import LeNet5
    from jaxconv.models.lenet import param_shapes

    for model in (LeNet5(7, rngs=0), LeNet5.classic(3, rngs=0)):
        got = jax.tree.map(lambda a: tuple(a.shape), nnx.to_pure_dict(nnx.state(model, nnx.Param)))
        assert got == param_shapes(model.variant, model.num_classes)


def _checkpoint_payload(tmp_path):
    """A valid payload (as a dict) and a writer for crafted variants of it."""
    from flax import serialization

    from jaxconv.models import LeNet5, save_checkpoint

    good = save_checkpoint(tmp_path / "good.msgpack", LeNet5(rngs=0), extra={"epoch": 1})
    payload = serialization.msgpack_restore(good.read_bytes())

    def write(name, p):
        path = tmp_path / name
        path.write_bytes(serialization.msgpack_serialize(p))
        return path

    return payload, write


def test_crafted_checkpoint_is_rejected_before_building_a_model(tmp_path, monkeypatch):
    import jaxconv.models.checkpoint as ck
    from jaxconv.models import CheckpointError, load_checkpoint

    payload, write = _checkpoint_payload(tmp_path)
    huge = write("huge.msgpack", {**payload, "num_classes": 10**7})

    def no_model(*a, **k):
        raise AssertionError("a model was built before the shapes were checked")

    monkeypatch.setattr(ck, "LeNet5", no_model)
    with pytest.raises(CheckpointError, match=r"huge\.msgpack"):
        load_checkpoint(huge)
    fc3 = {**payload["params"]["fc3"], "kernel": np.zeros((84, 10**4), np.float32)[:, :3]}
    bad_shape = write("shape.msgpack", {**payload, "params": {**payload["params"], "fc3": fc3}})
    with pytest.raises(CheckpointError, match=r"shape\.msgpack: the stored parameters do not fit"):
        load_checkpoint(bad_shape)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"variant": None}, "no 'variant' entry"),
        ({"params": None}, "no 'params' entry"),
        ({"variant": 3}, "variant must be one of"),
        ({"num_classes": "10"}, "num_classes must be an int"),
        ({"num_classes": True}, "num_classes must be an int"),
        ({"params": [1, 2]}, "params must be a dict of arrays"),
        ({"params": {"conv1": "x"}}, "params/conv1 must be a numeric array"),
        ({"extra": "{not json"}, "extra must be a JSON object"),
        ({"extra": "[1, 2]"}, "extra must be a JSON object"),
        ({"extra": 5}, "extra must be a JSON object"),
        ({"opt_state": [1]}, "opt_state must map"),
    ],
)
def test_checkpoint_schema_errors_name_the_file(tmp_path, change, message):
    from jaxconv.models import CheckpointError, check_checkpoint, load_checkpoint

    payload, write = _checkpoint_payload(tmp_path)
    p = {k: v for k, v in {**payload, **change}.items() if v is not None}
    path = write("crafted.msgpack", p)
    for fn in (load_checkpoint, check_checkpoint):
        with pytest.raises(CheckpointError, match=r"crafted\.msgpack") as info:
            fn(path)
        assert message in str(info.value)


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    from jaxconv.models import CheckpointError, load_checkpoint

    with pytest.raises(CheckpointError, match=r"cannot read '.*missing\.msgpack'"):
        load_checkpoint(tmp_path / "missing.msgpack")


def test_save_checkpoint_failure_keeps_the_old_one_and_leaves_no_part(tmp_path):
    from jaxconv.models import LeNet5, load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "c.msgpack", LeNet5(rngs=0), extra={"epoch": 1})
    before = path.read_bytes()
    with pytest.raises(TypeError, match="JSON-serializable"):
        save_checkpoint(path, LeNet5(rngs=1), extra={"bad": object()})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.msgpack"]
    assert load_checkpoint(path)[1]["extra"] == {"epoch": 1}


# ------------------------------------------------------------------------------ IDX files


def _idx_header(shape, kind=0x08):
    return bytes([0, 0, kind, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_huge_header_is_a_clear_error(tmp_path, gz):
    from jaxconv.data import IDXError, read_idx

    data = _idx_header((2**31, 2**31, 4)) + b"\0" * 16
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(IDXError, match=rf"huge-idx3-ubyte: truncated: .*needs {2**64} data bytes"):
        read_idx(path)


def test_idx_gzip_bomb_stops_at_the_declared_size(tmp_path, monkeypatch):
    import gzip as gzip_module

    from jaxconv.data import IDXError, read_idx

    path = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip_module.open(path, "wb", compresslevel=9) as f:
        f.write(_idx_header((2, 3, 4)))
        zeros = b"\0" * (1 << 20)
        for _ in range(64):  # 64 MB of zeros, 64 kB compressed
            f.write(zeros)
    read = []
    real_read = gzip_module.GzipFile.read

    def counting_read(self, size=-1):
        out = real_read(self, size)
        read.append(len(out))
        return out

    monkeypatch.setattr(gzip_module.GzipFile, "read", counting_read)
    with pytest.raises(IDXError, match=r"bomb-idx3-ubyte\.gz: over \d+ trailing bytes.*disagree"):
        read_idx(path)
    assert sum(read) <= 2 << 20  # the declared 24 bytes and at most one chunk more, not 64 MB


# ------------------------------------------------------------------------------ images


def _peak_bytes(fn):
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_load_image_converts_straight_to_float32(tmp_path, rng, mode):
    from PIL import Image

    from jaxconv.data import load_image

    path = tmp_path / "big.png"
    Image.fromarray(rng.integers(0, 256, (1000, 800, 3), dtype=np.uint8)).save(path)
    out = load_image(path, mode=mode)
    assert out.dtype == np.float32
    peak = _peak_bytes(lambda: load_image(path, mode=mode))
    rgb32 = 1000 * 800 * 3 * 4
    assert peak < 1.6 * rgb32, peak  # no float64 copy (that alone is 2x)
    ref = np.asarray(Image.open(path).convert("RGB"), np.float64) / 255
    if mode == "L":
        ref = (ref @ np.array([0.299, 0.587, 0.114]))[..., None]
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_load_image_max_side_only_shrinks(tmp_path):
    from PIL import Image

    from jaxconv.data import load_image

    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(path)
    assert load_image(path, max_side=30).shape == (20, 30, 3)
    assert load_image(path, max_side=100).shape == (40, 60, 3)
    with pytest.raises(ValueError, match="max_side must be None or an int >= 1, got 0"):
        load_image(path, max_side=0)


# ------------------------------------------------------------------------------ jaxconv show


def _image(path, shape=(20, 30, 3)):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def _run_cli(argv, capsys):
    from jaxconv import cli

    rc = cli.main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _one_line(err, *needles):
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_show_unsupported_out_format_keeps_the_input(tmp_path, capsys, monkeypatch):
    from PIL import Image

    import jaxconv.data

    src = tmp_path / "cat.bmp"
    Image.fromarray(np.full((20, 30, 3), 7, np.uint8)).save(src)
    before = src.read_bytes()
    calls = []
    real = jaxconv.data.load_image
    monkeypatch.setattr(jaxconv.data, "load_image", lambda *a, **k: calls.append(a) or real(*a, **k))
    rc, _, err = _run_cli(["show", str(src), "--layers", "relu", "--out", str(src)], capsys)
    assert rc == 2
    _one_line(err, "jaxconv show: ", "cat.bmp", "unsupported image format")
    assert src.read_bytes() == before
    assert not calls  # rejected before any work
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.bmp"]


def test_show_failed_write_keeps_the_existing_out(tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure

    src = _image(tmp_path / "in.png")
    out = tmp_path / "out.png"
    out.write_bytes(b"previous figure")

    def broken(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", broken)
    rc, _, err = _run_cli(["show", str(src), "--layers", "relu", "--out", str(out)], capsys)
    assert rc == 1
    _one_line(err, "cannot write", "out.png", "No space left on device")
    assert out.read_bytes() == b"previous figure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]


@pytest.mark.parametrize("kind", ["folder", "read-only"])
def test_show_unwritable_out_is_one_line(tmp_path, capsys, kind):
    src = _image(tmp_path / "in.png")
    out = tmp_path / "out.png"
    if kind == "folder":
        out.mkdir()
    else:
        out.write_bytes(b"keep")
        out.chmod(0o444)
    rc, _, err = _run_cli(["show", str(src), "--layers", "relu", "--out", str(out)], capsys)
    assert rc == 1
    _one_line(err, "out.png", "folder" if kind == "folder" else "read-only")
    if kind == "read-only":
        assert out.read_bytes() == b"keep"


def test_show_too_many_filters_is_a_spec_error(tmp_path, capsys):
    src = _image(tmp_path / "in.png")
    rc, _, err = _run_cli(["show", str(src), "--layers", "conv3x3:100000", "--out",
                           str(tmp_path / "o.png")], capsys)
    assert rc == 2
    _one_line(err, "conv3x3:100000", "filters must be <= 4096, got 100000")


def test_show_checks_memory_before_allocating(tmp_path, capsys, monkeypatch):
    from jaxconv import _io, layers

    src = _image(tmp_path / "in.png")
    monkeypatch.setattr(_io, "available_memory", lambda: 10 * 2**20)  # 10 MiB
    applied = []
    real_build = layers.build

    def spy_build(spec, **kw):
        init, apply = real_build(spec, **kw)
        return init, lambda *a: applied.append(1) or apply(*a)

    monkeypatch.setattr(layers, "build", spy_build)
    rc, _, err = _run_cli(["show", str(src), "--layers", "conv3x3:4000", "--out",
                           str(tmp_path / "o.png")], capsys)
    assert rc == 1 and not applied
    _one_line(err, "needs about", "GiB", "available", "fewer filters or a smaller --size")
    assert layers.memory_estimate("conv3x3:2,maxpool2", (20, 30, 3)) == 4 * (
        20 * 30 * 3 + 18 * 28 * 2 + 9 * 14 * 2)


def test_show_decodes_the_image_once(tmp_path, capsys, monkeypatch):
    import jaxconv.data

    src = _image(tmp_path / "in.png", (60, 90, 3))
    calls = []
    real = jaxconv.data.load_image

    def spy(*a, **k):
        calls.append((a, k))
        return real(*a, **k)

    monkeypatch.setattr(jaxconv.data, "load_image", spy)
    rc, out, _ = _run_cli(["show", str(src), "--layers", "relu", "--size", "30", "--out",
                           str(tmp_path / "o.png")], capsys)
    assert rc == 0 and len(calls) == 1
    assert "20×30×3" in out


# ------------------------------------------------------------------------------ jaxconv train


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--epochs", "0"], ["--epochs must be a positive int, got 0"]),
        (["--batch-size", "-3"], ["--batch-size must be a positive int, got -3"]),
        (["--lr", "nan"], ["--lr must be > 0, got nan"]),
        (["--algorithm", "bogus"], ["--algorithm must be 'auto' or one of", "'bogus'"]),
        (["--resume"], ["--resume needs --out DIR"]),
    ],
)
def test_train_usage_errors_are_one_line_exit_2(capsys, monkeypatch, args, needles):
    import jaxconv.models.train as train_module

    monkeypatch.setattr(train_module, "_load_data", lambda *a: pytest.fail("data was loaded"))
    rc, _, err = _run_cli(["train", "--no-progress", *args], capsys)
    assert rc == 2
    _one_line(err, "jaxconv train: ", *needles)


def test_train_resume_from_a_corrupt_checkpoint_is_one_line(tmp_path, capsys, monkeypatch):
    import jaxconv.models.train as train_module

    monkeypatch.setattr(train_module, "_load_data", lambda *a: pytest.fail("data was loaded"))
    (tmp_path / "checkpoint.msgpack").write_bytes(b"\x93garbage")
    rc, _, err = _run_cli(["train", "--no-progress", "--out", str(tmp_path), "--resume"], capsys)
    assert rc == 1
    _one_line(err, "jaxconv train: ", "checkpoint.msgpack")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.msgpack"]


def test_train_resume_checks_the_training_state(tmp_path, capsys, monkeypatch):
    import jaxconv.models.train as train_module
    from jaxconv.models import LeNet5, save_checkpoint

    monkeypatch.setattr(train_module, "_load_data", lambda *a: pytest.fail("data was loaded"))
    save_checkpoint(tmp_path / "checkpoint.msgpack", LeNet5(rngs=0), extra={"epoch": "three"})
    rc, _, err = _run_cli(["train", "--no-progress", "--out", str(tmp_path), "--resume"], capsys)
    assert rc == 1
    _one_line(err, "checkpoint.msgpack", "'epoch' must be an int")


def test_train_bad_idx_files_are_one_line(tmp_path, capsys):
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(_idx_header((2**31, 2**31)))
    rc, _, err = _run_cli(["train", "--data", "mnist", "--mnist-dir", str(tmp_path),
                           "--no-progress"], capsys)
    assert rc == 1
    _one_line(err, "jaxconv train: ", "train-images-idx3-ubyte", "truncated")


def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    from jaxconv import cli
    from jaxconv.models import CheckpointError

    (tmp_path / "checkpoint.msgpack").write_bytes(b"\x93garbage")
    argv = ["train", "--no-progress", "--out", str(tmp_path), "--resume"]
    with pytest.raises(CheckpointError):
        cli.main(["--debug", *argv])
    assert not cli.debug()  # --debug does not outlive the call
    monkeypatch.setenv("JAXCONV_DEBUG", "1")
    with pytest.raises(CheckpointError):
        cli.main(argv)


def test_debug_through_python_m(tmp_path):
    (tmp_path / "checkpoint.msgpack").write_bytes(b"\x93garbage")
    argv = ["train", "--no-progress", "--out", str(tmp_path), "--resume"]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAXCONV_DEBUG", None)
    plain = subprocess.run([sys.executable, "-m", "jaxconv", *argv], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines()[-1].startswith("jaxconv train: ")
    loud = subprocess.run([sys.executable, "-m", "jaxconv", "--debug", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "CheckpointError" in loud.stderr


def test_train_kill_while_writing_metrics_keeps_the_previous_file(tmp_path, monkeypatch):
    if not pathlib.Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd")
    from jaxconv.models.train import train

    rng = np.random.default_rng(0)
    data = (rng.normal(size=(64, 32, 32, 1)).astype(np.float32), np.arange(64) % 10,
            rng.normal(size=(16, 32, 32, 1)).astype(np.float32), np.arange(16) % 10)
    (tmp_path / "metrics.json").write_text('{"previous": true}\n')
    real_fsync = os.fsync

    def fsync(fd):
        if "metrics.json" in os.readlink(f"/proc/self/fd/{fd}"):
            raise KeyboardInterrupt  # killed after the data, before the rename
        return real_fsync(fd)

    monkeypatch.setattr(_io.os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        train(data=data, epochs=1, batch_size=32, out=tmp_path, progress=False, devices=1,
              augment=False)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"previous": True}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.msgpack", "confusion_matrix.png", "metrics.json", "training_curves.png"]


def test_save_checkpoint_removes_part_files_of_killed_writers(tmp_path):
    from jaxconv.models import LeNet5, save_checkpoint

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".checkpoint.msgpack.{int(dead.stdout)}.{'c' * 32}.part"
    stale.write_bytes(b"half a checkpoint")
    save_checkpoint(tmp_path / "checkpoint.msgpack", LeNet5(rngs=0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.msgpack"]


def test_atomic_write_keeps_the_permissions_of_the_replaced_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    target.chmod(0o600)
    _io.atomic_write(target, "new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o600
