"""Convolution: ``conv2d`` and the algorithm registry it dispatches through."""

from . import direct as _direct  # noqa: F401  (registers "direct")
from . import fft as _fft  # noqa: F401  (registers "fft")
from . import im2col as _im2col  # noqa: F401  (registers "im2col")
from . import winograd as _winograd  # noqa: F401  (registers "winograd")
from . import xla_padded as _xla_padded  # noqa: F401  (registers "xla_padded")

# isort: split
# The special-case algorithms register after the general ones (registration order is the order
# of jaxconv.algorithms() and of the "Algorithms that can" lists).
from . import depthwise as _depthwise  # noqa: F401  (registers "depthwise")
from . import pointwise as _pointwise  # noqa: F401  (registers "pointwise")
from ._conv2d import conv2d
from ._registry import Algorithm, ConvConfig, algorithms, applicable, register
from .autotune import AutotuneResult, autotune
from .select import Selection, select_algorithm

__all__ = [
    "Algorithm",
    "AutotuneResult",
    "ConvConfig",
    "Selection",
    "algorithms",
    "applicable",
    "autotune",
    "conv2d",
    "register",
    "select_algorithm",
]
