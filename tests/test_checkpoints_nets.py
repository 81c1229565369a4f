"""Checkpoints of every model (format ``jaxconv.checkpoint/2``): ResNet-18 and MobileNetV2 with
their BatchNorm statistics, resuming their training, mismatches, and LeNet-5's first format."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("optax")
import optax
from flax import nnx, serialization

from jaxconv.models import (
    CheckpointError,
    LeNet5,
    MobileNetV2,
    ResNet,
    check_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from jaxconv.models.checkpoint import FORMAT, LENET5_FORMAT

_NETS = {
    "resnet18": lambda: ResNet.resnet18(7, width=2, in_channels=1, algorithm="direct", rngs=1),
    "mobilenetv2": lambda: MobileNetV2(7, width=0.25, in_channels=1, algorithm="direct", rngs=2),
}


def _net(name):
    """A tiny ResNet-18 or the narrowest MobileNetV2 on 1-channel images, 7 classes (only the
    one asked for is built: initializing a network runs every layer's initializer eagerly)."""
    return _NETS[name]()


def _images(n=4, size=8, seed=0):
    return np.random.default_rng(seed).normal(0.5, 1.0, (n, size, size, 1)).astype(np.float32)


# One compilation per model structure (eager BatchNorm nets compile op by op: seconds).
_predict = nnx.jit(lambda model, x: model(x))


def _pure(model, kind):
    return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, kind)))


def _assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2"])
def test_round_trip_keeps_params_batch_stats_and_predictions(tmp_path, name):
    model = _net(name)
    stats = nnx.state(model, nnx.BatchStat)  # running statistics as training leaves them
    rng = np.random.default_rng(1)
    nnx.update(model, jax.tree.map(lambda a: rng.uniform(0.5, 2.0, a.shape).astype(a.dtype), stats))
    tx = optax.adam(1e-3)
    opt_state = tx.init(nnx.state(model, nnx.Param))
    path = save_checkpoint(tmp_path / f"{name}.msgpack", model, opt_state=opt_state,
                           extra={"epoch": 4})

    payload = serialization.msgpack_restore(path.read_bytes())
    assert payload["format"] == FORMAT == "jaxconv.checkpoint/2"
    assert (payload["model"], payload["num_classes"], payload["in_channels"]) == (name, 7, 1)
    assert payload["width"] == model.width
    assert check_checkpoint(path, model=name, width=model.width) == {"epoch": 4}

    restored, info = load_checkpoint(path, model=name, opt_state=opt_state, algorithm="direct")
    assert type(restored) is type(model) and restored.width == model.width
    assert (restored.num_classes, restored.in_channels) == (7, 1)
    assert info["extra"] == {"epoch": 4}
    _assert_trees_equal(_pure(restored, nnx.Param), _pure(model, nnx.Param))
    stats = _pure(model, nnx.BatchStat)
    assert not any(np.all(s == 0) or np.all(s == 1) for s in jax.tree.leaves(stats))  # not fresh
    _assert_trees_equal(_pure(restored, nnx.BatchStat), stats)
    _assert_trees_equal(info["opt_state"], opt_state)
    # Returned in evaluation mode: BatchNorm on the restored running statistics.
    assert restored.stem.bn.use_running_average
    model.eval()
    x = _images(seed=3)
    np.testing.assert_array_equal(np.asarray(_predict(restored, x)),
                                  np.asarray(_predict(model, x)))
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.msgpack"]  # atomic: no .part left


def _digits():
    """A tiny slice of the digits (32x32x1, as train() feeds LeNet-5 and the larger nets)."""
    pytest.importorskip("sklearn")
    from jaxconv.data import digits

    d = digits()
    return d.x_train[:32], d.y_train[:32], d.x_test[:16], d.y_test[:16]


@pytest.mark.parametrize(("name", "width"), [
    ("resnet18", 2),
    pytest.param("mobilenetv2", 0.25, marks=pytest.mark.slow),  # ~30 s: compiling its step
])
def test_train_writes_and_resumes_a_checkpoint(tmp_path, monkeypatch, name, width):
    import jaxconv.models.train as train_module
    from jaxconv.models.train import train

    monkeypatch.setattr(train_module, "_plots", lambda *a: [])  # matplotlib: not the point here
    data = _digits()
    kwargs = dict(data=data, model=name, width=width, batch_size=16, out=tmp_path, seed=3,
                  progress=False, devices=1, algorithm="direct", augment=False)
    _, m1 = train(epochs=1, **kwargs)
    ckpt = tmp_path / "checkpoint.msgpack"
    assert check_checkpoint(ckpt, model=name, width=width)["epoch"] == 1

    # Resuming a finished run trains nothing: the model is the checkpoint's, statistics too.
    net, again = train(epochs=1, resume=True, **kwargs)
    saved, _ = load_checkpoint(ckpt, model=name, width=width, algorithm="direct")
    _assert_trees_equal(_pure(net, nnx.Param), _pure(saved, nnx.Param))
    _assert_trees_equal(_pure(net, nnx.BatchStat), _pure(saved, nnx.BatchStat))
    x = data[2][:4]
    np.testing.assert_array_equal(np.asarray(_predict(net, x)), np.asarray(_predict(saved, x)))
    assert again["history"] == m1["history"]

    _, m2 = train(epochs=2, resume=True, **kwargs)
    assert [h["epoch"] for h in m2["history"]] == [1, 2] and m2["epochs"] == 2
    assert m2["history"][0] == m1["history"][0]
    extra = check_checkpoint(ckpt, model=name, width=width)
    assert extra["epoch"] == 2 and [h["epoch"] for h in extra["history"]] == [1, 2]
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == 2


def test_another_model_or_width_is_a_clear_error(tmp_path, monkeypatch):
    import jaxconv.models.train as train_module

    path = save_checkpoint(tmp_path / "checkpoint.msgpack", _net("resnet18"))
    for fn in (load_checkpoint, check_checkpoint):
        with pytest.raises(CheckpointError, match=r"checkpoint\.msgpack holds a 'resnet18' model "
                                                  r"but a 'mobilenetv2' one was asked for"):
            fn(path, model="mobilenetv2")
    with pytest.raises(CheckpointError, match=r"checkpoint\.msgpack holds a 'resnet18' model but "
                                              r"a 'lenet5' one"):
        load_checkpoint(path, variant="modern")
    with pytest.raises(CheckpointError, match=r"checkpoint\.msgpack holds a 'resnet18' of width 2 "
                                              r"but width 8 was asked for.*--width 2"):
        load_checkpoint(path, model="resnet18", width=8)
    with pytest.raises(ValueError, match=r"model must be one of"):
        load_checkpoint(path, model="vgg")

    # train refuses before loading any data
    monkeypatch.setattr(train_module, "_load_data", lambda *a: pytest.fail("data was loaded"))
    with pytest.raises(CheckpointError, match=r"checkpoint\.msgpack holds a 'resnet18' model "
                                              r"but a 'mobilenetv2' one"):
        train_module.train(model="mobilenetv2", out=tmp_path, resume=True, progress=False)
    with pytest.raises(CheckpointError, match=r"holds a 'resnet18' of width 2 but width 64"):
        train_module.train(model="resnet18", out=tmp_path, resume=True, progress=False)
    with pytest.raises(CheckpointError, match=r"holds a 'resnet18' model but a 'lenet5' one"):
        train_module.train(out=tmp_path, resume=True, progress=False)


def test_resuming_on_data_of_other_classes_or_channels_is_refused(tmp_path):
    from jaxconv.models.train import train

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 8, 8, 1)).astype(np.float32), np.arange(8, dtype=np.int32)
    data = (x, y, x, y)  # 10 classes (at least), one channel
    for net, message in [
        (ResNet.resnet18(7, width=2, in_channels=1, rngs=0), r"of 7 classes but the data has 10"),
        (ResNet.resnet18(10, width=2, in_channels=3, rngs=0),
         r"of 3 input channels but the data has 1"),
    ]:
        save_checkpoint(tmp_path / "checkpoint.msgpack", net, extra={"epoch": 1})
        with pytest.raises(CheckpointError, match=r"checkpoint\.msgpack holds a model " + message):
            train(data=data, model="resnet18", width=2, batch_size=4, out=tmp_path, resume=True,
                  progress=False, devices=1)


def test_crafted_batch_stats_and_widths_are_refused(tmp_path):
    net = _net("mobilenetv2")
    good = save_checkpoint(tmp_path / "good.msgpack", net)
    payload = serialization.msgpack_restore(good.read_bytes())

    def write(name, p):
        (tmp_path / name).write_bytes(serialization.msgpack_serialize(p))
        return tmp_path / name

    stats = payload["batch_stats"]
    bad = {**stats, "stem": {"bn": {**stats["stem"]["bn"], "mean": np.zeros(3, np.float32)}}}
    cases = [
        ({"batch_stats": bad}, r"the stored batch statistics do not fit a 'mobilenetv2' of width "
                               r"0\.25 .*batch_stats/stem/bn/mean has shape \(3,\)"),
        ({"batch_stats": None}, r"no 'batch_stats' entry"),
        ({"width": 1e9}, r"width must be a number in \(0, 64\.0\]"),
        ({"width": None}, r"no 'width' entry"),
        ({"in_channels": 0}, r"in_channels must be an int"),
        ({"model": "vgg"}, r"model must be one of"),
        ({"format": "other/9"}, r"is not a jaxconv checkpoint"),
    ]
    for change, message in cases:
        p = {k: v for k, v in {**payload, **change}.items() if v is not None}
        path = write("crafted.msgpack", p)
        with pytest.raises(CheckpointError, match=r"crafted\.msgpack.*" + message):
            load_checkpoint(path)


def test_lenet5_first_format_still_loads(tmp_path):
    """A file as ``jaxconv.LeNet5/1`` wrote it (built by hand, following that format)."""
    model = LeNet5.classic(rngs=5)
    params = nnx.state(model, nnx.Param)
    opt_state = optax.adam(1e-3).init(params)
    old = {
        "format": LENET5_FORMAT,
        "variant": "classic",
        "num_classes": 10,
        "params": jax.tree.map(np.asarray, nnx.to_pure_dict(params)),
        "extra": json.dumps({"epoch": 3, "history": [], "train_seconds": 1.5}),
        "opt_state": {str(i): np.asarray(a) for i, a in enumerate(jax.tree.leaves(opt_state))},
    }
    path = tmp_path / "old.msgpack"
    path.write_bytes(serialization.msgpack_serialize(old))

    assert check_checkpoint(path, variant="classic")["epoch"] == 3
    restored, info = load_checkpoint(path, variant="classic", opt_state=opt_state)
    assert isinstance(restored, LeNet5) and restored.variant == "classic"
    x = _images(2, 32)
    np.testing.assert_array_equal(np.asarray(_predict(restored, x)), np.asarray(_predict(model, x)))
    _assert_trees_equal(info["opt_state"], opt_state)
    assert load_checkpoint(path, model="lenet5")[1]["extra"]["epoch"] == 3
    with pytest.raises(CheckpointError, match=r"old\.msgpack holds a 'classic' LeNet5 but a "
                                              r"'modern' one"):
        load_checkpoint(path, variant="modern")
    with pytest.raises(CheckpointError, match=r"old\.msgpack holds a 'lenet5' model but a "
                                              r"'resnet18' one"):
        load_checkpoint(path, model="resnet18")
    # Saving it again writes the current format, which loads the same.
    again = save_checkpoint(tmp_path / "new.msgpack", restored)
    assert serialization.msgpack_restore(again.read_bytes())["format"] == FORMAT
    np.testing.assert_array_equal(np.asarray(_predict(load_checkpoint(again)[0], x)),
                                  np.asarray(_predict(model, x)))
