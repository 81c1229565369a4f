"""``algorithm="depth_direct"`` / ``"depth_mec"``: a 3-D convolution as one 2-D convolution.

The ``kd`` depth taps of the kernel move onto the channel axis: for each tap ``a`` the input's
depth slices that tap reads (``x[:, a * dd + s * t]`` for output depth ``t``, stride ``s``,
dilation ``dd``) are stacked beside the channels, the output depths are folded into the batch,
and what is left is a 2-D convolution

    (N * D_out, H, W, kd * C)  *  (kh, kw, kd * C / groups, O)  ->  (N * D_out, H_out, W_out, O)

run by a 2-D algorithm: ``direct`` (XLA's 2-D convolution) for ``depth_direct``, ``mec`` for
``depth_mec``. The channels are ordered group-major, ``(group, tap, channel)``, so grouped
convolutions stay grouped. It costs one copy of the input ``kd`` times over, and buys XLA:CPU's
2-D convolution emitter (or a GEMM) instead of its 3-D one, which ran small volumes 1.4-27x
slower than the better of the two: a 4x32³x4 3x3x3 volume took 128 ms through XLA's 3-D
convolution, 4.6-14 ms lowered, and torch 5.5 ms (the table in ``docs/algorithms.md``).

Serves: every 3-D problem the inner algorithm serves in 2-D (both serve every one: any stride,
dilation, zero padding, ``groups``, dtype). The results are the same sums in another order
(``error="elementwise"``). Gradients are those of the inner algorithm through the stacking
(the transpose of a stack of slices is a sum of padded slices).

Estimates: each is its inner algorithm's estimate on the 2-D problem it runs
(``Algorithm.reduces_to``), with no constants of its own; the stacking copy is not priced. On
the fit grid's ten volumes that picked ``depth_mec`` every time, within 1.06x of the faster of
the two forward on geometric mean (1.7x at worst, a 2x32³x16 volume where ``mec``'s 2-D estimate
ran low) and 1.26x in training, where ``depth_direct`` was faster (``direct``'s 2-D estimate
runs 1.5-2.5x high on these few-channel problems). Terms of their own (flops and stacked
bytes, fitted on those ten volumes) did no better and moved the fitted hedge (see
``docs/algorithms.md``).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from ._registry import Algorithm, ConvConfig, Shape, reduction, register
from .direct import conv_direct
from .mec import conv_mec


def _check(name: str):
    def check(x_shape: Shape, kernel_shape: Shape, dtype, config: ConvConfig) -> str | None:
        del kernel_shape, dtype, config
        spatial = len(x_shape) - 2
        if spatial != 3:
            return f"{name} serves 3-D convolutions (got {spatial} spatial dims)"
        return None

    check.__doc__ = f"Why {name} cannot serve these arguments (``None``: every 3-D problem)."
    return check


def lowered_problem(x_shape: Shape, kernel_shape: Shape,
                    config: ConvConfig) -> tuple[Shape, Shape, ConvConfig]:
    """The shapes and config of the 2-D problem :func:`lower` makes of a 3-D one."""
    n, d, h, w, c = x_shape
    kd, kh, kw, cg, o = kernel_shape
    (sd, *s_hw), (dd, *d_hw) = config.stride, config.dilation
    (lo, hi), *p_hw = config.padding
    do = (d + lo + hi - (kd - 1) * dd - 1) // sd + 1
    config2 = ConvConfig(stride=tuple(s_hw), padding=tuple(p_hw), dilation=tuple(d_hw),
                         groups=config.groups, precision=config.precision)
    return (n * do, h, w, kd * c), (kh, kw, kd * cg, o), config2


def lower(x, kernel, config: ConvConfig):
    """``(x2, kernel2, config2, (N, D_out))``: the 2-D convolution that computes the 3-D one.

    ``x`` is NDHWC, ``kernel`` DHWIO, ``config`` 3-D with zero padding. The result of the 2-D
    convolution, ``(N * D_out, H_out, W_out, O)``, reshapes to NDHWC.
    """
    n, _, h, w, c = x.shape
    kd, g = kernel.shape[0], config.groups
    x2_shape, kernel2_shape, config2 = lowered_problem(x.shape, kernel.shape, config)
    do = config.output_hw(x.shape[1:-1], kernel.shape[:-2])[0]
    sd, dd, (lo, hi) = config.stride[0], config.dilation[0], config.padding[0]
    xp = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (lo, hi, 0), (0, 0, 0), (0, 0, 0),
                                             (0, 0, 0)))
    taps = [lax.slice_in_dim(xp, a * dd, a * dd + sd * (do - 1) + 1, sd, axis=1)
            for a in range(kd)]  # kd x (N, D_out, H, W, C)
    # channels group-major: (group, tap, channel within the group)
    stacked = jnp.stack(taps, axis=-2).reshape(n, do, h, w, kd, g, c // g)
    x2 = jnp.swapaxes(stacked, -3, -2).reshape(x2_shape)
    kernel2 = jnp.transpose(kernel, (1, 2, 0, 3, 4)).reshape(kernel2_shape)
    return x2, kernel2, config2, (n, do)


def _depth_lowered(inner):
    def conv(x, kernel, config: ConvConfig):
        x2, kernel2, config2, (n, do) = lower(x, kernel, config)
        y = inner(x2, kernel2, config2)
        return y.reshape(n, do, *y.shape[1:])

    conv.__doc__ = (f"NDHWC ``x``, DHWIO ``kernel`` -> NDHWC: the depth taps stacked on the "
                    f"channels, then :func:`{inner.__module__}.{inner.__name__}` in 2-D.")
    return conv


conv_depth_direct = _depth_lowered(conv_direct)
conv_depth_mec = _depth_lowered(conv_mec)


DEPTH_DIRECT, DEPTH_MEC = (
    register(Algorithm(
        name=name, fn=fn, check=_check(name), reduces_to=reduction(inner, lowered_problem),
        serves=(f"3-D: the depth taps stacked on the channels, then {title} 2-D convolution "
                "(any stride, dilation, padding and groups)"),
    ))
    for name, fn, inner, title in (("depth_direct", conv_depth_direct, "direct", "XLA's"),
                                   ("depth_mec", conv_depth_mec, "mec", "mec's"))
)
