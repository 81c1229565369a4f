"""``jaxconv train``: train LeNet-5, ResNet-18 or MobileNetV2 on digits, MNIST or CIFAR-10 and
write the checkpoint, metrics and plots."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence

from . import UsageError, guard


def build_parser(prog: str = "jaxconv train") -> argparse.ArgumentParser:
    """The ``jaxconv train`` command line (shared with ``examples/train_lenet.py``)."""
    from jaxconv.models.train import DATA, DEFAULTS, MODELS, VARIANTS

    p = argparse.ArgumentParser(prog=prog, description="Train LeNet-5, ResNet-18 or MobileNetV2 "
                                "on digits, MNIST or CIFAR-10.")
    p.add_argument("--model", choices=MODELS, default="lenet5",
                   help="lenet5 (default), or the CIFAR-style resnet18 / mobilenetv2")
    p.add_argument("--data", choices=DATA, default="digits",
                   help="scikit-learn's 8x8 digits upsampled to 32x32 (offline), MNIST or "
                        "CIFAR-10 (RGB: resnet18 and mobilenetv2 only)")
    p.add_argument("--variant", choices=VARIANTS, default="modern",
                   help="LeNet-5: modern (ReLU, max-pool) or classic (LeCun et al. 1998)")
    p.add_argument("--width", type=float, default=None,
                   help="resnet18: first-stage channels (default 64); mobilenetv2: width "
                        "multiplier (default 1.0)")
    p.add_argument("--epochs", type=int, default=None,
                   help="default: " + ", ".join(
                       f"{k} {v['epochs']} (digits) / {v['mnist_epochs']} (mnist)"
                       for k, v in DEFAULTS.items()) + "; cifar10 30")
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
                   help="write checkpoint.msgpack (every model: parameters, BatchNorm "
                        "statistics, Adam state; after every epoch), metrics.json and PNG "
                        "plots here")
    p.add_argument("--resume", action="store_true",
                   help="continue from DIR/checkpoint.msgpack (the same --model, --variant "
                        "and --width required)")
    p.add_argument("--data-dir", "--mnist-dir", default=None, metavar="DIR", dest="data_dir",
                   help="folder with the MNIST IDX files or the CIFAR-10 archive (default: "
                        "download into the cache)")
    p.add_argument("--no-augment", dest="augment", action="store_false",
                   help="train without random shifts, rotations and scalings")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")
    p.add_argument("--distributed", action="store_true",
                   help="join a multi-process run first (jax.distributed.initialize: the "
                        "cluster is detected on SLURM, Open MPI, Kubernetes; see docs/lenet.md)")
    p.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="with --distributed, where process 0 listens (with --num-processes "
                        "and --process-id, when the cluster is not detected)")
    p.add_argument("--num-processes", type=int, default=None, metavar="N")
    p.add_argument("--process-id", type=int, default=None, metavar="I")
    return p


def main(argv: Sequence[str] | None = None, *, prog: str = "jaxconv train") -> int:
    """``jaxconv train``: train, print the test accuracy, write DIR's files when ``--out``."""
    args = build_parser(prog).parse_args(argv)
    return guard(prog, _main, args)


def _main(args: argparse.Namespace) -> int:
    import jax

    from jaxconv.models.train import _check_args, _devices, initialize_distributed, train

    width = args.width
    if width is not None and args.model == "resnet18" and float(width).is_integer():
        width = int(width)  # ResNet's width is a channel count
    with _usage():  # a bad option is a usage error (exit 2), found before any work
        _check_args(data=args.data, variant=args.variant, epochs=args.epochs,
                    batch_size=args.batch_size, learning_rate=args.learning_rate,
                    algorithm=args.algorithm, resume=args.resume, out=args.out,
                    model=args.model, width=width)
        cluster = (args.coordinator, args.num_processes, args.process_id)
        if not args.distributed and any(v is not None for v in cluster):
            raise ValueError("--coordinator, --num-processes and --process-id need --distributed")
    if args.distributed:
        with _usage():
            initialize_distributed(*cluster)
    with _usage():  # the device count is known once the processes have joined
        _devices(args.devices)
    try:
        _, m = train(
            data=args.data, variant=args.variant, epochs=args.epochs, batch_size=args.batch_size,
            seed=args.seed, devices=args.devices, algorithm=args.algorithm, out=args.out,
            resume=args.resume, progress=args.progress, learning_rate=args.learning_rate,
            augment=args.augment, model=args.model, width=width, data_dir=args.data_dir,
        )
    except (TypeError, ValueError) as e:  # guard prefixes the command: one "train:" is enough
        e.args = (str(e).removeprefix("train: "), *e.args[1:])
        raise
    if jax.process_index() == 0:
        right = round(m["test_accuracy"] * m["test_size"])
        print(
            f"{m['title']} on {args.data}: test accuracy "
            f"{100 * m['test_accuracy']:.2f}% ({right}/{m['test_size']}) after {m['epochs']} "
            f"epochs in {m['train_seconds']:.1f} s on {m['devices']} {m['backend']} device(s)"
            + (f" in {m['processes']} processes" if m["processes"] > 1 else "")
            + (f"; wrote {args.out}" if args.out else "")
        )
    return 0


@contextlib.contextmanager
def _usage():
    """Turn the library's argument errors into :class:`UsageError` (exit 2), worded as options."""
    try:
        yield
    except (TypeError, ValueError) as e:
        message = str(e).removeprefix("train: ").removeprefix("initialize_distributed: ")
        for name in ("batch_size", "learning_rate", "epochs", "algorithm", "devices",
                     "num_processes", "process_id", "width", "model", "data"):
            message = message.replace(f"{name} must", f"--{name.replace('_', '-')} must")
        raise UsageError(message.replace("--learning-rate", "--lr")
                         .replace("resume=True needs out=DIR", "--resume needs --out DIR")) from None
