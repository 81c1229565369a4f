"""``algorithm="channel_padded"``: XLA's convolution with the input channels zero-padded to a
multiple of 4.

XLA:CPU runs a convolution of a 3-channel image (RGB) through paths whose speed jumps with the
number of output channels, with no pattern a cost model over shapes can learn: on this
project's 2-core CPU a 3x3 SAME convolution of 8x64x64x3 ran at 15-35 GFLOP/s with 8, 24, 32,
72, 80 or 256 outputs and at 110-230 with 40-64, 96-192. With a fourth, all-zero input channel
(and a zero kernel slice to match) it takes the regular path: 3-10x faster where 3 channels
were slow, at most 1.4x slower where they were fast (``docs/algorithms.md`` has the table).

The result is exact: the added channel contributes ``0 * 0`` to every sum. Gradients are
``direct``'s, through the pad (the padded channel's gradient is sliced away).

``auto`` picks it forward for 3-channel images, ``groups == 1``, on CPU, with kernels of at most
3x3 or any stride above 1 (:func:`preferred`), from a million multiply-adds: larger stride-1
kernels on an RGB image are the FFT's ground (the article's cat). Forward + backward, padded
stems measured 1.25-1.4x slower than XLA's gradient, so there the cost model decides.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._registry import Algorithm, ConvConfig, Shape, not_2d_reason, register
from .direct import conv_direct

#: Input channels are zero-padded up to a multiple of this.
CHANNEL_MULTIPLE = 4
#: ``auto`` leaves problems with fewer multiply-adds to the cost model (overheads dominate).
MIN_MULTIPLY_ADDS = 10**6


def conv_channel_padded(x, kernel, config: ConvConfig):
    """NHWC ``x`` (N, H, W, C), HWIO ``kernel`` (kh, kw, C, O) -> NHWC (N, H', W', O)."""
    extra = -x.shape[-1] % CHANNEL_MULTIPLE
    x = jnp.pad(x, ((0, 0),) * (x.ndim - 1) + ((0, extra),))
    kernel = jnp.pad(kernel, ((0, 0),) * (kernel.ndim - 2) + ((0, extra), (0, 0)))
    return conv_direct(x, kernel, config)


def check(x_shape: Shape, kernel_shape: Shape, dtype, config: ConvConfig) -> str | None:
    """Why channel_padded cannot serve: not 2-D, grouped, or nothing to pad."""
    del dtype, kernel_shape
    not_2d = not_2d_reason("channel_padded", x_shape)
    if not_2d is not None:
        return not_2d
    if config.groups != 1:
        return f"channel_padded serves groups == 1 (got groups={config.groups})"
    if x_shape[-1] % CHANNEL_MULTIPLE == 0:
        return (f"channel_padded pads the input channels to a multiple of {CHANNEL_MULTIPLE}; "
                f"C={x_shape[-1]} already is one (that is direct)")
    return None


def preferred(x_shape: Shape, kernel_shape: Shape, config: ConvConfig, mode: str) -> str | None:
    """``auto``'s rule, forward only: a 3-channel image through a kernel of at most 3x3, or any
    strided one. (Forward + backward, padded stems measured 1.25-1.4x slower than XLA's.)"""
    kh, kw = kernel_shape[:2]
    if mode != "forward" or x_shape[-1] != 3 or config.groups != 1 or kh * kw == 1:
        return None
    ho, wo = config.output_hw(x_shape[1:3], (kh, kw))
    if x_shape[0] * ho * wo * kh * kw * 3 * kernel_shape[-1] < MIN_MULTIPLY_ADDS:
        return None
    if kh * kw <= 9 or any(s > 1 for s in config.stride):
        return ("a 3-channel image: XLA:CPU's 3-channel path is erratic (15-230 GFLOP/s with the "
                "output count), padded to 4 channels it takes the regular one")
    return None


CHANNEL_PADDED = register(
    Algorithm(
        name="channel_padded",
        fn=conv_channel_padded,
        serves=(
            "2-D, groups == 1, C not a multiple of 4 (XLA's convolution with zero input "
            "channels added up to a multiple of 4: RGB images)"
        ),
        check=check,
        preferred=preferred,
    )
)
