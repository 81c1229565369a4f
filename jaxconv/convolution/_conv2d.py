"""``conv2d``, ``conv1d``, ``conv3d`` and ``conv`` (any rank): validation at the boundary, then
one jitted core, written for any number of spatial axes, that dispatches to an algorithm."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .. import _args
from . import _registry, select
from ._canonical import (
    Canonical,
    Padding,
    PrecisionLike,
    canonicalize,
    from_channels_last,
    kernel_layout,
    layouts,
    to_channels_last,
)

FN = "conv2d"
# Spatial ranks the N-d entry points serve.
SPATIAL_RANKS = (1, 2, 3)
_NP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def conv2d(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Padding = "VALID",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    data_format: str = "NHWC",
    algorithm: str = "auto",
    precision: PrecisionLike = None,
) -> jax.Array:
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

    Raises:
      ValueError: bad sizes or values, naming the argument, before tracing. Every padded extent
        must fit int32, and the padded input and the output must each have at most
        ``2**31 - 1`` elements (an empty axis counted as 1): a product past it made XLA abort
        the process although each axis fit.
      TypeError: malformed arguments, non-float dtypes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(16, dtype=jnp.float32).reshape(1, 4, 4, 1)  # NHWC
      >>> k = jnp.ones((2, 2, 1, 1), jnp.float32)  # HWIO: a 2x2 box filter
      >>> jaxconv.conv2d(x, k, stride=2)[0, :, :, 0]
      Array([[10., 18.],
             [42., 50.]], dtype=float32)
    """
    return _convolve(
        FN, 2, x, kernel, bias, stride=stride, padding=padding, dilation=dilation, groups=groups,
        padding_mode=padding_mode, data_format=data_format, algorithm=algorithm,
        precision=precision,
    )


def _convolve(fn: str, spatial: int, x, kernel, bias, *, stride, padding, dilation, groups,
              padding_mode, data_format, algorithm, precision) -> jax.Array:
    """What every ``conv*`` entry point runs: validate for ``spatial`` axes, pick, dispatch."""
    x, kernel, bias, canon = canonicalize(
        fn, x, kernel, bias, stride=stride, padding=padding, dilation=dilation, groups=groups,
        padding_mode=padding_mode, data_format=data_format, precision=precision, spatial=spatial,
    )
    name = resolve_algorithm(fn, algorithm, canon)
    train = resolve_algorithm(fn, algorithm, canon, mode="train") if algorithm == "auto" else name
    return _conv_core(
        x, kernel, bias,
        config=canon.config, mode_pads=canon.mode_pads, padding_mode=canon.padding_mode,
        data_format=canon.data_format, unbatched=canon.unbatched, algorithm=name,
        train_algorithm=train, dtype=jnp.dtype(canon.dtype),
    )


def conv1d(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Padding = "VALID",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    data_format: str = "NWC",
    algorithm: str = "auto",
    precision: PrecisionLike = None,
) -> jax.Array:
    """1-D cross-correlation of signals with a kernel bank (``conv2d`` with one spatial axis).

    Args:
      x: signals, shape ``(N, W, C)`` (or ``(N, C, W)`` with ``data_format="NCW"``), or
        unbatched ``(W, C)`` / ``(C, W)``; the output has the same rank.
      kernel: filters, **WIO** shape ``(k, C // groups, O)`` whatever ``data_format`` is (a
        torch ``Conv1d`` weight ``(O, C // groups, k)`` is ``w.transpose(2, 1, 0)``).
      bias: optional ``(O,)``.
      stride, dilation: ``int`` or a 1-tuple.
      padding: ``"VALID"``, ``"SAME"``, ``"FULL"``, an ``int``, ``(p,)`` or ``((lo, hi),)``.
      groups, padding_mode, algorithm, precision: as for :func:`jaxconv.conv2d`. Algorithms
        that serve 1-D: ``"direct"`` and ``"fft"`` (``"auto"`` picks ``fft`` for long kernels).
      data_format: ``"NWC"`` (default) or ``"NCW"``; the kernel stays WIO.

    Returns:
      ``(N, W_out, O)`` in ``x``'s layout and rank, where
      ``W_out = floor((W + pad_lo + pad_hi - ((k - 1) * d + 1)) / s) + 1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(6, dtype=jnp.float32).reshape(1, 6, 1)  # NWC
      >>> k = jnp.array([1.0, -1.0], jnp.float32).reshape(2, 1, 1)  # WIO: a difference
      >>> jaxconv.conv1d(x, k)[0, :, 0]
      Array([-1., -1., -1., -1., -1.], dtype=float32)
    """
    return _convolve(
        "conv1d", 1, x, kernel, bias, stride=stride, padding=padding, dilation=dilation,
        groups=groups, padding_mode=padding_mode, data_format=data_format, algorithm=algorithm,
        precision=precision,
    )


def conv3d(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Padding = "VALID",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    data_format: str = "NDHWC",
    algorithm: str = "auto",
    precision: PrecisionLike = None,
) -> jax.Array:
    """3-D cross-correlation of volumes with a kernel bank (``conv2d`` with three spatial axes).

    Args:
      x: volumes, shape ``(N, D, H, W, C)`` (or ``(N, C, D, H, W)`` with
        ``data_format="NCDHW"``), or unbatched ``(D, H, W, C)`` / ``(C, D, H, W)``.
      kernel: filters, **DHWIO** shape ``(kd, kh, kw, C // groups, O)`` (a torch ``Conv3d``
        weight ``(O, C // groups, kd, kh, kw)`` is ``w.transpose(2, 3, 4, 1, 0)``).
      bias: optional ``(O,)``.
      stride, dilation: ``int`` or ``(sd, sh, sw)``.
      padding: ``"VALID"``, ``"SAME"``, ``"FULL"``, an ``int``, ``(pd, ph, pw)`` or three
        ``(lo, hi)`` pairs.
      groups, padding_mode, algorithm, precision: as for :func:`jaxconv.conv2d`. Algorithms
        that serve 3-D: ``"direct"`` and ``"fft"``.
      data_format: ``"NDHWC"`` (default) or ``"NCDHW"``; the kernel stays DHWIO.

    Returns:
      ``(N, D_out, H_out, W_out, O)`` in ``x``'s layout and rank, each axis
      ``floor((size + pad_lo + pad_hi - ((k - 1) * d + 1)) / s) + 1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.ones((1, 3, 4, 4, 2), jnp.float32)  # NDHWC
      >>> k = jnp.ones((2, 2, 2, 2, 1), jnp.float32)  # DHWIO: a 2x2x2 box over 2 channels
      >>> jaxconv.conv3d(x, k, stride=2).shape
      (1, 1, 2, 2, 1)
      >>> float(jaxconv.conv3d(x, k)[0, 0, 0, 0, 0])
      16.0
    """
    return _convolve(
        "conv3d", 3, x, kernel, bias, stride=stride, padding=padding, dilation=dilation,
        groups=groups, padding_mode=padding_mode, data_format=data_format, algorithm=algorithm,
        precision=precision,
    )


def conv(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Padding = "VALID",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    data_format: str | None = None,
    algorithm: str = "auto",
    precision: PrecisionLike = None,
) -> jax.Array:
    """Cross-correlation with as many spatial axes as the kernel has (1, 2 or 3).

    The number of spatial axes is ``kernel.ndim - 2``: a WIO kernel makes this
    :func:`conv1d`, HWIO :func:`jaxconv.conv2d` and DHWIO :func:`conv3d`, with the same
    arguments, semantics and results.

    Args:
      x: ``(N, *spatial, C)`` (or channels-first with ``data_format``), or unbatched.
      kernel: ``(*k, C // groups, O)``: WIO, HWIO or DHWIO.
      bias: optional ``(O,)``.
      stride, padding, dilation, groups, padding_mode, algorithm, precision: as for
        :func:`jaxconv.conv2d`, with one entry per spatial axis.
      data_format: ``None`` (channels-last: ``"NWC"``, ``"NHWC"``, ``"NDHWC"``) or the
        channels-first name for the rank (``"NCW"``, ``"NCHW"``, ``"NCDHW"``).

    Returns:
      ``(N, *spatial_out, O)`` in ``x``'s layout and rank, each axis
      ``floor((size + pad_lo + pad_hi - ((k - 1) * d + 1)) / s) + 1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.ones((2, 8, 3), jnp.float32)  # NWC
      >>> jaxconv.conv(x, jnp.ones((3, 3, 4), jnp.float32), padding="SAME").shape
      (2, 8, 4)
      >>> jaxconv.conv(jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 1)), stride=2).shape
      (1, 2, 2, 1)
    """
    fn = "conv"
    k: Any = _args.as_array(fn, "kernel", kernel)
    spatial = k.ndim - 2
    if spatial not in SPATIAL_RANKS:
        supported = ", ".join(
            f"rank {s + 2} ({kernel_layout(s)}: {s}-D)" for s in SPATIAL_RANKS
        )
        raise ValueError(
            f"{fn}: the kernel's rank sets the number of spatial dims (kernel.ndim - 2); "
            f"supported: {supported}; got rank {k.ndim} with shape {tuple(k.shape)}"
        )
    if data_format is None:
        data_format = layouts(spatial)[0]
    return _convolve(
        fn, spatial, x, k, bias, stride=stride, padding=padding, dilation=dilation,
        groups=groups, padding_mode=padding_mode, data_format=data_format, algorithm=algorithm,
        precision=precision,
    )


def resolve_algorithm(fn: str, algorithm: Any, canon: Canonical, mode: str = "forward") -> str:
    """Validate ``algorithm`` for the canonical problem; resolve ``"auto"`` through the selector
    (for the forward pass, or with ``mode="train"`` for forward + backward)."""
    known = _registry.names()
    if not isinstance(algorithm, str) or (algorithm != "auto" and algorithm not in known):
        raise ValueError(
            f"{fn}: unknown algorithm {algorithm!r}; expected 'auto' or one of "
            f"{', '.join(map(repr, known))}"
        )
    x_shape, kernel_shape, dtype, config = canon.x_shape, canon.kernel_shape, canon.dtype, canon.config
    if algorithm == "auto":
        return select.choose_algorithm(x_shape, kernel_shape, dtype, config, mode=mode)
    reason = _registry.get(algorithm).unsupported_reason(x_shape, kernel_shape, dtype, config)
    if reason is not None:
        ok = _registry.applicable(x_shape, kernel_shape, dtype, config)
        raise ValueError(
            f"{fn}: algorithm={algorithm!r} cannot serve these arguments: {reason}. "
            f"Algorithms that can: {', '.join(map(repr, ok))} (or 'auto')"
        )
    return algorithm


@functools.partial(
    jax.jit,
    static_argnames=(
        "config", "mode_pads", "padding_mode", "data_format", "unbatched", "algorithm",
        "train_algorithm", "dtype",
    ),
)
def _conv_core(x, kernel, bias, *, config, mode_pads, padding_mode, data_format, unbatched,
               algorithm, train_algorithm, dtype):
    x = to_channels_last(x.astype(dtype), data_format, unbatched)
    kernel = kernel.astype(dtype)
    if mode_pads is not None:
        x = jnp.pad(x, ((0, 0), *mode_pads, (0, 0)), mode=_NP_PAD_MODE[padding_mode])
    if train_algorithm == algorithm:
        y = _registry.get(algorithm).fn(x, kernel, config)
    else:
        y = _switch_when_differentiated(x, kernel, config, algorithm, train_algorithm)
    if bias is not None:
        # explicit (1, ..., 1, O): callers may run with jax_numpy_rank_promotion='raise'
        y = y + bias.astype(y.dtype).reshape((1,) * (y.ndim - 1) + (-1,))
    return from_channels_last(y, data_format, unbatched)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _switch_when_differentiated(x, kernel, config, algorithm, train_algorithm):
    """``algorithm``'s convolution; its derivatives are ``train_algorithm``'s.

    ``auto`` picks for the forward pass what runs fastest forward, and for a differentiated
    convolution what runs fastest forward + backward: a custom JVP rule runs only under
    differentiation, so it can switch.

    The rule returns the *primal* from ``algorithm`` too, not from ``train_algorithm``: under
    ``vmap`` JAX batches the primal function and the rule separately and trusts that their
    outputs carry the batch axis at the same place (``batching.process_custom_jvp_call``
    records one set of output axes for both). Two algorithms lower to different ops, whose
    batch axes land in different places, and a jitted caller differentiated after batching
    then read the rule's output with the primal's axes: wrong values or shape errors. With
    the primal computed the same way on both sides the axes agree, and the tangent is moved
    to them. Under reverse mode the training algorithm's own primal output is dead code.
    """
    return _registry.get(algorithm).fn(x, kernel, config)


@_switch_when_differentiated.defjvp
def _switch_jvp(config, algorithm, train_algorithm, primals, tangents):
    x, kernel = primals
    y = _registry.get(algorithm).fn(x, kernel, config)
    train = _registry.get(train_algorithm).fn
    _, dy = jax.jvp(lambda a, b: train(a, b, config), primals, tangents)
    return y, dy
