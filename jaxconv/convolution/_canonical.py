"""Validation and canonicalization of convolution arguments, shared by every entry point.

``conv2d``, ``select_algorithm`` and ``autotune`` all call :func:`canonicalize` with their own
name, so each error message names the function the user called. It runs before tracing, on
anything with ``shape``/``ndim``/``dtype`` (arrays, tracers, ``jax.ShapeDtypeStruct``), and
returns hashable static configuration for the jitted core. It is written for any number of
spatial axes (``spatial=1, 2, 3``); the 2-D messages name height and width. Sizes are checked
per axis (int32 extents) and as products (:func:`check_sizes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .. import _args
from ._registry import ConvConfig

# What users may pass as ``padding`` and ``precision`` (see ``conv2d``'s docstring).
Padding = str | int | Sequence[int] | Sequence[tuple[int, int]]
PrecisionLike = None | str | lax.Precision | tuple[Any, Any]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
NAMED_PADDINGS = ("VALID", "SAME", "FULL")
# Spatial axis letters and names, innermost last.
_AXES = {1: "W", 2: "HW", 3: "DHW"}
_AXIS_NAMES = {"D": "depth", "H": "height", "W": "width"}


def layouts(spatial: int) -> tuple[str, str]:
    """``(channels-last, channels-first)`` layout names, e.g. ``("NHWC", "NCHW")``."""
    return _args.LAYOUTS[spatial]


def kernel_layout(spatial: int) -> str:
    """``"HWIO"`` for 2-D, ``"WIO"`` / ``"DHWIO"`` for 1-D / 3-D."""
    return f"{_AXES[spatial]}IO"


class Canonical(NamedTuple):
    """What an entry point hands to the selector and the jitted core, after validation."""

    x_shape: tuple[int, ...]  # batched channels-last shape the algorithm sees (after mode padding)
    kernel_shape: tuple[int, ...]
    dtype: Any
    config: ConvConfig
    mode_pads: Any  # non-zero padding applied by ``jnp.pad`` before dispatch, or None
    padding_mode: str
    unbatched: bool
    data_format: str


def canonical_precision(fn: str, precision: Any) -> Any:
    """``None``, a :class:`jax.lax.Precision` or a pair of them, from names or enums."""
    if precision is None or isinstance(precision, lax.Precision):
        return precision
    if isinstance(precision, str):
        try:
            return lax.Precision(precision.lower())  # lax only knows the lowercase names
        except (ValueError, KeyError) as e:
            raise ValueError(
                f"{fn}: unknown precision {precision!r}; expected None, 'default', 'high', "
                "'highest' or a jax.lax.Precision"
            ) from e
    if (
        isinstance(precision, tuple | list)
        and len(precision) == 2
        and all(p is None or isinstance(p, str | lax.Precision) for p in precision)
    ):
        return tuple(canonical_precision(fn, p) for p in precision)
    raise TypeError(
        f"{fn}: precision must be None, a string, a jax.lax.Precision or a pair of them, "
        f"got {precision!r}"
    )


_LAYOUT_NAMES = tuple(name for s in (1, 2, 3) for name in layouts(s))


def spatial_of(x: Any, kernel: Any, data_format: Any) -> int:
    """The spatial dims of a problem given by shapes (``autotune``, ``select_algorithm``): the
    layout name's, else the kernel's rank when x's rank agrees, else 2 (whose validation then
    says what is wrong)."""
    if isinstance(data_format, str) and data_format.upper() in _LAYOUT_NAMES:
        return len(data_format) - 2
    spatial = kernel.ndim - 2
    if spatial not in (1, 2, 3) or x.ndim not in (spatial + 1, spatial + 2):
        return 2
    return spatial


def canonicalize(fn: str, x: Any, kernel: Any, bias: Any = None, *, stride: Any = 1,
                 padding: Any = "VALID", dilation: Any = 1, groups: Any = 1,
                 padding_mode: Any = "zeros", data_format: Any = None, precision: Any = None,
                 spatial: int = 2) -> tuple[Any, Any, Any, Canonical]:
    """Validate a convolution's arguments for ``fn``; return ``(x, kernel, bias, Canonical)``.

    ``x``, ``kernel`` and ``bias`` only need ``shape``/``ndim``/``dtype``. Raises ``ValueError``
    for bad sizes or values and ``TypeError`` for bad kinds, naming ``fn``, the argument, the
    rule and the values received.
    """
    if data_format is None:
        data_format = layouts(spatial)[0]
    data_format = _args.check_data_format(fn, data_format, spatial)
    x = _args.as_array(fn, "x", x)
    kernel = _args.as_array(fn, "kernel", kernel)
    unbatched, xs = _args.image_rank(fn, "x", x, data_format, spatial)
    n, size, c = xs[0], xs[1:-1], xs[-1]
    klayout = kernel_layout(spatial)
    if kernel.ndim != spatial + 2:
        names = ", ".join(f"k{a.lower()}" for a in _AXES[spatial]) if spatial > 1 else "k"
        raise ValueError(
            f"{fn}: kernel must have rank {spatial + 2} ({names}, C // groups, O) in {klayout} "
            f"layout, got rank {kernel.ndim} with shape {tuple(kernel.shape)}"
        )
    _args.check_float(fn, "x", x)
    _args.check_float(fn, "kernel", kernel)
    kshape = tuple(int(d) for d in kernel.shape)
    ksize, kin, o = kshape[:-2], kshape[-2], kshape[-1]

    if not _args.is_int(groups):
        raise TypeError(f"{fn}: groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"{fn}: groups must be >= 1, got {groups}")
    if c % groups:
        raise ValueError(
            f"{fn}: groups={groups} must divide the input channels C={c} (x.shape={tuple(x.shape)})"
        )
    if kin != c // groups:
        raise ValueError(
            f"{fn}: kernel expects {c // groups} input channels (x has C={c}, groups={groups}) "
            f"but kernel.shape[{spatial}] is {kin}"
        )
    if o % groups:
        raise ValueError(
            f"{fn}: groups={groups} must divide the output channels O={o} "
            f"(kernel.shape[{spatial + 1}])"
        )
    if min(*ksize, o) < 1:
        raise ValueError(f"{fn}: kernel must be non-empty, got shape {kshape}")

    stride = _args.ntuple(fn, "stride", stride, spatial)
    dilation = _args.ntuple(fn, "dilation", dilation, spatial)
    eff = tuple((k - 1) * d + 1 for k, d in zip(ksize, dilation, strict=True))
    pads = _args.explicit_pads(fn, "padding", padding, spatial)
    if pads is None:
        pads = _args.named_pads(fn, "padding", padding, size, eff, stride, NAMED_PADDINGS)

    if not isinstance(padding_mode, str) or padding_mode not in PADDING_MODES:
        raise ValueError(
            f"{fn}: unknown padding_mode {padding_mode!r}; expected one of "
            f"{', '.join(map(repr, PADDING_MODES))}"
        )
    axis_names = [_AXIS_NAMES[a] for a in _AXES[spatial]]
    for axis, extent, (lo, hi) in zip(axis_names, size, pads, strict=True):
        if padding_mode == "reflect" and max(lo, hi) >= extent:
            raise ValueError(
                f"{fn}: padding_mode='reflect' needs padding < input size, but the {axis} padding "
                f"is {(lo, hi)} for {axis} {extent}"
            )
        if padding_mode == "circular" and max(lo, hi) > extent:
            raise ValueError(
                f"{fn}: padding_mode='circular' needs padding <= input size, but the {axis} "
                f"padding is {(lo, hi)} for {axis} {extent}"
            )
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(size, pads, strict=True))
    too_big = [(a, e, p) for a, e, p in zip(axis_names, eff, padded, strict=True)
               if max(e, p) > _args.INT32_MAX]
    if too_big:
        a, e, p = too_big[0]
        raise ValueError(
            f"{fn}: the {a} extents must fit in int32 (< 2**31): the padded input is {p} and the "
            f"dilated kernel {e} (kernel {ksize}, dilation {dilation}, padding {pads})"
        )
    if any(e > p for e, p in zip(eff, padded, strict=True)):
        shape_txt = "x".join(map(str, eff))
        raise ValueError(
            f"{fn}: the kernel (effective size {shape_txt} from kernel {'x'.join(map(str, ksize))}, "
            f"dilation {dilation}) is larger than the padded input {'x'.join(map(str, padded))} "
            f"(input {'x'.join(map(str, size))}, padding {pads}); the output would be empty"
        )
    check_sizes(fn, (n, *size, c), pads, kshape, stride, dilation)

    if bias is not None:
        bias = _args.as_array(fn, "bias", bias)
        _args.check_float(fn, "bias", bias)
        if tuple(bias.shape) != (o,):
            raise ValueError(
                f"{fn}: bias must have shape ({o},) (one per output channel), got "
                f"{tuple(bias.shape)}"
            )

    precision = canonical_precision(fn, precision)
    # canonicalize first: NumPy's default float64 must not warn when x64 is off (it becomes
    # float32, as jnp.asarray would make it)
    dtype = jnp.result_type(*(jax.dtypes.canonicalize_dtype(a.dtype) for a in (x, kernel)))
    zero = ((0, 0),) * spatial
    config = ConvConfig(
        stride=stride,
        padding=pads if padding_mode == "zeros" else zero,
        dilation=dilation,
        groups=groups,
        precision=precision,
    )
    mode_pads = None if padding_mode == "zeros" else pads
    seen = padded if mode_pads is not None else size
    x_shape = (n, *seen, c)
    return x, kernel, bias, Canonical(x_shape, kshape, dtype, config, mode_pads, padding_mode,
                                      unbatched, data_format)


def check_sizes(fn: str, x_shape: tuple[int, ...], pads: Any, kernel_shape: tuple[int, ...],
                stride: tuple[int, ...], dilation: tuple[int, ...]) -> None:
    """``ValueError`` unless the padded input and the output (channels-last ``x_shape``, after
    the per-axis checks) each have at most 2**31 - 1 elements (:func:`jaxconv._args.check_elements`)."""
    n, size, c = x_shape[0], x_shape[1:-1], x_shape[-1]
    ksize, o = kernel_shape[:-2], kernel_shape[-1]
    padded = tuple(m + lo + hi for m, (lo, hi) in zip(size, pads, strict=True))
    if padded == size:
        _args.check_elements(fn, "x", f"(channels-last shape {x_shape})", "has", x_shape,
                             "the convolution")
    else:
        _args.check_elements(fn, "padding", pads, "pads the input to", (n, *padded, c),
                             "the convolution")
    out = tuple((p - (k - 1) * d - 1) // s + 1
                for p, k, d, s in zip(padded, ksize, dilation, stride, strict=True))
    _args.check_elements(
        fn, "kernel", kernel_shape,
        f"with stride {stride} and dilation {dilation} on the padded input "
        f"{'x'.join(map(str, padded))} gives an output of", (n, *out, o), "the convolution")


def shape_specs(fn: str, x_shape: Any, kernel_shape: Any, dtype: Any) -> list[jax.ShapeDtypeStruct]:
    """``jax.ShapeDtypeStruct`` stand-ins for shapes given as tuples, with readable errors."""
    try:
        dt = jnp.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"{fn}: unknown dtype {dtype!r}") from e
    out = []
    for name, shape in (("x_shape", x_shape), ("kernel_shape", kernel_shape)):
        if isinstance(shape, str) or not isinstance(shape, Sequence) or not all(
            _args.is_int(d) for d in shape
        ):
            raise TypeError(f"{fn}: {name} must be a tuple of ints, got {shape!r}")
        if any(d < 0 for d in shape):
            raise ValueError(f"{fn}: {name} must have non-negative sizes, got {tuple(shape)}")
        out.append(jax.ShapeDtypeStruct(tuple(int(d) for d in shape), dt))
    return out


def to_channels_last(x: Any, data_format: str, unbatched: bool) -> Any:
    """Bring ``x`` to batched channels-last (inside the jitted core)."""
    if unbatched:
        x = x[None]
    if data_format[1] == "C":
        x = jnp.moveaxis(x, 1, -1)
    return x


def from_channels_last(y: Any, data_format: str, unbatched: bool) -> Any:
    """Inverse of :func:`to_channels_last`."""
    if data_format[1] == "C":
        y = jnp.moveaxis(y, -1, 1)
    if unbatched:
        y = y[0]
    return y
