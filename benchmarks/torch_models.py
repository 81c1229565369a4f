"""The CIFAR-style ResNet and MobileNetV2 of :mod:`jaxconv.models` written again in PyTorch.

Written from the papers (and torchvision's layer conventions), not from the Flax code: the tests
use them as the independent reference of the architectures (parameter counts, and outputs with
the Flax model's weights copied in), the ``models`` benchmark as the PyTorch peer. Module names
mirror the Flax attribute paths (``blocks.3.conv1.conv``), so :func:`load_flax_state` copies a
Flax model's state by name. NCHW inside; :func:`load_flax_state` transposes HWIO kernels to OIHW.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ConvBN(nn.Module):
    def __init__(self, cin, cout, k, stride=1, groups=1, act=None):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)  # momentum 0.1, eps 1e-5
        self.act = act

    def forward(self, x):
        y = self.bn(self.conv(x))
        return y if self.act is None else self.act(y)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = ConvBN(cin, cout, 3, stride, act=torch.relu)
        self.conv2 = ConvBN(cout, cout, 3)
        self.shortcut = ConvBN(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(self.conv2(self.conv1(x)) + skip)


class ResNet(nn.Module):
    """He et al. 2016, CIFAR stem (3x3, stride 1, no max-pool), BasicBlocks, option-B shortcuts."""

    def __init__(self, stage_sizes=(2, 2, 2, 2), num_classes=10, width=64, in_channels=3):
        super().__init__()
        self.stem = ConvBN(in_channels, width, 3, act=torch.relu)
        blocks, cin = [], width
        for stage, n in enumerate(stage_sizes):
            for i in range(n):
                blocks.append(BasicBlock(cin, width << stage, 2 if stage and not i else 1))
                cin = width << stage
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        y = self.stem(x)
        for block in self.blocks:
            y = block(y)
        return self.fc(y.mean(dim=(2, 3)))


def _divisible(v, divisor=8):
    # torchvision.models._utils._make_divisible
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = round(cin * t)
        relu6 = nn.functional.relu6
        self.expand = ConvBN(cin, hidden, 1, act=relu6) if t != 1 else None
        self.depthwise = ConvBN(hidden, hidden, 3, stride, groups=hidden, act=relu6)
        self.project = ConvBN(hidden, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = x if self.expand is None else self.expand(x)
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """Sandler et al. 2018 Table 2, CIFAR strides: the stem and the 24-channel stage at stride 1."""

    SETTING = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes=10, width=1.0, in_channels=3):
        super().__init__()
        cin = _divisible(32 * width)
        self.stem = ConvBN(in_channels, cin, 3, act=nn.functional.relu6)
        blocks = []
        for t, c, n, s in self.SETTING:
            for i in range(n):
                blocks.append(InvertedResidual(cin, _divisible(c * width), s if i == 0 else 1, t))
                cin = _divisible(c * width)
        self.blocks = nn.ModuleList(blocks)
        last = _divisible(1280 * max(1.0, width))
        self.head = ConvBN(cin, last, 1, act=nn.functional.relu6)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x):
        y = self.stem(x)
        for block in self.blocks:
            y = block(y)
        return self.classifier(self.head(y).mean(dim=(2, 3)))


_NAMES = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean",
          "var": "running_var"}


def load_flax_state(module: nn.Module, flax_model) -> nn.Module:
    """Copy a Flax model's parameters and BatchNorm statistics into ``module``, by name."""
    from flax import nnx

    state = nnx.to_pure_dict(nnx.state(flax_model))
    flat = {}

    def walk(tree, path):
        for key, value in tree.items():
            if isinstance(value, dict):
                walk(value, (*path, str(key)))
            else:
                flat[".".join((*path, _NAMES[key]))] = np.asarray(value)

    walk(state, ())
    target = module.state_dict()
    if set(flat) != {k for k in target if not k.endswith("num_batches_tracked")}:
        raise ValueError(f"load_flax_state: the names differ: {sorted(set(flat) ^ set(target))}")
    with torch.no_grad():
        for name, value in flat.items():
            if value.ndim == 4:
                value = value.transpose(3, 2, 0, 1)  # HWIO -> OIHW
            elif value.ndim == 2:
                value = value.T  # (in, out) -> (out, in)
            target[name].copy_(torch.from_numpy(np.array(value)))  # a writable copy
    return module
