"""``python -m jaxconv.bench`` / ``jaxconv bench``: the convolution sweep, its report and plot.

The timed code lives in ``benchmarks/`` (pytest-benchmark; run from a clone of the repository).
This module holds what the suite and the report share — the cases of DESIGN.md, the points of a
sweep, the FLOP count, the machine description — plus the report builder and ``main(argv)``,
which runs the suite in-process with a progress bar and writes under ``--out``
(default ``bench-results/``):

- ``benchmark.json``: pytest-benchmark's JSON, plus a top-level ``"jaxconv"`` entry (missing
  peers, failed points, points skipped after the time budget, the matmul peak) and GFLOP/s in
  every point's ``extra_info``;
- ``report.md``: per case and pass, kernel size x implementation tables (median ms, speedup over
  XLA's ``lax.conv_general_dilated``, GFLOP/s and % of the matmul peak, compile time), the winner
  per row and the algorithm ``conv2d(..., algorithm="auto")`` chose; machine information;
- ``conv_vs_kernel.png``: median time against kernel size, one line per implementation, one panel
  per case and pass (:func:`jaxconv.viz.benchmark.plot_conv_vs_kernel`).

Nothing here imports torch, scipy or matplotlib at module level.
"""

from __future__ import annotations

import argparse
import dataclasses
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

BASELINE = "lax"
PEERS = ("torch", "scipy")
MODES = ("fwd", "fwd+bwd")
MODE_TITLES = {"fwd": "forward", "fwd+bwd": "forward + backward (grad w.r.t. x and kernel)"}
SIZES = ("full", "quick", "tiny")
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


def rounds_for(estimate_s: float, size: str) -> int:
    """Timed rounds for a call that takes ``estimate_s``: the size's time budget, clamped."""
    t = TIMING[size]
    return max(t["min_rounds"], min(t["max_rounds"], math.ceil(t["max_time"] / max(estimate_s, 1e-9))))


@dataclasses.dataclass(frozen=True)
class Row:
    """One convolution shape of a case: NHWC ``x_shape`` and HWIO ``kernel_shape``, VALID, stride 1."""

    case: str
    label: str  # "1", "3", ... (kernel size) or "C1", "C3" (LeNet layer)
    x_shape: tuple[int, int, int, int]
    kernel_shape: tuple[int, int, int, int]

    @property
    def k(self) -> int:
        return self.kernel_shape[0]

    @property
    def xvalue(self) -> int | str:
        """The plot's x coordinate: the kernel size, or the layer name when all share one size."""
        return int(self.label) if self.label.isdigit() else self.label

    @property
    def flops(self) -> int:
        return conv_flops(self.x_shape, self.kernel_shape)


@dataclasses.dataclass(frozen=True)
class Case:
    """A benchmark case of DESIGN.md: its rows, passes and the peers that apply to it."""

    name: str
    modes: tuple[str, ...]
    peers: tuple[str, ...]
    rows: tuple[Row, ...]


@dataclasses.dataclass(frozen=True)
class Point:
    """One benchmark: a row of a case, a pass (``fwd`` / ``fwd+bwd``) and an implementation."""

    row: Row
    mode: str
    impl: str  # "lax", a registered algorithm name, "auto", "torch" or "scipy"

    @property
    def id(self) -> str:
        return f"{self.row.case}-{self.row.label}-{self.mode}-{self.impl}"

    @property
    def group(self) -> str:
        return f"{self.row.case} {row_title(self.row)} {self.mode}"

    @property
    def flops(self) -> int:
        return self.row.flops * (3 if self.mode == "fwd+bwd" else 1)


def conv_flops(x_shape, kernel_shape, *, stride=(1, 1), groups: int = 1) -> int:
    """``2 * N * Ho * Wo * O * kh * kw * C / groups`` for a VALID conv of NHWC x, HWIO kernel."""
    n, h, w, c = x_shape
    kh, kw, _, o = kernel_shape
    ho, wo = (h - kh) // stride[0] + 1, (w - kw) // stride[1] + 1
    return 2 * n * ho * wo * o * kh * kw * c // groups


def case_shapes(case: Case) -> str:
    """The shapes of a case in words, e.g. ``x 1x320x400x3 (NHWC) → 3 channels, k x k kernels``."""
    dims = lambda shape: "x".join(map(str, shape))  # noqa: E731
    if len({r.x_shape for r in case.rows}) == 1:
        r = case.rows[0]
        return f"x {dims(r.x_shape)} (NHWC) → {r.kernel_shape[3]} channels, k x k kernels (HWIO)"
    return "; ".join(
        f"{r.label}: x {dims(r.x_shape)} (NHWC) → {r.kernel_shape[3]} channels, "
        f"{r.k}x{r.k} kernel" for r in case.rows
    )


def row_title(row: Row) -> str:
    return f"k={row.label}" if row.label.isdigit() else f"{row.label} {row.k}x{row.k}"


def _sized_rows(case, x_shape, out, ks):
    return tuple(Row(case, str(k), x_shape, (k, k, x_shape[3], out)) for k in ks)


def cases(size: str = "full") -> dict[str, Case]:
    """The benchmark cases of DESIGN.md at ``size`` ``"full"``, ``"quick"`` (a subset) or ``"tiny"``."""
    if size not in SIZES:
        raise ValueError(f"cases: size must be one of {SIZES}, got {size!r}")
    if size == "tiny":  # the smoke test's sizes: every code path, milliseconds each
        article = _sized_rows("article", (1, 24, 30, 3), 3, (3,))
        layer = _sized_rows("layer", (2, 10, 10, 4), 4, (3,))
        lenet = ((4, 12, 12, 1), 6), ((4, 8, 8, 6), 16)
    else:
        article_ks = (1, 3, 5, 7, 10, 15, 21, 31) if size == "full" else (3, 15)
        layer_ks = (1, 3, 5, 7, 11, 15) if size == "full" else (3,)
        article = _sized_rows("article", (1, 320, 400, 3), 3, article_ks)
        layer = _sized_rows("layer", (8, 64, 64, 32), 32, layer_ks)
        lenet = ((256, 32, 32, 1), 6), ((256, 14, 14, 6), 16)
    lenet_rows = tuple(
        Row("lenet", name, x, (5, 5, x[3], o)) for name, (x, o) in zip(("C1", "C3"), lenet, strict=True)
    )
    return {
        "article": Case("article", ("fwd",), ("torch", "scipy"), article),
        # tiny: the backward pass only, which also runs the forward (the smoke test's budget)
        "layer": Case("layer", ("fwd+bwd",) if size == "tiny" else MODES, ("torch",), layer),
        "lenet": Case("lenet", ("fwd", "fwd+bwd"), ("torch",), lenet_rows),
    }


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
    from jaxconv.conv import ConvConfig, algorithms

    def serves(a) -> bool:
        try:
            return a.unsupported_reason(row.x_shape, row.kernel_shape, "float32", ConvConfig()) is None
        except Exception:  # a broken check: keep the point, so that it fails visibly
            return True

    return [a.name for a in algorithms() if serves(a)]


def points(selected: Sequence[str] | None = None, size: str = "full") -> list[Point]:
    """Every point of the sweep: rows x passes x (XLA, jaxconv algorithms, auto, peers)."""
    all_cases = cases(size)
    selected = list(all_cases) if selected is None else list(selected)
    unknown = [c for c in selected if c not in all_cases]
    if unknown:
        raise ValueError(f"points: unknown case(s) {unknown}; expected some of {list(all_cases)}")
    installed = peer_versions()
    out = []
    for case in (all_cases[c] for c in selected):
        for mode in case.modes:
            for row in case.rows:
                impls = [BASELINE, *jaxconv_algorithms(row), "auto"]
                impls += [p for p in case.peers if installed[p] and (p == "torch" or mode == "fwd")]
                out += [Point(row, mode, impl) for impl in impls]
    return out


def missing_peers(selected: Iterable[str] | None = None, size: str = "full") -> dict[str, str]:
    """Peers the selected cases would time but that are not installed: name -> what it would time."""
    all_cases = cases(size)
    installed = peer_versions()
    wanted: dict[str, list[str]] = {}
    for name in selected or all_cases:
        for peer in all_cases[name].peers:
            wanted.setdefault(peer, []).append(name)
    return {p: ", ".join(c) for p, c in wanted.items() if not installed[p]}


def auto_choice(row: Row) -> tuple[str, dict[str, float] | None]:
    """The algorithm ``conv2d(..., algorithm="auto")`` picks for ``row`` and its cost estimates."""
    import jaxconv

    select = getattr(jaxconv, "select_algorithm", None)
    if select is None:  # no selector yet: auto resolves to XLA's conv
        return "direct", None
    try:
        sel = select(row.x_shape, row.kernel_shape, dtype="float32", stride=1, padding="VALID")
    except Exception as e:
        return f"? ({type(e).__name__})", None
    costs = getattr(sel, "costs", None)
    try:
        costs = {str(k): float(v) for k, v in dict(costs).items()} if costs is not None else None
    except (TypeError, ValueError):
        costs = None
    source = getattr(sel, "source", None)
    return str(sel.algorithm) + (f" ({source})" if source == "autotune" else ""), costs


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
    """CPU model, cores, library versions, JAX backend and devices, XLA_FLAGS."""
    import jax
    import jaxlib

    import jaxconv

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count()
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
        "backend": jax.default_backend(),
        "devices": [f"{d.device_kind} ({d.platform})" for d in jax.devices()],
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "algorithms": [a.name for a in importlib.import_module("jaxconv.conv").algorithms()],
        "select_algorithm": hasattr(jaxconv, "select_algorithm"),
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
    """
    out: dict[tuple[str, str], dict] = {}
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if info.get("kind") != "conv":
            continue
        t = out.setdefault((info["case"], info["mode"]), {"rows": {}, "impls": [], "cells": {}})
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
        "VALID, stride 1, float32. Median of the timed rounds (compile and a checked warm-up "
        "call outside them). Speedup = XLA time / time (> 1 is faster than "
        "`jax.lax.conv_general_dilated`). GFLOP/s counts 2·N·Ho·Wo·O·kh·kw·C per forward pass, "
        "3x that for forward + backward. **Bold** = fastest in the row."
    )
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
    info.append(("auto's choice from", "jaxconv.select_algorithm" if machine.get("select_algorithm")
                 else "no selector yet (auto = direct)"))
    if data.get("datetime"):
        info.append(("date", data["datetime"]))
    lines += _md_table(["", ""], info)
    lines.append("")
    return "\n".join(lines)


def plot_data(data: Mapping) -> dict[str, dict[str, dict[Any, float]]]:
    """``{panel title: {implementation: {x: median ms}}}`` for :func:`plot_conv_vs_kernel`."""
    backend = data.get("machine_info", {}).get("jaxconv", {}).get("backend", "cpu")
    out: dict[str, dict[str, dict[Any, float]]] = {}
    for (case, mode), t in tables(data).items():
        panel = out.setdefault(f"{case} ({'fwd+bwd' if mode == 'fwd+bwd' else 'forward'})", {})
        for impl in t["impls"]:
            series = {r["x"]: t["cells"][(label, impl)]["ms"]
                      for label, r in t["rows"].items() if (label, impl) in t["cells"]}
            panel[impl_label(impl, backend)] = series
    return out


# --------------------------------------------------------------------------- runner


def _suite_dir() -> Path | None:
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (root / "benchmarks" / "test_bench_conv.py").is_file():
            return root
    return None


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
            print(f"jaxconv bench: collecting {report.nodeid} failed:\n{report.longrepr}",
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

    root = _suite_dir()
    if root is None:
        print("jaxconv bench: the benchmarks/ suite is not here; run it from a clone of the "
              "repository (nox -s bench)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "benchmark.json"
    json_path.unlink(missing_ok=True)
    args = [
        *sorted(str(p) for p in (root / "benchmarks").glob("test_bench_*.py")),
        f"--rootdir={root}",
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
    if (root / "pyproject.toml").is_file():
        args[:0] = ["-c", str(root / "pyproject.toml")]
    progress = _Progress()
    start = time.perf_counter()
    code = pytest.main(args, plugins=[progress])
    wall = time.perf_counter() - start
    if not json_path.is_file() or json_path.stat().st_size == 0:
        print(f"jaxconv bench: pytest exited with {int(code)} and timed nothing", file=sys.stderr)
        json_path.unlink(missing_ok=True)
        return int(code) or 1
    data = json.loads(json_path.read_text())
    report = build_report(data, wall_s=wall)
    (out / "report.md").write_text(report, encoding="utf-8")
    written = [json_path, out / "report.md"]
    try:
        from jaxconv.viz.benchmark import plot_conv_vs_kernel
    except ImportError as e:
        print(f"jaxconv bench: no plot ({e}); install matplotlib", file=sys.stderr)
    else:
        fig = plot_conv_vs_kernel(plot_data(data), baseline=impl_label(BASELINE))
        fig.savefig(out / "conv_vs_kernel.png", dpi=120)
        written.append(out / "conv_vs_kernel.png")
    for line in progress.failed:
        print(f"FAILED {line}", file=sys.stderr)
    if data.get("jaxconv", {}).get("skipped"):
        print(f"jaxconv bench: {len(data['jaxconv']['skipped'])} point(s) skipped: a slow compile "
              "or the time budget (see report.md; --budget 0 lifts the budget)", file=sys.stderr)
    print(f"{len(data.get('benchmarks', []))} points in {wall:.0f} s; wrote "
          + ", ".join(map(str, written)))
    return int(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Time conv2d's algorithms, XLA, torch and SciPy across kernel sizes; write a report."""
    parser = argparse.ArgumentParser(
        prog="jaxconv bench", description=main.__doc__,
        epilog="Other arguments go to pytest (e.g. -k fft). Same as `nox -s bench -- ARGS`.",
    )
    parser.add_argument("--quick", action="store_true", help="a small subset (< 2 minutes)")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke test
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="output folder (default: bench-results)")
    parser.add_argument("--cases", default=",".join(cases()),
                        help=f"comma-separated cases (default: {','.join(cases())})")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="skip (and list) the points that would start after this much sweep "
                        f"time (default: {BUDGET_S['full']:.0f}, {BUDGET_S['quick']:.0f} with "
                        "--quick; 0: no limit)")
    args, extra = parser.parse_known_args(argv)
    selected = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(selected) - set(cases()))
    if unknown or not selected:
        parser.error(f"--cases: unknown case(s) {unknown}; choose from {','.join(cases())}")
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    budget = BUDGET_S[size] if args.budget is None else args.budget or None
    return run(args.out, selected=selected, size=size, budget=budget, extra=extra)


if __name__ == "__main__":
    sys.exit(main())
