"""Models built from jaxconv's ops: LeNet-5 (Flax NNX), its training loop and checkpoints.

``LeNet5`` and the checkpoint functions need Flax. The training loop lives in
:mod:`jaxconv.models.train` (``from jaxconv.models.train import train``; it also needs optax and
tqdm: ``pip install 'jaxconv[models]'``) and is imported only when asked for.
"""

from .checkpoint import CheckpointError, check_checkpoint, load_checkpoint, save_checkpoint
from .lenet import C3_TABLE, VARIANTS, LeNet5

__all__ = [
    "C3_TABLE",
    "VARIANTS",
    "CheckpointError",
    "LeNet5",
    "check_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]

