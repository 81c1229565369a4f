"""Transposed convolution (``conv_transpose1d/2d/3d``): the adjoint of the forward convolution.

``conv_transpose(y, k, stride=s, padding=p)`` is the vector-Jacobian product of
``conv(., k, stride=s, padding=p)`` at ``y``: the kernel is the *forward* convolution's
(``(*k, C_out // groups, C_in)``, mapping the transposed output's space, ``C_out`` channels, to
its input's, ``C_in`` channels), used backwards. Integer ``padding`` and ``output_padding`` follow
PyTorch's ``conv_transpose*d``; a torch weight ``w`` of shape ``(C_in, C_out // g, *k)`` is
``w.permute(*spatial, 1, 0)`` here (``w.transpose(2, 3, 1, 0)`` for 2-D).

It runs as ``prod(stride)`` stride-1 ``lax.conv_general_dilated`` calls, one per output phase
(polyphase decomposition, :func:`_polyphase`): the taps of phase ``r`` (``a * d = r mod s``) are
equally spaced, so each phase is a (dilated) sub-kernel, flipped, with in/out channels swapped
inside each group, applied to the undilated input; the phases are interleaved and cropped by
``padding`` (``output_padding`` adds rows at the end). No zero is multiplied, and no
``lhs_dilation`` reaches XLA: with it (or with the input dilated by an interior ``lax.pad``,
which XLA folds into one), XLA:CPU's algebraic simplifier aborted the process on some shapes
(jax 0.10.2, "Window dimensions do not match RHS shape", e.g. a 1x1x3x1 input, kernel 3x2x2,
stride (3, 2, 3)). Measured on the 2-core CPU, float32, 8x32x32x64 -> 32 channels, 4x4 kernel,
stride 2: 1.8 ms, against 3.0 ms with ``lhs_dilation`` and 11.6 ms with the zeros inserted
explicitly.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from .. import _args
from ._canonical import (
    PrecisionLike,
    canonical_precision,
    from_channels_last,
    kernel_layout,
    to_channels_last,
)
from .direct import dimension_numbers

# Algorithms the transposed convolutions serve (others may be added later).
ALGORITHMS = ("auto", "direct")
TransposePadding = str | int | Sequence[int] | Sequence[tuple[int, int]]


def _forward_pads(fn: str, padding: Any, size: tuple[int, ...], eff: tuple[int, ...],
                  stride: tuple[int, ...]) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """``(forward (lo, hi) pads, extra high-side output)`` of a padding argument.

    The forward convolution's pads are what the transposed one crops; ``"SAME"`` needs extra
    output where the effective kernel is shorter than the stride.
    """
    spatial = len(size)
    pads = _args.explicit_pads(fn, "padding", padding, spatial)
    if pads is not None:
        return pads, (0,) * spatial
    name = padding.upper()
    if name == "VALID":
        return ((0, 0),) * spatial, (0,) * spatial
    if name == "SAME":  # the pads of the forward SAME conv on an input of in * stride
        totals = [max(e - s, 0) for e, s in zip(eff, stride, strict=True)]
        pads = tuple((t // 2, t - t // 2) for t in totals)
        return pads, tuple(max(s - e, 0) for e, s in zip(eff, stride, strict=True))
    raise ValueError(
        f"{fn}: unknown padding {padding!r}; expected 'VALID', 'SAME', an int, one int per "
        "spatial axis or (lo, hi) pairs"
    )


def _conv_transpose(fn: str, spatial: int, x: Any, kernel: Any, bias: Any, *, stride: Any,
                    padding: Any, output_padding: Any, dilation: Any, groups: Any,
                    data_format: Any, algorithm: Any, precision: Any) -> jax.Array:
    """Validate (before tracing, naming ``fn``), then run the jitted core."""
    data_format = _args.check_data_format(fn, data_format, spatial)
    x = _args.as_array(fn, "x", x)
    kernel = _args.as_array(fn, "kernel", kernel)
    unbatched, xs = _args.image_rank(fn, "x", x, data_format, spatial)
    size, c_in = xs[1:-1], xs[-1]
    klayout = kernel_layout(spatial)
    if kernel.ndim != spatial + 2:
        raise ValueError(
            f"{fn}: kernel must have rank {spatial + 2} (*k, C_out // groups, C_in) in "
            f"{klayout} layout, got rank {kernel.ndim} with shape {tuple(kernel.shape)}"
        )
    _args.check_float(fn, "x", x)
    _args.check_float(fn, "kernel", kernel)
    kshape = tuple(int(d) for d in kernel.shape)
    ksize, og, kin = kshape[:-2], kshape[-2], kshape[-1]
    if not _args.is_int(groups):
        raise TypeError(f"{fn}: groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"{fn}: groups must be >= 1, got {groups}")
    if kin != c_in:
        raise ValueError(
            f"{fn}: kernel.shape[-1] must be x's channels C_in={c_in} (the kernel is the "
            f"forward convolution's, (*k, C_out // groups, C_in)), got kernel shape {kshape}"
        )
    if c_in % groups:
        raise ValueError(
            f"{fn}: groups={groups} must divide the input channels C_in={c_in} "
            f"(x.shape={tuple(x.shape)})"
        )
    if min(*ksize, og) < 1:
        raise ValueError(f"{fn}: kernel must be non-empty, got shape {kshape}")
    c_out = og * groups
    stride = _args.ntuple(fn, "stride", stride, spatial)
    dilation = _args.ntuple(fn, "dilation", dilation, spatial)
    output_padding = _args.ntuple(fn, "output_padding", output_padding, spatial, minimum=0)
    eff = tuple((k - 1) * d + 1 for k, d in zip(ksize, dilation, strict=True))
    pads, extra = _forward_pads(fn, padding, size, eff, stride)
    if isinstance(padding, str) and any(output_padding):
        raise ValueError(
            f"{fn}: output_padding must be 0 with padding={padding!r} (it sets the output "
            f"size itself), got output_padding {output_padding}"
        )
    bad = [i for i, (op, s, d) in enumerate(zip(output_padding, stride, dilation, strict=True))
           if op >= max(s, d)]
    if bad:
        raise ValueError(
            f"{fn}: output_padding must be smaller than either stride or dilation on each "
            f"axis, got output_padding {output_padding} with stride {stride} and dilation "
            f"{dilation}"
        )
    extra = tuple(e + op for e, op in zip(extra, output_padding, strict=True))
    out = tuple(
        (n - 1) * s - lo - hi + e + x_
        for n, s, (lo, hi), e, x_ in zip(size, stride, pads, eff, extra, strict=True)
    )
    if min(out) < 1:
        raise ValueError(
            f"{fn}: the output would be empty: (in - 1) * stride - padding + dilation * "
            f"(k - 1) + output_padding + 1 gives {out} for input {size}, kernel {ksize}, "
            f"stride {stride}, padding {pads}, dilation {dilation}, output_padding "
            f"{output_padding}"
        )
    if max(out) > _args.INT32_MAX:
        raise ValueError(f"{fn}: the output size {out} must fit in int32 (< 2**31)")
    if bias is not None:
        bias = _args.as_array(fn, "bias", bias)
        _args.check_float(fn, "bias", bias)
        if tuple(bias.shape) != (c_out,):
            raise ValueError(
                f"{fn}: bias must have shape ({c_out},) (one per output channel C_out = "
                f"kernel.shape[-2] * groups), got {tuple(bias.shape)}"
            )
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(
            f"{fn}: unknown algorithm {algorithm!r}; transposed convolutions serve "
            f"{', '.join(map(repr, ALGORITHMS))} (other algorithms may be added later)"
        )
    precision = canonical_precision(fn, precision)
    dtype = jnp.result_type(*(jax.dtypes.canonicalize_dtype(a.dtype) for a in (x, kernel)))
    # lax padding of the stride-dilated input: d * (k - 1) - p per side, extra at the end
    lax_pads = tuple(
        (e - 1 - lo, e - 1 - hi + x_) for e, (lo, hi), x_ in zip(eff, pads, extra, strict=True)
    )
    return _transpose_core(
        x, kernel, bias, stride=stride, pads=lax_pads, dilation=dilation, groups=groups,
        data_format=data_format, unbatched=unbatched, precision=precision,
        dtype=jnp.dtype(dtype),
    )


@functools.partial(
    jax.jit,
    static_argnames=(
        "stride", "pads", "dilation", "groups", "data_format", "unbatched", "precision", "dtype",
    ),
)
def _transpose_core(x, kernel, bias, *, stride, pads, dilation, groups, data_format, unbatched,
                    precision, dtype):
    x = to_channels_last(x.astype(dtype), data_format, unbatched)
    k = kernel.astype(dtype)
    spatial = x.ndim - 2
    *ks, og, c_in = k.shape
    # (*k, Og, G * Cg) -> (*k, Cg, G * Og): in/out swapped inside each group
    k = k.reshape(*ks, og, groups, c_in // groups)
    k = jnp.transpose(k, (*range(spatial), spatial + 2, spatial + 1, spatial))
    k = k.reshape(*ks, c_in // groups, groups * og)
    y = _polyphase(x, k, stride, dilation, pads, groups, precision)
    if bias is not None:
        y = y + bias.astype(y.dtype).reshape((1,) * (y.ndim - 1) + (-1,))
    return from_channels_last(y, data_format, unbatched)


def _phase_taps(r: int, s: int, d: int, k: int):
    """Taps ``a`` of one axis with ``a * d = r (mod s)``: ``(first, step, count, c0, d')`` or
    ``None``. Output ``q = r + s * m`` of the full transposed output reads ``x[m - c0 - j d']``
    with tap ``first + j * step``."""
    first = next((a for a in range(k) if (a * d - r) % s == 0), None)
    if first is None:
        return None
    g = math.gcd(s, d)
    step = s // g
    count = (k - 1 - first) // step + 1
    return first, step, count, (first * d - r) // s, d // g


def _polyphase(x, k, stride, dilation, pads, groups: int, precision):
    """The transposed convolution as ``prod(stride)`` stride-1 convolutions, one per output
    phase (polyphase decomposition), interleaved and cropped.

    ``k``: ``(*k, Cg_in, G * Og)`` (in/out already swapped, not flipped); ``pads``: the lax
    padding ``(e - 1 - lo, e - 1 - hi + extra)`` of the equivalent input-dilated convolution.
    Each phase ``r`` (per axis) gathers the taps with ``a * d = r (mod s)``, which are equally
    spaced: a (dilated) sub-kernel applied to the undilated input. No zero is multiplied and no
    ``lhs_dilation`` reaches XLA (see the module docstring for why that matters).
    """
    n, size = x.shape[0], x.shape[1:-1]
    spatial = len(size)
    ks = k.shape[:spatial]
    o = k.shape[-1]
    crop, out, rows, plans = [], [], [], []
    for m, s, d, kk, (plo, phi) in zip(size, stride, dilation, ks, pads, strict=True):
        e = (kk - 1) * d + 1
        lo = e - 1 - plo  # cropped from the full output's start (negative: extra zeros)
        length = (m - 1) * s + plo + phi - e + 2  # the output size
        crop.append(lo)
        out.append(length)
        # phases cover full-output rows q in [min(lo, 0), lo + length) as q = r + s * t
        start = min(lo, 0)
        t0 = start // s  # floor
        t1 = -(-(lo + length) // s)
        rows.append((t0, t1 - t0))
        plans.append([_phase_taps(r, s, d, kk) for r in range(s)])
    dn = dimension_numbers(spatial)
    phases = []
    for phase in np.ndindex(*stride):
        taps = [plans[i][r] for i, r in enumerate(phase)]
        if any(t is None for t in taps):
            phases.append(jnp.zeros((n, *(cnt for _, cnt in rows), o), x.dtype))
            continue
        sub = k[tuple(slice(f, f + (c - 1) * st + 1, st) for f, st, c, _, _ in taps)]
        sub = jnp.flip(sub, axis=tuple(range(spatial)))
        padding = []
        for (_, _, c, c0, dd), m, (t0, cnt) in zip(taps, size, rows, strict=True):
            # y[t] = sum_j x[t - c0 - j dd] sub[j] for t in [t0, t0 + cnt)
            c_last = c0 + (c - 1) * dd
            padding.append((c_last - t0, t0 + cnt - m - c0))
        phases.append(lax.conv_general_dilated(
            x, sub, window_strides=(1,) * spatial, padding=tuple(padding),
            rhs_dilation=tuple(t[4] for t in taps), dimension_numbers=dn,
            feature_group_count=groups, precision=precision,
        ))
    # (prod s, N, *T, O) -> (N, T0, s0, T1, s1, ..., O) -> (N, T0 * s0, ..., O)
    y = jnp.stack(phases).reshape(*stride, n, *(cnt for _, cnt in rows), o)
    perm = (spatial, *(a for i in range(spatial) for a in (spatial + 1 + i, i)), 2 * spatial + 1)
    y = jnp.transpose(y, perm).reshape(n, *(cnt * s for (_, cnt), s in zip(rows, stride,
                                                                          strict=True)), o)
    index = tuple(slice(lo - t0 * s, lo - t0 * s + length)
                  for lo, length, (t0, _), s in zip(crop, out, rows, stride, strict=True))
    return y[(slice(None), *index)]


_ARGS_DOC = """
    Args:
      x: {what}, shape ``(N, {axes}, C_in)`` (or ``(N, C_in, {axes})`` with
        ``data_format="{first}"``), or unbatched; the output has the same rank and layout.
      kernel: the forward convolution's kernel, {klayout} shape ``({ks}, C_out // groups,
        C_in)``: it maps ``C_out`` channels to ``C_in``, and this function applies its adjoint.
        A torch weight ``w`` of shape ``(C_in, C_out // groups, {ks})`` is
        ``w.transpose({perm})``.
      bias: optional ``(C_out,)``.
      stride: ``int`` or one per spatial axis: the forward convolution's stride (the input is
        dilated by it).
      padding: an ``int``, one per axis or ``(lo, hi)`` pairs (as PyTorch: removes
        ``dilation * (k - 1) - padding`` of the full output's border), ``"VALID"`` (0) or
        ``"SAME"`` (output = input * stride; the adjoint of the forward ``"SAME"``).
      output_padding: extra outputs on the high side of each axis (``int`` or one per axis),
        ``< max(stride, dilation)``, as in PyTorch; 0 with a named padding.
      dilation: kernel dilation, ``int`` or one per axis.
      groups: ``C_in`` and ``C_out`` split into ``groups`` independent convolutions.
      data_format: ``"{last}"`` (default) or ``"{first}"``; the kernel layout is fixed.
      algorithm: ``"auto"`` or ``"direct"`` (XLA's convolution; other algorithms may be added).
      precision: passed to ``lax.conv_general_dilated``.

    Returns:
      ``(N, {outs}, C_out)`` in ``x``'s layout, each axis
      ``out = (in - 1) * stride - (pad_lo + pad_hi) + dilation * (k - 1) + output_padding + 1``
      (PyTorch's formula, with ``pad_lo = pad_hi = padding`` for an int). The dtype is the
      promotion of ``x``'s and ``kernel``'s.
"""


def _doc(spatial: int, what: str) -> str:
    axes = {1: "W", 2: "H, W", 3: "D, H, W"}[spatial]
    ks = {1: "k", 2: "kh, kw", 3: "kd, kh, kw"}[spatial]
    outs = {1: "W_out", 2: "H_out, W_out", 3: "D_out, H_out, W_out"}[spatial]
    perm = ", ".join(str(a) for a in (*range(2, 2 + spatial), 1, 0))
    last = {1: "NWC", 2: "NHWC", 3: "NDHWC"}[spatial]
    first = {1: "NCW", 2: "NCHW", 3: "NCDHW"}[spatial]
    return _ARGS_DOC.format(what=what, axes=axes, first=first, last=last, ks=ks, outs=outs,
                            perm=perm, klayout=kernel_layout(spatial))


def conv_transpose1d(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: TransposePadding = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    data_format: str = "NWC",
    algorithm: str = "auto",
    precision: PrecisionLike = None,
) -> jax.Array:
    return _conv_transpose(
        "conv_transpose1d", 1, x, kernel, bias, stride=stride, padding=padding,
        output_padding=output_padding, dilation=dilation, groups=groups,
        data_format=data_format, algorithm=algorithm, precision=precision,
    )


def conv_transpose2d(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: TransposePadding = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    data_format: str = "NHWC",
    algorithm: str = "auto",
    precision: PrecisionLike = None,
) -> jax.Array:
    return _conv_transpose(
        "conv_transpose2d", 2, x, kernel, bias, stride=stride, padding=padding,
        output_padding=output_padding, dilation=dilation, groups=groups,
        data_format=data_format, algorithm=algorithm, precision=precision,
    )


def conv_transpose3d(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: TransposePadding = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    data_format: str = "NDHWC",
    algorithm: str = "auto",
    precision: PrecisionLike = None,
) -> jax.Array:
    return _conv_transpose(
        "conv_transpose3d", 3, x, kernel, bias, stride=stride, padding=padding,
        output_padding=output_padding, dilation=dilation, groups=groups,
        data_format=data_format, algorithm=algorithm, precision=precision,
    )


conv_transpose1d.__doc__ = """1-D transposed convolution: the adjoint of :func:`jaxconv.conv1d`.
""" + _doc(1, "signals") + """
    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> y = jnp.array([1.0, 2.0, 3.0], jnp.float32).reshape(1, 3, 1)  # NWC
      >>> k = jnp.array([1.0, 10.0], jnp.float32).reshape(2, 1, 1)  # WIO
      >>> jaxconv.conv_transpose1d(y, k, stride=2)[0, :, 0]
      Array([ 1., 10.,  2., 20.,  3., 30.], dtype=float32)
"""

conv_transpose2d.__doc__ = """2-D transposed convolution: the adjoint of :func:`jaxconv.conv2d`.

``conv_transpose2d(y, k, stride=s, padding=p)`` equals the vector-Jacobian product of
``conv2d(., k, stride=s, padding=p)`` at ``y`` (for the ``output_padding`` that makes the
shapes match).
""" + _doc(2, "images") + """
    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> y = jnp.ones((1, 2, 2, 1), jnp.float32)  # NHWC
      >>> k = jnp.ones((3, 3, 4, 1), jnp.float32)  # forward HWIO: 4 channels -> 1
      >>> jaxconv.conv_transpose2d(y, k, stride=2, padding=1, output_padding=1).shape
      (1, 4, 4, 4)
      >>> jaxconv.conv_transpose2d(y, k, stride=2, padding="SAME")[0, :, :, 0]
      Array([[1., 1., 2., 1.],
             [1., 1., 2., 1.],
             [2., 2., 4., 2.],
             [1., 1., 2., 1.]], dtype=float32)
"""

conv_transpose3d.__doc__ = """3-D transposed convolution: the adjoint of :func:`jaxconv.conv3d`.
""" + _doc(3, "volumes") + """
    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> y = jnp.ones((1, 2, 3, 4, 8))  # NDHWC, C_in = 8
      >>> k = jnp.ones((2, 2, 2, 2, 8))  # forward DHWIO: 2 channels -> 8
      >>> jaxconv.conv_transpose3d(y, k, stride=2).shape
      (1, 4, 6, 8, 2)
"""
