"""``algorithm="winograd"`` / ``"winograd4"``: Winograd minimal filtering F(2x2, 3x3) and
F(4x4, 3x3) for 3x3 kernels.

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

F(4x4, 3x3) computes each 4x4 block from a 6x6 tile: 36 multiplies per 16 outputs (4x fewer
than im2col) and transformed data 2.25x the input instead of 4x, for transforms with entries up
to 8 and 1/24. The selector chooses between the two per problem (two registered algorithms).

Error: the transforms of F(2x2, 3x3) have entries 0, +-1, +-1/2, so the float32 error is a small
multiple of direct's (measured <= ~2x; see ``tests/test_gemm_algorithms.py``). F(4x4, 3x3)'s is
about 10x larger, still relative to the largest output: measured <= 1e-5 * max|y| in float32
with 128 input channels.

Working set: the transformed input and output are ``t^2 / m^2`` times the data (4x for F(2x2),
2.25x for F(4x4)). When the transformed output passes :data:`CHUNK_ABOVE_BYTES`, the batch is
computed in chunks of images of at most :data:`CHUNK_BYTES` under a ``lax.map``: on the 2-core
CPU a larger one ran 2-5x slower (F(2x2) on ResNet-50's 8x56x56x64 3x3 layer: 20 ms whole,
4.1 ms in chunks; on VGG's 4x112x112x3 -> 64: 17 and 4.3 ms; on 4x96x96x32 -> 32: 9.5 ms
whole), while F(4x4) on the ResNet layer (14 MiB) ran faster whole. A single image is never
split.

Gradients (:func:`jaxconv.convolution.im2col.gemm_gradients`): the input gradient is the same
Winograd convolution, of the output gradient with the kernel flipped and its channels swapped
(``2 - p`` zero padding where the forward had ``p``; XLA's transposed convolution where a side
was padded by more than 2), the kernel gradient XLA's or an im2col GEMM
(:func:`~jaxconv.convolution.im2col.kernel_gradient_path`); differentiating through the
transforms was measured 2x slower than ``direct``'s gradient. The Winograd input gradient is
taken from 48 input channels per group (:func:`~jaxconv.convolution.im2col.input_gradient_path`;
measured in ``docs/algorithms.md``).

References:
  A. Lavin, S. Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016,
  arXiv:1509.09308.
"""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from .._args import accumulation_dtype
from ._registry import Algorithm, ConvConfig, Shape, not_2d_reason, register
from .im2col import gemm_gradients, gradient_terms


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


#: Transformed output (the GEMMs' result, bytes, float32) above which the batch is split.
CHUNK_ABOVE_BYTES = 15 * 2**20
#: Largest chunk's transformed input + output, in bytes (whole images: at least one).
CHUNK_BYTES = 24 * 2**20


def plan_chunks(x_shape, kernel_shape, config: ConvConfig, m: int) -> int:
    """Images per ``lax.map`` chunk (a divisor of N; N when the batch is not split)."""
    n, _, _, c = x_shape
    o = kernel_shape[-1]
    total = winograd_cost_terms(x_shape, kernel_shape, config, m=m)["transformed_bytes"]
    if total * o / (c + o) <= CHUNK_ABOVE_BYTES:
        return n
    per_image = total / n
    return max(d for d in range(1, n + 1) if n % d == 0 and (d == 1 or d * per_image <= CHUNK_BYTES))


# Winograd's minimal filtering F(m x m, 3 x 3): Y = A^T [(G g G^T) * (B^T d B)] A on (m + 2)^2
# input tiles overlapping by 2. Matrices from Lavin & Gray (2016); F(4, 3)'s interpolation
# points 0, +-1, +-2 (and infinity).
TRANSFORMS: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {
    2: (
        np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float),  # B^T
        np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),  # G
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float),  # A^T
    ),
    4: (
        np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float),
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                  [0, 1, -1, 8, -8, 1]], float),
    ),
}


def _combine(matrix: np.ndarray, parts: list) -> list:
    """``matrix @ parts`` for a small constant matrix, as unrolled sums of scaled arrays.

    XLA fuses these into one elementwise pass; a ``dot`` with a 4-6 long contraction would not
    vectorize as well. Zero entries cost nothing, +-1 entries no multiply.
    """
    out = []
    for row in matrix:
        acc = None
        for coef, part in zip(row, parts, strict=True):
            if coef == 0:
                continue
            term = part if coef == 1 else -part if coef == -1 else part * float(coef)
            acc = term if acc is None else acc + term
        out.append(acc)
    return out


def _input_tiles(d, axis: int, tiles: int, m: int) -> list:
    """B^T d along ``axis``: tile ``t`` covers rows ``m t .. m t + m + 1``. -> m + 2 arrays."""
    bt = TRANSFORMS[m][0]
    rows = [lax.slice_in_dim(d, k, k + m * (tiles - 1) + 1, m, axis=axis) for k in range(m + 2)]
    return _combine(bt, rows)


def _filter_transform(g, m: int):
    """G g G^T for HWIO ``g`` (3, 3, Cg, O) -> (m + 2, m + 2, Cg, O).

    One product with the (t^2, 9) Kronecker matrix ``G (x) G``: the transformed kernel is
    ``t^2 / 9`` times the kernel, and this writes it in one pass (stacking the two 1-D
    transforms took 1.6-1.9x longer with 256-512 channels). Full precision whatever the
    caller's: a 9-term sum, memory-bound, and its error would reach every output.
    """
    t = m + 2
    gg = np.kron(TRANSFORMS[m][1], TRANSFORMS[m][1])  # [(a, b), (i, j)] = G[a, i] G[b, j]
    _, _, cg, o = g.shape
    u = lax.dot(jnp.asarray(gg, g.dtype), g.reshape(9, cg * o), precision=lax.Precision.HIGHEST)
    return u.reshape(t, t, cg, o)


def winograd_cost_terms(x_shape, kernel_shape, config: ConvConfig, itemsize: int = 4,
                        m: int = 2) -> dict:
    """Cost-model terms of F(m x m, 3x3) for NHWC ``x_shape`` / HWIO ``kernel_shape``.

    With ``t = m + 2``: ``flops`` (the ``t^2`` GEMMs: ``2 * t^2 * tiles * (C / G) * O``),
    ``tiles`` (``N * ceil(H_out / m) * ceil(W_out / m)``), ``transformed_bytes`` (the
    transformed input, ``t^2 * tiles * C * itemsize``, and the transformed output,
    ``t^2 * tiles * O * itemsize``: each written once and read once), ``kernel_bytes`` (the
    kernel read, its ``t^2 / 9`` times larger transform written and read by the GEMMs: with few
    small images and many channels this outweighs the rest).
    """
    n, h, w, c = x_shape
    _, _, cg, o = kernel_shape
    ho, wo = config.output_hw((h, w), (3, 3))
    tiles = n * math.ceil(ho / m) * math.ceil(wo / m)
    t2 = (m + 2) ** 2
    return dict(
        flops=2 * t2 * tiles * cg * o,
        tiles=tiles,
        transformed_bytes=t2 * tiles * (c + o) * itemsize,
        kernel_bytes=(9 + 2 * t2) * cg * o * itemsize,
    )


def conv_winograd(x, kernel, config: ConvConfig, *, m: int = 2):
    """F(m x m, 3x3) Winograd convolution: NHWC ``x`` (N, H, W, C), HWIO ``kernel`` (3, 3, C/G, O).

    ``m`` is the output tile (2 or 4). Returns ``(N, H + pad - 2, W + pad - 2, O)`` in ``x``'s
    dtype. Large batches run in chunks of images (:func:`plan_chunks`).
    """
    n = x.shape[0]
    nb = plan_chunks(x.shape, kernel.shape, config, m)
    if nb == n:
        return _winograd(x, kernel, config, m)
    y = lax.map(lambda xc: _winograd(xc, kernel, config, m), x.reshape(n // nb, nb, *x.shape[1:]))
    return y.reshape(n, *y.shape[2:])


def _winograd(x, kernel, config: ConvConfig, m: int):
    dtype = x.dtype
    acc = accumulation_dtype(dtype)
    x, kernel = x.astype(acc), kernel.astype(acc)
    n, h, w, _ = x.shape
    _, _, cg, o = kernel.shape
    g, t = config.groups, m + 2
    ho, wo = config.output_hw((h, w), (3, 3))
    th, tw = math.ceil(ho / m), math.ceil(wo / m)
    (top, _), (left, _) = config.padding
    # Zero padding, and enough extra zeros that every tile is in range.
    xp = jnp.pad(x, ((0, 0), (top, m * th + 2 - h - top), (left, m * tw + 2 - w - left), (0, 0)))
    # B^T along W, then along H on all t columns at once: 2t unrolled sums. (One sum per
    # tile position, t^2 + t of them, gives the same bits but compiled 2-4x slower.)
    cols = jnp.stack(_input_tiles(xp, 2, tw, m))  # (t cols, N, Hp, tw, C)
    v = jnp.stack(_input_tiles(cols, 2, th, m))  # (t rows, t cols, N, th, tw, C)
    u = _filter_transform(kernel, m)  # (t, t, Cg, O)
    v = v.reshape(t * t, n * th * tw, g, cg)
    u = u.reshape(t * t, cg, g, o // g)
    prod = lax.dot_general(
        v, u, (((3,), (1,)), ((0, 2), (0, 2))), precision=config.precision,
        preferred_element_type=acc,
    )  # (t * t, G, tiles, O/G)
    prod = jnp.moveaxis(prod, 1, 2).reshape(t, t, n, th, tw, o)
    at = TRANSFORMS[m][2]
    rows = _combine(at, [prod[i] for i in range(t)])  # m x (t cols, N, th, tw, O)
    y = jnp.stack([jnp.stack(_combine(at, [r[j] for j in range(t)])) for r in rows])
    # y[a, b, n, i, j, o] is output (m i + a, m j + b)
    y = jnp.transpose(y, (2, 3, 0, 4, 1, 5)).reshape(n, m * th, m * tw, o)
    return y[:, :ho, :wo].astype(dtype)


def _forward_terms(x_shape: Shape, kernel_shape: Shape, config: ConvConfig,
                   m: int) -> dict[str, float]:
    t = winograd_cost_terms(x_shape, kernel_shape, config, itemsize=4, m=m)
    return {
        "call": 1.0,
        "chunk": float(x_shape[0] // plan_chunks(x_shape, kernel_shape, config, m)),
        "flop": float(t["flops"]),
        # per transformed point, whatever C (slow for few channels)
        "tile": float((m + 2) ** 2 * t["tiles"]),
        "transform_byte": float(t["transformed_bytes"]),
        "kernel_byte": float(t["kernel_bytes"]),
    }


def _model_terms(m: int):
    def terms(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> dict[str, float]:
        forward = functools.partial(_forward_terms, m=m)
        # the input gradient is F(m x m, 3x3) too, on the output gradient (gemm_gradients)
        return {**forward(x_shape, kernel_shape, config),
                **gradient_terms(x_shape, kernel_shape, config, own_input_gradient=forward)}

    terms.__doc__ = f"Cost-model terms of F({m}x{m}, 3x3), from :func:`winograd_cost_terms`."
    return terms


WINOGRAD = register(
    Algorithm(
        name="winograd",
        fn=gemm_gradients(conv_winograd, own_input_gradient=True),
        serves="3x3 kernels, stride 1, dilation 1, any padding and groups (F(2x2, 3x3))",
        check=check,
        cost_terms=_model_terms(2),
        # Its transforms mix each 4x4 tile; they only add, subtract and halve, so the float32
        # error was measured <= direct's (<= 3.3e-7 * max|y| at C=256), and the default
        # tolerances apply.
        error="global",
    )
)

WINOGRAD4 = register(
    Algorithm(
        name="winograd4",
        fn=gemm_gradients(functools.partial(conv_winograd, m=4),
                          own_input_gradient=True),
        serves="3x3 kernels, stride 1, dilation 1, any padding and groups (F(4x4, 3x3))",
        check=check,
        cost_terms=_model_terms(4),
        error="global",
        # Transforms with entries up to 8 and 1/24: float32 error ~10x F(2x2, 3x3)'s, measured
        # <= 1e-5 * max|y| with 128 input channels (<= 3e-6 at the tests' sizes).
        tolerance={"float32": (2e-5, 3e-5)},
    )
)
