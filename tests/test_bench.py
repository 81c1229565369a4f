"""The benchmark report, plot and sweep (``jaxconv.bench``), on synthetic data and tiny sizes.

Timings are never asserted: only the structure of what the sweep writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxconv import bench
from jaxconv.conv import ConvConfig, algorithms

ROOT = Path(__file__).resolve().parent.parent


def _point(case, mode, row, impl, ms, *, flops=1e9, compile_s=0.5, auto=None):
    info = {
        "kind": "conv", "case": case, "mode": mode, "row": row, "impl": impl,
        "row_title": f"k={row}" if row.isdigit() else f"{row} 5x5",
        "x": int(row) if row.isdigit() else row, "order": int(row) if row.isdigit() else 0,
        "flops": flops, "compile_s": compile_s, "shapes": f"{case} shapes",
    }
    if auto:
        info["auto_choice"] = auto
    return {"group": f"{case} {row} {mode}", "extra_info": info,
            "stats": {"median": ms / 1e3, "rounds": 3}}


@pytest.fixture
def data():
    """A small pytest-benchmark JSON as the suite writes it: 10 GFLOP/s peak, scipy missing."""
    return {
        "benchmarks": [
            _point("article", "fwd", "3", "lax", 10.0),
            _point("article", "fwd", "3", "fft", 5.0),  # 2x faster than XLA: the winner
            _point("article", "fwd", "3", "auto", 6.0, auto="fft"),
            _point("article", "fwd", "3", "torch", 20.0),
            _point("article", "fwd", "15", "lax", 100.0),
            _point("article", "fwd", "15", "torch", 50.0),  # fft failed at k=15: no entry
            _point("article", "fwd", "15", "auto", 120.0, auto="direct"),
            _point("layer", "fwd+bwd", "3", "lax", 40.0, flops=3e9),
            _point("layer", "fwd+bwd", "3", "direct", 50.0, flops=3e9, compile_s=12.0),
            {"group": "matmul", "extra_info": {"kind": "matmul", "flops": 2e9, "n": 2048},
             "stats": {"median": 0.2}},
        ],
        "machine_info": {"jaxconv": {"backend": "cpu", "cpu_model": "Test CPU", "cpu_count": 2,
                                     "jax": "0.0", "torch": "2.0", "scipy": None}},
        "jaxconv": {"missing_peers": {"scipy": "article"}, "budget_s": 540,
                    "skipped": [{"id": "lenet-C3-fwd+bwd-im2col", "reason": "budget spent"},
                                {"id": "lenet-C3-fwd-im2col", "reason": "budget spent"}],
                    "failures": [{"id": "article-15-fwd-fft", "message": "differs from XLA"}]},
        "datetime": "2026-01-01T00:00:00",
    }


def _table_row(report: str, section: str, first_cell: str) -> str:
    """The first markdown table row starting with ``first_cell`` after heading ``section``."""
    part = report.split(section, 1)[1]
    return next(line for line in part.splitlines() if line.startswith(f"| {first_cell} |"))


def test_conv_flops_known_answer():
    # article, k=3: 2 * N * Ho * Wo * O * kh * kw * C = 2 * 1 * 318 * 398 * 3 * 3 * 3 * 3
    assert bench.conv_flops((1, 320, 400, 3), (3, 3, 3, 3)) == 2 * 318 * 398 * 81
    assert bench.conv_flops((8, 64, 64, 32), (5, 5, 32, 32), groups=2) == 8 * 60 * 60 * 32 * 25 * 32


def test_report_tables_ratio_winner_and_auto(data):
    bench.annotate(data)
    report = bench.build_report(data, wall_s=12.3)
    assert "## article — forward" in report
    assert "## layer — forward + backward" in report
    header = _table_row(report, "## article — forward", "k")
    assert header == "| k | XLA lax.conv | fft | auto | torch | winner | auto chose |"
    row = _table_row(report, "## article — forward", "k=3")
    assert row == "| k=3 | 10 | **5 (2.00x)** | 6 (1.67x) | 20 (0.50x) | fft | fft |"
    row = _table_row(report, "## article — forward", "k=15")
    assert row == "| k=15 | 100 | — | 120 (0.83x) | **50 (2.00x)** | torch | direct |"
    # GFLOP/s and % of the 10 GFLOP/s peak: 1e9 flops in 5 ms = 200 GFLOP/s = 2000 %.
    assert "| k=3 | 100 (1000%) | 200 (2000%) |" in report
    assert "**10.0 GFLOP/s**" in report
    assert "| k=3 | **40** | 50 (0.80x) | XLA lax.conv | — |" in report
    assert "Compile time" in report and "| k=3 | 0.50 | 0.50 |" in report
    assert "Compiles over 10 s: direct layer k=3 fwd+bwd (12 s)." in report
    assert "Sweep wall time: 12 s" in report


def test_report_lists_missing_peers_failures_and_machine(data):
    report = bench.build_report(data)
    assert "Missing peers" in report and "**scipy** (would time: article)" in report
    assert "`article-15-fwd-fft`: differs from XLA" in report
    assert "**2 point(s) skipped**" in report
    assert "- budget spent: `lenet-C3-fwd+bwd-im2col`, `lenet-C3-fwd-im2col`" in report
    assert "| CPU | Test CPU (2 cores" in report
    assert "| scipy | not installed |" in report


def test_annotate_adds_gflops_and_percent_of_peak(data):
    bench.annotate(data)
    info = data["benchmarks"][0]["extra_info"]
    assert info["gflops"] == pytest.approx(100.0)
    assert info["pct_peak"] == pytest.approx(1000.0)
    assert data["jaxconv"]["matmul_gflops"] == pytest.approx(10.0)


def test_report_without_peak_or_points():
    report = bench.build_report({"benchmarks": []})
    assert "not measured" in report and "## Machine" in report


def test_plot_one_line_per_implementation(data):
    pytest.importorskip("matplotlib")
    from jaxconv.viz.benchmark import plot_conv_vs_kernel

    panels = bench.plot_data(data)
    assert list(panels) == ["article (forward)", "layer (fwd+bwd)"]
    assert panels["article (forward)"]["fft"] == {3: 5.0}
    fig = plot_conv_vs_kernel(panels, baseline="XLA lax.conv")
    assert len(fig.axes) == 2
    article, layer = fig.axes
    assert [line.get_label() for line in article.get_lines()] == ["XLA lax.conv", "fft", "auto", "torch"]
    assert len(layer.get_lines()) == 2
    assert article.get_yscale() == "log"
    assert list(article.get_lines()[0].get_xdata()) == [3, 15]


def test_plot_into_given_axes_and_categorical_rows():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from jaxconv.viz.benchmark import plot_conv_vs_kernel

    fig = Figure()
    ax = fig.add_subplot()
    out = plot_conv_vs_kernel({"lenet": {"a": {"C1": 1.0, "C3": 2.0}, "b": {"C1": 3.0}}}, ax=ax)
    assert out is fig and len(ax.get_lines()) == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["C1", "C3"]
    with pytest.raises(ValueError, match="plot_conv_vs_kernel: got 1 Axes for 2 panels"):
        plot_conv_vs_kernel({"a": {"x": {1: 1.0}}, "b": {"x": {1: 1.0}}}, ax=ax)
    with pytest.raises(ValueError, match="plot_conv_vs_kernel: results is empty"):
        plot_conv_vs_kernel({})


def test_points_cover_registered_algorithms_and_peers():
    pts = bench.points(size="full")
    ids = {p.id for p in pts}
    assert len(ids) == len(pts)
    for case in bench.cases("full").values():
        for row in case.rows:
            serving = [a.name for a in algorithms() if a.unsupported_reason(
                row.x_shape, row.kernel_shape, "float32", ConvConfig()) is None]
            for mode in case.modes:
                impls = {p.impl for p in pts if p.row == row and p.mode == mode}
                assert {"lax", "auto", *serving} <= impls
    assert {p.row.label for p in pts if p.row.case == "article"} == {
        "1", "3", "5", "7", "10", "15", "21", "31"}
    assert {p.row.label for p in pts if p.row.case == "layer"} == {"1", "3", "5", "7", "11", "15"}
    assert {p.mode for p in pts if p.impl == "scipy"} <= {"fwd"}
    assert {p.row.case for p in pts if p.impl == "scipy"} <= {"article"}
    assert {p.mode for p in pts if p.row.case == "article"} == {"fwd"}
    with pytest.raises(ValueError, match="unknown case"):
        bench.points(["nope"])


def test_missing_peers_listed(monkeypatch):
    monkeypatch.setattr(bench, "peer_versions", lambda: {"torch": None, "scipy": "1.0"})
    assert bench.missing_peers(["article", "layer"]) == {"torch": "article, layer"}
    assert not any(p.impl == "torch" for p in bench.points(["layer"], size="tiny"))


def test_bench_tiny_sweep_writes_json_report_and_plot(tmp_path):
    """``python -m jaxconv.bench`` end to end at tiny sizes (a smoke test, not a timing)."""
    pytest.importorskip("pytest_benchmark")
    pytest.importorskip("matplotlib")
    # The sweep is a pytest run of its own: drop pytest-xdist's worker variables (set when this
    # suite runs with -n), under which pytest-benchmark disables itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env.update(MPLBACKEND="Agg", JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    proc = subprocess.run(
        [sys.executable, "-m", "jaxconv.bench", "--tiny", "--cases", "article,layer",
         "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "benchmark.json").read_text())
    kinds = {b["extra_info"]["kind"] for b in data["benchmarks"]}
    assert kinds == {"conv", "matmul"}
    assert all(b["extra_info"]["compile_s"] > 0 for b in data["benchmarks"])
    assert {b["extra_info"]["impl"] for b in data["benchmarks"] if b["extra_info"]["kind"] == "conv"} >= {
        "lax", "direct", "auto"}
    report = (tmp_path / "report.md").read_text()
    assert "## article — forward" in report and "## layer — forward + backward" in report
    assert "| k=3 | " in report
    assert "## lenet" not in report
    assert (tmp_path / "conv_vs_kernel.png").stat().st_size > 0
