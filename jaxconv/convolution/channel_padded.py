"""``algorithm="channel_padded"``: XLA's convolution with the input channels zero-padded to a
multiple of 4.

XLA:CPU runs a 3-channel image (RGB) 4-12x slower for some output-channel counts than for
their neighbours; with a fourth, all-zero input channel (and a zero kernel slice to match) it
takes the regular path (``direct.SLOW_RGB_OUTPUTS``; ``direct``'s cost terms say where, and
the fit weighs both).

The result is exact: the added channel contributes ``0 * 0`` to every sum. Gradients are
``direct``'s, through the pad (the padded channel's gradient is sliced away).
"""

from __future__ import annotations

import jax.numpy as jnp

from ._registry import Algorithm, ConvConfig, Shape, not_2d_reason, register
from .direct import conv_direct, direct_cost_terms

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


def channel_padded_cost_terms(x_shape: Shape, kernel_shape: Shape,
                              config: ConvConfig) -> dict[str, float]:
    """Cost-model terms: ``direct``'s terms of the problem with its channels padded (XLA's
    convolution takes the same paths), with constants of its own."""
    extra = -x_shape[-1] % CHANNEL_MULTIPLE
    padded_x = (*x_shape[:-1], x_shape[-1] + extra)
    padded_k = (*kernel_shape[:-2], kernel_shape[-2] + extra, kernel_shape[-1])
    return direct_cost_terms(padded_x, padded_k, config)


CHANNEL_PADDED = register(
    Algorithm(
        name="channel_padded",
        fn=conv_channel_padded,
        serves=(
            "2-D, groups == 1, C not a multiple of 4 (XLA's convolution with zero input "
            "channels added up to a multiple of 4: RGB images)"
        ),
        check=check,
        cost_terms=channel_padded_cost_terms,
    )
)
