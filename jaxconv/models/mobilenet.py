"""CIFAR-style MobileNetV2 as a Flax NNX module whose convolutions run through jaxconv.

Sandler et al.'s network with the two stride changes CIFAR reproductions make for 32x32 images:
the stem and the second stage (24 channels) keep stride 1, so the image is downsampled 8x
(32 -> 4) instead of 32x. Everything else is the paper's (Table 2) and torchvision's: inverted
residual blocks (1x1 expansion, 3x3 depthwise, 1x1 linear projection) with ReLU6, a residual
connection where the shape is kept, a width multiplier that rounds every channel count to a
multiple of 8, a 1x1 convolution to 1280 channels, global average pooling and a dense
classifier (torchvision's dropout before it is left out).

References:
  M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen, "MobileNetV2: Inverted Residuals and
  Linear Bottlenecks", CVPR 2018 (Table 2).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

import jaxconv

from . import _layers
from ._layers import ConvBN

__all__ = ["MobileNetV2", "make_divisible"]

# (expansion t, channels c, blocks n, stride s) per stage: the paper's Table 2, with the
# second stage's stride 2 -> 1 for 32x32 images.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
STEM, LAST = 32, 1280


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), never
    more than 10% below ``value`` (the reference implementation's rule, as torchvision's)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidual(nnx.Module):
    """1x1 expansion + ReLU6 (when ``expand > 1``), 3x3 depthwise + ReLU6, 1x1 projection;
    the input is added back when stride is 1 and the channel count is kept."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, *, algorithm: str,
                 rngs: nnx.Rngs):
        hidden = round(cin * expand)
        self.expand = (ConvBN(cin, hidden, 1, act=jaxconv.relu6, algorithm=algorithm, rngs=rngs)
                       if expand != 1 else None)
        self.depthwise = ConvBN(hidden, hidden, 3, stride=stride, groups=hidden,
                                act=jaxconv.relu6, algorithm=algorithm, rngs=rngs)
        self.project = ConvBN(hidden, cout, 1, algorithm=algorithm, rngs=rngs)
        self.residual = stride == 1 and cin == cout

    def __call__(self, x: jax.Array) -> jax.Array:
        y = x if self.expand is None else self.expand(x)
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class MobileNetV2(nnx.Module):
    """A CIFAR-style MobileNetV2 on NHWC images ``(N, H, W, C)`` (32x32 for CIFAR-10).

    Layers (channels at ``width=1``; each multiplied by ``width`` and rounded to a multiple
    of 8 by :func:`make_divisible`, the last 1280 only ever scaled up)::

        stem 3x3 conv 32, stride 1, BN, ReLU6
        inverted residual stages (expansion t, channels c, blocks n, first stride s):
          (1, 16, 1, 1) (6, 24, 2, 1) (6, 32, 3, 2) (6, 64, 4, 2) (6, 96, 3, 1)
          (6, 160, 3, 2) (6, 320, 1, 1)
        head 1x1 conv 1280, BN, ReLU6 -> global average pooling -> classifier (num_classes)

    With ``width=1`` and 10 classes: 2,236,682 parameters (torchvision's 3,504,872 at 1000
    classes, less the larger classifier). Every convolution is an ``nnx.Conv`` (HWIO
    ``kernel``, padding ``k // 2``, no bias) whose ``conv_general_dilated`` is
    :func:`jaxconv.conv_general_dilated` with ``algorithm``; the depthwise ones have
    ``feature_group_count`` equal to their channels. BatchNorm uses batch statistics in training
    mode (the default, ``model.train()``) and running averages after ``model.eval()``.

    Args:
      num_classes: size of the output layer.
      width: the width multiplier (> 0; 1.0 is the paper's network).
      in_channels: channels of the input images (3 for RGB).
      algorithm: the jaxconv algorithm of every convolution (``"auto"`` or a name
        from ``jaxconv.algorithms()``).
      rngs: ``nnx.Rngs`` or an int seed for the initial weights (Kaiming normal, fan-out).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxconv.models import MobileNetV2
      >>> model = MobileNetV2(width=0.1, rngs=0)
      >>> from flax import nnx
      >>> model.eval()  # inference: BatchNorm on its running averages
      >>> predict = nnx.jit(lambda model, x: model(x))  # one compiled program for the network
      >>> predict(model, jnp.zeros((1, 8, 8, 3))).shape
      (1, 10)

    References:
      M. Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018.
    """

    def __init__(self, num_classes: int = 10, *, width: float = 1.0, in_channels: int = 3,
                 algorithm: str = "auto", rngs: nnx.Rngs | int | None = None):
        self.num_classes = _layers.check_int("MobileNetV2", "num_classes", num_classes)
        if isinstance(width, bool) or not isinstance(width, int | float | np.integer | np.floating):
            raise TypeError(f"MobileNetV2: width must be a number, got {width!r}")
        if not (np.isfinite(width) and width > 0):
            raise ValueError(f"MobileNetV2: width must be > 0, got {width!r}")
        self.width = float(width)
        self.in_channels = _layers.check_int("MobileNetV2", "in_channels", in_channels)
        self.algorithm = _layers.check_algorithm("MobileNetV2", algorithm)
        rngs = _layers.as_rngs(rngs, "MobileNetV2")
        cin = make_divisible(STEM * self.width)
        self.stem = ConvBN(self.in_channels, cin, 3, act=jaxconv.relu6, algorithm=algorithm,
                           rngs=rngs)
        blocks = []
        for t, c, n, s in STAGES:
            cout = make_divisible(c * self.width)
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, s if i == 0 else 1, t,
                                               algorithm=algorithm, rngs=rngs))
                cin = cout
        self.blocks = nnx.List(blocks)
        last = make_divisible(LAST * max(1.0, self.width))
        self.head = ConvBN(cin, last, 1, act=jaxconv.relu6, algorithm=algorithm, rngs=rngs)
        self.classifier = _layers.dense(last, self.num_classes, rngs)

    def __call__(self, x: ArrayLike) -> jax.Array:
        """Logits ``(N, num_classes)`` for NHWC images ``(N, H, W, in_channels)`` (unbatched
        ``(H, W, in_channels)`` gives ``(num_classes,)``)."""
        x, unbatched = _layers.check_images("MobileNetV2", x, self.in_channels)
        if x.shape[0] == 0:  # BatchNorm has no statistics of an empty batch
            return jnp.zeros((0, self.num_classes), jnp.float32)
        y = self.stem(x)
        for block in self.blocks:
            y = block(y)
        y = self.classifier(_layers.global_average(self.head(y)))
        return y[0] if unbatched else y

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters of ``stem``, ``blocks``, ``head`` and ``classifier``."""
        return _layers.param_counts(self, ("stem", "blocks", "head", "classifier"))
