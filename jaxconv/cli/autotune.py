"""``jaxconv autotune``: measure and cache the fastest convolution algorithm for a shape."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..convolution import autotune, cache, cases


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(p) for p in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 8x64x64x32, got {text!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return shape


def _parse_pair(text: str):
    parts = text.lower().replace("x", ",").split(",")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or a pair like 2,1, got {text!r}") from None
    if len(vals) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected an int or a pair like 2,1, got {text!r}")
    return vals[0] if len(vals) == 1 else tuple(vals)


def _parse_padding(text: str):
    if text.upper() in ("VALID", "SAME", "FULL"):
        return text.upper()
    parts = text.replace("x", ",").split(",")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected VALID, SAME, FULL, an int, ph,pw or top,bottom,left,right; got {text!r}"
        ) from None
    if len(vals) == 1:
        return vals[0]
    if len(vals) == 2:
        return tuple(vals)
    if len(vals) == 4:
        return ((vals[0], vals[1]), (vals[2], vals[3]))
    raise argparse.ArgumentTypeError(f"expected 1, 2 or 4 padding values, got {text!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """``jaxconv autotune``: measure and cache the fastest convolution algorithm for a shape."""
    parser = argparse.ArgumentParser(
        prog="jaxconv autotune",
        description="Time every applicable convolution algorithm on the default device and cache "
        f"the fastest for algorithm='auto' (cache: {cache.cache_path()}).",
    )
    parser.add_argument("x_shape", nargs="?", type=_parse_shape, help="NHWC image shape, e.g. 8x64x64x32")
    parser.add_argument("kernel_shape", nargs="?", type=_parse_shape,
                        help="HWIO kernel shape, e.g. 3x3x32x32")
    parser.add_argument("--case", choices=sorted(cases.CASES),
                        help="tune every problem of one of the benchmark cases")
    parser.add_argument("--stride", type=_parse_pair, default=1)
    parser.add_argument("--padding", type=_parse_padding, default="VALID")
    parser.add_argument("--dilation", type=_parse_pair, default=1)
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--padding-mode", default="zeros",
                        choices=("zeros", "reflect", "replicate", "circular"))
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-cache", action="store_true", help="measure only; do not write the cache")
    parser.add_argument("--mode", choices=("forward", "train"), default="forward",
                        help="time the convolution, or its forward + backward pass (what auto "
                             "uses when the convolution is differentiated)")
    parser.add_argument("--top-k", type=int, default=None, metavar="K",
                        help="time only the cost model's K best candidates plus direct")
    args = parser.parse_args(argv)

    if args.case is not None:
        if args.x_shape is not None:
            parser.error("give either --case or X_SHAPE KERNEL_SHAPE, not both")
        problems = [(p.x_shape, p.kernel_shape, p.conv_kwargs()) for p in cases.problems(args.case)]
    elif args.x_shape is None or args.kernel_shape is None:
        parser.error("X_SHAPE and KERNEL_SHAPE are required (or --case "
                     f"{'|'.join(cases.CASES)})")
    else:
        problems = [(args.x_shape, args.kernel_shape, dict(
            stride=args.stride, padding=args.padding, dilation=args.dilation, groups=args.groups))]

    path = None
    for x_shape, kernel_shape, kwargs in problems:
        try:
            result = autotune(x_shape, kernel_shape, dtype=args.dtype, repeats=args.repeats,
                              cache=not args.no_cache, padding_mode=args.padding_mode,
                              mode=args.mode, top_k=args.top_k, **kwargs)
        except (ValueError, TypeError) as e:
            print(f"jaxconv autotune: {e}", file=sys.stderr)
            return 2
        except RuntimeError as e:  # no algorithm could run the problem
            print(f"jaxconv autotune: {e}", file=sys.stderr)
            return 1
        print(result)
        print(f"winner: {result.winner}\n")
        path = result.path or path
    if path is not None:
        print(f"cached in {path}")
    return 0
