"""``train`` / ``jaxconv train`` beyond LeNet-5: ResNet-18 and MobileNetV2, CIFAR-10, argument
errors, and data parallelism across two real processes (``jax.distributed``, gloo)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import FAST_COMPILE, FULL

pytest.importorskip("flax")
pytest.importorskip("optax")
from flax import nnx

from jaxconv.cli import main as cli
from jaxconv.models import ResNet, load_checkpoint
from jaxconv.models.train import initialize_distributed, train

ROOT = Path(__file__).resolve().parents[1]


def _learnable(n: int, size: int = 16, channels: int = 3, seed: int = 0):
    """Images where class c lights up a patch at a class-dependent place, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.int32)
    x = rng.normal(0, 0.3, (n, size, size, channels)).astype(np.float32)
    for i, c in enumerate(y):
        r, col = 2 * (c // 4), 3 * (c % 4)
        x[i, r:r + 4, col:col + 4] += 1.0
    return x, y


def test_train_resnet_learns_and_returns_an_eval_mode_model():
    x, y = _learnable(96)
    model, m = train(data=(x[:64], y[:64], x[64:], y[64:]), model="resnet18", width=4, epochs=3,
                     batch_size=16, progress=False, devices=1, algorithm="direct")
    assert isinstance(model, ResNet) and model.in_channels == 3 and model.width == 4
    assert m["model"] == "resnet18" and m["title"] == "ResNet-18" and m["processes"] == 1
    assert m["parameters"] == sum(model.param_counts().values())
    losses = [h["train_loss"] for h in m["history"]]
    assert losses[-1] < losses[0], losses
    # returned in evaluation mode, with the running statistics training left behind
    assert model.stem.bn.use_running_average
    assert float(np.abs(np.asarray(model.stem.bn.mean[...])).max()) > 0


def test_cli_trains_on_a_cifar10_archive(tmp_path, capsys):
    from test_datasets import fake_cifar10

    fake_cifar10(tmp_path / "cifar", n=8)
    out = tmp_path / "run"
    code = cli(["train", "--model", "resnet18", "--width", "2", "--data", "cifar10",
                "--data-dir", str(tmp_path / "cifar"), "--epochs", "1", "--batch-size", "8",
                "--devices", "1", "--algorithm", "direct", "--no-progress", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "ResNet-18 on cifar10: test accuracy" in captured.out and "(/8)" not in captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_size"] == 8 and metrics["train_size"] == 40 and metrics["steps"] == 5
    assert metrics["parameters"] == sum(ResNet.resnet18(width=2).param_counts().values())
    assert "checkpoint.msgpack" in os.listdir(out)  # every model checkpoints


@pytest.mark.parametrize(("argv", "message"), [
    (["--devices", "0"], r"--devices must be between 1 and the \d+ available cpu device\(s\), got 0"),
    (["--model", "lenet5", "--data", "cifar10"], r"model 'lenet5' takes 32x32 grayscale images"),
    (["--width", "2"], r"width is for resnet18 and mobilenetv2, not lenet5, got width=2.0"),
    (["--model", "resnet18", "--width", "0"], r"ResNet: --width must be >= 1, got 0"),
    (["--num-processes", "2"], r"--coordinator, --num-processes and --process-id need --distributed"),
])
def test_cli_bad_options_exit_2_with_one_clean_line(capsys, argv, message):
    import re

    assert cli(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train: train:" not in err
    assert re.match(r"jaxconv train: " + message, err), err


def test_train_argument_errors():
    x, y = _learnable(8)
    data = (x, y, x, y)
    with pytest.raises(ValueError, match=r"train: model must be one of \('lenet5', 'resnet18', 'mobilenetv2'\), got 'vgg'"):
        train(data=data, model="vgg")
    with pytest.raises(ValueError, match=r"train: model 'lenet5' takes \(32, 32, 1\) images; the data's are \(16, 16, 3\)"):
        train(data=data, devices=1, batch_size=4)
    with pytest.raises(ValueError, match=r"train: data must be one of \('digits', 'mnist', 'cifar10'\) or arrays, got 'imagenet'"):
        train(data="imagenet")
    with pytest.raises(TypeError, match=r"MobileNetV2: width must be a number, got 'wide'"):
        train(data=data, model="mobilenetv2", width="wide")


def test_initialize_distributed_argument_errors():
    with pytest.raises(ValueError, match=r"initialize_distributed: coordinator, num_processes and process_id go together"):
        initialize_distributed("127.0.0.1:1234", 2)
    with pytest.raises(ValueError, match=r"initialize_distributed: process_id must be an int in 0..1, got 2"):
        initialize_distributed("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match=r"initialize_distributed: num_processes must be an int >= 1, got 0"):
        initialize_distributed("127.0.0.1:1234", 0, 0)


# ---------------------------------------------------------------------- two real processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_the_same_parameters_as_one(tmp_path):
    """``jaxconv train --distributed`` in two processes (one CPU device each, gloo all-reduce)
    against one process on one device: the same checkpoint up to float32 summation order."""
    pytest.importorskip("sklearn")
    # Each process compiles its own programs, outside any persistent compilation cache the run
    # was given (with a shared one, one of four runs timed out in the first all-gather, one
    # worker 30 s behind the other).
    cache_vars = ("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE")
    env = {k: v for k, v in os.environ.items()
           if k not in ("XLA_FLAGS", "JAX_ENABLE_X64") and not k.startswith(cache_vars)}
    env.update(JAX_PLATFORMS="cpu", JAXCONV_CACHE_DIR=str(tmp_path / "cache"))
    if not FULL:  # the default tier's compile flags, as in-process
        env["XLA_FLAGS"] = FAST_COMPILE
    common = [sys.executable, "-m", "jaxconv", "train", "--epochs", "1", "--batch-size", "64",
              "--algorithm", "direct", "--no-progress"]
    port = _free_port()
    runs = {
        f"worker{i}": [*common, "--out", str(tmp_path / "two"), "--distributed", "--coordinator",
                       f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)]
        for i in range(2)
    }
    runs["single"] = [*common, "--out", str(tmp_path / "one"), "--devices", "1"]
    procs = {name: subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, argv in runs.items()}
    outputs = {}
    try:
        for name, proc in procs.items():
            outputs[name] = proc.communicate(timeout=240)
            assert proc.returncode == 0, f"{name}: {outputs[name][1][-3000:]}"
    finally:  # a hung or failed worker must not outlive the test
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert "on 2 cpu device(s) in 2 processes" in outputs["worker0"][0]
    assert "test accuracy" not in outputs["worker1"][0]  # only process 0 reports and writes
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["processes"] == 2 and two["devices"] == 2
    a, _ = load_checkpoint(tmp_path / "two" / "checkpoint.msgpack")
    b, _ = load_checkpoint(tmp_path / "one" / "checkpoint.msgpack")
    pa, pb = (np.concatenate([np.ravel(v) for v in jax.tree.leaves(nnx.state(m, nnx.Param))])
              for m in (a, b))
    # Same batches, seeds and warps in every process: only the all-reduce's float32 summation
    # order differs, and 22 Adam steps keep that small.
    assert np.max(np.abs(pa - pb)) <= 1e-5 * max(1.0, np.max(np.abs(pb))), np.max(np.abs(pa - pb))
