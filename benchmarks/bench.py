"""``python benchmarks/bench.py`` (``nox -s bench``): the convolution sweep, its report and plot.

The timed code is the pytest-benchmark suite beside this file (``test_bench_*.py``). This module
holds what the suite and the report share — the sweep built from the benchmark cases
(:data:`jaxconv.convolution.cases.CASES`), its points, the FLOP count, the machine description — plus
the report builder and ``main(argv)``, which runs the suite in-process with a progress bar and
writes under ``--out`` (default ``bench-results/``):

- ``benchmark.json``: pytest-benchmark's JSON, plus a top-level ``"jaxconv"`` entry (missing
  peers, failed points, points skipped after the time budget, the matmul peak) and GFLOP/s in
  every point's ``extra_info``;
- ``report.md``: per case and pass, problem x implementation tables (median ms, speedup over
  XLA's ``lax.conv_general_dilated``, GFLOP/s and % of the matmul peak, compile time), the winner
  per row and the algorithm ``conv2d(..., algorithm="auto")`` chose; machine information;
- ``conv_vs_kernel.png``: median time against kernel size (or problem), one line per
  implementation, one panel per case and pass (:func:`jaxconv.viz.benchmark.plot_conv_vs_kernel`).

The ``models`` case (``models_case.py``, ``test_bench_models.py``) times whole networks instead
of single convolutions: ResNet-18's and MobileNetV2's training step and inference, plain Flax
vs jaxconv vs PyTorch, interleaved; its tables and panels join the others.

Every implementation of a point runs the same convolution (the case's padding, stride, dilation
and groups). It is a script, not part of the installed package: run it from a clone,

    python benchmarks/bench.py [--quick | --tiny] [--cases article,cnn] [--out DIR] [PYTEST ARGS]

(the suite imports this file as ``bench``: pytest puts ``benchmarks/`` on ``sys.path``).
Nothing here imports torch, scipy or matplotlib at module level.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import models_case

from jaxconv.convolution import ConvConfig
from jaxconv.convolution.cases import CASES, Problem

ROOT = Path(__file__).resolve().parent.parent  # the clone: benchmarks/ and pyproject.toml
BASELINE = "lax"
PEERS = ("torch", "scipy")
MODES = ("fwd", "fwd+bwd")
MODE_TITLES = {"fwd": "forward", "fwd+bwd": "forward + backward (grad w.r.t. x and kernel)"}
SIZES = ("full", "quick", "tiny")
# The passes each case runs (cases not listed: both). The article's image has one sample and
# three channels: only its forward pass is of interest.
PASSES = {"article": ("fwd",), "signal": ("fwd",)}
# The smoke test's budget: the backward pass only, which also runs the forward.
TINY_PASSES = {"layer": ("fwd+bwd",)}
# SciPy correlates one (input, output) channel pair at a time, VALID: only the article's
# three-channel image, forward.
SCIPY_CASES = ("article",)
# Per-point timing budget: rounds = clamp(max_time / (one call), min_rounds, max_rounds).
TIMING = {
    "full": {"max_time": 0.3, "min_rounds": 3, "max_rounds": 50},
    "quick": {"max_time": 0.15, "min_rounds": 3, "max_rounds": 30},
    "tiny": {"max_time": 0.005, "min_rounds": 1, "max_rounds": 3},
}
MATMUL_N = {"full": 2048, "quick": 2048, "tiny": 128}
# Sweep time after which the remaining points are skipped (and listed), so that `nox -s bench`
# ends in 10 minutes (2 for --quick) on a 2-core CPU whatever an algorithm's compile time.
BUDGET_S = {"full": 540.0, "quick": 100.0, "tiny": None}
# An implementation whose compile takes longer skips its larger kernels in that case and pass:
# compile time grows with k for algorithms that unroll over the kernel taps.
COMPILE_CAP_S = {"full": 15.0, "quick": 15.0, "tiny": None}
SLOW_COMPILE_S = 10.0  # the report lists compiles slower than this
MODELS = models_case.CASE
# Timed rounds per models point (each round calls every implementation twice, once timed).
MODEL_ROUNDS = {"full": 7, "quick": 5, "tiny": 1}


def rounds_for(estimate_s: float, size: str) -> int:
    """Timed rounds for a call that takes ``estimate_s``: the size's time budget, clamped."""
    t = TIMING[size]
    return max(t["min_rounds"], min(t["max_rounds"], math.ceil(t["max_time"] / max(estimate_s, 1e-9))))


@functools.cache
def _canonical_config(problem: Problem) -> ConvConfig:
    return problem.canonical().config


@dataclasses.dataclass(frozen=True)
class Row:
    """One problem of a case: NHWC ``x_shape``, HWIO ``kernel_shape`` and ``conv2d``'s kwargs."""

    case: str
    problem: Problem

    @property
    def label(self) -> str:
        """``"3"`` (kernel size), ``"C1"`` (LeNet layer), ``"3x3/2 32→64"`` (cnn layer) ..."""
        return self.problem.label

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return self.problem.x_shape

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        return self.problem.kernel_shape

    @property
    def k(self) -> int:
        return self.problem.k

    @property
    def conv_kwargs(self) -> dict[str, Any]:
        """``stride``, ``padding``, ``dilation``, ``groups`` as ``conv2d`` takes them."""
        return self.problem.conv_kwargs()

    @property
    def config(self) -> ConvConfig:
        """The canonical configuration: explicit zero padding ``((top, bottom), (left, right))``."""
        return _canonical_config(self.problem)

    @property
    def slug(self) -> str:
        """The label in a point id: ``3x3/2 32→64`` -> ``3x3s2_32to64``."""
        return self.label.replace("→", "to").replace("/", "s").replace(" ", "_")

    @property
    def xvalue(self) -> int | str:
        """The plot's x coordinate: the kernel size, or the label for a set of distinct layers."""
        return int(self.label) if self.label.isdigit() else self.label

    @property
    def flops(self) -> int:
        return self.problem.flops()


@dataclasses.dataclass(frozen=True)
class Case:
    """A benchmark case (:data:`jaxconv.convolution.cases.CASES`) at one size: rows, passes, peers."""

    name: str
    title: str
    modes: tuple[str, ...]
    peers: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def valid(self) -> bool:
        """Whether every row is VALID, stride 1, dilation 1, one group (the article's kind)."""
        return all(r.problem.valid for r in self.rows)


@dataclasses.dataclass(frozen=True)
class Point:
    """One benchmark: a row of a case, a pass (``fwd`` / ``fwd+bwd``) and an implementation."""

    row: Row
    mode: str
    impl: str  # "lax", a registered algorithm name, "auto", "torch" or "scipy"

    @property
    def id(self) -> str:
        return f"{self.row.case}-{self.row.slug}-{self.mode}-{self.impl}"

    @property
    def group(self) -> str:
        return f"{self.row.case} {row_title(self.row)} {self.mode}"

    @property
    def flops(self) -> int:
        return self.row.flops * (3 if self.mode == "fwd+bwd" else 1)


def conv_flops(x_shape, kernel_shape, *, stride=1, padding="VALID", dilation=1,
               groups: int = 1) -> int:
    """``2 * N * Ho * Wo * O * kh * kw * C / groups`` for NHWC ``x_shape``, HWIO ``kernel_shape``.

    ``Ho, Wo`` follow from the padding (``"VALID"``, ``"SAME"``, explicit), stride and dilation;
    ``C`` is the image's channel count (the kernel's input axis is taken to be ``C / groups``).
    """
    kh, kw, _, o = kernel_shape
    problem = Problem("", tuple(x_shape), (kh, kw, x_shape[-1] // groups, o), stride=stride,
                      padding=padding, dilation=dilation, groups=groups)
    return problem.flops()


def _conv_words(problem: Problem) -> str:
    """``VALID`` or ``padding SAME, stride 2, dilation 2, groups 96`` (the non-default parts)."""
    if problem.valid:
        return "VALID, stride 1"
    words = [f"padding {problem.padding}"]
    words += [f"{name} {getattr(problem, name)}" for name in ("stride", "dilation", "groups")
              if getattr(problem, name) != 1]
    return ", ".join(words)


def case_shapes(case: Case) -> str:
    """The shapes of a case in words, e.g. ``x 1x320x400x3 (NHWC) → 3 channels, k x k kernels``."""
    dims = lambda shape: "x".join(map(str, shape))  # noqa: E731
    rows = case.rows
    layout = {1: ("NWC", "WIO", "k"), 2: ("NHWC", "HWIO", "k x k")}
    if len({r.x_shape for r in rows}) == 1 and len({_conv_words(r.problem) for r in rows}) == 1:
        r = rows[0]
        xl, kl, kk = layout[r.problem.spatial]
        return (f"x {dims(r.x_shape)} ({xl}) → {r.kernel_shape[-1]} channels, {kk} kernels "
                f"({kl}), {_conv_words(r.problem)}")
    return "; ".join(
        f"{r.label}: x {dims(r.x_shape)} ({layout[r.problem.spatial][0]}) → "
        f"{r.kernel_shape[-1]} channels, {'x'.join(map(str, r.kernel_shape[:-2]))} kernel, "
        f"{_conv_words(r.problem)}" for r in rows
    )


def row_title(row: Row) -> str:
    """``k=3`` for a kernel-size sweep, ``C1 5x5`` for a LeNet layer, else the problem's label."""
    if row.label.isdigit():
        return f"k={row.label}"
    size = "x".join(map(str, row.kernel_shape[:-2]))
    return row.label if size in row.label else f"{row.label} {size}"


def _problems(case, size: str) -> tuple[Problem, ...]:
    if size == "tiny":
        return case.tiny
    if size == "quick":
        return tuple(p for p in case.problems if p.label in case.quick)
    return case.problems


def cases(size: str = "full") -> dict[str, Case]:
    """The benchmark cases at ``size``: ``"full"``, ``"quick"`` (a subset) or ``"tiny"``."""
    if size not in SIZES:
        raise ValueError(f"cases: size must be one of {SIZES}, got {size!r}")
    out = {}
    for name, case in CASES.items():
        rows = tuple(Row(name, p) for p in _problems(case, size))
        modes = (TINY_PASSES.get(name) if size == "tiny" else None) or PASSES.get(name, MODES)
        peers = ("torch", "scipy") if name in SCIPY_CASES else ("torch",)
        out[name] = Case(name, case.title, modes, peers, rows)
    return out


def case_names() -> list[str]:
    """Every case ``--cases`` takes: the convolution cases, then ``models``."""
    return [*cases(), MODELS]


def peer_versions() -> dict[str, str | None]:
    """Installed version of each peer library, ``None`` when it cannot be imported."""
    from importlib import metadata, util

    out: dict[str, str | None] = {}
    for name in PEERS:  # from the metadata, without importing torch (seconds) to ask
        try:
            out[name] = metadata.version(name) if util.find_spec(name) else None
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def jaxconv_algorithms(row: Row) -> list[str]:
    """Registered jaxconv algorithms (registry order) that serve ``row`` in float32."""
    from jaxconv.convolution import algorithms

    def serves(a) -> bool:
        try:
            return a.unsupported_reason(row.x_shape, row.kernel_shape, "float32", row.config) is None
        except Exception:  # a broken check: keep the point, so that it fails visibly
            return True

    return [a.name for a in algorithms() if serves(a)]


def points(selected: Sequence[str] | None = None, size: str = "full") -> list[Point]:
    """Every point of the sweep: rows x passes x (XLA, jaxconv algorithms, auto, peers)."""
    all_cases = cases(size)
    selected = list(all_cases) if selected is None else [c for c in selected if c != MODELS]
    unknown = [c for c in selected if c not in all_cases]
    if unknown:
        raise ValueError(f"points: unknown case(s) {unknown}; expected some of {list(all_cases)}")
    installed = peer_versions()
    out = []
    for case in (all_cases[c] for c in selected):
        for mode in case.modes:
            for row in case.rows:
                impls = [BASELINE, *jaxconv_algorithms(row), "auto"]
                impls += [p for p in case.peers if installed[p]
                          and (p == "torch" or (mode == "fwd" and row.problem.valid))]
                out += [Point(row, mode, impl) for impl in impls]
    return out


def missing_peers(selected: Iterable[str] | None = None, size: str = "full") -> dict[str, str]:
    """Peers the selected cases would time but that are not installed: name -> what it would time."""
    all_cases = cases(size)
    installed = peer_versions()
    wanted: dict[str, list[str]] = {}
    for name in selected or all_cases:
        for peer in all_cases[name].peers if name != MODELS else ("torch",):
            wanted.setdefault(peer, []).append(name)
    return {p: ", ".join(c) for p, c in wanted.items() if not installed[p]}


def auto_choice(row: Row) -> tuple[str, dict[str, float] | None]:
    """The algorithm ``conv2d(..., algorithm="auto")`` picks for ``row`` and its cost estimates."""
    from jaxconv import select_algorithm

    try:
        sel = select_algorithm(row.x_shape, row.kernel_shape, dtype="float32", **row.conv_kwargs)
    except Exception as e:  # reported in the table; the auto point itself fails visibly
        return f"? ({type(e).__name__})", None
    costs = {str(k): float(v) for k, v in sel.costs.items()} or None
    return sel.algorithm + (" (autotune)" if sel.source == "autotune" else ""), costs


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU model, cores, library versions, JAX backend and devices, XLA_FLAGS, the cost model."""
    import jaxlib

    import jaxconv
    from jaxconv.convolution import cost_model

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count()
    backend = jax.default_backend()
    fit = cost_model.bundled().get(cost_model.canonical_backend(backend))
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "python": platform.python_version(),
        "jaxconv": jaxconv.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": importlib.import_module("numpy").__version__,
        **{name: version for name, version in peer_versions().items()},
        "backend": backend,
        "devices": [f"{d.device_kind} ({d.platform})" for d in jax.devices()],
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "algorithms": [a.name for a in importlib.import_module("jaxconv.convolution").algorithms()],
        "cost_model_fitted": fit.provenance.get("measured_at") if fit else None,
    }


# --------------------------------------------------------------------------- report


def impl_label(impl: str, backend: str = "cpu") -> str:
    """Column title of an implementation; CPU-only peers say so on other backends."""
    label = {"lax": "XLA lax.conv", "auto": "auto", "torch": "torch", "scipy": "scipy"}.get(impl, impl)
    if impl in PEERS and backend != "cpu":
        label += " (CPU)"
    return label


def _peak_gflops(data: Mapping) -> float | None:
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if info.get("kind") == "matmul":
            return info["flops"] / b["stats"]["median"] / 1e9
    return None


def annotate(data: dict) -> dict:
    """Add ``gflops`` and ``pct_peak`` to every conv point's ``extra_info`` (in place); return data."""
    peak = _peak_gflops(data)
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if info.get("kind") == "conv":
            info["gflops"] = info["flops"] / b["stats"]["median"] / 1e9
            if peak:
                info["pct_peak"] = 100 * info["gflops"] / peak
    data.setdefault("jaxconv", {})["matmul_gflops"] = peak
    return data


def tables(data: Mapping) -> dict[tuple[str, str], dict]:
    """Group conv points by (case, mode) into ``{"rows": [...], "impls": [...], "cells": {...}}``.

    ``cells[(row_label, impl)]`` holds ``ms``, ``gflops``, ``compile_s``; rows keep sweep order
    (by ``order``); columns are XLA, the jaxconv algorithms (registry order), auto, the peers.
    ``title`` is the case's title and ``valid`` whether all its rows are VALID, stride 1.
    """
    out: dict[tuple[str, str], dict] = {}
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if info.get("kind") != "conv":
            continue
        t = out.setdefault((info["case"], info["mode"]), {
            "rows": {}, "impls": [], "cells": {}, "title": info.get("case_title"), "valid": True})
        t["valid"] = t["valid"] and info.get("valid", True)
        t["rows"].setdefault(info["row"], {
            "order": info.get("order", len(t["rows"])),
            "title": info.get("row_title", info["row"]),
            "x": info.get("x", info["row"]),
            "auto": info.get("auto_choice"),
            "shapes": info.get("shapes", ""),
        })
        if info["impl"] not in t["impls"]:
            t["impls"].append(info["impl"])
        if info["impl"] == "auto" and info.get("auto_choice"):
            t["rows"][info["row"]]["auto"] = info["auto_choice"]
        median = b["stats"]["median"]
        t["cells"][(info["row"], info["impl"])] = {
            "ms": 1e3 * median,
            "gflops": info["flops"] / median / 1e9,
            "compile_s": info.get("compile_s"),
            "rounds": b["stats"].get("rounds"),
        }
    rank = {BASELINE: 0, "auto": 2, **{p: 3 + i for i, p in enumerate(PEERS)}}  # algorithms: 1
    for t in out.values():
        t["rows"] = dict(sorted(t["rows"].items(), key=lambda kv: kv[1]["order"]))
        t["impls"].sort(key=lambda impl: rank.get(impl, 1))  # stable: registry order kept
    return out


def _fmt(value: float) -> str:
    """Three significant digits, without exponents: 0.0123, 4.56, 78.9, 1234."""
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if value >= 1e-3 else f"{value:.1e}"


def _fmt_pct(pct: float) -> str:
    return f"{pct:.0f}%" if pct >= 1 else f"{pct:.1g}%"


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def build_report(data: Mapping, *, wall_s: float | None = None) -> str:
    """Markdown report of a pytest-benchmark JSON written by the jaxconv suite."""
    meta = data.get("jaxconv", {})
    machine = data.get("machine_info", {}).get("jaxconv", {})
    backend = machine.get("backend", "cpu")
    peak = meta.get("matmul_gflops") or _peak_gflops(data)
    lines = ["# jaxconv convolution benchmarks", ""]
    lines.append(
        "float32; every implementation runs the same convolution (padding, stride, dilation, "
        "groups). Median of the timed rounds (compile and a checked warm-up call outside them). "
        "Speedup = XLA time / time (> 1 is faster than `jax.lax.conv_general_dilated`). "
        "GFLOP/s counts 2·N·Ho·Wo·O·kh·kw·C/groups per forward pass (Ho, Wo after padding, "
        "stride and dilation), 3x that for forward + backward. **Bold** = fastest in the row."
    )
    lines.append("")
    kinds: dict[str, bool] = {}
    for (case, _), t in tables(data).items():
        kinds[case] = kinds.get(case, True) and t["valid"]
    if kinds:
        valid = [f"**{c}**" for c, v in kinds.items() if v]
        other = [f"**{c}**" for c, v in kinds.items() if not v]
        lines.append("VALID, stride 1 (the article's convolutions): "
                     + (", ".join(valid) or "none") + ". Not VALID (padding, strides, groups or "
                     "dilation, per row below): " + (", ".join(other) or "none") + ".")
        lines.append("")
    if peak:
        lines.append(f"float32 matmul peak ({meta.get('matmul_n', 2048)}² `jnp.dot`, same run): "
                     f"**{peak:.1f} GFLOP/s**.")
    else:
        lines.append("float32 matmul peak: not measured in this run.")
    if wall_s is not None:
        lines.append(f"Sweep wall time: {wall_s:.0f} s.")
    lines.append("")
    missing = meta.get("missing_peers") or {}
    if missing:
        lines.append("Missing peers (not installed, not timed): "
                     + "; ".join(f"**{p}** (would time: {c})" for p, c in missing.items()) + ".")
        lines.append("")
    skipped = meta.get("skipped") or []
    if skipped:
        by_reason: dict[str, list[str]] = {}
        for s in skipped:
            by_reason.setdefault(s["reason"], []).append(s["id"])
        lines.append(f"**{len(skipped)} point(s) skipped** (not timed):")
        lines.append("")
        lines += [f"- {reason}: " + ", ".join(f"`{i}`" for i in ids)
                  for reason, ids in by_reason.items()]
        lines.append("")
    failures = meta.get("failures") or []
    if failures:
        lines.append(f"**{len(failures)} point(s) failed** (wrong result or error; not timed):")
        lines.append("")
        lines += [f"- `{f['id']}`: {f['message']}" for f in failures]
        lines.append("")

    slow = sorted(
        ((c["compile_s"], f"{impl} {case} {t['rows'][row]['title']} {mode}")
         for (case, mode), t in tables(data).items()
         for (row, impl), c in t["cells"].items() if (c["compile_s"] or 0) > SLOW_COMPILE_S),
        reverse=True,
    )
    if slow:
        lines.append(f"Compiles over {SLOW_COMPILE_S:.0f} s: "
                     + ", ".join(f"{name} ({sec:.0f} s)" for sec, name in slow) + ".")
        lines.append("")

    for (case, mode), t in tables(data).items():
        impls = t["impls"]
        labels = [impl_label(i, backend) for i in impls]
        shapes = next(iter(t["rows"].values()))["shapes"] if t["rows"] else ""
        numeric = all(str(r["x"]).isdigit() for r in t["rows"].values())
        lines += [f"## {case} — {MODE_TITLES.get(mode, mode)}", ""]
        if t["title"]:
            lines += [f"{t['title'][0].upper()}{t['title'][1:]}"
                      + ("" if t["valid"] else " (not VALID)") + ".", ""]
        if shapes:
            lines += [f"{shapes}.", ""]
        first = "k" if numeric else "layer"
        lines += ["Median ms (speedup vs XLA):", ""]
        body = []
        for label, r in t["rows"].items():
            cells = {i: t["cells"].get((label, i)) for i in impls}
            timed = {i: c["ms"] for i, c in cells.items() if c}
            best = min(timed, key=timed.get) if timed else None
            base = timed.get(BASELINE)
            row = [r["title"]]
            for i in impls:
                if i not in timed:
                    row.append("—")
                    continue
                s = _fmt(timed[i])
                if base and i != BASELINE:
                    s += f" ({base / timed[i]:.2f}x)"
                row.append(f"**{s}**" if i == best else s)
            row.append(impl_label(best, backend) if best else "—")
            row.append(r["auto"] or "—")
            body.append(row)
        lines += _md_table([first, *labels, "winner", "auto chose"], body)
        lines += ["", "GFLOP/s (% of matmul peak):" if peak else "GFLOP/s:", ""]
        body = []
        for label, r in t["rows"].items():
            row = [r["title"]]
            for i in impls:
                c = t["cells"].get((label, i))
                if not c:
                    row.append("—")
                else:
                    pct = f" ({_fmt_pct(100 * c['gflops'] / peak)})" if peak else ""
                    row.append(_fmt(c["gflops"]) + pct)
            body.append(row)
        lines += _md_table([first, *labels], body)
        lines += ["", "Compile time, s (first call: trace + compile + one run):", ""]
        body = []
        for label, r in t["rows"].items():
            row = [r["title"]]
            for i in impls:
                c = t["cells"].get((label, i))
                row.append("—" if not c or c["compile_s"] is None else f"{c['compile_s']:.2f}")
            body.append(row)
        lines += _md_table([first, *labels], body)
        lines.append("")

    lines += model_report(data)
    lines += ["## Machine", ""]
    info = [
        ("CPU", f"{machine.get('cpu_model', '?')} ({machine.get('cpu_count', '?')} cores, "
                f"{machine.get('cpu_affinity', '?')} usable)"),
        ("backend", f"{backend}: {', '.join(machine.get('devices', [])) or '?'}"),
        ("python", machine.get("python", "?")),
    ]
    for lib in ("jaxconv", "jax", "jaxlib", "numpy", *PEERS):
        if lib in machine:
            info.append((lib, machine[lib] or "not installed"))
    info.append(("XLA_FLAGS", f"`{machine['XLA_FLAGS']}`" if machine.get("XLA_FLAGS") else "(unset)"))
    info.append(("algorithms", ", ".join(machine.get("algorithms", [])) or "?"))
    fitted = machine.get("cost_model_fitted")
    info.append(("auto's choice from", "jaxconv.select_algorithm: the autotune cache, else the "
                 + (f"cost model fitted {fitted}" if fitted else "cost model")))
    if data.get("datetime"):
        info.append(("date", data["datetime"]))
    lines += _md_table(["", ""], info)
    lines.append("")
    return "\n".join(lines)


def model_tables(data: Mapping) -> dict[str, dict]:
    """The models points by mode: ``{"rows": {label: order}, "cells": {(label, impl): {...}}}``
    with ``ms``, ``compile_s`` and ``rounds`` per cell."""
    out: dict[str, dict] = {}
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if info.get("kind") != "model":
            continue
        t = out.setdefault(info["mode"], {"rows": {}, "cells": {}})
        t["rows"].setdefault(info["row"], info.get("order", len(t["rows"])))
        t["cells"][(info["row"], info["impl"])] = {
            "ms": 1e3 * b["stats"]["median"], "compile_s": info.get("compile_s"),
            "rounds": b["stats"].get("rounds")}
    for t in out.values():
        t["rows"] = dict(sorted(t["rows"].items(), key=lambda kv: kv[1]))
    return out


def model_report(data: Mapping) -> list[str]:
    """The ``models`` sections of the report: per mode, median ms of plain Flax, jaxconv and
    torch, jaxconv's speedup over each, and the compile times."""
    lines: list[str] = []
    impls = models_case.IMPLS
    for mode, t in model_tables(data).items():
        lines += [f"## {MODELS} — {models_case.MODE_TITLES.get(mode, mode)}", "",
                  f"{models_case.TITLE[0].upper()}{models_case.TITLE[1:]}. "
                  + ("`nnx.value_and_grad` + SGD-momentum update under `nnx.jit` (torch: "
                     "backward + `optim.SGD.step`), BatchNorm in training mode"
                     if mode == "train" else "BatchNorm in evaluation mode")
                  + "; the same weights in every implementation, plain Flax = the model's "
                  "`nnx.Conv`s on `lax.conv_general_dilated`, jaxconv = "
                  "`jaxconv.conv_general_dilated(algorithm="
                  "\"auto\")`. Interleaved rounds in a fresh random order, median ms "
                  "(jaxconv's speedup: > 1 is jaxconv faster):", ""]
        body = []
        for label in t["rows"]:
            cell = {i: t["cells"].get((label, i)) for i in impls}
            ms = {i: c["ms"] for i, c in cell.items() if c}
            row = [label] + [_fmt(ms[i]) if i in ms else "—" for i in impls]
            for peer in ("flax", "torch"):
                ok = peer in ms and "jaxconv" in ms
                row.append(f"{ms[peer] / ms['jaxconv']:.2f}x" if ok else "—")
            compiles = [f"{cell[i]['compile_s']:.1f}" if cell[i] and cell[i]["compile_s"]
                        is not None else "—" for i in impls]
            body.append([*row, " / ".join(compiles)])
        header = ["network, batch", *(models_case.IMPL_TITLES[i] for i in impls),
                  "jaxconv vs Flax", "jaxconv vs torch",
                  "compile s (" + " / ".join(models_case.IMPL_TITLES[i] for i in impls) + ")"]
        lines += _md_table(header, body)
        lines.append("")
    return lines


def plot_data(data: Mapping) -> dict[str, dict[str, dict[Any, float]]]:
    """``{panel title: {implementation: {x: median ms}}}``: :func:`jaxconv.viz.benchmark.plot_data`
    for the convolution cases, then one panel per ``models`` mode (x: network and batch)."""
    from jaxconv.viz.benchmark import plot_data as _plot_data

    panels = _plot_data(data)
    for mode, t in model_tables(data).items():
        panels[f"{MODELS} ({models_case.MODE_TITLES.get(mode, mode)})"] = {
            models_case.IMPL_TITLES[i]: {label: t["cells"][(label, i)]["ms"]
                                         for label in t["rows"] if (label, i) in t["cells"]}
            for i in models_case.IMPLS if any(impl == i for _, impl in t["cells"])}
    return panels


# --------------------------------------------------------------------------- runner


class _Progress:
    """pytest plugin: a tqdm bar over the collected points (or one line per point)."""

    def __init__(self, stream=sys.stderr):
        self.stream, self.bar, self.total, self.done, self.failed = stream, None, 0, 0, []

    def pytest_collection_finish(self, session):
        self.total = len(session.items)
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=self.total, unit="pt", file=self.stream, dynamic_ncols=True)

    def pytest_runtest_logstart(self, nodeid, location):
        name = nodeid.rsplit("[", 1)[-1].rstrip("]")
        if self.bar is not None:
            self.bar.set_postfix_str(name, refresh=True)
        else:
            print(f"[{self.done + 1}/{self.total}] {name}", file=self.stream, flush=True)

    def pytest_runtest_logreport(self, report):
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            msg = crash.message if crash is not None else str(report.longrepr)
            self.failed.append(f"{report.nodeid}: {msg.splitlines()[0] if msg else ''}")

    def pytest_collectreport(self, report):
        if report.failed:  # with the terminal plugin off, say why nothing runs
            print(f"bench: collecting {report.nodeid} failed:\n{report.longrepr}",
                  file=self.stream)

    def pytest_runtest_logfinish(self, nodeid, location):
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def pytest_sessionfinish(self, session):
        if self.bar is not None:
            self.bar.close()


def run(out: Path, *, selected: Sequence[str], size: str, budget: float | None = None,
        extra: Sequence[str] = ()) -> int:
    """Run the pytest-benchmark suite, then write the report and the plot under ``out``."""
    import pytest

    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "benchmark.json"
    json_path.unlink(missing_ok=True)
    args = [
        "-c", str(ROOT / "pyproject.toml"),
        *sorted(str(p) for p in (ROOT / "benchmarks").glob("test_bench_*.py")),
        f"--rootdir={ROOT}",
        "-p", "no:cacheprovider",
        "-p", "no:terminal",  # the progress plugin reports instead
        "-o", "addopts=--strict-markers --strict-config",  # drop -ra: it needs the terminal
        "-W", "default",  # a library's deprecation warning must not fail a timing
        f"--benchmark-json={json_path}",
        "--benchmark-quiet",
        f"--jaxconv-size={size}",
        f"--jaxconv-cases={','.join(selected)}",
        *([f"--jaxconv-budget={budget}"] if budget else []),
        *([f"--jaxconv-compile-cap={COMPILE_CAP_S[size]}"] if COMPILE_CAP_S[size] else []),
        *extra,
    ]
    progress = _Progress()
    start = time.perf_counter()
    code = pytest.main(args, plugins=[progress])
    wall = time.perf_counter() - start
    if not json_path.is_file() or json_path.stat().st_size == 0:
        print(f"bench: pytest exited with {int(code)} and timed nothing", file=sys.stderr)
        json_path.unlink(missing_ok=True)
        return int(code) or 1
    data = json.loads(json_path.read_text())
    report = build_report(data, wall_s=wall)
    (out / "report.md").write_text(report, encoding="utf-8")
    written = [json_path, out / "report.md"]
    try:
        from jaxconv.viz.benchmark import plot_conv_vs_kernel
    except ImportError as e:
        print(f"bench: no plot ({e}); install matplotlib", file=sys.stderr)
    else:
        fig = plot_conv_vs_kernel(plot_data(data), baseline=impl_label(BASELINE))
        fig.savefig(out / "conv_vs_kernel.png", dpi=120)
        written.append(out / "conv_vs_kernel.png")
    for line in progress.failed:
        print(f"FAILED {line}", file=sys.stderr)
    if data.get("jaxconv", {}).get("skipped"):
        print(f"bench: {len(data['jaxconv']['skipped'])} point(s) skipped: a slow compile "
              "or the time budget (see report.md; --budget 0 lifts the budget)", file=sys.stderr)
    print(f"{len(data.get('benchmarks', []))} points in {wall:.0f} s; wrote "
          + ", ".join(map(str, written)))
    return int(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Time conv2d's algorithms, auto, XLA, torch and SciPy on the benchmark cases; write a report."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/bench.py", description=main.__doc__,
        epilog="Other arguments go to pytest (e.g. -k fft). Same as `nox -s bench -- ARGS`.",
    )
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--size", choices=SIZES, default=None,
                       help="full (default): every problem of the cases; quick: a subset "
                       "(< 2 minutes); tiny: toy shapes, every code path (a smoke test)")
    sizes.add_argument("--quick", action="store_const", const="quick", dest="size",
                       help="same as --size quick")
    sizes.add_argument("--tiny", action="store_const", const="tiny", dest="size",
                       help="same as --size tiny")
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="output folder (default: bench-results)")
    parser.add_argument("--cases", default=",".join(case_names()),
                        help="comma-separated cases (default: all): " + "; ".join(
                            f"{name}: {case.title}" for name, case in CASES.items())
                        + f"; {MODELS}: {models_case.TITLE}")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="skip (and list) the points that would start after this much sweep "
                        f"time (default: {BUDGET_S['full']:.0f}, {BUDGET_S['quick']:.0f} with "
                        "--quick; 0: no limit)")
    args, extra = parser.parse_known_args(argv)
    selected = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(selected) - set(case_names()))
    if unknown or not selected:
        parser.error(f"--cases: unknown case(s) {unknown}; choose from {','.join(case_names())}")
    size = args.size or "full"
    budget = BUDGET_S[size] if args.budget is None else args.budget or None
    return run(args.out, selected=selected, size=size, budget=budget, extra=extra)


if __name__ == "__main__":
    sys.exit(main())
