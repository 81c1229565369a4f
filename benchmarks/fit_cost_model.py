"""Re-measure the constants of ``algorithm="auto"``'s cost model on this machine and store them.

Times every registered algorithm that has cost terms (``Algorithm.cost_terms``) over a grid of
float32 problems: the benchmark cases (``jaxconv.conv.cases``: article, layer, lenet, cnn), a
deterministic spread of batch sizes, image sizes, channel counts and kernel sizes, and SAME,
strided, grouped and dilated variants. It fits each algorithm's constants (seconds per unit of
each of its cost terms) by least squares on log-time, and writes them, with the machine, the
date, the grid, the method and the fit quality, to ``jaxconv/conv/cost_model.json`` (the record
of this backend is replaced, other backends are kept), atomically. It then prints the choices
the new constants make on the benchmark cases against the measured best.

    python benchmarks/fit_cost_model.py                       # measure, fit, write (~15-20 min)
    python benchmarks/fit_cost_model.py --dry-run             # ... print the record, write nothing
    python benchmarks/fit_cost_model.py --out /tmp/cm.json    # ... write elsewhere
    python benchmarks/fit_cost_model.py --quick --out /tmp/cm.json   # toy grid: end to end in ~1 min
    python benchmarks/fit_cost_model.py --save fit.json       # also keep the raw timings
    python benchmarks/fit_cost_model.py --load fit.json       # refit without measuring
    python benchmarks/fit_cost_model.py --mode train          # forward + backward (train_constants)
    python benchmarks/fit_cost_model.py --table               # auto vs each algorithm vs torch
    python benchmarks/fit_cost_model.py --table --grad        # the same for the gradient

The constants are fitted on every problem of the grid (``direct`` has separate terms for
padded and for strided or dilated problems, which XLA:CPU runs through other code paths).
Compile time is excluded
from the timings; the algorithms of a problem are timed round-robin for ``--repeats`` rounds
after a warm-up run and the minimum is fitted (load from other processes only ever adds time).
On a shared machine, run it when it is quiet.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

import jaxconv  # registers every algorithm
from jaxconv.conv import _registry, cache, cost_model, select, tuning
from jaxconv.conv._registry import ConvConfig
from jaxconv.conv.cases import CASES, Problem

DEFAULT_OUT = Path(cost_model.__file__).resolve().with_name(cost_model.DATA_FILE)
# The spread around the benchmark cases: (N, H = W, (C, O)), three kernel sizes each.
SPREAD = [
    (1, 128, (3, 8)), (1, 256, (1, 1)), (4, 64, (3, 16)), (2, 96, (16, 16)), (16, 32, (32, 32)),
    (4, 32, (64, 64)), (1, 64, (64, 64)), (8, 28, (1, 8)), (32, 16, (8, 8)), (2, 160, (8, 4)),
    (4, 48, (24, 24)), (1, 200, (3, 3)),
]
# Larger activations (whose working sets leave the cache) and few-channel stems: SAME-padded
# layers, none of them one of ``compare.py``'s untuned layers.
LARGE = [
    Problem("3x3 96 large", (4, 48, 48, 96), (3, 3, 96, 96), padding="SAME"),
    Problem("3x3 64 large", (8, 40, 40, 64), (3, 3, 64, 64), padding="SAME"),
    Problem("3x3 64→128 large", (16, 28, 28, 64), (3, 3, 64, 128), padding="SAME"),
    Problem("3x3 32 large", (4, 96, 96, 32), (3, 3, 32, 32), padding="SAME"),
    Problem("3x3 3→32 large", (4, 96, 96, 3), (3, 3, 3, 32), padding="SAME"),
    Problem("3x3 3→64 large", (8, 64, 64, 3), (3, 3, 3, 64), padding="SAME"),
    Problem("stem 7x7/2 48", (4, 160, 160, 3), (7, 7, 3, 48), stride=2, padding=3),
    Problem("5x5 48 large", (4, 64, 64, 48), (5, 5, 48, 48), padding="SAME"),
]
# Deep layers: small images with many channels, where a kernel (up to 9 MiB here) or its
# transform weighs as much as the activations; none of them one of ``compare.py``'s untuned layers.
DEEP = [
    Problem("3x3 384 deep", (2, 10, 10, 384), (3, 3, 384, 384), padding="SAME"),
    Problem("3x3 160 deep", (8, 12, 12, 160), (3, 3, 160, 160), padding="SAME"),
    Problem("3x3 256→192 deep", (16, 6, 6, 256), (3, 3, 256, 192), padding="SAME"),
    Problem("3x3 320 deep", (1, 20, 20, 320), (3, 3, 320, 320), padding="SAME"),
    Problem("3x3 96→192 deep", (4, 24, 24, 96), (3, 3, 96, 192), padding="SAME"),
    Problem("3x3 640→512 deep", (2, 9, 9, 640), (3, 3, 640, 512)),
    Problem("5x5 192 deep", (4, 12, 12, 192), (5, 5, 192, 192), padding="SAME"),
    Problem("1x1 512→256 deep", (4, 14, 14, 512), (1, 1, 512, 256)),
]
# Layers that get grouped, strided and dilated variants (3x3 kernels).
VARIANT_BASES = [(2, 96, 16), (16, 32, 32), (4, 32, 64), (4, 48, 24)]
METHOD = ("non-negative least squares on relative error as a start, then least squares on "
          "log-time with a soft-L1 loss (f_scale 0.3), constants kept non-negative; the "
          "benchmark cases weigh double; fitted on the stride-1, dilation-1 problems; direct "
          "and xla_padded without 1x1 kernels (a single GEMM in XLA, kept direct by rule)")


@dataclasses.dataclass(frozen=True)
class GridPoint:
    """A problem of the grid; ``case`` names its benchmark case, ``only`` limits the algorithms."""

    problem: Problem
    case: str | None = None
    only: tuple[str, ...] | None = None


def _variants(n: int, hw: int, c: int) -> list[Problem]:
    x = (n, hw, hw, c)
    return [
        Problem(f"dw3x3 {c}", x, (3, 3, 1, c), padding="SAME", groups=c),
        Problem(f"3x3 g4 {c}", x, (3, 3, c // 4, c), padding="SAME", groups=4),
        Problem(f"3x3/2 {c}", x, (3, 3, c, 2 * c), stride=2, padding="SAME"),
        Problem(f"3x3 d2 {c}", x, (3, 3, c, c), padding="SAME", dilation=2),
    ]


def grid(quick: bool = False, padded: tuple[str, ...] = ("direct",),
         spread: bool = True) -> list[GridPoint]:
    """The problems to time: the benchmark cases, a spread of others, and their variants.

    ``quick``: the cases' tiny problems and a few small variants (an end-to-end check, not a
    fit worth keeping). ``padded``: algorithms also timed on the SAME variant of each VALID
    problem (XLA:CPU's direct convolution takes another path with zero padding). ``spread``:
    include the spread of other sizes (without it, the cases and their variants only).
    """
    if quick:
        out = [GridPoint(p, name) for name, case in CASES.items() for p in case.tiny
               if p.spatial == 2]
        out += [GridPoint(p) for p in _variants(2, 12, 8)]
    else:
        # the model is fitted on 2-D convolutions (1-D and 3-D choices are rules in select.py)
        out = [GridPoint(p, name) for name, case in CASES.items() for p in case.problems
               if p.spatial == 2]
        rng = np.random.default_rng(1)
        for n, hw, (c, o) in SPREAD if spread else ():
            for k in rng.choice([1, 2, 3, 5, 7, 9, 13], size=3, replace=False):
                if k < hw:
                    out.append(GridPoint(Problem(f"{k}", (n, hw, hw, c), (int(k), int(k), c, o))))
        out += [GridPoint(p) for base in VARIANT_BASES for p in _variants(*base)]
        out += [GridPoint(p) for p in [*LARGE, *DEEP]] if spread else []
    if padded:
        out += [GridPoint(dataclasses.replace(g.problem, label=f"{g.problem.label} SAME",
                                              padding="SAME"), None, tuple(padded))
                for g in list(out) if g.problem.valid and g.problem.k > 1]
    return out


def canonical(problem: Problem) -> tuple[tuple[int, ...], tuple[int, ...], ConvConfig]:
    """``(x_shape, kernel_shape, config)`` as the algorithms see them (explicit zero padding)."""
    canon = problem.canonical()
    return canon.x_shape, canon.kernel_shape, canon.config


def modelled() -> list[str]:
    """The registered algorithms that have cost terms."""
    return [a.name for a in _registry.algorithms() if a.cost_terms is not None]


def time_problem(names, x_shape, kernel_shape, config: ConvConfig, repeats: int, budget_s: float,
                 mode: str = "forward"):
    """{name: (compile s, min s, median s)} of each algorithm that serves the problem.

    The algorithms are timed round-robin (one run of each per round, in a fresh order each
    round), so load from other processes and their neighbours hit them alike; the *minimum*
    over rounds is what the fit uses (other load only ever adds time), the median is kept for
    reference.
    """
    rng = np.random.default_rng(0)
    x = jax.numpy.asarray(rng.standard_normal(x_shape), np.float32)
    k = jax.numpy.asarray(rng.standard_normal(kernel_shape), np.float32)
    compiled, compile_s, times = {}, {}, {}
    for name in names:
        alg = _registry.get(name)
        if alg.unsupported_reason(x_shape, kernel_shape, np.float32, config) is not None:
            continue
        f = tuning.timed_function(name, config, mode)
        t0 = time.perf_counter()
        compiled[name] = f.lower(x, k).compile()
        compile_s[name] = time.perf_counter() - t0
        jax.block_until_ready(compiled[name](x, k))  # warm-up
        times[name] = []
    order = np.random.default_rng(1)
    for r in range(repeats):
        # a fresh order each round: a call right after a memory-hungry one (fft, dft) runs up
        # to 1.8x slower, and a fixed order would charge that to the same algorithm each time
        for name in order.permutation(list(compiled)):
            c = compiled[name]
            if r > 0 and times[name][0] > budget_s:
                continue  # too slow to repeat: its first time stands
            t0 = time.perf_counter()
            jax.block_until_ready(c(x, k))
            times[name].append(time.perf_counter() - t0)
    return {n: (compile_s[n], float(np.min(t)), float(np.median(t))) for n, t in times.items()}


def _config_dict(config: ConvConfig) -> dict[str, Any]:
    return {"stride": list(config.stride), "padding": [list(p) for p in config.padding],
            "dilation": list(config.dilation), "groups": config.groups}


def _config(row: dict) -> ConvConfig:
    return ConvConfig(stride=tuple(row["stride"]), padding=tuple(tuple(p) for p in row["padding"]),
                      dilation=tuple(row["dilation"]), groups=row["groups"])


def measure(names, points: list[GridPoint], repeats: int, budget_s: float,
            mode: str = "forward") -> list[dict]:
    """Time ``names`` (or a point's ``only``) on every grid point; one row per algorithm."""
    rows = []
    for i, g in enumerate(points):
        xs, ks, config = canonical(g.problem)
        algs = [n for n in names if g.only is None or n in g.only]
        line = [f"[{i + 1}/{len(points)}] {g.case or 'grid'} {g.problem.label}: x {xs} k {ks}:"]
        for name, (c, tmin, tmed) in time_problem(algs, xs, ks, config, repeats, budget_s,
                                                  mode).items():
            rows.append({"alg": name, "case": g.case, "label": g.problem.label, "x": list(xs),
                         "k": list(ks), **_config_dict(config), "compile_s": c, "t": tmin,
                         "t_median": tmed})
            line.append(f"{name} {tmin * 1e3:.2f} ms")
        print(" ".join(line), file=sys.stderr, flush=True)
    return rows


def _terms(name: str, row: dict) -> dict[str, float]:
    return cost_model.cost_terms(name, row["x"], row["k"], _config(row))


def _fit_rows(rows: list[dict], name: str) -> list[dict]:
    sel = [r for r in rows if r["alg"] == name]
    if name in ("direct", "xla_padded"):  # 1x1: a plain GEMM in XLA; auto keeps direct by rule
        sel = [r for r in sel if r["k"][0] * r["k"][1] > 1]
    return sel


def fit(rows: list[dict], name: str) -> tuple[dict[str, float], np.ndarray]:
    """Fit one algorithm's constants; returns (constants, estimate / measurement per fitted row).

    Non-negative least squares on relative error gives a start; then least squares on
    log-time with a robust (soft-L1) loss, constants kept positive through ``exp``, so a few
    problems disturbed by other load on the machine do not drag the fit.
    """
    from scipy.optimize import least_squares, nnls

    sel = _fit_rows(rows, name)
    terms = [_terms(name, r) for r in sel]
    keys = list(dict.fromkeys(k for t in terms for k in t))
    a = np.array([[t.get(k, 0.0) for k in keys] for t in terms], float)
    y = np.array([r["t"] for r in sel], float)
    # The benchmark cases count double: they are what auto's targets are measured on.
    wt = np.array([2.0 if r.get("case") else 1.0 for r in sel])
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
    # a term the fit drove to nothing (under a millionth of every time) is stored as 0
    coef[np.max(an * coef / y[:, None], axis=0, initial=0.0) < 1e-6] = 0.0
    coef = coef / scale
    consts = {k: float(f"{v:.3g}") for k, v in zip(keys, coef, strict=True)}
    return consts, np.array([estimate(consts, name, r) / r["t"] for r in sel])


def estimate(consts: dict[str, float], name: str, row: dict) -> float:
    return sum(consts.get(t, 0.0) * v for t, v in _terms(name, row).items())


def _factor(ratios) -> float:
    """Median factor between estimate and measurement: ``exp(median |log(est / meas)|)``."""
    return float(np.exp(np.median(np.abs(np.log(ratios)))))


def cpu_description() -> str:
    """CPU model and core count, from ``/proc/cpuinfo`` where there is one."""
    model = None
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    model = model or platform.processor() or platform.machine()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    text = f"{model}, {os.cpu_count()} cores ({usable} usable), {platform.system()} {platform.machine()}"
    with contextlib.suppress(OSError, AttributeError):
        text += f"; load average {os.getloadavg()[0]:.1f} when the measurement started"
    return text


def describe_grid(rows: list[dict], repeats: int, quick: bool = False) -> str:
    problems = {(tuple(r["x"]), tuple(r["k"]), json.dumps(_config_dict(_config(r)))): r
                for r in rows}.values()
    cases = sorted({r["case"] for r in problems if r.get("case")}, key=list(CASES).index)
    padded_only = sorted({r["alg"] for r in rows if r["label"].endswith(" SAME")})
    return (
        f"{len(problems)} float32 problems: "
        + (f"--quick, a check only: the tiny problems of the benchmark cases {', '.join(cases)} "
           "and SAME, grouped, strided and dilated 3x3 variants of a 2x12x12x8 image" if quick else
           f"the benchmark cases {', '.join(cases)} (counted double), a spread of N, H = W, C, O "
           "and k, larger SAME layers, few-channel stems and deep layers (small images, many "
           "channels), and SAME, grouped (depthwise, "
           "4 groups), strided and dilated 3x3 variants")
        + (f"; {', '.join(padded_only)} also on each VALID problem's SAME variant" if padded_only else "")
        + f"; algorithms round-robin per problem, minimum of {repeats} rounds"
    )


def fit_record(rows: list[dict], names: list[str], repeats: int, machine: str,
               measured_at: str, old: dict | None, quick: bool = False) -> dict[str, Any]:
    """The ``fits[backend]`` record of ``cost_model.json`` for these timings."""
    constants, quality, worst, off = {}, {}, {}, {}
    for name in names:
        if len(_fit_rows(rows, name)) < 2:
            print(f"# {name}: fewer than 2 problems to fit; not fitted", file=sys.stderr)
            continue
        consts, ratios = fit(rows, name)
        constants[name], quality[name] = consts, round(_factor(ratios), 2)
        worst[name] = float(np.exp(np.max(np.abs(np.log(ratios)))))
        odd = [r for r in _fit_rows(rows, name)
               if set(r["stride"]) != {1} or set(r["dilation"]) != {1}]
        if odd:
            off[name] = float(np.median([estimate(consts, name, r) / r["t"] for r in odd]))
        print(f"# {name}: {len(ratios)} problems; estimate/measured within a factor "
              f"{quality[name]:.2f} (median), {worst[name]:.1f} (worst)", file=sys.stderr)
    note = ("median factor between estimate and measurement, max(est/meas, meas/est), over the "
            "fitted problems; the worst: " + ", ".join(f"{n} {w:.1f}x" for n, w in worst.items()))
    if off:
        note += ("; on the strided and dilated problems the median estimate / measurement is "
                 + ", ".join(f"{n} {v:.2g}" for n, v in off.items()))
    kept = {n: c for n, c in ((old or {}).get("constants") or {}).items() if n not in constants}
    if kept:
        note += (f"; {', '.join(kept)}: not measured in this run, constants kept from the fit of "
                 f"{old.get('measured_at', '?')}")
    return {
        "measured_at": measured_at,
        "machine": machine,
        "jax": jax.__version__,
        "grid": describe_grid(rows, repeats, quick),
        "method": METHOD,
        "quality": {**{n: q for n, q in (old or {}).get("quality", {}).items() if n in kept}, **quality},
        "quality_note": note,
        "constants": {**kept, **constants},
    }


def read_model(path: Path) -> dict[str, Any]:
    """The cost-model file at ``path`` (checked), or a new one when there is none."""
    if not path.is_file():
        return {"schema": cost_model.SCHEMA, "version": cost_model.VERSION,
                "description": "Seconds per unit of each algorithm's cost terms "
                "(Algorithm.cost_terms), per backend. Written by benchmarks/fit_cost_model.py.",
                "fits": {}}
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("schema") != cost_model.SCHEMA or data.get("version") != cost_model.VERSION:
        raise SystemExit(f"fit_cost_model: {path} is not a {cost_model.SCHEMA} version "
                         f"{cost_model.VERSION} file")
    return data


def write_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cache.write_json_atomic(path, data)


@contextlib.contextmanager
def model_with(backend: str, record: dict[str, Any]):
    """The selector, in this process, with ``record`` as the fit of ``backend`` (uncalibrated)."""
    saved = {name: getattr(cost_model, name) for name in ("fits", "calibration")
             if hasattr(cost_model, name)}
    new_fits = {**cost_model.fits(), backend: record}
    cost_model.fits = lambda: new_fits
    if "calibration" in saved:  # jaxconv.calibrate()'s factors belong to the old constants
        cost_model.calibration = lambda backend: {}
    select._model_choice.cache_clear()  # the selector's memo of estimates
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(cost_model, name, value)
        select._model_choice.cache_clear()


def print_choices(rows: list[dict], backend: str, record: dict[str, Any]) -> None:
    """What the new constants choose on the benchmark cases, against the measured best."""
    print("\n# choices on the benchmark cases (measured ms; * = auto's pick)")
    by_problem: dict[tuple, dict[str, float]] = {}
    for r in rows:
        if r.get("case"):
            key = (r["case"], r["label"], tuple(r["x"]), tuple(r["k"]))
            by_problem.setdefault(key, {})[r["alg"]] = r["t"]
    with model_with(backend, record):
        for case, problems in CASES.items():
            ratios = []
            for p in problems.problems + problems.tiny:
                if p.spatial != 2:
                    continue
                xs, ks, config = canonical(p)
                meas = by_problem.get((case, p.label, xs, ks))
                if not meas or "direct" not in meas:
                    continue
                pick = select.select(xs, ks, np.float32, config, backend, use_cache=False)
                t_pick = meas.get(pick.algorithm, math.nan)
                ratios.append(meas["direct"] / t_pick)
                cells = " ".join(f"{a}{'*' if a == pick.algorithm else ''} {t * 1e3:.2f}"
                                 for a, t in sorted(meas.items()))
                print(f"# {case} {p.label}: {cells}  (auto/best {t_pick / min(meas.values()):.2f})")
            if ratios:
                gm = math.exp(np.mean(np.log(ratios)))
                print(f"# {case}: geometric-mean speed-up of auto over direct {gm:.2f}x, "
                      f"worst {min(ratios):.2f}x")


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
        import torch.nn.functional as F
    except ImportError:
        torch = None
    names = list(_registry.names())
    mode = "gradient w.r.t. x and kernel" if grad else "forward"
    print(f"# {mode}, float32; median ms of {rounds} interleaved rounds; "
          f"{jax.default_backend()} ({jax.devices()[0].device_kind}), jax {jax.__version__}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ""))
    compile_ms = {}
    for case in cases:
        cols = [*names, "auto", "torch"]
        print(f"\n{case} ({CASES[case].title}):\n")
        print("| problem | " + " | ".join(cols) + " | auto picks | direct/auto | torch/auto |")
        print("|---" * (len(cols) + 4) + "|")
        speedups, vs_torch = [], []
        for p in CASES[case].problems:
            if p.spatial != 2:
                continue
            xs, ks, config = canonical(p)
            kwargs = p.conv_kwargs()
            rng = np.random.default_rng(0)
            x = jax.numpy.asarray(rng.standard_normal(xs), np.float32)
            k = jax.numpy.asarray(rng.standard_normal(ks), np.float32)
            pick = jaxconv.select_algorithm(xs, ks, **kwargs).algorithm
            fns = {}
            for name in [*names, "auto"]:
                if name != "auto" and _registry.get(name).unsupported_reason(
                        xs, ks, np.float32, config) is not None:
                    continue

                def conv(a, b, name=name, kwargs=kwargs):
                    return jaxconv.conv2d(a, b, algorithm=name, **kwargs)

                if grad:
                    f = jax.jit(jax.grad(lambda a, b, conv=conv: tuning.timing_loss(conv(a, b)),
                                         argnums=(0, 1)))
                else:
                    f = jax.jit(conv)
                t0 = time.perf_counter()
                compiled = f.lower(x, k).compile()
                compile_ms.setdefault(name, []).append((time.perf_counter() - t0) * 1e3)
                jax.block_until_ready(compiled(x, k))
                fns[name] = lambda c=compiled, x=x, k=k: jax.block_until_ready(c(x, k))
            if torch is not None:
                (top, bottom), (left, right) = config.padding
                xt = torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())  # NCHW
                kt = torch.from_numpy(np.asarray(k).transpose(3, 2, 0, 1).copy())  # HWIO -> OIHW

                def tconv(a, w, config=config, pad=(left, right, top, bottom)):
                    return F.conv2d(F.pad(a, pad), w, stride=config.stride,
                                    dilation=config.dilation, groups=config.groups)

                if grad:
                    xt.requires_grad_(True)
                    kt.requires_grad_(True)

                    def tfn(xt=xt, kt=kt, tconv=tconv):
                        xt.grad = kt.grad = None
                        tuning.timing_loss(tconv(xt, kt)).backward()
                else:
                    def tfn(xt=xt, kt=kt, tconv=tconv):
                        with torch.no_grad():
                            tconv(xt, kt)
                tfn()
                fns["torch"] = tfn
            t = _median_interleaved(fns, rounds, budget_s)
            cells = [f"{t[c] * 1e3:.2f}" if c in t else "-" for c in cols]
            speedups.append(t["direct"] / t["auto"])
            if "torch" in t:
                vs_torch.append(t["torch"] / t["auto"])
            print(f"| {p.label} | " + " | ".join(cells) + f" | {pick} | {speedups[-1]:.2f} | "
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
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="the cost-model JSON to update (default: the package's "
                        "jaxconv/conv/cost_model.json)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the new fit record instead of writing it")
    parser.add_argument("--quick", action="store_true",
                        help="a toy grid (the cases' tiny problems and a few variants) and 2 "
                        "rounds: checks the script end to end in about a minute; not a fit to keep")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5; 2 with --quick)")
    parser.add_argument("--budget", type=float, default=1.5,
                        help="a problem whose first run takes longer is timed once (seconds)")
    parser.add_argument("--algorithms", nargs="*",
                        help="default: every registered algorithm with cost terms (others keep "
                        "their constants)")
    parser.add_argument("--padded", nargs="*", default=["direct"],
                        help="algorithms also timed on each VALID problem's SAME variant")
    parser.add_argument("--save", help="also write the raw timings to this JSON file")
    parser.add_argument("--load", nargs="+", help="refit from timings saved with --save")
    parser.add_argument("--table", action="store_true",
                        help="instead of fitting, time direct, every algorithm, auto and torch")
    parser.add_argument("--grad", action="store_true", help="with --table: time the gradient")
    parser.add_argument("--no-spread", action="store_true",
                        help="the benchmark cases and their variants only (a shorter fit)")
    parser.add_argument("--mode", choices=("forward", "train"), default="forward",
                        help="fit the forward pass (constants) or forward + backward "
                             "(train_constants, what auto uses for a differentiated conv)")
    parser.add_argument("--cases", nargs="*", default=["article", "layer"], choices=list(CASES),
                        help="with --table: the benchmark cases")
    parser.add_argument("--rounds", type=int, default=5, help="with --table: timed rounds")
    args = parser.parse_args(argv)

    if args.table:
        table_main(args.cases, args.rounds, args.budget, args.grad)
        return 0

    backend = cost_model.canonical_backend(jax.default_backend())
    names = args.algorithms or modelled()
    unknown = [n for n in names if n not in modelled()]
    if unknown:
        parser.error(f"--algorithms: {unknown} are not registered or have no cost terms; "
                     f"choose from {modelled()}")
    if args.load:
        rows, saved = [], {}
        for path in args.load:
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
            rows += saved["rows"]
        repeats = saved.get("repeats", args.repeats or 5)
        quick = saved.get("quick", False)
        machine = saved.get("machine", cpu_description())
        measured_at = saved.get("measured_at", "?")
        names = [n for n in names if any(r["alg"] == n for r in rows)]
    else:
        repeats = args.repeats or (2 if args.quick else 5)
        quick = args.quick
        machine = cpu_description()
        measured_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows = measure(names, grid(args.quick, tuple(args.padded), not args.no_spread), repeats,
                       args.budget, args.mode)
        if args.save:
            write_atomic(Path(args.save), {
                "jax": jax.__version__, "backend": backend, "machine": machine,
                "device_kind": jax.devices()[0].device_kind, "measured_at": measured_at,
                "repeats": repeats, "quick": quick, "rows": rows})

    model = read_model(args.out if args.out.is_file() else DEFAULT_OUT)
    previous = model["fits"].get(backend)
    if args.mode == "train" and previous:  # the algorithms not refitted keep their train fit
        previous = {"constants": previous.get("train_constants", {}),
                    "quality": previous.get("train_quality", {}),
                    "measured_at": previous.get("train_measured_at", "?")}
    record = fit_record(rows, names, repeats, machine, measured_at, previous, quick)
    if args.mode == "train":  # forward + backward: beside the forward fit, in its record
        forward = model["fits"].get(backend)
        if forward is None:
            raise SystemExit(f"fit_cost_model: --mode train needs a forward fit for {backend} "
                             f"in {args.out} first")
        record = {**forward, "train_constants": record["constants"],
                  "train_quality": record["quality"], "train_measured_at": record["measured_at"],
                  "train_grid": record["grid"], "train_quality_note": record["quality_note"]}
    else:  # a forward refit keeps the forward + backward fit of the same record
        old = model["fits"].get(backend) or {}
        record = {**record, **{k: v for k, v in old.items() if k.startswith("train_")}}
    if args.dry_run:
        print(json.dumps({backend: record}, indent=1, ensure_ascii=False))
    else:
        model["fits"][backend] = record
        write_atomic(args.out, model)
        print(f"wrote the {backend} {args.mode} fit to {args.out}")
    if args.mode == "forward":
        print_choices(rows, backend, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
