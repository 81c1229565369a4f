"""Convolution: ``conv2d`` and the algorithm registry it dispatches through."""

from . import direct as _direct  # noqa: F401  (registers "direct")
from ._conv2d import conv2d
from ._registry import Algorithm, ConvConfig, algorithms, applicable, register

__all__ = ["Algorithm", "ConvConfig", "algorithms", "applicable", "conv2d", "register"]
