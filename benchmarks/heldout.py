"""How well ``auto`` picks on problems the cost model never saw: regret per family and overall.

    python benchmarks/heldout.py                 # 36 held-out draws, 5 rounds, forward
    python benchmarks/heldout.py 48 7 --seed 3   # N draws, rounds, another draw
    python benchmarks/heldout.py 24 5 --json out.json --plot regret.png
    python benchmarks/heldout.py 24 5 --train    # forward + backward, auto's training choice

Draws ``N`` problems of the "heldout" split of ``jaxconv.convolution.cases.sample`` (disjoint from what
``benchmarks/fit_cost_model.py`` fits on, by construction) and times, on each, every applicable
registered algorithm, ``auto`` (``jaxconv.conv`` as a user calls it), XLA
(``lax.conv_general_dilated`` in channels-last layout) and, when it is installed, torch
(``torch.nn.functional.conv1d/2d/3d``, 2 threads), in interleaved rounds in a fresh random order
(``jaxconv.convolution.tuning.interleaved_medians``), float32, forward; with ``--train`` the
forward and backward pass (the gradients of ``tuning.timing_loss`` w.r.t. input and kernel;
torch's ``backward`` of the same loss) and ``auto``'s training choice. Names that compile to
the same XLA program are timed once, as one (``auto`` and the algorithm it picks; ``pointwise``,
``im2col`` and ``mec`` on a stride-1 1x1 layer; ``direct`` and XLA): timed apart, copies of one
program differed by up to 1.7x in 7-round medians, noise that the fastest of several copies
turned into regret. Prints each problem's row, then ``auto`` / fastest algorithm per family and
overall (geometric mean, 90th percentile, worst; ``auto``'s own compiled call, and its pick's
timing beside the others: the two differ only where ``auto``'s program is not its pick's), and
``auto`` against XLA and torch. Algorithms whose buffers would exceed 2 GB are not run (they are
not what ``auto`` should pick there either; their absence is printed).
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxconv
from jaxconv.convolution import _registry, cases, cost_model, select, tuning

HELDOUT_SEED = 7
MAX_BUFFER_BYTES = 2e9


def _torch_fn(problem, x, k, mode: str = "forward"):
    """A zero-argument torch call of the same convolution (``mode="train"``: with the backward
    pass of ``sum(y * y) / 2``), or ``None`` without torch."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(2)
    canon = problem.canonical()
    spatial = len(canon.x_shape) - 2
    xt = torch.from_numpy(np.moveaxis(np.asarray(x), -1, 1).copy())
    kt = torch.from_numpy(np.moveaxis(np.asarray(k), (-1, -2), (0, 1)).copy())
    pads = [v for lo_hi in reversed(canon.config.padding) for v in lo_hi]
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]

    def forward(xt, kt):
        xp = F.pad(xt, pads) if any(pads) else xt
        return conv(xp, kt, stride=canon.config.stride, dilation=canon.config.dilation,
                    groups=canon.config.groups)

    if mode == "train":
        xg, kg = xt.requires_grad_(), kt.requires_grad_()

        def train():
            xg.grad = kg.grad = None
            y = forward(xg, kg)
            (y * y).sum().div(2).backward()
            return xg.grad, kg.grad

        return train

    def run():
        with torch.no_grad():
            return forward(xt, kt)

    return run


def time_problem(problem, rounds: int, seed: int, mode: str = "forward") -> dict:
    canon = problem.canonical()
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal(canon.x_shape), jnp.float32)
    k = jnp.asarray(rng.standard_normal(canon.kernel_shape), jnp.float32)
    skipped = []
    fns, programs = {}, {}
    for name in _registry.applicable(canon.x_shape, canon.kernel_shape, jnp.float32, canon.config):
        if _registry.get(name).cost_terms is not None and any(
                v > MAX_BUFFER_BYTES for t, v in cost_model.cost_terms(
                    name, canon.x_shape, canon.kernel_shape, canon.config).items() if "byte" in t):
            skipped.append(name)
            continue
        programs[name], _ = tuning.compile_timed(name, x, k, canon.config, mode)
    kwargs = problem.conv_kwargs()
    programs["auto"] = tuning.timed(lambda a, b: jaxconv.conv(a, b, **kwargs), mode).lower(
        x, k).compile()
    spec = "NWC WIO NWC" if len(canon.x_shape) == 3 else (
        "NHWC HWIO NHWC" if len(canon.x_shape) == 4 else "NDHWC DHWIO NDHWC")
    programs["xla"] = tuning.timed(lambda a, b: jax.lax.conv_general_dilated(
        a, b, canon.config.stride, canon.config.padding, rhs_dilation=canon.config.dilation,
        dimension_numbers=tuple(spec.split()), feature_group_count=canon.config.groups), mode
    ).lower(x, k).compile()
    fns = {name: functools.partial(compiled, x, k) for name, compiled in programs.items()}
    torch_fn = _torch_fn(problem, x, k, mode)
    if torch_fn is not None:
        fns["torch"] = torch_fn
    # Names that compile to one program (auto and its pick, 1x1 GEMMs under three names, direct
    # and XLA) are timed once and share the timing.
    medians = tuning.interleaved_medians(fns, rounds, budget_s=20.0, seed=seed, programs=programs)
    picked = select.select(canon.x_shape, canon.kernel_shape, canon.dtype, canon.config,
                           use_cache=False, mode=mode).algorithm
    algs = {n: t for n, t in medians.items() if n not in ("auto", "xla", "torch")}
    best = min(algs, key=algs.get)
    return {"label": problem.label, "family": cases.family(problem), "picked": picked,
            "fastest": best, "ms": {n: t * 1e3 for n, t in medians.items()},
            "skipped": skipped}


def _gm(v):
    return math.exp(float(np.mean(np.log(v)))) if len(v) else math.nan


def summarize(rows: list[dict]) -> str:
    lines = [f"{'family':<10} {'n':>3} {'auto/best gm':>12} {'p90':>6} {'worst':>6} "
             f"{'pick/best gm':>12} {'p90':>6} {'worst':>6} {'xla/auto gm':>11} {'torch/auto gm':>13}"]
    groups = {}
    for r in rows:
        groups.setdefault(r["family"], []).append(r)
    groups["all"] = rows
    for fam, rs in groups.items():
        reg = [r["ms"]["auto"] / r["ms"][r["fastest"]] for r in rs]
        # the picked algorithm's own timing over the fastest's: the choice alone, without the
        # noise of timing auto as one more call
        pick = [r["ms"][r["picked"]] / r["ms"][r["fastest"]] for r in rs if r["picked"] in r["ms"]]
        xla = [r["ms"]["xla"] / r["ms"]["auto"] for r in rs]
        tor = [r["ms"]["torch"] / r["ms"]["auto"] for r in rs if "torch" in r["ms"]]
        lines.append(f"{fam:<10} {len(rs):>3} {_gm(reg):>12.3f} {np.percentile(reg, 90):>6.2f} "
                     f"{max(reg):>6.2f} {_gm(pick):>12.3f} {np.percentile(pick, 90):>6.2f} "
                     f"{max(pick):>6.2f} {_gm(xla):>11.2f} {_gm(tor) if tor else math.nan:>13.2f}")
    slow = [r for r in rows if r["ms"]["xla"] > 0.5 and r["ms"]["xla"] / r["ms"]["auto"] < 0.9]
    lines.append(f"auto below 0.9x XLA where XLA takes > 0.5 ms: {len(slow)} of {len(rows)}"
                 + "".join(f"\n  {r['label']}: xla/auto {r['ms']['xla'] / r['ms']['auto']:.2f}"
                           for r in slow))
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, mode: str = "forward") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxconv import _io

    fams = list(dict.fromkeys(r["family"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    for i, fam in enumerate(fams):
        reg = [r["ms"]["auto"] / r["ms"][r["fastest"]] for r in rows if r["family"] == fam]
        ax.scatter(np.full(len(reg), i) + np.linspace(-0.2, 0.2, len(reg)), reg, s=18)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(range(len(fams)), fams)
    ax.set_yscale("log")
    # a log axis spanning less than a decade gets no labelled tick above 1 by default
    lo, hi = ax.get_ylim()
    ticks = [t for t in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5, 2, 3, 5, 10, 20, 50)
             if lo <= t <= hi]
    ax.minorticks_off()
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_ylabel("auto time / fastest algorithm's")
    what = "forward + backward" if mode == "train" else "forward"
    ax.set_title(f"auto on {len(rows)} held-out problems ({what}, float32)")
    _io.save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", nargs="?", type=int, default=36)
    ap.add_argument("rounds", nargs="?", type=int, default=5)
    ap.add_argument("--seed", type=int, default=HELDOUT_SEED)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--train", action="store_true",
                    help="time forward + backward and auto's training choice")
    args = ap.parse_args(argv)
    mode = "train" if args.train else "forward"
    problems = cases.sample(args.n, seed=args.seed, split="heldout")
    rows = []
    print(f"{'problem':<28} {'picked':>14} {'fastest':>14} {'auto/best':>9} {'xla/auto':>8} "
          f"{'torch/auto':>10}", flush=True)
    for i, p in enumerate(problems):
        r = time_problem(p, args.rounds, seed=i, mode=mode)
        ms = r["ms"]
        torch_ratio = f"{ms['torch'] / ms['auto']:10.2f}" if "torch" in ms else f"{'-':>10}"
        print(f"{r['label'][:28]:<28} {r['picked']:>14} {r['fastest']:>14} "
              f"{ms['auto'] / ms[r['fastest']]:9.2f} {ms['xla'] / ms['auto']:8.2f} {torch_ratio}"
              + (f"  (not run: {', '.join(r['skipped'])})" if r["skipped"] else ""), flush=True)
        rows.append(r)
    print(summarize(rows))
    if args.json:
        from jaxconv import _io

        _io.write_json_atomic(args.json, {"jax": jax.__version__, "seed": args.seed,
                                          "rounds": args.rounds, "mode": mode, "rows": rows})
    if args.plot:
        plot(rows, args.plot, mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
