"""Train LeNet-5 with optax, data-parallel over devices with JAX's SPMD partitioner.

``train(...)`` is the function other code calls; ``jaxconv train`` (``jaxconv/cli/train.py``)
is its command line.

Data parallelism: the devices form a 1-D :class:`jax.sharding.Mesh` with axis ``"data"``; every
batch is a global array sharded along its first axis (``NamedSharding(mesh, P("data"))``) and
the parameters and optimizer state are replicated (``P()``). The jitted step is written for one
global batch; XLA's SPMD partitioner splits it and inserts the gradient all-reduce, so 1 and N
devices compute the same update up to float32 summation order.

Multi-host: call ``jax.distributed.initialize()`` (``jaxconv train --distributed``) on every
host before anything else; the mesh then spans all hosts' devices. Every host runs the same
program with the same seed, so each builds the same global batch order, and
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

from .checkpoint import CheckpointError, check_checkpoint, load_checkpoint, save_checkpoint
from .lenet import VARIANTS, LeNet5

__all__ = ["DEFAULTS", "confusion_matrix", "learning_rate_at", "train"]

# Per-variant defaults, chosen on the 2-core CPU box with the digits data (docs/lenet.md).
DEFAULTS: dict[str, dict[str, Any]] = {
    "modern": {"epochs": 30, "mnist_epochs": 10, "batch_size": 32, "learning_rate": 2e-3,
               "label_smoothing": 0.1, "weight_decay": 1.0},
    "classic": {"epochs": 30, "mnist_epochs": 10, "batch_size": 64, "learning_rate": 2e-3,
                "label_smoothing": 0.0, "weight_decay": 0.0},
}
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


def _load_data(data, mnist_dir):
    if isinstance(data, str):
        from jaxconv.data import datasets as digits_module

        if data == "digits":
            return digits_module.digits()
        if data == "mnist":
            return digits_module.mnist(mnist_dir)
        raise ValueError(f"train: data must be 'digits', 'mnist' or arrays, got {data!r}")
    try:
        x_train, y_train, x_test, y_test = data
    except (TypeError, ValueError) as e:
        raise TypeError(
            "train: data must be 'digits', 'mnist' or a tuple (x_train, y_train, x_test, y_test)"
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
def _make_steps(graphdef, repl: NamedSharding, label_smoothing: float = 0.0,
                weight_decay: float = 0.0):
    """Jitted ``(train_step, eval_step)`` for a model structure, a mesh and a loss (cached: tests
    and repeated ``train`` calls with the same model, mesh and batch shape compile once).

    The loss is softmax cross-entropy against labels smoothed by ``label_smoothing``; the update
    is Adam's plus decoupled weight decay (AdamW): ``p -= lr * (adam(g) + weight_decay * p)``."""

    def loss_fn(params, x, y):
        logits = nnx.merge(graphdef, params)(x)
        if label_smoothing:
            target = optax.smooth_labels(jax.nn.one_hot(y, logits.shape[-1]), label_smoothing)
            loss = optax.softmax_cross_entropy(logits, target).mean()
        else:
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, logits

    @functools.partial(jax.jit, out_shardings=repl)
    def train_step(params, opt_state, x, y, lr):
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y)
        updates, opt_state = _ADAM.update(grads, opt_state, params)
        params = jax.tree.map(lambda p, u: p - lr * (u + weight_decay * p), params, updates)
        acc = jnp.mean((jnp.argmax(logits, -1) == y).astype(jnp.float32))
        return params, opt_state, loss, acc

    @functools.partial(jax.jit, out_shardings=repl)
    def eval_step(params, x, y):
        logits = nnx.merge(graphdef, params)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y), jnp.argmax(logits, -1)

    return train_step, eval_step


def _global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from host data every process holds; each device gets only its rows."""
    return jax.make_array_from_callback(array.shape, sharding, lambda idx: array[idx])


def _evaluate(eval_step, params, x, y, batch_sh, n_dev) -> tuple[float, np.ndarray]:
    losses, preds = [], []
    size = EVAL_BATCH * n_dev
    for start in range(0, len(x), size):
        xb, yb = x[start:start + size], y[start:start + size]
        # One batch shape (one compilation), divisible by the devices; padded rows are dropped.
        pad = size - len(xb)
        if pad:
            xb = np.concatenate([xb, np.repeat(xb[-1:], pad, 0)])
            yb = np.concatenate([yb, np.repeat(yb[-1:], pad, 0)])
        loss, pred = eval_step(params, _global(xb, batch_sh), _global(yb, batch_sh))
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
) -> tuple[LeNet5, dict]:
    """Train a :class:`LeNet5` with Adam and a warmup + cosine learning-rate schedule
    (:func:`learning_rate_at`); the modern variant adds decoupled weight decay (AdamW) and label
    smoothing (``DEFAULTS[variant]``).

    Args:
      data: ``"digits"`` (scikit-learn's, offline), ``"mnist"`` (see ``mnist_dir``) or a tuple
        ``(x_train, y_train, x_test, y_test)`` of NHWC ``(N, 32, 32, 1)`` images and int labels.
      variant: ``"modern"`` or ``"classic"``.
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
      resume: continue from ``out/checkpoint.msgpack`` when it exists (same variant required).
      progress: show a tqdm progress bar with loss and accuracy.
      learning_rate: peak learning rate; default per variant.
      augment: random small rotations, scalings and shifts of a fraction ``AUGMENT_PROB`` of
        the training images (``MAX_ROTATE`` degrees, ``MAX_SCALE``, ``MAX_SHIFT`` pixels).
      mnist_dir: a folder with the MNIST IDX files; ``None`` downloads them into the cache.

    Returns:
      ``(model, metrics)``: the trained model (parameters on the host) and the metrics dict
      also written to ``metrics.json``: ``test_accuracy``, ``test_size``, ``train_seconds``,
      ``devices``, ``variant``, ``epochs``, ``history`` (one dict per epoch),
      ``confusion_matrix`` and the configuration.

    Raises:
      ValueError: bad arguments; :class:`~jaxconv.models.CheckpointError` for a checkpoint of
        another variant when resuming.
    """
    epochs, batch_size, learning_rate = _check_args(
        data=data, variant=variant, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, algorithm=algorithm, resume=resume, out=out)
    out_dir = Path(out) if out is not None else None
    ckpt = out_dir / CHECKPOINT if out_dir is not None else None
    if out_dir is not None:  # before any work: every file this run will write can be written
        for name in (CHECKPOINT, METRICS):
            check_output(out_dir / name, "train", make_parents=True)
    resume_extra = None
    if resume and ckpt is not None and ckpt.is_file():  # a bad checkpoint fails before training
        resume_extra = _check_resume(ckpt, variant)

    devs = _devices(devices)
    n_dev = len(devs)
    if batch_size % n_dev:
        raise ValueError(
            f"train: batch_size {batch_size} must be divisible by the number of devices {n_dev}"
        )
    x_train, y_train, x_test, y_test = _load_data(data, mnist_dir)
    num_classes = int(max(y_train.max(), y_test.max())) + 1 if len(y_train) else 10
    num_classes = max(num_classes, 10)
    if len(x_train) < batch_size:
        raise ValueError(
            f"train: batch_size {batch_size} is larger than the {len(x_train)} training images"
        )
    steps_per_epoch = len(x_train) // batch_size
    total_steps = epochs * steps_per_epoch

    model = LeNet5(num_classes, variant=variant, algorithm=algorithm, rngs=nnx.Rngs(seed))
    graphdef, params = nnx.split(model)
    opt_state = _ADAM.init(params)
    start_epoch, history, prior_seconds = 0, [], 0.0
    main_process = jax.process_index() == 0
    if resume_extra is not None and ckpt is not None:
        restored, info = load_checkpoint(ckpt, variant=variant, algorithm=algorithm,
                                         opt_state=opt_state)
        if restored.num_classes != num_classes:
            raise CheckpointError(
                f"train: {ckpt} holds a model of {restored.num_classes} classes but the data "
                f"has {num_classes}; train a new model (without --resume)"
            )
        graphdef, params = nnx.split(restored)
        if info["opt_state"] is not None:
            opt_state = info["opt_state"]
        start_epoch = resume_extra["epoch"]
        history = resume_extra["history"]
        prior_seconds = resume_extra["train_seconds"]
    elif resume and main_process:
        print(f"jaxconv train: no checkpoint at {ckpt}; starting from scratch", file=sys.stderr)

    mesh = Mesh(np.array(devs), ("data",))
    batch_sh, repl = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    params = jax.device_put(params, repl)
    opt_state = jax.device_put(opt_state, repl)
    recipe = DEFAULTS[variant]
    train_step, eval_step = _make_steps(graphdef, repl, recipe["label_smoothing"],
                                        recipe["weight_decay"])

    config = {
        "data": data if isinstance(data, str) else "arrays", "variant": variant, "epochs": epochs,
        "batch_size": batch_size, "seed": seed, "learning_rate": learning_rate,
        "algorithm": algorithm, "augment": augment,
        "label_smoothing": recipe["label_smoothing"], "weight_decay": recipe["weight_decay"],
    }

    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, initial=start_epoch * steps_per_epoch, unit="step",
               disable=not (progress and main_process), dynamic_ncols=True, leave=True)
    t0, c0 = time.perf_counter(), time.process_time()
    for epoch in range(start_epoch, epochs):
        bar.set_description(f"{variant} epoch {epoch + 1}/{epochs}")
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
                params, opt_state, loss, acc = train_step(
                    params, opt_state, _global(xb, batch_sh), _global(y_train[idx], batch_sh), lr,
                )
            if pending is not None:
                sum_loss += float(pending[0])
                sum_acc += float(pending[1])
                bar.update()
                bar.set_postfix(loss=f"{sum_loss / i:.4f}", acc=f"{sum_acc / i:.4f}")
            pending = (loss, acc)
        test_loss, pred = _evaluate(eval_step, params, x_test, y_test, batch_sh, n_dev)
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
            save_checkpoint(ckpt, nnx.merge(graphdef, params), opt_state=opt_state, extra={
                "epoch": epoch + 1, "history": history, "config": config,
                "train_seconds": prior_seconds + time.perf_counter() - t0,
            })
    bar.close()
    train_seconds = prior_seconds + time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0

    params = jax.device_get(params)
    model = nnx.merge(graphdef, params)
    test_loss, pred = _evaluate(eval_step, jax.device_put(params, repl), x_test, y_test,
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
        "variant": variant,
        "epochs": epochs,
        "steps": total_steps,
        "parameters": sum(model.param_counts().values()),
        "history": history,
        "confusion_matrix": cm.tolist(),
        "config": config,
    }
    if out_dir is not None and main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        metrics["plots"] = _plots(out_dir, history, cm, variant)
        # Atomic: a kill mid-write leaves the previous metrics.json (or none), never 0 bytes.
        atomic_write(out_dir / METRICS, json.dumps(metrics, indent=2) + "\n")
    return model, metrics


def _check_args(*, data, variant, epochs, batch_size, learning_rate, algorithm, resume, out):
    """``train``'s arguments checked (before any work); returns the defaulted
    ``(epochs, batch_size, learning_rate)``. ``ValueError``/``TypeError`` name the argument."""
    if variant not in VARIANTS:
        raise ValueError(f"train: variant must be one of {VARIANTS}, got {variant!r}")
    if isinstance(data, str) and data not in ("digits", "mnist"):
        raise ValueError(f"train: data must be 'digits', 'mnist' or arrays, got {data!r}")
    if epochs is None:
        epochs = DEFAULTS[variant]["mnist_epochs" if data == "mnist" else "epochs"]
    learning_rate = DEFAULTS[variant]["learning_rate"] if learning_rate is None else learning_rate
    batch_size = DEFAULTS[variant]["batch_size"] if batch_size is None else batch_size
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


def _check_resume(ckpt: Path, variant: str) -> dict:
    """The checkpoint's training state (epoch, history, seconds), checked; CheckpointError else."""
    extra = check_checkpoint(ckpt, variant=variant)
    epoch, history = extra.get("epoch", 0), extra.get("history", [])
    seconds = extra.get("train_seconds", 0.0)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"train: {ckpt}: extra 'epoch' must be an int >= 0, got {epoch!r}")
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise CheckpointError(f"train: {ckpt}: extra 'history' must be a list of dicts")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise CheckpointError(
            f"train: {ckpt}: extra 'train_seconds' must be a number, got {seconds!r}"
        )
    return {"epoch": epoch, "history": list(history), "train_seconds": float(seconds)}


def _plots(out_dir: Path, history: list[dict], cm: np.ndarray, variant: str) -> list[str]:
    try:
        from jaxconv.viz.training import plot_confusion_matrix, plot_training_curves
    except ImportError as e:  # matplotlib is optional; the run itself still counts
        print(f"jaxconv train: skipping plots ({e}); pip install 'jaxconv[models]'", file=sys.stderr)
        return []
    written = []
    fig = plot_training_curves(history, title=f"LeNet-5 ({variant})")
    save_figure(fig, out_dir / "training_curves.png", dpi=120)
    written.append("training_curves.png")
    fig = plot_confusion_matrix(cm)
    save_figure(fig, out_dir / "confusion_matrix.png", dpi=120)
    written.append("confusion_matrix.png")
    return written
