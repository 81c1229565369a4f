"""Plots of what each stage of a CNN does (matplotlib is imported here and nowhere else).

Every function takes ``ax=`` (an ``Axes``; where a function draws several panels, also ``None``
for a new figure or a sequence of axes) and returns what it drew; nothing calls ``plt.show()``.
New figures are detached ``matplotlib.figure.Figure`` objects (:func:`figure`), so no GUI
backend is needed: save them with ``fig.savefig(path)`` (reach the figure as ``artist.figure``).

Arrays are **HWC** ``(H, W, C)`` (a leading batch axis of 1 is dropped), kernels **HWIO**.
Colour choices are explicit: an RGB ``strategy`` (``"minmax"``, ``"clip"``, ``"wrap"``) and a
colour ``policy`` (``"per_map"``, ``"per_layer"``, ``"global"``) with ``zero_centered``.
"""

from ._base import figure, fmt_shape
from .benchmark import plot_conv_vs_kernel
from .diagrams import (
    conv_animation,
    conv_output,
    plot_activations,
    plot_architecture,
    plot_conv_step,
    plot_kernel_times,
    plot_lenet,
    plot_pooling,
    plot_saliency,
)
from .explain import plot_attribution
from .maps import (
    POLICIES,
    RGB_STRATEGIES,
    color_limits,
    plot_feature_maps,
    plot_grid,
    plot_image,
    plot_kernels,
    plot_stages,
    tile,
    to_rgb,
)
from .training import plot_confusion_matrix, plot_training_curves

__all__ = [
    "POLICIES",
    "RGB_STRATEGIES",
    "color_limits",
    "conv_animation",
    "conv_output",
    "figure",
    "fmt_shape",
    "plot_activations",
    "plot_architecture",
    "plot_attribution",
    "plot_confusion_matrix",
    "plot_conv_step",
    "plot_conv_vs_kernel",
    "plot_feature_maps",
    "plot_grid",
    "plot_image",
    "plot_kernel_times",
    "plot_kernels",
    "plot_lenet",
    "plot_pooling",
    "plot_saliency",
    "plot_stages",
    "plot_training_curves",
    "tile",
    "to_rgb",
]
