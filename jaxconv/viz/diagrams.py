"""Illustrations computed with the real ops: convolution steps and GIF, pooling, activations,
architecture diagrams, saliency maps and timing curves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Rectangle
from matplotlib.ticker import FuncFormatter

from ._base import as_hwc, as_numpy, axes_grid, clean, figure, fmt_shape

if TYPE_CHECKING:
    from PIL import Image as PILImage

# The 5x5 binary image and 3x3 kernel of the classic UFLDL convolution animation.
CONV_X = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], float
)
CONV_K = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], float)
POOL_X = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], float)
ACTIVATIONS = (
    "relu", "leaky_relu", "elu", "selu", "gelu", "silu", "softplus",
    "sigmoid", "tanh", "lecun_tanh", "hard_tanh", "relu6",
)
BLOCK_COLORS = ("#8ecae6", "#ffb703", "#90be6d", "#f28482", "#cdb4db", "#f6bd60")


def _num(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}".rstrip("0")


def _cells(ax: Axes, values: np.ndarray, x0: float, y0: float, *, colors=None, fontsize=11,
           hidden=None) -> list[Artist]:
    """A grid of numbered unit squares with its top-left corner at (x0, y0) (y grows upwards)."""
    artists: list[Artist] = []
    for (r, c), v in np.ndenumerate(values):
        face = "white" if colors is None else colors[r][c]
        rect = Rectangle((x0 + c, y0 - r - 1), 1, 1, facecolor=face, edgecolor="0.3", lw=1)
        ax.add_patch(rect)
        artists.append(rect)
        if hidden is None or not hidden[r, c]:
            artists.append(ax.text(x0 + c + 0.5, y0 - r - 0.5, _num(v), ha="center", va="center",
                                   fontsize=fontsize))
    return artists


def _frame_axes(ax: Axes, width: float, height: float) -> None:
    ax.set_xlim(-0.3, width + 0.3)
    ax.set_ylim(-height - 0.3, 1.2)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _conv_inputs(x, kernel, fn):
    x = CONV_X if x is None else as_numpy(x, "x", fn)
    k = CONV_K if kernel is None else as_numpy(kernel, "kernel", fn)
    if x.ndim != 2 or k.ndim != 2 or k.shape[0] > x.shape[0] or k.shape[1] > x.shape[1]:
        raise ValueError(
            f"{fn}: x and kernel must be 2-D with the kernel no larger than x, "
            f"got {x.shape} and {k.shape}"
        )
    return x, k


def conv_output(x: Any = None, kernel: Any = None) -> np.ndarray:
    """The VALID cross-correlation of a 2-D ``x`` with a 2-D ``kernel``, computed by ``jaxconv.conv2d``."""
    import jax.numpy as jnp

    from jaxconv import conv2d

    x, k = _conv_inputs(x, kernel, "conv_output")
    y = conv2d(jnp.asarray(x[..., None], jnp.float32), jnp.asarray(k[..., None, None], jnp.float32))
    return np.asarray(y[..., 0], float)


def plot_conv_step(x: Any = None, kernel: Any = None, step: int | None = 0, *,
                   ax: Axes | None = None) -> list[Artist]:
    """One step of a convolution: the window on the input, the kernel, the output so far.

    Args:
      x: 2-D input (default: the 5x5 image of the classic animation).
      kernel: 2-D kernel (default: the 3x3 ``[[1,0,1],[0,1,0],[1,0,1]]``).
      step: output position (row-major) the window is at; outputs before it are filled in.
        ``None`` draws the finished output with no window.
      ax: the axes (a new figure if ``None``).

    Returns:
      The artists drawn (patches and texts).
    """
    x, k = _conv_inputs(x, kernel, "plot_conv_step")
    y = conv_output(x, k)
    (ax,) = axes_grid(ax, 1, panel=(7.5, 3.0), fn="plot_conv_step")
    (h, w), (kh, kw), (oh, ow) = x.shape, k.shape, y.shape
    n = oh * ow
    if step is not None and not 0 <= step < n:
        raise ValueError(f"plot_conv_step: step must be in [0, {n}) or None, got {step}")
    done = n if step is None else step
    kx, yx = w + 1.5, w + kw + 3.0
    artists = _cells(ax, x, 0, 0)
    artists += _cells(ax, k, kx, -(h - kh) / 2, colors=[["#ffd6a5"] * kw] * kh)
    revealed = np.arange(n).reshape(oh, ow) >= done + (0 if step is None else 1)
    out_colors = [["#caffbf" if i < done else ("#fdffb6" if i == done else "white")
                   for i in range(r * ow, (r + 1) * ow)] for r in range(oh)]
    artists += _cells(ax, y, yx, -(h - oh) / 2, colors=out_colors, hidden=revealed)
    for label, x0, width in (("input", 0, w), ("kernel", kx, kw), ("output", yx, ow)):
        artists.append(ax.text(x0 + width / 2, 0.45, label, ha="center", va="bottom", fontsize=11))
    artists.append(ax.text(kx - 0.75, -h / 2, "∗", ha="center", va="center", fontsize=18))
    artists.append(ax.text(yx - 1.0, -h / 2, "=", ha="center", va="center", fontsize=18))
    if step is not None:
        r, c = divmod(step, ow)
        win = Rectangle((c, -r - kh), kw, kh, facecolor="#ffd6a5", alpha=0.45, edgecolor="#e76f51", lw=2.5)
        ax.add_patch(win)
        artists.append(win)
        for (i, j), kv in np.ndenumerate(k):
            artists.append(ax.text(c + j + 0.92, -r - i - 0.92, f"×{_num(kv)}", ha="right",
                                   va="bottom", fontsize=7, color="#c1121f"))
        total = " + ".join(f"{_num(a)}·{_num(b)}" for a, b in zip(x[r:r + kh, c:c + kw].ravel(), k.ravel(), strict=True))
        artists.append(ax.text((w + yx + ow) / 2, -h - 0.15, f"{total} = {_num(y[r, c])}",
                               ha="center", va="top", fontsize=8))
    _frame_axes(ax, yx + ow, h + 0.9)
    return artists


def conv_animation(x: Any = None, kernel: Any = None, *, path: str | os.PathLike | None = None,
                   dpi: int = 80, frame_ms: int = 700) -> list[PILImage.Image]:
    """The convolution animation: a kernel sliding over the input, the output filling in.

    Every frame is drawn by :func:`plot_conv_step`; the output values come from
    ``jaxconv.conv2d`` itself. With ``path``, the frames are saved as a looping GIF (Pillow).

    Returns:
      The frames, as ``PIL.Image`` objects (one per output position, then the finished output).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    x, k = _conv_inputs(x, kernel, "conv_animation")
    n = (x.shape[0] - k.shape[0] + 1) * (x.shape[1] - k.shape[1] + 1)
    frames = []
    for step in [*range(n), None]:
        fig = figure(1.0 + 0.55 * (x.shape[1] + k.shape[1] + x.shape[1]), 0.75 + 0.5 * x.shape[0],
                     layout=None)
        ax = fig.add_axes((0, 0, 1, 1))
        plot_conv_step(x, k, step, ax=ax)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
        frames.append(rgb.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
    if path is not None:
        durations = [frame_ms] * (len(frames) - 1) + [frame_ms * 3]
        from jaxconv._io import atomic_open

        with atomic_open(path, "wb") as f:  # a temporary renamed into place: never half a GIF
            frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:],
                           duration=durations, loop=0)
    return frames


def plot_pooling(x: Any = None, window: int = 2, *, ax: Axes | None = None) -> list[Artist]:
    """Max and average pooling of a small grid, with the numbers, from ``jaxconv``'s pools.

    Args:
      x: 2-D input (default the 4x4 ``[[1,1,2,4],[5,6,7,8],[3,2,1,0],[1,2,3,4]]``); its sides
        must be multiples of ``window``.
      window: pooling window = stride.
      ax: the axes (a new figure if ``None``).

    Returns:
      The artists drawn.
    """
    import jax
    import jax.numpy as jnp

    from jaxconv import avg_pool2d, max_pool2d

    x = POOL_X if x is None else as_numpy(x, "x", "plot_pooling")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"plot_pooling: window must be an int >= 1, got {window!r}")
    if x.ndim != 2 or x.shape[0] % window or x.shape[1] % window:
        raise ValueError(f"plot_pooling: x must be 2-D with sides divisible by window={window}, got {x.shape}")
    xj = jnp.asarray(x[..., None], jnp.float32)
    pooled = max_pool2d(xj, window)
    assert isinstance(pooled, jax.Array)  # one array: return_indices is off
    mx = np.asarray(pooled[..., 0], float)
    av = np.asarray(avg_pool2d(xj, window)[..., 0], float)
    (ax,) = axes_grid(ax, 1, panel=(6.0, 3.2), fn="plot_pooling")
    h, w = x.shape
    oh, ow = mx.shape

    def block_color(r, c):
        return BLOCK_COLORS[(r * ow + c) % len(BLOCK_COLORS)]

    in_colors = [[block_color(r // window, c // window) for c in range(w)] for r in range(h)]
    out_colors = [[block_color(r, c) for c in range(ow)] for r in range(oh)]
    ox = w + 3.0
    tops = (0.0, -(h - oh))  # max pool at the top right, avg pool at the bottom right
    artists = _cells(ax, x, 0, 0, colors=in_colors)
    artists.append(ax.text(w / 2, 0.3, f"input {h}×{w}", ha="center", va="bottom", fontsize=11))
    for top, out, label in zip(tops, (mx, av), ("max", "avg"), strict=True):
        artists += _cells(ax, out, ox, top, colors=out_colors)
        artists.append(ax.text(ox + ow + 0.3, top - oh / 2,
                               f"{label} pool {window}×{window}\nstride {window}",
                               ha="left", va="center", fontsize=11))
        arrow = FancyArrowPatch((w + 0.3, -h / 2), (ox - 0.3, top - oh / 2), arrowstyle="-|>",
                                mutation_scale=15, color="0.4")
        ax.add_patch(arrow)
        artists.append(arrow)
    _frame_axes(ax, ox + ow + 3.2, h + 0.1)
    return artists


def plot_activations(names: Sequence[str] = ACTIVATIONS, *, ax: Axes | Sequence[Axes] | None = None,
                     x_range: tuple[float, float] = (-4.0, 4.0), num: int = 401) -> list[Line2D]:
    """Plot activation functions, evaluated by ``jaxconv.activation(name)``.

    ``ax=None`` draws one small panel per function; a single ``Axes`` draws them all in it with a
    legend; a sequence draws one per axes. Returns one ``Line2D`` per function.
    """
    import jax.numpy as jnp

    from jaxconv import activation

    if isinstance(names, str):
        names = [names]
    fns = [activation(n) for n in names]  # unknown names raise here, before drawing
    if not fns:
        raise ValueError("plot_activations: names is empty")
    xs = np.linspace(*x_range, num)
    single = ax if isinstance(ax, Axes) else None  # one Axes: every function in it
    together = single is not None
    axs = [single] * len(fns) if single is not None else axes_grid(
        ax, len(fns), ncols=4, panel=(2.2, 1.9), fn="plot_activations"
    )
    lines = []
    for name, fn, a in zip(names, fns, axs, strict=True):
        ys = np.asarray(fn(jnp.asarray(xs, jnp.float32)), float)
        (line,) = a.plot(xs, ys, lw=2, label=name)
        lines.append(line)
        a.axhline(0, color="0.7", lw=0.8, zorder=0)
        a.axvline(0, color="0.7", lw=0.8, zorder=0)
        if not together:
            a.set_title(name, fontsize="medium")
            a.tick_params(labelsize="small")
            a.grid(alpha=0.3)
    if single is not None:
        single.legend(fontsize="small", ncols=2)
        single.grid(alpha=0.3)
        single.set_xlabel("x")
    return lines


def plot_architecture(shapes: Mapping[str, Sequence[int]], *, ax: Axes | None = None,
                      title: str | None = None) -> list[Artist]:
    """A network drawn from its stages' shapes (as in LeCun et al. 1998, fig. 2).

    Args:
      shapes: ``{stage name: shape}`` in order, shapes without the batch axis: ``(H, W, C)``
        feature maps are drawn as a stack of squares (side ~ H, up to 8 sheets shown for C),
        ``(units,)`` vectors as bars (height ~ log units).
      ax: the axes (a new figure if ``None``).
      title: axes title.

    Returns:
      The patches and texts drawn.
    """
    items = [(str(k), tuple(int(s) for s in v)) for k, v in shapes.items()]
    if not items:
        raise ValueError("plot_architecture: shapes is empty")
    for name, s in items:
        if len(s) not in (1, 3) or min(s) < 1:
            raise ValueError(f"plot_architecture: shape of {name!r} must be (H, W, C) or (units,), got {s}")
    (ax,) = axes_grid(ax, 1, panel=(1.6 * len(items), 3.2), fn="plot_architecture")
    hmax = max((s[0] for _, s in items if len(s) == 3), default=1)
    umax = max((s[0] for _, s in items if len(s) == 1), default=1)
    artists: list[Artist] = []
    x = 0.0
    prev_right = None
    prev_mid, prev_label = None, 0
    for i, (name, s) in enumerate(items):
        color = BLOCK_COLORS[i % len(BLOCK_COLORS)]
        if prev_mid is not None:
            # Keep the bold names apart: ~0.12 data units per character at this size.
            own_half = 0.11 if len(s) == 1 else 0.0
            x = max(x, prev_mid + 0.06 * (prev_label + len(name)) + 0.25 - own_half)
        if len(s) == 3:
            side = 0.35 + 1.65 * s[0] / hmax
            sheets = min(s[2], 8)
            off = 0.09
            for j in reversed(range(sheets)):
                rect = Rectangle((x + j * off, -side / 2 - j * off), side, side, facecolor=color,
                                 edgecolor="0.25", lw=0.8)
                ax.add_patch(rect)
                artists.append(rect)
            left, right = x, x + side + (sheets - 1) * off
            bottom = -side / 2 - (sheets - 1) * off
        else:
            height = 0.3 + 1.7 * np.log1p(s[0]) / np.log1p(umax)
            rect = Rectangle((x, -height / 2), 0.22, height, facecolor=color, edgecolor="0.25", lw=0.8)
            ax.add_patch(rect)
            artists.append(rect)
            left, right, bottom = x, x + 0.22, -height / 2
        mid = (left + right) / 2
        prev_mid, prev_label = mid, len(name)
        artists.append(ax.text(mid, 1.25, name, ha="center", va="bottom", fontsize=9, weight="bold"))
        artists.append(ax.text(mid, min(bottom, -1.05) - 0.12, fmt_shape(s), ha="center", va="top",
                               fontsize=8))
        if prev_right is not None:
            arrow = FancyArrowPatch((prev_right + 0.08, 0), (left - 0.08, 0), arrowstyle="-|>",
                                    mutation_scale=10, color="0.4")
            ax.add_patch(arrow)
            artists.append(arrow)
        prev_right = right
        x = right + 0.75
    ax.set_xlim(-0.3, x - 0.45)
    ax.set_ylim(-2.1, 1.75)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return artists


def plot_lenet(model: Any = None, *, ax: Axes | None = None,
               input_shape: Sequence[int] = (1, 32, 32, 1), merge_same_shape: bool = True,
               title: str | None = None) -> list[Artist]:
    """The LeNet-5 architecture drawn from the model's real stage shapes.

    Args:
      model: a ``jaxconv.models.LeNet5`` (default: a fresh one, seed 0); anything with
        ``features(x) -> {name: array}`` (ordered) works.
      ax: the axes.
      input_shape: the ``(1, H, W, C)`` input the shapes are traced with.
      merge_same_shape: draw a stage that keeps its input's shape (an activation, the final
        softmax) in the same box as the stage before, named ``"conv1+act1"``.
      title: axes title.

    Returns:
      The artists drawn (see :func:`plot_architecture`).
    """
    import jax.numpy as jnp

    if model is None:
        from flax import nnx

        from jaxconv.models import LeNet5

        model = LeNet5(rngs=nnx.Rngs(0))
    # Run once on zeros: any object with features() works, whatever it does inside.
    feats = model.features(jnp.zeros(tuple(input_shape), jnp.float32))
    names, shapes_out = list(feats), list(feats.values())
    shapes: dict[str, tuple[int, ...]] = {"input": tuple(input_shape[1:])}
    for name, v in zip(names, shapes_out, strict=True):
        shape = tuple(v.shape[1:])
        last = next(reversed(shapes))
        if merge_same_shape and shapes[last] == shape and last != "input":
            shapes[f"{last}+{name}"] = shapes.pop(last)
        else:
            shapes[name] = shape
    return plot_architecture(shapes, ax=ax, title=title)


def plot_saliency(image: Any, saliency: Any, *, ax: Axes | Sequence[Axes] | None = None,
                  titles: Sequence[str] = ("input", "saliency |∂score/∂x|", "overlay")) -> list[AxesImage]:
    """An input, its saliency map and the two overlaid (3 panels).

    Args:
      image: ``(H, W)`` or ``(H, W, 1)`` grayscale (or ``(H, W, 3)``).
      saliency: ``(H, W)`` or ``(H, W, 1)``, e.g. ``|jax.grad(score)(x)|``; drawn with "hot".
      ax: ``None``, one ``Axes`` (split in 3) or a sequence of 3.

    Returns:
      The ``AxesImage`` objects (input, saliency, overlay's two layers).
    """
    img = as_hwc(image, "image", "plot_saliency")
    sal = as_hwc(saliency, "saliency", "plot_saliency")
    if sal.shape[-1] != 1 or sal.shape[:2] != img.shape[:2]:
        raise ValueError(f"plot_saliency: saliency must be (H, W) matching image, got {sal.shape} for {img.shape}")
    axs = axes_grid(ax, 3, ncols=3, panel=(2.4, 2.5), fn="plot_saliency")
    base: dict[str, Any] = (
        dict(cmap="gray", interpolation="nearest") if img.shape[-1] == 1 else dict(interpolation="nearest")
    )
    show = img[..., 0] if img.shape[-1] == 1 else np.clip(img, 0, 1)
    hi = float(np.nanmax(sal)) or 1.0
    out = [axs[0].imshow(show, **base),
           axs[1].imshow(sal[..., 0], cmap="hot", vmin=0, vmax=hi, interpolation="nearest"),
           axs[2].imshow(show, **base),
           axs[2].imshow(sal[..., 0], cmap="hot", vmin=0, vmax=hi, alpha=0.55, interpolation="nearest")]
    for a, t in zip(axs, titles, strict=True):
        clean(a)
        a.set_title(t, fontsize="medium")
    return out


def plot_kernel_times(sizes: Sequence[int], ms: Sequence[float], *, ax: Axes | None = None,
                      label: str | None = None) -> list[Line2D]:
    """Measured time against kernel size (log time axis). Returns the line drawn."""
    sizes, ms = list(sizes), list(ms)
    if not sizes or len(sizes) != len(ms):
        raise ValueError(f"plot_kernel_times: need equal, non-empty sizes and ms, got {len(sizes)} and {len(ms)}")
    (ax,) = axes_grid(ax, 1, panel=(4.0, 3.0), fn="plot_kernel_times")
    lines = ax.plot(sizes, ms, "o-", label=label)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(v)[0] in "25" else ""))
    ax.set_xlabel("kernel size k (k×k)")
    ax.set_ylabel("time per call (ms)")
    ax.grid(alpha=0.3, which="both")
    if label:
        ax.legend()
    return lines
