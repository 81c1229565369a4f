"""``algorithm="xla_padded"``: XLA's convolution, but never with all-zero (VALID) padding.

XLA:CPU runs a convolution with any non-zero padding through a different (much faster) path
than a VALID one on many shapes: on this project's 2-core CPU, 8x64x64x32 -> 32 float32 takes
28 / 126 / 493 ms VALID against 6.7 / 26 / 85 ms with one extra zero row at the bottom
(k = 3 / 7 / 15; the gradient w.r.t. x and kernel gains 2.6-3.5x too). Few-channel problems
(the RGB cat, LeNet's first layer) gain nothing or lose ~10%, which is why this is a separate
algorithm for ``auto`` to choose rather than a change to ``"direct"``.

A VALID problem is computed with one extra zero row appended at the bottom of the (already
padded) image, and the output cropped back to ``config.output_hw``. This is exact for every
stride and dilation: output row ``i`` reads padded rows ``i*sh .. i*sh + eff_h - 1``, which for
``i < H_out`` all lie inside the original padded image, so appending rows at the end only ever
adds output rows past ``H_out`` (one at most), which the crop removes. A problem that already
has some zero padding is passed to XLA unchanged (it is on the fast path already).
"""

from __future__ import annotations

from ._registry import Algorithm, ConvConfig, Shape, not_2d_reason, register
from .direct import conv_direct, direct_cost_terms

# zero rows appended at the bottom of a VALID problem (one is enough to leave the VALID path;
# padding W instead, or both, measured the same forward and up to 20% slower for the gradient)
EXTRA_BOTTOM_ROWS = 1


def padded_config(config: ConvConfig) -> ConvConfig:
    """The configuration XLA is called with: ``config`` itself unless its padding is all zero."""
    if config.padded:
        return config
    (pt, pb), *rest = config.padding
    return config.replace(padding=((pt, pb + EXTRA_BOTTOM_ROWS), *rest))


def conv_xla_padded(x, kernel, config: ConvConfig):
    """NHWC ``x`` (N, H, W, C), HWIO ``kernel`` -> NHWC (N, H', W', O), as ``direct``."""
    run = padded_config(config)
    y = conv_direct(x, kernel, run)
    if run is config:
        return y
    ho, wo = config.output_hw(x.shape[1:3], kernel.shape[:2])
    return y[:, :ho, :wo, :]


def xla_padded_cost_terms(x_shape: Shape, kernel_shape: Shape,
                          config: ConvConfig) -> dict[str, float]:
    """Direct's padded-path terms, counted on the configuration XLA actually runs (the extra
    output row included), plus a per-(output point, kernel tap) term whatever C: what
    few-channel problems (the RGB cat, LeNet's first layer) pay on this path."""
    terms = direct_cost_terms(x_shape, kernel_shape, padded_config(config))
    return {
        "call": 1.0,
        "flop": terms["flop_padded"] + terms["flop_strided"] + terms["flop_grouped"],
        "patch": terms["patch_padded"] + terms["patch_strided"] + terms["patch_grouped"],
        "tap": ((terms["patch_padded"] + terms["patch_strided"] + terms["patch_grouped"])
                / x_shape[-1] if x_shape[-1] else 0.0),
        "byte": terms["byte"],
    }


def check(x_shape: Shape, kernel_shape: Shape, dtype, config: ConvConfig) -> str | None:
    """Why xla_padded cannot serve: a 1-D or 3-D problem, or one that already has zero padding
    (what ``direct`` runs exactly)."""
    if config.padded:
        return "xla_padded serves VALID problems (with zero padding it would run exactly direct)"
    return not_2d_reason("xla_padded", x_shape)


XLA_PADDED = register(
    Algorithm(
        name="xla_padded",
        fn=conv_xla_padded,
        serves=(
            "VALID 2-D problems (XLA's convolution with one extra zero row at the bottom, "
            "cropped from the output, which takes XLA:CPU's faster padded path)"
        ),
        check=check,
        cost_terms=xla_padded_cost_terms,
    )
)
