"""``algorithm="subgrid_winograd"`` / ``"subgrid_winograd4"``: a dilated convolution as an
undilated one on the input's sub-grids, run by Winograd.

With dilation ``(dh, dw)`` and stride 1, output row ``p = dh * p' + a`` reads only the input
rows ``dh * (p' + i) + a`` (the taps ``i``), all of them on the sub-grid of rows ``≡ a (mod
dh)``; likewise for columns. So the zero-padded input, cut into its ``dh * dw`` interleaved
sub-grids (stacked on the batch axis), convolved with the *undilated* kernel (VALID, stride 1),
gives the ``dh * dw`` interleaved sub-grids of the output:

    (N, Hp, Wp, C)  ->  (dh * dw * N, Hp / dh, Wp / dw, C)  *  kernel  ->  interleave, crop

(``Hp``, ``Wp`` rounded up to multiples of the dilation with zeros; the extra outputs they make
are cropped.) No flop is added; the rearrangement is two copies, of the input and of the output.
What it buys is the undilated 3x3 problem, which Winograd's F(2x2, 3x3) and F(4x4, 3x3) serve
(2.25x and 4x fewer multiplies than the direct sum) and XLA:CPU's dilated convolution does not:
on the project's 2-core CPU, dilated 3x3 layers with 64-128 channels ran 1.2-1.9x faster than
XLA's convolution and than ``mec`` this way, and layers with a few dozen channels about as
fast as the better of those two (the measured table is in ``docs/algorithms.md``).

Serves: 2-D, stride 1, a dilation above 1 on some axis, and whatever the inner algorithm serves
on the sub-grid problem (3x3 kernels; any zero padding and ``groups``). Error and tolerance are
the inner algorithm's. Gradients are autodiff's through the rearrangement (slices, pads and
transposes) and the inner algorithm's own.

Estimates: each is its inner algorithm's estimate on the sub-grid problem
(``Algorithm.reduces_to``, as for the depth algorithms); the two copies are not priced.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._registry import Algorithm, ConvConfig, Shape, get, not_2d_reason, reduction, register
from .direct import zero_result


def subgrid_problem(x_shape: Shape, kernel_shape: Shape,
                    config: ConvConfig) -> tuple[Shape, Shape, ConvConfig]:
    """The shapes and config of the undilated problem :func:`conv_subgrid` runs."""
    n, h, w, c = x_shape
    (dh, dw), ((top, bottom), (left, right)) = config.dilation, config.padding
    rows, cols = -(-(h + top + bottom) // dh), -(-(w + left + right) // dw)
    return ((dh * dw * n, rows, cols, c), tuple(kernel_shape),
            ConvConfig(groups=config.groups, precision=config.precision))


def conv_subgrid(x, kernel, config: ConvConfig, *, inner: str):
    """NHWC ``x``, HWIO ``kernel``, ``config`` dilated at stride 1 -> NHWC: the sub-grids of the
    padded input stacked on the batch, then algorithm ``inner`` undilated, then interleaved."""
    n, h, w, c = x.shape
    kh, kw, _, o = kernel.shape
    ho, wo = config.output_hw((h, w), (kh, kw))
    if x.size == 0 or ho <= 0 or wo <= 0:
        return zero_result(x, kernel, config)
    dh, dw = config.dilation
    xs_shape, _, config2 = subgrid_problem(x.shape, kernel.shape, config)
    rows, cols = xs_shape[1:3]
    (top, _), (left, _) = config.padding  # the bottom / right pads reach the rounded-up size
    xp = jnp.pad(x, ((0, 0), (top, rows * dh - h - top), (left, cols * dw - w - left), (0, 0)))
    # (N, rows, dh, cols, dw, C) -> sub-grid (a, b) major: (dh, dw, N, rows, cols, C)
    xs = xp.reshape(n, rows, dh, cols, dw, c).transpose(2, 4, 0, 1, 3, 5).reshape(xs_shape)
    y = get(inner).fn(xs, kernel, config2)  # (dh * dw * N, rows - kh + 1, cols - kw + 1, O)
    hq, wq = y.shape[1:3]
    y = y.reshape(dh, dw, n, hq, wq, o).transpose(2, 3, 0, 4, 1, 5).reshape(n, hq * dh, wq * dw, o)
    return y[:, :ho, :wo]


def _check(name: str, inner: str):
    def check(x_shape: Shape, kernel_shape: Shape, dtype, config: ConvConfig) -> str | None:
        reason = not_2d_reason(name, x_shape)
        if reason:
            return reason
        if any(s != 1 for s in config.stride):
            return f"{name} serves stride 1 (got stride {config.stride})"
        if all(d == 1 for d in config.dilation):
            return f"{name} serves dilated convolutions (dilation {config.dilation}: that is {inner})"
        xs_shape, ks_shape, config2 = subgrid_problem(x_shape, kernel_shape, config)
        why = get(inner).unsupported_reason(xs_shape, ks_shape, dtype, config2)
        return None if why is None else f"{name}, on the sub-grids: {why}"

    check.__doc__ = f"Why {name} cannot serve these arguments, or ``None`` when it can."
    return check


def _conv(inner: str):
    def conv(x, kernel, config: ConvConfig):
        return conv_subgrid(x, kernel, config, inner=inner)

    conv.__doc__ = f"``conv_subgrid(..., inner={inner!r})``."
    return conv


SUBGRID_WINOGRAD, SUBGRID_WINOGRAD4 = (
    register(Algorithm(
        name=name, fn=_conv(inner), check=_check(name, inner),
        reduces_to=reduction(inner, subgrid_problem),
        error=get(inner).error, tolerance=get(inner).tolerance,
        serves=(f"3x3 kernels with dilation, stride 1, any padding and groups: the input's "
                f"sub-grids stacked on the batch, then {inner} undilated"),
    ))
    for name, inner in (("subgrid_winograd", "winograd"), ("subgrid_winograd4", "winograd4"))
)
