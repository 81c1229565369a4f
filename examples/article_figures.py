"""Regenerate the figures of "Visualizing parts of Convolutional Neural Networks using Keras and
Cats" (E. Reppel, 2017) from the bundled cat, and a few more, into ``figures/``.

    python examples/article_figures.py                   # modern style, seed 0, into figures/
    python examples/article_figures.py --style article   # the 2017 look
    python examples/article_figures.py --out /tmp/figs --seed 1

The logic lives in :mod:`jaxconv.figures` (also ``jaxconv figures`` and ``nox -s figures``);
open ``figures/index.html`` for the gallery and ``figures/manifest.json`` for the list.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from jaxconv.cli.figures import main as figures_main

    return figures_main(argv, default_out="figures")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
