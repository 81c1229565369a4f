"""``algorithm="direct"``: XLA's own convolution, ``lax.conv_general_dilated``."""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from ._registry import Algorithm, ConvConfig, Shape, register

# Spatial axis letters per rank (1-D: W, 3-D: DHW), innermost last.
_AXES = {1: "W", 2: "HW", 3: "DHW"}


def dimension_numbers(spatial: int) -> tuple[str, str, str]:
    """Channels-last ``lax`` dimension numbers for ``spatial`` axes, e.g. ``("NWC", "WIO", "NWC")``."""
    axes = _AXES[spatial]
    return f"N{axes}C", f"{axes}IO", f"N{axes}C"


def conv_direct(x, kernel, config: ConvConfig):
    """Direct convolution of any rank: channels-last ``x`` (N, *spatial, C), ``kernel``
    (*k, C // groups, O) -> (N, *spatial', O); for 2-D, NHWC and HWIO.

    Padding wider than the dilated kernel's extent less one is added to ``x`` beforehand and
    only the rest passed to XLA: the input gradient of a convolution is a convolution with
    padding ``extent - 1 - pad``, and XLA:CPU (jax 0.10, float32) computes that one wrong when it
    is negative — garbage values, up to 1e35, on ~4% of small random problems with wide padding.
    """
    inner, outer = split_padding(config.padding, kernel.shape[:-2], config.dilation)
    if any(lo or hi for lo, hi in outer):
        x = jnp.pad(x, ((0, 0), *outer, (0, 0)))
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=config.stride,
        padding=inner,
        rhs_dilation=config.dilation,
        dimension_numbers=dimension_numbers(x.ndim - 2),
        feature_group_count=config.groups,
        precision=config.precision,
    )


def split_padding(padding, ksize, dilation) -> tuple[tuple, tuple]:
    """``(inner, outer)`` per spatial axis: ``inner`` at most the dilated kernel's extent less
    one on each side (what XLA is given), ``outer`` the rest (zeros added to the input first);
    negative padding stays inner."""
    inner, outer = [], []
    for (lo, hi), k, d in zip(padding, ksize, dilation, strict=True):
        reach = (int(k) - 1) * int(d)
        inner.append((min(lo, reach), min(hi, reach)))
        outer.append((max(lo - reach, 0), max(hi - reach, 0)))
    return tuple(inner), tuple(outer)


def zero_result(x, kernel, config: ConvConfig):
    """The result of a convolution with nothing to sum (an empty batch ``N == 0`` or no input
    channels ``C == 0``): zeros of shape ``(N, *spatial', O)``, as XLA's convolution gives.

    Algorithms that split the work by batch or channel sizes (``im2col``'s chunks, the
    transforms' scaling by ``max|x|``) return this instead of dividing or reducing over nothing.
    """
    out = config.output_hw(x.shape[1:-1], kernel.shape[:-2])
    return jnp.zeros((x.shape[0], *out, kernel.shape[-1]), x.dtype)


#: The paths XLA:CPU's convolution takes, each priced on its own: unpadded, zero-padded,
#: strided or dilated, grouped, 3-D, 1x1.
KINDS = ("", "_padded", "_strided", "_grouped", "_volume", "_1x1")


def direct_cost_terms(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> dict[str, float]:
    """Cost-model terms of XLA's convolution (see ``cost_model.py``)."""
    n, c = x_shape[0], x_shape[-1]
    cg, o = kernel_shape[-2:]
    out = config.output_hw(x_shape[1:-1], kernel_shape[:-2])
    taps = n * math.prod(out) * math.prod(kernel_shape[:-2])
    padded_in = math.prod(s + lo + hi for s, (lo, hi) in zip(x_shape[1:-1], config.padding,
                                                            strict=True))
    # XLA:CPU runs a convolution with any zero padding through a different path, on some shapes
    # much faster than the unpadded (VALID) one (3.5-5x on the layer case, 8x64x64x32), and
    # strided or dilated ones through yet another, so each kind gets its own flop and patch
    # constants.
    strided = any(s > 1 for s in config.stride) or any(d > 1 for d in config.dilation)
    # XLA:CPU's grouped convolution (groups > 1) takes yet another path: its gradient was
    # measured 10-20x slower than the dense one's on the same flops.
    # And a 3-D convolution through another again (measured ~2.3x the 2-D padded constant),
    # and a 1x1 kernel at stride 1 through a plain GEMM (~3x faster per flop than the unpadded
    # path on a thin RGB image or LeNet's first layer, with which it would otherwise share one).
    one_by_one = math.prod(kernel_shape[:-2]) == 1 and not strided and not config.padded
    kind = ("_grouped" if config.groups > 1 else "_volume" if len(out) == 3
            else "_1x1" if one_by_one else "_strided" if strided
            else "_padded" if config.padded else "")
    flop, patch = 2.0 * taps * cg * o, float(taps * c)
    terms = {"call": 1.0, "byte": float(n * padded_in * c + n * math.prod(out) * o),
             # the kernel, read on every call: with a few small images and many channels it
             # weighs as much as the activations (4x7x7x512, 3x3: a 9 MiB kernel)
             "kernel_byte": 4.0 * math.prod(kernel_shape)}
    pixels = float(n * math.prod(out))
    for k in KINDS:
        terms["flop" + k] = flop if k == kind else 0.0
        # elements of the (virtual) patch matrix XLA:CPU packs: dominant when O is small
        terms["patch" + k] = patch if k == kind else 0.0
        # a cost per output position, whatever the channels: the unpadded path on an RGB image
        # spends ~90 ns on each (the cat, 320x400x3, 3x3 or 7x7: the same ~12 ms)
        terms["pixel" + k] = pixels if k == kind else 0.0
    terms["flop_rgb_slow"] = flop if slow_rgb_path(x_shape, kernel_shape, config) else 0.0
    # Training only: the input gradient of a strided convolution is XLA's convolution of the
    # zero-inserted output gradient, whose flops count on the input's grid, s^2 times the
    # forward's at stride s (ResNet-50's 1x1/2 256->512 layer: 4-5x its forward time). With a
    # 1x1 kernel XLA:CPU takes a slower path for it (per flop 2.2-3.4x what the fit gives the
    # other kernels), so 1x1 kernels get their own constant.
    stride = math.prod(config.stride)
    pointwise = math.prod(kernel_shape[:-2]) == 1
    terms["dx_flop_dilated"] = flop * stride if stride > 1 and not pointwise else 0.0
    terms["dx_flop_dilated_1x1"] = flop * stride if stride > 1 and pointwise else 0.0
    return terms


def xla_gradient_terms(x_shape: Shape, kernel_shape: Shape,
                       config: ConvConfig) -> dict[str, float]:
    """Training terms of another algorithm whose gradients are XLA's convolutions: ``dx_*``
    (the input gradient: ``direct``'s flops per path and its ``dx_flop_dilated*``) and ``dk_*``
    (the kernel gradient: ``direct``'s flops per path)."""
    terms = direct_cost_terms(x_shape, kernel_shape, config)
    out = {(k if k.startswith("dx_") else "dx_" + k): v for k, v in terms.items()
           if k.startswith(("flop", "dx_"))}
    out.update({"dk_" + k: v for k, v in terms.items() if k.startswith("flop")})
    return out


#: Output-channel counts (inclusive ranges) at which XLA:CPU's (jax 0.10, YNNPACK) convolution
#: of a 3-channel image ran 4-12x slower than with a fourth, all-zero input channel
#: (``channel_padded``), on every kernel size, stride and image size tried; at other counts it
#: ran 1.1-1.4x faster than the padded one. A cost term, so a machine or jax version where this
#: differs only needs a refit.
SLOW_RGB_OUTPUTS = ((17, 32), (65, 80))


def slow_rgb_path(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> bool:
    """A dense 2-D convolution of a 3-channel image at one of :data:`SLOW_RGB_OUTPUTS`."""
    o = kernel_shape[-1]
    return (len(x_shape) == 4 and x_shape[-1] == 3 and config.groups == 1
            and any(lo <= o <= hi for lo, hi in SLOW_RGB_OUTPUTS))


DIRECT = register(
    Algorithm(
        name="direct",
        fn=conv_direct,
        serves=(
            "every configuration, 1-D, 2-D and 3-D (XLA's lax.conv_general_dilated; cuDNN on "
            "GPU, MXU on TPU)"
        ),
        cost_terms=direct_cost_terms,
    )
)
