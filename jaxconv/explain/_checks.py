"""Argument validation shared by the attribution methods (runs before any tracing).

Every check raises ``TypeError`` (wrong kind) or ``ValueError`` (wrong value) with a message
naming the public function, the argument, the rule and the value received.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _args


def short(value: Any) -> str:
    """A short description of a value for error messages (arrays by shape and dtype)."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"array of shape {tuple(value.shape)} and dtype {value.dtype}"
    r = repr(value)
    return r if len(r) <= 80 else r[:77] + "..."


def check_callable(fn: str, name: str, value: Any) -> Callable:
    if not callable(value):
        raise TypeError(f"{fn}: {name} must be callable, got {short(value)}")
    return value


def check_images(fn: str, name: str, x: Any) -> jax.Array:
    """A floating NHWC batch ``(N, H, W, C)`` with every size >= 1, as a JAX array."""
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        try:
            x = np.asarray(x)
        except Exception as e:
            raise TypeError(f"{fn}: {name} must be an array, got {short(x)}") from e
    if x.dtype == object or not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{fn}: {name} must have a floating dtype (float16, bfloat16, float32, float64), "
            f"got dtype {x.dtype}"
        )
    if x.ndim != 4 or min(x.shape) < 1:
        raise ValueError(
            f"{fn}: {name} must be NHWC images of shape (N, H, W, C) with sizes >= 1, "
            f"got shape {tuple(x.shape)}"
        )
    return jnp.asarray(x)


def check_logits(fn: str, name: str, f: Callable, x: jax.Array, *args: Any) -> int:
    """Trace ``f(x)`` abstractly; it must return ``(N, K)`` floats. Returns ``K``."""
    out = jax.eval_shape(f, jax.ShapeDtypeStruct(x.shape, x.dtype), *args)
    shape = getattr(out, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != x.shape[0] or shape[1] < 1:
        got = "shape " + str(tuple(shape)) if shape is not None else type(out).__name__
        raise ValueError(
            f"{fn}: {name}(x) must return logits of shape (N, K) = ({x.shape[0]}, K), got {got}"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{fn}: {name}(x) must return floating logits, got dtype {out.dtype}")
    return int(shape[1])


def check_target(fn: str, target: Any, n: int, k: int, name: str = "target") -> jax.Array:
    """An int in ``[0, k)`` or an int array ``(n,)`` of them, as an int32 array ``(n,)``.

    A traced ``target`` (inside ``jit``) is checked for kind only: its values are unknown.
    """
    if isinstance(target, jax.core.Tracer):
        if target.ndim not in (0, 1) or not jnp.issubdtype(target.dtype, jnp.integer):
            raise TypeError(f"{fn}: {name} must be an int or an int array (N,), got {short(target)}")
        return jnp.broadcast_to(jnp.asarray(target, jnp.int32), (n,))
    if _args.is_int(target):
        t = np.full((n,), int(target), np.int64)
    else:
        t = np.asarray(target) if not isinstance(target, str | bytes) else np.asarray(None)
        if t.dtype == object or not np.issubdtype(t.dtype, np.integer) or t.ndim != 1:
            raise TypeError(
                f"{fn}: {name} must be an int or an int array of shape (N,), got {short(target)}"
            )
        if t.shape != (n,):
            raise ValueError(
                f"{fn}: {name} must have shape (N,) = ({n},), got shape {t.shape}"
            )
    bad = t[(t < 0) | (t >= k)]
    if bad.size:
        raise ValueError(
            f"{fn}: {name} must be in [0, {k}) (the model has {k} outputs), got {int(bad[0])}"
        )
    return jnp.asarray(t, jnp.int32)


def check_key(fn: str, key: Any) -> jax.Array:
    if isinstance(key, jax.Array) and (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key) or (key.shape == (2,) and key.dtype == jnp.uint32)
    ):
        return key
    raise TypeError(
        f"{fn}: key must be a PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), "
        f"got {short(key)}"
    )


def check_int(fn: str, name: str, value: Any, *, minimum: int = 1, maximum: int | None = None) -> int:
    if not _args.is_int(value):
        raise TypeError(f"{fn}: {name} must be an int >= {minimum}, got {short(value)}")
    if value < minimum:
        raise ValueError(f"{fn}: {name} must be an int >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{fn}: {name} must be an int <= {maximum}, got {value}")
    return int(value)


def check_real(fn: str, name: str, value: Any, *, minimum: float = 0.0, strict: bool = False) -> float:
    rule = f"{'>' if strict else '>='} {minimum:g}"
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a real number {rule}, got {short(value)}")
    v = float(value)
    if not np.isfinite(v) or v < minimum or (strict and v == minimum):
        raise ValueError(f"{fn}: {name} must be a finite real number {rule}, got {value!r}")
    return v


def check_pair(fn: str, name: str, value: Any) -> tuple[int, int]:
    """A positive int or a pair of positive ints."""
    ok = _args.is_int(value) or (
        isinstance(value, tuple | list) and len(value) == 2 and all(_args.is_int(v) for v in value)
    )
    if not ok:
        raise TypeError(f"{fn}: {name} must be a positive int or pair of positive ints, got {value!r}")
    out = (int(value), int(value)) if _args.is_int(value) else (int(value[0]), int(value[1]))
    if min(out) < 1:
        raise ValueError(f"{fn}: {name} must be a positive int or pair, got {value!r}")
    return out


def check_baseline(fn: str, baseline: Any, x: jax.Array) -> jax.Array:
    """``None`` (zeros), a real scalar or an array broadcastable to ``x``; returned as ``x``."""
    if baseline is None:
        return jnp.zeros_like(x)
    if isinstance(baseline, bool | np.bool_):
        raise TypeError(f"{fn}: baseline must be None, a real number or an array, got {baseline!r}")
    if not (hasattr(baseline, "shape") and hasattr(baseline, "dtype")):
        try:
            baseline = np.asarray(baseline)
        except Exception as e:
            raise TypeError(f"{fn}: baseline must be None, a real number or an array, got {short(baseline)}") from e
    if baseline.dtype == object or not (
        jnp.issubdtype(baseline.dtype, jnp.floating) or jnp.issubdtype(baseline.dtype, jnp.integer)
    ):
        raise TypeError(f"{fn}: baseline must be real-valued, got dtype {baseline.dtype}")
    try:
        shape = np.broadcast_shapes(tuple(baseline.shape), tuple(x.shape))
    except ValueError:
        shape = None
    if shape != tuple(x.shape) or baseline.ndim > x.ndim:
        raise ValueError(
            f"{fn}: baseline must be broadcastable to x's shape {tuple(x.shape)}, "
            f"got shape {tuple(baseline.shape)}"
        )
    b = jnp.asarray(baseline, x.dtype)
    b = b.reshape((1,) * (x.ndim - b.ndim) + b.shape)
    return jnp.broadcast_to(b, x.shape)


def check_choice(fn: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{fn}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
