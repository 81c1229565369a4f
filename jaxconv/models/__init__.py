"""Models built from jaxconv's ops (Flax NNX): LeNet-5, a CIFAR-style ResNet (18, 34) and
MobileNetV2, their training loop and their checkpoints.

The models and the checkpoint functions need Flax. The training loop lives in
:mod:`jaxconv.models.train` (``from jaxconv.models.train import train``; it also needs optax and
tqdm: ``pip install 'jaxconv[models]'``) and is imported only when asked for.
"""

from .checkpoint import CheckpointError, check_checkpoint, load_checkpoint, save_checkpoint
from .flax_hook import use_jaxconv
from .lenet import C3_TABLE, VARIANTS, LeNet5
from .mobilenet import MobileNetV2
from .resnet import ResNet

__all__ = [
    "C3_TABLE",
    "VARIANTS",
    "CheckpointError",
    "LeNet5",
    "MobileNetV2",
    "ResNet",
    "check_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "use_jaxconv",
]

