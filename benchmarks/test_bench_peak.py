"""The machine's float32 matmul rate (an N x N ``jnp.dot``, N = 2048), the peak each conv point
is compared with. On GPUs XLA may run it in TF32, as it does the float32 convs."""

from __future__ import annotations

import time

import bench
import jax
import jax.numpy as jnp
import numpy as np


def test_matmul_peak(benchmark, size: str):
    n = bench.MATMUL_N[size]
    rng = np.random.default_rng(0)
    a, b = (jax.device_put(rng.standard_normal((n, n), dtype=np.float32)) for _ in range(2))
    f = jax.jit(jnp.dot)

    def call():
        return f(a, b).block_until_ready()

    start = time.perf_counter()
    out = call()
    compile_s = time.perf_counter() - start
    # A spot check, not a full one: 8 rows against NumPy (float32 sums of n terms).
    np.testing.assert_allclose(np.asarray(out[:8]), np.asarray(a[:8]) @ np.asarray(b),
                               rtol=2e-2, atol=2e-2 * np.sqrt(n))
    start = time.perf_counter()
    call()
    estimate = time.perf_counter() - start
    benchmark.group = f"matmul {n}x{n} float32"
    benchmark.extra_info.update({"kind": "matmul", "n": n, "flops": 2 * n**3, "compile_s": compile_s})
    benchmark.pedantic(call, rounds=max(5, bench.rounds_for(estimate, size)), iterations=1)
