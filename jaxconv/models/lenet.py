"""LeNet-5 as a Flax NNX module built from jaxconv's functional ops.

Two variants behind one class: the modern LeNet (ReLU, max-pooling, dense head) and, through
:meth:`LeNet5.classic`, the 1998 network of LeCun et al. with its trainable subsampling, C3's
partial connection table and the scaled tanh.

References:
  Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
  recognition", Proc. IEEE 86(11):2278-2324, 1998 (section II-B, Table I, appendix A).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

import jaxconv

__all__ = ["C3_TABLE", "VARIANTS", "LeNet5", "param_shapes"]

VARIANTS = ("modern", "classic")
INPUT_SHAPE = (32, 32, 1)  # H, W, C

# Table I of LeCun et al. (1998): which S2 feature maps (rows) each C3 map (columns) reads.
# Maps 0-5 read 3 contiguous S2 maps, 6-11 read 4 contiguous, 12-14 read 4 non-contiguous
# and 15 reads all 6: 60 connections, so C3 has 60 * 25 weights + 16 biases = 1,516 parameters.
C3_TABLE = np.array(
    [
        # 0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
        [1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1],
        [1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1],
        [1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1],
        [0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1],
        [0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1],
        [0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1],
    ],
    dtype=bool,
)
C3_TABLE.setflags(write=False)
_C3_IN, _C3_OUT = np.nonzero(C3_TABLE)  # the 60 connections, (S2 map, C3 map) pairs

_DTYPE = jnp.float32


class _Normal:
    """Standard normal draws for every weight of a model from one ``jax.random`` call.

    One draw (then NumPy slices) instead of one ``jax.random.normal`` per layer: each distinct
    shape would be its own XLA compilation, which dominates building a small model.
    """

    def __init__(self, key, shapes):
        total = sum(math.prod(s) for s in shapes)
        self.buf = np.asarray(jax.random.normal(key, (total,), _DTYPE))
        self.pos = 0

    def __call__(self, shape, fan_in) -> jax.Array:
        """Weights of ``shape`` with variance ``1 / fan_in`` (LeCun normal; ``fan_in`` broadcasts)."""
        n = math.prod(shape)
        z = self.buf[self.pos:self.pos + n].reshape(shape)
        self.pos += n
        return jnp.asarray(z / np.sqrt(fan_in), _DTYPE)


def _as_rngs(rngs: nnx.Rngs | int | np.integer | jax.Array | None) -> nnx.Rngs:
    if isinstance(rngs, nnx.Rngs):
        return rngs
    if rngs is None:
        return nnx.Rngs(0)
    if isinstance(rngs, np.integer):  # nnx.Rngs takes a Python int only
        return nnx.Rngs(int(rngs))
    if isinstance(rngs, int | jax.Array):
        return nnx.Rngs(rngs)
    raise TypeError(f"LeNet5: rngs must be an nnx.Rngs, an int seed or a PRNG key, got {rngs!r}")


class _Conv(nnx.Module):
    """5x5 VALID convolution, HWIO kernel ``(k, k, C, O)``, through ``jaxconv.conv2d``."""

    def __init__(self, cin: int, cout: int, k: int, *, algorithm: str, gain: float, init: _Normal):
        fan_in = k * k * cin
        self.kernel = nnx.Param(init((k, k, cin, cout), fan_in / gain))
        self.bias = nnx.Param(jnp.zeros((cout,), _DTYPE))
        self.algorithm = algorithm

    def __call__(self, x):
        y = jaxconv.conv2d(x, self.kernel[...], algorithm=self.algorithm)
        return y + self.bias[...].reshape(1, 1, 1, -1)


class _PartialConv(nnx.Module):
    """C3: a 5x5 convolution whose HWIO kernel is zero outside :data:`C3_TABLE`.

    Only the 60 connected 5x5 filters are parameters (``(5, 5, 60)``); they are scattered into the
    full ``(5, 5, 6, 16)`` kernel, i.e. the connection table acts as a kernel mask.
    """

    def __init__(self, *, algorithm: str, gain: float, init: _Normal):
        fan_in = 25 * C3_TABLE.sum(axis=0)[_C3_OUT]  # per connection: 25 x (inputs of its map)
        self.kernel = nnx.Param(init((5, 5, len(_C3_IN)), fan_in / gain))
        self.bias = nnx.Param(jnp.zeros((C3_TABLE.shape[1],), _DTYPE))
        self.algorithm = algorithm

    def full_kernel(self) -> jax.Array:
        """The masked HWIO kernel ``(5, 5, 6, 16)``."""
        w = self.kernel[...]
        return jnp.zeros((5, 5, *C3_TABLE.shape), w.dtype).at[:, :, _C3_IN, _C3_OUT].set(w)

    def __call__(self, x):
        y = jaxconv.conv2d(x, self.full_kernel(), algorithm=self.algorithm)
        return y + self.bias[...].reshape(1, 1, 1, -1)


class _Subsample(nnx.Module):
    """LeNet-5's S-layers: each map's 2x2 block sum times a trainable coefficient plus a bias."""

    def __init__(self, channels: int):
        # 0.25 starts as an average; the paper initializes all weights small and random instead.
        self.coef = nnx.Param(jnp.full((channels,), 0.25, _DTYPE))
        self.bias = nnx.Param(jnp.zeros((channels,), _DTYPE))

    def __call__(self, x):
        block_sum = 4.0 * jaxconv.avg_pool2d(x, 2)
        return block_sum * self.coef[...].reshape(1, 1, 1, -1) + self.bias[...].reshape(1, 1, 1, -1)


class _Dense(nnx.Module):
    def __init__(self, nin: int, nout: int, *, gain: float, init: _Normal):
        self.kernel = nnx.Param(init((nin, nout), nin / gain))
        self.bias = nnx.Param(jnp.zeros((nout,), _DTYPE))

    def __call__(self, x):
        return x @ self.kernel[...] + self.bias[...].reshape(1, -1)


def _check_activation(activation):
    if activation is not None and not callable(activation):
        raise TypeError(f"LeNet5: activation must be a callable or None, got {activation!r}")
    return activation


def _flatten(x):
    # The explicit size, not -1: a reshape of an empty batch cannot infer it.
    return x.reshape(x.shape[0], math.prod(x.shape[1:]))


def param_shapes(variant: str, num_classes: int) -> dict[str, dict[str, tuple[int, ...]]]:
    """The parameter shapes of a LeNet5, as ``nnx.to_pure_dict`` nests them, with no arrays made.

    ``{"conv1": {"kernel": (5, 5, 1, 6), "bias": (6,)}, ...}``; checkpoints are checked against it
    before a model is built.
    """
    if variant not in VARIANTS:
        raise ValueError(f"param_shapes: variant must be one of {VARIANTS}, got {variant!r}")
    k = int(num_classes)

    def layer(kernel, out):
        return {"kernel": tuple(kernel), "bias": (out,)}

    if variant == "modern":
        return {"conv1": layer((5, 5, 1, 6), 6), "conv2": layer((5, 5, 6, 16), 16),
                "fc1": layer((400, 120), 120), "fc2": layer((120, 84), 84), "fc3": layer((84, k), k)}
    return {"C1": layer((5, 5, 1, 6), 6), "S2": {"coef": (6,), "bias": (6,)},
            "C3": layer((5, 5, len(_C3_IN)), C3_TABLE.shape[1]), "S4": {"coef": (16,), "bias": (16,)},
            "C5": layer((5, 5, 16, 120), 120), "F6": layer((120, 84), 84), "output": layer((84, k), k)}


class LeNet5(nnx.Module):
    """LeNet-5 on 32x32 grayscale images, NHWC ``(N, 32, 32, 1)``, built from jaxconv's ops.

    ``LeNet5(...)`` is the modern variant the article describes; :meth:`LeNet5.classic` is the
    1998 network. Calling the model returns logits ``(N, num_classes)``; :meth:`features`
    returns every stage's output by name.

    Modern (61,706 parameters with 10 classes)::

        conv1 6@5x5 -> act1 ReLU -> pool1 max 2x2 -> conv2 16@5x5 -> act2 ReLU -> pool2 max 2x2
        -> flatten 400 -> fc1 120 -> act3 ReLU -> fc2 84 -> act4 ReLU -> fc3 10 -> softmax

    Classic (LeCun et al. 1998; parameter layers named as in the paper, 60,850 parameters)::

        conv1 = C1 6@5x5 -> act1 -> pool1 = S2 -> act2 -> conv2 = C3 16@5x5 (Table I)
        -> act3 -> pool2 = S4 -> act4 -> conv3 = C5 120@5x5 -> act5 -> flatten 120
        -> fc1 = F6 84 -> act6 -> fc2 = output 10 -> softmax

    Every ``act`` is the scaled tanh ``1.7159 tanh(2a/3)``. S2/S4 sum each 2x2 block, multiply
    by a trainable coefficient and add a trainable bias, per map. Per-layer parameters equal the
    paper's: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164. The paper's output layer is a
    set of Euclidean RBF units with fixed 7x12 bitmap codes; here it is a trainable dense layer
    ``84 -> 10`` (850 parameters) trained with softmax cross-entropy, as modern reproductions do.

    Args:
      num_classes: size of the output layer.
      algorithm: the ``jaxconv.conv2d`` algorithm every convolution uses (``"auto"`` or a name
        from ``jaxconv.algorithms()``).
      variant: ``"modern"`` or ``"classic"`` (prefer :meth:`LeNet5.classic`).
      rngs: ``nnx.Rngs`` or an int seed for the initial weights.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxconv.models import LeNet5
      >>> model = LeNet5(rngs=0)
      >>> model(jnp.zeros((2, 32, 32, 1))).shape
      (2, 10)
      >>> list(LeNet5.classic(rngs=0).param_counts().values())
      [156, 12, 1516, 32, 48120, 10164, 850]

    References:
      Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
      recognition", Proc. IEEE 86(11), 1998.
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        algorithm: str = "auto",
        variant: str = "modern",
        rngs: nnx.Rngs | int | None = None,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"LeNet5: variant must be one of {VARIANTS}, got {variant!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
            raise TypeError(f"LeNet5: num_classes must be an int, got {num_classes!r}")
        if num_classes < 1:
            raise ValueError(f"LeNet5: num_classes must be >= 1, got {num_classes}")
        names = [a.name for a in jaxconv.algorithms()]
        if not isinstance(algorithm, str) or (algorithm != "auto" and algorithm not in names):
            raise ValueError(
                f"LeNet5: unknown algorithm {algorithm!r}; expected 'auto' or one of "
                f"{', '.join(map(repr, names))}"
            )
        rngs = _as_rngs(rngs)
        self.variant = variant
        self.num_classes = int(num_classes)
        self.algorithm = algorithm
        k = self.num_classes
        if variant == "modern":
            shapes = [(5, 5, 1, 6), (5, 5, 6, 16), (400, 120), (120, 84), (84, k)]
            init = _Normal(rngs.params(), shapes)
            relu_gain = 2.0  # He initialization for ReLU layers
            self.conv1 = _Conv(1, 6, 5, algorithm=algorithm, gain=relu_gain, init=init)
            self.conv2 = _Conv(6, 16, 5, algorithm=algorithm, gain=relu_gain, init=init)
            self.fc1 = _Dense(400, 120, gain=relu_gain, init=init)
            self.fc2 = _Dense(120, 84, gain=relu_gain, init=init)
            self.fc3 = _Dense(84, k, gain=1.0, init=init)
        else:
            shapes = [(5, 5, 1, 6), (5, 5, 60), (5, 5, 16, 120), (120, 84), (84, k)]
            init = _Normal(rngs.params(), shapes)
            self.C1 = _Conv(1, 6, 5, algorithm=algorithm, gain=1.0, init=init)
            self.S2 = _Subsample(6)
            self.C3 = _PartialConv(algorithm=algorithm, gain=1.0, init=init)
            self.S4 = _Subsample(16)
            self.C5 = _Conv(16, 120, 5, algorithm=algorithm, gain=1.0, init=init)
            self.F6 = _Dense(120, 84, gain=1.0, init=init)
            self.output = _Dense(84, k, gain=1.0, init=init)

    @classmethod
    def classic(cls, num_classes: int = 10, *, algorithm: str = "auto",
                rngs: nnx.Rngs | int | None = None) -> LeNet5:
        """The 1998 LeNet-5 (see the class docstring for the layers and what differs)."""
        return cls(num_classes, algorithm=algorithm, variant="classic", rngs=rngs)

    def _stages(self, activation: Callable | None = None) -> list[tuple[str, Callable]]:
        if self.variant == "modern":
            relu = jaxconv.relu if activation is None else activation
            return [
                ("conv1", self.conv1), ("act1", relu), ("pool1", jaxconv.max_pool2d),
                ("conv2", self.conv2), ("act2", relu), ("pool2", jaxconv.max_pool2d),
                ("flatten", _flatten),
                ("fc1", self.fc1), ("act3", relu), ("fc2", self.fc2), ("act4", relu),
                ("fc3", self.fc3),
            ]
        squash = jaxconv.lecun_tanh if activation is None else activation
        return [
            ("conv1", self.C1), ("act1", squash), ("pool1", self.S2), ("act2", squash),
            ("conv2", self.C3), ("act3", squash), ("pool2", self.S4), ("act4", squash),
            ("conv3", self.C5), ("act5", squash), ("flatten", _flatten),
            ("fc1", self.F6), ("act6", squash), ("fc2", self.output),
        ]

    def _check_input(self, x) -> tuple[jax.Array, bool]:
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            x = np.asarray(x)
        if not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)):
            raise TypeError(f"LeNet5: x must be a real-valued image batch, got dtype {x.dtype}")
        shape = tuple(x.shape)
        unbatched = len(shape) == 3
        if shape[-3:] != INPUT_SHAPE or len(shape) not in (3, 4):
            raise ValueError(
                f"LeNet5: x must be NHWC images of shape (N, 32, 32, 1) (or one image "
                f"(32, 32, 1)), got shape {shape}"
            )
        x = jnp.asarray(x, _DTYPE)
        return (x[None] if unbatched else x), unbatched

    def __call__(self, x: ArrayLike, *, activation: Callable | None = None) -> jax.Array:
        """Logits ``(N, num_classes)`` for images ``(N, 32, 32, 1)`` (``(num_classes,)`` unbatched).

        ``activation`` (default ``None``: the variant's own, ReLU or the scaled tanh) replaces
        every activation stage, e.g. :func:`jaxconv.explain.guided_relu` for guided backprop.
        """
        x, unbatched = self._check_input(x)
        activation = _check_activation(activation)
        if x.shape[0] == 0:  # an empty batch: empty logits, without running the convolutions
            return self._empty(x)["logits"]
        y = self._logits(x, activation)
        return y[0] if unbatched else y

    def _empty(self, x) -> dict[str, jax.Array]:
        """Every stage's output for an empty batch ``(0, 32, 32, 1)``: zero-row arrays.

        The shapes come from one image traced abstractly (``jax.eval_shape``, nothing computed);
        the conv algorithm selection is never asked about a batch of 0.
        """
        one = jax.ShapeDtypeStruct((1, *x.shape[1:]), x.dtype)
        feats = jax.eval_shape(self._features, one)
        out = {name: jnp.zeros((0, *s.shape[1:]), s.dtype) for name, s in feats.items()}
        out["logits"] = out[self._stages()[-1][0]]
        return out

    # Not nnx.jit-decorated: callers jit (or grad, eval_shape) whole steps that close over the
    # model, and a jitted method inside such a closure would leak NNX trace state.
    def _logits(self, x, activation=None):
        for _, stage in self._stages(activation):
            x = stage(x)
        return x

    def _features(self, x, activation=None):
        out = {}
        for name, stage in self._stages(activation):
            x = stage(x)
            out[name] = x
        out["softmax"] = jaxconv.softmax(x)
        return out

    def features(
        self, x: ArrayLike, *, activation: Callable | None = None
    ) -> collections.OrderedDict[str, jax.Array]:
        """Every stage's output by name, in order, ending with ``"softmax"`` probabilities.

        Args:
          x: images NHWC ``(N, 32, 32, 1)`` or one image ``(32, 32, 1)``.
          activation: replaces every activation stage when given (default: the variant's own).

        Returns:
          ``OrderedDict`` name -> array. Conv/act/pool outputs are NHWC ``(N, H, W, C)``
          (modern: conv1 ``(N, 28, 28, 6)``, pool1 ``(N, 14, 14, 6)``, conv2 ``(N, 10, 10, 16)``,
          pool2 ``(N, 5, 5, 16)``), then ``flatten``, the dense layers ``(N, units)`` and
          ``softmax`` ``(N, num_classes)``. An unbatched input gives unbatched outputs.
        """
        x, unbatched = self._check_input(x)
        activation = _check_activation(activation)
        # a dict comes back from jit with sorted keys: reorder
        feats = self._empty(x) if x.shape[0] == 0 else self._features(x, activation)
        names = [name for name, _ in self._stages()] + ["softmax"]
        return collections.OrderedDict(
            (name, feats[name][0] if unbatched else feats[name]) for name in names
        )

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters per layer, in order (classic: the paper's C1, S2, ... names)."""
        state = nnx.state(self, nnx.Param)
        counts: dict[str, int] = {}
        for path, leaf in jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(state)):
            layer = str(path[0].key)
            counts[layer] = counts.get(layer, 0) + math.prod(leaf.shape)
        order = self._layer_order()
        return {k: counts[k] for k in order}

    def _layer_order(self) -> tuple[str, ...]:
        if self.variant == "modern":
            return ("conv1", "conv2", "fc1", "fc2", "fc3")
        return ("C1", "S2", "C3", "S4", "C5", "F6", "output")
