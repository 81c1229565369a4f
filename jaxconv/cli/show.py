"""``jaxconv show IMAGE --layers SPEC``: an image through a layer stack, one panel per stage."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import UsageError, check_out, guard, save_out

STYLES = ("modern", "article")


def main(argv: Sequence[str] | None = None) -> int:
    """``jaxconv show IMAGE --layers SPEC [--out PNG]``: save an image's stage strip."""
    parser = argparse.ArgumentParser(
        prog="jaxconv show",
        description="Run an image through a layer stack (random Glorot filters from --seed) and "
                    "save the stage strip: input, each stage, output, with shapes.",
    )
    parser.add_argument("image", help="an image file (PNG, JPEG, ...)")
    parser.add_argument("--layers", required=True,
                        help="layer spec, e.g. conv3x3:3,relu,maxpool5 (convKxK:F, an activation "
                             "name, maxpoolP, avgpoolP)")
    parser.add_argument("--out", help="output image (default: IMAGE-stem_stages.png here)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random filters")
    parser.add_argument("--size", type=int, default=400,
                        help="shrink so the longer side is at most this many pixels; 0 keeps (default 400)")
    parser.add_argument("--style", choices=STYLES, default="modern",
                        help="'article': wrap-around RGB, jet colormap; 'modern': min-max, colorbars")
    args = parser.parse_args(argv)
    return guard("jaxconv show", _show_main, args)


# Bytes per element of the stages, measured (peak RSS and tracemalloc, matplotlib 3.11,
# conv3x3:F on the 320x400 cat for F = 30..300, both styles): every stage is kept as float32 (4)
# and the figure holds a float64 mosaic of it with a mask (9); saving draws one panel at a time,
# and a panel larger than its pixels is first mapped to RGBA floats whole and then downsampled
# (about 100, 65 in the article style). The convolutions' own buffers (about 8) stay below that.
# On top, a fixed 128 MiB: the canvas, fonts and matplotlib's own arrays.
KEPT_BYTES = 4 + 9
DRAW_BYTES = 104
FIXED_BYTES = 128 * 2**20


def memory_needed(spec: str, image_shape: tuple[int, ...]) -> int:
    """Bytes ``jaxconv show`` needs for ``spec`` on an image ``(H, W, C)``, drawing included."""
    from jaxconv import layers

    sizes = [math.prod(s) for s in layers.stage_shapes(spec, image_shape)]
    return FIXED_BYTES + KEPT_BYTES * sum(sizes) + DRAW_BYTES * max(sizes)


def _show_main(args: argparse.Namespace) -> int:
    from jaxconv import layers
    from jaxconv._io import NotEnoughMemoryError, available_memory
    from jaxconv.data import load_image

    try:
        init, apply = layers.build(args.layers)
    except layers.SpecError as e:
        raise UsageError(f"bad --layers {args.layers!r}: {e.reason}") from None
    if args.size < 0:
        raise UsageError(f"--size must be >= 0, got {args.size}")
    # before any work: the format, the folder, a read-only file or a folder at --out
    out = check_out(args.out or f"{Path(args.image).stem}_stages.png")
    x = load_image(args.image, max_side=args.size or None)  # decoded once
    try:
        _, params = init(args.seed, x.shape)
    except layers.SpecError as e:
        raise UsageError(f"--layers {args.layers!r} does not fit the {x.shape[0]}x{x.shape[1]} "
                         f"image: {e.reason}") from None
    need = memory_needed(args.layers, x.shape)
    free = available_memory()
    if free is not None and need > free:
        raise NotEnoughMemoryError(
            f"--layers {args.layers!r} on the {x.shape[0]}x{x.shape[1]} image needs about "
            f"{need / 2**30:.1f} GiB to compute and draw its stages, and {free / 2**30:.1f} GiB "
            "is available; use fewer filters or a smaller --size"
        )
    y, stages = apply(params, x)
    dead = layers.dead_stages(stages)
    if dead:
        print(f"jaxconv show: note: {', '.join(dead)} (nearly) all zero or constant (a dead "
              "ReLU?); try another --seed", file=sys.stderr)

    from jaxconv import viz

    n = len(stages) + 1
    fig = viz.figure(2.6 * n, 3.1)
    article = args.style == "article"
    viz.plot_stages({"input": x, **stages}, ax=fig.subplots(1, n).tolist(),
                    strategy="wrap" if article else "minmax", cmap="jet" if article else None,
                    zero_centered=False if article else "auto", colorbar=not article,
                    interpolation="bilinear" if article else "nearest")
    fig.suptitle(f"{args.layers}  →  {viz.fmt_shape(np.shape(y))}")
    save_out(fig, out, dpi=100)
    print(f"wrote {out}: {' → '.join([viz.fmt_shape(x.shape), *(viz.fmt_shape(v.shape) for v in stages.values())])}")
    return 0
