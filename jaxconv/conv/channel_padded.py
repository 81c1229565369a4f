"""``algorithm="channel_padded"``: XLA's convolution with the input channels zero-padded to a
multiple of 4.

XLA:CPU runs a 3-channel image (RGB) 4-12x slower for some output-channel counts than for
their neighbours; with a fourth, all-zero input channel (and a zero kernel slice to match) it
takes the regular path. ``auto`` picks it forward at those counts (:mod:`._rgb` has the rule
and the measurements).

The result is exact: the added channel contributes ``0 * 0`` to every sum. Gradients are
``direct``'s, through the pad (the padded channel's gradient is sliced away).
"""

from __future__ import annotations

import jax.numpy as jnp

from . import _rgb
from ._registry import Algorithm, ConvConfig, Shape, not_2d_reason, register
from .direct import conv_direct

#: Input channels are zero-padded up to a multiple of this.
CHANNEL_MULTIPLE = 4


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
    """``auto``'s forward rule: a 3-channel image at an output count where XLA:CPU's 3-channel
    path is slow (:func:`._rgb.slow_xla_path`)."""
    if _rgb.slow_xla_path(x_shape, kernel_shape, config, mode):
        return (f"a 3-channel image with {kernel_shape[-1]} outputs: XLA:CPU's 3-channel path "
                "runs 4-12x slower there, padded to 4 channels it takes the regular one")
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
