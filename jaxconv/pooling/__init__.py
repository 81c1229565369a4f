"""Pooling in 1, 2 and 3 spatial dimensions with PyTorch's semantics: max / min
(:mod:`.extremum`), average and power-average (:mod:`.average`), adaptive and global
(:mod:`.adaptive`), max-pool indices and max-unpooling (:mod:`.indices`).

Images are channels-last: **NWC** ``(N, W, C)`` in 1-D, **NHWC** ``(N, H, W, C)`` in 2-D and
**NDHWC** ``(N, D, H, W, C)`` in 3-D (``data_format="NCW"`` / ``"NCHW"`` / ``"NCDHW"`` for
channels-first), or unbatched (no ``N``), returned with the same rank. Every function checks its
arguments before tracing, then calls a jitted core whose configuration is static; the windowed
pools share one N-d geometry and reduction (:mod:`._window`).

Windowed pools follow PyTorch's geometry, per axis (``k`` window, ``s`` stride, ``d``
dilation, ``p_lo``/``p_hi`` padding, ``k_eff = (k - 1) * d + 1``)::

    out = floor((H + p_lo + p_hi - k_eff + (s - 1 if ceil_mode else 0)) / s) + 1
    # with ceil_mode, a last window starting in the right padding is dropped:
    if ceil_mode and (out - 1) * s >= H + p_lo: out -= 1
    # and out must be >= 1 (with ceil_mode, a window may overhang the padded input, as in torch)

Explicit padding may be at most half the window on each side (PyTorch's rule, so that no window
lies in the padding only); ``"SAME"`` (output ``ceil(H / s)``, the odd extra pad at the end, as
``jax.lax``) and ``"VALID"`` are accepted too. Sizes, strides, paddings and every output or padded
dimension must fit in int32 (``2**31 - 1``), and so must the element count of every array a pool
builds (the padded input, the gathered windows, an unpooled output). A window longer than the
input reads only its taps inside the input, so its cost does not grow with the window or the
padding.
"""

from .adaptive import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    adaptive_max_pool3d,
    global_avg_pool1d,
    global_avg_pool2d,
    global_avg_pool3d,
    global_max_pool1d,
    global_max_pool2d,
    global_max_pool3d,
)
from .average import avg_pool1d, avg_pool2d, avg_pool3d, lp_pool1d, lp_pool2d, lp_pool3d
from .extremum import max_pool1d, max_pool2d, max_pool3d, min_pool1d, min_pool2d, min_pool3d
from .indices import max_unpool1d, max_unpool2d, max_unpool3d

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "global_avg_pool1d",
    "global_avg_pool2d",
    "global_avg_pool3d",
    "global_max_pool1d",
    "global_max_pool2d",
    "global_max_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "min_pool1d",
    "min_pool2d",
    "min_pool3d",
]
