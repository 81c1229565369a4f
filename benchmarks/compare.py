"""auto against the fastest registered algorithm, XLA and torch, side by side, layer by layer.

    python benchmarks/compare.py cnn,networks,deep fwd,fwd+bwd 7    # cases, passes, rounds
    python benchmarks/compare.py layer fwd                          # any case of jaxconv.convolution.cases
    python benchmarks/compare.py models train,infer 7               # whole networks


Every applicable algorithm, ``auto``, XLA's ``lax.conv_general_dilated`` and
``torch.nn.functional.conv2d`` (2 threads) are compiled and warmed up, then timed round-robin
(per round, each is called once untimed, then once timed, ``block_until_ready``; torch's
threads get a rest after its call), in a fresh random order each round (a call right after a
memory-hungry one runs slower), so load from other processes and neighbours hit them alike;
names that compile to the same program (``auto`` and its pick, ``direct`` and XLA, the 1x1
GEMMs) are timed once and share the timing (the ``programs`` of
``jaxconv.convolution.tuning.interleaved_times``);
the median of the rounds is printed, with the ratios auto / fastest algorithm, XLA / auto and
torch / auto and their geometric means over the case. ``fwd+bwd`` times the gradients
of ``sum(y * y) / 2`` (``jaxconv.convolution.tuning.timing_loss``: a varying cotangent, as in
training) with respect to x and kernel, where ``auto`` switches to its training choice.
Any case of ``jaxconv.convolution.cases.CASES``: ``networks`` holds layers of ResNet-50, MobileNetV2
and VGG, ``deep`` small images with many channels.
``models``: the training step and inference of the CIFAR-style ResNet-18 and MobileNetV2 at
batch 16 and 64, plain Flax vs jaxconv vs PyTorch with the same weights, compile times too
(``models_case.py``; passes ``train``, ``infer``).
"""
import json
import math
import os
import statistics
import sys

import jax
import jax.numpy as jnp
import models_case
import numpy as np
import torch
import torch.nn.functional as F

import jaxconv
from jaxconv.convolution import _registry, cases
from jaxconv.convolution.cases import Problem
from jaxconv.convolution.tuning import timing_loss

torch.set_num_threads(2)



def torch_fn(p: Problem, c, mode: str, x: np.ndarray, w: np.ndarray):
    """torch's convolution of the same problem (NCHW, explicit padding, OIHW weights)."""
    pads = c.config.padding
    flat = (pads[1][0], pads[1][1], pads[0][0], pads[0][1])
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    wt = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous()

    def f(a, b):
        return F.conv2d(F.pad(a, flat), b, stride=c.config.stride, dilation=c.config.dilation,
                        groups=p.groups)

    if mode == "fwd":
        def run():
            with torch.no_grad():
                f(xt, wt)
        return run
    xr, wr = xt.clone().requires_grad_(), wt.clone().requires_grad_()

    def run_grad():
        timing_loss(f(xr, wr)).backward()
        xr.grad = None
        wr.grad = None
    return run_grad


def jax_fn(p: Problem, alg: str, mode: str, x: np.ndarray, k: np.ndarray):
    """``(call, compiled)``: a warmed-up call of ``alg`` (a registered name, ``auto`` or
    ``xla``) and the program it runs."""
    kw = p.conv_kwargs()
    c = p.canonical()

    def conv(a, b):
        if alg == "xla":
            return jax.lax.conv_general_dilated(
                a, b, c.config.stride, c.config.padding, rhs_dilation=c.config.dilation,
                dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=p.groups)
        return jaxconv.conv2d(a, b, algorithm=alg, **kw)

    def loss(a, b):
        return timing_loss(conv(a, b))

    xj, kj = jnp.asarray(x), jnp.asarray(k)
    f = jax.jit(conv if mode == "fwd" else jax.grad(loss, argnums=(0, 1))).lower(xj, kj).compile()
    jax.block_until_ready(f(xj, kj))
    return (lambda: jax.block_until_ready(f(xj, kj))), f


def run(problems, mode: str, rounds: int) -> list[dict]:
    rows = []
    for p in problems:
        c = p.canonical()
        rng = np.random.default_rng(0)
        x = rng.standard_normal(p.x_shape, dtype=np.float32)
        fan_in = np.prod(p.kernel_shape[:3])
        k = (rng.standard_normal(p.kernel_shape, dtype=np.float32) / np.sqrt(fan_in)).astype(np.float32)
        algs = list(_registry.applicable(c.x_shape, c.kernel_shape, jnp.float32, c.config))
        calls = {a: jax_fn(p, a, mode, x, k) for a in [*algs, "auto", "xla"]}
        fns = {a: call for a, (call, _) in calls.items()}
        fns["torch"] = torch_fn(p, c, mode, x, k)
        fns["torch"]()  # warm-up: oneDNN's primitive creation
        # A fresh order each round: a call right after a memory-hungry one (fft, dft) ran up to
        # 1.8x slower, even after two untimed calls; a fixed order put auto right after dft.
        # Names that compile to one program (auto and its pick, direct and XLA, 1x1 GEMMs) are
        # timed once and share the timing: copies of one program differ only by noise.
        times = models_case.interleaved(
            fns, rounds, programs={a: compiled for a, (_, compiled) in calls.items()})
        med = {n: statistics.median(v) * 1e3 for n, v in times.items()}
        sel = jaxconv.select_algorithm(p.x_shape, p.kernel_shape,
                                       mode="forward" if mode == "fwd" else "train",
                                       **p.conv_kwargs())
        best = min(algs, key=lambda a: med[a])
        rows.append(dict(label=p.label, picked=sel.algorithm, best=best, med=med))
        others = " ".join(f"{n}={v:.2f}" for n, v in sorted(med.items(), key=lambda kv: kv[1]))
        print(f"{mode} {p.label:18s} auto->{sel.algorithm:10s} best={best:10s} "
              f"auto/best={med['auto'] / med[best]:.2f} xla/auto={med['xla'] / med['auto']:.2f} "
              f"torch/auto={med['torch'] / med['auto']:.2f} | {others}", flush=True)
    return rows


def gm(values) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


def run_models(modes, rounds: int, size: str = "full") -> list[dict]:
    """Whole networks: every implementation compiled (timed), checked, then timed interleaved."""
    rows = []
    for mode in modes:
        for row in models_case.ROWS[size]:
            fns = models_case.calls(row, mode)
            compile_s = models_case.compile_and_check(fns)
            times = models_case.interleaved(fns, rounds)
            med = {n: statistics.median(v) * 1e3 for n, v in times.items()}
            rows.append(dict(label=row.label, mode=mode, med=med, compile_s=compile_s))
            print(f"{mode:5s} {row.label:18s} " + " ".join(
                f"{models_case.IMPL_TITLES[n]}={med[n]:.1f} ms (compile {compile_s[n]:.1f} s)"
                for n in med)
                + f" | jaxconv vs Flax {med['flax'] / med['jaxconv']:.2f}x,"
                  f" vs torch {med['torch'] / med['jaxconv']:.2f}x", flush=True)
    return rows


if __name__ == "__main__":
    which = sys.argv[1].split(",")
    given = sys.argv[2].split(",") if len(sys.argv) > 2 else None
    modes = given or ["fwd", "fwd+bwd"]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    out = {}
    if "models" in which:
        which.remove("models")
        model_modes = [m for m in given or models_case.MODES if m in models_case.MODES]
        if not model_modes:
            sys.exit(f"compare.py: models takes the passes {','.join(models_case.MODES)}")
        out["models"] = run_models(model_modes, rounds)
    for w in which:
        probs = list(cases.problems(w))
        if any(p.spatial != 2 for p in probs):
            sys.exit(f"compare.py: {w!r} is not a 2-D case; time it with "
                     f"`python benchmarks/bench.py --cases {w}`")
        for m in modes:
            rows = run(probs, m, rounds)
            ab = [r["med"]["auto"] / r["med"][r["best"]] for r in rows]
            # the pick's own timing: the choice without the noise of timing auto as one more call
            pb = [r["med"][r["picked"]] / r["med"][r["best"]] for r in rows if r["picked"] in r["med"]]
            xa = [r["med"]["xla"] / r["med"]["auto"] for r in rows]
            ta = [r["med"]["torch"] / r["med"]["auto"] for r in rows]
            print(f"## {w} {m}: auto/best gm {gm(ab):.2f} worst {max(ab):.2f}; "
                  f"pick/best gm {gm(pb):.2f} worst {max(pb):.2f}; "
                  f"xla/auto gm {gm(xa):.2f} worst {min(xa):.2f}; "
                  f"torch/auto gm {gm(ta):.2f} worst {min(ta):.2f}", flush=True)
            out[f"{w} {m}"] = rows
    if os.environ.get("COMPARE_JSON"):
        with open(os.environ["COMPARE_JSON"], "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
