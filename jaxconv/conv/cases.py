"""The benchmark problems, defined once: used by ``nox -s bench``, ``jaxconv autotune --case``
and ``benchmarks/fit_cost_model.py``.

Images are NHWC, kernels HWIO, float32. ``article`` is the cat of the article through kernels of
growing size; ``layer`` a mid-network layer; ``lenet`` LeNet-5's two convolutions (VALID,
stride 1, as in the article); ``cnn`` the layers people actually run (SAME padding, strides,
pointwise, depthwise, dilation); ``signal`` a long 1-D convolution, where FFT wins by far.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax

from ._canonical import Canonical, canonicalize


@dataclasses.dataclass(frozen=True)
class Problem:
    """One convolution: shapes and the keyword arguments of ``conv2d``."""

    label: str  # "3" (kernel size), "C1" (LeNet layer), "3x3 SAME 64" ...
    x_shape: tuple[int, ...]  # NHWC, or NWC for a signal
    kernel_shape: tuple[int, ...]  # HWIO, or WIO
    stride: int = 1
    padding: Any = "VALID"
    dilation: int = 1
    groups: int = 1

    @property
    def k(self) -> int:
        return self.kernel_shape[0]

    def conv_kwargs(self) -> dict[str, Any]:
        """``stride``, ``padding``, ``dilation``, ``groups`` for ``conv2d``."""
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)

    @property
    def valid(self) -> bool:
        """VALID, stride 1, dilation 1, no groups: the article's kind of convolution."""
        return (self.padding == "VALID" and self.stride == 1 and self.dilation == 1
                and self.groups == 1)

    @property
    def spatial(self) -> int:
        """Number of spatial axes (2 for images, 1 for signals)."""
        return len(self.x_shape) - 2

    def canonical(self) -> Canonical:
        """The problem as the algorithms see it: batched channels-last shapes, float32, and the
        canonical config (explicit zero padding)."""
        specs = [jax.ShapeDtypeStruct(s, "float32") for s in (self.x_shape, self.kernel_shape)]
        *_, canon = canonicalize(f"problem {self.label!r}", *specs, spatial=self.spatial,
                                 **self.conv_kwargs())
        return canon

    def flops(self) -> int:
        """``2 * N * Ho * Wo * O * kh * kw * C / groups`` (multiply-adds of the direct sum, x2)."""
        canon = self.canonical()
        n, *_, c = self.x_shape
        ksize, o = self.kernel_shape[:-2], self.kernel_shape[-1]
        out = canon.config.output_hw(self.x_shape[1:-1], ksize)
        return 2 * n * math.prod(out) * o * math.prod(ksize) * c // self.groups


@dataclasses.dataclass(frozen=True)
class Case:
    """A named set of problems, with the subset ``--quick`` runs and the smoke test's sizes."""

    name: str
    title: str
    problems: tuple[Problem, ...]
    quick: tuple[str, ...]  # labels of the problems a quick sweep keeps
    tiny: tuple[Problem, ...]  # every code path, milliseconds each


def _kernel_sweep(x_shape: tuple[int, int, int, int], out: int,
                  ks: tuple[int, ...]) -> tuple[Problem, ...]:
    return tuple(Problem(str(k), x_shape, (k, k, x_shape[3], out)) for k in ks)


def _lenet(x1: tuple[int, int, int, int], x3: tuple[int, int, int, int]) -> tuple[Problem, ...]:
    return (Problem("C1", x1, (5, 5, 1, 6)), Problem("C3", x3, (5, 5, 6, 16)))


CASES: dict[str, Case] = {
    "article": Case(
        "article", "the cat 1x320x400x3 → 3 channels, k x k kernels, VALID",
        _kernel_sweep((1, 320, 400, 3), 3, (1, 3, 5, 7, 10, 15, 21, 31)),
        quick=("3", "15"), tiny=_kernel_sweep((1, 24, 30, 3), 3, (3,)),
    ),
    "layer": Case(
        "layer", "a layer 8x64x64x32 → 32 channels, k x k kernels, VALID",
        _kernel_sweep((8, 64, 64, 32), 32, (1, 3, 5, 7, 11, 15)),
        quick=("3",), tiny=_kernel_sweep((2, 10, 10, 4), 4, (3,)),
    ),
    "lenet": Case(
        "lenet", "LeNet-5's convolutions, 5x5 VALID, batch 256",
        _lenet((256, 32, 32, 1), (256, 14, 14, 6)),
        quick=("C1", "C3"), tiny=_lenet((4, 12, 12, 1), (4, 8, 8, 6)),
    ),
    "cnn": Case(
        "cnn", "the layers of modern CNNs: SAME padding, strides, pointwise, depthwise, dilation",
        (
            Problem("3x3 64", (8, 32, 32, 64), (3, 3, 64, 64), padding="SAME"),
            Problem("3x3 128", (8, 16, 16, 128), (3, 3, 128, 128), padding="SAME"),
            Problem("1x1 64→128", (8, 32, 32, 64), (1, 1, 64, 128), padding="SAME"),
            Problem("dw3x3 96", (8, 32, 32, 96), (3, 3, 1, 96), padding="SAME", groups=96),
            Problem("5x5 64", (8, 32, 32, 64), (5, 5, 64, 64), padding="SAME"),
            Problem("3x3/2 32→64", (8, 64, 64, 32), (3, 3, 32, 64), stride=2, padding="SAME"),
            Problem("stem 7x7/2", (8, 128, 128, 3), (7, 7, 3, 32), stride=2, padding=3),
            Problem("3x3 d2 64", (8, 32, 32, 64), (3, 3, 64, 64), padding="SAME", dilation=2),
        ),
        quick=("3x3 64", "1x1 64→128", "dw3x3 96", "3x3/2 32→64"),
        tiny=(
            Problem("3x3 8", (2, 8, 8, 8), (3, 3, 8, 8), padding="SAME"),
            Problem("dw3x3 8", (2, 8, 8, 8), (3, 3, 1, 8), padding="SAME", groups=8),
        ),
    ),
}


CASES["signal"] = Case(
    "signal", "a 1-D signal 1x65536x1 through a 4097-tap kernel, VALID (conv1d)",
    (Problem("4097", (1, 65536, 1), (4097, 1, 1)),),
    quick=("4097",), tiny=(Problem("33", (1, 512, 1), (33, 1, 1)),),
)


def problems(case: str) -> tuple[Problem, ...]:
    """The full-size problems of ``case``."""
    return CASES[case].problems
