"""LeNet-5 (Flax NNX): structure, the 1998 variant's details, training, checkpoints, devices."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import full_only

flax = pytest.importorskip("flax")
optax = pytest.importorskip("optax")
from flax import nnx  # noqa: E402

import jaxconv  # noqa: E402
from jaxconv.models import (  # noqa: E402
    C3_TABLE,
    CheckpointError,
    LeNet5,
    load_checkpoint,
    save_checkpoint,
)

MODERN_FEATURES = {
    "conv1": (28, 28, 6), "act1": (28, 28, 6), "pool1": (14, 14, 6),
    "conv2": (10, 10, 16), "act2": (10, 10, 16), "pool2": (5, 5, 16),
    "flatten": (400,), "fc1": (120,), "act3": (120,), "fc2": (84,), "act4": (84,),
    "fc3": (10,), "softmax": (10,),
}
CLASSIC_FEATURES = {
    "conv1": (28, 28, 6), "act1": (28, 28, 6), "pool1": (14, 14, 6), "act2": (14, 14, 6),
    "conv2": (10, 10, 16), "act3": (10, 10, 16), "pool2": (5, 5, 16), "act4": (5, 5, 16),
    "conv3": (1, 1, 120), "act5": (1, 1, 120), "flatten": (120,),
    "fc1": (84,), "act6": (84,), "fc2": (10,), "softmax": (10,),
}


@pytest.fixture(scope="module")
def models():
    return {"modern": LeNet5(rngs=0), "classic": LeNet5.classic(rngs=0)}


@pytest.fixture
def batch(rng):
    return rng.standard_normal((3, 32, 32, 1)).astype(np.float32)


# ------------------------------------------------------------------------------- structure


def test_modern_parameter_counts(models):
    assert models["modern"].param_counts() == {
        "conv1": 6 * 25 + 6, "conv2": 16 * 6 * 25 + 16, "fc1": 400 * 120 + 120,
        "fc2": 120 * 84 + 84, "fc3": 84 * 10 + 10,
    }


def test_classic_parameter_counts_equal_the_paper(models):
    counts = models["classic"].param_counts()
    # LeCun et al. 1998, section II-B.
    assert counts == {"C1": 156, "S2": 12, "C3": 1516, "S4": 32, "C5": 48120, "F6": 10164,
                      "output": 850}
    n_params = sum(x.size for x in jax.tree.leaves(nnx.state(models["classic"], nnx.Param)))
    assert n_params == sum(counts.values()) == 60000 + 850


def test_c3_connection_table_is_table_one(models):
    # Columns 0-5: three contiguous S2 maps, 6-11: four contiguous, 12-14: four
    # non-contiguous, 15: all six (Table I).
    expected = np.zeros((6, 16), bool)
    for j in range(6):
        expected[[(j + k) % 6 for k in range(3)], j] = True
        expected[[(j + k) % 6 for k in range(4)], 6 + j] = True
    for j, rows in zip((12, 13, 14), ([0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5]), strict=True):
        expected[rows, j] = True
    expected[:, 15] = True
    np.testing.assert_array_equal(C3_TABLE, expected)
    assert C3_TABLE.sum() == 60
    kernel = np.asarray(models["classic"].C3.full_kernel())
    assert kernel.shape == (5, 5, 6, 16)
    np.testing.assert_array_equal(np.any(kernel != 0, axis=(0, 1)), C3_TABLE)


def test_c3_masked_weights_get_no_gradient(models, batch):
    model = models["classic"]

    def loss(kernel):
        return jnp.sum(jaxconv.conv2d(batch[:, :14, :14, :1].repeat(6, -1), kernel) ** 2)

    g = jax.grad(loss)(model.C3.full_kernel())
    full = jax.grad(lambda w: loss(
        jnp.zeros((5, 5, 6, 16), w.dtype).at[:, :, *np.nonzero(C3_TABLE)].set(w)
    ))(model.C3.kernel[...])
    assert full.shape == (5, 5, 60)
    assert np.any(np.asarray(g)[:, :, ~C3_TABLE] != 0)  # the dense kernel would learn there ...
    np.testing.assert_allclose(full, np.asarray(g)[:, :, C3_TABLE], rtol=1e-6)  # ... ours cannot


@pytest.mark.parametrize("variant", ["modern", "classic"])
def test_output_shapes_and_dtype(models, batch, variant):
    model = models[variant]
    logits = model(batch)
    assert logits.shape == (3, 10) and logits.dtype == jnp.float32
    assert model(batch[0]).shape == (10,)
    np.testing.assert_allclose(model(batch[0]), logits[0], rtol=1e-5, atol=1e-6)
    assert LeNet5(7, variant=variant, rngs=1)(batch).shape == (3, 7)


@pytest.mark.parametrize("variant", ["modern", "classic"])
def test_features_names_shapes_and_order(models, batch, variant):
    expected = MODERN_FEATURES if variant == "modern" else CLASSIC_FEATURES
    feats = models[variant].features(batch)
    assert list(feats) == list(expected)
    assert {k: v.shape for k, v in feats.items()} == {k: (3, *s) for k, s in expected.items()}
    np.testing.assert_allclose(feats[list(feats)[-2]], models[variant](batch), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(feats["softmax"].sum(-1), 1.0, rtol=1e-5)
    single = models[variant].features(batch[0])
    assert {k: v.shape for k, v in single.items()} == expected


def test_classic_stages_compute_what_the_paper_says(models, batch):
    model = models["classic"]
    f = model.features(batch)
    np.testing.assert_allclose(f["act1"], 1.7159 * np.tanh(2 / 3 * np.asarray(f["conv1"])),
                               rtol=1e-5, atol=1e-6)
    # S2: each 2x2 block summed, times a per-map coefficient, plus a per-map bias.
    a = np.asarray(f["act1"])
    block_sum = a.reshape(3, 14, 2, 14, 2, 6).sum(axis=(2, 4))
    coef, bias = np.asarray(model.S2.coef[...]), np.asarray(model.S2.bias[...])
    np.testing.assert_allclose(f["pool1"], block_sum * coef + bias, rtol=1e-5, atol=1e-6)


def test_modern_uses_relu_and_max_pooling(models, batch):
    f = models["modern"].features(batch)
    np.testing.assert_array_equal(f["act1"], np.maximum(f["conv1"], 0))
    np.testing.assert_array_equal(f["pool1"], np.asarray(f["act1"]).reshape(3, 14, 2, 14, 2, 6).max(axis=(2, 4)))


def test_algorithm_reaches_every_conv(batch):
    names = [a.name for a in jaxconv.algorithms()]
    alt = next((n for n in names if n != "direct"), None)
    for variant in ("modern", "classic"):
        model = LeNet5(variant=variant, algorithm="direct", rngs=0)
        convs = [m for _, m in nnx.iter_graph(model) if hasattr(m, "algorithm") and m is not model]
        assert len(convs) == (2 if variant == "modern" else 3)
        assert all(c.algorithm == "direct" for c in convs)
        if alt is not None:
            other = LeNet5(variant=variant, algorithm=alt, rngs=0)
            np.testing.assert_allclose(other(batch), model(batch), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((3, 28, 28, 1), r"\(N, 32, 32, 1\).*got shape \(3, 28, 28, 1\)"),
        ((3, 1, 32, 32), r".*got shape \(3, 1, 32, 32\)"),
        ((3, 32, 32, 3), r".*got shape \(3, 32, 32, 3\)"),
        ((32, 32), r".*got shape \(32, 32\)"),
        ((2, 3, 32, 32, 1), r".*got shape \(2, 3, 32, 32, 1\)"),
    ],
)
def test_wrong_input_shape_is_the_models_error(models, shape, match):
    with pytest.raises(ValueError, match=r"^LeNet5: x must be NHWC images of shape " + match):
        models["modern"](np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match="LeNet5: x must be NHWC"):
        models["classic"].features(np.zeros(shape, np.float32))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match=r"LeNet5: variant must be one of \('modern', 'classic'\), got 'new'"):
        LeNet5(variant="new")
    with pytest.raises(ValueError, match=r"LeNet5: unknown algorithm 'magic'; expected 'auto' or one of 'direct'"):
        LeNet5(algorithm="magic")
    with pytest.raises(TypeError, match="LeNet5: num_classes must be an int"):
        LeNet5(2.5)
    with pytest.raises(TypeError, match="LeNet5: x must be a real-valued image batch"):
        LeNet5(rngs=0)(np.zeros((1, 32, 32, 1), np.complex64))


def test_one_optimizer_step_lowers_the_loss(batch):
    model = LeNet5(rngs=0)
    labels = jnp.arange(3, dtype=jnp.int32)
    opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

    def loss_fn(m):
        return optax.softmax_cross_entropy_with_integer_labels(m(batch), labels).mean()

    @nnx.jit
    def step(m, opt):
        loss, grads = nnx.value_and_grad(loss_fn)(m)
        opt.update(m, grads)
        return loss

    before = step(model, opt)
    assert float(nnx.jit(loss_fn)(model)) < float(before)


# -------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def small_digits():
    pytest.importorskip("sklearn")
    from jaxconv.data import digits

    d = digits()
    return d.x_train[:192], d.y_train[:192], d.x_test[:40], d.y_test[:40]


@pytest.fixture(scope="module")
def trained(small_digits, tmp_path_factory):
    from jaxconv.models.train import train

    out = tmp_path_factory.mktemp("run")
    model, metrics = train(data=small_digits, epochs=2, batch_size=64, out=out, progress=False,
                           devices=1)
    return out, model, metrics


def test_tiny_training_run_writes_everything(trained):
    out, model, metrics = trained
    assert isinstance(model, LeNet5) and model.variant == "modern"
    for key in ("test_accuracy", "test_size", "train_seconds", "devices", "variant", "epochs",
                "history", "confusion_matrix"):
        assert key in metrics
    assert metrics["test_size"] == 40 and metrics["devices"] == 1 and metrics["epochs"] == 2
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert np.sum(metrics["confusion_matrix"]) == 40
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.msgpack", "confusion_matrix.png", "metrics.json", "training_curves.png",
    ]
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["test_accuracy"] == metrics["test_accuracy"]
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Training learns something even in 6 steps (chance is 10%).
    assert metrics["history"][-1]["train_loss"] < metrics["history"][0]["train_loss"]


def test_resume_continues_and_refuses_another_variant(trained, small_digits, tmp_path):
    import shutil

    from jaxconv.models.train import train

    out, _, metrics = trained
    run = tmp_path / "run"
    shutil.copytree(out, run)
    with pytest.raises(CheckpointError, match=r"holds a 'modern' LeNet5 but a 'classic' one"):
        train(data=small_digits, variant="classic", epochs=3, batch_size=64, out=run,
              resume=True, progress=False, devices=1)
    _, m3 = train(data=small_digits, epochs=3, batch_size=64, out=run, resume=True,
                  progress=False, devices=1)
    assert [h["epoch"] for h in m3["history"]] == [1, 2, 3]
    assert m3["history"][:2] == metrics["history"]


def test_checkpoint_round_trip(tmp_path, batch):
    for model in (LeNet5(rngs=3), LeNet5.classic(rngs=4)):
        tx = optax.adam(1e-3)
        params = nnx.state(model, nnx.Param)
        opt_state = tx.init(params)
        path = save_checkpoint(tmp_path / f"{model.variant}.msgpack", model, opt_state=opt_state,
                               extra={"epoch": 7})
        restored, info = load_checkpoint(path, variant=model.variant, opt_state=opt_state)
        assert restored.variant == model.variant and info["extra"] == {"epoch": 7}
        np.testing.assert_array_equal(restored(batch), model(batch))
        for a, b in zip(jax.tree.leaves(info["opt_state"]), jax.tree.leaves(opt_state), strict=True):
            np.testing.assert_array_equal(a, b)
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_checkpoint_errors(tmp_path):
    path = save_checkpoint(tmp_path / "c.msgpack", LeNet5.classic(rngs=0))
    with pytest.raises(CheckpointError, match=r"c\.msgpack holds a 'classic' LeNet5 but a 'modern' one"):
        load_checkpoint(path, variant="modern")
    junk = tmp_path / "junk.msgpack"
    junk.write_bytes(b"\x00\x01not msgpack")
    with pytest.raises(CheckpointError, match=r"junk\.msgpack is not a"):
        load_checkpoint(junk)
    with pytest.raises(TypeError, match="save_checkpoint: model must be a LeNet5"):
        save_checkpoint(tmp_path / "x", object())


def test_train_argument_errors(small_digits):
    from jaxconv.models.train import train

    with pytest.raises(ValueError, match=r"train: variant must be one of"):
        train(data=small_digits, variant="big")
    with pytest.raises(ValueError, match=r"train: resume=True needs out=DIR"):
        train(data=small_digits, resume=True)
    with pytest.raises(ValueError, match=r"train: devices must be between 1 and the \d+ available"):
        train(data=small_digits, devices=10_000)
    with pytest.raises(ValueError, match=r"train: batch_size 500 is larger than the 192 training"):
        train(data=small_digits, batch_size=500, devices=1)


def test_cli_train_smoke(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sklearn")
    from jaxconv.cli import main

    assert main(["train", "--epochs", "1", "--batch-size", "64", "--no-progress",
                 "--devices", "1", "--out", str(tmp_path)]) == 0
    line = capsys.readouterr().out
    assert "LeNet-5 (modern) on digits: test accuracy" in line and "(/360)" not in line
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_size"] == 360 and metrics["epochs"] == 1


# --------------------------------------------------------------------------------- devices

_DEVICES_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from flax import nnx
    from jaxconv.models.train import train

    assert len(jax.devices()) == 4, jax.devices()
    # Learnable synthetic digits: class c lights up a 6x6 patch at a class-dependent place.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 160).astype(np.int32)
    x = rng.normal(0, 0.3, (160, 32, 32, 1)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 3 + 8 * (c // 4):9 + 8 * (c // 4), 3 + 7 * (c % 4):9 + 7 * (c % 4)] += 1.0
    data = x[:128], y[:128], x[128:], y[128:]
    runs = {n: train(data=data, epochs=2, batch_size=32, devices=n, progress=False) for n in (1, 4)}
    leaves = {n: jax.tree.leaves(nnx.state(m, nnx.Param)) for n, (m, _) in runs.items()}
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(leaves[1], leaves[4], strict=True))
    scale = max(float(np.max(np.abs(np.asarray(a)))) for a in leaves[1])
    json.dump({"max_abs_diff": diff, "max_abs_param": scale,
               "acc": {n: m["test_accuracy"] for n, (_, m) in runs.items()},
               "devices": {n: m["devices"] for n, (_, m) in runs.items()}}, sys.stdout)
    """
)


@full_only  # ~20 s in a child process; test_train_models' two processes stay in the default tier
def test_one_vs_four_devices_train_the_same_parameters():
    pytest.importorskip("sklearn")
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", _DEVICES_SCRIPT], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["devices"] == {"1": 1, "4": 4}
    # Same batches, same keys: only float32 summation order differs across 4 shards.
    assert result["max_abs_diff"] <= 1e-5 * max(1.0, result["max_abs_param"]), result
    assert abs(result["acc"]["1"] - result["acc"]["4"]) <= 1 / 32, result


# ------------------------------------------------------------------------- small pieces


def test_learning_rate_schedule():
    from jaxconv.models.train import learning_rate_at

    lrs = [learning_rate_at(s, 100, 1e-2) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-3) and max(lrs) == pytest.approx(1e-2)
    assert int(np.argmax(lrs)) == 10 and lrs[-1] == pytest.approx(1e-4, rel=0.05)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))


def test_augmentation_is_seeded_and_identity_when_disabled(monkeypatch, rng):
    import jaxconv.models.train as train_module

    x = rng.standard_normal((4, 32, 32, 1)).astype(np.float32)
    a = train_module._augment(x, np.random.default_rng(5))
    np.testing.assert_array_equal(a, train_module._augment(x, np.random.default_rng(5)))
    assert a.shape == x.shape and a.dtype == x.dtype and not np.allclose(a, x)
    for name in ("MAX_SHIFT", "MAX_ROTATE", "MAX_SCALE"):
        monkeypatch.setattr(train_module, name, 0.0)
    np.testing.assert_allclose(train_module._augment(x, np.random.default_rng(5)), x, atol=1e-6)


def test_training_plots_take_ax():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from jaxconv.viz.training import plot_confusion_matrix, plot_training_curves

    history = [{"epoch": e, "train_loss": 1 / e, "test_loss": 1.2 / e, "train_accuracy": 1 - 0.5 / e,
                "test_accuracy": 1 - 0.6 / e} for e in range(1, 4)]
    fig = plot_training_curves(history)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    own = Figure()
    ax = own.subplots()
    assert plot_training_curves({"history": history}, ax=ax) is own
    assert len(own.axes) == 2  # accuracy on a twin axis
    cm = np.diag([3, 4, 5]) + 1
    fig = plot_confusion_matrix(cm, labels="abc", normalize=True)
    assert fig.axes[0].get_xlabel() == "predicted"
    with pytest.raises(ValueError, match=r"plot_confusion_matrix: cm must be a square"):
        plot_confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="plot_training_curves: history is empty"):
        plot_training_curves([])


def test_example_script_is_a_thin_main(capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "train_lenet.py"
    spec = importlib.util.spec_from_file_location("train_lenet_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as info:
        module.main(["--help"])
    assert info.value.code == 0
    assert "--variant {modern,classic}" in capsys.readouterr().out
