"""``conv2d``: validation at the boundary, then a jitted core that dispatches to an algorithm."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .. import _args
from . import _registry, select
from ._registry import ConvConfig

FN = "conv2d"
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_NP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _canonical_precision(precision: Any):
    if precision is None or isinstance(precision, lax.Precision):
        return precision
    if isinstance(precision, str):
        try:
            return lax.Precision(precision.lower())  # lax only knows the lowercase names
        except (ValueError, KeyError) as e:
            raise ValueError(
                f"{FN}: unknown precision {precision!r}; expected None, 'default', 'high', "
                "'highest' or a jax.lax.Precision"
            ) from e
    if isinstance(precision, tuple | list) and len(precision) == 2:
        return tuple(_canonical_precision(p) for p in precision)
    raise TypeError(
        f"{FN}: precision must be None, a string, a jax.lax.Precision or a pair of them, "
        f"got {precision!r}"
    )


def conv2d(
    x,
    kernel,
    bias=None,
    *,
    stride=1,
    padding="VALID",
    dilation=1,
    groups: int = 1,
    padding_mode: str = "zeros",
    data_format: str = "NHWC",
    algorithm: str = "auto",
    precision=None,
):
    """2-D cross-correlation (the deep-learning "convolution") of images with a kernel bank.

    Args:
      x: images, shape ``(N, H, W, C)`` (or ``(N, C, H, W)`` with ``data_format="NCHW"``), or
        unbatched ``(H, W, C)`` / ``(C, H, W)``; the output has the same rank.
      kernel: filters, **HWIO** shape ``(kh, kw, C // groups, O)`` whatever ``data_format`` is.
      bias: optional ``(O,)`` added to every output position.
      stride: ``int`` or ``(sh, sw)``, >= 1.
      padding: ``"VALID"``, ``"SAME"`` (output ``ceil(H / sh)``; the odd extra pad goes at the
        end, as in ``jax.lax``), ``"FULL"`` (``k_eff - 1`` on every side), an ``int``, a pair
        ``(ph, pw)`` or pairs ``((top, bottom), (left, right))``.
      dilation: kernel dilation, ``int`` or ``(dh, dw)``; the effective kernel spans
        ``(k - 1) * d + 1`` pixels.
      groups: ``C`` and ``O`` are split into ``groups`` independent convolutions;
        ``groups == C`` is a depthwise convolution.
      padding_mode: what the padding holds: ``"zeros"``, ``"reflect"`` (mirror without the edge,
        needs pad < size), ``"replicate"`` (repeat the edge) or ``"circular"`` (wrap around,
        needs pad <= size). Applies to every padding form.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``; the kernel stays HWIO.
      algorithm: ``"auto"`` or a name from ``jaxconv.algorithms()`` (``"direct"`` is XLA's
        ``lax.conv_general_dilated``). ``"auto"`` picks per call from the static shapes,
        config and backend. A named algorithm that cannot serve the arguments raises
        ``ValueError`` saying why and which can.
      precision: passed to the underlying ``lax`` contractions (``None``, ``"highest"``, ...).

    Returns:
      ``(N, H_out, W_out, O)`` in ``x``'s layout and rank, where
      ``H_out = floor((H + pad_top + pad_bottom - ((kh - 1) * dh + 1)) / sh) + 1`` (same for W).
      The dtype is the promotion of ``x``'s and ``kernel``'s (float types only).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(16, dtype=jnp.float32).reshape(1, 4, 4, 1)  # NHWC
      >>> k = jnp.ones((2, 2, 1, 1), jnp.float32)  # HWIO: a 2x2 box filter
      >>> jaxconv.conv2d(x, k, stride=2)[0, :, :, 0]
      Array([[10., 18.],
             [42., 50.]], dtype=float32)
    """
    x, kernel, bias, canon = _canonicalize(
        x, kernel, bias, stride=stride, padding=padding, dilation=dilation, groups=groups,
        padding_mode=padding_mode, data_format=data_format, precision=precision,
    )
    x_nhwc, dtype, config = canon.x_nhwc, canon.dtype, canon.config
    mode_pads, unbatched, data_format = canon.mode_pads, canon.unbatched, canon.data_format
    name = resolve_algorithm(algorithm, x_nhwc, tuple(kernel.shape), dtype, config)
    return _conv2d_core(
        x, kernel, bias,
        config=config, mode_pads=mode_pads, padding_mode=padding_mode,
        data_format=data_format, unbatched=unbatched, algorithm=name, dtype=jnp.dtype(dtype),
    )


class Canonical(NamedTuple):
    """What ``conv2d`` hands to the selector and the jitted core, after validation."""

    x_nhwc: tuple[int, int, int, int]  # batched NHWC shape the algorithm sees (after mode padding)
    dtype: Any
    config: ConvConfig
    mode_pads: Any  # non-zero padding applied by ``jnp.pad`` before dispatch, or None
    unbatched: bool
    data_format: str


def _canonicalize(x, kernel, bias, *, stride, padding, dilation, groups, padding_mode,
                  data_format, precision):
    """Validate conv2d's arguments; return ``(x, kernel, bias, Canonical)``.

    ``x``, ``kernel`` and ``bias`` only need ``shape``/``ndim``/``dtype`` (e.g.
    ``jax.ShapeDtypeStruct``), so ``select_algorithm`` validates shapes exactly like ``conv2d``.
    """
    data_format = _args.check_data_format(FN, data_format)
    x = _args.as_array(FN, "x", x)
    kernel = _args.as_array(FN, "kernel", kernel)
    unbatched, (n, h, w, c) = _args.image_rank(FN, "x", x, data_format)
    if kernel.ndim != 4:
        raise ValueError(
            f"{FN}: kernel must have rank 4 (kh, kw, C // groups, O) in HWIO layout, got rank "
            f"{kernel.ndim} with shape {tuple(kernel.shape)}"
        )
    _args.check_float(FN, "x", x)
    _args.check_float(FN, "kernel", kernel)
    kh, kw, kin, o = (int(d) for d in kernel.shape)

    if not _args.is_int(groups):
        raise TypeError(f"{FN}: groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"{FN}: groups must be >= 1, got {groups}")
    if c % groups:
        raise ValueError(
            f"{FN}: groups={groups} must divide the input channels C={c} (x.shape={tuple(x.shape)})"
        )
    if kin != c // groups:
        raise ValueError(
            f"{FN}: kernel expects {c // groups} input channels (x has C={c}, groups={groups}) "
            f"but kernel.shape[2] is {kin}"
        )
    if o % groups:
        raise ValueError(
            f"{FN}: groups={groups} must divide the output channels O={o} (kernel.shape[3])"
        )
    if min(kh, kw, o) < 1:
        raise ValueError(f"{FN}: kernel must be non-empty, got shape {tuple(kernel.shape)}")

    stride = _args.pair(FN, "stride", stride)
    dilation = _args.pair(FN, "dilation", dilation)
    eff = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    pads = _args.explicit_pads(FN, "padding", padding)
    if pads is None:
        pads = _args.named_pads(FN, "padding", padding, (h, w), eff, stride, ("VALID", "SAME", "FULL"))

    if not isinstance(padding_mode, str) or padding_mode not in PADDING_MODES:
        raise ValueError(
            f"{FN}: unknown padding_mode {padding_mode!r}; expected one of "
            f"{', '.join(map(repr, PADDING_MODES))}"
        )
    for axis, size, (lo, hi) in (("height", h, pads[0]), ("width", w, pads[1])):
        if padding_mode == "reflect" and max(lo, hi) >= size:
            raise ValueError(
                f"{FN}: padding_mode='reflect' needs padding < input size, but the {axis} padding "
                f"is {(lo, hi)} for {axis} {size}"
            )
        if padding_mode == "circular" and max(lo, hi) > size:
            raise ValueError(
                f"{FN}: padding_mode='circular' needs padding <= input size, but the {axis} "
                f"padding is {(lo, hi)} for {axis} {size}"
            )
    ph, pw = h + sum(pads[0]), w + sum(pads[1])
    if eff[0] > ph or eff[1] > pw:
        raise ValueError(
            f"{FN}: the kernel (effective size {eff[0]}x{eff[1]} from kernel {kh}x{kw}, dilation "
            f"{dilation}) is larger than the padded input {ph}x{pw} (input {h}x{w}, padding "
            f"{pads}); the output would be empty"
        )

    if bias is not None:
        bias = _args.as_array(FN, "bias", bias)
        _args.check_float(FN, "bias", bias)
        if tuple(bias.shape) != (o,):
            raise ValueError(
                f"{FN}: bias must have shape ({o},) (one per output channel), got "
                f"{tuple(bias.shape)}"
            )

    precision = _canonical_precision(precision)
    # canonicalize first: NumPy's default float64 must not warn when x64 is off (it becomes
    # float32, as jnp.asarray would make it)
    dtype = jnp.result_type(*(jax.dtypes.canonicalize_dtype(a.dtype) for a in (x, kernel)))
    config = ConvConfig(
        stride=stride,
        padding=pads if padding_mode == "zeros" else ((0, 0), (0, 0)),
        dilation=dilation,
        groups=groups,
        precision=precision,
    )
    mode_pads = None if padding_mode == "zeros" else pads
    (pt, pb), (pl, pr) = mode_pads or ((0, 0), (0, 0))
    x_nhwc = (n, h + pt + pb, w + pl + pr, c)
    return x, kernel, bias, Canonical(x_nhwc, dtype, config, mode_pads, unbatched, data_format)


def resolve_algorithm(algorithm: Any, x_shape, kernel_shape, dtype, config: ConvConfig) -> str:
    """Validate ``algorithm`` for NHWC ``x_shape`` / HWIO ``kernel_shape``; resolve ``"auto"``."""
    known = _registry.names()
    if not isinstance(algorithm, str) or (algorithm != "auto" and algorithm not in known):
        raise ValueError(
            f"{FN}: unknown algorithm {algorithm!r}; expected 'auto' or one of "
            f"{', '.join(map(repr, known))}"
        )
    if algorithm == "auto":
        return select.choose_algorithm(tuple(x_shape), tuple(kernel_shape), dtype, config)
    reason = _registry.get(algorithm).unsupported_reason(x_shape, kernel_shape, dtype, config)
    if reason is not None:
        ok = _registry.applicable(x_shape, kernel_shape, dtype, config)
        raise ValueError(
            f"{FN}: algorithm={algorithm!r} cannot serve these arguments: {reason}. "
            f"Algorithms that can: {', '.join(map(repr, ok))} (or 'auto')"
        )
    return algorithm


@functools.partial(
    jax.jit,
    static_argnames=(
        "config", "mode_pads", "padding_mode", "data_format", "unbatched", "algorithm", "dtype",
    ),
)
def _conv2d_core(x, kernel, bias, *, config, mode_pads, padding_mode, data_format, unbatched,
                 algorithm, dtype):
    x = _args.to_nhwc(x.astype(dtype), data_format, unbatched)
    kernel = kernel.astype(dtype)
    if mode_pads is not None:
        x = jnp.pad(x, ((0, 0), *mode_pads, (0, 0)), mode=_NP_PAD_MODE[padding_mode])
    y = _registry.get(algorithm).fn(x, kernel, config)
    if bias is not None:
        # explicit (1, 1, 1, O): callers may run with jax_numpy_rank_promotion='raise'
        y = y + bias.astype(y.dtype).reshape(1, 1, 1, -1)
    return _args.from_nhwc(y, data_format, unbatched)
