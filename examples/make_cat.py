"""Make ``jaxconv/data/cat.png`` from scikit-image's "Chelsea the cat" (provenance; not run at runtime).

The source is ``skimage/data/chelsea.png`` (300x451 RGB; CC0, photographer Stefan van der Walt).
It is cropped to the article's 4:5 aspect (H:W) around the cat's face and resized with a Lanczos
filter to H=320, W=400, so a 3x3 VALID convolution gives 318x398 and 5x5 pooling then 63x79 --
the shapes of "Visualizing parts of Convolutional Neural Networks using Keras and Cats"
(E. Reppel, 2017). Needs ``pip install scikit-image`` once::

    python examples/make_cat.py            # writes jaxconv/data/cat.png
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

HEIGHT, WIDTH = 320, 400
# Left edge of the 375-pixel-wide crop (300 * 5 / 4): centres the face, keeps both eyes and ears.
CROP_LEFT = 20
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "jaxconv" / "data" / "cat.png"


def make_cat():
    """Return the cropped, resized cat as a ``PIL.Image`` of size ``(WIDTH, HEIGHT)``."""
    from importlib.resources import files

    from PIL import Image

    src = files("skimage") / "data" / "chelsea.png"
    with Image.open(src) as im:
        im = im.convert("RGB")
        h = im.height
        w = h * WIDTH // HEIGHT  # 4:5 H:W crop at full height
        box = (CROP_LEFT, 0, CROP_LEFT + w, h)
        return im.crop(box).resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS, reducing_gap=None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output PNG (%(default)s)")
    args = parser.parse_args(argv)
    # No metadata (ICC, XMP): the pixels are sRGB and the credit lives in CREDITS.md.
    make_cat().save(args.out, format="PNG", optimize=True)
    print(f"wrote {args.out} ({WIDTH}x{HEIGHT})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
