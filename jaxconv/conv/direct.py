"""``algorithm="direct"``: XLA's own convolution, ``lax.conv_general_dilated``."""

from __future__ import annotations

from jax import lax

from ._registry import Algorithm, ConvConfig, register

DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def conv_direct(x, kernel, config: ConvConfig):
    """Direct convolution: NHWC ``x`` (N, H, W, C), HWIO ``kernel`` -> NHWC (N, H', W', O)."""
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=config.stride,
        padding=config.padding,
        rhs_dilation=config.dilation,
        dimension_numbers=DIMENSION_NUMBERS,
        feature_group_count=config.groups,
        precision=config.precision,
    )


DIRECT = register(
    Algorithm(
        name="direct",
        fn=conv_direct,
        serves="every configuration (XLA's lax.conv_general_dilated; cuDNN on GPU, MXU on TPU)",
    )
)
