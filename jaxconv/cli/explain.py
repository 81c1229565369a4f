"""``jaxconv explain IMAGE --checkpoint CKPT --method M [--target N] --out PNG``.

Explains a trained LeNet-5's decision on one image with a :mod:`jaxconv.explain` method and
saves the attribution overlaid on the (32x32 grayscale) input. As every command
(:func:`jaxconv.cli.guard`): a bad flag — a target out of range, a method the model cannot run,
an unsupported output format — prints one line and exits with status 2; a missing or broken
image or checkpoint, a model whose outputs are not finite (NaN parameters) or an unwritable
output (a folder, a read-only file) prints one line and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import UsageError, check_out, guard, save_out

METHODS = ("gradcam", "gradcam++", "ig", "smoothgrad", "saliency", "occlusion", "guided", "deconvnet")
PROG = "jaxconv explain"


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
    p.add_argument("--out", required=True, help="output image (PNG, SVG, PDF, ...)")
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
    """The model, the image, the network input ``(1, 32, 32, 1)``; errors name the file (exit 1)."""
    import numpy as np

    from jaxconv.data import load_image
    from jaxconv.data.datasets import BACKGROUND, FOREGROUND
    from jaxconv.models import load_checkpoint

    img = load_image(args.image, size=(32, 32), mode="L")
    if not Path(args.checkpoint).exists():
        raise FileNotFoundError(f"no such checkpoint {args.checkpoint!r}")
    # LeNet-5's only: a ResNet or MobileNetV2 checkpoint is refused before a model is built
    model, _ = load_checkpoint(args.checkpoint, model="lenet5")
    ink = 1.0 - img if args.invert else img
    x = (BACKGROUND + (FOREGROUND - BACKGROUND) * ink).astype(np.float32)[None]  # (1, 32, 32, 1)
    return model, img, x


def _check_finite(what: str, values, checkpoint: str) -> None:
    """A NaN/inf model output or attribution is an error, not a plot of garbage (exit 1)."""
    import numpy as np

    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ValueError(
            f"the checkpoint {checkpoint!r} gives {bad} non-finite {what} (of {np.size(values)}) "
            "on this image; are its parameters NaN or inf (a diverged training run)?"
        )


def _split(model, layer: str):
    """``(body, head)`` of the model at the stage ``layer`` (body's output must be NHWC)."""
    stages = model._stages()
    names = [n for n, _ in stages]
    conv_like = [n for n in names[: names.index("flatten")]]
    if layer not in conv_like:
        raise UsageError(f"--layer must be one of {', '.join(conv_like)} (NHWC stages), got {layer!r}")
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
        raise UsageError(f"--method {m} needs a ReLU network; the checkpoint holds a {model.variant!r} "
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


def main(argv: Sequence[str] | None = None) -> int:
    """``jaxconv explain``: save an attribution overlay; 0 on success, 2 on a bad flag, else 1."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, message already printed)
        return int(e.code or 0)
    return guard(PROG, _explain_main, args)


def _explain_main(args: argparse.Namespace) -> int:
    try:
        return _explain(args)
    except ModuleNotFoundError as e:  # flax (checkpoints), Pillow (images) or matplotlib (figures)
        raise ImportError(f"missing optional dependency {e.name!r}; install it with: "
                          "pip install 'jaxconv[all]'") from None


def _explain(args: argparse.Namespace) -> int:
    for flag in ("steps", "samples", "window", "stride"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    out = check_out(args.out)  # before any work: the format, the folder, a read-only file
    model, img, x = _load(args)
    import numpy as np

    logits = np.asarray(model(x))[0]
    _check_finite("outputs", logits, args.checkpoint)
    pred = int(logits.argmax())
    target = pred if args.target is None else args.target
    if not 0 <= target < model.num_classes:
        raise UsageError(f"--target must be in [0, {model.num_classes}), got {target}")
    try:
        attr = np.asarray(_attribute(args, model, x, target), np.float32)[0]
    except (ValueError, TypeError) as e:  # a flag the method refuses (e.g. a window too large)
        raise UsageError(" ".join(str(e).split())) from None
    _check_finite("attributions", attr, args.checkpoint)

    from jaxconv import viz

    fig = viz.figure(4.2, 3.6)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    viz.plot_attribution(
        img, attr, ax=fig.add_subplot(),
        title=f"{args.method}: class {target} (p={probs[target]:.2f}; predicted {pred})",
    )
    save_out(fig, out, dpi=100)
    print(f"wrote {out}: {args.method} for class {target} (predicted {pred})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
