"""Train LeNet-5 on handwritten digits and write a checkpoint, metrics and plots.

    python examples/train_lenet.py --out runs/modern
    python examples/train_lenet.py --variant classic --out runs/classic
    XLA_FLAGS=--xla_force_host_platform_device_count=4 python examples/train_lenet.py --devices 4

The same options as ``jaxconv train`` (``--help``); the logic lives in
:func:`jaxconv.models.train.train`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from jaxconv.cli.train import main as train_main


def main(argv: Sequence[str] | None = None) -> int:
    return train_main(argv, prog="train_lenet.py")


if __name__ == "__main__":
    sys.exit(main())
