"""``algorithm="mec"``: lower the input along its width only, one GEMM onto every kernel row, then add the rows.

im2col copies ``kh * kw`` shifted views of the input into its patch matrix, and on XLA:CPU
building that matrix, not the GEMM, is what costs. This algorithm lowers along the width only
(as MEC does) and moves the height taps to the output side (as kn2row does). For the zero-padded
NHWC input ``x`` and HWIO ``kernel`` ``(kh, kw, C, O)``:

    P[n, h, q, (j, c)] = x[n, h, q * sw + j * dw, c]           kw times the input, not kh * kw
    Z[n, h, q, (i, o)] = P[n, h, q, :] @ kernel[i, j, c, o]     one GEMM: K = kw * C, N = kh * O
    y[n, p, q, o]      = sum_i Z[n, p * sh + i * dh, q, i, o]   kh shifted adds, one fusion

so the work is one well-shaped GEMM, a copy ``kw`` times the input and a sum ``kh`` times the
output. With a row stride ``sh > 1``, tap ``i`` reads only the rows ``≡ i * dh (mod sh)``, so the
rows are split by that phase and each phase's GEMM carries only its own taps: no flop is spent
on a row no tap reads. Groups batch the GEMM over ``G``.

The batch is processed in chunks of whole images (or, for an image larger than a chunk, of
output rows), each at most :data:`CHUNK_BYTES` of ``P`` and ``Z``, so the working set stays near
the cache. Chunks are unrolled while the whole batch's ``P`` and ``Z`` stay under
:data:`UNROLLED_BYTES` and there are at most :data:`MAX_UNROLLED` of them (as a loop, forward +
backward ran 1.5-3x slower on small problems); beyond that they run as a checkpointed
``lax.map`` (image chunks sliced and zero-padded inside the loop), so the program's temporary
memory is about one chunk (why that matters on XLA:CPU: ``_batching``). Unrolled, XLA:CPU
keeps most chunks' buffers live: a 128x32x32x24 3x3 problem took 52 MiB of temporaries and
ran 3x slower than XLA's convolution; as a loop, 17 MiB and as fast (the table in
``docs/algorithms.md``).

The gradients are GEMMs too: each phase is a ``jax.custom_jvp`` whose tangent halves are
written as transposes of the backward functions we want, so reverse mode runs them: ``dZ`` is
``dy`` shifted once per kernel row (one pass), then ``dW = P^T @ dZ`` and ``dP = dZ @ W^T``,
and ``dx`` adds ``dP``'s ``kw`` column taps back. Forward mode, ``vmap`` and higher orders work
as for any ``custom_jvp``. bfloat16 / float16 accumulate in float32
(``preferred_element_type``) and are rounded once; ``config.precision`` is passed to every
``dot_general``.

References:
  M. Cho, D. Brand, "MEC: Memory-efficient Convolution for Deep Neural Network", ICML 2017.
  A. Vasudevan, A. Anderson, D. Gregg, "Parallel Multi Channel Convolution using General Matrix
  Multiplication", ASAP 2017 (kn2row).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from .._args import accumulation_dtype
from ._batching import over_images
from ._registry import Algorithm, ConvConfig, Shape, not_2d_reason, register

#: Largest chunk, in bytes of ``P`` and ``Z`` together (float32): 8-12 MiB measured fastest on
#: the project's 2-core CPU (2 MiB of L2 per core, 32 MiB of L3); whole batches of 20-40 MiB
#: ran 2-4x slower.
CHUNK_BYTES = 10 * 2**20
#: Most chunks unrolled; more run as a ``lax.map`` over the chunks (bounded memory).
MAX_UNROLLED = 8
#: Largest ``P`` and ``Z`` of the whole batch (float32 bytes) whose chunks are unrolled; beyond
#: it they run as a loop.
UNROLLED_BYTES = 24 * 2**20


def check(x_shape, kernel_shape, dtype, config: ConvConfig) -> str | None:
    """Why mec cannot serve these arguments, or ``None`` when it can (every 2-D problem)."""
    del kernel_shape, dtype, config
    return not_2d_reason("mec", x_shape)


def _phases(kh: int, sh: int, dh: int) -> list[tuple[int, list[int]]]:
    """``(phase r, kernel rows i)`` for each row phase some tap reads: ``i * dh ≡ r (mod sh)``."""
    out = []
    for r in range(sh):
        rows = [i for i in range(kh) if (i * dh) % sh == r]
        if rows:
            out.append((r, rows))
    return out


def _row_bytes(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> float:
    """Bytes of ``P`` and ``Z`` (float32) per output row of one image, over all phases."""
    c = x_shape[-1]
    kh, kw, _, o = kernel_shape
    (sh, _), (dh, _) = config.stride, config.dilation
    _, wo = config.output_hw(x_shape[1:3], kernel_shape[:2])
    # A phase computes one row per output row (plus a few at the block's end, ignored here).
    return 4.0 * wo * sum(kw * c + len(rows) * o for _, rows in _phases(kh, sh, dh))


def plan_chunks(x_shape: Shape, kernel_shape: Shape, config: ConvConfig,
                chunk_bytes: int | None = None) -> tuple[int, int]:
    """How the batch is split: ``(images_per_chunk, output_rows_per_chunk)``.

    Whole images are grouped, in equal chunks, while they fit in ``chunk_bytes`` (default
    :data:`CHUNK_BYTES`); an image larger than that is split into equal blocks of output rows.
    """
    n = x_shape[0]
    ho, _ = config.output_hw(x_shape[1:3], kernel_shape[:2])
    if n == 0 or ho <= 0:
        return max(n, 1), max(ho, 1)
    limit = CHUNK_BYTES if chunk_bytes is None else int(chunk_bytes)
    image = ho * _row_bytes(x_shape, kernel_shape, config)
    if image <= limit:
        chunks = math.ceil(n / max(1, int(limit // image)))
        return math.ceil(n / chunks), ho  # equal chunks: 8 images as 4 + 4, not 6 + 2
    blocks = min(math.ceil(image / limit), ho)
    return 1, math.ceil(ho / blocks)


def mec_cost_terms(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> dict[str, float]:
    """Cost-model terms of ``mec``.

    ``flop``: the GEMMs, rows computed beyond the output included; ``byte``: ``P`` and ``Z``
    written and read; ``row``: GEMM rows times groups (a thin or grouped GEMM's per-row
    overhead); ``chunk``: the number of chunks; ``kernel_byte``: the kernel, laid out as the
    GEMM's operand on every call (with a few small images and many channels it weighs as much
    as the activations); ``call``: one.
    """
    n, c = x_shape[0], x_shape[-1]
    kh, kw, cg, o = kernel_shape
    (sh, _), (dh, _) = config.stride, config.dilation
    ho, wo = config.output_hw(x_shape[1:3], kernel_shape[:2])
    nb, rows = plan_chunks(x_shape, kernel_shape, config)
    blocks = math.ceil(ho / rows)
    flop = byte = row = 0.0
    for _, taps in _phases(kh, sh, dh):
        # GEMM rows of this phase: each row block's output rows plus the largest tap offset
        m = n * (ho + blocks * ((taps[-1] * dh) // sh)) * wo
        flop += 2.0 * m * kw * cg * len(taps) * o
        byte += 4.0 * m * (kw * c + len(taps) * o)
        row += float(m * config.groups)
    return {"call": 1.0, "flop": flop, "byte": byte, "row": row,
            "chunk": float(math.ceil(n / nb) * blocks),
            "kernel_byte": 4.0 * math.prod(kernel_shape)}


@dataclasses.dataclass(frozen=True)
class _Phase:
    """Static geometry of one row phase: its output size, tap offsets and width lowering."""

    ho: int
    wo: int
    offsets: tuple[int, ...]  # output row offset of each of the phase's taps
    sw: int
    dw: int
    groups: int
    precision: Any
    acc: Any  # accumulation dtype


def _lower(xr, kw: int, ph: _Phase):
    """``(n, rows, Wp, C) -> (n, rows, wo, kw, C)``: the width lowering ``P``."""
    n, rows, _, c = xr.shape
    return jnp.stack([
        lax.slice(xr, (0, 0, j * ph.dw, 0), (n, rows, j * ph.dw + (ph.wo - 1) * ph.sw + 1, c),
                  (1, 1, ph.sw, 1))
        for j in range(kw)
    ], axis=3)


def _kernel_matrix(k):
    """Taps ``(t, kw, C, O)`` as the GEMM's right side ``(kw * C, t * O)`` (one group)."""
    t, kw, c, o = k.shape
    return jnp.transpose(k, (1, 2, 0, 3)).reshape(kw * c, t * o)


def _gemm(p, k, ph: _Phase):
    """``P (n, rows, wo, kw, C) x taps (t, kw, C/G, O) -> Z (n, rows, wo, t, O)``."""
    n, rows, wo, kw, c = p.shape
    t, _, cg, o = k.shape
    g = ph.groups
    if g == 1:
        z = lax.dot_general(
            p.reshape(n, rows, wo, kw * c), _kernel_matrix(k),
            (((3,), (0,)), ((), ())), precision=ph.precision, preferred_element_type=ph.acc)
        return z.reshape(n, rows, wo, t, o)
    # batch over the groups, contract over (j, C / G)
    z = lax.dot_general(
        p.reshape(n, rows, wo, kw, g, cg),
        jnp.transpose(k.reshape(t, kw, cg, g, o // g), (1, 2, 3, 0, 4)),
        (((3, 5), (0, 1)), ((4,), (2,))), precision=ph.precision, preferred_element_type=ph.acc,
    )  # (G, n, rows, wo, t, O / G)
    return jnp.transpose(z, (1, 2, 3, 4, 0, 5)).reshape(n, rows, wo, t, o)


def _shift_sum(xr, k, ph: _Phase):
    """``sum_a Z[:, s_a:s_a + ho, :, a]`` for ``Z = lower(xr) @ taps``."""
    z = _gemm(_lower(xr, k.shape[1], ph), k, ph)
    y = z[:, ph.offsets[0]:ph.offsets[0] + ph.ho, :, 0]
    for a, s in enumerate(ph.offsets[1:], 1):
        y = y + z[:, s:s + ph.ho, :, a]
    return y


def _dz(dy, rows: int, ph: _Phase):
    """``dZ (n, rows, wo, t, O)``: ``dy`` shifted to each tap's rows, built in one pass."""
    return jnp.stack([jnp.pad(dy, ((0, 0), (s, rows - ph.ho - s), (0, 0), (0, 0)))
                      for s in ph.offsets], axis=3)


def _input_gradient(dy, k, xr_shape, ph: _Phase):
    """``dxr = lower^T(dZ @ W^T)``: one GEMM, then the ``kw`` column taps added back."""
    dtype = k.dtype
    n, rows, _, c = xr_shape
    t, kw, cg, o = k.shape
    g = ph.groups
    dz = _dz(dy.astype(dtype), rows, ph)
    m = n * rows * ph.wo
    if g == 1:
        dp = lax.dot_general(dz.reshape(m, t * o), _kernel_matrix(k), (((1,), (1,)), ((), ())),
                             precision=ph.precision, preferred_element_type=ph.acc)  # (m, kw * C)
    else:
        dp = lax.dot_general(dz.reshape(m, t, g, o // g), k.reshape(t, kw, cg, g, o // g),
                             (((1, 3), (0, 4)), ((2,), (3,))), precision=ph.precision,
                             preferred_element_type=ph.acc)  # (G, m, kw, C/G)
        dp = jnp.transpose(dp, (1, 2, 0, 3))
    dp = dp.reshape(n, rows, ph.wo, kw, c).astype(dtype)
    (dxr,) = jax.linear_transpose(lambda a: _lower(a, kw, ph),
                                  jax.ShapeDtypeStruct(xr_shape, dtype))(dp)
    return dxr


def _kernel_gradient(xr, dy, k_shape, ph: _Phase):
    """``dW = P^T @ dZ``: one GEMM contracting over every row of the phase."""
    t, kw, cg, o = k_shape
    g = ph.groups
    p = _lower(xr, kw, ph)
    n, rows, wo, _, c = p.shape
    dz = _dz(dy.astype(xr.dtype), rows, ph)
    m = n * rows * wo
    if g == 1:
        dk = lax.dot_general(p.reshape(m, kw * c), dz.reshape(m, t * o),
                             (((0,), (0,)), ((), ())), precision=ph.precision,
                             preferred_element_type=ph.acc)  # (kw * C, t * O)
        dk = jnp.transpose(dk.reshape(kw, cg, t, o), (2, 0, 1, 3))
    else:
        dk = lax.dot_general(p.reshape(m, kw, g, cg), dz.reshape(m, t, g, o // g),
                             (((0,), (0,)), ((2,), (2,))), precision=ph.precision,
                             preferred_element_type=ph.acc)  # (G, kw, C/G, t, O/G)
        dk = jnp.transpose(dk, (3, 1, 2, 0, 4)).reshape(t, kw, cg, o)
    return dk.astype(xr.dtype)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _phase(xr, k, ph: _Phase):
    """One phase's share of the output, in the accumulation dtype.

    ``xr``: the phase's input rows ``(n, ho + max offset, Wp, C)``; ``k``: its taps
    ``(t, kw, C/G, O)``.
    """
    return _shift_sum(xr, k, ph)


@_phase.defjvp
def _phase_jvp(ph: _Phase, primals, tangents):
    """``conv(dx, k) + conv(x, dk)``, each half written as the transpose of the gradient we want.

    Reverse mode transposes the tangent map, and transposition is an involution on the ops
    used, so the backward pass runs :func:`_input_gradient` and :func:`_kernel_gradient`: two
    GEMMs on one ``dZ``. Autodiff's own transpose of :func:`_shift_sum` gave ``dZ`` as a sum of
    per-row pads that XLA:CPU materialized one buffer each, with a transposed copy for the
    kernel gradient (a 7x7 layer's forward + backward took 3-10x its forward, now ~1.5x).
    Forward mode evaluates the transposed forms (correct, not tuned).
    """
    (xr, k), (dxr, dk) = primals, tangents
    y = _phase(xr, k, ph)
    g_aval = jax.ShapeDtypeStruct(y.shape, y.dtype)
    (ty_x,) = jax.linear_transpose(lambda g: _input_gradient(g, k, xr.shape, ph), g_aval)(dxr)
    (ty_k,) = jax.linear_transpose(lambda g: _kernel_gradient(xr, g, k.shape, ph), g_aval)(dk)
    return y, ty_x + ty_k


def _rows(xs, kernel, config: ConvConfig, ho: int, wo: int, acc):
    """``ho`` output rows of the zero-padded slab ``xs`` (it holds exactly the rows they read)."""
    n, _, wp, c = xs.shape
    kh = kernel.shape[0]
    (sh, sw), (dh, dw) = config.stride, config.dilation
    y = None
    for r, taps in _phases(kh, sh, dh):
        offsets = tuple((i * dh) // sh for i in taps)
        rows = ho + offsets[-1]
        xr = lax.slice(xs, (0, r, 0, 0), (n, r + (rows - 1) * sh + 1, wp, c), (1, sh, 1, 1))
        k = kernel if len(taps) == kh else kernel[jnp.asarray(taps)]
        part = _phase(xr, k, _Phase(ho, wo, offsets, sw, dw, config.groups, config.precision,
                                    jnp.dtype(acc)))
        y = part if y is None else y + part
    return y


def conv_mec(x, kernel, config: ConvConfig, *, chunk_bytes: int | None = None):
    """Width-lowered GEMM convolution: NHWC ``x`` (N, H, W, C), HWIO ``kernel`` (kh, kw, C/G, O).

    Args:
      x: images ``(N, H, W, C)``.
      kernel: filters ``(kh, kw, C // groups, O)``, same dtype as ``x``.
      config: stride, zero padding, dilation, groups, precision.
      chunk_bytes: chunk size in bytes for this call (default :data:`CHUNK_BYTES`).

    Returns:
      ``(N, H_out, W_out, O)`` in ``x``'s dtype (bfloat16 / float16 accumulate in float32).
    """
    dtype = x.dtype
    n, h, w, _ = x.shape
    kh, kw, _, o = kernel.shape
    ho, wo = config.output_hw((h, w), (kh, kw))
    if n == 0 or ho <= 0 or wo <= 0:
        return jnp.zeros((n, max(ho, 0), max(wo, 0), o), dtype)
    (sh, _), (eh, _) = config.stride, config.effective_kernel((kh, kw))
    nb, rows = plan_chunks(x.shape, kernel.shape, config, chunk_bytes)
    acc = accumulation_dtype(dtype)
    groups, blocks = math.ceil(n / nb), math.ceil(ho / rows)
    whole = n * ho * _row_bytes(x.shape, kernel.shape, config)

    def pad(a):
        return jnp.pad(a, ((0, 0), *config.padding, (0, 0)))

    if groups * blocks == 1 or (groups * blocks <= MAX_UNROLLED
                                and whole <= UNROLLED_BYTES):  # exact chunks, unrolled
        xp = pad(x)
        parts = []
        for b in range(0, n, nb):
            row_parts = []
            for p0 in range(0, ho, rows):
                r = min(rows, ho - p0)
                slab = xp[b:b + nb, p0 * sh:p0 * sh + (r - 1) * sh + eh]
                row_parts.append(_rows(slab, kernel, config, r, wo, acc))
            parts.append(jnp.concatenate(row_parts, axis=1) if blocks > 1 else row_parts[0])
        y = jnp.concatenate(parts, axis=0) if groups > 1 else parts[0]
        return y.astype(dtype)

    if blocks == 1:  # whole images: each chunk padded inside the loop
        return over_images(lambda xs: _rows(pad(xs), kernel, config, ho, wo, acc), x,
                           nb).astype(dtype)

    # A loop over equal row blocks of equal image groups: the input padded to whole ones.
    span = (rows - 1) * sh + eh  # input rows under one block of output rows
    need = (blocks * rows - 1) * sh + eh
    xp = pad(x)
    xp = jnp.pad(xp, ((0, groups * nb - n), (0, max(0, need - xp.shape[1])), (0, 0), (0, 0)))

    def chunk(i):  # image group i // blocks, row block i % blocks
        start = (i // blocks * nb, i % blocks * rows * sh, 0, 0)
        return _rows(lax.dynamic_slice(xp, start, (nb, span, *xp.shape[2:])), kernel, config,
                     rows, wo, acc)

    # checkpoint: the backward pass rebuilds each chunk's P instead of storing all of them
    y = lax.map(jax.checkpoint(chunk), jnp.arange(groups * blocks))  # (chunks, nb, rows, wo, O)
    y = y.reshape(groups, blocks, nb, rows, wo, o).transpose(0, 2, 1, 3, 4, 5)
    return y.reshape(groups * nb, blocks * rows, wo, o)[:n, :ho].astype(dtype)


MEC = register(
    Algorithm(
        name="mec",
        fn=conv_mec,
        serves=(
            "any 2-D problem; dense layers with many channels (the input lowered along the "
            "width only, one GEMM onto every kernel row, the rows added), incl. strided, "
            "dilated and grouped"
        ),
        check=check,
        cost_terms=mec_cost_terms,
    )
)
