"""Train LeNet-5, ResNet-18 or MobileNetV2 with optax, data-parallel over devices and processes
with JAX's SPMD partitioner.

``train(...)`` is the function other code calls; ``jaxconv train`` (``jaxconv/cli/train.py``)
is its command line.

Data parallelism: the devices form a 1-D :class:`jax.sharding.Mesh` with axis ``"data"``; every
batch is a global array sharded along its first axis (``NamedSharding(mesh, P("data"))``) and
the parameters and optimizer state are replicated (``P()``). The jitted step is written for one
global batch; XLA's SPMD partitioner splits it and inserts the gradient all-reduce, so 1 and N
devices compute the same update up to float32 summation order.

BatchNorm (ResNet, MobileNetV2) normalizes with the statistics of the whole global batch: its
mean is one more reduction over the sharded batch axis, so the partitioner all-reduces it too.

Multi-host: call :func:`initialize_distributed` (``jaxconv train --distributed``) in every
process before anything else; the mesh then spans all processes' devices. Every process runs
the same program with the same seed, so each builds the same global batch order, and
``jax.make_array_from_callback`` copies only the rows its own devices hold.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxconv
from jaxconv._io import atomic_write, check_output, save_figure

from .checkpoint import (
    CheckpointError,
    build,
    default_width,
    load_checkpoint,
    resume_state,
    save_checkpoint,
)
from .lenet import VARIANTS

__all__ = ["DATA", "DEFAULTS", "MODELS", "confusion_matrix", "initialize_distributed",
           "learning_rate_at", "train"]

MODELS = ("lenet5", "resnet18", "mobilenetv2")
DATA = ("digits", "mnist", "cifar10")
TITLES = {"lenet5": "LeNet-5", "resnet18": "ResNet-18", "mobilenetv2": "MobileNetV2"}
# Defaults per LeNet-5 variant, chosen on the 2-core CPU box with the digits data
# (docs/lenet.md), and per larger network (not tuned: a starting point).
DEFAULTS: dict[str, dict[str, Any]] = {
    "modern": {"epochs": 30, "mnist_epochs": 10, "batch_size": 32, "learning_rate": 2e-3,
               "label_smoothing": 0.1, "weight_decay": 1.0},
    "classic": {"epochs": 30, "mnist_epochs": 10, "batch_size": 64, "learning_rate": 2e-3,
                "label_smoothing": 0.0, "weight_decay": 0.0},
    "resnet18": {"epochs": 10, "mnist_epochs": 2, "cifar10_epochs": 30, "batch_size": 64,
                 "learning_rate": 2e-3, "label_smoothing": 0.1, "weight_decay": 0.05},
    "mobilenetv2": {"epochs": 10, "mnist_epochs": 2, "cifar10_epochs": 30, "batch_size": 64,
                    "learning_rate": 2e-3, "label_smoothing": 0.1, "weight_decay": 0.05},
}


def _recipe(model: str, variant: str) -> dict[str, Any]:
    return DEFAULTS[variant if model == "lenet5" else model]


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Join this process to a multi-process run (``jax.distributed.initialize``); call it
    first, before anything touches a device.

    With no arguments JAX detects the cluster (SLURM, Open MPI, Kubernetes JobSet, Cloud TPU;
    ``$JAX_COORDINATOR_ADDRESS`` for the coordinator). On one machine or an undetected
    cluster pass all three: ``coordinator`` ``"HOST:PORT"`` (process 0 listens there),
    ``num_processes`` and this process's ``process_id`` (``0 .. num_processes - 1``). CPU
    processes exchange gradients over gloo (``jax_cpu_collectives_implementation``).
    """
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise ValueError("initialize_distributed: coordinator, num_processes and process_id go "
                         f"together (all or none), got {coordinator!r}, {num_processes!r}, "
                         f"{process_id!r}")
    if num_processes is not None and process_id is not None:
        if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
            raise ValueError(f"initialize_distributed: num_processes must be an int >= 1, got "
                             f"{num_processes!r}")
        if isinstance(process_id, bool) or not isinstance(process_id, int) or not (
                0 <= process_id < num_processes):
            raise ValueError(f"initialize_distributed: process_id must be an int in 0.."
                             f"{num_processes - 1}, got {process_id!r}")
    # Without collectives, CPU processes cannot all-reduce (gloo is jax 0.10's default; set
    # for older versions where it was not).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)
# Training distortions (train(augment=True)): shift in pixels, rotation in degrees, scale, and
# the fraction of training images warped (the rest are seen as they are, like the test images).
MAX_SHIFT, MAX_ROTATE, MAX_SCALE = 2.0, 5.0, 0.1
AUGMENT_PROB = 0.8
CHECKPOINT = "checkpoint.msgpack"
METRICS = "metrics.json"
EVAL_BATCH = 512  # per device


def confusion_matrix(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` counts, rows = true class, columns = predicted class."""
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def _load_data(data, data_dir):
    if isinstance(data, str):
        from jaxconv.data import datasets as digits_module

        if data == "digits":
            return digits_module.digits()
        if data == "mnist":
            return digits_module.mnist(data_dir)
        if data == "cifar10":
            return digits_module.cifar10(data_dir)
        raise ValueError(f"train: data must be one of {DATA} or arrays, got {data!r}")
    try:
        x_train, y_train, x_test, y_test = data
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"train: data must be one of {DATA} or a tuple (x_train, y_train, x_test, y_test)"
        ) from e
    return (np.asarray(x_train, np.float32), np.asarray(y_train, np.int32),
            np.asarray(x_test, np.float32), np.asarray(y_test, np.int32))


def _devices(devices) -> list:
    available = jax.devices()
    if devices is None:
        return available
    if isinstance(devices, bool) or not isinstance(devices, int | np.integer):
        raise TypeError(f"train: devices must be None or an int, got {devices!r}")
    if not 1 <= devices <= len(available):
        raise ValueError(
            f"train: devices must be between 1 and the {len(available)} available "
            f"{jax.default_backend()} device(s), got {devices}; on CPU, "
            f"XLA_FLAGS=--xla_force_host_platform_device_count=N makes N host devices"
        )
    return available[:devices]


def _augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random small affine warps of NHWC images ``(B, H, W, C)``, bilinear, edge-extended.

    Each image is rotated by up to ``MAX_ROTATE`` degrees, scaled by up to ``MAX_SCALE`` and
    shifted by up to ``MAX_SHIFT`` pixels about its centre (the distortions LeCun et al. 1998
    used for their best LeNet-5, section III-C); a random ``1 - AUGMENT_PROB`` of the images is
    left as it is. Done on the host with NumPy: a millisecond
    per batch, nothing added to the compiled step, and every host derives the same warps from
    the same seed.
    """
    b, h, w, _ = x.shape
    angle = np.deg2rad(rng.uniform(-MAX_ROTATE, MAX_ROTATE, b))
    scale = rng.uniform(1 - MAX_SCALE, 1 + MAX_SCALE, b)
    shift = rng.uniform(-MAX_SHIFT, MAX_SHIFT, (2, b))
    # Inverse map: output pixel (r, c) samples the input at centre + R(-a) (p - centre - t) / s.
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    r = np.arange(h)[None, :, None] - (h - 1) / 2 - shift[0][:, None, None]
    c = np.arange(w)[None, None, :] - (w - 1) / 2 - shift[1][:, None, None]
    src_r = cos[:, None, None] * r + sin[:, None, None] * c + (h - 1) / 2
    src_c = -sin[:, None, None] * r + cos[:, None, None] * c + (w - 1) / 2
    r0, c0 = np.floor(src_r), np.floor(src_c)
    fr, fc = (src_r - r0)[..., None], (src_c - c0)[..., None]
    bi = np.arange(b)[:, None, None]

    def at(rr, cc):
        return x[bi, np.clip(rr, 0, h - 1).astype(np.intp), np.clip(cc, 0, w - 1).astype(np.intp)]

    top = at(r0, c0) * (1 - fc) + at(r0, c0 + 1) * fc
    bottom = at(r0 + 1, c0) * (1 - fc) + at(r0 + 1, c0 + 1) * fc
    warped = (top * (1 - fr) + bottom * fr).astype(x.dtype)
    if AUGMENT_PROB < 1:
        plain = rng.random(b) >= AUGMENT_PROB
        warped[plain] = x[plain]
    return warped


def learning_rate_at(step: int, total_steps: int, peak: float) -> float:
    """Linear warmup (first 10% of the steps, at most 200) from ``peak / 10``, then cosine decay
    to ``peak / 100``. Plain Python: the rate is an argument of the compiled step, so one
    compilation serves every schedule."""
    warmup = min(max(total_steps // 10, 1), 200)
    if step < warmup:
        return peak * (0.1 + 0.9 * step / warmup)
    frac = min((step - warmup) / max(total_steps - warmup, 1), 1.0)
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))


# Adam's moment estimates; the learning rate is applied in the step (see learning_rate_at).
_ADAM = optax.scale_by_adam()
@functools.lru_cache(maxsize=8)
def _make_steps(graphdef, eval_graphdef, repl: NamedSharding, label_smoothing: float = 0.0,
                weight_decay: float = 0.0):
    """Jitted ``(train_step, eval_step)`` for a model structure, a mesh and a loss (cached: tests
    and repeated ``train`` calls with the same model, mesh and batch shape compile once).

    The model's state is split in ``params`` (``nnx.Param``, trained) and ``rest`` (BatchNorm's
    running statistics, updated by every training step's forward pass; empty for LeNet-5).
    ``eval_graphdef`` is the model in evaluation mode (BatchNorm on its running averages).
    The loss is softmax cross-entropy against labels smoothed by ``label_smoothing``; the update
    is Adam's plus decoupled weight decay (AdamW): ``p -= lr * (adam(g) + weight_decay * p)``."""

    def loss_fn(model, x, y):
        logits = model(x)
        if label_smoothing:
            target = optax.smooth_labels(jax.nn.one_hot(y, logits.shape[-1]), label_smoothing)
            loss = optax.softmax_cross_entropy(logits, target).mean()
        else:
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, logits

    # Only the parameters are differentiated; the forward pass updates BatchNorm's statistics
    # in the merged model, read back by the split after it.
    grad_fn = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, nnx.Param), has_aux=True)

    @functools.partial(jax.jit, out_shardings=repl)
    def train_step(params, rest, opt_state, x, y, lr):
        model = nnx.merge(graphdef, params, rest)
        (loss, logits), grads = grad_fn(model, x, y)
        rest = nnx.state(model, nnx.Not(nnx.Param))
        updates, opt_state = _ADAM.update(grads, opt_state, params)
        params = jax.tree.map(lambda p, u: p - lr * (u + weight_decay * p), params, updates)
        acc = jnp.mean((jnp.argmax(logits, -1) == y).astype(jnp.float32))
        return params, rest, opt_state, loss, acc

    @functools.partial(jax.jit, out_shardings=repl)
    def eval_step(params, rest, x, y):
        logits = nnx.merge(eval_graphdef, params, rest)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y), jnp.argmax(logits, -1)

    return train_step, eval_step


def _global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from host data every process holds; each device gets only its rows."""
    return jax.make_array_from_callback(array.shape, sharding, lambda idx: array[idx])


def _evaluate(eval_step, params, rest, x, y, batch_sh, n_dev) -> tuple[float, np.ndarray]:
    losses, preds = [], []
    # A small test set is not padded to a full evaluation batch (64x the work for 8 images).
    size = min(EVAL_BATCH, -(-len(x) // n_dev)) * n_dev
    for start in range(0, len(x), size):
        xb, yb = x[start:start + size], y[start:start + size]
        # One batch shape (one compilation), divisible by the devices; padded rows are dropped.
        pad = size - len(xb)
        if pad:
            xb = np.concatenate([xb, np.repeat(xb[-1:], pad, 0)])
            yb = np.concatenate([yb, np.repeat(yb[-1:], pad, 0)])
        loss, pred = eval_step(params, rest, _global(xb, batch_sh), _global(yb, batch_sh))
        keep = len(xb) - pad
        losses.append(np.asarray(loss)[:keep])
        preds.append(np.asarray(pred)[:keep])
    return float(np.concatenate(losses).mean()), np.concatenate(preds)


def train(
    *,
    data: Any = "digits",
    variant: str = "modern",
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    devices: int | None = None,
    algorithm: str = "auto",
    out: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    learning_rate: float | None = None,
    augment: bool = True,
    mnist_dir: str | os.PathLike | None = None,
    model: str = "lenet5",
    width: float | None = None,
    data_dir: str | os.PathLike | None = None,
) -> tuple[nnx.Module, dict]:
    """Train a :class:`LeNet5`, a :class:`ResNet` (18) or a :class:`MobileNetV2` with Adam and
    a warmup + cosine learning-rate schedule (:func:`learning_rate_at`); the modern LeNet and
    the larger networks add decoupled weight decay (AdamW) and label smoothing
    (:data:`DEFAULTS`).

    Args:
      data: ``"digits"`` (scikit-learn's, offline), ``"mnist"``, ``"cifar10"`` (see
        ``data_dir``) or a tuple ``(x_train, y_train, x_test, y_test)`` of NHWC
        ``(N, H, W, C)`` images (``(N, 32, 32, 1)`` for LeNet-5) and int labels.
      variant: LeNet-5's ``"modern"`` or ``"classic"``.
      epochs: passes over the training set; default per variant and data set (:data:`DEFAULTS`).
      batch_size: the global batch, split evenly over the devices (must divide by their number);
        default per variant. The last incomplete batch of each epoch is dropped (a fresh
        shuffle every epoch).
      seed: initial weights, shuffling and augmentation; the same seed gives the same run on
        any number of devices (up to float32 summation order).
      devices: use the first ``devices`` devices (default all, over every host).
      algorithm: ``jaxconv.conv2d`` algorithm for every convolution. The default ``"auto"``
        picks per layer, and under differentiation switches to what runs fastest forward +
        backward (see :func:`jaxconv.select_algorithm` with ``mode="train"``).
      out: folder for ``checkpoint.msgpack`` (after every epoch), ``metrics.json`` and the PNG
        plots ``training_curves.png`` and ``confusion_matrix.png``; ``None`` writes nothing.
      resume: continue from ``out/checkpoint.msgpack`` when it exists (the same model, LeNet-5
        variant and width required: another raises :class:`CheckpointError`).
      progress: show a tqdm progress bar with loss and accuracy.
      learning_rate: peak learning rate; default per variant.
      augment: random small rotations, scalings and shifts of a fraction ``AUGMENT_PROB`` of
        the training images (``MAX_ROTATE`` degrees, ``MAX_SCALE``, ``MAX_SHIFT`` pixels).
      mnist_dir: a folder with the MNIST IDX files (``data_dir`` for MNIST).
      model: ``"lenet5"``, ``"resnet18"`` or ``"mobilenetv2"`` (CIFAR-style, with BatchNorm).
      width: ResNet-18's first-stage channels (default 64) or MobileNetV2's width multiplier
        (default 1.0); not for LeNet-5.
      data_dir: MNIST's IDX folder or the CIFAR-10 archive (or its folder); ``None``
        downloads into the cache.

    Returns:
      ``(model, metrics)``: the trained model (parameters on the host, in evaluation mode) and
      the metrics dict also written to ``metrics.json``: ``test_accuracy``, ``test_size``,
      ``train_seconds``, ``devices``, ``processes``, ``model``, ``variant``, ``epochs``,
      ``history`` (one dict per epoch), ``confusion_matrix`` and the configuration.
      Every model checkpoints (``out``, ``resume``): its parameters, BatchNorm running
      statistics (ResNet, MobileNetV2) and Adam state, in :mod:`jaxconv.models.checkpoint`'s
      format.

    Raises:
      ValueError: bad arguments; :class:`~jaxconv.models.CheckpointError` for a checkpoint of
        another model, variant, width, class count or channel count when resuming.
    """
    epochs, batch_size, learning_rate = _check_args(
        data=data, variant=variant, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, algorithm=algorithm, resume=resume, out=out, model=model,
        width=width)
    data_dir = mnist_dir if data_dir is None else data_dir
    out_dir = Path(out) if out is not None else None
    ckpt = out_dir / CHECKPOINT if out_dir is not None else None
    if out_dir is not None:  # before any work: every file this run will write can be written
        for name in (CHECKPOINT, METRICS):
            check_output(out_dir / name, "train", make_parents=True)
    # The model a checkpoint must hold to be resumed: name, LeNet-5 variant or width.
    asked = ({"model": model, "variant": variant} if model == "lenet5" else
             {"model": model, "width": default_width(model) if width is None else width})
    resume_extra = None
    if resume and ckpt is not None and ckpt.is_file():  # a bad checkpoint fails before training
        resume_extra = resume_state(ckpt, **asked)

    devs = _devices(devices)
    n_dev = len(devs)
    if batch_size % n_dev:
        raise ValueError(
            f"train: batch_size {batch_size} must be divisible by the number of devices {n_dev}"
        )
    x_train, y_train, x_test, y_test = _load_data(data, data_dir)
    if model == "lenet5" and x_train.shape[1:] != (32, 32, 1):
        raise ValueError(f"train: model 'lenet5' takes (32, 32, 1) images; the data's are "
                         f"{x_train.shape[1:]} (use resnet18 or mobilenetv2)")
    num_classes = int(max(y_train.max(), y_test.max())) + 1 if len(y_train) else 10
    num_classes = max(num_classes, 10)
    if len(x_train) < batch_size:
        raise ValueError(
            f"train: batch_size {batch_size} is larger than the {len(x_train)} training images"
        )
    steps_per_epoch = len(x_train) // batch_size
    total_steps = epochs * steps_per_epoch

    name = model
    net = build(name, num_classes, x_train.shape[-1], variant=variant, width=width,
                algorithm=algorithm, rngs=nnx.Rngs(seed))
    net.eval()
    eval_graphdef = nnx.graphdef(net)
    net.train()
    graphdef, params, rest = _split(net)
    opt_state = _ADAM.init(params)
    start_epoch, history, prior_seconds = 0, [], 0.0
    main_process = jax.process_index() == 0
    if resume_extra is not None and ckpt is not None:
        restored, info = load_checkpoint(ckpt, **asked, algorithm=algorithm,
                                         opt_state=opt_state)
        for what, have, need in (("classes", getattr(restored, "num_classes", 0), num_classes),
                                 ("input channels", getattr(restored, "in_channels", 1),
                                  x_train.shape[-1])):
            if have != need:
                raise CheckpointError(f"train: {ckpt} holds a model of {have} {what} but the "
                                      f"data has {need}; train a new model (without --resume)")
        _, params, rest = _split(restored)  # training's graphdef: the restored one is in eval mode
        if info["opt_state"] is not None:
            opt_state = info["opt_state"]
        start_epoch = resume_extra["epoch"]
        history = resume_extra["history"]
        prior_seconds = resume_extra["train_seconds"]
    elif resume and main_process:
        print(f"jaxconv train: no checkpoint at {ckpt}; starting from scratch", file=sys.stderr)

    mesh = Mesh(np.array(devs), ("data",))
    batch_sh, repl = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    params, rest, opt_state = jax.device_put((params, rest, opt_state), repl)
    recipe = _recipe(name, variant)
    train_step, eval_step = _make_steps(graphdef, eval_graphdef, repl, recipe["label_smoothing"],
                                        recipe["weight_decay"])

    config = {
        "data": data if isinstance(data, str) else "arrays", "model": name, "width": width,
        "variant": variant, "epochs": epochs,
        "batch_size": batch_size, "seed": seed, "learning_rate": learning_rate,
        "algorithm": algorithm, "augment": augment,
        "label_smoothing": recipe["label_smoothing"], "weight_decay": recipe["weight_decay"],
    }

    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, initial=start_epoch * steps_per_epoch, unit="step",
               disable=not (progress and main_process), dynamic_ncols=True, leave=True)
    t0, c0 = time.perf_counter(), time.process_time()
    for epoch in range(start_epoch, epochs):
        bar.set_description(f"{variant if name == 'lenet5' else name} epoch {epoch + 1}/{epochs}")
        # Every host derives the same order from (seed, epoch): resuming replays it exactly.
        order = np.random.default_rng((seed, epoch)).permutation(len(x_train))
        sum_loss = sum_acc = 0.0
        pending = None  # read a step's loss only after queueing the next: keeps XLA busy
        for i in range(steps_per_epoch + 1):
            if i < steps_per_epoch:
                idx = np.sort(order[i * batch_size:(i + 1) * batch_size])
                step = epoch * steps_per_epoch + i
                xb = x_train[idx]
                if augment:
                    xb = _augment(xb, np.random.default_rng((seed, step)))
                lr = np.float32(learning_rate_at(step, total_steps, learning_rate))
                params, rest, opt_state, loss, acc = train_step(
                    params, rest, opt_state, _global(xb, batch_sh),
                    _global(y_train[idx], batch_sh), lr,
                )
            if pending is not None:
                sum_loss += float(pending[0])
                sum_acc += float(pending[1])
                bar.update()
                bar.set_postfix(loss=f"{sum_loss / i:.4f}", acc=f"{sum_acc / i:.4f}")
            pending = (loss, acc)
        test_loss, pred = _evaluate(eval_step, params, rest, x_test, y_test, batch_sh, n_dev)
        test_acc = float(np.mean(pred == y_test))
        history.append({
            "epoch": epoch + 1,
            "train_loss": sum_loss / steps_per_epoch,
            "train_accuracy": sum_acc / steps_per_epoch,
            "test_loss": test_loss,
            "test_accuracy": test_acc,
            "learning_rate": learning_rate_at((epoch + 1) * steps_per_epoch - 1, total_steps,
                                              learning_rate),
            "seconds": prior_seconds + time.perf_counter() - t0,
        })
        bar.set_postfix(loss=f"{sum_loss / steps_per_epoch:.4f}",
                        acc=f"{sum_acc / steps_per_epoch:.4f}", test_acc=f"{test_acc:.4f}")
        if ckpt is not None and main_process:
            save_checkpoint(ckpt, nnx.merge(graphdef, params, rest), opt_state=opt_state, extra={
                "epoch": epoch + 1, "history": history, "config": config,
                "train_seconds": prior_seconds + time.perf_counter() - t0,
            })
    bar.close()
    train_seconds = prior_seconds + time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0

    params, rest = jax.device_get((params, rest))
    net = nnx.merge(eval_graphdef, params, rest)
    on_devices = jax.device_put((params, rest), repl)
    test_loss, pred = _evaluate(eval_step, on_devices[0], on_devices[1], x_test, y_test,
                                batch_sh, n_dev)
    cm = confusion_matrix(y_test, pred, num_classes)
    metrics = {
        "test_accuracy": float(np.mean(pred == y_test)),
        "test_loss": test_loss,
        "test_size": len(y_test),
        "train_size": len(y_train),
        "train_seconds": train_seconds,
        "train_cpu_seconds": cpu_seconds,  # all threads; on a busy machine the steadier figure
        "devices": n_dev,
        "device_kind": devs[0].device_kind,
        "backend": devs[0].platform,
        "processes": jax.process_count(),
        "model": name,
        "title": _title(name, variant),
        "variant": variant,
        "epochs": epochs,
        "steps": total_steps,
        "parameters": sum(net.param_counts().values()),
        "history": history,
        "confusion_matrix": cm.tolist(),
        "config": config,
    }
    if out_dir is not None and main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        metrics["plots"] = _plots(out_dir, history, cm, _title(name, variant))
        # Atomic: a kill mid-write leaves the previous metrics.json (or none), never 0 bytes.
        atomic_write(out_dir / METRICS, json.dumps(metrics, indent=2) + "\n")
    return net, metrics


def _split(model: nnx.Module):
    """``(graphdef, params, rest)``: the parameters apart from the rest of the state
    (BatchNorm's running statistics)."""
    graphdef, params, *rest = nnx.split(model, nnx.Param, ...)
    return graphdef, params, rest[0]


def _title(name: str, variant: str) -> str:
    return f"LeNet-5 ({variant})" if name == "lenet5" else TITLES[name]


def _check_args(*, data, variant, epochs, batch_size, learning_rate, algorithm, resume, out,
                model="lenet5", width=None):
    """``train``'s arguments checked (before any work); returns the defaulted
    ``(epochs, batch_size, learning_rate)``. ``ValueError``/``TypeError`` name the argument."""
    if model not in MODELS:
        raise ValueError(f"train: model must be one of {MODELS}, got {model!r}")
    if variant not in VARIANTS:
        raise ValueError(f"train: variant must be one of {VARIANTS}, got {variant!r}")
    if isinstance(data, str) and data not in DATA:
        raise ValueError(f"train: data must be one of {DATA} or arrays, got {data!r}")
    if model == "lenet5" and data == "cifar10":
        raise ValueError("train: model 'lenet5' takes 32x32 grayscale images, not cifar10's RGB "
                         "ones; use resnet18 or mobilenetv2")
    if width is not None:
        if model == "lenet5":
            raise ValueError(f"train: width is for resnet18 and mobilenetv2, not lenet5, got "
                             f"width={width!r}")
        nnx.eval_shape(lambda: build(model, 10, 3, variant=variant, width=width,
                                     algorithm="auto", rngs=nnx.Rngs(0)))  # the model's checks
    recipe = _recipe(model, variant)
    if epochs is None:
        epochs = recipe.get(f"{data}_epochs" if isinstance(data, str) else "", recipe["epochs"])
    learning_rate = recipe["learning_rate"] if learning_rate is None else learning_rate
    batch_size = recipe["batch_size"] if batch_size is None else batch_size
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"train: {name} must be a positive int, got {value!r}")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float | np.floating):
        raise TypeError(f"train: learning_rate must be a number, got {learning_rate!r}")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"train: learning_rate must be > 0, got {learning_rate!r}")
    names = [a.name for a in jaxconv.algorithms()]
    if not isinstance(algorithm, str) or (algorithm != "auto" and algorithm not in names):
        raise ValueError(f"train: algorithm must be 'auto' or one of {', '.join(map(repr, names))}, "
                         f"got {algorithm!r}")
    if resume and out is None:
        raise ValueError("train: resume=True needs out=DIR, the folder holding the checkpoint")
    return epochs, batch_size, learning_rate


def _plots(out_dir: Path, history: list[dict], cm: np.ndarray, title: str) -> list[str]:
    try:
        from jaxconv.viz.training import plot_confusion_matrix, plot_training_curves
    except ImportError as e:  # matplotlib is optional; the run itself still counts
        print(f"jaxconv train: skipping plots ({e}); pip install 'jaxconv[models]'", file=sys.stderr)
        return []
    written = []
    fig = plot_training_curves(history, title=title)
    save_figure(fig, out_dir / "training_curves.png", dpi=120)
    written.append("training_curves.png")
    fig = plot_confusion_matrix(cm)
    save_figure(fig, out_dir / "confusion_matrix.png", dpi=120)
    written.append("confusion_matrix.png")
    return written
