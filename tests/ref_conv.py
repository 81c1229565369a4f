"""An independent float64 NumPy reference for ``conv2d`` (a test helper, not a test module).

Written from the definition, not from the code under test: pad explicitly with ``np.pad``
(``constant`` / ``reflect`` / ``edge`` / ``wrap``), take a strided view of every window, contract
with ``np.einsum`` per group -- the approach of ``jax/_src/lax_reference.py``. Layouts are handled
by transposing to NHWC at the start and back at the end.
"""

from __future__ import annotations

import numpy as np

NP_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def as_pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def pads_for(padding, size, kernel, stride, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((top, bottom), (left, right))`` for any padding form; ``size``/``kernel`` are (H, W)."""
    stride, dilation = as_pair(stride), as_pair(dilation)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    if isinstance(padding, str):
        out = []
        for n, e, s in zip(size, eff, stride, strict=True):
            if padding.upper() == "VALID":
                out.append((0, 0))
            elif padding.upper() == "FULL":
                out.append((e - 1, e - 1))
            elif padding.upper() == "SAME":  # output ceil(n / s); the odd pad at the end
                total = max((int(np.ceil(n / s)) - 1) * s + e - n, 0)
                out.append((total // 2, total - total // 2))
            else:
                raise ValueError(padding)
        return (out[0], out[1])
    if np.ndim(padding) == 0:
        return ((padding, padding), (padding, padding))
    if np.ndim(padding) == 1:
        return ((padding[0], padding[0]), (padding[1], padding[1]))
    return (tuple(padding[0]), tuple(padding[1]))


def conv2d_ref(
    x,
    kernel,
    bias=None,
    *,
    stride=1,
    padding="VALID",
    dilation=1,
    groups=1,
    padding_mode="zeros",
    data_format="NHWC",
):
    """float64 cross-correlation; ``x`` NHWC/NCHW (or unbatched), ``kernel`` HWIO."""
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    if data_format == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    n, h, w, c = x.shape
    kh, kw, cin, o = kernel.shape
    assert c == cin * groups and o % groups == 0
    (sh, sw), (dh, dw) = as_pair(stride), as_pair(dilation)
    pads = pads_for(padding, (h, w), (kh, kw), stride, dilation)
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), mode=NP_MODE[padding_mode])
    hp, wp = xp.shape[1:3]
    ho = (hp - ((kh - 1) * dh + 1)) // sh + 1
    wo = (wp - ((kw - 1) * dw + 1)) // sw + 1
    assert ho > 0 and wo > 0
    s = xp.strides
    windows = np.lib.stride_tricks.as_strided(
        xp,
        shape=(n, ho, wo, kh, kw, c),
        strides=(s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]),
        writeable=False,
    )
    # Group g sees input channels [g*cin, (g+1)*cin) and produces outputs [g*og, (g+1)*og).
    og = o // groups
    y = np.einsum(
        "nhwijgc,ijcgo->nhwgo",
        windows.reshape(n, ho, wo, kh, kw, groups, cin),
        kernel.reshape(kh, kw, cin, groups, og),
    ).reshape(n, ho, wo, o)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    if data_format == "NCHW":
        y = y.transpose(0, 3, 1, 2)
    return y[0] if unbatched else y


def is_valid(
    h, w, kh, kw, *, stride=1, padding="VALID", dilation=1, padding_mode="zeros"
) -> bool:
    """Whether ``conv2d`` must accept these sizes (non-empty output, legal padding_mode)."""
    pads = pads_for(padding, (h, w), (kh, kw), stride, dilation)
    dh, dw = as_pair(dilation)
    for size, (lo, hi), eff in zip((h, w), pads, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), strict=True):
        if padding_mode == "reflect" and max(lo, hi) >= size:
            return False
        if padding_mode == "circular" and max(lo, hi) > size:
            return False
        if eff > size + lo + hi:
            return False
    return True
