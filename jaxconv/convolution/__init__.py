"""Convolution: ``conv2d`` (and ``conv1d``, ``conv3d``, ``conv`` of any rank, the transposed
``conv_transpose1d/2d/3d``), the algorithm registry it dispatches through, and how ``auto`` chooses.

Modules, in the order data flows: ``_canonical`` (validation) -> ``select`` (``auto``: the
autotune ``cache``, else the ``cost_model``) -> ``_registry`` (one :class:`Algorithm` record per
algorithm, registered by its own module: ``direct``, ``xla_padded``, ``fft``, ``im2col``,
``mec``, ``winograd``, then the special cases ``channel_padded``, ``depth_direct`` and
``depth_mec`` (3-D through 2-D), ``depthwise``, ``pointwise``, ``tap_fused``). ``tuning`` measures algorithms and fills the cache, ``calibration`` rescales the
cost model for this machine; ``cases`` holds the benchmark problems.
"""

from . import direct as _direct  # noqa: F401  (registers "direct")
from . import fft as _fft  # noqa: F401  (registers "fft")
from . import im2col as _im2col  # noqa: F401  (registers "im2col")
from . import mec as _mec  # noqa: F401  (registers "mec")
from . import winograd as _winograd  # noqa: F401  (registers "winograd")
from . import xla_padded as _xla_padded  # noqa: F401  (registers "xla_padded")

# isort: split
from . import dft as _dft  # noqa: F401  (registers "dft"; after fft, whose guards it shares)

# isort: split
# The special-case algorithms register after the general ones (registration order is the order
# of jaxconv.algorithms() and of the "Algorithms that can" lists).
from . import channel_padded as _channel_padded  # noqa: F401  (registers "channel_padded")
from . import depth_lowered as _depth_lowered  # noqa: F401  (registers "depth_direct", "depth_mec")
from . import depthwise as _depthwise  # noqa: F401  (registers "depthwise")
from . import pointwise as _pointwise  # noqa: F401  (registers "pointwise")
from . import subgrid as _subgrid  # noqa: F401  (registers "subgrid_winograd", "subgrid_winograd4")
from . import tap_fused as _tap_fused  # noqa: F401  (registers "tap_fused")
from ._conv2d import conv, conv1d, conv2d, conv3d
from ._registry import Algorithm, ConvConfig, algorithms, applicable, register
from .cache import AutotuneCacheWarning
from .calibration import CalibrationResult, calibrate
from .general import conv_general_dilated
from .select import Selection, select_algorithm, set_autotune
from .transpose import conv_transpose1d, conv_transpose2d, conv_transpose3d
from .tuning import AutotuneResult, autotune

__all__ = [
    "Algorithm",
    "AutotuneCacheWarning",
    "AutotuneResult",
    "CalibrationResult",
    "ConvConfig",
    "Selection",
    "algorithms",
    "applicable",
    "autotune",
    "calibrate",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_general_dilated",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "register",
    "select_algorithm",
    "set_autotune",
]
