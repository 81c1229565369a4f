"""``algorithm="im2col"``: gather the receptive fields into a patch matrix, then one GEMM.

For NHWC ``x`` ``(N, H, W, C)`` and HWIO ``kernel`` ``(kh, kw, C // G, O)``, the patch matrix
holds, for every output pixel, the ``kh * kw * C`` input values under the (strided, dilated)
kernel in ``(i, j, c)`` order, so that the convolution is the matrix product

    y[(n, p, q), o] = P[(n, p, q), (i, j, c)] @ kernel.reshape(kh * kw * C // G, O)

(one ``dot_general``, batched over the ``G`` groups when ``G > 1``).

The patch matrix is ``kh * kw`` times the size of the input, and on XLA:CPU building it is
memory-bound: materializing it whole was measured *slower* than XLA's own convolution on the
``layer`` benchmark case. So it is built and consumed in chunks of output rows (or of whole
images) under a ``lax.map``, each chunk small enough to stay in cache: :data:`CPU_CHUNK_BYTES`
on CPU (measured fastest), :data:`MAX_PATCH_BYTES` on other backends, where the point is only to
bound the working memory. Both are module constants read at trace time; ``conv_im2col`` also
takes ``chunk_bytes=`` for one call. A 1x1 kernel is one GEMM on ``x`` itself.

Gradients go through :func:`gemm_gradients`: the kernel gradient as XLA's kernel-gradient
convolution, or as chunked GEMMs ``P^T @ dy`` where those are faster
(:func:`kernel_gradient_path`); the input gradient as XLA's transposed convolution (faster here
than im2col's col2im scatter).

Cost-model helpers for ``select.py``: :func:`im2col_cost_terms` (flops, patch bytes, chunks,
GEMM shape) and :func:`plan_chunks`.

References:
  K. Chellapilla, S. Puri, P. Simard, "High Performance Convolutional Neural Networks for
  Document Processing", IWFHR 2006 (the unrolled-convolution GEMM).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from .._args import accumulation_dtype
from ._registry import Algorithm, ConvConfig, Shape, TermsFn, not_2d_reason, register
from .direct import conv_direct, xla_gradient_terms, zero_result

#: Largest patch chunk, in bytes, built at once on GPU/TPU (bounds working memory there).
MAX_PATCH_BYTES = 256 * 2**20
#: Patch chunk size, in bytes, on CPU: small enough to stay in cache between the copy that
#: builds it and the GEMM that reads it (1 MiB measured 2-3x faster than the whole matrix on the
#: ``layer`` case). Also bounds the working memory.
CPU_CHUNK_BYTES = 2**20

def _chunk_bytes() -> int:
    return CPU_CHUNK_BYTES if jax.default_backend() == "cpu" else MAX_PATCH_BYTES


def plan_chunks(x_shape, kernel_shape, config: ConvConfig, chunk_bytes: int | None = None,
                itemsize: int = 4) -> tuple[int, int]:
    """How the patch matrix is split: ``(images_per_chunk, output_rows_per_chunk)``.

    Whole images are grouped while one image's patches fit in ``chunk_bytes``; otherwise each
    chunk is ``rows`` output rows of one image (at least one row, whatever the limit). A 1x1
    kernel is never chunked: its patch matrix is no larger than ``x``.
    ``images_per_chunk`` always divides ``N``.
    """
    n, h, w, c = x_shape
    kh, kw, _, _ = kernel_shape
    ho, wo = config.output_hw((h, w), (kh, kw))
    if kh * kw == 1:  # the "patch matrix" is (a strided view of) x itself: nothing to bound
        return n, ho
    limit = _chunk_bytes() if chunk_bytes is None else int(chunk_bytes)
    row_bytes = wo * kh * kw * c * itemsize
    image_bytes = ho * row_bytes
    if image_bytes <= limit:
        want = max(1, min(n, limit // image_bytes))
        nb = max(d for d in range(1, want + 1) if n % d == 0)
        return nb, ho
    rows = max(1, limit // row_bytes)
    # Equalize the blocks so the padding rows computed and thrown away stay < one per block.
    blocks = math.ceil(ho / rows)
    return 1, math.ceil(ho / blocks)


def im2col_cost_terms(x_shape, kernel_shape, config: ConvConfig, itemsize: int = 4) -> dict:
    """Cost-model terms of ``im2col`` for NHWC ``x_shape`` and HWIO ``kernel_shape``.

    Returns a dict with
      ``flops``: ``2 * N * H_out * W_out * kh * kw * (C / G) * O`` (the GEMM, incl. rows computed
        on the padding of the last row block);
      ``patch_bytes``: bytes of the whole patch matrix, ``N * H_out * W_out * kh * kw * C * itemsize``
        (written once and read once, chunk by chunk);
      ``chunks``: number of ``lax.map`` iterations; ``chunk_bytes``: bytes of one chunk;
      ``gemm_m``, ``gemm_k``, ``gemm_n``: the per-group GEMM shape of one chunk.
    """
    n, h, w, c = x_shape
    kh, kw, cg, o = kernel_shape
    ho, wo = config.output_hw((h, w), (kh, kw))
    nb, rows = plan_chunks(x_shape, kernel_shape, config, itemsize=itemsize)
    chunks = (n // nb) * math.ceil(ho / rows)
    m = nb * rows * wo
    return dict(
        flops=2 * chunks * m * kh * kw * cg * o,
        patch_bytes=n * ho * wo * kh * kw * c * itemsize,
        chunks=chunks,
        chunk_bytes=m * kh * kw * c * itemsize,
        gemm_m=m, gemm_k=kh * kw * cg, gemm_n=o // config.groups,
    )


def _patches(xs, kernel_hw, config: ConvConfig, rows: int, wo: int):
    """``(B, rows, wo, kh * kw, C)`` patches of an NHWC slab ``xs`` holding exactly their rows."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_hw, config.stride, config.dilation
    taps = [
        lax.slice(
            xs,
            (0, i * dh, j * dw, 0),
            (xs.shape[0], i * dh + (rows - 1) * sh + 1, j * dw + (wo - 1) * sw + 1, xs.shape[3]),
            (1, sh, sw, 1),
        )
        for i in range(kh)
        for j in range(kw)
    ]
    return jnp.stack(taps, axis=3)


def _gemm(p, kernel, config: ConvConfig, acc_dtype):
    """``(B, R, Wo, T, C) x (kh, kw, C/G, O) -> (B, R, Wo, O)``: the patch-matrix GEMM."""
    b, r, wo, t, c = p.shape
    cg, o = kernel.shape[2:]
    g = config.groups
    if g == 1:
        return lax.dot_general(
            p.reshape(b, r, wo, t * c), kernel.reshape(t * cg, o),
            (((3,), (0,)), ((), ())), precision=config.precision,
            preferred_element_type=acc_dtype,
        )
    # Groups: batch over G, contract over (tap, C/G).
    p = p.reshape(b, r, wo, t, g, cg)
    k = kernel.reshape(t, cg, g, o // g)
    y = lax.dot_general(
        p, k, (((3, 5), (0, 1)), ((4,), (2,))), precision=config.precision,
        preferred_element_type=acc_dtype,
    )  # (G, B, R, Wo, O/G)
    return jnp.moveaxis(y, 0, -2).reshape(b, r, wo, o)


def conv_im2col(x, kernel, config: ConvConfig, *, chunk_bytes: int | None = None):
    """im2col + GEMM convolution: NHWC ``x`` (N, H, W, C), HWIO ``kernel`` (kh, kw, C/G, O).

    Args:
      x: images ``(N, H, W, C)``.
      kernel: filters ``(kh, kw, C // groups, O)``, same dtype as ``x``.
      config: stride, zero padding, dilation, groups, precision.
      chunk_bytes: patch chunk size in bytes for this call (default: :data:`CPU_CHUNK_BYTES` on
        CPU, :data:`MAX_PATCH_BYTES` elsewhere).

    Returns:
      ``(N, H_out, W_out, O)`` in ``x``'s dtype (bfloat16 / float16 accumulate in float32).
    """
    if x.size == 0 or kernel.size == 0:  # nothing to sum: no chunk to plan
        return zero_result(x, kernel, config)
    dtype = x.dtype
    acc = accumulation_dtype(dtype)
    n, h, w, _ = x.shape
    kh, kw, _, o = kernel.shape
    (sh, _), (eh, _) = config.stride, config.effective_kernel((kh, kw))
    ho, wo = config.output_hw((h, w), (kh, kw))
    nb, rows = plan_chunks(x.shape, kernel.shape, config, chunk_bytes, jnp.dtype(dtype).itemsize)
    blocks = math.ceil(ho / rows)
    span = (rows - 1) * sh + eh  # input rows under one block of output rows
    (top, bottom), (left, right) = config.padding
    # Zero padding, plus the rows the last (partial) row block reads past the bottom.
    need = (blocks * rows - 1) * sh + eh
    xp = jnp.pad(x, ((0, 0), (top, max(bottom, need - h - top)), (left, right), (0, 0)))
    xp = xp[:, :max(need, 1)] if xp.shape[1] > need else xp

    def chunk(xs):  # (nb, span, Wp, C) input rows -> (nb, rows, wo, O)
        return _gemm(_patches(xs, (kh, kw), config, rows, wo), kernel, config, acc)

    count = (n // nb) * blocks
    if count == 1:
        return chunk(xp)[:, :ho].astype(dtype)

    def chunk_at(i):  # the i-th chunk: image block i // blocks, row block i % blocks
        b, r = i // blocks, i % blocks
        starts = (b * nb, r * rows * sh, 0, 0)
        return chunk(lax.dynamic_slice(xp, starts, (nb, span, *xp.shape[2:])))

    # Each chunk's input slab is cut from xp inside the loop, so the working memory is xp, the
    # output and one chunk's patches (not kh times the input). checkpoint: the backward pass
    # rebuilds each chunk's patches instead of storing them all.
    y = lax.map(jax.checkpoint(chunk_at), jnp.arange(count))  # (count, nb, rows, wo, O)
    y = y.reshape(n // nb, blocks, nb, rows, wo, o)
    y = jnp.swapaxes(y, 1, 2).reshape(n, blocks * rows, wo, o)
    return y[:, :ho].astype(dtype)


def gemm_gradients(fn, *, own_input_gradient: bool = False):
    """Wrap ``fn(x, kernel, config)`` so its derivatives are computed the fast way on XLA:CPU.

    Convolution is bilinear, so its JVP is ``conv(dx, kernel) + conv(x, dkernel)``. The ``dx``
    term is written as XLA's convolution, whose transpose (the input gradient) is XLA's
    transposed convolution: the transpose of the im2col form is a col2im scatter-add, measured up
    to 2x *slower* on the ``layer`` case (2-core CPU). With ``own_input_gradient`` (Winograd),
    where :func:`input_gradient_path` says so, the input gradient is ``fn`` itself on the
    output gradient (:func:`input_gradient_problem`): the ``dx`` term is the transpose of that
    forward call, so its transpose in reverse mode is the call. The ``dkernel`` term follows
    :func:`kernel_gradient_path`: XLA's convolution (its transpose, XLA's kernel-gradient
    convolution), or, for unpadded stride-1 problems with many channels, an im2col GEMM, whose
    transpose ``P^T @ dy`` is accumulated chunk by chunk. Forward mode, ``vmap`` and higher
    orders work as for any ``custom_jvp``.
    """

    @functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
    def conv(x, kernel, config):
        return fn(x, kernel, config)

    @conv.defjvp
    def conv_jvp(config, primals, tangents):
        (x, kernel), (dx, dkernel) = primals, tangents
        y = conv(x, kernel, config)
        if not own_input_gradient or input_gradient_path(kernel.shape, config) == "xla":
            dx_term = conv_direct(dx, kernel, config)
        else:
            k_t = transposed_kernel(kernel, config.groups)
            _, _, config_t = input_gradient_problem(x.shape, kernel.shape, config)
            (dx_term,) = jax.linear_transpose(lambda ct: fn(ct, k_t, config_t),
                                              jax.ShapeDtypeStruct(y.shape, y.dtype))(dx)
        xla = kernel_gradient_path(kernel.shape, config) == "xla"
        dkernel_conv = conv_direct if xla else conv_im2col
        return y, dx_term + dkernel_conv(x, dkernel, config)

    return functools.wraps(fn)(conv)


def input_gradient_problem(x_shape: Shape, kernel_shape: Shape,
                           config: ConvConfig) -> tuple[Shape, Shape, ConvConfig]:
    """The input gradient of a stride-1, undilated convolution padded by at most ``k - 1`` per
    side (where :func:`input_gradient_path` is ``"own"``) as a forward one: the output gradient
    ``(N, *out, O)`` correlated with :func:`transposed_kernel` ``(*k, O / G, C)`` under
    ``(k - 1 - lo, k - 1 - hi)`` zero padding per axis."""
    *k, cg, o = kernel_shape
    pads = tuple((kk - 1 - lo, kk - 1 - hi) for kk, (lo, hi) in zip(k, config.padding, strict=True))
    out = config.output_hw(tuple(x_shape[1:-1]), tuple(k))
    return ((x_shape[0], *out, o), (*k, o // config.groups, cg * config.groups),
            config.replace(padding=pads))


#: Input channels per group from which a Winograd algorithm's input gradient is its own
#: convolution of the output gradient (:func:`input_gradient_path`).
OWN_INPUT_GRADIENT_CHANNELS = 48


def input_gradient_path(kernel_shape: Shape, config: ConvConfig) -> str:
    """How :func:`gemm_gradients` computes the input gradient of an algorithm wrapped with
    ``own_input_gradient``: ``"own"`` (the algorithm on :func:`input_gradient_problem`) for
    stride 1, no dilation, padding up to ``k - 1`` per side and at least
    :data:`OWN_INPUT_GRADIENT_CHANNELS` input channels per group, else ``"xla"`` (XLA's
    transposed convolution).

    Measured on 3x3 layers (``benchmarks/input_gradient.py``, two runs, ``docs/algorithms.md``):
    with 48 to 512 channels Winograd's input gradient took 0.5-1.0x the time of XLA's (F(4x4)
    on 4x4 images 1.5-2x, which the selector weighs); with 3 to 32 channels, whose gradient has
    as few output channels, 0.9-6x. ``kernel_shape`` is ``(*k, C / G, O)``.
    """
    if any(s != 1 for s in config.stride) or any(d != 1 for d in config.dilation):
        return "xla"
    *k, cg, _ = kernel_shape
    if any(p > kk - 1 for kk, pads in zip(k, config.padding, strict=True) for p in pads):
        return "xla"
    return "own" if cg >= OWN_INPUT_GRADIENT_CHANNELS else "xla"


def transposed_kernel(kernel, groups: int):
    """``(*k, C / G, O)`` -> ``(*k, O / G, C)``: flipped, input and output channels swapped within
    each group (the kernel of :func:`input_gradient_problem`)."""
    *k, cg, o = kernel.shape
    spatial = tuple(range(len(k)))
    flipped = jnp.flip(kernel, spatial).reshape(*k, cg, groups, o // groups)
    return jnp.moveaxis(flipped, (-3, -1), (-1, -3)).reshape(*k, o // groups, groups * cg)


#: Input channels per group from which an unpadded stride-1 problem's kernel gradient runs as
#: im2col GEMMs (:func:`kernel_gradient_path`).
GEMM_KERNEL_GRADIENT_CHANNELS = 32


def kernel_gradient_path(kernel_shape: Shape, config: ConvConfig) -> str:
    """How :func:`gemm_gradients` computes the kernel gradient: ``"im2col"`` (chunked GEMMs) for
    an unpadded stride-1 problem with at least :data:`GEMM_KERNEL_GRADIENT_CHANNELS` input
    channels per group, else ``"xla"`` (XLA's kernel-gradient convolution).

    XLA:CPU (jax 0.10, YNNPACK) runs the kernel gradient of an unpadded stride-1 convolution
    with many channels through a path 1.3-2.9x slower than the GEMMs (the ``layer`` case's
    8x64x64x32, ResNet-50's 1x1 64->256); every other kind it runs 1.3-3.4x faster than them
    (zero padding, strides, 1 to 16 channels: ``benchmarks/kernel_gradient.py``,
    ``docs/algorithms.md``). ``kernel_shape`` is ``(*k, C / G, O)``.
    """
    dense = not config.padded and all(s == 1 for s in config.stride)
    return "im2col" if dense and kernel_shape[-2] >= GEMM_KERNEL_GRADIENT_CHANNELS else "xla"


def gradient_terms(x_shape: Shape, kernel_shape: Shape, config: ConvConfig,
                   own_input_gradient: TermsFn | None = None) -> dict[str, float]:
    """The cost terms :func:`gemm_gradients` adds in training, ``dx_*`` and ``dk_*`` (training
    only, :func:`~jaxconv.convolution.cost_model.cost_terms`).

    ``dx_*``: the input gradient is XLA's transposed convolution, which runs as fast or as slow
    as ``direct``'s path for the problem (a strided 1x1 layer's input gradient took 3-9x what
    the GEMMs did): ``direct``'s flops per path and its ``dx_flop_dilated``; or, given
    ``own_input_gradient`` (the algorithm's forward terms) where :func:`input_gradient_path`
    is ``"own"``, those terms of :func:`input_gradient_problem` (``dx_own_*``).
    ``dk_*``: the kernel gradient, by :func:`kernel_gradient_path`: XLA's flops per path
    (``dk_flop_*``), or the GEMMs' flops, patch bytes and chunks (``dk_gemm_*``).
    """
    xla = xla_gradient_terms(x_shape, kernel_shape, config)
    if own_input_gradient is None or input_gradient_path(kernel_shape, config) == "xla":
        terms = {k: v for k, v in xla.items() if k.startswith("dx_")}
    else:
        problem = input_gradient_problem(x_shape, kernel_shape, config)
        terms = {"dx_own_" + k: v for k, v in own_input_gradient(*problem).items()}
    if kernel_gradient_path(kernel_shape, config) == "xla":
        terms.update({k: v for k, v in xla.items() if k.startswith("dk_")})
    else:
        t = im2col_cost_terms(x_shape, kernel_shape, config, itemsize=4)
        terms.update(dk_gemm_flop=float(t["flops"]), dk_gemm_patch_byte=float(t["patch_bytes"]),
                     dk_gemm_chunk=float(t["chunks"]))
    return terms


def im2col_model_terms(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> dict[str, float]:
    """Cost-model terms of ``im2col``, from :func:`im2col_cost_terms`, and its input gradient's."""
    t = im2col_cost_terms(x_shape, kernel_shape, config, itemsize=4)
    return {
        "call": 1.0,
        "flop": float(t["flops"]),
        "patch_byte": float(t["patch_bytes"]),
        "chunk": float(t["chunks"]),  # one lax.map iteration each
        **gradient_terms(x_shape, kernel_shape, config),
    }


def check(x_shape: Shape, kernel_shape: Shape, dtype, config: ConvConfig) -> str | None:
    """Why im2col cannot serve these arguments (a 1-D or 3-D problem), or ``None``."""
    return not_2d_reason("im2col", x_shape)


IM2COL = register(
    Algorithm(
        name="im2col",
        fn=gemm_gradients(conv_im2col),
        serves=(
            "every configuration of a 2-D convolution (patch matrix + one GEMM, built in "
            "cache-sized chunks)"
        ),
        check=check,
        cost_terms=im2col_model_terms,
    )
)
