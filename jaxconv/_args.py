"""Canonicalization and validation shared by convolution and pooling.

Every public op turns its int / pair / string arguments into hashable tuples here, *before*
tracing, and raises ``ValueError`` (bad sizes or values) or ``TypeError`` (bad kinds, non-float
dtypes) with a message naming the function, the argument, the rule and the values received.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

# (channels-last, channels-first) image layouts per number of spatial axes.
LAYOUTS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
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


def check_elements(fn: str, name: str, value: Any, what: str, shape: Sequence[int],
                   builder: str = "the op") -> None:
    """``ValueError`` naming ``name`` unless an array of ``shape`` has at most 2**31 - 1 elements.

    For the *products* an op hands XLA (a padded input, an output, an intermediate), not only
    each axis: every extent may fit int32 while their product overflows int64, and XLA then
    aborts the process ("overflow in static extent product") -- even when a later extent is 0,
    since it multiplies in order, so an empty axis counts as 1 here. The int32 bound is also
    cuDNN's (int32 tensor descriptors) and keeps any byte count far from overflowing. The
    message reads ``"{fn}: {name} {value} {what} AxBxC = count elements; ..."``.
    """
    count = math.prod(max(int(d), 1) for d in shape)
    if count > INT32_MAX:
        empty = " (an empty axis counted as 1)" if 0 in shape else ""
        raise ValueError(
            f"{fn}: {name} {value} {what} {'x'.join(map(str, shape))} = {count} elements{empty}; "
            f"an array {builder} builds must have at most 2**31 - 1"
        )


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


def check_data_format(fn: str, data_format: Any, spatial: int = 2) -> str:
    """Upper-cased ``data_format``: channels-last or channels-first for ``spatial`` axes."""
    last, first = LAYOUTS[spatial]
    if not isinstance(data_format, str) or data_format.upper() not in (last, first):
        raise ValueError(f"{fn}: data_format must be {last!r} or {first!r}, got {data_format!r}")
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


def image_rank(fn: str, name: str, x: Any, data_format: str,
               spatial: int = 2) -> tuple[bool, tuple[int, ...]]:
    """Validate an image's rank; return ``(unbatched, batched channels-last shape)``."""
    if x.ndim not in (spatial + 1, spatial + 2):
        layout = data_format if x.ndim != spatial + 1 else data_format[1:]
        raise ValueError(
            f"{fn}: {name} must have rank {spatial + 2} ({data_format}) or {spatial + 1} "
            f"(unbatched {data_format[1:]}), got rank {x.ndim} with shape {tuple(x.shape)} "
            f"(layout {layout})"
        )
    unbatched = x.ndim == spatial + 1
    shape = tuple(int(d) for d in ((1, *x.shape) if unbatched else x.shape))
    if data_format[1] == "C":
        shape = (shape[0], *shape[2:], shape[1])
    return unbatched, shape
