"""The one table of tolerances for comparing jaxconv results with the float64 references.

A result ``y`` passes against ``ref`` when, element by element,

    |y - ref| <= atol * max|ref| + rtol * |ref|

``atol`` is *relative to the largest output*: that is the right scale for algorithms whose error
spreads across the whole output (FFT's error scales with ``max|y|``, not with each element), and
for low-precision accumulation where a small output is the difference of large products.
The reference is computed in float64 from the *same* (already rounded) inputs, so the table only
has to cover the algorithm's own arithmetic and the final rounding.

The defaults below hold for every algorithm whose registry record does not loosen them (with a
stated reason, on the record), and for ops that are not convolutions (``algorithm=None``).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxconv.convolution import _registry

# (rtol, atol relative to max|ref|) per dtype: the default for every algorithm (and for ops that
# are not convolutions). An algorithm that needs other tolerances says so, with the reason, on
# its registry record (``Algorithm.tolerance``, e.g. ``fft``).
_DEFAULT: dict[str, tuple[float, float]] = {
    # A few ulps of the dtype, times the accumulation length of the small test convs.
    "float64": (1e-12, 1e-12),
    "float32": (2e-5, 2e-6),
    # bfloat16 has an 8-bit mantissa (eps = 2^-8 ~ 4e-3); outputs are rounded once to it and
    # XLA may accumulate in bfloat16 on some backends.
    "bfloat16": (1.6e-2, 1.6e-2),
    # float16: eps = 2^-11 ~ 4.9e-4.
    "float16": (2e-3, 2e-3),
}

DTYPES = ("float64", "float32", "bfloat16", "float16")


def _name(dtype) -> str:
    return jnp.dtype(dtype).name


def tolerance(algorithm: str | None, dtype) -> tuple[float, float]:
    """``(rtol, atol_relative_to_max_abs_ref)`` for ``algorithm`` (``None``: default) at ``dtype``."""
    name = _name(dtype)
    own = _registry.get(algorithm).tolerance if algorithm in _registry.names() else {}
    return own.get(name, _DEFAULT[name])


def assert_close(y, ref, *, algorithm: str | None = None, dtype=None, err_msg: str = "") -> None:
    """Assert ``y`` matches the float64 ``ref`` within :func:`tolerance` for ``y``'s dtype."""
    dtype = y.dtype if dtype is None else dtype
    rtol, atol = tolerance(algorithm, dtype)
    y = np.asarray(jnp.asarray(y, jnp.float64))
    ref = np.asarray(ref, dtype=np.float64)
    assert y.shape == ref.shape, f"shape {y.shape} != reference {ref.shape}. {err_msg}"
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    np.testing.assert_allclose(
        y, ref, rtol=rtol, atol=atol * scale, err_msg=f"{algorithm=} {_name(dtype)} {err_msg}"
    )
