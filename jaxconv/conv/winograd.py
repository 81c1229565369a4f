"""``algorithm="winograd"``: Winograd minimal filtering F(2x2, 3x3) for 3x3 kernels.

Each 2x2 block of outputs is computed from a 4x4 input tile ``d`` and the 3x3 filter ``g`` as

    Y = A^T [ (G g G^T) * (B^T d B) ] A

where ``*`` is elementwise over the 16 tile positions; summed over input channels it becomes 16
independent GEMMs ``(tiles, C) @ (C, O)``, done as one ``dot_general`` with the 16 positions as a
batch dimension. That is 16 multiplies per 4 outputs instead of 36: 2.25x fewer flops than
im2col, for transforms that are only additions (and halves, in the filter transform).

Serves: 3x3 kernels, stride 1, dilation 1, any zero padding, any ``groups`` (the groups are a
second batch dimension of the GEMM), every float dtype (bfloat16 / float16 are transformed and
accumulated in float32, then rounded once). Tiles run past the bottom/right edge on zeros and
are cropped.

Error: the transforms of F(2x2, 3x3) have entries 0, +-1, +-1/2, so the float32 error is a small
multiple of direct's (measured <= ~2x; see ``tests/test_gemm_algorithms.py``). F(4x4, 3x3)
(entries up to 8 and 1/6, error ~10x larger) is not implemented.

Gradients (:func:`jaxconv.conv.im2col.gemm_gradients`): the input gradient is XLA's transposed
convolution, the kernel gradient an im2col GEMM; differentiating through the transforms was
measured 2x slower than ``direct``'s gradient.

References:
  A. Lavin, S. Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016,
  arXiv:1509.09308.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from .._args import accumulation_dtype
from ._registry import Algorithm, ConvConfig, Shape, not_2d_reason, register
from .im2col import gemm_gradients


def check(x_shape, kernel_shape, dtype, config: ConvConfig) -> str | None:
    """Why winograd cannot serve these arguments, or ``None`` when it can."""
    del dtype
    not_2d = not_2d_reason("winograd", x_shape)
    if not_2d is not None:
        return not_2d
    kh, kw = kernel_shape[0], kernel_shape[1]
    if (kh, kw) != (3, 3) or config.stride != (1, 1) or config.dilation != (1, 1):
        return (
            "winograd serves 3x3 kernels with stride 1 and dilation 1 (got kernel "
            f"{kh}x{kw}, stride {config.stride}, dilation {config.dilation})"
        )
    return None


def _input_transform(d, axis: int, tiles: int):
    """B^T d along ``axis``: 4 tile rows per 2 outputs, tiles overlapping by 2. -> new axis 0."""

    def rows(k):  # d[2t + k] for t in range(tiles)
        return lax.slice_in_dim(d, k, k + 2 * (tiles - 1) + 1, 2, axis=axis)

    d0, d1, d2, d3 = rows(0), rows(1), rows(2), rows(3)
    # B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    return jnp.stack([d0 - d2, d1 + d2, d2 - d1, d1 - d3])


def _filter_transform(g):
    """G g G^T for HWIO ``g`` (3, 3, Cg, O) -> (4, 4, Cg, O)."""

    def one_axis(g, axis):
        g0, g1, g2 = (jnp.take(g, i, axis=axis) for i in range(3))
        # G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
        return jnp.stack([g0, (g0 + g1 + g2) * 0.5, (g0 - g1 + g2) * 0.5, g2], axis=axis)

    return one_axis(one_axis(g, 0), 1)


def winograd_cost_terms(x_shape, kernel_shape, config: ConvConfig, itemsize: int = 4) -> dict:
    """Cost-model terms of ``winograd`` for NHWC ``x_shape`` / HWIO ``kernel_shape``.

    Returns ``flops`` (the 16 GEMMs: ``2 * 16 * tiles * (C / G) * O``), ``tiles``
    (``N * ceil(H_out / 2) * ceil(W_out / 2)``), ``transformed_bytes`` (the transformed input,
    ``16 * tiles * C * itemsize``, and the transformed output, ``16 * tiles * O * itemsize``:
    each written once and read once).
    """
    n, h, w, c = x_shape
    _, _, cg, o = kernel_shape
    ho, wo = config.output_hw((h, w), (3, 3))
    tiles = n * math.ceil(ho / 2) * math.ceil(wo / 2)
    return dict(
        flops=2 * 16 * tiles * cg * o,
        tiles=tiles,
        transformed_bytes=16 * tiles * (c + o) * itemsize,
    )


def conv_winograd(x, kernel, config: ConvConfig):
    """F(2x2, 3x3) Winograd convolution: NHWC ``x`` (N, H, W, C), HWIO ``kernel`` (3, 3, C/G, O).

    Returns:
      ``(N, H + pad - 2, W + pad - 2, O)`` in ``x``'s dtype.
    """
    dtype = x.dtype
    acc = accumulation_dtype(dtype)
    x, kernel = x.astype(acc), kernel.astype(acc)
    n, h, w, _ = x.shape
    _, _, cg, o = kernel.shape
    g = config.groups
    ho, wo = config.output_hw((h, w), (3, 3))
    th, tw = math.ceil(ho / 2), math.ceil(wo / 2)
    (top, _), (left, _) = config.padding
    # Zero padding, and enough extra zeros that every 4x4 tile (stride 2) is in range.
    xp = jnp.pad(x, ((0, 0), (top, 2 * th + 2 - h - top), (left, 2 * tw + 2 - w - left), (0, 0)))
    v = _input_transform(_input_transform(xp, 2, tw), 2, th)  # (4 rows, 4 cols, N, th, tw, C)
    u = _filter_transform(kernel)  # (4, 4, Cg, O)
    v = v.reshape(16, n * th * tw, g, cg)
    u = u.reshape(16, cg, g, o // g)
    m = lax.dot_general(
        v, u, (((3,), (1,)), ((0, 2), (0, 2))), precision=config.precision,
        preferred_element_type=acc,
    )  # (16, G, tiles, O/G)
    m = jnp.moveaxis(m, 1, 2).reshape(4, 4, n, th, tw, o)

    def output_transform(m, axis):  # A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
        m0, m1, m2, m3 = (jnp.take(m, i, axis=axis) for i in range(4))
        return m0 + m1 + m2, m1 - m2 - m3

    y0, y1 = output_transform(m, 0)  # each (4, N, th, tw, O): row 2t and 2t + 1
    y = jnp.stack([jnp.stack(output_transform(yi, 0), axis=0) for yi in (y0, y1)])
    # y[a, b, n, t, s, o] is output (2t + a, 2s + b)
    y = jnp.transpose(y, (2, 3, 0, 4, 1, 5)).reshape(n, 2 * th, 2 * tw, o)
    return y[:, :ho, :wo].astype(dtype)


def winograd_model_terms(x_shape: Shape, kernel_shape: Shape,
                         config: ConvConfig) -> dict[str, float]:
    """Cost-model terms of ``winograd``, from :func:`winograd_cost_terms`."""
    t = winograd_cost_terms(x_shape, kernel_shape, config, itemsize=4)
    return {
        "call": 1.0,
        "flop": float(t["flops"]),
        "tile": 16.0 * t["tiles"],  # per transformed point, whatever C (slow for few channels)
        "transform_byte": float(t["transformed_bytes"]),
    }


WINOGRAD = register(
    Algorithm(
        name="winograd",
        fn=gemm_gradients(conv_winograd),
        serves="3x3 kernels, stride 1, dilation 1, any padding and groups (F(2x2, 3x3))",
        check=check,
        cost_terms=winograd_model_terms,
        # Its transforms mix each 4x4 tile; they only add, subtract and halve, so the float32
        # error was measured <= direct's (<= 3.3e-7 * max|y| at C=256), and the default
        # tolerances apply.
        error="global",
    )
)
