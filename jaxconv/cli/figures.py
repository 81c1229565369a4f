"""``jaxconv figures``: regenerate the article's figures from the bundled cat."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from ..figures import STYLES, make_figures, select_figures
from . import UsageError, guard


def _default_bench(path):
    """``--bench`` as given, else ``bench-results/benchmark.json`` if a sweep left one here."""
    if path is not None:
        return path
    default = Path("bench-results") / "benchmark.json"
    return str(default) if default.is_file() else None

def main(argv: Sequence[str] | None = None, *, default_out: str = "figures") -> int:
    """``jaxconv figures [--out DIR] [--style article|modern] [--seed N]``."""
    parser = argparse.ArgumentParser(
        prog="jaxconv figures",
        description="Regenerate the article's figures from the bundled cat into DIR, with "
                    "DIR/manifest.json and a gallery DIR/index.html.",
    )
    parser.add_argument("--out", default=default_out, help="output folder (default: %(default)s)")
    parser.add_argument("--style", choices=STYLES, default="modern",
                        help="'article': the 2017 look (wrap-around RGB, jet + bilinear); "
                             "'modern' (default): stage strips, honest colour scales, colorbars")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random filters (default 0)")
    parser.add_argument("--checkpoint", help="a LeNet-5 checkpoint (default: train on digits now)")
    parser.add_argument("--bench", help="a benchmark JSON from `nox -s bench` to plot "
                        "(default: bench-results/benchmark.json when it exists)")
    parser.add_argument("--only", help="comma-separated figure names or groups "
                                       "(stacks, illustrations, extras)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--small", action="store_true", help=argparse.SUPPRESS)  # smoke tests
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return guard("jaxconv figures", _figures_main, args)


def _figures_main(args: argparse.Namespace) -> int:
    try:
        select_figures(args.only)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    t0 = time.perf_counter()
    manifest = make_figures(args.out, style=args.style, seed=args.seed, small=args.small,
                            only=args.only, checkpoint=args.checkpoint,
                            bench=_default_bench(args.bench), epochs=args.epochs,
                            progress=not args.no_progress)
    made = [e for e in manifest["figures"] if e["file"]]
    skipped = [e for e in manifest["figures"] if not e["file"]]
    print(f"wrote {len(made)} figures to {args.out}/ in {time.perf_counter() - t0:.1f} s; "
          f"gallery: {Path(args.out) / 'index.html'}")
    for entry in skipped:
        print(f"  skipped {entry['name']}: {entry['skipped']}")
    return 0
