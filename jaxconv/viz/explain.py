"""Attribution overlays: an image with a saliency / Grad-CAM / occlusion map on top."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colorbar import Colorbar
from matplotlib.image import AxesImage

from ._base import as_hwc, axes_grid, clean
from .maps import to_rgb

__all__ = ["plot_attribution"]


def plot_attribution(
    image: Any,
    attribution: Any,
    *,
    ax: Axes | None = None,
    cmap: str | None = None,
    alpha: float = 0.5,
    colorbar: bool = True,
    signed: bool | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """Overlay an attribution map on its image, with a colorbar.

    Args:
      image: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` (a leading batch axis of 1 is dropped);
        grayscale is drawn in gray, RGB min-max scaled.
      attribution: ``(H, W)`` (Grad-CAM, occlusion) or ``(H, W, C)`` (gradient methods: summed
        over channels), same ``H, W`` as the image.
      ax: the axes to draw in (a new figure if ``None``).
      cmap: colormap of the overlay; default ``"RdBu_r"`` for signed maps (limits symmetric
        about 0, so white is "no effect") and ``"jet"`` for non-negative ones.
      alpha: opacity of the overlay in ``[0, 1]``.
      colorbar: add a colorbar for the overlay.
      signed: force the signed/non-negative treatment (default: signed when any value < 0).
      title: axes title.

    Returns:
      ``{"image": AxesImage, "overlay": AxesImage, "colorbar": Colorbar | None}``; reach the
      figure as ``out["overlay"].figure``. Nothing is shown.
    """
    fn = "plot_attribution"
    img = as_hwc(image, "image", fn)
    att = as_hwc(attribution, "attribution", fn)
    if img.shape[-1] not in (1, 3):
        raise ValueError(f"{fn}: image must have 1 or 3 channels, got shape {np.shape(image)}")
    if att.shape[:2] != img.shape[:2]:
        raise ValueError(
            f"{fn}: attribution must have the image's height and width {img.shape[:2]}, "
            f"got shape {np.shape(attribution)}"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"{fn}: alpha must be a number in [0, 1], got {alpha!r}")
    if cmap is not None and not isinstance(cmap, str):
        raise TypeError(f"{fn}: cmap must be a colormap name or None, got {cmap!r}")
    if signed is not None and not isinstance(signed, bool):
        raise TypeError(f"{fn}: signed must be a bool or None, got {signed!r}")
    a = np.nan_to_num(att.sum(axis=-1))
    if signed is None:
        signed = bool((a < 0).any())
    if signed:
        hi = float(np.abs(a).max()) or 1.0
        lo, cmap = -hi, cmap or "RdBu_r"
    else:
        lo, hi = float(a.min()), float(a.max())
        hi = hi if hi > lo else lo + 1.0
        cmap = cmap or "jet"

    (ax,) = axes_grid(ax, 1, panel=(4.0, 3.2), fn=fn)
    if img.shape[-1] == 1:
        base = ax.imshow(img[..., 0], cmap="gray", interpolation="nearest")
    else:
        base = ax.imshow(to_rgb(img, "minmax"), interpolation="nearest")
    over: AxesImage = ax.imshow(a, cmap=cmap, vmin=lo, vmax=hi, alpha=float(alpha),
                                interpolation="nearest")
    cbar: Colorbar | None = ax.figure.colorbar(over, ax=ax, shrink=0.8) if colorbar else None
    clean(ax)
    if title:
        ax.set_title(title, fontsize="medium")
    return {"image": base, "overlay": over, "colorbar": cbar}
