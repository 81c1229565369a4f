"""jaxconv: convolution, activations and pooling as pure JAX functions.

Images are **NHWC** ``(N, H, W, C)`` (or unbatched ``(H, W, C)``, returned with the same rank);
kernels are **HWIO** ``(kh, kw, C // groups, O)``. ``data_format="NCHW"`` switches the image
layout only. ``conv1d`` / ``conv3d`` / ``conv`` (any rank) and the transposed
``conv_transpose1d/2d/3d`` use NWC / NDHWC with WIO / DHWIO kernels. Every op validates its arguments before tracing and is jit-, vmap- and
grad-compatible.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from . import explain
from .activations import (
    activation,
    elu,
    gelu,
    hard_sigmoid,
    hard_tanh,
    leaky_relu,
    lecun_tanh,
    log_softmax,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from .conv import (
    Selection,
    algorithms,
    autotune,
    calibrate,
    conv,
    conv1d,
    conv2d,
    conv3d,
    conv_general_dilated,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    select_algorithm,
    set_autotune,
)
from .patches import fold, unfold

# ``jaxconv.conv`` is the N-d convolution *function* (it shadows the ``jaxconv.conv`` subpackage
# as an attribute); the subpackage stays importable: ``from jaxconv.conv import autotune``.
from .pooling import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    adaptive_max_pool3d,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    global_avg_pool1d,
    global_avg_pool2d,
    global_avg_pool3d,
    global_max_pool1d,
    global_max_pool2d,
    global_max_pool3d,
    lp_pool1d,
    lp_pool2d,
    lp_pool3d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    max_unpool1d,
    max_unpool2d,
    max_unpool3d,
    min_pool1d,
    min_pool2d,
    min_pool3d,
)

try:
    __version__ = _version("jaxconv")
except _PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Selection",
    "activation",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "algorithms",
    "autotune",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "calibrate",
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_general_dilated",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "elu",
    "explain",
    "fold",
    "gelu",
    "global_avg_pool1d",
    "global_avg_pool2d",
    "global_avg_pool3d",
    "global_max_pool1d",
    "global_max_pool2d",
    "global_max_pool3d",
    "hard_sigmoid",
    "hard_tanh",
    "leaky_relu",
    "lecun_tanh",
    "log_softmax",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "min_pool1d",
    "min_pool2d",
    "min_pool3d",
    "relu",
    "relu6",
    "select_algorithm",
    "selu",
    "set_autotune",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "tanh",
    "unfold",
]
