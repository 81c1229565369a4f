"""``conv_general_dilated``: ``jax.lax.conv_general_dilated``'s signature and results, with the
convolution run by jaxconv's algorithms -- the hook Flax's ``Conv`` layers take.

The arguments are validated before tracing (every message names ``conv_general_dilated`` and
the argument), resolved into one static :class:`_Plan`, and a jitted core does the rest: the
operands are transposed once into jaxconv's channels-last layout (``(N, *spatial, C)`` and
``(*k, I, O)``: NHWC / HWIO in 2-D), the convolution runs through ``conv``'s algorithms, and the
result is transposed into the requested output layout.

How each of lax's arguments maps onto jaxconv's core:

- ``batch_group_count = B`` splits the batch into ``B`` contiguous blocks, block ``b`` convolved
  with output features ``[b * O / B, (b + 1) * O / B)``. Stacking the blocks along the channels,
  ``(B, N / B, ..., C) -> (N / B, ..., B * C)``, makes it exactly a ``groups = B`` convolution.
- Negative padding crops: the input is sliced and the convolution sees only the non-negative
  padding (XLA:CPU's float32 convolution with negative padding read out of bounds on some
  shapes). With ``lhs_dilation`` the crop of the dilated input is a slice of the undilated one
  plus some of the zeros between its elements (:func:`_undilated_crops`).
- ``lhs_dilation`` (a transposed convolution) runs through the polyphase decomposition of
  :mod:`.transpose`: stride-1 convolutions of the undilated input, so no ``lhs_dilation`` (which
  aborted XLA:CPU on some shapes) reaches XLA. A window stride on top of it subsamples the
  stride-1 result by a reshape, not a strided slice, whose gradient (an interior ``lax.pad``) XLA
  could fold back into an ``lhs_dilation``.
- ``preferred_element_type`` widens the computation: the operands are cast to it (exact for a
  wider float) and the result comes out in it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec
from jax.typing import ArrayLike

from .. import _args
from . import _registry
from ._canonical import PrecisionLike, canonical_precision, canonicalize, layouts
from ._conv2d import SPATIAL_RANKS, _conv_core, resolve_algorithm
from ._registry import ConvConfig
from .transpose import ALGORITHMS as TRANSPOSE_ALGORITHMS
from .transpose import _polyphase

FN = "conv_general_dilated"
STRING_PADDINGS = ("SAME", "SAME_LOWER", "VALID")
DimensionNumbers = None | lax.ConvDimensionNumbers | tuple[str, str, str]


class _Plan(NamedTuple):
    """Everything static the jitted core needs (hashable)."""

    kind: str  # "conv", "transposed" (lhs_dilation > 1) or "zeros" (an empty sum or output)
    lhs_perm: tuple[int, ...]  # lhs -> (N, *spatial, C)
    rhs_perm: tuple[int, ...]  # rhs -> (*k, I, O)
    out_perm: tuple[int, ...]  # (N, *spatial, O) -> the output layout
    batch_groups: int
    crops: tuple[tuple[int, int], ...] | None  # input elements dropped from each end first
    config: ConvConfig  # stride, non-negative padding, rhs dilation, groups, precision
    lhs_dilation: tuple[int, ...]
    algorithm: str
    train_algorithm: str
    dtype: Any  # the computation's dtype
    out_dtype: Any
    out_shape: tuple[int, ...]  # channels-last (N / B, *spatial_out, O)


def conv_general_dilated(
    lhs: ArrayLike,
    rhs: ArrayLike,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: DimensionNumbers = None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision: PrecisionLike = None,
    preferred_element_type: Any = None,
    out_sharding: NamedSharding | PartitionSpec | None = None,
    *,
    algorithm: str = "auto",
) -> jax.Array:
    """``jax.lax.conv_general_dilated``, run by jaxconv's algorithms.

    A drop-in replacement with lax's signature and results (up to each algorithm's rounding,
    gradients included), for 1, 2 or 3 spatial dims, and the hook of Flax's convolution layers:
    ``flax.nnx.Conv(..., conv_general_dilated=jaxconv.conv_general_dilated)`` (or
    ``flax.linen.Conv``). Differences from lax: ``lhs`` and ``rhs`` may have different float
    dtypes (they are promoted; lax requires equal ones), only floating dtypes are served, and
    ``precision`` takes ``None``, a name, a :class:`jax.lax.Precision` or a pair (no
    ``DotAlgorithm`` presets).

    Args:
      lhs: the input, rank ``n + 2`` in ``dimension_numbers``' lhs layout (``(N, C, *spatial)``
        by default, ``(N, H, W, C)`` with ``("NHWC", "HWIO", "NHWC")``).
      rhs: the kernel, rank ``n + 2`` in the rhs layout (``(O, I, *k)`` by default, HWIO
        ``(kh, kw, I, O)`` with ``("NHWC", "HWIO", "NHWC")``), ``I = C / feature_group_count``.
      window_strides: ``n`` ints >= 1 (an int is taken for every axis).
      padding: ``"SAME"``, ``"SAME_LOWER"`` (the odd extra pad first), ``"VALID"`` (any case),
        or ``n`` ``(low, high)`` pairs; a negative side crops.
      lhs_dilation: ``None`` or ``n`` ints >= 1: zeros inserted between input elements (a
        transposed convolution; needs explicit ``padding``, as in lax).
      rhs_dilation: ``None`` or ``n`` ints >= 1: kernel dilation (atrous convolution).
      dimension_numbers: ``None`` (lax's default ``("NCHW", "OIHW", "NCHW")`` for the rank), a
        :class:`jax.lax.ConvDimensionNumbers`, or three strings ``(lhs, rhs, out)`` in any
        layout (``N``/``C``, ``O``/``I`` and one letter per spatial axis; strides, padding and
        dilations follow the rhs string's spatial order).
      feature_group_count: ``G``: ``C`` and ``O`` split into ``G`` independent convolutions.
      batch_group_count: ``B``: the batch split into ``B`` contiguous blocks, block ``b``
        convolved with output features ``[b * O / B, (b + 1) * O / B)`` (how lax writes the
        kernel gradient of a grouped convolution). At most one of ``G`` and ``B`` may exceed 1.
      precision: ``None``, ``"default"``, ``"high"``, ``"highest"``, a
        :class:`jax.lax.Precision` or a pair of them, passed to the algorithm's contractions.
      preferred_element_type: ``None`` or a float dtype at least as wide as the operands': the
        operands are cast to it and the result returned in it.
      out_sharding: ``None``, a :class:`jax.sharding.NamedSharding` or a
        :class:`jax.sharding.PartitionSpec` (under a mesh context): the result is resharded to
        it with :func:`jax.sharding.reshard`.
      algorithm: ``"auto"`` (picked per problem, forward and training separately) or a name
        from ``jaxconv.algorithms()``. With ``lhs_dilation`` only ``"auto"`` and ``"direct"``
        serve (the transposed path).

    Returns:
      The output in the out layout, ``(N / B, O, *spatial_out)`` by default, each spatial axis
      ``max(0, floor((d + lo + hi - ((k - 1) * rd + 1)) / s) + 1)`` with ``d = (size - 1) * ld +
      1`` the dilated input. The dtype is ``preferred_element_type`` or the promotion of
      ``lhs``'s and ``rhs``'s.

    Raises:
      TypeError: malformed kinds (a non-float array, a non-int stride, an unknown dtype, ...).
      ValueError: inconsistent sizes or values (group counts, padding, layouts, algorithm).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxconv
      >>> x = jnp.arange(16, dtype=jnp.float32).reshape(1, 1, 4, 4)  # NCHW, lax's default
      >>> k = jnp.ones((1, 1, 2, 2), jnp.float32)  # OIHW: a 2x2 box filter
      >>> jaxconv.conv_general_dilated(x, k, (2, 2), "VALID")[0, 0]
      Array([[10., 18.],
             [42., 50.]], dtype=float32)
      >>> x = jnp.ones((2, 5, 5, 4), jnp.float32)  # NHWC
      >>> k = jnp.ones((3, 3, 2, 6), jnp.float32)  # HWIO, 2 groups
      >>> jaxconv.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO",
      ...     "NHWC"), feature_group_count=2).shape
      (2, 5, 5, 6)
    """
    plan = _plan(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                 dimension_numbers, feature_group_count, batch_group_count, precision,
                 preferred_element_type, algorithm)
    out_sharding = _check_sharding(out_sharding)
    y = _general_core(lhs, rhs, plan=plan)
    return y if out_sharding is None else jax.sharding.reshard(y, out_sharding)


def _dimension_numbers(lhs_shape: tuple[int, ...], rhs_shape: tuple[int, ...],
                       dimension_numbers: Any) -> lax.ConvDimensionNumbers:
    """lax's ``ConvDimensionNumbers`` for any accepted form, with this function's errors."""
    nd = len(lhs_shape)
    if isinstance(dimension_numbers, lax.ConvDimensionNumbers):
        for name, spec in zip(("lhs_spec", "rhs_spec", "out_spec"), dimension_numbers,
                              strict=True):
            if not (isinstance(spec, Sequence) and all(_args.is_int(a) for a in spec)
                    and sorted(spec) == list(range(nd))):
                raise ValueError(
                    f"{FN}: dimension_numbers.{name} must be a permutation of range({nd}) (the "
                    f"operands' rank), got {spec!r}"
                )
        return lax.ConvDimensionNumbers(*(tuple(int(a) for a in s) for s in dimension_numbers))
    if dimension_numbers is None:
        return lax.conv_dimension_numbers(lhs_shape, rhs_shape, None)
    if not (isinstance(dimension_numbers, tuple | list) and len(dimension_numbers) == 3
            and all(isinstance(s, str) for s in dimension_numbers)):
        raise TypeError(
            f"{FN}: dimension_numbers must be None, a jax.lax.ConvDimensionNumbers or three "
            f"strings (lhs, rhs, out) such as ('NHWC', 'HWIO', 'NHWC'), got {dimension_numbers!r}"
        )
    lengths = [len(s) for s in dimension_numbers]
    if lengths != [nd] * 3:
        raise ValueError(
            f"{FN}: each dimension_numbers string must have one letter per axis of the operands "
            f"(rank {nd}), got {tuple(dimension_numbers)!r} (lengths {lengths})"
        )
    try:
        return lax.conv_dimension_numbers(lhs_shape, rhs_shape, tuple(dimension_numbers))
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{FN}: dimension_numbers {tuple(dimension_numbers)!r} must name the batch 'N' and "
            "feature 'C' axes of lhs and out, the 'O' and 'I' axes of rhs, each once, and the "
            f"same spatial letters in all three ({e})"
        ) from e


def _int_tuple(name: str, value: Any, n: int) -> tuple[int, ...]:
    """``None`` -> ones, else ``n`` ints >= 1 (an int for every axis; lax also takes arrays)."""
    if value is None:
        return (1,) * n
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    return _args.ntuple(FN, name, value, n)


def _group_count(name: str, value: Any) -> int:
    if not _args.is_int(value):
        raise TypeError(f"{FN}: {name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{FN}: {name} must be >= 1, got {value}")
    return int(value)


def _padding(padding: Any, size: tuple[int, ...], eff: tuple[int, ...],
             strides: tuple[int, ...], lhs_dilation: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Explicit ``(lo, hi)`` pairs (negative allowed), lax's rules for the named paddings."""
    n = len(size)
    if isinstance(padding, str):
        if padding.upper() not in STRING_PADDINGS:
            raise ValueError(
                f"{FN}: unknown padding {padding!r}; expected one of "
                f"{', '.join(map(repr, STRING_PADDINGS))} or {n} (low, high) pairs"
            )
        if any(d != 1 for d in lhs_dilation):
            raise ValueError(
                f"{FN}: padding must be explicit (low, high) pairs with lhs_dilation "
                f"{lhs_dilation} (a transposed convolution; lax does not define named paddings "
                f"for it), got {padding!r}"
            )
        # lax's own rule (undilated input, dilated kernel), so the pads are exactly lax's
        pads = lax.padtype_to_pads(size, eff, strides, padding.upper())
        return tuple((int(lo), int(hi)) for lo, hi in pads)
    if isinstance(padding, np.ndarray):
        padding = padding.tolist()
    if (isinstance(padding, Sequence) and len(padding) == n
            and all(isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2
                    and all(_args.is_int(v) for v in p) for p in padding)):
        explicit = tuple((int(lo), int(hi)) for lo, hi in padding)
        _args.check_int32(FN, "padding", [v for p in explicit for v in p], padding)
        return explicit
    raise TypeError(
        f"{FN}: padding must be one of {', '.join(map(repr, STRING_PADDINGS))} or {n} (low, high) "
        f"pairs of ints, got {padding!r}"
    )


def _preferred(preferred_element_type: Any, dtype: Any) -> Any:
    """The output dtype: ``preferred_element_type`` (a float at least as wide) or ``dtype``."""
    if preferred_element_type is None:
        return dtype
    try:
        pet = jax.dtypes.canonicalize_dtype(jnp.dtype(preferred_element_type))
    except TypeError as e:
        raise TypeError(
            f"{FN}: preferred_element_type must be None or a dtype, got "
            f"{preferred_element_type!r}"
        ) from e
    if not jnp.issubdtype(pet, jnp.floating):
        raise TypeError(f"{FN}: preferred_element_type must be a floating dtype, got {pet}")
    if jnp.promote_types(dtype, pet) != pet:
        raise TypeError(
            f"{FN}: preferred_element_type must not be narrower than the operands' dtype "
            f"{jnp.dtype(dtype)}, got {pet}"
        )
    return pet


def _check_sharding(out_sharding: Any) -> Any:
    if out_sharding is None or isinstance(out_sharding, NamedSharding):
        return out_sharding
    if isinstance(out_sharding, PartitionSpec):
        if jax.sharding.get_abstract_mesh().empty:
            raise ValueError(
                f"{FN}: out_sharding as a PartitionSpec needs a mesh context (jax.set_mesh); "
                f"pass a NamedSharding otherwise, got {out_sharding!r}"
            )
        return out_sharding
    raise TypeError(
        f"{FN}: out_sharding must be None, a jax.sharding.NamedSharding or a PartitionSpec, "
        f"got {out_sharding!r}"
    )


def _plan(lhs: Any, rhs: Any, window_strides: Any, padding: Any, lhs_dilation: Any,
          rhs_dilation: Any, dimension_numbers: Any, feature_group_count: Any,
          batch_group_count: Any, precision: Any, preferred_element_type: Any,
          algorithm: Any) -> _Plan:
    """Validate every argument (before tracing) and resolve them into a static plan."""
    lhs = _args.as_array(FN, "lhs", lhs)
    rhs = _args.as_array(FN, "rhs", rhs)
    if lhs.ndim != rhs.ndim:
        raise ValueError(
            f"{FN}: lhs and rhs must have the same rank, got lhs shape {tuple(lhs.shape)} and "
            f"rhs shape {tuple(rhs.shape)}"
        )
    spatial = lhs.ndim - 2
    if spatial not in SPATIAL_RANKS:
        raise ValueError(
            f"{FN}: jaxconv serves 1 to 3 spatial dims (operands of rank 3 to 5), got rank "
            f"{lhs.ndim} (lhs shape {tuple(lhs.shape)})"
        )
    _args.check_float(FN, "lhs", lhs)
    _args.check_float(FN, "rhs", rhs)
    lhs_shape = tuple(int(d) for d in lhs.shape)
    rhs_shape = tuple(int(d) for d in rhs.shape)
    dn = _dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    n, c, *size = (lhs_shape[a] for a in dn.lhs_spec)
    o, i, *ksize = (rhs_shape[a] for a in dn.rhs_spec)
    if min(ksize) < 1:
        raise ValueError(
            f"{FN}: the kernel's spatial sizes must be >= 1, got {tuple(ksize)} (rhs shape "
            f"{rhs_shape})"
        )
    strides = _int_tuple("window_strides", window_strides, spatial)
    ld = _int_tuple("lhs_dilation", lhs_dilation, spatial)
    rd = _int_tuple("rhs_dilation", rhs_dilation, spatial)
    g = _group_count("feature_group_count", feature_group_count)
    b = _group_count("batch_group_count", batch_group_count)
    if g > 1 and b > 1:
        raise ValueError(
            f"{FN}: at most one of feature_group_count and batch_group_count may exceed 1, got "
            f"{g} and {b}"
        )
    if c % g or c // g != i:
        raise ValueError(
            f"{FN}: feature_group_count={g} must divide the lhs features C={c} into the rhs "
            f"input features I={i} (C / feature_group_count == I); lhs shape {lhs_shape}, rhs "
            f"shape {rhs_shape}"
        )
    if o % g:
        raise ValueError(
            f"{FN}: feature_group_count={g} must divide the rhs output features O={o}"
        )
    if n % b or o % b:
        raise ValueError(
            f"{FN}: batch_group_count={b} must divide the lhs batch N={n} and the rhs output "
            f"features O={o}"
        )
    eff = tuple((k - 1) * d + 1 for k, d in zip(ksize, rd, strict=True))
    pads = _padding(padding, tuple(size), eff, strides, ld)
    dilated = tuple((s - 1) * d + 1 if s else 0 for s, d in zip(size, ld, strict=True))
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(dilated, pads, strict=True))
    if min(padded) < 0:
        raise ValueError(
            f"{FN}: negative padding may crop at most the (dilated) input: padding {pads} "
            f"leaves {padded} of the input's {dilated}"
        )
    out_size = tuple(max(0, (p - e) // s + 1) if p >= e else 0
                     for p, e, s in zip(padded, eff, strides, strict=True))
    precision = canonical_precision(FN, precision)
    dtype = jnp.result_type(*(jax.dtypes.canonicalize_dtype(a.dtype) for a in (lhs, rhs)))
    out_dtype = _preferred(preferred_element_type, dtype)
    dtype = jnp.promote_types(dtype, out_dtype)

    transposed = any(d > 1 for d in ld)
    groups = b if b > 1 else g
    zero = ((0, 0),) * spatial
    plan = dict(
        lhs_perm=(dn.lhs_spec[0], *dn.lhs_spec[2:], dn.lhs_spec[1]),
        rhs_perm=(*dn.rhs_spec[2:], dn.rhs_spec[1], dn.rhs_spec[0]),
        out_perm=_out_perm(dn.out_spec), batch_groups=b, lhs_dilation=ld, dtype=dtype,
        out_dtype=out_dtype, out_shape=(n // b, *out_size, o), crops=None,
    )
    known = _registry.names()
    if not isinstance(algorithm, str) or (algorithm != "auto" and algorithm not in known):
        raise ValueError(
            f"{FN}: unknown algorithm {algorithm!r}; expected 'auto' or one of "
            f"{', '.join(map(repr, known))}"
        )
    # Negative padding becomes a crop of the input (a slice) and the convolution sees only
    # non-negative padding: XLA:CPU's float32 convolution read out of bounds (wrong values,
    # NaN) with a negative padding on ~1.6% of small random problems (jax 0.10.2).
    if transposed:
        crops = [_undilated_crops(lo, hi, d) for (lo, hi), d in zip(pads, ld, strict=True)]
        cuts = tuple(c for c, _ in crops)
        conv_pads = tuple(p for _, p in crops)
    else:
        cuts = tuple((min(lo, 0), min(hi, 0)) for lo, hi in pads)
        conv_pads = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads)
    seen = tuple(s + lo + hi for s, (lo, hi) in zip(size, cuts, strict=True))
    # an empty sum or output, or a crop of the whole input on some axis (only zeros remain)
    empty = 0 in lhs_shape or 0 in rhs_shape or 0 in out_size or min(seen) < 1
    plan["crops"] = tuple((-lo, -hi) for lo, hi in cuts) if cuts != zero and not empty else None
    if empty or transposed:
        if transposed and not empty and algorithm not in TRANSPOSE_ALGORITHMS:
            raise ValueError(
                f"{FN}: algorithm={algorithm!r} cannot serve lhs_dilation={ld} (a transposed "
                "convolution, run as stride-1 convolutions of XLA's); algorithms that can: "
                f"{', '.join(map(repr, TRANSPOSE_ALGORITHMS))}"
            )
        config = ConvConfig(stride=strides, padding=conv_pads, dilation=rd, groups=groups,
                            precision=precision)
        kind = "zeros" if empty else "transposed"
        return _Plan(kind=kind, config=config, algorithm="direct", train_algorithm="direct",
                     **plan)

    x_shape = (n // b, *seen, b * c)
    k_shape = (*ksize, i, o)
    _, _, _, canon = canonicalize(
        FN, jax.ShapeDtypeStruct(x_shape, dtype), jax.ShapeDtypeStruct(k_shape, dtype),
        stride=strides, padding=conv_pads, dilation=rd, groups=groups, precision=precision,
        spatial=spatial,
    )
    name = resolve_algorithm(FN, algorithm, canon)
    train = resolve_algorithm(FN, algorithm, canon, mode="train") if algorithm == "auto" else name
    return _Plan(kind="conv", config=canon.config, algorithm=name, train_algorithm=train, **plan)


def _undilated_crops(lo: int, hi: int, d: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """A padding of the ``d``-dilated input as ``(crop of the input, padding >= 0)``.

    Cropping ``c = q * d + r`` rows of the dilated input drops ``q`` input elements (``r = 0``)
    or drops ``q + 1`` and leaves ``d - r`` of the zeros next to the last one dropped. Crops
    come back as ``(lo, hi)`` pads <= 0 of the undilated input.
    """
    def side(p: int) -> tuple[int, int]:
        if p >= 0:
            return 0, p
        q, r = divmod(-p, d)
        return (-q, 0) if r == 0 else (-q - 1, d - r)

    (clo, plo), (chi, phi) = side(lo), side(hi)
    return (clo, chi), (plo, phi)


def _out_perm(out_spec: Sequence[int]) -> tuple[int, ...]:
    """The ``jnp.transpose`` axes taking ``(N, *spatial, O)`` to the out layout."""
    nd = len(out_spec)
    axes = [0] * nd
    axes[out_spec[0]] = 0
    axes[out_spec[1]] = nd - 1
    for j, a in enumerate(out_spec[2:]):
        axes[a] = 1 + j
    return tuple(axes)


@functools.partial(jax.jit, static_argnames=("plan",))
def _general_core(lhs, rhs, *, plan: _Plan):
    if plan.kind == "zeros":  # a sum over nothing, or nothing to sum into
        y = jnp.zeros(plan.out_shape, plan.out_dtype)
        return jnp.transpose(y, plan.out_perm)
    x = jnp.transpose(lhs, plan.lhs_perm).astype(plan.dtype)
    k = jnp.transpose(rhs, plan.rhs_perm).astype(plan.dtype)
    b = plan.batch_groups
    if b > 1:  # (B * N', *s, C) -> (N', *s, B * C): batch blocks become channel groups
        x = x.reshape(b, x.shape[0] // b, *x.shape[1:])
        x = jnp.moveaxis(x, 0, -2).reshape(*x.shape[1:-1], b * x.shape[-1])
    cfg = plan.config
    if plan.crops is not None:
        # a slice, not a negative lax.pad: XLA folds pads into the convolution's window, which
        # would bring the negative padding back (and the gradients of pads next to
        # convolutions aborted XLA:CPU's algebraic simplifier on some shapes)
        x = x[(slice(None), *(slice(lo, n - hi) for (lo, hi), n
                              in zip(plan.crops, x.shape[1:-1], strict=True)))]
    if plan.kind == "transposed":
        y = _transposed(x, k, cfg, plan.lhs_dilation, plan.out_shape[1:-1])
    else:
        y = _conv_core(
            x, k, None, config=cfg, mode_pads=None, padding_mode="zeros",
            data_format=layouts(x.ndim - 2)[0], unbatched=False, algorithm=plan.algorithm,
            train_algorithm=plan.train_algorithm, dtype=jnp.dtype(plan.dtype),
        )
    return jnp.transpose(y.astype(plan.out_dtype), plan.out_perm)


def _transposed(x, k, cfg: ConvConfig, lhs_dilation: tuple[int, ...], out_size: tuple[int, ...]):
    """The ``lhs_dilation`` convolution as :func:`.transpose._polyphase` computes it.

    ``_polyphase(x, k)`` equals lax's input-dilated convolution with the *flipped* kernel, so
    it gets ``k`` flipped. It runs at stride 1; for a window stride ``s`` the high padding is cut
    to the last output needed and every ``s``-th row kept.
    """
    spatial = x.ndim - 2
    eff = cfg.effective_kernel(k.shape[:spatial])
    pads = []
    for (lo, hi), n, d, e, s, out in zip(cfg.padding, x.shape[1:-1], lhs_dilation, eff,
                                         cfg.stride, out_size, strict=True):
        rows = (n - 1) * d + 1 + lo + hi - e + 1  # the stride-1 outputs
        pads.append((lo, hi - (rows - ((out - 1) * s + 1))))
    k = jnp.flip(k, axis=tuple(range(spatial)))
    y = _polyphase(x, k, lhs_dilation, cfg.dilation, tuple(pads), cfg.groups, cfg.precision)
    if any(s > 1 for s in cfg.stride):
        # (N, (out - 1) * s + 1, ...) -> pad to out * s -> (N, out, s, ...) -> row 0 of each s
        y = jnp.pad(y, ((0, 0), *((0, s - 1) for s in cfg.stride), (0, 0)))
        y = y.reshape(y.shape[0], *(a for out, s in zip(out_size, cfg.stride, strict=True)
                                    for a in (out, s)), y.shape[-1])
        y = y[(slice(None), *(a for _ in cfg.stride for a in (slice(None), 0)))]
    return y
