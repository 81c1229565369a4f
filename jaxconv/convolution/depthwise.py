"""``algorithm="depthwise"``: depthwise convolution as a fused shift-multiply-add over the taps.

A depthwise convolution (``groups == C``, kernel HWIO ``(kh, kw, 1, C * m)`` for a channel
multiplier ``m``) has no contraction over channels: every output channel is one input channel
correlated with one ``kh x kw`` filter. So it is written without any convolution emitter: pad
``x`` once, then for every tap ``(i, j)`` take the strided slice of the padded input under that
tap and multiply it by the tap's ``C``-vector of weights, and sum the ``kh * kw`` products
(strided layers padded at the end only read the taps from ``x`` itself: :func:`reads_unpadded`),

    y[n, p, q, c] = sum_{i, j} xp[n, p * sh + i * dh, q * sw + j * dw, c] * k[i, j, c]

vectorized over the channels (the minor NHWC axis). XLA fuses the slices, products and sum into
one loop over the output: on XLA:CPU this was measured 10-25x faster than XLA's own grouped
convolution (``direct``) on 3x3 and 5x5 layers, on par with PyTorch's depthwise kernel.

A channel multiplier ``m > 1`` repeats every input channel ``m`` times first (output channel
``c * m + j`` reads input channel ``c``, as in ``lax.conv_general_dilated``), inside the same
fusion, so the tap loop always runs over ``O`` channels.

Gradients: :func:`depthwise_core` is a ``jax.custom_jvp`` whose tangent is the sum of the two
bilinear halves, ``conv(dx, k) + conv(x, dk)``. Reverse mode transposes that tangent map, so each
half is written as ``jax.linear_transpose`` of the backward function we want to run:

* input gradient (:func:`_input_gradient`): the output gradient dilated by the stride and
  padded, correlated with the flipped kernel -- the same gather-form shift-multiply-add as the
  forward pass. Autodiff's transpose of the forward (a sum of ``kh * kw`` tap-wise zero pads,
  the scatter form) was measured ~10x slower on XLA:CPU at 5x5 (every output element pays a
  bounds check per tap) but ~1.5x faster at 3x3, so it is kept up to
  :data:`SCATTER_MAX_TAPS` taps.
* kernel gradient (:func:`_kernel_gradient`): ``kh * kw`` channel-wise sums ``x_tap * g`` over
  ``N, H_out, W_out``, folded by explicit adds inside one loop fusion before a small reduction.
  Autodiff's form (one reduction per tap) was measured 1.3-9x slower on XLA:CPU, as every tap
  was materialized before the reductions ran.

Forward mode evaluates the transposed forms (correct, not tuned). Everything is plain
``lax`` / ``jnp``, so ``vmap`` and every higher order work as for any ``custom_jvp``.

Fusion boundary: the tap sums (forward and input gradient) run as the taken branch of a
``lax.cond`` (:func:`unfused`). Without it, when a reduction consumes the result in the same
jitted function (a max-pool, a sum, batch statistics), XLA:CPU fuses the tap sum into that
reduction and materializes every tap instead: LeNet's first layer followed by ReLU and a 2x2
max-pool took 28 ms instead of 1 + 0.3, MobileNetV2's 8x56x56x144 layer 35 ms instead of 2.5
(``lax.optimization_barrier`` does not stop it on CPU; a conditional's branches are fused on
their own).

Large strided layers run as a loop over chunks of images (:func:`batch_chunk`, through
``_batching``, which says why): XLA:CPU materializes a strided layer's padded input. As a loop
the temporaries stay about one chunk: forward 1.3-3.3x and forward + backward 1.5-2.7x faster
on 8-64 images of 32x32 to 112x112 with 96-368 channels (the table in
``docs/algorithms.md``). Stride-1 layers, whose padding XLA fuses into the tap loop, ran
1.1-2.6x slower as a loop and stay whole.

bfloat16 / float16 are computed (and accumulated over the taps) in float32 and rounded once.
There is no ``dot``, so ``config.precision`` has nothing to act on.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from .._args import accumulation_dtype
from ._batching import MMAP_THRESHOLD, over_images
from ._registry import Algorithm, ConvConfig, not_2d_reason, register
from .direct import zero_result


def check(x_shape, kernel_shape, dtype, config: ConvConfig) -> str | None:
    """Why depthwise cannot serve these arguments, or ``None`` when it can."""
    del dtype
    reason = not_2d_reason("depthwise", x_shape)
    if reason:
        return reason
    c = x_shape[3]
    if config.groups != c:
        return f"depthwise needs groups == C (x has C={c}, groups={config.groups})"
    return None


def tap(xp, i: int, j: int, out_hw, config: ConvConfig):
    """The strided slice of padded ``xp`` under kernel tap ``(i, j)``: ``(N, H_out, W_out, C)``."""
    (ho, wo), (sh, sw), (dh, dw) = out_hw, config.stride, config.dilation
    n, _, _, c = xp.shape
    return lax.slice(
        xp,
        (0, i * dh, j * dw, 0),
        (n, i * dh + (ho - 1) * sh + 1, j * dw + (wo - 1) * sw + 1, c),
        (1, sh, sw, 1),
    )


def tap_unpadded(x, i: int, j: int, out_hw, config: ConvConfig):
    """Tap ``(i, j)`` read from unpadded ``x`` when ``config``'s leading pads are zero: the
    strided slice of ``x`` under the tap, zero-padded at its end where the tap runs past ``x``.
    The tap must start inside ``x`` (one wholly past its end adds nothing: leave it out)."""
    starts, limits, pads = [0], [x.shape[0]], [(0, 0, 0)]
    for t, size, out, s, d in zip((i, j), x.shape[1:3], out_hw, config.stride, config.dilation,
                                  strict=True):
        first = t * d  # the input row (column) output 0 reads
        last = min(out - 1, (size - 1 - first) // s)  # the last output that reads inside x
        starts.append(first)
        limits.append(first + last * s + 1)
        pads.append((0, out - 1 - last, 0))
    starts.append(0)
    limits.append(x.shape[3])
    pads.append((0, 0, 0))
    strides = (1, *config.stride, 1)
    return lax.pad(lax.slice(x, starts, limits, strides), jnp.zeros((), x.dtype), pads)


def reads_unpadded(config: ConvConfig) -> bool:
    """Whether the forward pass reads its taps straight from ``x`` (:func:`tap_unpadded`)
    instead of from a zero-padded copy: strided, with padding at the end only (SAME at stride 2
    on even sizes, as in MobileNet's downsampling layers, and VALID).

    Each tap then pads only its own end, inside the tap-sum fusion; at stride 1, or with
    leading pads, the padded copy is faster (the per-tap pads' bounds checks cost more than the
    copy). Measured forward on XLA:CPU, 3x3 stride 2 with pads (0, 1): 1.8-5.8x faster than
    the padded copy (8x112x112x96: 15.4 -> 2.6 ms); with pads (1, 1), 5x5 or 7x7 at stride 2:
    0.4-1.2x, so those keep the copy.
    """
    return any(s > 1 for s in config.stride) and all(lo == 0 for lo, _ in config.padding)


def tap_reader(x, kernel_hw, config: ConvConfig, unpadded: bool):
    """``(source, read, taps)`` for tap sums over ``x``: what they read from (``x`` itself, or
    its zero-padded copy), ``read(source, i, j, out_hw, config)`` giving tap ``(i, j)``, and the
    taps that add anything (``unpadded``: see :func:`reads_unpadded`; a tap wholly past the
    input's end is left out)."""
    kh, kw = kernel_hw
    if not unpadded:
        return pad_input(x, config), tap, [(i, j) for i in range(kh) for j in range(kw)]
    (dh, dw), (h, w) = config.dilation, x.shape[1:3]
    return x, tap_unpadded, [(i, j) for i in range(kh) for j in range(kw)
                             if i * dh < h and j * dw < w]


def pad_input(x, config: ConvConfig):
    (top, bottom), (left, right) = config.padding
    return jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


def output_hw(x_shape, kernel_hw, config: ConvConfig):
    return config.output_hw(tuple(x_shape[1:3]), tuple(kernel_hw))


#: Most taps summed in one loop fusion. XLA:CPU's fused loop slows ~5x per tap from 256 taps
#: on (a 16x16 kernel: 0.45 ns per tap against 0.1 at 15x15, on 1x320x400x1), so larger kernels
#: are summed in chunks of this many taps, each its own fusion, and the partial sums added.
MAX_FUSED_TAPS = 64


def _shift_multiply_add(x, k, config: ConvConfig, unpadded: bool = False):
    """``sum_{i, j} tap(x, i, j) * k[i, j]``: ``x`` (N, H, W, C), ``k`` (kh, kw, C).

    ``unpadded``: read the taps from ``x`` itself (:func:`reads_unpadded` says when that pays;
    only valid when the leading pads are zero)."""
    kh, kw, c = k.shape
    out_hw = output_hw(x.shape, (kh, kw), config)
    xp, read, taps = tap_reader(x, (kh, kw), config, unpadded)

    def tap_sum(xp, k, chunk):
        # Keep these operators: written with lax.mul / broadcast_in_dim (same arithmetic, the
        # fusion's operands in another order), XLA:CPU ran the training 3x slower.
        y = None
        for i, j in chunk:
            term = read(xp, i, j, out_hw, config) * k[i, j].reshape(1, 1, 1, c)
            y = term if y is None else y + term
        return y

    if len(taps) <= MAX_FUSED_TAPS:
        return tap_sum(xp, k, taps)
    y = None
    for start in range(0, len(taps), MAX_FUSED_TAPS):
        chunk = taps[start:start + MAX_FUSED_TAPS]
        part = unfused(lambda xp, k, chunk=chunk: tap_sum(xp, k, chunk), xp, k)
        y = part if y is None else y + part
    return y


def _input_gradient(g, k, x_hw, config: ConvConfig):
    """``dx`` for output gradient ``g`` (N, H_out, W_out, C): gather form, no scatter.

    Input row ``h`` receives ``g[p] * k[i]`` wherever ``h + top == p * sh + i * dh``. Dilating
    ``g`` by the stride (``sh - 1`` zeros between rows) and padding it by ``(kh - 1) * dh - top``
    on top makes that a stride-1 correlation with the flipped kernel, output ``H`` rows: the
    same shift-multiply-add as the forward pass. (The pads may be negative: a crop.)
    """
    kh, kw, _ = k.shape
    pads = [(0, 0, 0)]
    for size, (lo, _), s, d, kk, out in zip(x_hw, config.padding, config.stride, config.dilation,
                                            (kh, kw), g.shape[1:3], strict=True):
        low = (kk - 1) * d - lo
        pads.append((low, size + lo - (out - 1) * s - 1, s - 1))
    pads.append((0, 0, 0))
    gp = lax.pad(g, jnp.zeros((), g.dtype), pads)
    flipped = ConvConfig(dilation=config.dilation)
    return _shift_multiply_add(gp, k[::-1, ::-1], flipped)


#: Up to this many taps the input gradient is autodiff's scatter form (tap-wise zero pads of
#: ``g * k[i, j]``, fused into one loop): at 3x3 it was measured ~1.5x faster on XLA:CPU than
#: the gather form, which first materializes the dilated, padded ``g``. At 5x5 the scatter form
#: was ~10x slower (a bounds check per tap per element), so larger kernels gather.
SCATTER_MAX_TAPS = 9

#: Most output rows summed by explicit adds inside the kernel-gradient fusion (see below).
MAX_FOLD = 16


def _fold(rows: int) -> tuple[int, int]:
    """``(F, padded_rows)``: ``F`` row blocks of ``padded_rows / F`` rows each.

    The largest divisor of ``rows`` up to :data:`MAX_FOLD` when it is at least half of that;
    otherwise (e.g. a prime number of rows) ``min(rows, MAX_FOLD)`` blocks, the rows padded with
    zeros to a multiple, so the folded product stays ``~1 / MAX_FOLD`` of the full one.
    """
    limit = min(rows, MAX_FOLD)
    f = max(d for d in range(1, limit + 1) if rows % d == 0)
    if 2 * f >= limit:
        return f, rows
    return limit, -(-rows // limit) * limit


def _row_blocks(a, f: int, padded_rows: int):
    """``(N, H', W', C)`` -> ``(F, padded_rows / F, W', C)``, zero rows appended as needed."""
    n, h, w, c = a.shape
    a = a.reshape(n * h, w, c)
    if padded_rows > n * h:
        a = jnp.pad(a, ((0, padded_rows - n * h), (0, 0), (0, 0)))
    return a.reshape(f, padded_rows // f, w, c)


def _kernel_gradient(x, g, kernel_hw, config: ConvConfig):
    """``dk[i, j, c] = sum_{n, p, q} tap(x, i, j)[n, p, q, c] * g[n, p, q, c]`` -> (kh, kw, C).

    The ``N * H_out`` rows of every tap's product are first folded ``F`` times by explicit adds
    of contiguous row blocks, all taps stacked on an axis next to the channels: one loop fusion
    that reads ``x`` and ``g`` about once, while they are in cache, and writes ``kh * kw / F``
    times the size of ``g``. Only that goes through a reduction. Summing each tap's full product
    with its own reduction was measured 1.3-9x slower on XLA:CPU: the taps were all materialized
    before the reductions ran. The fold must stay explicit adds: a ``jnp.sum`` over each tap's
    ``F`` blocks traces ~10x faster but is such a reduction again (the training of an
    8x32x32x96 layer ran 7x slower; ``tests/test_fast_algorithms.py`` checks the buffers).
    """
    kh, kw = kernel_hw
    n, ho, wo, c = g.shape
    xp = pad_input(x, config)
    f, padded = _fold(n * ho)
    if n == 1 and padded > ho:
        # One image: run the taps past its bottom on zero rows of x and g instead of padding
        # every tap's product (a pad per tap split the fusion: measured 13 ms against 0.5 on
        # 1x320x400x1 -> 8, 3x3 VALID).
        extra = padded - ho
        xp = jnp.pad(xp, ((0, 0), (0, extra * config.stride[0]), (0, 0), (0, 0)))
        g = jnp.pad(g, ((0, 0), (0, extra), (0, 0), (0, 0)))
        ho = padded
    # lax's index_in_dim, mul and add: the same program as indexing and operators, traced ~2x
    # faster (a few hundred of them per layer, transposed again in the custom JVP).
    gr = _row_blocks(g, f, padded)
    gs = [lax.index_in_dim(gr, b, 0, keepdims=False) for b in range(f)]
    parts = []
    for i in range(kh):
        for j in range(kw):
            prod = _row_blocks(tap(xp, i, j, (ho, wo), config), f, padded)
            acc = lax.mul(lax.index_in_dim(prod, 0, 0, keepdims=False), gs[0])
            for b in range(1, f):
                acc = lax.add(acc, lax.mul(lax.index_in_dim(prod, b, 0, keepdims=False), gs[b]))
            parts.append(acc)
    stacked = jnp.stack(parts, axis=2)  # (padded_rows / F, W_out, kh * kw, C)
    return jnp.sum(stacked, axis=(0, 1)).reshape(kh, kw, c)


def _repeat(x, m: int):
    """Each channel ``m`` times: output channel ``c * m + j`` reads input channel ``c`` (as in
    ``lax.conv_general_dilated``)."""
    return x if m == 1 else jnp.repeat(x, m, axis=3)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def depthwise_core(x, k, config: ConvConfig, m: int = 1):
    """Depthwise correlation with channel multiplier ``m``: ``x`` (N, H, W, C), ``k``
    (kh, kw, C * m)."""
    unpadded = reads_unpadded(config)
    return unfused(lambda x, k: _shift_multiply_add(_repeat(x, m), k, config, unpadded), x, k)


@depthwise_core.defjvp
def _depthwise_core_jvp(config, m, primals, tangents):
    """``conv(dx, k) + conv(x, dk)``, each written as the transpose of the gradient we want.

    Reverse mode transposes the tangent map; transposition is an involution on the ops used
    (slice <-> pad, broadcast <-> sum, fan-out <-> add), so writing each half as
    ``jax.linear_transpose`` of :func:`_input_gradient` / :func:`_kernel_gradient` makes the
    backward pass run exactly those functions. Forward mode evaluates the transposed forms
    (correct, not tuned). Both are plain ``lax`` ops closed over the primals, so every higher
    order differentiates through them.
    """
    (x, k), (dx, dk) = primals, tangents
    y = depthwise_core(x, k, config, m)
    x, dx = _repeat(x, m), _repeat(dx, m)
    kh, kw, _ = k.shape
    g_aval = jax.ShapeDtypeStruct(y.shape, y.dtype)
    if kh * kw <= SCATTER_MAX_TAPS:  # reverse mode: autodiff's scatter form
        dy_x = unfused(lambda d, k: _shift_multiply_add(d, k, config), dx, k)
    else:  # reverse mode: the gather form
        conv_dx = jax.linear_transpose(
            lambda g: unfused(lambda g, k: _input_gradient(g, k, x.shape[1:3], config), g, k),
            g_aval)
        (dy_x,) = conv_dx(dx)
    conv_dk = jax.linear_transpose(lambda g: _kernel_gradient(x, g, (kh, kw), config), g_aval)
    (dy_k,) = conv_dk(dk)
    return y, dy_x + dy_k


def conv_depthwise(x, kernel, config: ConvConfig):
    """Depthwise convolution: NHWC ``x`` (N, H, W, C), HWIO ``kernel`` (kh, kw, 1, C * m).

    Serves ``groups == C`` with any channel multiplier ``m``, stride, dilation and zero padding.

    Returns:
      ``(N, H_out, W_out, C * m)`` in ``x``'s dtype (bfloat16 / float16 computed in float32).
    """
    if x.size == 0:  # an empty batch: no rows to fold in the kernel gradient
        return zero_result(x, kernel, config)
    dtype = x.dtype
    acc = accumulation_dtype(dtype)
    c = x.shape[3]
    kh, kw, _, o = kernel.shape
    m = o // c

    k = kernel.reshape(kh, kw, o).astype(acc)
    nb = batch_chunk(x.shape, kernel.shape, config, jnp.dtype(acc).itemsize)
    if nb >= x.shape[0]:
        return depthwise_core(x.astype(acc), k, config, m).astype(dtype)
    # The padded input of a strided layer, one chunk at a time (module docstring).
    return over_images(lambda xs: depthwise_core(xs.astype(acc), k, config, m), x,
                       nb).astype(dtype)


#: Input and output bytes above which the batch runs as a loop over chunks of images.
LOOP_BYTES = MMAP_THRESHOLD
#: Input and output bytes of one chunk of that loop.
CHUNK_BYTES = 8 * 2**20


def batch_chunk(x_shape, kernel_shape, config: ConvConfig, itemsize: int = 4) -> int:
    """Images per chunk (NHWC ``x_shape``, HWIO ``kernel_shape``): for a strided layer whose
    input and output take more than :data:`LOOP_BYTES`, as many as fit in
    :data:`CHUNK_BYTES` (at least one); else the whole batch.

    Only strided layers: XLA:CPU materializes their padded input (a 16x69x69x152 3x3/2 layer
    had 47 MiB of temporaries, faulted in on every call: 2.9x faster as a loop), while it fuses
    the padding of a stride-1 layer into the tap loop, which ran 1.1-2.6x slower as a loop."""
    n = x_shape[0]
    if all(s == 1 for s in config.stride):
        return n
    per_image = itemsize * (math.prod(x_shape[1:]) + math.prod(
        output_hw(x_shape, kernel_shape[:2], config)) * kernel_shape[-1])
    if n * per_image <= LOOP_BYTES:
        return n
    return max(1, min(n, CHUNK_BYTES // per_image))


def unfused(f, x, k):
    """``f(x, k)``, computed where XLA cannot fuse its consumers into it (see the module doc).

    ``f`` is the true branch of a ``lax.cond`` whose predicate is ``True`` behind an
    ``optimization_barrier``: XLA cannot see through the barrier, so it keeps the conditional
    (had it folded it, the result would be the same, only fused). The other branch never runs;
    it returns zeros so that it compiles to nothing. The predicate reads no argument, so it is
    never batched: under ``vmap`` a batched predicate turns the conditional into a ``select``
    whose operands pass through ``stop_gradient``, which breaks reverse mode when the operand is
    a tangent (this function runs inside the custom JVP rule).
    """
    out = jax.eval_shape(f, x, k)
    always = lax.optimization_barrier(jnp.asarray(True))
    return lax.cond(always, f, lambda x, k: jnp.zeros(out.shape, out.dtype), x, k)


#: float32 lanes of a vector register (AVX2's 8; AVX-512's 16 are priced by the fitted constant).
LANES = 8


def depthwise_cost_terms(x_shape, kernel_shape, config: ConvConfig) -> dict[str, float]:
    """Cost-model terms of ``depthwise``: vector multiply-adds over the taps, bytes in and out.

    The tap loop is vectorized over the channels (the minor axis), so a tap costs one vector
    operation per ``LANES`` channels, rounded up: 3 channels cost as much as 8 (measured per
    tap on 320x400 images: 0.1 ns at C=3 against 0.04-0.05 at C=1 or 32). With one channel the
    minor axis is degenerate and XLA vectorizes along the rows instead.
    """
    n, c = x_shape[0], x_shape[-1]
    o = kernel_shape[-1]
    out = config.output_hw(x_shape[1:-1], kernel_shape[:-2])
    padded_in = math.prod(s + lo + hi for s, (lo, hi) in zip(x_shape[1:-1], config.padding,
                                                            strict=True))
    outputs = n * math.prod(out) * o
    vectors = outputs / LANES if o == 1 else n * math.prod(out) * -(-o // LANES)
    return {"call": 1.0, "tap_vector": float(vectors * math.prod(kernel_shape[:-2])),
            "byte": 4.0 * (n * padded_in * c + outputs)}


DEPTHWISE = register(
    Algorithm(
        name="depthwise",
        fn=conv_depthwise,
        serves=(
            "depthwise convolutions (groups == C, any channel multiplier), any kernel size, "
            "stride, dilation and padding (fused shift-multiply-add over the taps, no "
            "convolution emitter)"
        ),
        check=check,
        cost_terms=depthwise_cost_terms,
    )
)
