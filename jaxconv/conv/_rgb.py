"""Where XLA:CPU's convolution of a 3-channel image (RGB) is slow: one rule, two algorithms.

XLA:CPU (jax 0.10's YNNPACK convolution) runs a 3-channel image 4-12x slower for some
output-channel counts than for their neighbours: on this project's 2-core CPU (AVX-512), with
17-32 and 65-80 outputs, on every kernel size, stride and image size tried. Below, between and
above those ranges the 3-channel path ran at 110-230 GFLOP/s, 1.1-1.4x faster than the same
convolution with a fourth, all-zero input channel, which takes the regular path
(``channel_padded``; ``docs/algorithms.md`` has the table).

So ``auto``'s forward rule for an RGB image through a kernel of at most 3x3, or any strided one,
is: ``channel_padded`` at the slow counts, XLA's own convolution (``direct``) at the others;
the cost model's estimates, fitted over both kinds of count, were off by 4x either way. On a
machine whose slow counts differ, ``auto`` is never slower than XLA at the others. Larger
stride-1 kernels on an RGB image are left to the model (``fft`` wins on the article's cat).
Training (:func:`xla_gradient_fast`) keeps XLA's own gradient above 32 outputs at the fast
counts; elsewhere ``mec``'s rule or the model decides (padded stems' gradients measured
1.25-1.4x slower than XLA's, so ``channel_padded`` is never a training rule).
"""

from __future__ import annotations

from ._registry import ConvConfig, Shape

#: Output-channel counts (inclusive ranges) at which XLA:CPU's 3-channel convolution was 4-12x
#: slower than the padded one; everywhere else it was faster.
SLOW_OUTPUTS = ((17, 32), (65, 80))
#: Problems with fewer multiply-adds are left to the cost model (overheads dominate).
MIN_MULTIPLY_ADDS = 10**6


def slow_xla_path(x_shape: Shape, kernel_shape: Shape, config: ConvConfig,
                  mode: str) -> bool | None:
    """``True`` where the forward rule pads an RGB image, ``False`` where it keeps XLA's path,
    ``None`` where the rule does not apply (not a 3-channel 2-D image, grouped, a 1x1 or large
    stride-1 kernel, training, or under a million multiply-adds)."""
    if mode != "forward" or len(x_shape) != 4 or x_shape[-1] != 3 or config.groups != 1:
        return None
    kh, kw = kernel_shape[:2]
    if kh * kw == 1 or (kh * kw > 9 and all(s == 1 for s in config.stride)):
        return None
    o = kernel_shape[-1]
    ho, wo = config.output_hw(x_shape[1:3], (kh, kw))
    if x_shape[0] * ho * wo * kh * kw * 3 * o < MIN_MULTIPLY_ADDS:
        return None
    return any(lo <= o <= hi for lo, hi in SLOW_OUTPUTS)


def xla_gradient_fast(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> bool:
    """Training: an RGB image (a kernel of at most 3x3 or strided, from a million multiply-adds)
    with more than 32 outputs at a count where XLA's 3-channel path is fast. There XLA's own
    gradient ran 2.2-2.8x faster than ``mec``'s and 1.3x faster than ``im2col``'s (the 224x224
    stem and VGG's first layer, both with 64 outputs); at the slow counts ``mec`` wins."""
    return (kernel_shape[-1] > 32
            and slow_xla_path(x_shape, kernel_shape, config, "forward") is False)
