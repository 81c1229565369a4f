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
* few channels (either ``C/groups`` or ``O/groups`` at most 4, or their product at most 64, e.g.
  RGB; :func:`elementwise_contraction`): a fused broadcast-multiply-sum with the
  frequencies on the minor axis, which needs no transposes and vectorizes over frequencies.

For images much larger than the kernel the input is cut into overlap-save blocks
(:func:`choose_tiles`: about ``4 * k_eff``, at least 24 (GEMM) / 64 (elementwise)), batched into
one such correlation: the kernel spectrum shrinks to the block size and the GEMMs get more rows
(measured 2-3x faster than one whole-image FFT for the layer case with k <= 11).

Batches whose spectra are large run as a loop over chunks of images (:func:`batch_chunk`).

The inverse ``irfft2`` is cropped to the valid region; ``stride > 1`` keeps every ``s``-th output
of the stride-1 result (the transforms cost the same as stride 1: for large strides ``direct`` or
``im2col`` are cheaper), dilation is exact (phases ``exp(2 pi i u a d / L)``), ``groups`` become a
batch axis of the contraction (depthwise included) and any zero padding pads the input.
``bfloat16`` / ``float16`` inputs are computed in ``float32`` and cast back.

1-D and 3-D problems take a rank-generic path (:func:`_correlate_valid_nd`): ``rfftn`` over the
spatial axes, the kernel's spectrum an ``rfftn`` of the zero-dilated kernel, and overlap-save
blocks per axis when the input is long against the kernel (:func:`choose_tiles`, blocks of at
least 256 points: a 65536-sample signal with a 3-tap kernel took 0.37 ms in 256-point blocks
against 1.1 ms as one FFT; with 4097 taps, 0.93 ms in 24576-point blocks against 1.07 ms).
The non-finite mask and the power-of-two scaling below serve every rank.

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
from ._batching import MMAP_THRESHOLD, over_images
from ._registry import Algorithm, ConvConfig, Shape, register
from .direct import zero_result

# Radices XLA's CPU FFT (ducc) handles natively and fast.
FAST_RADICES = (2, 3, 5, 7)
# The contraction is a fused elementwise multiply-sum when either per-group channel count is at
# most ELEMENTWISE_MAX_SIDE or their product at most ELEMENTWISE_MAX_CO (elementwise_contraction).
ELEMENTWISE_MAX_SIDE = 4
ELEMENTWISE_MAX_CO = 64


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


def elementwise_contraction(cg: int, og: int) -> bool:
    """Whether ``fft`` mixes ``cg`` input into ``og`` output channels (per group) by a fused
    multiply-sum over the frequencies rather than by one real GEMM per frequency.

    The GEMMs contract over ``cg`` into ``og`` columns, a ``(2 N, cg) @ (cg, og)`` product per
    frequency, and pay two transposes of the spectra to put the frequencies major; when either
    side is thin the multiply-sum, which needs neither, is faster (on the 2-core CPU, RGB images
    through 4-32 filters ran 1.5-3.7x faster elementwise, 32 x 32 channels 1.5-3.3x slower;
    docs/algorithms.md has the table).

    Examples:
      >>> elementwise_contraction(3, 32), elementwise_contraction(8, 8), elementwise_contraction(16, 16)
      (True, True, False)
    """
    return min(cg, og) <= ELEMENTWISE_MAX_SIDE or cg * og <= ELEMENTWISE_MAX_CO


def fft_lengths(x_shape, kernel_shape, config: ConvConfig) -> tuple[int, ...]:
    """Fast FFT lengths (``(Lh, Lw)`` for NHWC) of channels-last ``x_shape`` padded by
    ``config.padding``, one per spatial axis."""
    return tuple(next_fast_len(s + lo + hi)
                 for s, (lo, hi) in zip(x_shape[1:-1], config.padding, strict=True))


def dft_phases(rows, cols, length: int) -> np.ndarray:
    """``2 pi (r c mod L) / L`` for every pair ``(r, c)``: DFT phases, the product reduced
    modulo ``L`` in integers so that large indices lose no accuracy (used by ``dft`` too)."""
    return 2.0 * np.pi * ((np.asarray(rows)[:, None] * np.asarray(cols)[None, :]) % length) / length


@functools.lru_cache(maxsize=256)
def _h_dft_matrix(lh: int, kh: int, dilation: int) -> np.ndarray:
    """``[[C, S], [S, -C]]``, shape ``(2 Lh, 2 kh)``: conj of the DFT along H, in real form.

    ``C[u, a] = cos(2 pi u a d / Lh)`` and ``S`` the sine. Applied to ``[Tr; Ti]`` (the kernel
    rows after the W transform) it gives ``[Re; Im]`` of ``conj(DFT_H(T))``.
    """
    theta = dft_phases(np.arange(lh), np.arange(kh) * dilation, lh)
    c, s = np.cos(theta), np.sin(theta)
    return np.block([[c, s], [s, -c]])


def _kernel_spectrum(kernel, lh: int, lw: int, dilation):
    """``conj(rfft2(k))`` of the zero-padded, dilated HWIO ``kernel``, as real and imaginary parts.

    Returns ``(re, im)``, each ``(Lh, Lw // 2 + 1, Cg, O)`` (frequency-major, HWIO order). The
    conjugate turns the product with the input's spectrum into a cross-correlation. Only the
    ``kh`` nonzero rows are transformed along W (an ``rfft``); along H two ``(Lh, 2 kh)`` DFT
    matrix products (``O(Lh kh)`` per column) land each part in the layout the contraction
    reads, with no transpose of the large spectrum. Dilation along H is in the DFT phases,
    along W zeros are inserted into the (small) kernel.
    """
    kh = kernel.shape[0]
    dh, dw = dilation
    if dw > 1:
        zero = jnp.zeros((), kernel.dtype)
        kernel = lax.pad(kernel, zero, ((0, 0, 0), (0, 0, dw - 1), (0, 0, 0), (0, 0, 0)))
    t = jnp.fft.rfft(jnp.transpose(kernel, (0, 2, 3, 1)), n=lw)  # (kh, Cg, O, Wf)
    t = jnp.transpose(t, (0, 3, 1, 2))  # (kh, Wf, Cg, O)
    t = jnp.concatenate([jnp.real(t), jnp.imag(t)], axis=0)  # (2 kh, Wf, Cg, O)
    m = _h_dft_matrix(lh, kh, dh)
    # One product per part: slicing the parts out of one (2 Lh)-row product made XLA:CPU copy
    # the spectrum through a slow fusion (the whole fft ran 2.3x slower).
    # HIGHEST: on TPU/GPU the default would round this exact transform to bfloat16/tf32.
    return tuple(
        jnp.tensordot(jnp.asarray(half, t.dtype), t, axes=1, precision=lax.Precision.HIGHEST)
        for half in (m[:lh], m[lh:])
    )


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
    kr, ki = _kernel_spectrum(kernel, lh, lw, dilation)  # (Lh, Wf, Cg, O) each: conj spectrum

    if elementwise_contraction(cg, og):
        # Frequencies minor: X (N, G, Cg, 1, Lh, Wf) * K (1, G, Cg, Og, Lh, Wf), summed over Cg.
        kg = lax.complex(kr, ki).reshape(lh, wf, cg, g, og)
        kg = jnp.transpose(kg, (3, 2, 4, 0, 1))[None]
        yf = jnp.sum(xf.reshape(n, g, cg, 1, lh, wf) * kg, axis=2).reshape(n, o, lh, wf)
    else:
        # Frequencies major: batched real GEMMs per (frequency, group), the complex product as
        # [Yr; Yi] = [Xr; Xi] @ Kr + [-Xi; Xr] @ Ki. Only the images' spectra (the small
        # operand) are duplicated; the kernel's spectrum is read in place, once.
        xg = jnp.transpose(xf.reshape(n, g, cg, f), (3, 1, 0, 2))  # (F, G, N, Cg)
        xr, xi = jnp.real(xg), jnp.imag(xg)

        def per_group(part):  # (Lh, Wf, Cg, O) -> (F, G, Cg, Og)
            part = part.reshape(f, cg, g, og)
            return jnp.transpose(part, (0, 2, 1, 3)) if g > 1 else part.reshape(f, 1, cg, og)

        dims = (((3,), (2,)), ((0, 1), (0, 1)))
        yb = lax.dot_general(
            jnp.concatenate([xr, xi], axis=2), per_group(kr), dims, precision=precision
        ) + lax.dot_general(
            jnp.concatenate([-xi, xr], axis=2), per_group(ki), dims, precision=precision
        )
        yc = lax.complex(yb[:, :, :n], yb[:, :, n:])  # (F, G, N, Og)
        yf = jnp.transpose(yc, (2, 1, 3, 0)).reshape(n, o, lh, wf)

    y = jnp.fft.irfft2(yf, s=(lh, lw))[:, :, :ho, :wo]  # (N, O, ho, wo)
    return jnp.transpose(y, (0, 2, 3, 1))


# Overlap-save block sizes tried: 2^a and 3 * 2^a (the fastest FFT lengths).
_TILES = tuple(sorted({b << a for a in range(3, 12) for b in (2, 3)}))
# Smallest block per contraction path (measured on a 2-core CPU: smaller blocks lose to the
# per-block overhead; larger ones to the kernel spectrum's size and the FFT's log factor).
_MIN_TILE = {"gemm": 24, "elementwise": 64}
# Blocks are at least this many times the effective kernel (per axis).
TILE_FACTOR = 4
# 2-D: an axis whose blocks would cover more than this many times its single FFT's length is
# transformed whole (1-D keeps its blocks: 1x16384x1, 513 taps, 1.31x, ran 0.19 ms in blocks
# and 0.24 whole): 8x64x64x32 with a 9x9 or 11x11 kernel (2 blocks of 48 against one FFT of
# 64, 1.5x) took 45-47 ms in blocks and 21 ms whole; 2x96x96x16, 13x13 (1.33x), 4.5 and 3.6 ms.
# Up to ~1.25x blocks stayed as fast or faster (1x512x512x3, 5x5: 37 ms in blocks, 44 whole).
MAX_BLOCK_COVER = 1.3
# 1-D and 3-D: blocks up to 3 * 2^20 (a long 1-D kernel needs long blocks) and a larger floor
# (see the module docstring for the 1-D measurements).
_TILES_ND = tuple(sorted({b << a for a in range(3, 21) for b in (2, 3)}))
_MIN_TILE_ND = 256


def choose_tiles(x_shape, kernel_shape, config: ConvConfig):
    """Overlap-save block sizes (``(Th, Tw)`` for 2-D) for padded ``x_shape``, or ``None``.

    Per axis, the smallest of ``2^a, 3 * 2^a`` that is ``>= max(min_tile, 4 * k_eff)``: blocks
    four times the kernel waste at most ~(4/3)^2 of the input to the overlap, while making the
    kernel's spectrum (``Th x Tw`` per filter) and the per-block transforms small. ``None`` when
    such a block would not be smaller than the single FFT, or (2-D) the blocks would cover more
    than :data:`MAX_BLOCK_COVER` times its length (on every axis). Channels-last shapes
    of any rank; 1-D and 3-D use :data:`_TILES_ND` and :data:`_MIN_TILE_ND`.
    """
    spatial = len(x_shape) - 2
    cg, o = kernel_shape[-2:]
    og = o // config.groups
    path = "elementwise" if elementwise_contraction(cg, og) else "gemm"
    sizes = [s + lo + hi for s, (lo, hi) in zip(x_shape[1:-1], config.padding, strict=True)]
    candidates, min_tile = (_TILES, _MIN_TILE[path]) if spatial == 2 else (_TILES_ND, _MIN_TILE_ND)
    tiles = []
    for size, e in zip(sizes, config.effective_kernel(tuple(kernel_shape[:-2])), strict=True):
        want = max(min_tile, TILE_FACTOR * e)
        t = next((t for t in candidates if t >= want), None)
        whole = next_fast_len(size)
        if t is not None and spatial == 2:
            blocks = math.ceil((size - e + 1) / (t - e + 1))
            t = None if blocks * t > MAX_BLOCK_COVER * whole else t
        tiles.append(t if t is not None and t < whole else None)
    if all(t is None for t in tiles):
        return None
    return tuple(t if t is not None else next_fast_len(s) for t, s in zip(tiles, sizes, strict=True))


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


def _correlate_valid_nd(x, kernel, dilation, groups: int, precision, lengths):
    """Stride-1 VALID cross-correlation of padded channels-last ``x`` of any rank by ``rfftn``.

    The rank-generic counterpart of :func:`_correlate_valid` (which 2-D keeps for its
    kernel-spectrum trick): the kernel's spectrum is the ``rfftn`` of the zero-dilated kernel,
    conjugated. ``x``: ``(N, *S, C)``, ``kernel``: ``(*k, Cg, O)``, ``lengths >= S`` per axis;
    returns ``(N, *(S - k_eff + 1), O)``.
    """
    n, c = x.shape[0], x.shape[-1]
    spatial = x.ndim - 2
    cg, o = kernel.shape[-2:]
    g = groups
    og = o // g
    ksize = kernel.shape[:-2]
    eff = [(k - 1) * d + 1 for k, d in zip(ksize, dilation, strict=True)]
    out = [s - e + 1 for s, e in zip(x.shape[1:-1], eff, strict=True)]
    axes = tuple(range(2, 2 + spatial))
    fshape = (*lengths[:-1], lengths[-1] // 2 + 1)
    f = math.prod(fshape)

    # channels first so the FFT axes are minor
    xf = jnp.fft.rfftn(jnp.moveaxis(x, -1, 1), s=lengths, axes=axes).reshape(n, c, f)
    k = jnp.moveaxis(kernel, (-2, -1), (0, 1))  # (Cg, O, *k)
    if any(d > 1 for d in dilation):
        zero = jnp.zeros((), k.dtype)
        k = lax.pad(k, zero, ((0, 0, 0), (0, 0, 0), *((0, 0, d - 1) for d in dilation)))
    kf = jnp.conj(jnp.fft.rfftn(k, s=lengths, axes=axes)).reshape(cg, g, og, f)

    if elementwise_contraction(cg, og):
        kg = jnp.transpose(kf, (1, 0, 2, 3))[None]  # (1, G, Cg, Og, F)
        yf = jnp.sum(xf.reshape(n, g, cg, 1, f) * kg, axis=2).reshape(n, o, *fshape)
    else:
        # batched real GEMMs per (frequency, group), as in _correlate_valid
        xg = jnp.transpose(xf.reshape(n, g, cg, f), (3, 1, 0, 2))  # (F, G, N, Cg)
        xr, xi = jnp.real(xg), jnp.imag(xg)
        kg = jnp.transpose(kf, (3, 1, 0, 2))  # (F, G, Cg, Og)
        dims = (((3,), (2,)), ((0, 1), (0, 1)))
        yb = lax.dot_general(
            jnp.concatenate([xr, xi], axis=2), jnp.real(kg), dims, precision=precision
        ) + lax.dot_general(
            jnp.concatenate([-xi, xr], axis=2), jnp.imag(kg), dims, precision=precision
        )
        yc = lax.complex(yb[:, :, :n], yb[:, :, n:])  # (F, G, N, Og)
        yf = jnp.transpose(yc, (2, 1, 3, 0)).reshape(n, o, *fshape)

    y = jnp.fft.irfftn(yf, s=lengths, axes=axes)
    y = y[(slice(None), slice(None), *(slice(0, m) for m in out))]
    return jnp.moveaxis(y, 1, -1)


def _overlap_save_nd(x, kernel, dilation, groups: int, precision, tiles):
    """Stride-1 VALID cross-correlation of padded channels-last ``x`` (any rank) in blocks.

    As :func:`_overlap_save`: blocks of ``tiles`` input points overlapping by ``k_eff - 1`` per
    axis, batched into one :func:`_correlate_valid_nd` with transforms of length ``tiles``.
    """
    n, c = x.shape[0], x.shape[-1]
    spatial = x.ndim - 2
    o = kernel.shape[-1]
    size = x.shape[1:-1]
    eff = [(k - 1) * d + 1 for k, d in zip(kernel.shape[:-2], dilation, strict=True)]
    full = [s - e + 1 for s, e in zip(size, eff, strict=True)]
    steps = [t - e + 1 for t, e in zip(tiles, eff, strict=True)]
    counts = [-(-m // st) for m, st in zip(full, steps, strict=True)]
    need = [nt * st + e - 1 for nt, st, e in zip(counts, steps, eff, strict=True)]
    x = lax.pad(x, jnp.zeros((), x.dtype),
                ((0, 0, 0), *((0, m - s, 0) for m, s in zip(need, size, strict=True)), (0, 0, 0)))
    # gather each axis into (count, tile): axis 1 + 2 i after the earlier axes were split
    for i in range(spatial):
        idx = (np.arange(counts[i]) * steps[i])[:, None] + np.arange(tiles[i])[None, :]
        ax = 1 + 2 * i
        x = jnp.take(x, idx.reshape(-1), axis=ax)
        x = x.reshape(*x.shape[:ax], counts[i], tiles[i], *x.shape[ax + 1:])
    # (N, c0, t0, c1, t1, ..., C) -> (N * blocks, *tiles, C)
    perm = (0, *range(1, 1 + 2 * spatial, 2), *range(2, 2 + 2 * spatial, 2), 1 + 2 * spatial)
    xt = jnp.transpose(x, perm).reshape(-1, *tiles, c)
    y = _correlate_valid_nd(xt, kernel, dilation, groups, precision, tuple(tiles))
    y = y.reshape(n, *counts, *steps, o)
    inv = (0, *(a for i in range(spatial) for a in (1 + i, 1 + spatial + i)), 1 + 2 * spatial)
    y = jnp.transpose(y, inv).reshape(n, *(nt * st for nt, st in zip(counts, steps, strict=True)), o)
    return y[(slice(None), *(slice(0, m) for m in full))]


def conv_fft(x, kernel, config: ConvConfig, *, tiles="auto"):
    """FFT cross-correlation: NHWC ``x`` (N, H, W, C), HWIO ``kernel`` -> NHWC (N, H', W', O).

    ``H' = floor((H + pad - ((kh - 1) * dh + 1)) / sh) + 1`` (same for W), as ``direct``.
    1-D and 3-D channels-last problems (``(N, W, C)`` / WIO, ``(N, D, H, W, C)`` / DHWIO) take
    the rank-generic path (:func:`_correlate_valid_nd`). The result has ``x``'s dtype;
    half-precision inputs are computed in float32. ``tiles``: ``"auto"`` (:func:`choose_tiles`),
    ``None`` (one FFT of the whole padded input) or overlap-save block sizes, one per spatial
    axis (each must exceed the effective kernel).
    """
    nb = batch_chunk(x.shape, kernel.shape, config) if tiles == "auto" else x.shape[0]
    if nb < x.shape[0]:  # the spectra one chunk at a time (batch_chunk)
        return over_images(lambda xs: conv_fft(xs, kernel, config), x, nb)
    if tiles == "auto":
        tiles = choose_tiles(x.shape, kernel.shape, config)
    size, ksize = x.shape[1:-1], kernel.shape[:-2]

    def correlate(x, kernel):
        args = (x, kernel, config.dilation, config.groups, config.precision)
        lengths = tuple(next_fast_len(d) for d in x.shape[1:-1])
        if x.ndim == 4:
            y = (_correlate_valid(*args, lengths) if tiles is None
                 else _overlap_save(*args, tuple(tiles)))
        else:
            y = (_correlate_valid_nd(*args, lengths) if tiles is None
                 else _overlap_save_nd(*args, tuple(tiles)))
        if any(s > 1 for s in config.stride):
            out = config.output_hw(size, ksize)
            y = y[(slice(None), *(slice(0, (m - 1) * s + 1, s)
                                  for m, s in zip(out, config.stride, strict=True)))]
        return y

    return spectral_call(x, kernel, config, correlate)


#: Spectra bytes (:func:`fft_model_terms`' ``byte``) of a batch above which it runs as a loop.
LOOP_BYTES = 16 * 2**20
#: Spectra bytes of one chunk of that loop.
CHUNK_BYTES = 8 * 2**20


def batch_chunk(x_shape, kernel_shape, config: ConvConfig) -> int:
    """Images per chunk: the whole batch while its spectra take at most :data:`LOOP_BYTES`
    (or the kernel's spectrum alone more than that: a loop over images would not shrink it),
    else as many as fit in :data:`CHUNK_BYTES` (at least one).

    The whole batch's spectra took 40-100 MiB of temporaries on 8-16 images, past the mmap
    threshold (``_batching``). As a loop: 1.2-2.1x faster forward,
    0.93-1.6x in training (the table in ``docs/algorithms.md``).
    """
    n = x_shape[0]
    if n < 2:
        return n
    def spectra(images: int) -> float:
        return _spectra_bytes((images, *x_shape[1:]), kernel_shape, config)

    per_image = spectra(2) - spectra(1)
    kernel_bytes = spectra(1) - per_image
    if spectra(n) <= LOOP_BYTES or kernel_bytes > LOOP_BYTES:
        return n
    return int(max(1, min(n, CHUNK_BYTES // per_image)))


def spectral_call(x, kernel, config: ConvConfig, correlate):
    """``correlate(x_padded, kernel)`` (the strided VALID correlation of the zero-padded input)
    behind the guards every transform-based algorithm needs (``fft``, ``dft``).

    A transform mixes every input into every output: one NaN or Inf would poison them all.
    Non-finite inputs are zeroed and their outputs marked NaN afterwards
    (:func:`_nonfinite_mask`). Both operands are scaled by powers of two (exact) so that finite
    inputs near the top of the float range do not overflow inside the transforms; the scales
    are constants to autodiff. Half-precision inputs are computed in float32 and cast back.
    """
    if x.size == 0 or kernel.size == 0:  # nothing to sum, and no max|x| to scale by
        return zero_result(x, kernel, config)
    out_dtype = x.dtype
    cdt = accumulation_dtype(x.dtype)
    x = x.astype(cdt)
    kernel = kernel.astype(cdt)
    finite = jnp.isfinite(x)
    all_finite = jnp.all(finite)
    x = jnp.where(finite, x, jnp.zeros((), cdt))
    sx = _pow2_scale(lax.stop_gradient(jnp.max(jnp.abs(x))))
    sk = _pow2_scale(lax.stop_gradient(jnp.max(jnp.abs(kernel))))
    x, kernel = x / sx, kernel / sk
    if config.padded:
        x = lax.pad(x, jnp.zeros((), cdt),
                    ((0, 0, 0), *((lo, hi, 0) for lo, hi in config.padding), (0, 0, 0)))
    y = correlate(x, kernel)
    y = (y * sx) * sk
    # lax.cond: the mask's window reductions run only when there is something to mark. The
    # conditional computes the mask alone, never touching y: under vmap a batched predicate
    # turns it into a select whose operands pass through stop_gradient, which has no
    # transpose, so a differentiated operand there (a tangent inside a custom JVP rule, as in
    # auto's switch) broke reverse mode.
    mask = lax.cond(all_finite, lambda f: jnp.zeros(y.shape, jnp.bool_),
                    lambda f: _nonfinite_mask(f, kernel.shape, config), finite)
    return jnp.where(mask, jnp.asarray(jnp.nan, y.dtype), y).astype(out_dtype)


def _pow2_scale(m):
    """The power of two at or above ``m >= 0`` (1 for zero or non-finite ``m``)."""
    ok = jnp.isfinite(m) & (m > 0)
    return jnp.where(ok, jnp.exp2(jnp.ceil(jnp.log2(jnp.where(ok, m, 1)))), 1).astype(m.dtype)


def _nonfinite_mask(finite, kernel_shape, config: ConvConfig):
    """Outputs ``(N, *S', O)`` whose receptive field holds a non-finite input of their group.

    A separable max over the (dilated, strided) kernel window of the per-group "not finite"
    indicator, one spatial axis at a time: ``sum(k)`` operations per point and group, no
    transform.
    """
    n, c = finite.shape[0], finite.shape[-1]
    spatial = finite.ndim - 2
    o = kernel_shape[-1]
    g = config.groups
    bad = jnp.any(~finite.reshape(*finite.shape[:-1], g, c // g), axis=-1).astype(jnp.float32)
    zero = jnp.zeros((), jnp.float32)
    for i, (k, s, d, pads) in enumerate(zip(kernel_shape[:-2], config.stride, config.dilation,
                                             config.padding, strict=True)):
        one = [1] * (spatial + 2)
        window, strides, dil = list(one), list(one), list(one)
        window[1 + i], strides[1 + i], dil[1 + i] = k, s, d
        padding = [(0, 0)] * (spatial + 2)
        padding[1 + i] = pads
        bad = lax.reduce_window(bad, zero, lax.max, tuple(window), tuple(strides), padding,
                                window_dilation=tuple(dil))
    del n
    return jnp.repeat(bad > 0, o // g, axis=-1)


def _plan(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> tuple[int, int, int]:
    """``(points, freqs, blocks)`` of the plan :func:`conv_fft` runs: points and frequencies of
    one transform (fast lengths or overlap-save tiles) and the number of transformed blocks."""
    n = x_shape[0]
    ksize = kernel_shape[:-2]
    padded = [s + lo + hi for s, (lo, hi) in zip(x_shape[1:-1], config.padding, strict=True)]
    tiles = choose_tiles(x_shape, kernel_shape, config)
    if tiles is None:
        lengths = [next_fast_len(p) for p in padded]
        blocks = n
    else:
        lengths = list(tiles)
        blocks = n * math.prod(
            -(-(p - e + 1) // (t - e + 1))
            for p, t, e in zip(padded, tiles, config.effective_kernel(ksize), strict=True)
        )
    return math.prod(lengths), math.prod(lengths[:-1]) * (lengths[-1] // 2 + 1), blocks


def _spectra_bytes(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> float:
    """Bytes of the complex64 spectra of the input, output and kernel."""
    _, freqs, blocks = _plan(x_shape, kernel_shape, config)
    c, (cg, o) = x_shape[-1], kernel_shape[-2:]
    return 8.0 * freqs * (blocks * (c + o) + cg * o)


def temporaries(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> float:
    """Estimated bytes of temporaries XLA:CPU allocates for one call of :func:`conv_fft`'s
    program, forward: one chunk's (:func:`batch_chunk`) output spectra about 2.3 times (the
    GEMM's real result, the complex spectrum, the inverse transform's input) and the kernel's
    about 1.2 times, 1.9 times for a 3-D kernel (its transform passes through more complex
    intermediates); the input's are consumed as they are made. Fitted to the compiled
    programs' ``memory_analysis()`` over the cost model's grid."""
    chunk = (batch_chunk(x_shape, kernel_shape, config), *x_shape[1:])
    _, freqs, blocks = _plan(chunk, kernel_shape, config)
    cg, o = kernel_shape[-2:]
    kernel_copies = 1.9 if len(kernel_shape) == 5 else 1.2
    return 8.0 * freqs * (2.3 * blocks * o + kernel_copies * cg * o)


def fft_model_terms(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> dict[str, float]:
    """Cost-model terms of ``fft``, counted from the plan :func:`conv_fft` runs (fast lengths,
    overlap-save blocks, the batch loop), for channels-last shapes of any rank."""
    c = x_shape[-1]
    ksize, (cg, o) = kernel_shape[:-2], kernel_shape[-2:]
    points, freqs, blocks = _plan(x_shape, kernel_shape, config)
    per_fft = 2.5 * points * math.log2(max(points, 2))
    contraction = 8.0 * freqs * blocks * cg * o
    gemm = not elementwise_contraction(cg, o // config.groups)
    temps = temporaries(x_shape, kernel_shape, config)
    return {
        "call": 1.0,
        # XLA:CPU's 3-D transforms run at ~3x the time per flop of its 1-D and 2-D ones
        # (measured on 16^3-32^3 volumes), so they get their own constant
        "fft_flop": per_fft * blocks * (c + o) if len(ksize) < 3 else 0.0,
        "fft_flop_volume": per_fft * blocks * (c + o) if len(ksize) == 3 else 0.0,
        "transform": float(blocks * (c + o)),  # per transform overhead (many small images)
        "gemm_flop": contraction if gemm else 0.0,
        # the per-frequency GEMMs have only `blocks` rows: for few rows they are bound by
        # streaming the (F, 2C, 2O) kernel spectra, i.e. by flops / rows
        "gemm_weight": contraction / blocks if gemm else 0.0,
        "ew_flop": 0.0 if gemm else contraction,
        "kernel_flop": 2.0 * cg * o * freqs * sum(ksize),
        "byte": _spectra_bytes(x_shape, kernel_shape, config),
        # temporaries past glibc's mmap threshold are fresh pages on every call
        "fault_byte": temps if temps > MMAP_THRESHOLD else 0.0,
    }


FFT = register(
    Algorithm(
        name="fft",
        fn=conv_fft,
        serves=(
            "every configuration, 1-D, 2-D and 3-D; fastest for large kernels (>= ~5-7 on big images, >= 3 with "
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
