"""The ``models`` benchmark case: ResNet-18 and MobileNetV2 end to end, plain Flax vs jaxconv vs
PyTorch.

What a user waits for: the training step (``nnx.value_and_grad`` + an optax SGD-momentum update
under ``nnx.jit``; in PyTorch ``backward`` + ``torch.optim.SGD.step``) and inference (eval-mode
BatchNorm) of the CIFAR-style networks of :mod:`jaxconv.models` on 32x32x3 images, float32.
The three implementations run the same network from the same weights:

- ``flax``: the model with every ``nnx.Conv`` on Flax's default ``lax.conv_general_dilated``
  (``use_jaxconv(model, algorithm=None)``);
- ``jaxconv``: the same model as built, its convolutions through
  ``jaxconv.conv_general_dilated(algorithm="auto")``;
- ``torch``: ``torch_models`` (the networks written again in PyTorch) with the Flax weights.

Each is compiled (first call timed as ``compile_s``; torch's first call builds oneDNN's
primitives) and its first result checked against plain Flax's (loss or logits), then all are
timed in :func:`interleaved` rounds. Used by ``benchmarks/compare.py models`` and by the
``nox -s bench`` suite (``test_bench_models.py``); this module imports torch only when asked.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from jaxconv.convolution import tuning

CASE = "models"
TITLE = "end-to-end networks: CIFAR-style ResNet-18 and MobileNetV2, 32x32x3 images"
MODES = ("train", "infer")
MODE_TITLES = {"train": "training step", "infer": "inference"}
IMPLS = ("flax", "jaxconv", "torch")
IMPL_TITLES = {"flax": "plain Flax", "jaxconv": "jaxconv", "torch": "torch"}
NETWORK_TITLES = {"resnet18": "ResNet-18", "mobilenetv2": "MobileNetV2"}
LEARNING_RATE, MOMENTUM = 0.01, 0.9
# torch's OpenMP threads spin for a while after each call; measured, they slowed the next JAX
# call by ~30% (XLA's convolution timed 10.8 ms right after torch, 8.3 ms otherwise).
TORCH_REST_S = 0.01
# Agreement with plain Flax's first result, relative to its largest magnitude: float32 networks
# 20-50 layers deep, summation orders differing per algorithm.
RTOL = 2e-3


@dataclasses.dataclass(frozen=True)
class ModelRow:
    """A network at a batch size (``width``/``image`` shrink it for the smoke test)."""

    network: str
    batch: int
    width: float | None = None  # None: the paper's network
    image: int = 32

    @property
    def label(self) -> str:
        size = "" if self.width is None else f" width {self.width:g}"
        pixels = "" if self.image == 32 else f" {self.image}x{self.image}"
        return f"{NETWORK_TITLES[self.network]}{size}{pixels} b{self.batch}"

    @property
    def slug(self) -> str:
        return self.label.replace(" ", "_").replace("-", "")


ROWS = {
    "full": tuple(ModelRow(n, b) for n in NETWORK_TITLES for b in (16, 64)),
    "quick": tuple(ModelRow(n, 16) for n in NETWORK_TITLES),
    "tiny": (ModelRow("resnet18", 2, width=2, image=8), ModelRow("mobilenetv2", 2, width=0.1, image=8)),
}


@dataclasses.dataclass(frozen=True)
class ModelPoint:
    """One timed group of the suite: a row and a mode, every implementation interleaved."""

    row: ModelRow
    mode: str

    @property
    def id(self) -> str:
        return f"{CASE}-{self.row.slug}-{self.mode}"


def points(size: str = "full") -> list[ModelPoint]:
    return [ModelPoint(row, mode) for mode in MODES for row in ROWS[size]]


def torch_installed() -> bool:
    from importlib import util

    return util.find_spec("torch") is not None


def inputs(row: ModelRow) -> tuple[np.ndarray, np.ndarray]:
    """Seeded NHWC images ``(batch, image, image, 3)`` ~ N(0, 1) and labels 0..9."""
    rng = np.random.default_rng(row.batch)
    x = rng.standard_normal((row.batch, row.image, row.image, 3), dtype=np.float32)
    return x, rng.integers(0, 10, row.batch).astype(np.int32)


def network(row: ModelRow):
    """The Flax network of ``row`` with jaxconv's ``auto`` convolutions, seed 0."""
    from jaxconv.models import MobileNetV2, ResNet

    kwargs = {} if row.width is None else {"width": row.width}
    if row.network == "resnet18":
        return ResNet.resnet18(10, rngs=0, **kwargs)
    return MobileNetV2(10, rngs=0, **kwargs)


def _jax_call(row: ModelRow, mode: str, impl: str) -> Callable[[], np.ndarray]:
    import jax
    import optax
    from flax import nnx

    from jaxconv.models import use_jaxconv

    model = network(row)
    if impl == "flax":
        use_jaxconv(model, algorithm=None)  # every nnx.Conv back on lax.conv_general_dilated
    x, y = (jax.device_put(a) for a in inputs(row))
    if mode == "infer":
        model.eval()
        forward = nnx.jit(lambda m, x: m(x))
        return lambda: np.asarray(forward(model, x))
    opt = nnx.Optimizer(model, optax.sgd(LEARNING_RATE, momentum=MOMENTUM), wrt=nnx.Param)

    @nnx.jit
    def step(m, opt, x, y):
        def loss_fn(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(m)
        opt.update(m, grads)
        return loss

    return lambda: np.asarray(step(model, opt, x, y))


def _torch_call(row: ModelRow, mode: str) -> Callable[[], np.ndarray]:
    import torch
    import torch_models

    torch.set_num_threads(os.cpu_count() or 1)
    kwargs = {} if row.width is None else {"width": row.width}
    net = (torch_models.ResNet(num_classes=10, **kwargs) if row.network == "resnet18"
           else torch_models.MobileNetV2(num_classes=10, **kwargs))
    torch_models.load_flax_state(net, network(row))
    x, y = inputs(row)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NCHW
    yt = torch.from_numpy(y.astype(np.int64))
    if mode == "infer":
        net.eval()

        def infer():
            with torch.no_grad():
                return net(xt).numpy()
        return infer
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
        return loss.detach().numpy()
    return step


def calls(row: ModelRow, mode: str, impls: Sequence[str] = IMPLS) -> dict[str, Callable[[], np.ndarray]]:
    """One callable per implementation: a training step (returns the loss) or inference
    (returns the logits); every call blocks until its result is ready."""
    return {impl: _torch_call(row, mode) if impl == "torch" else _jax_call(row, mode, impl)
            for impl in impls}


def compile_and_check(fns: Mapping[str, Callable[[], np.ndarray]]) -> dict[str, float]:
    """Call each once (timed: trace + compile + one run); check every first result against
    plain Flax's; return the seconds per implementation. ``AssertionError`` names the one
    that differs."""
    seconds, first = {}, {}
    for impl, fn in fns.items():
        start = time.perf_counter()
        first[impl] = np.asarray(fn(), np.float64)
        seconds[impl] = time.perf_counter() - start
    want = first["flax"]
    scale = float(np.max(np.abs(want))) or 1.0
    for impl, got in first.items():
        err = float(np.max(np.abs(got - want)))
        if not err <= RTOL * scale:  # also catches NaN
            raise AssertionError(f"{impl}: the first result differs from plain Flax's by "
                                 f"{err:.3g} > {RTOL:g} x {scale:.3g}")
    return seconds


def interleaved(fns: Mapping[str, Callable[[], object]], rounds: int, seed: int = 1,
                programs: Mapping[str, object] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each function over ``rounds`` rounds, by jaxconv's timing harness
    (``tuning.interleaved_times``): a fresh random order each round, each function called once
    untimed right before its timed call (a call right after a memory-hungry neighbour runs
    slower; a fixed order would always favour the same one), so load from other processes hits
    them alike; torch's threads get :data:`TORCH_REST_S` after its call. ``programs``: the
    compiled programs behind some of ``fns``; names of one program are timed once, as one."""
    return tuning.interleaved_times(fns, rounds, seed=seed, programs=programs,
                                    warm_each_round=True, rest_s={"torch": TORCH_REST_S})


def summary(times: Mapping[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """pytest-benchmark's ``stats`` fields from raw seconds."""
    return {name: {"min": min(t), "max": max(t), "mean": statistics.fmean(t),
                   "median": statistics.median(t), "rounds": len(t),
                   "stddev": statistics.stdev(t) if len(t) > 1 else 0.0}
            for name, t in times.items()}
