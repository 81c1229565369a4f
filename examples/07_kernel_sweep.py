"""
Kernel sizes and their cost
===========================

Beyond the article: the cat through one convolution with 3 random filters for kernel sizes from
1 to 31, with the time each ``conv2d`` call took on this machine. ``conv2d`` picks its algorithm
(``algorithm="auto"``): XLA's direct convolution for small kernels, an FFT for large ones, whose
time hardly grows with the kernel.
"""

# %%
import json
import time
from pathlib import Path

import _gallery
import jax
import numpy as np

from jaxconv import conv2d, select_algorithm, viz
from jaxconv.layers import glorot_uniform

g = _gallery.Gallery()
x = jax.numpy.asarray(g.cat)
sizes = (1, 3, 5) if g.small else (1, 3, 5, 7, 10, 15, 21, 31)


def best_ms(fn, *args, reps=5):
    """Best of ``reps`` calls after a compiling warm-up, in ms (the least disturbed by load)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


outs, ms, picked = [], [], []
for k in sizes:
    kernel = glorot_uniform(jax.random.fold_in(jax.random.key(g.seed), k), (k, k, 3, 3))
    ms.append(best_ms(conv2d, x, kernel, reps=1 if g.small else 5))
    outs.append(np.asarray(conv2d(x, kernel)))
    picked.append(select_algorithm((1, *x.shape), kernel.shape).algorithm)  # what "auto" ran
    print(f"k={k:>2}: {outs[-1].shape}, {ms[-1]:.2f} ms ({picked[-1]})")

# %%
# The outputs, and the times on a log scale:
ncols = min(4, len(sizes))
nrows = -(-len(sizes) // ncols)
fig = viz.figure(2.3 * ncols + 3.6, 2.1 * nrows + 0.4)
left, right = fig.subfigures(1, 2, width_ratios=(2.3 * ncols, 3.6))
axs = left.subplots(nrows, ncols, squeeze=False).ravel().tolist()
titles = [f"k={k}: {viz.fmt_shape(o.shape)}\n{t:.1f} ms" for k, o, t in zip(sizes, outs, ms, strict=True)]
viz.plot_grid(outs, titles=titles, ax=axs[: len(sizes)],
              strategy="wrap" if g.style == "article" else "minmax")
for a in axs[len(sizes):]:
    a.set_axis_off()
viz.plot_kernel_times(sizes, ms, ax=right.add_subplot(), label="conv2d (auto)")
fig.suptitle("The cat through one k×k convolution with 3 filters, and the time it took")
g.save(fig, "kernel_sizes",
       "Beyond the article: kernel sizes 1 to 31 on the cat, with the measured time of each "
       "convolution on this machine.",
       kind="extra", kernel_sizes=list(sizes), time_ms=[round(t, 3) for t in ms],
       algorithms=picked)

# %%
# The benchmark sweep
# -------------------
# ``nox -s bench`` times every algorithm against XLA and torch and leaves
# ``bench-results/benchmark.json``; when it is there, plot it.
bench = Path("bench-results") / "benchmark.json"
caption = "Benchmarks: convolution time against kernel size, per implementation."
if bench.is_file():
    from jaxconv.viz.benchmark import plot_data

    fig = viz.plot_conv_vs_kernel(plot_data(json.loads(bench.read_text())))
    g.save(fig, "benchmark", caption, kind="extra", source=str(bench))
else:
    g.skip("benchmark", caption, "no bench-results/benchmark.json here (run `nox -s bench` first)",
           kind="extra")
