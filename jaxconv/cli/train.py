"""``jaxconv train``: train LeNet-5 on digits or MNIST and write its checkpoint, metrics, plots."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import UsageError, guard


def build_parser(prog: str = "jaxconv train") -> argparse.ArgumentParser:
    from jaxconv.models.train import DEFAULTS, VARIANTS

    """The ``jaxconv train`` command line (shared with ``examples/train_lenet.py``)."""
    p = argparse.ArgumentParser(prog=prog, description="Train LeNet-5 on digits or MNIST.")
    p.add_argument("--data", choices=("digits", "mnist"), default="digits",
                   help="scikit-learn's 8x8 digits upsampled to 32x32 (offline) or MNIST")
    p.add_argument("--variant", choices=VARIANTS, default="modern",
                   help="modern (ReLU, max-pool) or classic (LeCun et al. 1998)")
    p.add_argument("--epochs", type=int, default=None,
                   help="default: " + ", ".join(
                       f"{k} {v['epochs']} (digits) / {v['mnist_epochs']} (mnist)"
                       for k, v in DEFAULTS.items()))
    p.add_argument("--batch-size", type=int, default=None,
                   help="global batch, split over the devices (default: " + ", ".join(
                       f"{k} {v['batch_size']}" for k, v in DEFAULTS.items()) + ")")
    p.add_argument("--lr", type=float, default=None, dest="learning_rate",
                   help="peak learning rate (default per variant)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--devices", type=int, default=None, metavar="N",
                   help="data-parallel over the first N devices (default all)")
    p.add_argument("--algorithm", default="auto",
                   help="jaxconv.conv2d algorithm: auto (default: chosen per layer) or a name "
                        "from jaxconv.algorithms()")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write checkpoint.msgpack, metrics.json and PNG plots here")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.msgpack")
    p.add_argument("--mnist-dir", default=None, metavar="DIR",
                   help="folder with the MNIST IDX files (default: download into the cache)")
    p.add_argument("--no-augment", dest="augment", action="store_false",
                   help="train without random shifts, rotations and scalings")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")
    p.add_argument("--distributed", action="store_true",
                   help="call jax.distributed.initialize() first (multi-host; see docs/lenet.md)")
    return p


def main(argv: Sequence[str] | None = None, *, prog: str = "jaxconv train") -> int:
    """``jaxconv train``: train, print the test accuracy, write DIR's files when ``--out``."""
    args = build_parser(prog).parse_args(argv)
    return guard(prog, _main, args)


def _main(args: argparse.Namespace) -> int:
    import jax

    from jaxconv.models.train import _check_args, train

    try:  # a bad option is a usage error (exit 2), found before any work
        _check_args(data=args.data, variant=args.variant, epochs=args.epochs,
                    batch_size=args.batch_size, learning_rate=args.learning_rate,
                    algorithm=args.algorithm, resume=args.resume, out=args.out)
    except (TypeError, ValueError) as e:
        message = str(e).removeprefix("train: ")
        for name in ("batch_size", "learning_rate", "epochs", "algorithm"):
            message = message.replace(f"{name} must", f"--{name.replace('_', '-')} must")
        raise UsageError(message.replace("--learning-rate", "--lr")
                         .replace("resume=True needs out=DIR", "--resume needs --out DIR")) from None
    if args.distributed:
        jax.distributed.initialize()
    _, m = train(
        data=args.data, variant=args.variant, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, devices=args.devices, algorithm=args.algorithm, out=args.out,
        resume=args.resume, progress=args.progress, learning_rate=args.learning_rate,
        augment=args.augment, mnist_dir=args.mnist_dir,
    )
    if jax.process_index() == 0:
        right = round(m["test_accuracy"] * m["test_size"])
        print(
            f"LeNet-5 ({m['variant']}) on {args.data}: test accuracy "
            f"{100 * m['test_accuracy']:.2f}% ({right}/{m['test_size']}) after {m['epochs']} "
            f"epochs in {m['train_seconds']:.1f} s on {m['devices']} {m['backend']} device(s)"
            + (f"; wrote {args.out}" if args.out else "")
        )
    return 0
