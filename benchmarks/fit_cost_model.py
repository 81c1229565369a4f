"""Fit the constants of ``algorithm="auto"``'s cost model from scratch, and write ``cost_model.json``.

The only writer of ``jaxconv/convolution/cost_model.json``. One command measures, fits and writes:

    python benchmarks/fit_cost_model.py                        # measure, fit, write (<= 30 min)
    python benchmarks/fit_cost_model.py --problems 12 --rounds 2 --out /tmp/cm.json   # a quick check
    python benchmarks/fit_cost_model.py --save raw.json        # also keep the raw timings
    python benchmarks/fit_cost_model.py --load raw.json        # refit without measuring
    python benchmarks/fit_cost_model.py --load a.json b.json --save ab.json   # merge two runs
    python benchmarks/fit_cost_model.py --algorithms new direct --save c.json --dry-run
        # a new or changed algorithm (and direct, beside it) only; then --load with the rest,
        # whose rows of that algorithm it replaces on the problems it timed

The timings behind the bundled ``cost_model.json`` are ``benchmarks/cost_model_timings.json``
(written by ``--save``): ``--load benchmarks/cost_model_timings.json`` refits them to the
bundled constants exactly (``tests/test_select.py`` checks it). Replace both together.

The grid: ``--problems`` draws of the "fit" split of ``jaxconv.convolution.cases.sample`` (seed
``--seed``; the held-out split is never drawn here), half as many again of the ``cnn`` family
(``EXTRA_DRAWS``: its layers vary most), plus the named benchmark problems
(``jaxconv.convolution.cases.CASES``). On each problem every applicable algorithm with cost terms is
compiled and timed forward and forward + backward (``tuning.timed_function``: the gradients of
``tuning.timing_loss``), in interleaved rounds in a fresh random order
(``tuning.interleaved_medians``; algorithms that compile to the same program are timed once and
share the timing); medians are fitted.

The fit: for each algorithm and mode, non-negative least squares on the *relative* error of the
estimate (``sum_t c_t a_t / measured - 1``), so a 0.1 ms problem weighs as much as a 100 ms one,
as regret does. The error is measured by 3-fold cross-validation over problems (fitted on two
thirds, estimated on the third; ``CV_REPEATS`` shuffles of the problems into folds) and recorded
per algorithm; the selector's ``hedge`` is the one that loses least when the selector picks from
those cross-validated estimates (geometric mean of picked over fastest time, over a grid of
hedges from 0.6 to 1, the named benchmark problems and the drawn ones weighing half each; in
training, as a differentiated ``auto`` runs: every algorithm but the forward pick with the
forward pick's forward beside it).
The record names the machine, date, jax version, grid and seed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import itertools
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import nnls

import jaxconv  # noqa: F401  (registers every algorithm)
from jaxconv import _io
from jaxconv.convolution import _registry, cases, cost_model, select, tuning
from jaxconv.convolution.cases import Problem

DEFAULT_OUT = Path(cost_model.__file__).resolve().with_name(cost_model.DATA_FILE)
FIT_SEED = 20261206
# Bytes an algorithm's largest buffer may take for it to be timed (a 41x41 im2col of a
# 480x640 image would build 6 GB of patches; its estimate still comes from the fit).
MAX_BUFFER_BYTES = 2e9
# A timing (per algorithm, problem and mode) stops after this many seconds of rounds.
BUDGET_S = 1.5


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


#: Extra fit-split draws of a family, as a share of ``--problems``, beside the round-robin over
#: all families. ``cnn`` draws its kernel shape (3x3, 5x5, 7x7, 1x7, 7x1, 3x1), stride and
#: dilation independently, and one draw in eight left the rectangular and dilated layers one or
#: two problems each: held-out draws found ``mec`` and ``im2col`` 1.2-1.6x slower there than
#: estimated.
EXTRA_DRAWS = {"cnn": 0.5}


def drawn_problems(n: int, seed: int) -> list[Problem]:
    """The sampled part of the grid: ``n`` fit-split draws over every family, then the
    :data:`EXTRA_DRAWS` (seeded ``seed + 1``, ``seed + 2``, ...; none twice)."""
    drawn = cases.sample(n, seed=seed, split="fit")
    seen = {(p.x_shape, p.kernel_shape, p.stride, p.padding, p.dilation, p.groups) for p in drawn}
    for i, (family, share) in enumerate(EXTRA_DRAWS.items(), start=1):
        for p in cases.sample(round(n * share), seed=seed + i, split="fit", families=(family,)):
            key = (p.x_shape, p.kernel_shape, p.stride, p.padding, p.dilation, p.groups)
            if key not in seen:
                seen.add(key)
                drawn.append(p)
    return drawn


def grid(n: int, seed: int) -> list[Problem]:
    """The problems to time: the drawn problems (:func:`drawn_problems`) and the named benchmark
    problems, interleaved (so a time budget that runs out leaves both kinds measured)."""
    named = [p for case in cases.CASES.values() for p in case.problems]
    drawn = drawn_problems(n, seed)
    step = max(1, len(drawn) // max(1, len(named)))
    out: list[Problem] = []
    for i in range(max(len(drawn), len(named) * step)):
        if i < len(drawn):
            out.append(drawn[i])
        if i % step == step - 1 and i // step < len(named):
            out.append(named[i // step])
    return out


def modelled() -> list[str]:
    return [a.name for a in _registry.algorithms() if a.cost_terms is not None]


def _too_big(name: str, canon) -> bool:
    terms = cost_model.cost_terms(name, canon.x_shape, canon.kernel_shape, canon.config)
    return any(v > MAX_BUFFER_BYTES for t, v in terms.items() if "byte" in t)


def measure(problems: list[Problem], rounds: int, budget_min: float,
            only: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows ``{problem, family, alg, mode, seconds}``, timed problem by problem (``only``: just
    those algorithms, where they serve)."""
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    for i, p in enumerate(problems):
        if time.perf_counter() - start > budget_min * 60:
            print(f"  budget of {budget_min} min spent: {len(problems) - i} problems left out",
                  flush=True)
            break
        canon = p.canonical()
        x = jnp.asarray(rng.standard_normal(canon.x_shape), jnp.float32)
        k = jnp.asarray(rng.standard_normal(canon.kernel_shape), jnp.float32)
        names = [a for a in _registry.applicable(canon.x_shape, canon.kernel_shape, jnp.float32,
                                                 canon.config)
                 if a in modelled() and not _too_big(a, canon) and (only is None or a in only)]
        if not names or (only is not None and set(names) <= {"direct"}):
            continue  # (with --algorithms, direct is timed only beside the others)
        line = []
        for mode in cost_model.MODES:
            programs = {}
            for name in names:
                try:
                    programs[name], _ = tuning.compile_timed(name, x, k, canon.config, mode)
                except Exception as e:
                    print(f"    {name} {mode}: {type(e).__name__}", flush=True)
                    continue
            fns = {name: functools.partial(c, x, k) for name, c in programs.items()}
            medians = tuning.interleaved_medians(fns, rounds, budget_s=BUDGET_S, seed=i,
                                                 programs=programs)
            for name, t in medians.items():
                rows.append({"problem": _problem_dict(p), "family": cases.family(p), "alg": name,
                             "mode": mode, "seconds": t})
            best = min(medians, key=medians.get) if medians else "-"
            line.append(f"{mode} best {best} {medians.get(best, math.nan) * 1e3:.2f} ms")
        print(f"  [{i + 1}/{len(problems)} {time.perf_counter() - start:.0f}s] {p.label}: "
              f"{'; '.join(line)}", flush=True)
    return rows


def _problem_dict(p: Problem) -> dict[str, Any]:
    return {"label": p.label, "x_shape": list(p.x_shape), "kernel_shape": list(p.kernel_shape),
            "stride": p.stride, "padding": p.padding, "dilation": p.dilation, "groups": p.groups}


def _problem(d: dict[str, Any]) -> Problem:
    padding = d["padding"]
    if isinstance(padding, list):
        padding = tuple(tuple(v) if isinstance(v, list) else v for v in padding)
    return Problem(d["label"], tuple(d["x_shape"]), tuple(d["kernel_shape"]), d["stride"],
                   padding, d["dilation"], d["groups"])


def _key(row: dict) -> str:
    return json.dumps(row["problem"], sort_keys=True)


@functools.cache
def _row_amounts(name: str, problem_key: str, mode: str) -> dict[str, float]:
    """The cost terms of a row's problem (its JSON key), counted once: the repeated
    cross-validation asks for each row's terms a few dozen times."""
    canon = _problem(json.loads(problem_key)).canonical()
    return cost_model.cost_terms(name, canon.x_shape, canon.kernel_shape, canon.config, mode)


def _solve(rows: list[dict], name: str, terms: list[str]) -> dict[str, float]:
    amounts = [_row_amounts(name, _key(r), r["mode"]) for r in rows]
    a = np.array([[amt.get(t, 0.0) / r["seconds"] for t in terms]
                  for amt, r in zip(amounts, rows, strict=True)])
    scale = np.maximum(a.max(axis=0), 1e-300)  # column scaling: terms span 1 to 1e12 units
    coef, _ = nnls(a / scale, np.ones(len(rows)), maxiter=50 * len(terms))
    return {t: float(c / s) for t, c, s in zip(terms, coef, scale, strict=True)}


#: Fold assignments the 3-fold cross-validation is repeated over: one assignment's regret
#: curve moved by +-0.015 (its best hedge from 0.75 to 0.875) from one shuffle of the problems
#: to the next; the mean of eight varies a few times less.
CV_REPEATS = 8


def folds(keys: list[str], repeat: int) -> dict[str, int]:
    """Problem -> fold (0, 1, 2) in fold assignment ``repeat``: a seeded shuffle, dealt round."""
    order = np.random.default_rng(repeat).permutation(len(keys))
    return {k: int(i) % 3 for k, i in zip(sorted(keys), order, strict=True)}


def fit(rows: list[dict]) -> tuple[dict, dict, dict]:
    """``(constants, hedge, error)``: per mode and algorithm, constants from all rows; the error
    factors (median of max(est/meas, meas/est)) and the hedge (:func:`choose_hedge`) from the
    estimates of 3-fold cross-validation over problems, repeated over :data:`CV_REPEATS` fold
    assignments."""
    constants: dict[str, dict[str, dict[str, float]]] = {m: {} for m in cost_model.MODES}
    error: dict[str, dict[str, float]] = {m: {} for m in cost_model.MODES}
    hedge: dict[str, float] = {}
    keys = sorted({_key(r) for r in rows})
    named = {_key(r): r["family"] not in cases.FAMILIES for r in rows}
    assignments = [folds(keys, i) for i in range(CV_REPEATS)]
    # per repeat and mode: problem -> algorithm -> (cross-validated estimate, measured time)
    held: list[dict[str, dict[str, dict[str, tuple[float, float]]]]] = [
        {m: {} for m in cost_model.MODES} for _ in assignments]
    for mode in cost_model.MODES:
        for name in modelled():
            mine = [r for r in rows if r["alg"] == name and r["mode"] == mode]
            if not mine:
                continue
            terms = sorted({t for r in mine for t in _row_amounts(name, _key(r), mode)})
            constants[mode][name] = _solve(mine, name, terms)
            own = []
            for fold, out in zip(assignments, held, strict=True):
                for f in range(3):
                    train = [r for r in mine if fold[_key(r)] != f]
                    test = [r for r in mine if fold[_key(r)] == f]
                    if not train or not test:
                        continue
                    consts = _solve(train, name, terms)
                    for r in test:
                        amounts = _row_amounts(name, _key(r), mode)
                        est = max(sum(consts[t] * v for t, v in amounts.items()), 1e-12)
                        own.append(max(est / r["seconds"], r["seconds"] / est))
                        out[mode].setdefault(_key(r), {})[name] = (est, r["seconds"])
            if own:
                error[mode][name] = round(float(np.median(own)), 3)
        curves = []
        for out in held:
            problems = out[mode]
            if mode == "train":
                problems = with_forward_pick(problems, out["forward"], hedge["forward"])
            curves.append(hedge_regrets(list(problems.values()),
                                        [named[k] for k in problems]))
        scores = {h: round(float(np.mean([c[h] for c in curves])), 9) for h in HEDGES}
        hedge[mode] = hedge_of(scores)
        print(f"{mode} hedge regret (mean log of picked / fastest, cross-validated): " + " ".join(
            f"{h}:{r:.4f}" for h, r in scores.items()), flush=True)
    return constants, hedge, error


def with_forward_pick(train: dict[str, dict[str, tuple[float, float]]],
                      forward: dict[str, dict[str, tuple[float, float]]],
                      forward_hedge: float) -> dict[str, dict[str, tuple[float, float]]]:
    """Training ``{problem: {algorithm: (estimate, measured)}}`` as a differentiated ``auto`` runs
    them: beside every algorithm but the forward pick (picked from the forward estimates with
    ``forward_hedge``), the forward pick's forward runs too, estimated and measured (the
    selector prices it the same way)."""
    out = {}
    for key, algs in train.items():
        fwd = forward.get(key, {})
        est = {a: e for a, (e, _) in fwd.items()}
        if "direct" not in est:
            out[key] = algs
            continue
        pick = select.hedged_pick(est, forward_hedge)
        extra_est, extra_time = fwd[pick]
        out[key] = {a: (e, t) if a == pick else (e + extra_est, t + extra_time)
                    for a, (e, t) in algs.items()}
    return out


#: The hedges :func:`choose_hedge` tries.
HEDGES = tuple(round(0.6 + 0.025 * i, 3) for i in range(17))


def hedge_regrets(problems: list[dict[str, tuple[float, float]]],
                  named: list[bool] | None = None) -> dict[float, float]:
    """Per :data:`HEDGES` value, the mean log of picked time / fastest time when the selector
    picks from the cross-validated estimates: per problem ``{algorithm: (estimate, measured)}``.

    Where ``named`` marks the named benchmark problems, they and the drawn problems weigh half
    each: the two want different hedges (the drawn ones, whose estimates err more, ~0.775; the
    deep layers of the named sets, where the alternatives win by 1.3-1.5x, 0.95-1.0), and
    ``auto`` serves both."""
    flags = named if named is not None else [False] * len(problems)
    counts = {f: flags.count(f) for f in (False, True)}
    weights = np.array([1.0 / (counts[f] * sum(1 for c in counts.values() if c)) for f in flags])

    def regret(h: float) -> float:
        logs = []
        for algs in problems:
            est = {a: e for a, (e, _) in algs.items()}
            best = select.hedged_pick(est, h) if "direct" in est else min(est, key=est.get)
            logs.append(math.log(algs[best][1] / min(t for _, t in algs.values())))
        return float(np.dot(weights, logs)) if logs else 0.0
    return {h: round(regret(h), 9) for h in HEDGES}


#: Regrets closer than this count as tied in :func:`choose_hedge` (the four decimals ``fit``
#: prints).
HEDGE_TIE = 1e-4


def choose_hedge(problems: list[dict[str, tuple[float, float]]],
                 named: list[bool] | None = None) -> float:
    """The hedge whose picks from cross-validated estimates lose least (:func:`hedge_regrets`);
    of ties (:data:`HEDGE_TIE`) the one that hedges most: ``direct``, XLA's own convolution,
    is kept unless leaving it measurably pays.

    The curve is shallow and jagged (each problem's pick flips at its own hedge): on the
    bundled timings the forward regrets from 0.8 to 1.0 lie within 0.005 of each other, and
    0.875 ties with 1.0; :func:`fit` prints it."""
    return hedge_of(hedge_regrets(problems, named))


def hedge_of(scores: dict[float, float]) -> float:
    """:func:`choose_hedge`'s choice from the regret per hedge (:func:`hedge_regrets`)."""
    best = min(scores.values())
    return min(h for h in HEDGES if scores[h] <= best + HEDGE_TIE)


def record(rows: list[dict], constants, hedge, error, args, machine: str, measured_at: str,
           training_measured_at: str) -> dict:
    families: dict[str, int] = {}
    for p in {_key(r): r["family"] for r in rows}.values():
        families[p] = families.get(p, 0) + 1
    return {
        "constants": {m: {a: {t: float(f"{v:.4g}") for t, v in c.items()}
                          for a, c in per.items()} for m, per in constants.items()},
        "hedge": hedge,
        "provenance": {
            "machine": machine, "measured_at": measured_at, "jax": jax.__version__,
            "training_measured_at": training_measured_at,
            "training_revision": cost_model.TRAINING_REVISION,
            "grid": {"seed": args.seed, "sampled_problems": args.problems,
                     "named_cases": sorted(cases.CASES), "problems_per_family": families,
                     "rounds": args.rounds, "distribution": cases.FAMILIES,
                     "flop_range": list(cases.FLOP_RANGE)},
            "method": "per algorithm and mode: non-negative least squares on the relative error "
                      "of the estimate; error = median max(est/meas, meas/est) by 3-fold "
                      f"cross-validation over problems, repeated over {CV_REPEATS} fold "
                      "assignments; hedge = the value of 0.6..1 whose picks from the "
                      "cross-validated estimates have the lowest geometric-mean regret, the "
                      "named benchmark problems and the drawn ones weighing half each",
            "cv_error": error,
        },
    }


def print_choices(rows: list[dict], model: cost_model.CostModel) -> None:
    """The picks of the new constants on every timed problem against the measured best."""
    by_problem: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        by_problem.setdefault((_key(r), r["mode"]), {})[r["alg"]] = r["seconds"]
    regrets = {m: [] for m in cost_model.MODES}
    for (key, mode), times in by_problem.items():
        canon = _problem(json.loads(key)).canonical()
        pick = select.select(canon.x_shape, canon.kernel_shape, canon.dtype, canon.config,
                             "cpu", use_cache=False, mode=mode, model=model).algorithm
        if pick in times:
            regrets[mode].append(times[pick] / min(times.values()))
    for mode, r in regrets.items():
        if r:
            print(f"{mode}: picked / fastest on the fitted problems: geometric mean "
                  f"{math.exp(np.mean(np.log(r))):.3f}, 90th percentile {np.percentile(r, 90):.2f}, "
                  f"worst {max(r):.2f} ({len(r)} problems)")


def _revision(run: dict[str, Any]) -> int:
    return int(run.get("training_revision", 1))  # files from before the field: revision 1


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Raw timing files of one machine as one: rows of the same problem, algorithm and mode
    become one row at the geometric mean of their medians (more rounds, less noise; a problem
    timed in one run only keeps its row). The algorithms of a run of some (``--algorithms``)
    were re-measured on the problems and modes it timed: their rows of those problems and modes
    in the runs of every algorithm are dropped. Training rows come only from the runs of the newest
    ``training_revision`` (:data:`~jaxconv.convolution.cost_model.TRAINING_REVISION`): older
    ones timed other gradients."""
    if len(runs) == 1:
        return runs[0]
    cpus = {r["machine"].split(";")[0] for r in runs}  # the rest is the load at the start
    if len(cpus) != 1:
        raise SystemExit(f"fit_cost_model: --load files come from different machines: {cpus}")
    full = [r for r in runs if not r.get("algorithms")]
    if not full:
        raise SystemExit("fit_cost_model: --load needs one run of every algorithm besides the "
                         "runs of some (--algorithms)")
    if len(full) < len(runs):
        reference = merge_runs(full)
        partial = [_anchored(r, reference) for r in runs if r.get("algorithms")]
        # a run of some algorithms re-measures them (new, or changed) on the problems and modes
        # it timed (a changed gradient: training only): it replaces their rows there
        remeasured = {(_key(row), row["alg"], row["mode"]) for r in partial for row in r["rows"]
                      if row["alg"] != "direct"}
        full = [{**r, "rows": [row for row in r["rows"]
                               if (_key(row), row["alg"], row["mode"]) not in remeasured]}
                for r in full]
        runs = full + partial
    newest = max(map(_revision, runs))
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for run in runs:
        for row in run["rows"]:
            if row["mode"] == "train" and _revision(run) < newest:
                continue
            key = (_key(row), row["alg"], row["mode"])
            groups.setdefault(key, []).append(row)
    rows = [{**rs[0], "seconds": float(np.exp(np.mean([np.log(r["seconds"]) for r in rs])))}
            for rs in groups.values()]
    return {"rows": rows, "machine": " | ".join(r["machine"] for r in runs),
            "measured_at": ", ".join(r["measured_at"] for r in runs),
            "training_measured_at": ", ".join(r.get("training_measured_at", r["measured_at"])
                                              for r in runs if _revision(r) == newest),
            "training_revision": newest,
            "seed": runs[0]["seed"], "problems": max(r["problems"] for r in runs),
            "rounds": sum(r["rounds"] for r in runs)}


def run_to_run(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, float]]:
    """How well one run of the machine predicts another: per mode, over the problems both
    timed with two or more algorithms in common, the regret in run ``b`` of run ``a``'s fastest
    algorithm (its time in ``b`` over ``b``'s fastest): geometric mean, 90th percentile, worst,
    and the share of problems whose fastest algorithm differs. No cost model picks better on
    average than the measurement it was fitted to, so this is the floor of ``auto``'s regret on
    the machine."""
    def table(run):
        t: dict[tuple[str, str], dict[str, float]] = {}
        for r in run["rows"]:
            t.setdefault((_key(r), r["mode"]), {})[r["alg"]] = r["seconds"]
        return t

    ta, tb = table(a), table(b)
    regrets: dict[str, list[float]] = {}
    changed: dict[str, int] = {}
    for key, times_b in tb.items():
        common = [alg for alg in times_b if alg in ta.get(key, {})]
        if len(common) < 2:
            continue
        best_a = min(common, key=ta[key].__getitem__)
        best_b = min(common, key=times_b.__getitem__)
        regrets.setdefault(key[1], []).append(times_b[best_a] / times_b[best_b])
        changed[key[1]] = changed.get(key[1], 0) + (best_a != best_b)
    return {mode: {"geomean": float(np.exp(np.mean(np.log(v)))),
                   "p90": float(np.percentile(v, 90)), "worst": float(max(v)),
                   "best_changed": changed[mode] / len(v), "problems": len(v)}
            for mode, v in regrets.items()}


def _anchored(partial: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """A run of some algorithms (``--algorithms``, ``direct`` among them) on the scale of the
    ``reference`` runs: per mode, its rows times the geometric mean of ``direct``'s reference
    time over its own on the problems both timed (the machine drifts between runs: the same
    problems took ~10% more or less on another day), ``direct``'s own rows dropped."""
    def key(r):
        return _key(r), r["mode"]
    ref = {key(r): r["seconds"] for r in reference["rows"] if r["alg"] == "direct"}
    scale = {}
    for mode in cost_model.MODES:
        logs = [math.log(ref[key(r)] / r["seconds"]) for r in partial["rows"]
                if r["alg"] == "direct" and r["mode"] == mode and key(r) in ref]
        if not logs:
            raise SystemExit("fit_cost_model: a run of some algorithms must time direct beside "
                             f"them (--algorithms ... direct); {mode} has no direct rows in common")
        scale[mode] = math.exp(float(np.mean(logs)))
    rows = [{**r, "seconds": r["seconds"] * scale[r["mode"]]} for r in partial["rows"]
            if r["alg"] != "direct"]
    return {**partial, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=80, help="sampled fit problems (default 80)")
    ap.add_argument("--seed", type=int, default=FIT_SEED)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per algorithm")
    ap.add_argument("--budget-min", type=float, default=26.0, help="measuring time limit")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--save", type=Path, help="also write the raw timings here")
    ap.add_argument("--load", type=Path, nargs="+",
                    help="refit these raw timings instead of measuring (several runs of one "
                         "machine merge: geometric mean per problem, algorithm and mode)")
    ap.add_argument("--algorithms", nargs="+", metavar="NAME",
                    help="measure only these algorithms (a new one: with direct, --save the "
                         "run, then --load it with the earlier runs to merge and refit; its "
                         "timings are put on their scale through direct's)")
    ap.add_argument("--dry-run", action="store_true", help="print the record, write nothing")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.algorithms or ()) - set(modelled()))
    if unknown:
        ap.error(f"--algorithms: not registered with cost terms: {', '.join(unknown)}; "
                 f"known: {', '.join(modelled())}")
    if jax.default_backend() != "cpu":
        raise SystemExit("fit_cost_model: fits the cpu backend; run with JAX_PLATFORMS=cpu")
    if args.load:
        runs = [json.loads(p.read_text(encoding="utf-8")) for p in args.load]
        full = [(p, r) for p, r in zip(args.load, runs, strict=True) if not r.get("algorithms")]
        for (pa, a), (pb, b) in itertools.combinations(full, 2):
            for mode, f in run_to_run(a, b).items():
                print(f"run to run ({pa.name} -> {pb.name}), {mode}: the fastest of one timed in "
                      f"the other: geometric mean {f['geomean']:.3f}, 90th percentile "
                      f"{f['p90']:.2f}, worst {f['worst']:.2f}; another fastest on "
                      f"{f['best_changed']:.0%} of {f['problems']} problems")
        raw = merge_runs(runs)
        if _revision(raw) < cost_model.TRAINING_REVISION:
            raise SystemExit(
                f"fit_cost_model: the training timings of {', '.join(map(str, args.load))} were "
                f"measured with the gradients of revision {_revision(raw)}; this jaxconv's are "
                f"revision {cost_model.TRAINING_REVISION} (cost_model.TRAINING_REVISION): "
                "measure again (or --load it with a run of this revision)")
        rows, machine, measured_at = raw["rows"], raw["machine"], raw["measured_at"]
        training_at = raw.get("training_measured_at", measured_at)
        args.seed, args.problems, args.rounds = raw["seed"], raw["problems"], raw["rounds"]
        if args.save:
            cost_model_io_write(args.save, raw)
    else:
        machine = cpu_description()
        measured_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        training_at = measured_at
        problems = grid(args.problems, args.seed)
        print(f"fit_cost_model: {len(problems)} problems, {args.rounds} rounds, on {machine}",
              flush=True)
        rows = measure(problems, args.rounds, args.budget_min, args.algorithms)
        if args.save:
            cost_model_io_write(args.save, {"rows": rows, "machine": machine,
                                            "measured_at": measured_at, "seed": args.seed,
                                            "training_revision": cost_model.TRAINING_REVISION,
                                            "problems": args.problems, "rounds": args.rounds,
                                            "algorithms": args.algorithms})
    constants, hedge, error = fit(rows)
    rec = record(rows, constants, hedge, error, args, machine, measured_at, training_at)
    model = cost_model.from_record("cpu", rec, "the new fit")
    print_choices(rows, model)
    print(f"hedge {hedge}; cross-validated error factors {error}")
    if args.dry_run:
        print(json.dumps(rec, indent=1))
        return 0
    data = {"schema": cost_model.SCHEMA, "version": cost_model.VERSION, "fits": {"cpu": rec}}
    cost_model_io_write(args.out, data)
    print(f"wrote {args.out}")
    return 0


def cost_model_io_write(path: Path, data: Any) -> None:
    """JSON to ``path`` atomically (the library's writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _io.write_json_atomic(path, data)


if __name__ == "__main__":
    sys.exit(main())
