"""``jaxconv calibrate``: rescale the cost model of ``algorithm="auto"`` for this machine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..convolution import calibration, cost_model
from . import UsageError


def main(argv: Sequence[str] | None = None) -> int:
    """Time the algorithms on small versions of the benchmark problems and save the factors."""
    parser = argparse.ArgumentParser(
        prog="jaxconv calibrate",
        description="Time every convolution algorithm on small versions of the benchmark "
        "problems (under a minute) and rescale the cost model of algorithm='auto' for this "
        f"device (saved in {cost_model.calibration_path()}).",
    )
    parser.add_argument("--budget", type=float, default=45.0, metavar="SECONDS",
                        help="time budget; problems left when it runs out are skipped (default 45)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per algorithm (default 3)")
    parser.add_argument("--dry-run", action="store_true", help="measure and print; save nothing")
    parser.add_argument("--quiet", action="store_true", help="no per-problem progress lines")
    args = parser.parse_args(argv)
    # Bad flags are usage errors (2); what the library raises afterwards exits 1 through
    # cli.guard. An unusable calibration.json is ignored with a warning and replaced.
    if args.repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {args.repeats}")
    if not args.budget > 0 or args.budget == float("inf"):
        raise UsageError(f"--budget must be a finite number of seconds > 0, got {args.budget}")
    result = calibration.calibrate(
        repeats=args.repeats, budget_s=args.budget, save=not args.dry_run,
        progress=None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True)),
    )
    print(result)
    if result.path is not None:
        print(f"saved in {result.path}")
    return 0
