"""Canonicalization and validation shared by convolution and pooling.

Every public op turns its int / pair / string arguments into hashable tuples here, *before*
tracing, and raises ``ValueError`` (bad sizes or values) or ``TypeError`` (bad kinds, non-float
dtypes) with a message naming the function, the argument, the rule and the values received.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

Pair = tuple[int, int]
Pads = tuple[tuple[int, int], tuple[int, int]]

DATA_FORMATS = ("NHWC", "NCHW")
# Largest size XLA indexes with int32; every extent we compute must fit.
INT32_MAX = 2**31 - 1


def is_int(v: Any) -> bool:
    """True for Python/NumPy integers, False for bools (``True`` is not a size)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_)


def ntuple(fn: str, name: str, value: Any, n: int, *, minimum: int = 1) -> tuple[int, ...]:
    """Canonicalize ``int | (int,) * n`` to ``n`` ints ``>= minimum`` (each fitting in int32)."""
    if is_int(value):
        out = (int(value),) * n
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == n
        and all(is_int(v) for v in value)
    ):
        out = tuple(int(v) for v in value)
    else:
        raise TypeError(f"{fn}: {name} must be an int or {tuple_words(n)}, got {value!r}")
    if min(out) < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value!r}")
    check_int32(fn, name, out, value)
    return out


def tuple_words(n: int) -> str:
    """``"a pair of ints"``, ``"a tuple of 3 ints"``, ``"a tuple of 1 int"``."""
    return "a pair of ints" if n == 2 else f"a tuple of {n} int{'s' if n > 1 else ''}"


def check_int32(fn: str, name: str, values: Sequence[int], shown: Any) -> None:
    """``ValueError`` unless every ``|value|`` fits in int32 (XLA's sizes and strides)."""
    if any(abs(v) > INT32_MAX for v in values):
        raise ValueError(f"{fn}: {name} must be at most 2**31 - 1, got {shown!r}")


def pair(fn: str, name: str, value: Any, *, minimum: int = 1) -> Pair:
    """Canonicalize ``int | (int, int)`` to a pair of ints ``>= minimum``."""
    return ntuple(fn, name, value, 2, minimum=minimum)  # type: ignore[return-value]


def explicit_pads(fn: str, name: str, value: Any, n: int = 2) -> tuple[tuple[int, int], ...] | None:
    """Canonicalize ``int | (p,) * n | ((lo, hi),) * n`` to ``n`` pairs ``(lo, hi)``.

    Returns ``None`` when ``value`` is a string (the caller handles named paddings).
    """
    if isinstance(value, str):
        return None
    pads: tuple[tuple[int, int], ...]
    if is_int(value):
        pads = ((int(value), int(value)),) * n
    elif isinstance(value, Sequence) and len(value) == n and all(is_int(v) for v in value):
        pads = tuple((int(v), int(v)) for v in value)
    elif (
        isinstance(value, Sequence)
        and len(value) == n
        and all(
            isinstance(v, Sequence) and not isinstance(v, str) and len(v) == 2
            and all(is_int(u) for u in v)
            for v in value
        )
    ):
        pads = tuple((int(v[0]), int(v[1])) for v in value)
    else:
        if n == 2:
            forms = "a pair (ph, pw) or pairs ((top, bottom), (left, right))"
        else:
            forms = f"{tuple_words(n)} or {n} (low, high) pair{'s' if n > 1 else ''}"
        raise TypeError(f"{fn}: {name} must be a string, an int, {forms}, got {value!r}")
    if min(min(p) for p in pads) < 0:
        raise ValueError(f"{fn}: {name} must be non-negative, got {value!r}")
    check_int32(fn, name, [p for side in pads for p in side], value)
    return pads


def named_pads(
    fn: str, name: str, value: str, size: Sequence[int], window: Sequence[int],
    stride: Sequence[int], allowed: Sequence[str],
) -> Any:
    """Explicit pads for ``"VALID" | "SAME" | "FULL"`` given the input and effective window size.

    SAME follows ``jax.lax``: output ``ceil(size / stride)``, the odd extra pad at the end.
    """
    key = value.upper()
    if key not in allowed:
        raise ValueError(
            f"{fn}: unknown {name} {value!r}; expected one of {', '.join(map(repr, allowed))}, "
            "an int, a pair or pairs of pairs"
        )
    pads = []
    for n, k, s in zip(size, window, stride, strict=True):
        if key == "VALID":
            pads.append((0, 0))
        elif key == "SAME":
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        else:  # FULL: every partial overlap of kernel and input
            pads.append((k - 1, k - 1))
    return tuple(pads)


def check_data_format(fn: str, data_format: Any) -> str:
    if not isinstance(data_format, str) or data_format.upper() not in DATA_FORMATS:
        raise ValueError(f"{fn}: data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    return data_format.upper()


def as_array(fn: str, name: str, x: Any) -> Any:
    """Accept jax/NumPy arrays and tracers as they are; convert lists/scalars with NumPy."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return x
    try:
        return np.asarray(x)
    except Exception as e:  # pragma: no cover - exotic objects
        raise TypeError(f"{fn}: {name} must be an array, got {type(x).__name__}") from e


def check_float(fn: str, name: str, x: Any) -> None:
    """Raise ``TypeError`` unless ``x`` has a real floating dtype."""
    dtype = np.dtype(x.dtype) if not hasattr(x.dtype, "name") else x.dtype
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"{fn}: {name} must have a floating dtype (float16, bfloat16, float32, float64), "
            f"got {dtype}"
        )


def accumulation_dtype(dtype):
    """float32 for float16 / bfloat16 (sums of many half-precision values lose digits fast),
    else ``dtype`` itself: the dtype the ops accumulate in before casting back."""
    return jnp.promote_types(dtype, jnp.float32)


def image_rank(fn: str, name: str, x: Any, data_format: str) -> tuple[bool, tuple[int, int, int, int]]:
    """Validate an image's rank; return ``(unbatched, (N, H, W, C))`` whatever the layout."""
    if x.ndim not in (3, 4):
        layout = data_format if x.ndim != 3 else data_format[1:]
        raise ValueError(
            f"{fn}: {name} must have rank 4 ({data_format}) or 3 (unbatched {data_format[1:]}), "
            f"got rank {x.ndim} with shape {tuple(x.shape)} (layout {layout})"
        )
    unbatched = x.ndim == 3
    shape = (1, *x.shape) if unbatched else tuple(x.shape)
    if data_format == "NCHW":
        n, c, h, w = shape
    else:
        n, h, w, c = shape
    return unbatched, (int(n), int(h), int(w), int(c))


def to_nhwc(x, data_format: str, unbatched: bool):
    """Bring ``x`` to batched NHWC (inside the jitted core)."""
    if unbatched:
        x = x[None]
    if data_format == "NCHW":
        x = jnp.transpose(x, (0, 2, 3, 1))
    return x


def from_nhwc(y, data_format: str, unbatched: bool):
    """Inverse of :func:`to_nhwc`."""
    if data_format == "NCHW":
        y = jnp.transpose(y, (0, 3, 1, 2))
    if unbatched:
        y = y[0]
    return y
