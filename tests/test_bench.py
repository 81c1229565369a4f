"""The benchmark report, plot and sweep (``benchmarks/bench.py``), on synthetic data and tiny sizes.

Timings are never asserted: only the structure of what the sweep writes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import full_only

from jaxconv.convolution import algorithms
from jaxconv.convolution.cases import CASES, Problem

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # the runner is a script of the clone, not the package
import bench  # noqa: E402


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


def test_conv_flops_counts_padding_stride_and_groups():
    # SAME, stride 2: 64x64 -> 32x32; depthwise: groups = C, one input channel per output
    assert bench.conv_flops((8, 64, 64, 32), (3, 3, 32, 64), stride=2, padding="SAME") == (
        2 * 8 * 32 * 32 * 64 * 9 * 32)
    assert bench.conv_flops((8, 32, 32, 96), (3, 3, 1, 96), padding="SAME", groups=96) == (
        2 * 8 * 32 * 32 * 96 * 9)
    assert bench.conv_flops((1, 10, 10, 1), (3, 3, 1, 1), dilation=2) == 2 * 6 * 6 * 9
    for case in bench.cases("full").values():
        for row in case.rows:
            assert row.flops == row.problem.flops()


def test_cases_come_from_jaxconv_conv_cases():
    for size, pick in (("full", lambda c: c.problems), ("tiny", lambda c: c.tiny),
                       ("quick", lambda c: tuple(p for p in c.problems if p.label in c.quick))):
        built = bench.cases(size)
        assert list(built) == list(CASES)
        for name, case in CASES.items():
            assert tuple(r.problem for r in built[name].rows) == pick(case)
            assert built[name].title == case.title


def test_cnn_case_rows_passes_and_peers(monkeypatch):
    monkeypatch.setattr(bench, "peer_versions", lambda: {"torch": "2.0", "scipy": "1.0"})
    cnn = bench.cases("full")["cnn"]
    assert not cnn.valid and bench.cases("full")["article"].valid
    assert cnn.modes == ("fwd", "fwd+bwd") and bench.cases("tiny")["cnn"].modes == cnn.modes
    pts = bench.points(["cnn"])
    assert len({p.id for p in pts}) == len(pts)
    assert {p.mode for p in pts} == {"fwd", "fwd+bwd"}
    assert "scipy" not in {p.impl for p in pts}
    for row in cnn.rows:
        for mode in cnn.modes:
            assert {"lax", "direct", "auto", "torch"} <= {
                p.impl for p in pts if p.row == row and p.mode == mode}
    assert [bench.row_title(r) for r in cnn.rows] == [p.label for p in CASES["cnn"].problems]
    strided = next(r for r in cnn.rows if r.label == "3x3/2 32→64")
    assert strided.config.padding == ((0, 1), (0, 1)) and strided.config.stride == (2, 2)
    assert strided.slug == "3x3s2_32to64"
    assert strided.xvalue == "3x3/2 32→64"
    choice, _ = bench.auto_choice(strided)
    assert choice.split()[0] in {a.name for a in algorithms()}
    assert "padding SAME, stride 2" in bench.case_shapes(cnn)
    assert bench.case_shapes(bench.cases("full")["layer"]).endswith("VALID, stride 1")


def test_report_says_which_cases_are_valid_and_labels_cnn_rows(data):
    pytest.importorskip("matplotlib")
    for impl, ms in (("lax", 4.0), ("direct", 4.0), ("torch", 2.0)):
        p = _point("cnn", "fwd", "3x3/2 32→64", impl, ms)
        p["extra_info"].update(row_title="3x3/2 32→64", x="3x3/2 32→64", valid=False,
                               case_title="the layers of modern CNNs: SAME padding")
        data["benchmarks"].append(p)
    for b in data["benchmarks"]:
        if b["extra_info"].get("case") == "article":
            b["extra_info"].update(valid=True, case_title="the cat, VALID")
    report = bench.build_report(data)
    assert "VALID, stride 1 (the article's convolutions): **article**, **layer**." in report
    assert "Not VALID (padding, strides, groups or dilation, per row below): **cnn**." in report
    assert "## cnn — forward" in report
    assert "The layers of modern CNNs: SAME padding (not VALID)." in report
    assert _table_row(report, "## cnn — forward", "layer").startswith("| layer | XLA lax.conv |")
    assert _table_row(report, "## cnn — forward", "3x3/2 32→64").endswith("| torch | — |")
    panels = bench.plot_data(data)
    assert panels["cnn (forward)"]["torch"] == {"3x3/2 32→64": 2.0}
    from jaxconv.viz.benchmark import plot_conv_vs_kernel

    fig = plot_conv_vs_kernel(panels, baseline="XLA lax.conv")
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == ["3x3/2 32→64"]


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


def test_plot_gives_every_implementation_its_own_colour():
    """A sweep draws more implementations than the default colour cycle holds (10)."""
    pytest.importorskip("matplotlib")
    from jaxconv.viz.benchmark import plot_conv_vs_kernel

    impls = ["XLA lax.conv", *(f"alg{i}" for i in range(11)), "auto", "torch"]
    fig = plot_conv_vs_kernel({"case": {name: {3: 1.0 + i} for i, name in enumerate(impls)}},
                              baseline="XLA lax.conv")
    colors = [str(line.get_color()) for line in fig.axes[0].get_lines()]
    assert len(set(colors)) == len(impls)


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
                row.x_shape, row.kernel_shape, "float32", row.config) is None]
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


@full_only  # ~50 s in a child process; report, plot and points are tested above on fakes
def test_bench_tiny_sweep_writes_json_report_and_plot(tmp_path):
    """``python benchmarks/bench.py`` end to end at tiny sizes (a smoke test, not a timing)."""
    pytest.importorskip("pytest_benchmark")
    pytest.importorskip("matplotlib")
    # The sweep is a pytest run of its own: drop pytest-xdist's worker variables (set when this
    # suite runs with -n), under which pytest-benchmark disables itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env.update(MPLBACKEND="Agg", JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench.py", "--tiny", "--cases", "article,layer,cnn",
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
    # SAME padding and depthwise groups, through every implementation and torch
    assert "## cnn — forward" in report and "## cnn — forward + backward" in report
    assert "| 3x3 8 | " in report and "| dw3x3 8 | " in report
    assert "**cnn**" in report.split("## article", 1)[0]  # listed as not VALID
    assert not data["jaxconv"]["failures"]
    assert (tmp_path / "conv_vs_kernel.png").stat().st_size > 0


def test_signal_case_is_one_dimensional_and_auto_picks_fft():
    signal = bench.cases("full")["signal"]
    assert signal.modes == ("fwd",) and signal.valid
    (row,) = signal.rows
    assert row.x_shape == (1, 65536, 1) and row.kernel_shape == (4097, 1, 1)
    assert row.flops == 2 * (65536 - 4097 + 1) * 4097
    impls = {p.impl for p in bench.points(["signal"])}
    assert {"lax", "direct", "fft", "auto"} <= impls and "im2col" not in impls
    assert bench.auto_choice(row)[0] == "fft"


# ------------------------------------------------------------------------------- models case


def _model_point(row, mode, impl, ms, compile_s=2.0, order=0):
    return {"group": f"models {row} {mode}", "stats": {"median": ms / 1e3, "rounds": 7},
            "extra_info": {"kind": "model", "case": "models", "row": row, "order": order,
                           "mode": mode, "impl": impl, "compile_s": compile_s}}


def test_models_report_and_plot(data):
    pytest.importorskip("matplotlib")
    for impl, ms in (("flax", 952.0), ("jaxconv", 154.0), ("torch", 124.0)):
        data["benchmarks"].append(_model_point("MobileNetV2 b16", "train", impl, ms, order=1))
        data["benchmarks"].append(_model_point("ResNet-18 b16", "train", impl, ms / 2, order=0))
    data["benchmarks"].append(_model_point("ResNet-18 b16", "infer", "jaxconv", 30.0, compile_s=4.0))
    report = bench.build_report(data)
    assert "## models — training step" in report and "## models — inference" in report
    header = _table_row(report, "## models — training step", "network, batch")
    assert header == ("| network, batch | plain Flax | jaxconv | torch | jaxconv vs Flax | "
                      "jaxconv vs torch | compile s (plain Flax / jaxconv / torch) |")
    rows = report.split("## models — training step", 1)[1].split("## models — inference")[0]
    assert rows.index("| ResNet-18 b16 |") < rows.index("| MobileNetV2 b16 |")  # sweep order
    assert _table_row(report, "## models — training step", "MobileNetV2 b16") == (
        "| MobileNetV2 b16 | 952 | 154 | 124 | 6.18x | 0.81x | 2.0 / 2.0 / 2.0 |")
    assert _table_row(report, "## models — inference", "ResNet-18 b16") == (
        "| ResNet-18 b16 | — | 30 | — | — | — | — / 4.0 / — |")
    assert report.index("## models") < report.index("## Machine")
    panels = bench.plot_data(data)
    assert panels["models (training step)"] == {
        "plain Flax": {"ResNet-18 b16": 476.0, "MobileNetV2 b16": 952.0},
        "jaxconv": {"ResNet-18 b16": 77.0, "MobileNetV2 b16": 154.0},
        "torch": {"ResNet-18 b16": 62.0, "MobileNetV2 b16": 124.0}}
    assert panels["models (inference)"] == {"jaxconv": {"ResNet-18 b16": 30.0}}
    assert "article (forward)" in panels  # the convolution cases' panels are kept
    from jaxconv.viz.benchmark import plot_conv_vs_kernel

    fig = plot_conv_vs_kernel(panels, baseline="plain Flax")
    assert len(fig.axes) == len(panels)


def test_models_case_points_and_names():
    import models_case

    assert bench.case_names() == [*bench.cases(), "models"]
    assert bench.points(["models"]) == [] and bench.points(["models", "layer"]) == bench.points(["layer"])
    full = models_case.points("full")
    assert [(p.row.label, p.mode) for p in full[:4]] == [
        ("ResNet-18 b16", "train"), ("ResNet-18 b64", "train"), ("MobileNetV2 b16", "train"),
        ("MobileNetV2 b64", "train")]
    assert {p.mode for p in full} == {"train", "infer"} and len({p.id for p in full}) == 8
    assert models_case.ROWS["tiny"][1].label == "MobileNetV2 width 0.1 8x8 b2"


def test_models_case_runs_every_implementation_on_the_same_network():
    """The smallest ResNet's inference: plain Flax, jaxconv and (when installed) torch agree,
    and the interleaved timing gives each its rounds."""
    import models_case

    row = models_case.ROWS["tiny"][0]
    impls = [i for i in models_case.IMPLS if i != "torch" or models_case.torch_installed()]
    fns = models_case.calls(row, "infer", impls)
    compile_s = models_case.compile_and_check(fns)
    assert set(compile_s) == set(impls) and all(s > 0 for s in compile_s.values())
    times = models_case.interleaved(fns, 2)
    assert {k: len(v) for k, v in times.items()} == dict.fromkeys(impls, 2)
    assert models_case.summary(times)["flax"]["rounds"] == 2
    broken = dict(fns, jaxconv=lambda: fns["flax"]() + 1.0)
    with pytest.raises(AssertionError, match=r"jaxconv: the first result differs from plain Flax's"):
        models_case.compile_and_check(broken)


@pytest.mark.slow
def test_bench_tiny_models_sweep(tmp_path):
    """``python benchmarks/bench.py --tiny --cases models`` end to end (minutes: 8 networks
    compile; in the slow tier)."""
    pytest.importorskip("pytest_benchmark")
    pytest.importorskip("matplotlib")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env.update(MPLBACKEND="Agg", JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench.py", "--tiny", "--cases", "models", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "benchmark.json").read_text())
    models = [b["extra_info"] for b in data["benchmarks"] if b["extra_info"]["kind"] == "model"]
    assert {(m["row"], m["mode"]) for m in models} == {
        (r.label, mode) for r in __import__("models_case").ROWS["tiny"] for mode in ("train", "infer")}
    assert {m["impl"] for m in models} >= {"flax", "jaxconv"}
    assert all(m["compile_s"] > 0 for m in models) and not data["jaxconv"]["failures"]
    report = (tmp_path / "report.md").read_text()
    assert "## models — training step" in report and "| ResNet-18 width 2 8x8 b2 |" in report
    assert (tmp_path / "conv_vs_kernel.png").stat().st_size > 0


def test_heldout_summary_known_answer(tmp_path):
    """``benchmarks/heldout.py``'s table on two synthetic rows: auto's own call and its pick's
    timing over the fastest algorithm's, per family and overall; the plot is written."""
    import heldout

    rows = [
        {"label": "cnn a", "family": "cnn", "picked": "mec", "fastest": "direct", "skipped": [],
         "ms": {"direct": 1.0, "mec": 2.0, "auto": 4.0, "xla": 1.0}},
        {"label": "filter b", "family": "filter", "picked": "fft", "fastest": "fft",
         "skipped": [], "ms": {"fft": 1.0, "depthwise": 9.0, "auto": 1.0, "xla": 10.0}},
    ]
    text = heldout.summarize(rows)
    lines = {line.split()[0]: line.split() for line in text.splitlines()[1:4]}
    assert lines["cnn"][2:5] == ["4.000", "4.00", "4.00"] and lines["cnn"][5] == "2.000"
    assert lines["filter"][2] == "1.000" and lines["filter"][5] == "1.000"
    assert lines["all"][2] == "2.000" and lines["all"][7] == "2.00"  # gm of 4 and 1; worst pick
    assert "auto below 0.9x XLA where XLA takes > 0.5 ms: 1 of 2" in text
    heldout.plot(rows, tmp_path / "regret.png")
    assert (tmp_path / "regret.png").stat().st_size > 0


def test_heldout_times_one_program_once():
    """``benchmarks/heldout.py`` on a stride-1 1x1 layer: pointwise, im2col and mec are one
    ``dot`` and share one timing, and ``auto`` shares its pick's."""
    import heldout

    row = heldout.time_problem(Problem("1x1", (1, 9, 9, 16), (1, 1, 16, 8)), 1, 0)
    ms = row["ms"]
    assert ms["pointwise"] == ms["im2col"] == ms["mec"]
    assert ms["auto"] == ms[row["picked"]] and row["fastest"] in ms


def test_heldout_train_mode_times_forward_and_backward():
    """``benchmarks/heldout.py --train``: every algorithm's forward + backward, auto's training
    choice (its program is its pick's), torch's backward when installed."""
    import heldout

    from jaxconv.convolution import select

    problem = Problem("3x3", (2, 8, 8, 4), (3, 3, 4, 4), padding="SAME")
    row = heldout.time_problem(problem, 1, 0, mode="train")
    canon = problem.canonical()
    assert row["picked"] == select.select(canon.x_shape, canon.kernel_shape, canon.dtype,
                                          canon.config, use_cache=False, mode="train").algorithm
    assert row["ms"]["auto"] == row["ms"][row["picked"]] and row["fastest"] in row["ms"]
    assert "xla" in row["ms"]
    assert ("torch" in row["ms"]) == (importlib.util.find_spec("torch") is not None)
