"""``algorithm="fft"``: cross-correlation through real FFTs (the convolution theorem).

The padded NHWC input is transformed with a real 2-D FFT (``rfft2``) of fast length
``L >= H_padded`` per spatial axis. Because only the *valid* outputs are kept, ``L`` need not
reach ``H + kh - 1``: every kept output reads only input rows ``< H_padded <= L``, so the circular
wrap-around never reaches them (overlap-save with a single block). The kernel's spectrum is
computed directly by two small DFT matrix products (its support is only ``kh x kw``, so this costs
``O(L * kh)`` per column instead of a full FFT), with the conjugate sign for cross-correlation and
the dilation folded into the DFT phases (no zero-dilated kernel is ever built). Channels are mixed
by one contraction per frequency:

* many channels: a batched real GEMM ``(F, N, 2 C) @ (F, 2 C, 2 O)`` over the ``F`` frequencies,
  the complex product written in real block form ``[Xr, Xi] @ [[Kr, Ki], [-Ki, Kr]]`` (XLA's
  CPU complex batched dot is ~3x slower than the real one of twice the size);
* few channels (``C/groups * O/groups <= 16``, e.g. RGB): a fused broadcast-multiply-sum with the
  frequencies on the minor axis, which needs no transposes and vectorizes over frequencies.

For images much larger than the kernel the input is cut into overlap-save blocks
(:func:`choose_tiles`: about ``4 * k_eff``, at least 24 (GEMM) / 64 (elementwise)), batched into
one such correlation: the kernel spectrum shrinks to the block size and the GEMMs get more rows
(measured 2-3x faster than one whole-image FFT for the layer case with k <= 11).

The inverse ``irfft2`` is cropped to the valid region; ``stride > 1`` keeps every ``s``-th output
of the stride-1 result (the transforms cost the same as stride 1: for large strides ``direct`` or
``im2col`` are cheaper), dilation is exact (phases ``exp(2 pi i u a d / L)``), ``groups`` become a
batch axis of the contraction (depthwise included) and any zero padding pads the input.
``bfloat16`` / ``float16`` inputs are computed in ``float32`` and cast back.

Precision: for ``y = x * k`` computed in a floating type with unit roundoff ``eps``, each output
carries an absolute error of about ``c * eps * log2(Lh * Lw) * max|y|`` (plus the same order times
``||x|| ||k||`` for outputs that cancel), *not* relative to ``|y_i|``: small outputs next to large
ones lose relative accuracy. In float32 with ``L`` up to 1024 this is ``< 1e-5 * max|y|`` in
practice; the tests compare against ``max|y|`` accordingly (``tests/tolerances.py``).

References:
  Mathieu, Henaff, LeCun, "Fast Training of Convolutional Networks through FFTs", ICLR 2014.
  Vasilache et al., "Fast Convolutional Nets With fbfft: A GPU Performance Evaluation", ICLR 2015.
"""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from .._args import accumulation_dtype
from ._registry import Algorithm, ConvConfig, Shape, register

# Radices XLA's CPU FFT (ducc) handles natively and fast.
FAST_RADICES = (2, 3, 5, 7)
# Per-group ``Cg * Og`` at or below which the contraction is a fused elementwise multiply-sum.
ELEMENTWISE_MAX_CO = 16


def next_fast_len(n: int, radices: tuple[int, ...] = FAST_RADICES) -> int:
    """Smallest ``m >= n`` whose prime factors are all in ``radices`` (default 2, 3, 5, 7).

    Examples:
      >>> next_fast_len(321), next_fast_len(64), next_fast_len(97)
      (324, 64, 98)
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"next_fast_len: n must be >= 1, got {n}")
    if not radices or min(radices) < 2:
        raise ValueError(f"next_fast_len: radices must be integers >= 2, got {radices!r}")
    best = math.inf
    stack = [1]
    seen = {1}
    while stack:  # DFS over smooth numbers; none above n * max(radices) is ever expanded
        m = stack.pop()
        if m >= n:
            best = min(best, m)
            continue
        for r in radices:
            q = m * r
            if q < best and q not in seen:
                seen.add(q)
                stack.append(q)
    return int(best)


def fft_lengths(x_shape, kernel_shape, config: ConvConfig) -> tuple[int, int]:
    """Fast FFT lengths ``(Lh, Lw)`` for NHWC ``x_shape`` (padded by ``config.padding``)."""
    _, h, w, _ = x_shape
    (pt, pb), (pl, pr) = config.padding
    return next_fast_len(h + pt + pb), next_fast_len(w + pl + pr)


def fft_cost_terms(x_shape, kernel_shape, config: ConvConfig) -> dict:
    """Sizes and flop estimates of ``algorithm="fft"`` for NHWC ``x_shape``, HWIO ``kernel_shape``.

    For the ``auto`` cost model. Flops follow the usual ``2.5 * n * log2(n)`` real flops for a
    real FFT of ``n`` points; the contraction counts real multiply-adds x 2 of the block GEMM.

    Returns:
      a dict with
        ``lengths``: ``(Lh, Lw)`` FFT lengths; ``freqs``: ``F = Lh * (Lw // 2 + 1)``;
        ``n_forward``, ``n_inverse``: how many 2-D real transforms of ``Lh x Lw`` (``N * C``
        and ``N * O``); ``fft_flops``: their total; ``kernel_flops``: the kernel's DFT by
        matrix products (``C/g * O`` filters); ``contraction_flops``: ``8 * F * N * C * O / g``;
        ``path``: ``"gemm"`` or ``"elementwise"`` (how the channels are mixed);
        ``total_flops``: the sum; ``bytes``: the complex spectra's size (input + output +
        kernel) in bytes at 8 bytes per complex64.
    """
    n, _, _, c = (int(d) for d in x_shape)
    kh, kw, cg, o = (int(d) for d in kernel_shape)
    g = config.groups
    lh, lw = fft_lengths(x_shape, kernel_shape, config)
    wf = lw // 2 + 1
    f = lh * wf
    per_fft = 2.5 * lh * lw * math.log2(max(lh * lw, 2))
    n_fwd, n_inv = n * c, n * o
    fft_flops = per_fft * (n_fwd + n_inv)
    kernel_flops = 2.0 * cg * o * (kh * kw * wf * 2 + lh * kh * wf * 4)
    contraction = 8.0 * f * n * cg * o
    og = o // g
    path = "elementwise" if cg * og <= ELEMENTWISE_MAX_CO else "gemm"
    return {
        "lengths": (lh, lw),
        "freqs": f,
        "n_forward": n_fwd,
        "n_inverse": n_inv,
        "fft_flops": fft_flops,
        "kernel_flops": kernel_flops,
        "contraction_flops": contraction,
        "path": path,
        "total_flops": fft_flops + kernel_flops + contraction,
        "bytes": 8 * f * (n * c + n * o + cg * o),
    }


@functools.lru_cache(maxsize=256)
def _h_dft_matrix(lh: int, kh: int, dilation: int) -> np.ndarray:
    """``[[C, S], [S, -C]]``, shape ``(2 Lh, 2 kh)``: conj of the DFT along H, in real form.

    ``C[u, a] = cos(2 pi u a d / Lh)`` and ``S`` the sine. Applied to ``[Tr; Ti]`` (the kernel
    rows after the W transform) it gives ``[Re; Im]`` of ``conj(DFT_H(T))``.
    """
    u = np.arange(lh)[:, None]
    a = np.arange(kh)[None, :] * dilation
    theta = 2.0 * np.pi * ((u * a) % lh) / lh  # reduce u * a mod Lh in integers: exact phases
    c, s = np.cos(theta), np.sin(theta)
    return np.block([[c, s], [s, -c]])


def _kernel_spectrum(kernel, lh: int, lw: int, dilation):
    """``conj(rfft2(k))`` of the zero-padded, dilated HWIO ``kernel``, as real and imaginary parts.

    Returns ``(2, Lh, Lw // 2 + 1, Cg, O)`` (``[Re; Im]``, frequency-major, HWIO order). The
    conjugate turns the product with the input's spectrum into a cross-correlation. Only the
    ``kh`` nonzero rows are transformed along W (an ``rfft``); along H a ``(2 Lh, 2 kh)`` DFT
    matrix product (``O(Lh kh)`` per column) lands the result in the layout the contraction
    reads, with no transpose of the large spectrum. Dilation along H is in the DFT phases,
    along W zeros are inserted into the (small) kernel.
    """
    kh, _, cg, o = kernel.shape
    dh, dw = dilation
    if dw > 1:
        zero = jnp.zeros((), kernel.dtype)
        kernel = lax.pad(kernel, zero, ((0, 0, 0), (0, 0, dw - 1), (0, 0, 0), (0, 0, 0)))
    t = jnp.fft.rfft(jnp.transpose(kernel, (0, 2, 3, 1)), n=lw)  # (kh, Cg, O, Wf)
    t = jnp.transpose(t, (0, 3, 1, 2))  # (kh, Wf, Cg, O)
    t = jnp.concatenate([jnp.real(t), jnp.imag(t)], axis=0)  # (2 kh, Wf, Cg, O)
    m = jnp.asarray(_h_dft_matrix(lh, kh, dh), t.dtype)
    # HIGHEST: on TPU/GPU the default would round this exact transform to bfloat16/tf32.
    k = jnp.tensordot(m, t, axes=1, precision=lax.Precision.HIGHEST)
    return k.reshape(2, lh, lw // 2 + 1, cg, o)


def _correlate_valid(x, kernel, dilation, groups: int, precision, lengths):
    """Stride-1 VALID cross-correlation of padded NHWC ``x`` by FFTs of ``lengths >= (H, W)``.

    ``x``: ``(N, H, W, C)``, ``kernel``: HWIO; returns NHWC ``(N, H - kh_eff + 1, W - kw_eff + 1,
    O)`` in ``x``'s (float32 or float64) dtype.
    """
    n, h, w, _ = x.shape
    kh, kw, cg, o = kernel.shape
    g = groups
    og = o // g
    lh, lw = lengths
    wf = lw // 2 + 1
    f = lh * wf
    (ekh, ekw) = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    ho, wo = h - ekh + 1, w - ekw + 1

    # NHWC -> NCHW so the FFT axes are minor (XLA's CPU FFT transposes otherwise, ~2x slower).
    xf = jnp.fft.rfft2(jnp.transpose(x, (0, 3, 1, 2)), s=(lh, lw))  # (N, C, Lh, Wf)
    kc = _kernel_spectrum(kernel, lh, lw, dilation)  # (2, Lh, Wf, Cg, O): conj spectrum

    if cg * og <= ELEMENTWISE_MAX_CO:
        # Frequencies minor: X (N, G, Cg, 1, Lh, Wf) * K (1, G, Cg, Og, Lh, Wf), summed over Cg.
        kg = lax.complex(kc[0], kc[1]).reshape(lh, wf, cg, g, og)
        kg = jnp.transpose(kg, (3, 2, 4, 0, 1))[None]
        yf = jnp.sum(xf.reshape(n, g, cg, 1, lh, wf) * kg, axis=2).reshape(n, o, lh, wf)
    else:
        # Frequencies major: batched real GEMMs per (frequency, group), the complex product as
        # [Yr; Yi] = [Xr; Xi] @ Kr + [-Xi; Xr] @ Ki. Only the images' spectra (the small
        # operand) are duplicated; the kernel's spectrum is read in place, once.
        xg = jnp.transpose(xf.reshape(n, g, cg, f), (3, 1, 0, 2))  # (F, G, N, Cg)
        xr, xi = jnp.real(xg), jnp.imag(xg)
        kg = kc.reshape(2, f, cg, g, og)
        if g > 1:
            kg = jnp.transpose(kg, (0, 1, 3, 2, 4))
        kg = kg.reshape(2, f, g, cg, og)  # (2, F, G, Cg, Og)
        dims = (((3,), (2,)), ((0, 1), (0, 1)))
        yb = lax.dot_general(
            jnp.concatenate([xr, xi], axis=2), kg[0], dims, precision=precision
        ) + lax.dot_general(jnp.concatenate([-xi, xr], axis=2), kg[1], dims, precision=precision)
        yc = lax.complex(yb[:, :, :n], yb[:, :, n:])  # (F, G, N, Og)
        yf = jnp.transpose(yc, (2, 1, 3, 0)).reshape(n, o, lh, wf)

    y = jnp.fft.irfft2(yf, s=(lh, lw))[:, :, :ho, :wo]  # (N, O, ho, wo)
    return jnp.transpose(y, (0, 2, 3, 1))


# Overlap-save block sizes tried: 2^a and 3 * 2^a (the fastest FFT lengths).
_TILES = tuple(sorted({b << a for a in range(3, 12) for b in (2, 3)}))
# Smallest block per contraction path (measured on a 2-core CPU: smaller blocks lose to the
# per-block overhead; larger ones to the kernel spectrum's size and the FFT's log factor).
_MIN_TILE = {"gemm": 24, "elementwise": 64}


def choose_tiles(x_shape, kernel_shape, config: ConvConfig):
    """Overlap-save block size ``(Th, Tw)`` for padded NHWC ``x_shape``, or ``None`` (one FFT).

    Per axis, the smallest of ``2^a, 3 * 2^a`` that is ``>= max(min_tile, 4 * k_eff)``: blocks
    four times the kernel waste at most ~(4/3)^2 of the input to the overlap, while making the
    kernel's spectrum (``Th x Tw`` per filter) and the per-block transforms small. ``None`` when
    such a block would not be smaller than the single FFT.
    """
    _, h, w, _ = x_shape
    kh, kw, cg, o = kernel_shape
    og = o // config.groups
    path = "elementwise" if cg * og <= ELEMENTWISE_MAX_CO else "gemm"
    (pt, pb), (pl, pr) = config.padding
    tiles = []
    for size, e in zip((h + pt + pb, w + pl + pr), config.effective_kernel((kh, kw)), strict=True):
        want = max(_MIN_TILE[path], 4 * e)
        t = next((t for t in _TILES if t >= want), None)
        tiles.append(t if t is not None and t < next_fast_len(size) else None)
    if tiles[0] is None and tiles[1] is None:
        return None
    return tuple(t if t is not None else next_fast_len(s) for t, s in
                 zip(tiles, (h + pt + pb, w + pl + pr), strict=True))


def _overlap_save(x, kernel, dilation, groups: int, precision, tiles):
    """Stride-1 VALID cross-correlation of padded NHWC ``x`` in ``tiles = (Th, Tw)`` blocks.

    Overlap-save: blocks of ``Th x Tw`` input pixels overlapping by ``k_eff - 1`` each give
    ``(Th - kh_eff + 1) x (Tw - kw_eff + 1)`` valid outputs; the blocks are batched into one FFT
    correlation with transforms of length ``(Th, Tw)`` (the kernel's spectrum shrinks to
    ``Th x Tw`` too, and the per-frequency GEMM gets ``N * blocks`` rows).
    """
    n, h, w, c = x.shape
    kh, kw, _, o = kernel.shape
    eff = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    full = (h - eff[0] + 1, w - eff[1] + 1)
    steps = tuple(t - e + 1 for t, e in zip(tiles, eff, strict=True))
    counts = tuple(-(-m // st) for m, st in zip(full, steps, strict=True))
    need = tuple(nt * st + e - 1 for nt, st, e in zip(counts, steps, eff, strict=True))
    x = lax.pad(
        x, jnp.zeros((), x.dtype), ((0, 0, 0), (0, need[0] - h, 0), (0, need[1] - w, 0), (0, 0, 0))
    )
    ih = (np.arange(counts[0]) * steps[0])[:, None] + np.arange(tiles[0])[None, :]
    iw = (np.arange(counts[1]) * steps[1])[:, None] + np.arange(tiles[1])[None, :]
    xt = x[:, ih][:, :, :, iw]  # (N, nh, Th, nw, Tw, C)
    xt = jnp.transpose(xt, (0, 1, 3, 2, 4, 5)).reshape(-1, tiles[0], tiles[1], c)
    y = _correlate_valid(xt, kernel, dilation, groups, precision, tiles)
    y = y.reshape(n, counts[0], counts[1], steps[0], steps[1], o)
    y = jnp.transpose(y, (0, 1, 3, 2, 4, 5)).reshape(n, counts[0] * steps[0], -1, o)
    return y[:, : full[0], : full[1]]


def conv_fft(x, kernel, config: ConvConfig, *, tiles="auto"):
    """FFT cross-correlation: NHWC ``x`` (N, H, W, C), HWIO ``kernel`` -> NHWC (N, H', W', O).

    ``H' = floor((H + pad - ((kh - 1) * dh + 1)) / sh) + 1`` (same for W), as ``direct``.
    The result has ``x``'s dtype; half-precision inputs are computed in float32.
    ``tiles``: ``"auto"`` (:func:`choose_tiles`), ``None`` (one FFT of the whole padded image)
    or ``(Th, Tw)`` overlap-save blocks (each must exceed the effective kernel).
    """
    out_dtype = x.dtype
    cdt = accumulation_dtype(x.dtype)
    x = x.astype(cdt)
    kernel = kernel.astype(cdt)
    n, h, w, c = x.shape
    kh, kw = kernel.shape[:2]
    # A transform mixes every input into every output: one NaN or Inf would poison them all.
    # Non-finite inputs are zeroed here and their outputs marked NaN afterwards (_nonfinite_mask).
    # Both operands are scaled by powers of two (exact) so that finite inputs near the top of the
    # float range do not overflow inside the transforms; the scales are constants to autodiff.
    finite = jnp.isfinite(x)
    all_finite = jnp.all(finite)
    x = jnp.where(finite, x, jnp.zeros((), cdt))
    sx = _pow2_scale(lax.stop_gradient(jnp.max(jnp.abs(x))))
    sk = _pow2_scale(lax.stop_gradient(jnp.max(jnp.abs(kernel))))
    x, kernel = x / sx, kernel / sk
    (pt, pb), (pl, pr) = config.padding
    if any(config.padding[0]) or any(config.padding[1]):
        x = lax.pad(x, jnp.zeros((), cdt), ((0, 0, 0), (pt, pb, 0), (pl, pr, 0), (0, 0, 0)))
    args = (x, kernel, config.dilation, config.groups, config.precision)
    if tiles == "auto":
        tiles = choose_tiles((n, h, w, c), kernel.shape, config)
    if tiles is None:
        y = _correlate_valid(*args, (next_fast_len(x.shape[1]), next_fast_len(x.shape[2])))
    else:
        y = _overlap_save(*args, tuple(tiles))
    sh, sw = config.stride
    if sh > 1 or sw > 1:
        ho, wo = config.output_hw((h, w), (kh, kw))
        y = y[:, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw]
    y = (y * sx) * sk
    # lax.cond: the mask's window reductions run only when there is something to mark.
    y = lax.cond(
        all_finite, lambda y: y,
        lambda y: jnp.where(_nonfinite_mask(finite, kernel.shape, config), jnp.nan, y), y,
    )
    return y.astype(out_dtype)


def _pow2_scale(m):
    """The power of two at or above ``m >= 0`` (1 for zero or non-finite ``m``)."""
    ok = jnp.isfinite(m) & (m > 0)
    return jnp.where(ok, jnp.exp2(jnp.ceil(jnp.log2(jnp.where(ok, m, 1)))), 1).astype(m.dtype)


def _nonfinite_mask(finite, kernel_shape, config: ConvConfig):
    """Outputs ``(N, H', W', O)`` whose receptive field holds a non-finite input of their group.

    A separable max over the (dilated, strided) kernel window of the per-group "not finite"
    indicator: ``kh + kw`` operations per pixel and group, no transform.
    """
    n, h, w, c = finite.shape
    kh, kw, _, o = kernel_shape
    g = config.groups
    bad = jnp.any(~finite.reshape(n, h, w, g, c // g), axis=-1).astype(jnp.float32)
    (pt, pb), (pl, pr) = config.padding
    (sh, sw), (dh, dw) = config.stride, config.dilation
    zero = jnp.zeros((), jnp.float32)
    bad = lax.reduce_window(bad, zero, lax.max, (1, kh, 1, 1), (1, sh, 1, 1), ((0, 0), (pt, pb), (0, 0), (0, 0)),
                            window_dilation=(1, dh, 1, 1))
    bad = lax.reduce_window(bad, zero, lax.max, (1, 1, kw, 1), (1, 1, sw, 1), ((0, 0), (0, 0), (pl, pr), (0, 0)),
                            window_dilation=(1, 1, dw, 1))
    return jnp.repeat(bad > 0, o // g, axis=-1)


def fft_model_terms(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> dict[str, float]:
    """Cost-model terms of ``fft``, counted from the plan :func:`conv_fft` runs (fast lengths,
    overlap-save blocks)."""
    n, h, w, c = x_shape
    kh, kw, cg, o = kernel_shape
    (pt, pb), (pl, pr) = config.padding
    hp, wp = h + pt + pb, w + pl + pr
    tiles = choose_tiles(x_shape, kernel_shape, config)
    if tiles is None:
        lh, lw = next_fast_len(hp), next_fast_len(wp)
        blocks = n
    else:
        (lh, lw), (eh, ew) = tiles, config.effective_kernel((kh, kw))
        blocks = n * -(-(hp - eh + 1) // (lh - eh + 1)) * -(-(wp - ew + 1) // (lw - ew + 1))
    freqs = lh * (lw // 2 + 1)
    per_fft = 2.5 * lh * lw * math.log2(max(lh * lw, 2))
    contraction = 8.0 * freqs * blocks * cg * o
    gemm = cg * (o // config.groups) > ELEMENTWISE_MAX_CO
    return {
        "call": 1.0,
        "fft_flop": per_fft * blocks * (c + o),
        "transform": float(blocks * (c + o)),  # per 2-D transform overhead (many small images)
        "gemm_flop": contraction if gemm else 0.0,
        # the per-frequency GEMMs have only `blocks` rows: for few rows they are bound by
        # streaming the (F, 2C, 2O) kernel spectra, i.e. by flops / rows
        "gemm_weight": contraction / blocks if gemm else 0.0,
        "ew_flop": 0.0 if gemm else contraction,
        "kernel_flop": 2.0 * cg * o * freqs * (kh + kw),
        "byte": 8.0 * freqs * (blocks * (c + o) + cg * o),
    }


FFT = register(
    Algorithm(
        name="fft",
        fn=conv_fft,
        serves=(
            "every configuration; fastest for large kernels (>= ~5-7 on big images, >= 3 with "
            "many channels); stride > 1 costs as much as stride 1"
        ),
        cost_terms=fft_model_terms,
        error="global",
        # The transform's rounding spreads over every output, |err| ~ c * eps * log2(Lh * Lw)
        # * max|y|, so a per-element rtol is meaningless (a near-zero output next to a large one
        # has no relative accuracy). eps * log2(L^2) ~ 1e-6 for float32 at image sizes; measured
        # <= 1e-6 * max|y| up to 320x400; atol leaves ~10x margin. bfloat16 / float16 are
        # computed in float32 and rounded once, so their default tolerances apply.
        tolerance={"float64": (0.0, 1e-12), "float32": (0.0, 1e-5)},
    )
)
