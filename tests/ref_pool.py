"""Float64 NumPy references for every pooling kind, written independently of ``jaxconv.pooling``.

All functions take batched NHWC arrays and per-axis ``(top, bottom), (left, right)`` padding. The
PyTorch rules are spelt out as window enumerations rather than the closed-form output size:

* a window starts every ``stride`` pixels of the padded input, beginning at its first pixel;
* floor mode keeps the windows that fit in the padded input;
* ``ceil_mode`` also keeps a window that overhangs the end, as long as the previous window did not
  already reach the end and the window starts inside the real input or the left padding;
* avg divisor: the window's pixels that lie in the padded input (``count_include_pad``) or in the
  real input (not counting padding), or ``divisor_override``.
"""

from __future__ import annotations

import math

import numpy as np


def window_starts(n: int, k_eff: int, stride: int, lo: int, hi: int, ceil_mode: bool) -> list[int]:
    """Start offsets (in padded coordinates) of the kept windows along one axis."""
    padded = n + lo + hi
    starts = []
    start = 0
    while True:
        fits = start + k_eff <= padded
        previous_short = start == 0 or (start - stride) + k_eff < padded
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
