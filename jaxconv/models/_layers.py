"""What ResNet and MobileNetV2 share: jaxconv inside ``nnx.Conv``, conv + BatchNorm, checks.

Every convolution is an ``nnx.Conv`` whose ``conv_general_dilated`` hook is
:func:`jaxconv.conv_general_dilated` with the model's algorithm (what
:func:`jaxconv.models.use_jaxconv` installs): the layer keeps Flax's parameters (an HWIO
``kernel``), initializers and padding rules, and only the convolution itself runs through
jaxconv. ``use_jaxconv(model, algorithm=None)`` gives the same network on plain Flax (the
benchmarks and tests compare the two).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxconv

from .flax_hook import JaxconvHook


def _numpy_normal(key, shape, std) -> np.ndarray:
    """``N(0, std^2)`` draws by NumPy, seeded from a JAX key.

    Every distinct shape drawn by ``jax.random`` is its own XLA compilation (about a second each
    on a busy 2-core CPU; a ResNet has 20 shapes): NumPy makes building a model instant.
    """
    seed = np.asarray(jax.random.key_data(key)).ravel()
    return np.random.default_rng(seed).standard_normal(shape) * std


def kaiming_normal(key, shape, dtype=jnp.float32) -> jax.Array:
    """torchvision's convolution initialization: ``N(0, 2 / fan_out)``, HWIO ``shape``."""
    fan_out = math.prod(shape[:-2]) * shape[-1]
    if isinstance(key, jax.core.Tracer):  # built abstractly (nnx.eval_shape): no values
        return jax.random.normal(key, shape, dtype) * math.sqrt(2 / fan_out)
    return jnp.asarray(_numpy_normal(key, shape, math.sqrt(2 / fan_out)), dtype)


def dense_normal(key, shape, dtype=jnp.float32) -> jax.Array:
    """LeCun normal ``N(0, 1 / fan_in)`` for a dense ``(in, out)`` kernel (Flax's default)."""
    if isinstance(key, jax.core.Tracer):
        return jax.random.normal(key, shape, dtype) / math.sqrt(shape[0])
    return jnp.asarray(_numpy_normal(key, shape, 1 / math.sqrt(shape[0])), dtype)


def _constant(value: float):
    def init(key, shape, dtype=jnp.float32) -> jax.Array:
        return jnp.asarray(np.full(shape, value), dtype)  # a transfer, not a compiled fill
    return init


def conv(cin: int, cout: int, k: int, *, stride: int = 1, groups: int = 1, algorithm: str,
         rngs: nnx.Rngs) -> nnx.Conv:
    """A bias-free ``k x k`` convolution padded by ``k // 2`` on every side (as PyTorch pads)."""
    return nnx.Conv(cin, cout, (k, k), strides=stride, padding=k // 2, feature_group_count=groups,
                    use_bias=False, kernel_init=kaiming_normal,
                    conv_general_dilated=JaxconvHook(algorithm), rngs=rngs)


def batch_norm(features: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """BatchNorm over the channel axis with PyTorch's defaults: running statistics updated by
    0.1 of each batch's (Flax's ``momentum=0.9``), ``eps = 1e-5``."""
    return nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, scale_init=_constant(1.0),
                         bias_init=_constant(0.0), rngs=rngs)


def dense(nin: int, nout: int, rngs: nnx.Rngs) -> nnx.Linear:
    """The classifier: ``nnx.Linear`` with LeCun-normal weights and zero bias."""
    return nnx.Linear(nin, nout, kernel_init=dense_normal, bias_init=_constant(0.0), rngs=rngs)


def as_rngs(rngs, fn: str) -> nnx.Rngs:
    """``nnx.Rngs`` from an ``nnx.Rngs``, an int seed, a PRNG key or ``None`` (seed 0)."""
    if isinstance(rngs, nnx.Rngs):
        return rngs
    if rngs is None:
        return nnx.Rngs(0)
    if isinstance(rngs, np.integer):  # nnx.Rngs takes a Python int only
        return nnx.Rngs(int(rngs))
    if isinstance(rngs, int | jax.Array) and not isinstance(rngs, bool):
        return nnx.Rngs(rngs)
    raise TypeError(f"{fn}: rngs must be an nnx.Rngs, an int seed or a PRNG key, got {rngs!r}")


def check_int(fn: str, name: str, value, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``; ``TypeError`` for a non-int, ``ValueError`` below."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{fn}: {name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value}")
    return int(value)


def check_algorithm(fn: str, algorithm) -> str:
    """``"auto"`` or a registered algorithm name; ``ValueError`` naming the choices otherwise."""
    names = [a.name for a in jaxconv.algorithms()]
    if not isinstance(algorithm, str) or (algorithm != "auto" and algorithm not in names):
        raise ValueError(f"{fn}: algorithm must be 'auto' or one of "
                         f"{', '.join(map(repr, names))}, got {algorithm!r}")
    return algorithm


def check_images(fn: str, x, channels: int) -> tuple[jax.Array, bool]:
    """NHWC float32 images ``(N, H, W, channels)`` (or one ``(H, W, channels)``) and whether
    the input was unbatched."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        x = np.asarray(x)
    if not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)):
        raise TypeError(f"{fn}: x must be a real-valued image batch, got dtype {x.dtype}")
    shape = tuple(x.shape)
    if len(shape) not in (3, 4) or shape[-1] != channels or 0 in shape[-3:-1]:
        raise ValueError(f"{fn}: x must be NHWC images of shape (N, H, W, {channels}) (or one "
                         f"image (H, W, {channels})), got shape {shape}")
    x = jnp.asarray(x, jnp.float32)
    return (x[None] if len(shape) == 3 else x), len(shape) == 3


def param_counts(model: nnx.Module, names: Sequence[str]) -> dict[str, int]:
    """Trainable parameters (``nnx.Param``, not BatchNorm's statistics) per top-level child."""
    state = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    counts = dict.fromkeys(names, 0)
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        counts[str(path[0].key)] += math.prod(leaf.shape)
    return counts


class ConvBN(nnx.Module):
    """A bias-free convolution, BatchNorm, then ``act`` (none when ``None``), NHWC in and out."""

    def __init__(self, cin: int, cout: int, k: int, *, stride: int = 1, groups: int = 1,
                 act=None, algorithm: str, rngs: nnx.Rngs):
        self.conv = conv(cin, cout, k, stride=stride, groups=groups, algorithm=algorithm, rngs=rngs)
        self.bn = batch_norm(cout, rngs)
        self.act = act

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.bn(self.conv(x))
        return y if self.act is None else self.act(y)


def global_average(x: jax.Array) -> jax.Array:
    """``(N, H, W, C) -> (N, C)``: the mean over the spatial axes."""
    return jnp.mean(x, axis=(1, 2))
