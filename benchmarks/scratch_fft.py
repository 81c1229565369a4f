"""Scratch timing of ``algorithm="fft"`` against ``"direct"``, side by side in one run.

Not a test and not the benchmark suite: a quick look while tuning ``jaxconv/conv/fft.py``.
Each call is jitted and warmed up outside the timed loop; the time is the median of ``--repeats``
``block_until_ready`` calls, and the two algorithms alternate so machine noise hits both.

    python benchmarks/scratch_fft.py [--case article|layer|all] [--repeats 15] [--grad]
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxconv

CASES = {
    "article": ((1, 320, 400, 3), 3, (1, 3, 5, 7, 10, 15, 21, 31)),
    "layer": ((8, 64, 64, 32), 32, (1, 3, 5, 7, 11, 15)),
}


def _compiled(algorithm, grad):
    def fwd(x, k):
        return jaxconv.conv2d(x, k, algorithm=algorithm)

    if not grad:
        return jax.jit(fwd)
    return jax.jit(jax.grad(lambda x, k: jnp.sum(fwd(x, k) ** 2), argnums=(0, 1)))


def _time(fns, args, repeats):
    """Median ms per fn, calls interleaved; also the compile (first call) time."""
    compile_ms = []
    for f in fns:
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        compile_ms.append((time.perf_counter() - t) * 1e3)
        jax.block_until_ready(f(*args))
    times = [[] for _ in fns]
    for _ in range(repeats):
        for f, ts in zip(fns, times, strict=True):
            t = time.perf_counter()
            jax.block_until_ready(f(*args))
            ts.append((time.perf_counter() - t) * 1e3)
    return [float(np.median(ts)) for ts in times], compile_ms


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", default="all", choices=["all", *CASES])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--grad", action="store_true", help="time the gradient w.r.t. x and kernel")
    p.add_argument("--kernels", type=int, nargs="*", help="restrict the kernel sizes")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    for case in CASES if args.case == "all" else [args.case]:
        x_shape, o, ks = CASES[case]
        ks = [k for k in ks if not args.kernels or k in args.kernels]
        x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
        print(f"{case}: x={x_shape} -> {o}, {'grad' if args.grad else 'forward'}, median ms")
        print(f"{'k':>4} {'direct':>9} {'fft':>9} {'speed-up':>9} {'err/max':>9} {'compile ms':>16}")
        ratios = []
        for k in ks:
            kern = jnp.asarray(rng.standard_normal((k, k, x_shape[-1], o)) / k, jnp.float32)
            fns = [_compiled("direct", args.grad), _compiled("fft", args.grad)]
            (td, tf), (cd, cf) = _time(fns, (x, kern), args.repeats)
            yd, yf = (jax.tree_util.tree_leaves(f(x, kern))[0] for f in fns)
            err = float(jnp.max(jnp.abs(yd - yf)) / jnp.max(jnp.abs(yd)))
            ratios.append(td / tf)
            print(f"{k:>4} {td:>9.2f} {tf:>9.2f} {td / tf:>8.2f}x {err:>9.1e} {cd:>7.0f} {cf:>7.0f}")
        gm = math.exp(sum(map(math.log, ratios)) / len(ratios))
        print(f"geometric-mean speed-up of fft over direct: {gm:.2f}x\n")


if __name__ == "__main__":
    main()
