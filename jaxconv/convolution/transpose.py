"""Transposed convolution (``conv_transpose1d/2d/3d``): the adjoint of the forward convolution.

``conv_transpose(y, k, stride=s, padding=p)`` is the vector-Jacobian product of
``conv(., k, stride=s, padding=p)`` at ``y``: the kernel is the *forward* convolution's
(``(*k, C_out // groups, C_in)``, mapping the transposed output's space, ``C_out`` channels, to
its input's, ``C_in`` channels), used backwards. Integer ``padding`` and ``output_padding`` follow
PyTorch's ``conv_transpose*d``; a torch weight ``w`` of shape ``(C_in, C_out // g, *k)`` is
``w.permute(*spatial, 1, 0)`` here (``w.transpose(2, 3, 1, 0)`` for 2-D).

It runs as stride-1 ``lax.conv_general_dilated`` calls, one per output phase that has taps
(polyphase decomposition, :func:`_polyphase`; at most ``prod(min(k, stride))``): the taps of
phase ``r`` (``a * d = r mod s``) are equally spaced, so each phase is a (dilated) sub-kernel,
flipped, with in/out channels swapped inside each group, applied to the undilated input; the
phases are interleaved and cropped by ``padding`` (``output_padding`` adds rows at the end),
computing only the rows that reach the output, so the cost follows the input, kernel and
output sizes, never the stride alone (:func:`_axis_plan`). No zero is multiplied, and no
``lhs_dilation`` reaches XLA: with it (or with the input dilated by an interior ``lax.pad``,
which XLA folds into one), XLA:CPU's algebraic simplifier aborted the process on some shapes
(jax 0.10.2, "Window dimensions do not match RHS shape", e.g. a 1x1x3x1 input, kernel 3x2x2,
stride (3, 2, 3)). Measured on the 2-core CPU, float32, 8x32x32x64 -> 32 channels, 4x4 kernel,
stride 2: 1.8 ms, against 3.0 ms with ``lhs_dilation`` and 11.6 ms with the zeros inserted
explicitly.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
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
    # lax padding of the stride-dilated input: d * (k - 1) - p per side, extra at the end
    lax_pads = tuple(
        (e - 1 - lo, e - 1 - hi + x_) for e, (lo, hi), x_ in zip(eff, pads, extra, strict=True)
    )
    where = f"on input {size} (kernel {ksize}, padding {pads}, dilation {dilation})"
    builder = "the transposed convolution"
    _args.check_elements(fn, "stride", stride, f"{where} gives an output of",
                         (xs[0], *out, c_out), builder)
    plans = _plans(size, stride, dilation, ksize, lax_pads)
    _args.check_elements(fn, "stride", stride, f"{where} interleaves its phases in",
                         (xs[0], *(p.built for p in plans), c_out), builder)
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


class _AxisPlan(NamedTuple):
    """How one spatial axis of the transposed output is assembled from its phases.

    ``taps``: ``(residue, _phase_taps(...))`` of the phases with taps that reach the output (one
    convolution each); ``t0``, ``cnt``: the rows ``t`` of each phase computed (full-output row
    ``q = r + s * t``); ``dense``: every residue is in the output (``stride <= output``);
    ``pieces``: dense, the residues ``0 .. s - 1`` in order as runs ``(first_tap, count)`` of
    consecutive phases or ``(None, count)`` of zeros; sparse, the output rows in order as
    ``(tap, t)`` (one row of a phase) or ``(None, count)``; ``start``: where the output starts
    in the dense interleaved rows; ``length``: the output size.
    """

    taps: list
    t0: int
    cnt: int
    dense: bool
    pieces: list
    start: int
    length: int

    @property
    def built(self) -> int:
        """Rows of this axis in the largest array assembled from it: the phases stacked (each
        ``cnt`` rows), their dense interleaving (``stride * cnt``) or the output."""
        if self.dense:
            return self.cnt * sum(c for _, c in self.pieces)
        return max(self.cnt * len(self.taps), self.length)


def _axis_plan(m: int, s: int, d: int, k: int, plo: int, phi: int) -> _AxisPlan:
    """The phases one axis needs: input ``m``, stride ``s``, dilation ``d``, kernel ``k``, lax
    pads ``(plo, phi)`` of the equivalent input-dilated convolution.

    Only the rows of each phase that reach the output are computed. When the output spans many
    strides (dense) every residue gets a slot, zeros where no tap falls, interleaving is a
    reshape and the output a slice of at most twice its rows. Otherwise (the output spans at
    most about two strides) each residue meets it at most three times and most have no tap:
    the output is assembled from single rows of the phases with taps and blocks of zeros.
    Nothing grows with the stride but the output (a 1-sample input at stride 10**5 had built
    10**5 phases).
    """
    e = (k - 1) * d + 1
    lo = e - 1 - plo  # cropped from the full output's start (negative: extra zeros)
    length = (m - 1) * s + plo + phi - e + 2  # the output size
    t0 = lo // s  # floor
    cnt = -(-(lo + length) // s) - t0
    tapped = sorted({a * d % s for a in range(k)})  # at most k residues have taps
    if s * cnt <= 2 * length:
        taps = [(r, _phase_taps(r, s, d, k)) for r in tapped]
        pieces: list[tuple[int | None, int]] = []
        r = 0
        for i, (ri, _) in enumerate(taps):
            if ri > r:
                pieces.append((None, ri - r))
            if pieces and pieces[-1][0] is not None and ri == r:  # continues a run of phases
                pieces[-1] = (pieces[-1][0], pieces[-1][1] + 1)
            else:
                pieces.append((i, 1))
            r = ri + 1
        if r < s:
            pieces.append((None, s - r))
        return _AxisPlan(taps, t0, cnt, True, pieces, lo - t0 * s, length)
    # residue r meets the output rows [lo, lo + length) at lo + (r - lo) mod s + j * s
    taps = [(r, _phase_taps(r, s, d, k)) for r in tapped if (r - lo) % s < length]
    rows = sorted((q, i) for i, (r, _) in enumerate(taps)
                  for q in range(lo + (r - lo) % s, lo + length, s))
    pieces = []
    at = lo
    for q, i in rows:
        if q > at:
            pieces.append((None, q - at))
        pieces.append((i, q // s - t0))
        at = q + 1
    if at < lo + length:
        pieces.append((None, lo + length - at))
    return _AxisPlan(taps, t0, cnt, False, pieces, 0, length)


def _plans(size, stride, dilation, ksize, pads) -> list[_AxisPlan]:
    """One :func:`_axis_plan` per spatial axis (``pads``: the lax pads, one pair per axis)."""
    return [_axis_plan(m, s, d, k, plo, phi) for m, s, d, k, (plo, phi)
            in zip(size, stride, dilation, ksize, pads, strict=True)]


def _zeros_like_along(y, axis: int, count: int):
    shape = list(y.shape)
    shape[axis] = count
    return jnp.zeros(shape, y.dtype)


def _concatenate(pieces, axis: int):
    return jnp.concatenate(pieces, axis=axis) if len(pieces) > 1 else pieces[0]


def _pick_rows(y, i: int, row: int, plan: _AxisPlan):
    """A sparse axis' output: its rows (axis ``row``) taken from its phases (axis ``i``) and
    zeros, in order; the phase axis goes, the output takes the rows' place."""
    pieces = []
    for j, c in plan.pieces:
        if j is None:
            pieces.append(_zeros_like_along(lax.index_in_dim(y, 0, i, keepdims=False), row - 1, c))
        else:
            one = lax.index_in_dim(y, j, i, keepdims=False)
            pieces.append(lax.slice_in_dim(one, c, c + 1, axis=row - 1))
    return _concatenate(pieces, row - 1)


def _polyphase(x, k, stride, dilation, pads, groups: int, precision):
    """The transposed convolution as stride-1 convolutions, one per output phase with taps
    (polyphase decomposition), interleaved and cropped.

    ``k``: ``(*k, Cg_in, G * Og)`` (in/out already swapped, not flipped); ``pads``: the lax
    padding ``(e - 1 - lo, e - 1 - hi + extra)`` of the equivalent input-dilated convolution.
    Each phase ``r`` (per axis) gathers the taps with ``a * d = r (mod s)``, which are equally
    spaced: a (dilated) sub-kernel applied to the undilated input. No zero is multiplied and no
    ``lhs_dilation`` reaches XLA (see the module docstring for why that matters); which rows
    of which phases make the output is :func:`_axis_plan`'s.
    """
    n, size = x.shape[0], x.shape[1:-1]
    spatial = len(size)
    o = k.shape[-1]
    plans = _plans(size, stride, dilation, k.shape[:spatial], pads)
    if not all(p.taps for p in plans):  # no tap reaches the output on some axis
        return jnp.zeros((n, *(p.length for p in plans), o), x.dtype)
    dn = dimension_numbers(spatial)
    phases = []
    for combo in itertools.product(*(p.taps for p in plans)):
        taps = [t for _, t in combo]
        sub = k[tuple(slice(f, f + (c - 1) * st + 1, st) for f, st, c, _, _ in taps)]
        sub = jnp.flip(sub, axis=tuple(range(spatial)))
        padding, crop = [], []
        for (_, _, c, c0, dd), m, p in zip(taps, size, plans, strict=True):
            # y[t] = sum_j x[t - c0 - j dd] sub[j] for t in [t0, t0 + cnt): lax padding
            # (lo, hi); a negative side is a crop of x instead (XLA:CPU's float32 convolution
            # with negative padding read out of bounds on some shapes, jax 0.10.2)
            lo, hi = c0 + (c - 1) * dd - p.t0, p.t0 + p.cnt - m - c0
            padding.append((max(lo, 0), max(hi, 0)))
            crop.append((max(-lo, 0), m - max(-hi, 0)))
        if any(a >= b for a, b in crop):  # every row computed reads only zeros
            phases.append(jnp.zeros((n, *(p.cnt for p in plans), o), x.dtype))
            continue
        phases.append(lax.conv_general_dilated(
            x[(slice(None), *(slice(a, b) for a, b in crop))], sub,
            window_strides=(1,) * spatial, padding=tuple(padding),
            rhs_dilation=tuple(t[4] for t in taps), dimension_numbers=dn,
            feature_group_count=groups, precision=precision,
        ))
    # (P0, ..., N, T0, ..., O): one axis of phases per spatial axis
    y = jnp.stack(phases).reshape(*(len(p.taps) for p in plans), n, *(p.cnt for p in plans), o)
    for i in reversed(range(spatial)):  # sparse axes, last first: the phase axes before stay
        if not plans[i].dense:
            y = _pick_rows(y, i, y.ndim - 1 - spatial + i, plans[i])
    dense = [i for i, p in enumerate(plans) if p.dense]
    for a, i in enumerate(dense):  # every residue gets a slot: phases and runs of zeros
        pieces = plans[i].pieces
        y = _concatenate([lax.slice_in_dim(y, j, j + c, axis=a) if j is not None
                          else _zeros_like_along(y, a, c) for j, c in pieces], a)
    # (S.., N, *T, O) -> (N, T0, S0, T1, S1, ..., O) -> (N, T0 * S0, ..., O): the phases
    # interleaved, one transpose for every dense axis
    nd = len(dense)
    perm, rows = [nd], []
    for i in range(spatial):
        perm += [nd + 1 + i, dense.index(i)] if i in dense else [nd + 1 + i]
        rows.append(y.shape[nd + 1 + i] * (y.shape[dense.index(i)] if i in dense else 1))
    y = jnp.transpose(y, (*perm, nd + 1 + spatial)).reshape(n, *rows, o)
    return y[(slice(None), *(slice(p.start, p.start + p.length) if p.dense else slice(None)
                             for p in plans))]


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

    Raises:
      ValueError: bad sizes or values, naming the argument, before tracing; among them an
        output, or the phases interleaved into it (at most twice its extent per axis), of
        more than ``2**31 - 1`` elements.
      TypeError: malformed arguments, non-float dtypes.
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
