"""Feature maps, stage strips and kernels as images.

Arrays are **HWC** ``(H, W, C)`` (a leading batch axis of 1 is dropped); kernels are **HWIO**.

Two choices decide what a feature map looks like, and both are explicit arguments:

- ``strategy`` for 3-channel maps drawn as RGB: ``"minmax"`` (default; stretch the values to
  [0, 1] with the colour ``policy``'s limits), ``"clip"`` (values outside [0, 1] saturate) or
  ``"wrap"`` (``uint8(255 * x)`` with wrap-around, what NumPy's ``astype(np.uint8)`` does and what
  gave the 2017 article's figures their psychedelic look).
- ``policy`` for the colour limits: ``"per_map"`` (each channel its own), ``"per_layer"`` (one
  pair of limits per layer) or ``"global"`` (one for every map drawn in the call);
  ``zero_centered=True`` makes the limits symmetric, ``(-m, m)``, and picks a diverging colormap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.image import AxesImage

from ._base import as_hwc, as_numpy, axes_grid, clean, fmt_shape

RGB_STRATEGIES = ("minmax", "clip", "wrap")
POLICIES = ("per_map", "per_layer", "global")
DIVERGING = "RdBu_r"
SEQUENTIAL = "viridis"


def _check(fn: str, strategy: str | None = None, policy: str | None = None) -> None:
    if strategy is not None and strategy not in RGB_STRATEGIES:
        raise ValueError(f"{fn}: strategy must be one of {', '.join(RGB_STRATEGIES)}, got {strategy!r}")
    if policy is not None and policy not in POLICIES:
        raise ValueError(f"{fn}: policy must be one of {', '.join(POLICIES)}, got {policy!r}")


def color_limits(
    maps: Sequence[np.ndarray], policy: str = "per_layer", *, zero_centered: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Colour limits ``(vmin, vmax)``, each of shape ``(C,)``, for every ``(H, W, C)`` map.

    ``policy`` is ``"per_map"`` (per channel), ``"per_layer"`` (per array) or ``"global"``
    (over all arrays). Non-finite values are ignored; a constant map gets ``vmax = vmin + 1``
    so it draws as one flat colour instead of dividing by zero.
    """
    _check("color_limits", policy=policy)

    def lim(a, axis):
        a = np.where(np.isfinite(a), a, np.nan)
        if np.isnan(a).all():
            return np.zeros(1), np.ones(1)
        if zero_centered:
            m = np.nanmax(np.abs(a), axis=axis)
            return -m, m
        return np.nanmin(a, axis=axis), np.nanmax(a, axis=axis)

    out = []
    if policy == "global":
        lo, hi = lim(np.concatenate([m.reshape(-1) for m in maps]), None)
    for m in maps:
        c = m.shape[-1]
        if policy == "per_map":
            lo_, hi_ = lim(m.reshape(-1, c), 0)
        elif policy == "per_layer":
            lo_, hi_ = lim(m.reshape(-1), None)
        else:
            lo_, hi_ = lo, hi
        lo_ = np.broadcast_to(np.asarray(lo_, float), (c,)).copy()
        hi_ = np.broadcast_to(np.asarray(hi_, float), (c,)).copy()
        flat = ~(hi_ > lo_)
        hi_[flat] = lo_[flat] + 1.0
        out.append((lo_, hi_))
    return out


def to_rgb(x: Any, strategy: str = "minmax", *, vmin: Any = None, vmax: Any = None) -> np.ndarray:
    """A 3-channel map as an RGB image in [0, 1], shape ``(H, W, 3)``.

    Args:
      x: ``(H, W, 3)`` (or ``(1, H, W, 3)``).
      strategy: ``"minmax"`` — ``(x - vmin) / (vmax - vmin)`` with the limits given, else the
        map's own min and max over all channels (hue is kept); ``"clip"`` — ``clip(x, 0, 1)``;
        ``"wrap"`` — ``(floor(255 * x) mod 256) / 255``, the uint8 wrap-around.
      vmin, vmax: scalars or per-channel ``(3,)`` limits for ``"minmax"``.
    """
    _check("to_rgb", strategy=strategy)
    a = as_hwc(x, "x", "to_rgb")
    if a.shape[-1] != 3:
        raise ValueError(f"to_rgb: x must have 3 channels, got shape {np.shape(x)}")
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    if strategy == "clip":
        return np.clip(a, 0.0, 1.0)
    if strategy == "wrap":
        return np.mod(np.floor(a * 255.0), 256.0) / 255.0
    lo = np.min(a) if vmin is None else np.asarray(vmin, float)
    hi = np.max(a) if vmax is None else np.asarray(vmax, float)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.clip((a - lo) / span, 0.0, 1.0)


def plot_image(
    x: Any,
    *,
    ax: Axes | None = None,
    strategy: str = "minmax",
    cmap: str | None = None,
    vmin: float | Sequence[float] | np.ndarray | None = None,
    vmax: float | Sequence[float] | np.ndarray | None = None,
    zero_centered: bool = False,
    colorbar: bool = False,
    interpolation: str = "nearest",
    title: str | None = None,
) -> AxesImage:
    """Draw one image: 3 channels as RGB (``strategy``), 1 channel with a colormap.

    Args:
      x: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` (a leading batch axis of 1 is dropped).
      ax: the axes to draw in (a new figure if ``None``).
      strategy: RGB strategy (``"minmax"``, ``"clip"``, ``"wrap"``), see :func:`to_rgb`.
      cmap: colormap for 1 channel (default viridis, or RdBu_r when ``zero_centered``).
      vmin, vmax: colour limits (default: the map's own; symmetric with ``zero_centered``):
        scalars, or per-channel ``(3,)`` limits for RGB (see :func:`to_rgb`).
      colorbar: add a colorbar (1 channel only).
      interpolation: passed to ``imshow`` (``"nearest"`` shows the pixels as they are).
      title: axes title.

    Returns:
      The ``AxesImage`` (``.axes``, ``.figure`` reach the rest).
    """
    _check("plot_image", strategy=strategy)
    a = as_hwc(x, "x", "plot_image")
    (ax,) = axes_grid(ax, 1, panel=(4.0, 3.2), fn="plot_image")
    c = a.shape[-1]
    if c == 3:
        img = ax.imshow(to_rgb(a, strategy, vmin=vmin, vmax=vmax), interpolation=interpolation)
    elif c == 1:
        ((lo, hi),) = color_limits([a], "per_layer", zero_centered=zero_centered)
        # One channel: scalar limits (.item(), as matplotlib's Normalize converts them).
        lo1 = float(np.asarray(lo[0] if vmin is None else vmin).item())
        hi1 = float(np.asarray(hi[0] if vmax is None else vmax).item())
        cmap = cmap or (DIVERGING if zero_centered else SEQUENTIAL)
        img = ax.imshow(np.nan_to_num(a[..., 0]), cmap=cmap, vmin=lo1, vmax=hi1, interpolation=interpolation)
        if colorbar:
            ax.figure.colorbar(img, ax=ax, shrink=0.8)
    else:
        raise ValueError(
            f"plot_image: x must have 1 or 3 channels, got shape {np.shape(x)}; "
            "use plot_feature_maps for one panel per channel"
        )
    clean(ax)
    if title is not None:
        ax.set_title(title, fontsize="medium")
    return img


def plot_grid(
    images: Sequence[Any],
    *,
    titles: Sequence[str] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    ncols: int | None = None,
    strategy: str = "minmax",
    cmap: str | None = None,
    policy: str = "per_map",
    zero_centered: bool = False,
    colorbar: bool = False,
    interpolation: str = "nearest",
) -> list[AxesImage]:
    """Draw several images (each ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``) in a grid.

    ``policy`` sets the colour limits across the images (``"per_map"``: each its own;
    ``"per_layer"``/``"global"``: shared by all). ``ax`` is ``None``, one ``Axes`` (split into
    an inset grid) or a sequence of axes. Returns one ``AxesImage`` per image.
    """
    _check("plot_grid", strategy=strategy, policy=policy)
    arrays = [as_hwc(im, f"images[{i}]", "plot_grid") for i, im in enumerate(images)]
    if not arrays:
        raise ValueError("plot_grid: images is empty")
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"plot_grid: {len(titles)} titles for {len(arrays)} images")
    axs = axes_grid(ax, len(arrays), ncols=ncols, fn="plot_grid")
    shared = policy != "per_map"
    limits = color_limits(arrays, "global" if shared else "per_layer", zero_centered=zero_centered)
    out = []
    for i, (a, a_ax, (lo, hi)) in enumerate(zip(arrays, axs, limits, strict=True)):
        rgb_lim = {"vmin": lo, "vmax": hi} if shared or zero_centered else {}
        img = plot_image(
            a, ax=a_ax, strategy=strategy, cmap=cmap, zero_centered=zero_centered,
            vmin=float(lo[0]) if a.shape[-1] == 1 else rgb_lim.get("vmin"),
            vmax=float(hi[0]) if a.shape[-1] == 1 else rgb_lim.get("vmax"),
            colorbar=colorbar and not shared, interpolation=interpolation,
            title=None if titles is None else titles[i],
        )
        out.append(img)
    if colorbar and shared and any(a.shape[-1] == 1 for a in arrays):
        first = next(img for img, a in zip(out, arrays, strict=True) if a.shape[-1] == 1)
        first.figure.colorbar(first, ax=[img.axes for img in out], shrink=0.8)
    return out


def plot_feature_maps(
    x: Any,
    *,
    ax: Axes | Sequence[Axes] | None = None,
    policy: str = "per_layer",
    zero_centered: bool = False,
    cmap: str | None = None,
    colorbar: bool = False,
    ncols: int | None = None,
    titles: bool = True,
    interpolation: str = "nearest",
) -> list[AxesImage]:
    """Draw every channel of a feature map ``(H, W, C)`` as its own panel.

    ``policy="per_layer"`` (default) shares one pair of limits between the channels, so their
    strengths compare; ``"per_map"`` stretches each channel. Titles are ``"c0"``, ``"c1"``, ...
    Returns one ``AxesImage`` per channel.
    """
    _check("plot_feature_maps", policy=policy)
    a = as_hwc(x, "x", "plot_feature_maps")
    chans = [a[..., c : c + 1] for c in range(a.shape[-1])]
    names = [f"c{c}" for c in range(len(chans))] if titles else None
    return plot_grid(
        chans, titles=names, ax=ax, ncols=ncols, cmap=cmap, policy=policy,
        zero_centered=zero_centered, colorbar=colorbar, interpolation=interpolation,
    )


def tile(x: Any, ncols: int | None = None, *, gap: int = 1) -> np.ndarray:
    """Channels of ``(H, W, C)`` laid out as a mosaic ``(rows*(H+gap)-gap, cols*(W+gap)-gap)``.

    Gaps are NaN (drawn transparent).
    """
    a = as_hwc(x, "x", "tile")
    h, w, c = a.shape
    ncols = ncols or int(np.ceil(np.sqrt(c)))
    nrows = -(-c // ncols)
    out = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap), np.nan)
    for i in range(c):
        r, q = divmod(i, ncols)
        out[r * (h + gap) : r * (h + gap) + h, q * (w + gap) : q * (w + gap) + w] = a[..., i]
    return out


def _items(stages: Any, fn: str) -> list[tuple[str, np.ndarray]]:
    pairs = list(stages.items()) if isinstance(stages, Mapping) else list(stages)
    if not pairs:
        raise ValueError(f"{fn}: stages is empty")
    return [(str(k), as_hwc(v, f"stages[{k!r}]", fn)) for k, v in pairs]


def plot_stages(
    stages: Mapping[str, Any] | Sequence[tuple[str, Any]],
    *,
    ax: Axes | Sequence[Axes] | None = None,
    strategy: str = "minmax",
    policy: str = "per_layer",
    zero_centered: bool | str = "auto",
    cmap: str | None = None,
    colorbar: bool = True,
    interpolation: str = "nearest",
    shapes_in_titles: bool = True,
) -> list[AxesImage]:
    """The stage strip: input → each stage → output, one panel each, shapes in the titles.

    Args:
      stages: ``{name: array}`` in order (e.g. ``{"input": x, **stages}`` from
        :func:`jaxconv.layers.build`'s ``apply``), arrays ``(H, W, C)`` or ``(1, H, W, C)``.
        A 3-channel stage is drawn as RGB, a 1-channel one with a colormap, any other as a mosaic
        of its channels.
      ax: ``None`` (a new one-row figure), one ``Axes`` (split) or a sequence of axes.
      strategy: RGB strategy for 3-channel stages.
      policy: colour limits per channel (``"per_map"``), per stage (``"per_layer"``) or shared
        by all stages (``"global"``).
      zero_centered: symmetric limits and a diverging colormap; ``"auto"`` does so for stages
        with both signs (a convolution's output) and not for non-negative ones (after ReLU).
      cmap: colormap for 1-channel stages and mosaics (default by ``zero_centered``).
      colorbar: colorbars for the colormapped panels.
      shapes_in_titles: titles ``"name\\nH×W×C"``.

    Returns:
      One ``AxesImage`` per stage.
    """
    _check("plot_stages", strategy=strategy, policy=policy)
    pairs = _items(stages, "plot_stages")
    axs = axes_grid(ax, len(pairs), ncols=len(pairs), panel=(2.6, 2.6), fn="plot_stages")
    arrays = [a for _, a in pairs]
    if zero_centered == "auto":
        centred = [bool(np.nanmin(a) < 0 < np.nanmax(a)) for a in arrays]
    else:
        centred = [bool(zero_centered)] * len(arrays)
    by_z = {z: color_limits(arrays, policy, zero_centered=z) for z in set(centred)}
    limits = [by_z[z][i] for i, z in enumerate(centred)]
    out = []
    for (name, a), a_ax, (lo, hi), z in zip(pairs, axs, limits, centred, strict=True):
        c = a.shape[-1]
        title = f"{name}\n{fmt_shape(a.shape)}" if shapes_in_titles else name
        if c == 3:
            img = a_ax.imshow(to_rgb(a, strategy, vmin=lo, vmax=hi), interpolation=interpolation)
        else:
            if c == 1:
                data, vmin, vmax = a[..., 0], lo[0], hi[0]
            else:
                if policy == "per_map":  # stretch each channel before tiling
                    a = (a - lo) / (hi - lo)
                    vmin, vmax = (-1.0, 1.0) if z else (0.0, 1.0)
                    if z:
                        a = 2 * a - 1
                else:
                    vmin, vmax = lo[0], hi[0]
                data = tile(a)
            img = a_ax.imshow(
                np.ma.masked_invalid(data), cmap=cmap or (DIVERGING if z else SEQUENTIAL),
                vmin=vmin, vmax=vmax, interpolation=interpolation,
            )
            if colorbar:
                a_ax.figure.colorbar(img, ax=a_ax, shrink=0.7, location="bottom")
        clean(a_ax)
        a_ax.set_title(title, fontsize="medium")
        out.append(img)
    return out


def plot_kernels(
    kernel: Any,
    *,
    ax: Axes | Sequence[Axes] | None = None,
    rgb: bool = False,
    zero_centered: bool = True,
    policy: str = "per_layer",
    cmap: str | None = None,
    colorbar: bool = False,
) -> list[AxesImage]:
    """A kernel bank as a grid: one panel per (input, output) channel pair.

    Args:
      kernel: **HWIO** ``(kh, kw, I, O)``.
      ax: ``None``, one ``Axes`` (split) or a sequence of at least ``I * O`` (``O`` if ``rgb``).
      rgb: with ``I == 3``, draw each output filter as one RGB image (min-max over the bank
        with ``policy="per_layer"``).
      zero_centered: symmetric limits and a diverging colormap (weights have both signs).
      policy: ``"per_layer"`` (one scale for the bank: strengths compare) or ``"per_map"``.

    Returns:
      One ``AxesImage`` per panel, row-major over ``(I, O)`` (panel ``i * O + o``).
    """
    _check("plot_kernels", policy=policy)
    k = as_numpy(kernel, "kernel", "plot_kernels")
    if k.ndim != 4 or min(k.shape) < 1:
        raise ValueError(f"plot_kernels: kernel must be HWIO (kh, kw, I, O), got shape {k.shape}")
    i_ch, o_ch = k.shape[2:]
    if rgb:
        if i_ch != 3:
            raise ValueError(f"plot_kernels: rgb=True needs I == 3 input channels, got {i_ch}")
        filters = [k[..., o] for o in range(o_ch)]
        titles = [f"out {o}" for o in range(o_ch)]
        return plot_grid(filters, titles=titles, ax=ax, ncols=o_ch, policy=policy)
    panels = [k[:, :, i, o] for i in range(i_ch) for o in range(o_ch)]
    titles = [f"in {i} → out {o}" if i_ch > 1 else f"filter {o}" for i in range(i_ch) for o in range(o_ch)]
    return plot_grid(
        panels, titles=titles, ax=ax, ncols=o_ch, cmap=cmap, policy=policy,
        zero_centered=zero_centered, colorbar=colorbar,
    )
