"""Float64 NumPy references for every pooling kind, written independently of ``jaxconv.pooling``.

All functions take batched NHWC arrays and per-axis ``(top, bottom), (left, right)`` padding. The
PyTorch rules are spelt out as window enumerations rather than the closed-form output size:

* a window starts every ``stride`` pixels of the padded input, beginning at its first pixel;
* floor mode keeps the windows that fit in the padded input;
* ``ceil_mode`` also keeps a window that overhangs the end, as long as the previous window did not
  already reach the end (the first window: overhangs by less than a stride) and the window
  starts inside the real input or the left padding;
* avg divisor: the window's pixels that lie in the padded input (``count_include_pad``) or in the
  real input (not counting padding), or ``divisor_override``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def window_starts(n: int, k_eff: int, stride: int, lo: int, hi: int, ceil_mode: bool) -> list[int]:
    """Start offsets (in padded coordinates) of the kept windows along one axis."""
    padded = n + lo + hi
    starts = []
    start = 0
    while True:
        fits = start + k_eff <= padded
        # (for the first window: it overhangs the end by less than a stride, as in torch)
        previous_short = (start - stride) + k_eff < padded
        overhang_ok = ceil_mode and previous_short and start < lo + n
        if fits or overhang_ok:
            starts.append(start)
            start += stride
        else:
            return starts


def _as64(x):
    return np.asarray(x, dtype=np.float64)


def _windows(x, window, stride, pads, dilation, ceil_mode, fill):
    """Yield ``(i, j, values (N, kh', kw', C), real-mask, in-padded-count)`` per output pixel."""
    n, h, w, c = x.shape
    (t, b), (left, r) = pads
    xp = np.full((n, h + t + b, w + left + r, c), fill, dtype=np.float64)
    xp[:, t : t + h, left : left + w] = x
    real = np.zeros((h + t + b, w + left + r), dtype=bool)
    real[t : t + h, left : left + w] = True
    (kh, kw), (sh, sw), (dh, dw) = window, stride, dilation
    rows = window_starts(h, (kh - 1) * dh + 1, sh, t, b, ceil_mode)
    cols = window_starts(w, (kw - 1) * dw + 1, sw, left, r, ceil_mode)
    for i, r0 in enumerate(rows):
        ri = [r0 + a * dh for a in range(kh) if r0 + a * dh < xp.shape[1]]
        for j, c0 in enumerate(cols):
            ci = [c0 + a * dw for a in range(kw) if c0 + a * dw < xp.shape[2]]
            yield i, j, len(rows), len(cols), xp[:, ri][:, :, ci], real[np.ix_(ri, ci)]


def _reduce(x, window, stride, pads, dilation, ceil_mode, fill, reduce):
    x = _as64(x)
    out = None
    for i, j, oh, ow, vals, mask in _windows(x, window, stride, pads, dilation, ceil_mode, fill):
        if out is None:
            out = np.empty((x.shape[0], oh, ow, x.shape[3]))
        out[:, i, j] = reduce(vals, mask)
    return out


def max_pool(x, window, stride, pads, dilation=(1, 1), ceil_mode=False):
    return _reduce(x, window, stride, pads, dilation, ceil_mode, -np.inf,
                   lambda v, m: np.max(v, axis=(1, 2)))


def min_pool(x, window, stride, pads, dilation=(1, 1), ceil_mode=False):
    return _reduce(x, window, stride, pads, dilation, ceil_mode, np.inf,
                   lambda v, m: np.min(v, axis=(1, 2)))


def avg_pool(x, window, stride, pads, ceil_mode=False, count_include_pad=True,
             divisor_override=None):
    def mean(v, m):
        if divisor_override is not None:
            d = divisor_override
        elif count_include_pad:
            d = m.size  # pixels inside the padded input
        else:
            d = int(m.sum())  # real pixels only
        return v.sum(axis=(1, 2)) / d

    return _reduce(x, window, stride, pads, (1, 1), ceil_mode, 0.0, mean)


def lp_pool(x, norm, window, stride, ceil_mode=False):
    """torch.nn.functional.lp_pool2d, from its definition."""
    if math.isinf(norm):
        return max_pool(np.abs(_as64(x)), window, stride, ((0, 0), (0, 0)), ceil_mode=ceil_mode)
    with np.errstate(invalid="ignore"):
        out = avg_pool(_as64(x) ** norm, window, stride, ((0, 0), (0, 0)), ceil_mode=ceil_mode)
        out = np.sign(out) * np.maximum(np.abs(out), 0.0) * (window[0] * window[1])
        return out ** (1.0 / norm)


def adaptive_bins(n: int, o: int) -> list[tuple[int, int]]:
    return [(math.floor(i * n / o), math.ceil((i + 1) * n / o)) for i in range(o)]


def adaptive_pool(x, output_size, reduce):
    x = _as64(x)
    oh, ow = output_size
    out = np.empty((x.shape[0], oh, ow, x.shape[3]))
    for i, (r0, r1) in enumerate(adaptive_bins(x.shape[1], oh)):
        for j, (c0, c1) in enumerate(adaptive_bins(x.shape[2], ow)):
            out[:, i, j] = reduce(x[:, r0:r1, c0:c1], axis=(1, 2))
    return out


def adaptive_avg_pool(x, output_size):
    return adaptive_pool(x, output_size, np.mean)


def adaptive_max_pool(x, output_size):
    return adaptive_pool(x, output_size, np.max)


# --------------------------------------------------------------------------------------------
# N spatial dimensions (channels-last ``(N, *spatial, C)``), the same rules axis by axis
# --------------------------------------------------------------------------------------------


def _windows_nd(x, window, stride, pads, dilation, ceil_mode):
    """Per output position: ``(out index, [per-axis tap positions in unpadded coordinates])``.

    Taps that fall outside the padded input (a ``ceil_mode`` window overhanging the end) are
    left out; taps in the padding are kept (negative or >= n), for the caller to fill.
    """
    spatial = x.shape[1:-1]
    starts = [
        window_starts(n, (k - 1) * d + 1, s, lo, hi, ceil_mode)
        for n, k, s, d, (lo, hi) in zip(spatial, window, stride, dilation, pads, strict=True)
    ]
    out_shape = tuple(len(s) for s in starts)
    for out_index in np.ndindex(*out_shape):
        taps = []
        for axis, i in enumerate(out_index):
            n, k, d, (lo, hi) = spatial[axis], window[axis], dilation[axis], pads[axis]
            start = starts[axis][i]
            taps.append([start + a * d - lo for a in range(k) if start + a * d < n + lo + hi])
        yield out_shape, out_index, taps


def _reduce_nd(x, window, stride, pads, dilation, ceil_mode, reduce):
    """``reduce(values (N, T, C), real (T,), in_padded (T,))`` per window, ``T`` its taps."""
    x = _as64(x)
    spatial = x.shape[1:-1]
    out = None
    for out_shape, out_index, taps in _windows_nd(x, window, stride, pads, dilation, ceil_mode):
        if out is None:
            out = np.empty((x.shape[0], *out_shape, x.shape[-1]))
        positions = list(itertools.product(*taps))
        real = np.array([all(0 <= p < n for p, n in zip(pos, spatial, strict=True))
                         for pos in positions])
        vals = np.stack(
            [x[(slice(None), *pos, slice(None))] if ok else np.full((x.shape[0], x.shape[-1]), np.nan)
             for pos, ok in zip(positions, real, strict=True)],
            axis=1,
        )
        out[(slice(None), *out_index, slice(None))] = reduce(vals, real)
    return out


def max_pool_nd(x, window, stride, pads, dilation=None, ceil_mode=False):
    dilation = dilation or (1,) * len(window)
    return _reduce_nd(x, window, stride, pads, dilation, ceil_mode,
                      lambda v, m: np.max(np.where(m[None, :, None], v, -np.inf), axis=1))


def min_pool_nd(x, window, stride, pads, dilation=None, ceil_mode=False):
    dilation = dilation or (1,) * len(window)
    return _reduce_nd(x, window, stride, pads, dilation, ceil_mode,
                      lambda v, m: np.min(np.where(m[None, :, None], v, np.inf), axis=1))


def avg_pool_nd(x, window, stride, pads, ceil_mode=False, count_include_pad=True,
                divisor_override=None):
    def mean(v, m):
        if divisor_override is not None:
            d = divisor_override
        elif count_include_pad:
            d = m.size  # taps inside the padded input
        else:
            d = int(m.sum())
        return np.where(m[None, :, None], v, 0.0).sum(axis=1) / d

    return _reduce_nd(x, window, stride, pads, (1,) * len(window), ceil_mode, mean)


def lp_pool_nd(x, norm, window, stride, ceil_mode=False):
    zero = ((0, 0),) * len(window)
    if math.isinf(norm):
        return max_pool_nd(np.abs(_as64(x)), window, stride, zero, ceil_mode=ceil_mode)
    with np.errstate(invalid="ignore"):
        out = avg_pool_nd(_as64(x) ** norm, window, stride, zero, ceil_mode=ceil_mode)
        return (np.sign(out) * np.abs(out) * math.prod(window)) ** (1.0 / norm)


def max_pool_indices_nd(x, window, stride, pads, dilation=None, ceil_mode=False):
    """PyTorch's CPU kernel: row-major taps over the real input, ``v > best or isnan(v)``
    replaces; the index starts at the window's first real tap (index into the flattened
    unpadded spatial grid)."""
    x = _as64(x)
    dilation = dilation or (1,) * len(window)
    spatial = x.shape[1:-1]
    out = None
    for out_shape, out_index, taps in _windows_nd(x, window, stride, pads, dilation, ceil_mode):
        if out is None:
            out = np.empty((x.shape[0], *out_shape, x.shape[-1]), dtype=np.int64)
        # torch's start: the window's first tap at or after 0, even when it lies beyond the input
        starts = [t[0] + max(-t[0] + d - 1, 0) // d * d for t, d in zip(taps, dilation, strict=True)]
        strides = [math.prod(spatial[a + 1 :]) for a in range(len(spatial))]
        first = sum(t * st for t, st in zip(starts, strides, strict=True))
        taps = [[p for p in t if p >= 0] for t in taps]
        for b in range(x.shape[0]):
            for c in range(x.shape[-1]):
                best, index = -np.inf, first
                for pos in itertools.product(*[[p for p in t if p < n] for t, n in zip(taps, spatial, strict=True)]):
                    v = x[(b, *pos, c)]
                    if v > best or np.isnan(v):
                        best, index = v, np.ravel_multi_index(pos, spatial)
                out[(b, *out_index, c)] = index
    return out


def max_unpool_nd(y, indices, out_spatial):
    y = _as64(y)
    out = np.zeros((y.shape[0], math.prod(out_spatial), y.shape[-1]))
    for b in range(y.shape[0]):
        for c in range(y.shape[-1]):
            for v, i in zip(y[b, ..., c].ravel(), np.asarray(indices)[b, ..., c].ravel(), strict=True):
                out[b, i, c] = v
    return out.reshape(y.shape[0], *out_spatial, y.shape[-1])


def adaptive_pool_nd(x, output_size, reduce):
    x = _as64(x)
    out = np.empty((x.shape[0], *output_size, x.shape[-1]))
    bins = [adaptive_bins(n, o) for n, o in zip(x.shape[1:-1], output_size, strict=True)]
    for index in np.ndindex(*output_size):
        window = tuple(slice(*bins[a][i]) for a, i in enumerate(index))
        block = x[(slice(None), *window, slice(None))]
        out[(slice(None), *index, slice(None))] = reduce(
            block.reshape(x.shape[0], -1, x.shape[-1]), axis=1
        )
    return out


def unfold(x, window, stride, pads, dilation):
    """im2col in (i, j, c) order: ``(N, H_out, W_out, kh * kw * C)``."""
    x = _as64(x)
    n, h, w, c = x.shape
    (t, b), (left, r) = pads
    xp = np.zeros((n, h + t + b, w + left + r, c))
    xp[:, t : t + h, left : left + w] = x
    (kh, kw), (sh, sw), (dh, dw) = window, stride, dilation
    oh = (h + t + b - (kh - 1) * dh - 1) // sh + 1
    ow = (w + left + r - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((n, oh, ow, kh * kw * c))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for e in range(kw):
                    k = (a * kw + e) * c
                    out[:, i, j, k : k + c] = xp[:, i * sh + a * dh, j * sw + e * dw]
    return out


def fold(patches, size, window, stride, pads, dilation):
    """col2im: the sum of every patch entry into the pixel it came from."""
    patches = _as64(patches)
    n, oh, ow, depth = patches.shape
    (kh, kw), (sh, sw), (dh, dw) = window, stride, dilation
    c = depth // (kh * kw)
    (t, b), (left, r) = pads
    xp = np.zeros((n, size[0] + t + b, size[1] + left + r, c))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for e in range(kw):
                    k = (a * kw + e) * c
                    xp[:, i * sh + a * dh, j * sw + e * dw] += patches[:, i, j, k : k + c]
    return xp[:, t : t + size[0], left : left + size[1]]
