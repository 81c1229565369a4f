"""Re-measure the constants of ``algorithm="auto"``'s cost model on this machine.

Times every registered algorithm over a grid of float32 problems (DESIGN.md's article, layer and
lenet cases plus a spread of batch sizes, image sizes, channel counts and kernel sizes), fits each
algorithm's constants (seconds per unit of each term of ``jaxconv.conv.select.cost_terms``) by
non-negative least squares on *relative* error (each row divided by its measured time, so a 1 ms
and a 1 s problem weigh the same), and prints the table to paste into
``jaxconv/conv/select.py`` (``COST_CONSTANTS[backend]``), with the fit's errors and the choices
the new constants make on the benchmark cases.

    python benchmarks/fit_cost_model.py                       # measure and fit (~5-10 min)
    python benchmarks/fit_cost_model.py --save fit.json       # keep the raw timings
    python benchmarks/fit_cost_model.py --load fit.json       # refit without measuring
    python benchmarks/fit_cost_model.py --table               # auto vs each algorithm vs torch
    python benchmarks/fit_cost_model.py --table --grad        # the same for the gradient

Compile time is excluded from the timings (it is reported); the algorithms of a problem are
timed round-robin for ``--repeats`` rounds after a warm-up run and the minimum is fitted (load
from other processes only ever adds time). On a shared machine, run it when it is quiet.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import jax
import numpy as np

import jaxconv  # registers every algorithm
from jaxconv.conv import _registry, select
from jaxconv.conv._registry import ConvConfig

BENCH_CASES = {
    "article": [((1, 320, 400, 3), (k, k, 3, 3)) for k in (1, 3, 5, 7, 10, 15, 21, 31)],
    "layer": [((8, 64, 64, 32), (k, k, 32, 32)) for k in (1, 3, 5, 7, 11, 15)],
    "lenet": [((256, 32, 32, 1), (5, 5, 1, 6)), ((256, 14, 14, 6), (5, 5, 6, 16))],
}


def grid() -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The problems to time: the benchmark cases plus a deterministic spread of others."""
    problems = [p for ps in BENCH_CASES.values() for p in ps]
    rng = np.random.default_rng(1)
    extra = []
    for n, hw, (c, o) in [
        (1, 128, (3, 8)), (1, 256, (1, 1)), (4, 64, (3, 16)), (2, 96, (16, 16)), (16, 32, (32, 32)),
        (4, 32, (64, 64)), (1, 64, (64, 64)), (8, 28, (1, 8)), (32, 16, (8, 8)), (2, 160, (8, 4)),
        (4, 48, (24, 24)), (1, 200, (3, 3)),
    ]:
        for k in rng.choice([1, 2, 3, 5, 7, 9, 13], size=3, replace=False):
            if k < hw:
                extra.append(((n, hw, hw, c), (int(k), int(k), c, o)))
    return problems + extra


def time_problem(names, x_shape, kernel_shape, repeats, budget_s, padding=((0, 0), (0, 0))):
    """{name: (compile s, min s, median s)} of each algorithm on a VALID stride-1 problem.

    The algorithms are timed round-robin (one run of each per round), so load from other
    processes hits them alike; the *minimum* over rounds is what the fit uses (other load only
    ever adds time), the median is kept for reference.
    """
    config = ConvConfig(padding=padding)
    rng = np.random.default_rng(0)
    x = jax.numpy.asarray(rng.standard_normal(x_shape), np.float32)
    k = jax.numpy.asarray(rng.standard_normal(kernel_shape), np.float32)
    compiled, compile_s, times = {}, {}, {}
    for name in names:
        alg = _registry.get(name)
        if alg.unsupported_reason(x_shape, kernel_shape, np.float32, config) is not None:
            continue
        f = jax.jit(lambda a, b, alg=alg: alg.fn(a, b, config))
        t0 = time.perf_counter()
        compiled[name] = f.lower(x, k).compile()
        compile_s[name] = time.perf_counter() - t0
        compiled[name](x, k).block_until_ready()  # warm-up
        times[name] = []
    for r in range(repeats):
        for name, c in compiled.items():
            if r > 0 and times[name][0] > budget_s:
                continue  # too slow to repeat: its first time stands
            t0 = time.perf_counter()
            c(x, k).block_until_ready()
            times[name].append(time.perf_counter() - t0)
    return {n: (compile_s[n], float(np.min(t)), float(np.median(t))) for n, t in times.items()}


def same_pads(kernel_shape):
    """Zero padding that keeps the size (SAME, odd extra at the end)."""
    return tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel_shape[:2])


def measure(names, problems, repeats, budget_s, padded_names=("direct",)):
    """Time ``names`` on every problem (VALID), and ``padded_names`` on its SAME variant too.

    XLA:CPU's direct convolution takes a different path with zero padding; the other
    algorithms' costs follow from the padded shape, so only ``direct`` is timed padded.
    """
    rows = []
    for i, (xs, ks) in enumerate(problems):
        line = [f"[{i + 1}/{len(problems)}] x {xs} k {ks}:"]
        variants = [(((0, 0), (0, 0)), names)]
        if ks[0] * ks[1] > 1 and padded_names:
            variants.append((same_pads(ks), padded_names))
        for pads, algs in variants:
            for name, (c, tmin, tmed) in time_problem(algs, xs, ks, repeats, budget_s, pads).items():
                rows.append({"alg": name, "x": list(xs), "k": list(ks), "padding": pads,
                             "compile_s": c, "t": tmin, "t_median": tmed})
                line.append(f"{name}{' SAME' if any(map(any, pads)) else ''} {tmin * 1e3:.2f} ms")
        print(" ".join(line), file=sys.stderr, flush=True)
    return rows


def _config(row) -> ConvConfig:
    pads = row.get("padding", ((0, 0), (0, 0)))
    return ConvConfig(padding=tuple(tuple(p) for p in pads))


def fit(rows, name):
    """Fit one algorithm's constants; returns (constants, relative errors of the fit).

    Non-negative least squares on relative error gives a start; then least squares on
    log-time with a robust (soft-L1) loss, constants kept positive through ``exp``, so a few
    problems disturbed by other load on the machine do not drag the fit.
    """
    from scipy.optimize import least_squares, nnls

    sel = [r for r in rows if r["alg"] == name]
    if name in ("direct", "xla_padded"):  # 1x1: a plain GEMM in XLA; auto keeps direct by rule
        sel = [r for r in sel if r["k"][0] * r["k"][1] > 1]
    terms = [select.cost_terms(name, r["x"], r["k"], np.float32, _config(r)) for r in sel]
    keys = list(terms[0])
    a = np.array([[t[k] for k in keys] for t in terms], float)
    y = np.array([r["t"] for r in sel], float)
    # DESIGN.md's benchmark cases count double: they are what auto's targets are measured on.
    bench = {(tuple(x), tuple(k)) for ps in BENCH_CASES.values() for x, k in ps}
    wt = np.array([2.0 if (tuple(r["x"]), tuple(r["k"])) in bench and not any(map(any, _config(r).padding))
                   else 1.0 for r in sel])
    scale = a.max(axis=0)
    scale[scale == 0] = 1.0
    an = a / scale
    coef, _ = nnls(an * (wt / y)[:, None], wt)
    used = an.max(axis=0) > 0
    start = np.where(coef > 0, coef, 1e-3 * np.median(y))
    res = least_squares(
        lambda th: wt * (np.log(an[:, used] @ np.exp(th) + 1e-12) - np.log(y)),
        np.log(start[used]), loss="soft_l1", f_scale=0.3,
    )
    coef = np.zeros(len(keys))
    coef[used] = np.exp(res.x)
    coef = coef / scale
    rel = a @ coef / y - 1.0
    return dict(zip(keys, coef, strict=True)), rel


def _median_interleaved(fns: dict, rounds: int, budget_s: float) -> dict:
    """Median seconds of each zero-argument fn, timed round-robin so load drift hits all alike."""
    times = {name: [] for name in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            if r > 0 and times[name] and times[name][0] > budget_s:
                continue  # too slow to repeat: its first time stands
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def table_main(cases, rounds: int, budget_s: float, grad: bool) -> None:
    """Print a markdown table: median ms of every algorithm, auto and torch, side by side."""
    try:
        import torch

    except ImportError:
        torch = None
    names = list(_registry.names())
    mode = "gradient w.r.t. x and kernel" if grad else "forward"
    print(f"# {mode}, float32, VALID, stride 1; median ms of {rounds} interleaved rounds; "
          f"{jax.default_backend()} ({jax.devices()[0].device_kind}), jax {jax.__version__}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ""))
    compile_ms = {}
    for case in cases:
        cols = [*names, "auto", "torch"]
        print(f"\n{case}:\n")
        print("| k | " + " | ".join(cols) + " | auto picks | direct/auto | torch/auto |")
        print("|---" * (len(cols) + 4) + "|")
        speedups, vs_torch = [], []
        for xs, ks in BENCH_CASES[case]:
            rng = np.random.default_rng(0)
            x = jax.numpy.asarray(rng.standard_normal(xs), np.float32)
            k = jax.numpy.asarray(rng.standard_normal(ks), np.float32)
            pick = jaxconv.select_algorithm(xs, ks).algorithm
            fns = {}
            for name in [*names, "auto"]:
                if name != "auto" and _registry.get(name).unsupported_reason(
                        xs, ks, np.float32, ConvConfig()) is not None:
                    continue

                def conv(a, b, name=name):
                    return jaxconv.conv2d(a, b, algorithm=name)

                if grad:
                    g = jax.numpy.asarray(rng.standard_normal((1,)), np.float32)
                    f = jax.jit(jax.grad(lambda a, b, conv=conv, g=g: jax.numpy.sum(conv(a, b)) * g[0],
                                         argnums=(0, 1)))
                else:
                    f = jax.jit(conv)
                t0 = time.perf_counter()
                compiled = f.lower(x, k).compile()
                compile_ms.setdefault(name, []).append((time.perf_counter() - t0) * 1e3)
                jax.block_until_ready(compiled(x, k))
                fns[name] = lambda c=compiled, x=x, k=k: jax.block_until_ready(c(x, k))
            if torch is not None:
                xt = torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())
                kt = torch.from_numpy(np.asarray(k).transpose(3, 2, 0, 1).copy())
                if grad:
                    xt.requires_grad_(True)
                    kt.requires_grad_(True)

                    def tfn(xt=xt, kt=kt):
                        xt.grad = kt.grad = None
                        torch.nn.functional.conv2d(xt, kt).sum().backward()
                else:
                    def tfn(xt=xt, kt=kt):
                        with torch.no_grad():
                            torch.nn.functional.conv2d(xt, kt)
                tfn()
                fns["torch"] = tfn
            t = _median_interleaved(fns, rounds, budget_s)
            cells = [f"{t[c] * 1e3:.2f}" if c in t else "-" for c in cols]
            speedups.append(t["direct"] / t["auto"])
            if "torch" in t:
                vs_torch.append(t["torch"] / t["auto"])
            print(f"| {ks[0]} | " + " | ".join(cells) + f" | {pick} | {speedups[-1]:.2f} | "
                  + (f"{vs_torch[-1]:.2f} |" if "torch" in t else "- |"), flush=True)
        gm = math.exp(np.mean(np.log(speedups)))
        line = f"\n{case}: geometric-mean direct/auto {gm:.2f}x (worst {min(speedups):.2f}x)"
        if vs_torch:
            line += (f", torch/auto {math.exp(np.mean(np.log(vs_torch))):.2f} "
                     f"(worst {min(vs_torch):.2f})")
        print(line)
    print("\ncompile ms (median over the cases): " + ", ".join(
        f"{n} {np.median(v):.0f}" for n, v in compile_ms.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=1.5,
                        help="a problem whose first run takes longer is timed once (seconds)")
    parser.add_argument("--algorithms", nargs="*", help="default: every registered algorithm")
    parser.add_argument("--padded", nargs="*", default=["direct"],
                        help="algorithms also timed on each problem's SAME variant")
    parser.add_argument("--save", help="write the raw timings to this JSON file")
    parser.add_argument("--load", nargs="+", help="refit from timings saved with --save")
    parser.add_argument("--table", action="store_true",
                        help="instead of fitting, time direct, every algorithm, auto and torch")
    parser.add_argument("--grad", action="store_true", help="with --table: time the gradient")
    parser.add_argument("--cases", nargs="*", default=["article", "layer"], choices=list(BENCH_CASES))
    parser.add_argument("--rounds", type=int, default=5, help="with --table: timed rounds")
    args = parser.parse_args(argv)

    if args.table:
        table_main(args.cases, args.rounds, args.budget, args.grad)
        return 0

    if args.load:
        rows = []
        for path in args.load:
            with open(path) as f:
                rows += json.load(f)["rows"]
    else:
        names = args.algorithms or list(_registry.names())
        rows = measure(names, grid(), args.repeats, args.budget, tuple(args.padded))
        if args.save:
            with open(args.save, "w") as f:
                json.dump({"jax": jax.__version__, "backend": jax.default_backend(),
                           "device_kind": jax.devices()[0].device_kind, "rows": rows}, f, indent=1)

    backend = jax.default_backend()
    table = {}
    print(f"# fitted {time.strftime('%Y-%m-%d')} on {backend} "
          f"({jax.devices()[0].device_kind}), jax {jax.__version__}")
    for name in dict.fromkeys(r["alg"] for r in rows):
        if name not in select.TERMS:
            print(f"# {name}: measured but has no cost terms in select.TERMS; not fitted")
            continue
        consts, rel = fit(rows, name)
        table[name] = consts
        ratio = np.abs(np.log1p(rel))
        print(f"# {name}: {len(rel)} problems; estimate/measured within a factor "
              f"{np.exp(np.median(ratio)):.2f} (median), {np.exp(np.max(ratio)):.1f} (worst)")
    print(f'    "{backend}": {{')
    for name, consts in table.items():
        body = ", ".join(f'"{k}": {v:.3g}' for k, v in consts.items())
        print(f'        "{name}": {{{body}}},')
    print("    },")

    # What the new constants would choose on the benchmark cases, against the measured best.
    old = select.COST_CONSTANTS.get(backend)
    select.COST_CONSTANTS[backend] = table
    select._model_choice.cache_clear()
    try:
        print("\n# choices on the benchmark cases (measured ms; * = auto's pick)")
        by_problem = {}
        for r in rows:
            if any(map(any, _config(r).padding)):
                continue
            by_problem.setdefault((tuple(r["x"]), tuple(r["k"])), {})[r["alg"]] = r["t"]
        for case, problems in BENCH_CASES.items():
            ratios = []
            for xs, ks in problems:
                meas = by_problem.get((xs, ks))
                if not meas or "direct" not in meas:
                    continue
                pick = select.select(xs, ks, np.float32, ConvConfig(), backend, use_cache=False)
                t_pick = meas.get(pick.algorithm, math.nan)
                ratios.append(meas["direct"] / t_pick)
                cells = " ".join(f"{a}{'*' if a == pick.algorithm else ''} {t * 1e3:.2f}"
                                 for a, t in sorted(meas.items()))
                print(f"# {case} k={ks[0]}: {cells}  (auto/best {t_pick / min(meas.values()):.2f})")
            if ratios:
                gm = math.exp(np.mean(np.log(ratios)))
                print(f"# {case}: geometric-mean speed-up of auto over direct {gm:.2f}x, "
                      f"worst {min(ratios):.2f}x")
    finally:
        if old is not None:
            select.COST_CONSTANTS[backend] = old
        select._model_choice.cache_clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
