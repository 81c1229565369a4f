"""Scratch timing of the GEMM-based algorithms next to ``direct`` (not a test).

    python benchmarks/scratch_gemm.py [--case layer|article|lenet] [--algorithms im2col,winograd]
                                      [--ks 3,5] [--grad] [--repeats 7]

Each point: jit, one warm-up call (compile excluded, its time reported), then the median of
``--repeats`` calls with ``block_until_ready``, wall clock and process CPU time (the CPU time is
the steadier number on a machine shared with other jobs). ``--grad`` times
``jax.grad(sum(conv2d(x, k) * ct), argnums=(0, 1))``: gradients w.r.t. input and kernel.
The result of every algorithm is checked against ``direct`` before timing.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxconv

CASES = {
    "article": ([(1, 320, 400, 3, 3)], [1, 3, 5, 7, 10, 15, 21, 31]),
    "layer": ([(8, 64, 64, 32, 32)], [1, 3, 5, 7, 11, 15]),
    "lenet": ([(256, 32, 32, 1, 6), (256, 14, 14, 6, 16)], [5]),
}


def _time(f, args, repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(f(*args))
    compile_s = time.perf_counter() - t0
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(f(*args))
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return np.median(wall) * 1e3, np.median(cpu) * 1e3, compile_s


def _fn(algorithm, grad):
    def fwd(x, k):
        return jaxconv.conv2d(x, k, algorithm=algorithm)

    if not grad:
        return jax.jit(fwd)

    def loss(x, k, ct):
        return jnp.sum(fwd(x, k) * ct)

    return jax.jit(jax.grad(loss, argnums=(0, 1)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", default="layer", choices=sorted(CASES))
    p.add_argument("--algorithms", default="im2col,winograd")
    p.add_argument("--ks", default=None, help="kernel sizes (default: the case's)")
    p.add_argument("--grad", action="store_true")
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args(argv)
    shapes, ks = CASES[a.case]
    ks = [int(k) for k in a.ks.split(",")] if a.ks else ks
    algos = ["direct", *a.algorithms.split(",")]
    rng = np.random.default_rng(0)
    print(f"case={a.case} grad={a.grad} backend={jax.default_backend()} "
          "(ms: median wall / median CPU; ratio = direct wall / algorithm wall; compile s)")
    for n, h, w, c, o in shapes:
        x = jnp.asarray(rng.standard_normal((n, h, w, c)), jnp.float32)
        for k in ks:
            kern = jnp.asarray(rng.standard_normal((k, k, c, o)) / (k * np.sqrt(c)), jnp.float32)
            ho, wo = h - k + 1, w - k + 1
            ct = jnp.asarray(rng.standard_normal((n, ho, wo, o)), jnp.float32)
            args = (x, kern, ct) if a.grad else (x, kern)
            ref = _fn("direct", a.grad)(*args)
            row, base = [], None
            for alg in algos:
                try:
                    f = _fn(alg, a.grad)
                    out = f(*args)
                except ValueError as e:
                    if "cannot serve" in str(e):
                        row.append(f"{alg}=n/a")
                        continue
                    raise
                for r, y in zip(jax.tree.leaves(ref), jax.tree.leaves(out), strict=True):
                    err = float(jnp.max(jnp.abs(y - r)) / jnp.max(jnp.abs(r)))
                    if err > 1e-4:
                        raise AssertionError(f"{alg} k={k}: relative error {err:.2e}")
                wall, cpu, comp = _time(f, args, a.repeats)
                base = wall if alg == "direct" else base
                ratio = "" if alg == "direct" else f" x{base / wall:.2f}"
                row.append(f"{alg}={wall:.1f}/{cpu:.1f}{ratio} ({comp:.1f}s)")
            print(f"{n}x{h}x{w}x{c}->{o} k={k}: " + "  ".join(row), flush=True)


if __name__ == "__main__":
    main()
