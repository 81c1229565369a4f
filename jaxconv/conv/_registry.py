"""The algorithm registry that ``conv2d(..., algorithm=...)`` dispatches through.

Every algorithm is a function with one signature,

    fn(x, kernel, config) -> y

where ``x`` is batched **NHWC** ``(N, H, W, C)``, ``kernel`` is **HWIO** ``(kh, kw, C // groups, O)``
of the same dtype, ``config`` is a :class:`ConvConfig` whose padding is *zero* padding (``conv2d``
applies reflect / replicate / circular padding before dispatch) and ``y`` is NHWC
``(N, H_out, W_out, O)``. Bias, layout and unbatched inputs are handled by ``conv2d`` itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

Pair = tuple[int, int]
Pads = tuple[tuple[int, int], tuple[int, int]]


@dataclasses.dataclass(frozen=True)
class ConvConfig:
    """Static, hashable convolution configuration (after canonicalization)."""

    stride: Pair = (1, 1)
    padding: Pads = ((0, 0), (0, 0))
    dilation: Pair = (1, 1)
    groups: int = 1
    precision: Any = None

    def effective_kernel(self, kernel_hw: Pair) -> Pair:
        """Spatial extent of the dilated kernel: ``(k - 1) * d + 1``."""
        return tuple((k - 1) * d + 1 for k, d in zip(kernel_hw, self.dilation, strict=True))

    def output_hw(self, input_hw: Pair, kernel_hw: Pair) -> Pair:
        """``floor((H + pad - ((kh - 1) * dh + 1)) / sh) + 1`` per spatial axis."""
        eff = self.effective_kernel(kernel_hw)
        return tuple(
            (n + lo + hi - e) // s + 1
            for n, (lo, hi), e, s in zip(input_hw, self.padding, eff, self.stride, strict=True)
        )


ConvFn = Callable[[Any, Any, ConvConfig], Any]
# ``check(x_shape, kernel_shape, dtype, config) -> None | str``: the reason it cannot serve.
CheckFn = Callable[[tuple, tuple, Any, ConvConfig], "str | None"]


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """A registered convolution algorithm."""

    name: str
    fn: ConvFn
    serves: str
    check: CheckFn = lambda x_shape, kernel_shape, dtype, config: None

    def unsupported_reason(self, x_shape, kernel_shape, dtype, config: ConvConfig) -> str | None:
        return self.check(tuple(x_shape), tuple(kernel_shape), dtype, config)


_REGISTRY: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    """Add (or replace) an algorithm under ``algorithm.name``."""
    if algorithm.name == "auto":
        raise ValueError("register: 'auto' is reserved for the selector")
    _REGISTRY[algorithm.name] = algorithm
    return algorithm


def get(name: str) -> Algorithm:
    return _REGISTRY[name]


def names() -> tuple[str, ...]:
    """Registered algorithm names, in registration order."""
    return tuple(_REGISTRY)


def algorithms() -> tuple[Algorithm, ...]:
    return tuple(_REGISTRY.values())


def applicable(x_shape, kernel_shape, dtype, config: ConvConfig) -> tuple[str, ...]:
    """Names of the algorithms that can serve these (NHWC, HWIO) shapes and config."""
    return tuple(
        a.name
        for a in _REGISTRY.values()
        if a.unsupported_reason(x_shape, kernel_shape, dtype, config) is None
    )
