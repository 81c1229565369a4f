"""The benchmark problems, defined once: used by ``nox -s bench``, ``jaxconv autotune --case``
and ``benchmarks/fit_cost_model.py``.

Images are NHWC, kernels HWIO, float32. ``article`` is the cat of the article through kernels of
growing size; ``layer`` a mid-network layer; ``lenet`` LeNet-5's two convolutions (VALID,
stride 1, as in the article); ``cnn`` the layers people actually run (SAME padding, strides,
pointwise, depthwise, dilation); ``signal`` a long 1-D convolution, where FFT wins by far.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any

import jax
import numpy as np

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


CASES["networks"] = Case(
    "networks", "layers of ResNet-50, MobileNetV2 and VGG, a 224x224 stem, a 5x5 layer",
    (
        Problem("r50 3x3 64", (8, 56, 56, 64), (3, 3, 64, 64), padding="SAME"),
        Problem("r50 3x3 128", (8, 28, 28, 128), (3, 3, 128, 128), padding="SAME"),
        Problem("r50 3x3 256", (4, 14, 14, 256), (3, 3, 256, 256), padding="SAME"),
        Problem("r50 1x1 64→256", (8, 56, 56, 64), (1, 1, 64, 256), padding="SAME"),
        Problem("r50 1x1/2 256→512", (8, 56, 56, 256), (1, 1, 256, 512), stride=2),
        Problem("mbv2 dw3x3 144", (8, 56, 56, 144), (3, 3, 1, 144), padding="SAME", groups=144),
        Problem("mbv2 dw3x3/2 96", (8, 112, 112, 96), (3, 3, 1, 96), stride=2, padding="SAME",
                groups=96),
        Problem("stem 7x7/2 224", (2, 224, 224, 3), (7, 7, 3, 64), stride=2, padding=3),
        Problem("vgg 3x3 3→64", (4, 112, 112, 3), (3, 3, 3, 64), padding="SAME"),
        Problem("5x5 32→32", (8, 32, 32, 32), (5, 5, 32, 32), padding=2),
    ),
    quick=("r50 3x3 128", "r50 1x1 64→256"),
    tiny=(Problem("1x1/2 8→16", (2, 8, 8, 8), (1, 1, 8, 16), stride=2),),
)

# A few small images with many channels, where the kernel weighs as much as the activations
# (ResNet-50's last stage, batch-1 inference, a 4x4 map).
CASES["deep"] = Case(
    "deep", "small images with many channels (ResNet-50's last stage, batch 1, a 4x4 map)",
    (
        Problem("r50 3x3 512", (4, 7, 7, 512), (3, 3, 512, 512), padding="SAME"),
        Problem("8x8 256", (8, 8, 8, 256), (3, 3, 256, 256), padding="SAME"),
        Problem("14x14 256 b1", (1, 14, 14, 256), (3, 3, 256, 256), padding="SAME"),
        Problem("4x4 256 b16", (16, 4, 4, 256), (3, 3, 256, 256), padding="SAME"),
        Problem("28x28 128 b1", (1, 28, 28, 128), (3, 3, 128, 128), padding="SAME"),
        Problem("12x12 192→320", (4, 12, 12, 192), (3, 3, 192, 320), padding="SAME"),
        Problem("5x5 10x10 128", (4, 10, 10, 128), (5, 5, 128, 128), padding="SAME"),
    ),
    quick=("8x8 256",),
    tiny=(Problem("4x4 32", (2, 4, 4, 32), (3, 3, 32, 32), padding="SAME"),),
)

CASES["signal"] = Case(
    "signal", "a 1-D signal 1x65536x1 through a 4097-tap kernel, VALID (conv1d)",
    (Problem("4097", (1, 65536, 1), (4097, 1, 1)),),
    quick=("4097",), tiny=(Problem("33", (1, 512, 1), (33, 1, 1)),),
)


def problems(case: str) -> tuple[Problem, ...]:
    """The full-size problems of ``case``."""
    return CASES[case].problems


# ----------------------------------------------------------------------------- sampled problems
#
# The distribution ``auto`` is fitted and judged on: the convolutions people run, by family.
# ``benchmarks/fit_cost_model.py`` fits on draws of the "fit" split, ``benchmarks/heldout.py``
# judges on draws of the "heldout" split; a problem's split is a hash of the problem itself, so
# the two can never share one, whatever the seeds.

#: family -> one line of what it draws (the ranges ``sample`` uses).
FAMILIES: dict[str, str] = {
    "cnn": "CNN layers: batch 1-32, square images 7-56, 16-256 channels in, out equal, doubled or "
           "halved; 3x3 (most), 5x5, 7x7, 1x7, 7x1, 3x1; stride 1 or 2; dilation 1 or 2; SAME",
    "depthwise": "depthwise layers: batch 1-16, images 14-112, 32-384 channels, 3x3 to 7x7, "
                 "stride 1 or 2, SAME",
    "pointwise": "pointwise layers: 1x1, batch 1-32, images 7-56, 32-512 channels in, 32-256 out, "
                 "stride 1 or 2",
    "stem": "RGB stems: batch 1-8, 3 channels, images 64-224, 3x3 to 7x7 stride 2, 16-64 outputs",
    "filter": "image filtering: one 256x256 to 480x640 image, 1 channel or 3 filtered per "
              "channel (groups == C), square kernels 5 to 41, SAME",
    "article": "the article: the 1x320x400x3 cat, VALID, kernels 3 to 31, 1 to 8 outputs",
    "signal": "1-D signals: batch 1-16, length 4096-65536, 1-32 channels, 3 to 2049 taps, "
              "stride 1 or 2",
    "volume": "small 3-D volumes: batch 1-4, 16^3-32^3, 4-16 channels, 3x3x3, SAME",
}
#: Problems outside this many flops (of the direct sum) are redrawn.
FLOP_RANGE = (2e6, 1.5e9)
SPLITS = ("fit", "heldout")


def _key(problem: Problem) -> tuple:
    return (problem.x_shape, problem.kernel_shape, problem.stride, problem.padding,
            problem.dilation, problem.groups)


def split_of(problem: Problem) -> str:
    """``"heldout"`` for about a third of all problems, ``"fit"`` for the rest: a hash of the
    shapes and configuration, so the split does not depend on how a problem was drawn. The
    named benchmark problems (which the fit times) are always ``"fit"``."""
    if _key(problem) in {_key(p) for case in CASES.values() for p in case.problems}:
        return "fit"
    return "heldout" if int(hashlib.sha256(repr(_key(problem)).encode()).hexdigest(), 16) % 3 == 0 else "fit"


def _draw(family: str, rng: np.random.Generator) -> Problem:
    pick = lambda *v: v[int(rng.integers(len(v)))]  # noqa: E731
    if family == "cnn":
        n, hw = pick(1, 2, 4, 8, 16, 32), int(rng.integers(7, 57))
        c = pick(16, 24, 32, 48, 64, 96, 128, 192, 256)
        o = max(16, min(256, pick(c, c, 2 * c, c // 2)))
        kh, kw = pick((3, 3), (3, 3), (3, 3), (3, 3), (5, 5), (7, 7), (1, 7), (7, 1), (3, 1))
        stride = pick(1, 1, 2)
        dilation = pick(1, 1, 1, 2) if stride == 1 else 1
        return Problem(f"cnn {kh}x{kw}/{stride} d{dilation} {c}->{o}", (n, hw, hw, c),
                       (kh, kw, c, o), stride=stride, padding="SAME", dilation=dilation)
    if family == "depthwise":
        n, hw, c = pick(1, 2, 4, 8, 16), int(rng.integers(14, 113)), int(rng.integers(4, 49)) * 8
        k, stride = pick(3, 3, 5, 7), pick(1, 1, 2)
        return Problem(f"dw {k}x{k}/{stride} {c}", (n, hw, hw, c), (k, k, 1, c), stride=stride,
                       padding="SAME", groups=c)
    if family == "pointwise":
        n, hw = pick(1, 2, 4, 8, 16, 32), int(rng.integers(7, 57))
        c, o = int(rng.integers(4, 65)) * 8, int(rng.integers(4, 33)) * 8
        stride = pick(1, 1, 2)
        return Problem(f"1x1/{stride} {c}->{o}", (n, hw, hw, c), (1, 1, c, o), stride=stride)
    if family == "stem":
        n, hw, k, o = pick(1, 2, 4, 8), int(rng.integers(64, 225)), pick(3, 5, 7), pick(
            16, 24, 32, 48, 64)
        return Problem(f"stem {k}x{k}/2 {o}", (n, hw, hw, 3), (k, k, 3, o), stride=2,
                       padding=k // 2)
    if family == "filter":
        h, w = pick((256, 256), (320, 400), (384, 384), (480, 640), (300, 300))
        c, k = pick(1, 3), int(rng.integers(2, 21)) * 2 + 1
        return Problem(f"filter {k}x{k} C{c}", (1, h, w, c), (k, k, 1, c), padding="SAME",
                       groups=c)
    if family == "article":
        k, o = int(rng.integers(3, 32)), int(rng.integers(1, 9))
        return Problem(f"article {k} ->{o}", (1, 320, 400, 3), (k, k, 3, o))
    if family == "signal":
        n, length = pick(1, 2, 4, 8, 16), int(2 ** rng.uniform(12, 16))
        c = pick(1, 1, 2, 4, 8, 16, 32)
        taps = int(2 ** rng.uniform(np.log2(3), 11)) | 1
        stride = pick(1, 1, 2)
        return Problem(f"signal {taps}/{stride} C{c}", (n, length, c), (taps, c, c),
                       stride=stride, padding=pick("VALID", "SAME"))
    if family == "volume":
        n, s, c = pick(1, 2, 4), pick(16, 20, 24, 32), pick(4, 8, 16)
        return Problem(f"volume {s}^3 {c}", (n, s, s, s, c), (3, 3, 3, c, c), padding="SAME")
    raise ValueError(f"sample: unknown family {family!r}; expected one of {sorted(FAMILIES)}")


def sample(n: int, *, seed: int, split: str = "heldout",
           families: tuple[str, ...] | None = None) -> list[Problem]:
    """``n`` problems drawn from :data:`FAMILIES` (round-robin over the families) in ``split``.

    Deterministic in ``seed``; every problem lies in :data:`FLOP_RANGE` and belongs to
    ``split`` (:func:`split_of`), so the fitted and held-out sets are disjoint. Labels start
    with the family's name.
    """
    if split not in SPLITS:
        raise ValueError(f"sample: split must be one of {SPLITS}, got {split!r}")
    families = tuple(FAMILIES) if families is None else tuple(families)
    rng = np.random.default_rng(seed)
    out: list[Problem] = []
    while len(out) < n:
        family = families[len(out) % len(families)]
        p = _draw(family, rng)
        if (split_of(p) == split and FLOP_RANGE[0] <= p.flops() <= FLOP_RANGE[1]
                and _key(p) not in {_key(q) for q in out}):
            out.append(dataclasses.replace(p, label=p.label if p.label.startswith(family)
                                           else f"{family} {p.label}"))
    return out


def family(problem: Problem) -> str:
    """The family a sampled problem was drawn from (the first word of its label)."""
    return problem.label.split()[0] if problem.label.split()[0] in FAMILIES else problem.label
