"""``jaxconv explain IMAGE --checkpoint CKPT --method M [--target N] --out PNG``.

Explains a trained LeNet-5's decision on one image with a :mod:`jaxconv.explain` method and
saves the attribution overlaid on the (32x32 grayscale) input. Bad input — a missing or broken
image or checkpoint, a target out of range, an unwritable output, a method the model cannot
run — prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

METHODS = ("gradcam", "gradcam++", "ig", "smoothgrad", "saliency", "occlusion", "guided", "deconvnet")
PROG = "jaxconv explain"


class _Fail(Exception):
    """A user error: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2) instead of usage + message."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Explain a LeNet-5 checkpoint's output on an image and save the attribution "
                    "overlaid on the input. The image is converted to 32x32 grayscale and, by "
                    "default, inverted (dark ink on light paper becomes LeNet's bright ink).",
    )
    p.add_argument("image", help="an image file (PNG, JPEG, ...)")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.msgpack from 'jaxconv train --out'")
    p.add_argument("--method", choices=METHODS, default="gradcam", help="attribution method (default gradcam)")
    p.add_argument("--target", type=int, default=None,
                   help="class to explain (default: the predicted class)")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--layer", default=None,
                   help="Grad-CAM layer: a stage name of LeNet5.features (default act2 modern, act3 classic)")
    p.add_argument("--invert", action=argparse.BooleanOptionalAction, default=True,
                   help="treat dark pixels as ink (default; --no-invert for light digits on dark)")
    p.add_argument("--steps", type=int, default=64, help="integrated-gradients steps (default 64)")
    p.add_argument("--samples", type=int, default=50, help="SmoothGrad samples (default 50)")
    p.add_argument("--window", type=int, default=4, help="occlusion window in pixels (default 4)")
    p.add_argument("--stride", type=int, default=2, help="occlusion stride in pixels (default 2)")
    p.add_argument("--seed", type=int, default=0, help="SmoothGrad noise seed")
    return p


def _load(args):
    import numpy as np

    from jaxconv.data import ImageLoadError, load_image
    from jaxconv.data.datasets import BACKGROUND, FOREGROUND
    from jaxconv.models import CheckpointError, load_checkpoint

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise _Fail(f"--out must name a .png file, got {args.out!r}")
    if not out.parent.is_dir():
        raise _Fail(f"cannot write {args.out!r}: no such folder {str(out.parent)!r}")
    try:
        img = load_image(args.image, size=(32, 32), mode="L")
    except ImageLoadError as e:
        raise _Fail(" ".join(str(e).split())) from None
    if not Path(args.checkpoint).exists():
        raise _Fail(f"no such checkpoint {args.checkpoint!r}")
    try:
        model, _ = load_checkpoint(args.checkpoint)
    except (CheckpointError, OSError) as e:
        raise _Fail(" ".join(str(e).split())) from None
    ink = 1.0 - img if args.invert else img
    x = (BACKGROUND + (FOREGROUND - BACKGROUND) * ink).astype(np.float32)[None]  # (1, 32, 32, 1)
    return model, img, x, out


def _split(model, layer: str):
    """``(body, head)`` of the model at the stage ``layer`` (body's output must be NHWC)."""
    stages = model._stages()
    names = [n for n, _ in stages]
    conv_like = [n for n in names[: names.index("flatten")]]
    if layer not in conv_like:
        raise _Fail(f"--layer must be one of {', '.join(conv_like)} (NHWC stages), got {layer!r}")
    cut = names.index(layer) + 1

    def run(part):
        def f(z):
            for _, stage in part:
                z = stage(z)
            return z

        return f

    return run(stages[:cut]), run(stages[cut:])


def _attribute(args, model, x, target: int):
    import jax

    from jaxconv import explain

    def fn(z, activation=None):
        return model(z, activation=activation)

    m = args.method
    if m in ("guided", "deconvnet") and model.variant != "modern":
        raise _Fail(f"--method {m} needs a ReLU network; the checkpoint holds a {model.variant!r} "
                    "LeNet5 (scaled tanh)")
    if m in ("gradcam", "gradcam++"):
        layer = args.layer or ("act2" if model.variant == "modern" else "act3")
        body, head = _split(model, layer)
        cam = explain.grad_cam if m == "gradcam" else explain.grad_cam_plus_plus
        return cam(body, head, x, target)
    if m == "saliency":
        return explain.saliency(fn, x, target)
    if m == "smoothgrad":
        return explain.smoothgrad(fn, x, target, key=jax.random.key(args.seed), samples=args.samples)
    if m == "ig":
        baseline = float(x.min())  # the background value: "no ink"
        return explain.integrated_gradients(fn, x, target, baseline=baseline, steps=args.steps)
    if m == "occlusion":
        return explain.occlusion(fn, x, target, window=args.window, stride=args.stride,
                                 baseline=float(x.min()))
    if m == "guided":
        return explain.guided_backprop(fn, x, target)
    return explain.deconvnet(fn, x, target)


def _save(fig, out: Path) -> None:
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex}.part")
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, out)
    except (OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise _Fail(f"cannot write {str(out)!r}: {' '.join(str(e).split())}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """``jaxconv explain``: save an attribution overlay; 0 on success, 2 on bad input."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, message already printed)
        return int(e.code or 0)
    try:
        for flag in ("steps", "samples", "window", "stride"):
            if getattr(args, flag) < 1:
                raise _Fail(f"--{flag} must be >= 1, got {getattr(args, flag)}")
        model, img, x, out = _load(args)
        import numpy as np

        logits = np.asarray(model(x))[0]
        pred = int(logits.argmax())
        target = pred if args.target is None else args.target
        if not 0 <= target < model.num_classes:
            raise _Fail(f"--target must be in [0, {model.num_classes}), got {target}")
        try:
            attr = np.asarray(_attribute(args, model, x, target), np.float32)[0]
        except (ValueError, TypeError) as e:
            raise _Fail(" ".join(str(e).split())) from None

        from jaxconv import viz

        fig = viz.figure(4.2, 3.6)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        viz.plot_attribution(
            img, attr, ax=fig.add_subplot(),
            title=f"{args.method}: class {target} (p={probs[target]:.2f}; predicted {pred})",
        )
        _save(fig, out)
    except _Fail as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # flax (checkpoints), Pillow (images) or matplotlib (PNG)
        print(f"{PROG}: missing optional dependency {e.name!r}; install it with: "
              "pip install 'jaxconv[all]'", file=sys.stderr)
        return 1
    print(f"wrote {out}: {args.method} for class {target} (predicted {pred})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
