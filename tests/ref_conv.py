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


# --------------------------------------------------------------------------------------------
# N-d: the same definition for any number of spatial axes (1-D, 2-D, 3-D), and the transposed
# convolution by scattering each input point's products (its definition as the adjoint).

_NAMES = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


def as_tuple(v, n: int) -> tuple[int, ...]:
    return (int(v),) * n if np.ndim(v) == 0 else tuple(int(u) for u in v)


def pads_nd(padding, size, kernel, stride, dilation) -> tuple[tuple[int, int], ...]:
    """``(lo, hi)`` per spatial axis for any padding form; ``size``/``kernel`` per axis."""
    n = len(size)
    stride, dilation = as_tuple(stride, n), as_tuple(dilation, n)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    if isinstance(padding, str):
        out = []
        for m, e, s in zip(size, eff, stride, strict=True):
            if padding.upper() == "VALID":
                out.append((0, 0))
            elif padding.upper() == "FULL":
                out.append((e - 1, e - 1))
            elif padding.upper() == "SAME":
                total = max((int(np.ceil(m / s)) - 1) * s + e - m, 0)
                out.append((total // 2, total - total // 2))
            else:
                raise ValueError(padding)
        return tuple(out)
    if np.ndim(padding) == 0:
        return ((int(padding), int(padding)),) * n
    if all(np.ndim(p) == 0 for p in padding):
        return tuple((int(p), int(p)) for p in padding)
    return tuple((int(p[0]), int(p[1])) for p in padding)


def _to_last(x, data_format, spatial):
    unbatched = x.ndim == spatial + 1
    if unbatched:
        x = x[None]
    if data_format is not None and data_format[1] == "C":
        x = np.moveaxis(x, 1, -1)
    return x, unbatched


def _from_last(y, data_format, unbatched):
    if data_format is not None and data_format[1] == "C":
        y = np.moveaxis(y, -1, 1)
    return y[0] if unbatched else y


def conv_ref(x, kernel, bias=None, *, stride=1, padding="VALID", dilation=1, groups=1,
             padding_mode="zeros", data_format=None):
    """float64 cross-correlation with ``kernel.ndim - 2`` spatial axes (channels-last kernel)."""
    kernel = np.asarray(kernel, dtype=np.float64)
    sp = kernel.ndim - 2
    x, unbatched = _to_last(np.asarray(x, dtype=np.float64), data_format, sp)
    n, size, c = x.shape[0], x.shape[1:-1], x.shape[-1]
    ksize, cin, o = kernel.shape[:-2], kernel.shape[-2], kernel.shape[-1]
    assert c == cin * groups and o % groups == 0
    stride, dilation = as_tuple(stride, sp), as_tuple(dilation, sp)
    pads = pads_nd(padding, size, ksize, stride, dilation)
    xp = np.pad(x, ((0, 0), *pads, (0, 0)), mode=NP_MODE[padding_mode])
    out = [(p - ((k - 1) * d + 1)) // s + 1
           for p, k, d, s in zip(xp.shape[1:-1], ksize, dilation, stride, strict=True)]
    assert min(out) > 0
    st = xp.strides
    windows = np.lib.stride_tricks.as_strided(
        xp,
        shape=(n, *out, *ksize, c),
        strides=(st[0], *(st[1 + i] * stride[i] for i in range(sp)),
                 *(st[1 + i] * dilation[i] for i in range(sp)), st[-1]),
        writeable=False,
    )
    og = o // groups
    letters = "ABCDEF"
    o_ax, k_ax = letters[:sp], letters[sp:2 * sp]
    y = np.einsum(
        f"n{o_ax}{k_ax}gc,{k_ax}cgo->n{o_ax}go",
        windows.reshape(n, *out, *ksize, groups, cin),
        kernel.reshape(*ksize, cin, groups, og),
    ).reshape(n, *out, o)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    return _from_last(y, data_format, unbatched)


def is_valid_nd(size, kernel, *, stride=1, padding="VALID", dilation=1,
                padding_mode="zeros") -> bool:
    """Whether ``conv`` must accept these sizes (non-empty output, legal padding_mode)."""
    sp = len(size)
    pads = pads_nd(padding, size, kernel, stride, dilation)
    dilation = as_tuple(dilation, sp)
    for m, (lo, hi), k, d in zip(size, pads, kernel, dilation, strict=True):
        if padding_mode == "reflect" and max(lo, hi) >= m:
            return False
        if padding_mode == "circular" and max(lo, hi) > m:
            return False
        if (k - 1) * d + 1 > m + lo + hi:
            return False
    return True


def transpose_pads(padding, size, kernel, stride, dilation):
    """``((lo, hi) cropped from the full output, extra zeros at the high end)`` per axis."""
    sp = len(size)
    stride, dilation = as_tuple(stride, sp), as_tuple(dilation, sp)
    if isinstance(padding, str) and padding.upper() == "SAME":
        # the adjoint of the forward SAME convolution on an input of size * stride
        fwd = pads_nd("SAME", [m * s for m, s in zip(size, stride, strict=True)], kernel,
                      stride, dilation)
        full = [(m - 1) * s + (k - 1) * d + 1
                for m, s, k, d in zip(size, stride, kernel, dilation, strict=True)]
        extra = [m * s - (f - lo - hi)
                 for m, s, f, (lo, hi) in zip(size, stride, full, fwd, strict=True)]
        return fwd, extra
    return pads_nd(padding, size, kernel, stride, dilation), [0] * sp


def conv_transpose_ref(x, kernel, bias=None, *, stride=1, padding=0, output_padding=0,
                       dilation=1, groups=1, data_format=None):
    """float64 transposed convolution: each input point adds ``x[i] * kernel[a]`` at output
    ``i * stride + a * dilation - pad_lo``; ``kernel`` is ``(*k, C_out // groups, C_in)``."""
    kernel = np.asarray(kernel, dtype=np.float64)
    sp = kernel.ndim - 2
    x, unbatched = _to_last(np.asarray(x, dtype=np.float64), data_format, sp)
    n, size, c = x.shape[0], x.shape[1:-1], x.shape[-1]
    ksize, og = kernel.shape[:-2], kernel.shape[-2]
    assert kernel.shape[-1] == c and c % groups == 0
    cg = c // groups
    stride, dilation = as_tuple(stride, sp), as_tuple(dilation, sp)
    op = as_tuple(output_padding, sp)
    pads, extra = transpose_pads(padding, size, ksize, stride, dilation)
    full = [(m - 1) * s + (k - 1) * d + 1
            for m, s, k, d in zip(size, stride, ksize, dilation, strict=True)]
    out = [f - lo - hi + e + p
           for f, (lo, hi), e, p in zip(full, pads, extra, op, strict=True)]
    buf = np.zeros((n, *(max(f, lo + m) for f, (lo, _), m in zip(full, pads, out, strict=True)),
                    groups * og))
    xg = x.reshape(n, *size, groups, cg)
    kg = kernel.reshape(*ksize, og, groups, cg)
    for tap in np.ndindex(*ksize):
        contrib = np.einsum("...gc,jgc->...gj", xg, kg[tap]).reshape(n, *size, groups * og)
        index = tuple(slice(a * d, a * d + (m - 1) * s + 1, s)
                      for a, d, m, s in zip(tap, dilation, size, stride, strict=True))
        buf[(slice(None), *index)] += contrib
    y = buf[(slice(None), *(slice(lo, lo + m) for (lo, _), m in zip(pads, out, strict=True)))]
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    return _from_last(y, data_format, unbatched)
