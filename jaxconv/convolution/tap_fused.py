"""``algorithm="tap_fused"``: a dense convolution of a few input channels as one fused
shift-multiply-add over the taps and channels, vectorized over the output channels.

With 1-4 input channels (grayscale, RGB, RGBA images) the contraction of a convolution is short
(``kh * kw * C``: 27 for a 3x3 RGB kernel) and XLA:CPU's convolution spends its time packing
patches rather than multiplying. Written the way ``depthwise`` writes its layers instead,

    y[n, p, q, :] = sum_{i, j, c} xp[n, p * sh + i * dh, q * sw + j * dw, c] * k[i, j, c, :]

every term is one input value broadcast against the kernel's ``O``-vector, and XLA fuses the
``kh * kw * C`` terms into one loop over the output, run apart from its consumers as
``depthwise`` runs its tap sums (strided layers padded at the end only read their taps from
``x`` itself, as ``depthwise`` does). Measured forward on the project's 2-core CPU: the cat
(1x320x400x3) through 3x3 -> 3 outputs in 0.45 ms against ``mec``'s 2.9 (the fastest other
algorithm), LeNet's first layer (256x32x32x1, 5x5 -> 6) 0.92 ms, as ``depthwise`` (0.94); RGB
stems 3x3 stride 2 1.1-2x faster than ``channel_padded`` or ``im2col``. With more terms per
output the fused loop loses: 5x5 and 7x7 RGB kernels (75 and 147 terms, summed in chunks)
ran 1.3-2x slower than ``channel_padded`` or XLA's convolution on stems, and at 5x5 on the cat
slower than ``mec``, so it serves up to :data:`MAX_TERMS` terms.

Gradients are ``direct``'s (XLA's convolution) through a custom JVP: the tangent is ``direct``'s
JVP, the primal this algorithm's own, so forward mode, reverse mode, higher orders and ``vmap``
work as for ``direct``.
"""

from __future__ import annotations

import functools
import math

import jax

from .._args import accumulation_dtype
from ._registry import Algorithm, ConvConfig, Shape, not_2d_reason, register
from .depthwise import LANES, output_hw, reads_unpadded, tap_reader, unfused
from .direct import conv_direct, xla_gradient_terms

#: Most input channels served: beyond them a GEMM's contraction is long enough to pay.
MAX_CHANNELS = 4
#: Most multiply-adds per output (``kh * kw * C``) served: one loop fusion sums them (a 3x3
#: RGB kernel has 27, a 5x5 one-channel kernel 25, a 4x4 RGBA one 64).
MAX_TERMS = 64


def check(x_shape: Shape, kernel_shape: Shape, dtype, config: ConvConfig) -> str | None:
    """Why tap_fused cannot serve these arguments, or ``None`` when it can."""
    del dtype
    reason = not_2d_reason("tap_fused", x_shape)
    if reason:
        return reason
    c = x_shape[-1]
    if config.groups != 1:
        return f"tap_fused serves groups == 1 (got groups={config.groups})"
    if c > MAX_CHANNELS:
        return f"tap_fused serves at most {MAX_CHANNELS} input channels (C={c})"
    terms = math.prod(kernel_shape[:2]) * c
    if terms > MAX_TERMS:
        return (f"tap_fused serves at most {MAX_TERMS} multiply-adds per output "
                f"(kh * kw * C = {terms})")
    return None


def _term_sum(x, k, config: ConvConfig):
    """``sum_{i, j, c} tap(x, i, j)[..., c] * k[i, j, c, :]``: ``x`` (N, H, W, C), ``k`` HWIO."""
    kh, kw, c, o = k.shape
    out_hw = output_hw(x.shape, (kh, kw), config)
    xp, read, taps = tap_reader(x, (kh, kw), config, reads_unpadded(config))

    def term_sum(xp, k):
        y = None
        for i, j in taps:
            t = read(xp, i, j, out_hw, config)
            for ci in range(c):
                term = t[..., ci:ci + 1] * k[i, j, ci].reshape(1, 1, 1, o)
                y = term if y is None else y + term
        return y

    return unfused(term_sum, xp, k)  # apart from its consumers (see depthwise.unfused)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _tap_fused_core(x, k, config: ConvConfig):
    return _term_sum(x, k, config)


@_tap_fused_core.defjvp
def _tap_fused_jvp(config, primals, tangents):
    """The primal from the term sum, the tangent from ``direct``'s JVP (the primal computed the
    same way on both sides keeps ``vmap``'s batch axes in agreement)."""
    y = _tap_fused_core(*primals, config)
    _, dy = jax.jvp(lambda a, b: conv_direct(a, b, config), primals, tangents)
    return y, dy


def conv_tap_fused(x, kernel, config: ConvConfig):
    """NHWC ``x`` (N, H, W, C <= 4), HWIO ``kernel`` (kh, kw, C, O) -> NHWC (N, H', W', O).

    bfloat16 / float16 are computed (and accumulated over the terms) in float32 and rounded once.
    """
    if x.size == 0 or kernel.size == 0:
        return conv_direct(x, kernel, config)
    dtype = x.dtype
    acc = accumulation_dtype(dtype)
    return _tap_fused_core(x.astype(acc), kernel.astype(acc), config).astype(dtype)


def tap_fused_cost_terms(x_shape: Shape, kernel_shape: Shape,
                         config: ConvConfig) -> dict[str, float]:
    """Cost-model terms: vector multiply-adds (one per term per output position and ``LANES``
    output channels, rounded up; per output channel below ``LANES`` of them), bytes in and out;
    in training, ``direct``'s gradients (``dx_*`` / ``dk_*``: its flops per XLA path)."""
    n, c = x_shape[0], x_shape[-1]
    o = kernel_shape[-1]
    positions = n * math.prod(config.output_hw(x_shape[1:-1], kernel_shape[:-2]))
    terms = math.prod(kernel_shape[:-2]) * c
    return {
        "call": 1.0,
        "term_vector": float(positions * terms * -(-o // LANES)),
        # fewer outputs than a vector's lanes: XLA vectorizes along the row instead, per output
        "term_narrow": float(positions * terms * o) if o < LANES else 0.0,
        "byte": 4.0 * (math.prod(x_shape) + positions * o),
        **xla_gradient_terms(x_shape, kernel_shape, config),  # training: direct's gradients
    }


TAP_FUSED = register(
    Algorithm(
        name="tap_fused",
        fn=conv_tap_fused,
        serves=(
            "2-D, groups == 1, 1-4 input channels, up to 64 multiply-adds per output (one "
            "fused shift-multiply-add over taps and channels, vectorized over the outputs: "
            "grayscale and RGB images through small kernels)"
        ),
        check=check,
        cost_terms=tap_fused_cost_terms,
    )
)
