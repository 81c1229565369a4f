"""Data: the bundled cat photo, image loading, handwritten digits, MNIST and CIFAR-10.

Names are imported lazily so that ``import jaxconv.data`` needs neither Pillow nor scikit-learn
until the function that uses them is called.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "cat": "images",
    "load_image": "images",
    "ImageLoadError": "images",
    "digits": "datasets",
    "mnist": "datasets",
    "cifar10": "datasets",
    "CIFARError": "datasets",
    "read_idx": "datasets",
    "IDXError": "datasets",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
