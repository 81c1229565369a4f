"""How ``algorithm="auto"`` picks an algorithm.

The choice is made in Python, at trace time, from static shapes, dtype, config and the default
backend. Until the cost model lands, every call resolves to ``"direct"``.
"""

from __future__ import annotations

from ._registry import ConvConfig


def choose_algorithm(x_shape, kernel_shape, dtype, config: ConvConfig) -> str:
    """Name of the algorithm ``auto`` uses for NHWC ``x_shape`` and HWIO ``kernel_shape``."""
    del x_shape, kernel_shape, dtype, config
    return "direct"
