"""CIFAR-style ResNet (18, 34) as a Flax NNX module whose convolutions run through jaxconv.

The CIFAR variant of He et al.'s ImageNet network: a 3x3 stride-1 stem without max-pooling (a
32x32 image keeps its resolution into the first stage), four stages of BasicBlocks with 64, 128,
256 and 512 channels (the last three start with stride 2: 32 -> 16 -> 8 -> 4), global average
pooling and a dense classifier. A block whose shape changes has a 1x1 convolution + BatchNorm
shortcut (option B of the paper), as torchvision's and most CIFAR reproductions do.

References:
  K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
  (section 4.2 and Table 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

import jaxconv

from . import _layers
from ._layers import ConvBN

__all__ = ["ResNet"]

STAGE_SIZES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class BasicBlock(nnx.Module):
    """Two 3x3 conv + BatchNorm layers and a shortcut: ``relu(f(x) + shortcut(x))``."""

    def __init__(self, cin: int, cout: int, stride: int, *, algorithm: str, rngs: nnx.Rngs):
        self.conv1 = ConvBN(cin, cout, 3, stride=stride, act=jaxconv.relu, algorithm=algorithm,
                            rngs=rngs)
        self.conv2 = ConvBN(cout, cout, 3, algorithm=algorithm, rngs=rngs)
        self.shortcut = (ConvBN(cin, cout, 1, stride=stride, algorithm=algorithm, rngs=rngs)
                         if stride != 1 or cin != cout else None)

    def __call__(self, x: jax.Array) -> jax.Array:
        skip = x if self.shortcut is None else self.shortcut(x)
        return jaxconv.relu(self.conv2(self.conv1(x)) + skip)


class ResNet(nnx.Module):
    """A CIFAR-style ResNet on NHWC images ``(N, H, W, C)`` (32x32 for CIFAR-10).

    Prefer the classmethods :meth:`resnet18` and :meth:`resnet34`. Layers::

        stem 3x3 conv (width channels, stride 1) + BN + ReLU          (no max-pooling)
        stage1 .. stage4: stage_sizes[i] BasicBlocks, width * (1, 2, 4, 8) channels,
                          the first block of stages 2-4 with stride 2 (1x1 conv + BN shortcut)
        global average pooling -> fc (num_classes)

    ResNet-18 with 10 classes has 11,173,962 parameters (BatchNorm's running statistics are
    state, not parameters). Every convolution is an ``nnx.Conv`` (HWIO ``kernel``, padding
    ``k // 2``, no bias) whose ``conv_general_dilated`` is :func:`jaxconv.conv_general_dilated`
    with ``algorithm`` (``use_jaxconv(model, algorithm=None)`` puts it back on lax's). BatchNorm uses each batch's statistics in training mode (the default, or
    ``model.train()``) and the running averages after ``model.eval()``.

    Args:
      stage_sizes: BasicBlocks per stage, four ints (``(2, 2, 2, 2)`` is ResNet-18).
      num_classes: size of the output layer.
      width: channels of the stem and the first stage (64 in the paper; smaller for tests).
      in_channels: channels of the input images (3 for RGB).
      algorithm: the jaxconv algorithm of every convolution (``"auto"`` or a name
        from ``jaxconv.algorithms()``).
      rngs: ``nnx.Rngs`` or an int seed for the initial weights (Kaiming normal, fan-out).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxconv.models import ResNet
      >>> model = ResNet.resnet18(width=4, rngs=0)
      >>> from flax import nnx
      >>> model.eval()  # inference: BatchNorm on its running averages
      >>> predict = nnx.jit(lambda model, x: model(x))  # one compiled program for the network
      >>> predict(model, jnp.zeros((1, 8, 8, 3))).shape
      (1, 10)

    References:
      K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
    """

    def __init__(self, stage_sizes: Sequence[int] = STAGE_SIZES[18], num_classes: int = 10, *,
                 width: int = 64, in_channels: int = 3, algorithm: str = "auto",
                 rngs: nnx.Rngs | int | None = None):
        if (isinstance(stage_sizes, str) or not isinstance(stage_sizes, Sequence)
                or len(stage_sizes) != 4):
            raise TypeError(f"ResNet: stage_sizes must be a sequence of four ints, got "
                            f"{stage_sizes!r}")
        self.stage_sizes = tuple(_layers.check_int("ResNet", "stage_sizes", n) for n in stage_sizes)
        self.num_classes = _layers.check_int("ResNet", "num_classes", num_classes)
        self.width = _layers.check_int("ResNet", "width", width)
        self.in_channels = _layers.check_int("ResNet", "in_channels", in_channels)
        self.algorithm = _layers.check_algorithm("ResNet", algorithm)
        rngs = _layers.as_rngs(rngs, "ResNet")
        self.stem = ConvBN(self.in_channels, self.width, 3, act=jaxconv.relu, algorithm=algorithm,
                           rngs=rngs)
        blocks, cin = [], self.width
        for stage, n in enumerate(self.stage_sizes):
            cout = self.width * 2**stage
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(cin, cout, stride, algorithm=algorithm, rngs=rngs))
                cin = cout
        self.blocks = nnx.List(blocks)
        self.fc = _layers.dense(cin, self.num_classes, rngs)

    @classmethod
    def resnet18(cls, num_classes: int = 10, **kwargs) -> ResNet:
        """ResNet-18: stages of ``(2, 2, 2, 2)`` BasicBlocks (keyword arguments as the class)."""
        return cls(STAGE_SIZES[18], num_classes, **kwargs)

    @classmethod
    def resnet34(cls, num_classes: int = 10, **kwargs) -> ResNet:
        """ResNet-34: stages of ``(3, 4, 6, 3)`` BasicBlocks (keyword arguments as the class)."""
        return cls(STAGE_SIZES[34], num_classes, **kwargs)

    def __call__(self, x: ArrayLike) -> jax.Array:
        """Logits ``(N, num_classes)`` for NHWC images ``(N, H, W, in_channels)`` (unbatched
        ``(H, W, in_channels)`` gives ``(num_classes,)``)."""
        x, unbatched = _layers.check_images("ResNet", x, self.in_channels)
        if x.shape[0] == 0:  # BatchNorm has no statistics of an empty batch
            return jnp.zeros((0, self.num_classes), jnp.float32)
        y = self.stem(x)
        for block in self.blocks:
            y = block(y)
        y = self.fc(_layers.global_average(y))
        return y[0] if unbatched else y

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters of ``stem``, ``blocks`` (all stages) and ``fc``."""
        return _layers.param_counts(self, ("stem", "blocks", "fc"))
