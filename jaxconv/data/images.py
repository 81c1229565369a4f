"""Images: the bundled cat and a loader for any user image.

Both return NumPy arrays in **HWC** layout, ``(H, W, C)``, floating point in ``[0, 1]``; add a
batch axis (``x[None]``) for the ops' ``(N, H, W, C)``. Pillow is imported on first use.
"""

from __future__ import annotations

import os
import warnings
from importlib import resources
from typing import Any

import numpy as np

MODES = ("RGB", "L", "RGBA")


class ImageLoadError(ValueError):
    """An image file is missing, unreadable, corrupt, truncated or too large.

    The message names the file and the reason, on one line; ``path`` holds the file name.
    """

    def __init__(self, path: Any, reason: str):
        self.path = os.fspath(path) if isinstance(path, str | os.PathLike) else repr(path)
        self.reason = reason
        super().__init__(f"cannot load image {self.path!r}: {reason}")


def cat(dtype: Any = np.float32) -> np.ndarray:
    """The bundled photo "Chelsea the cat" (scikit-image sample data, CC0, Stefan van der Walt).

    Cropped to the 4:5 aspect and resized to 320x400 as in the 2017 article "Visualizing parts of
    Convolutional Neural Networks using Keras and Cats", so that a 3x3 VALID convolution gives
    318x398 and 5x5 max pooling after it 63x79. Credits: ``jaxconv/data/CREDITS.md``.

    Args:
      dtype: a floating dtype for the result (default float32).

    Returns:
      ``(320, 400, 3)`` RGB array (HWC) with values in ``[0, 1]``.

    Examples:
      >>> from jaxconv.data import cat
      >>> cat().shape
      (320, 400, 3)
    """
    with resources.as_file(resources.files(__package__) / "cat.png") as path:
        return load_image(path, dtype=dtype)


def _check_size(size: Any) -> tuple[int, int] | int | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        if size < 1:
            raise ValueError(f"load_image: size must be >= 1, got {size!r}")
        return size
    if (
        isinstance(size, tuple | list)
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in size)
    ):
        if min(size) < 1:
            raise ValueError(f"load_image: size (H, W) must be >= 1 each, got {tuple(size)!r}")
        return (int(size[0]), int(size[1]))
    raise TypeError(
        f"load_image: size must be None, an int (the longer side) or a pair (H, W), got {size!r}"
    )


def _to_float(im, work: np.dtype) -> np.ndarray:
    """A decoded Pillow image as ``(H, W, C)`` in [0, 1] of dtype ``work``, C in {1, 2, 3, 4}.

    Converted straight from the decoded pixels to ``work`` (float32 for a float32 result): no
    float64 copy of a large photo is ever made.
    """
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode in ("1", "LA", "La"):
        im = im.convert("LA" if mode != "1" else "L")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode.startswith("I;16") or mode == "I":
        # 16-bit (and 32-bit integer) grayscale: keep the precision an 8-bit convert would drop.
        raw = np.asarray(im)
        scale = 65535.0 if mode.startswith("I;16") or raw.max(initial=0) <= 65535 else 2.0**32 - 1
        a = raw.astype(np.float64 if raw.dtype.itemsize > 2 else work)
        return np.clip(a / scale, 0.0, 1.0).astype(work, copy=False)[..., None]
    elif mode == "F":
        return np.clip(np.asarray(im, dtype=work), 0.0, 1.0)[..., None]
    elif mode not in ("L", "RGB", "RGBA"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...
    a = np.asarray(im).astype(work)
    a /= 255.0
    return a[..., None] if a.ndim == 2 else a


def _composite_on_white(a: np.ndarray) -> np.ndarray:
    color, alpha = a[..., :-1], a[..., -1:]
    return color * alpha + (1.0 - alpha)


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    h, w = size
    # Resample each channel in float ("F" mode) so 16-bit precision survives; Lanczos overshoots.
    chans = [
        np.asarray(Image.fromarray(np.ascontiguousarray(a[..., c], dtype=np.float32), mode="F")
                   .resize((w, h), Image.Resampling.LANCZOS))
        for c in range(a.shape[-1])
    ]
    return np.clip(np.stack(chans, axis=-1).astype(a.dtype, copy=False), 0.0, 1.0)


def load_image(path: Any, size: Any = None, mode: str = "RGB", *, dtype: Any = np.float32,
               max_side: int | None = None) -> np.ndarray:
    """Load an image file as a float array in **HWC** layout with values in ``[0, 1]``.

    The EXIF orientation is applied (a phone photo comes out upright); transparency is composited
    on white; palette, 1-bit, grayscale, 16-bit grayscale, CMYK and other modes are converted.
    Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) is kept: a larger image
    raises ``ImageLoadError`` (between one and two times the limit, Pillow warns first).

    Args:
      path: a file name (``str`` or ``os.PathLike``).
      size: ``None`` (keep), ``(H, W)`` (resize to exactly that), or an ``int`` (resize so that
        the longer side has that many pixels, keeping the aspect). Lanczos filter.
      mode: ``"RGB"`` (C=3), ``"L"`` (C=1, ITU-R 601 luma) or ``"RGBA"`` (C=4, alpha kept
        instead of composited).
      dtype: a floating dtype for the result (default float32); the pixels are converted to it
        (at least float32) straight from the decoded image.
      max_side: shrink (never enlarge) so that the longer side has at most this many pixels,
        keeping the aspect; applied when ``size`` is ``None``. The image is decoded once.

    Returns:
      ``(H, W, C)`` array, C = 3, 1 or 4 for ``mode`` RGB, L, RGBA.

    Raises:
      ImageLoadError: (a ``ValueError``) the file is missing, not an image, corrupt, truncated,
        empty or too large; the message names the file and the reason.
    """
    if mode not in MODES:
        raise ValueError(f"load_image: mode must be one of {', '.join(MODES)}, got {mode!r}")
    size = _check_size(size)
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"load_image: dtype must be a floating dtype, got {dtype}")
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"load_image: path must be a str or os.PathLike, got {path!r}")
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, int)
                                 or max_side < 1):
        raise ValueError(f"load_image: max_side must be None or an int >= 1, got {max_side!r}")
    work = np.dtype(np.result_type(dtype, np.float32))

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        if os.path.isdir(path):
            raise ImageLoadError(path, "is a directory")
        if os.path.exists(path) and os.path.getsize(path) == 0:
            raise ImageLoadError(path, "the file is empty")
        with Image.open(path) as raw:
            raw.load()  # decode now: truncation and corruption surface here, inside the try
            # exif_transpose warns on some malformed EXIF blocks; the pixels are still right.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                im = ImageOps.exif_transpose(raw)
            a = _to_float(im, work)
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError(path, "no such file") from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except Image.DecompressionBombError as e:
        raise ImageLoadError(path, f"too large (decompression-bomb limit): {e}") from None
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not a recognised image format (or corrupt)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as e:
        # Pillow reports truncated/corrupt data with OSError ("image file is truncated"),
        # SyntaxError (bad headers in some plugins) or struct/Value errors.
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ImageLoadError(path, f"corrupt or truncated image data ({reason})") from None
    if a.size == 0:
        raise ImageLoadError(path, "the image has no pixels")

    c = a.shape[-1]
    has_alpha = c in (2, 4)
    if mode == "RGBA":
        if not has_alpha:
            a = np.concatenate([a, np.ones((*a.shape[:-1], 1), a.dtype)], axis=-1)
        if a.shape[-1] == 2:  # gray + alpha
            a = np.concatenate([np.repeat(a[..., :1], 3, axis=-1), a[..., 1:]], axis=-1)
    else:
        if has_alpha:
            a = _composite_on_white(a)
        if mode == "RGB" and a.shape[-1] == 1:
            a = np.repeat(a, 3, axis=-1)
        elif mode == "L" and a.shape[-1] == 3:
            # ITU-R 601-2 luma, as Pillow's convert("L").
            a = a @ np.array([0.299, 0.587, 0.114], a.dtype)
            a = a[..., None]

    if size is None and max_side is not None and max(a.shape[:2]) > max_side:
        size = max_side
    if size is not None:
        h, w = a.shape[:2]
        if isinstance(size, int):
            scale = size / max(h, w)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
        if size != (h, w):
            a = _resize(a, size)
    return a.astype(dtype, copy=False)
