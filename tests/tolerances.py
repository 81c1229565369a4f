"""The one table of tolerances for comparing jaxconv results with the float64 references.

A result ``y`` passes against ``ref`` when, element by element,

    |y - ref| <= atol * max|ref| + rtol * |ref|

``atol`` is *relative to the largest output*: that is the right scale for algorithms whose error
spreads across the whole output (FFT's error scales with ``max|y|``, not with each element), and
for low-precision accumulation where a small output is the difference of large products.
The reference is computed in float64 from the *same* (already rounded) inputs, so the table only
has to cover the algorithm's own arithmetic and the final rounding.

Rows are ``(algorithm, dtype)``; ``algorithm=None`` is the default row for a dtype, used by
every algorithm without its own row and by ops that are not convolutions (activations).
Loosen a row only with a stated reason next to it.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

# (rtol, atol relative to max|ref|)
_TABLE: dict[tuple[str | None, str], tuple[float, float]] = {
    # Defaults: a few ulps of the dtype, times the accumulation length of the small test convs.
    (None, "float64"): (1e-12, 1e-12),
    (None, "float32"): (2e-5, 2e-6),
    # bfloat16 has an 8-bit mantissa (eps = 2^-8 ~ 4e-3); outputs are rounded once to it and
    # XLA may accumulate in bfloat16 on some backends.
    (None, "bfloat16"): (1.6e-2, 1.6e-2),
    # float16: eps = 2^-11 ~ 4.9e-4.
    (None, "float16"): (2e-3, 2e-3),
    # Per-algorithm rows go here, each with its reason, e.g.
    # ("fft", "float32"): (0.0, 1e-5),  # FFT error ~ eps * log(n) * max|y|, per element useless
    # fft: the transform's rounding spreads over every output, |err| ~ c * eps * log2(Lh * Lw)
    # * max|y| (jaxconv/conv/fft.py), so a per-element rtol is meaningless (a near-zero output
    # next to a large one has no relative accuracy). eps * log2(L^2) ~ 1e-6 for float32 at image
    # sizes; measured <= 1e-6 * max|y| up to 320x400; atol leaves ~10x margin. bfloat16/float16
    # are computed in float32 and rounded once, so their default rows apply.
    ("fft", "float64"): (0.0, 1e-12),
    ("fft", "float32"): (0.0, 1e-5),
    # im2col: the same products as direct, summed by a GEMM in another order, so direct's
    # (default) rows hold. winograd F(2x2, 3x3): its transforms only add, subtract and halve, and
    # its float32 error was measured <= direct's (<= 3.3e-7 * max|y| at C=256; bound tested in
    # tests/test_gemm_algorithms.py); both compute bfloat16/float16 in float32 and round once.
    # So neither needs its own row: the defaults apply.
}

DTYPES = ("float64", "float32", "bfloat16", "float16")


def _name(dtype) -> str:
    return jnp.dtype(dtype).name


def tolerance(algorithm: str | None, dtype) -> tuple[float, float]:
    """``(rtol, atol_relative_to_max_abs_ref)`` for ``algorithm`` (``None``: default) at ``dtype``."""
    name = _name(dtype)
    if (algorithm, name) in _TABLE:
        return _TABLE[(algorithm, name)]
    return _TABLE[(None, name)]


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
