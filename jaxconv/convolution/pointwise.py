"""``algorithm="pointwise"``: a 1x1 convolution as one ``dot_general``.

With a 1x1 kernel every output pixel is a matrix-vector product of one input pixel's channels,
so for NHWC ``x`` ``(N, H, W, C)`` and HWIO ``kernel`` ``(1, 1, C // G, O)``

    y[n, p, q, :] = x[n, p * sh - top, q * sw - left, :] @ kernel[0, 0]

one 2-D GEMM ``(N * H_out * W_out, C / G) @ (C / G, O / G)``, batched over the ``G`` groups when
``G > 1``. The stride is a strided slice of ``x`` taken before the GEMM (only the pixels that are
read); dilation does not change a 1x1 kernel. Zero padding only adds output pixels that read
zeros, which are exactly zero (there is no bias here), so the GEMM runs on the pixels that read
the input and its result is zero-padded -- never a padded copy of ``x``.

Gradients are autodiff's: the transposes of a slice, a ``dot_general`` and a pad are a pad, two
GEMMs and a slice. bfloat16 / float16 accumulate in float32 (``preferred_element_type``) and are
rounded once; ``config.precision`` is passed to the ``dot_general``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from .._args import accumulation_dtype
from ._registry import Algorithm, ConvConfig, Shape, not_2d_reason, register


def check(x_shape, kernel_shape, dtype, config: ConvConfig) -> str | None:
    """Why pointwise cannot serve these arguments, or ``None`` when it can."""
    del dtype, config
    reason = not_2d_reason("pointwise", x_shape)
    if reason:
        return reason
    kh, kw = kernel_shape[0], kernel_shape[1]
    if (kh, kw) != (1, 1):
        return f"pointwise needs a 1x1 kernel (got kernel {kh}x{kw})"
    return None


def _read_range(size: int, pad_lo: int, stride: int, out: int) -> tuple[int, int, int]:
    """Output indices ``[first, last]`` whose pixel ``o * stride - pad_lo`` lies in the input,
    and that first input index; ``last < first`` when none does."""
    first = min(-(-pad_lo // stride), out)  # ceil(pad_lo / stride)
    last = min((pad_lo + size - 1) // stride, out - 1)
    return first, last, first * stride - pad_lo


def conv_pointwise(x, kernel, config: ConvConfig):
    """1x1 convolution: NHWC ``x`` (N, H, W, C), HWIO ``kernel`` (1, 1, C / G, O).

    Returns:
      ``(N, H_out, W_out, O)`` in ``x``'s dtype (bfloat16 / float16 accumulate in float32).
    """
    dtype = x.dtype
    acc = accumulation_dtype(dtype)
    n, h, w, c = x.shape
    _, _, cg, o = kernel.shape
    g = config.groups
    ho, wo = config.output_hw((h, w), (1, 1))
    (sh, sw), ((top, _), (left, _)) = config.stride, config.padding
    r0, r1, h0 = _read_range(h, top, sh, ho)
    c0, c1, w0 = _read_range(w, left, sw, wo)
    if r1 < r0 or c1 < c0:  # every output pixel reads padding
        return jnp.zeros((n, ho, wo, o), dtype)
    xs = lax.slice(
        x, (0, h0, w0, 0), (n, h0 + (r1 - r0) * sh + 1, w0 + (c1 - c0) * sw + 1, c), (1, sh, sw, 1)
    )
    hs, ws = xs.shape[1:3]
    rows = xs.reshape(n * hs * ws, c)  # a 2-D GEMM: measured ~5x faster on XLA:CPU than 4-D
    if g == 1:
        y = lax.dot_general(
            rows, kernel.reshape(c, o), (((1,), (0,)), ((), ())), precision=config.precision,
            preferred_element_type=acc,
        )
    else:  # batch over the groups, contract over C / G
        y = lax.dot_general(
            rows.reshape(-1, g, cg), kernel.reshape(cg, g, o // g),
            (((2,), (0,)), ((1,), (1,))), precision=config.precision,
            preferred_element_type=acc,
        )  # (G, rows, O / G)
        y = jnp.moveaxis(y, 0, 1)
    y = y.reshape(n, hs, ws, o)
    y = y.astype(dtype)
    pads = ((0, 0), (r0, ho - 1 - r1), (c0, wo - 1 - c1), (0, 0))
    if any(p != (0, 0) for p in pads):
        y = jnp.pad(y, pads)
    return y


def pointwise_cost_terms(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> dict[str, float]:
    """Cost-model terms of ``pointwise``: the GEMM's flops, the pixels it reads and writes, and
    with a stride the whole input its strided slice reads (and its gradient writes back)."""
    n, c = x_shape[0], x_shape[-1]
    cg, o = kernel_shape[-2:]
    out = config.output_hw(x_shape[1:-1], kernel_shape[:-2])
    pixels = n * math.prod(out)
    strided = any(s > 1 for s in config.stride)
    return {"call": 1.0, "flop": 2.0 * pixels * cg * o, "byte": 4.0 * pixels * (c + o),
            "strided_byte": 4.0 * n * math.prod(x_shape[1:-1]) * c if strided else 0.0}


POINTWISE = register(
    Algorithm(
        name="pointwise",
        fn=conv_pointwise,
        serves=(
            "1x1 kernels, any stride, dilation, padding and groups (one dot_general on the "
            "strided pixels, batched over groups)"
        ),
        check=check,
        cost_terms=pointwise_cost_terms,
    )
)
