"""pytest-benchmark suite options and the extra data its JSON carries.

Run it through ``python benchmarks/bench.py`` (or ``nox -s bench``), which adds the report and
the plot; plain ``pytest benchmarks --benchmark-json=out.json`` works too. Options:
``--jaxconv-size=full|quick|tiny``, ``--jaxconv-cases=article,layer,lenet,cnn,models``,
``--jaxconv-budget=SECONDS`` (points that would start later are skipped and listed) and
``--jaxconv-compile-cap=SECONDS`` (an implementation whose compile took longer skips its later
rows in that case and pass; listed too).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # pytest's default import mode puts it there; others may not
    sys.path.insert(0, HERE)
import bench  # noqa: E402  (benchmarks/bench.py)


def pytest_addoption(parser):
    group = parser.getgroup("jaxconv benchmarks")
    group.addoption("--jaxconv-size", default="full", choices=bench.SIZES,
                    help="sweep size: full (the benchmark cases), quick (a subset), tiny (smoke test)")
    group.addoption("--jaxconv-cases", default=",".join(bench.case_names()),
                    help="comma-separated cases to run (default: all)")
    group.addoption("--jaxconv-budget", type=float, default=None, metavar="SECONDS",
                    help="skip the points that would start after this many seconds of sweep "
                    "(they are listed in the JSON and the report)")
    group.addoption("--jaxconv-compile-cap", type=float, default=None, metavar="SECONDS",
                    help="once an implementation's compile takes longer than this, skip its "
                    "larger kernels in that case and pass (listed in the JSON and the report)")


def _selected(config) -> list[str]:
    return [c.strip() for c in config.getoption("jaxconv_cases").split(",") if c.strip()]


_FAILURES = pytest.StashKey[list]()
_SKIPPED = pytest.StashKey[list]()
_START = pytest.StashKey[float]()
_SWEEP = pytest.StashKey["Sweep"]()
_MODEL_RESULTS = pytest.StashKey[list]()


class Sweep:
    """Per-run state the points share: implementations whose compile ran past the cap."""

    def __init__(self, config):
        self.cap = config.getoption("jaxconv_compile_cap")
        self.slow: dict[tuple[str, str, str], tuple[str, float]] = {}

    def compiled(self, point: bench.Point, seconds: float) -> None:
        key = (point.row.case, point.mode, point.impl)
        if self.cap is not None and point.impl != bench.BASELINE and seconds > self.cap:
            self.slow.setdefault(key, (bench.row_title(point.row), seconds))

    def skip_reason(self, point: bench.Point) -> str | None:
        slow = self.slow.get((point.row.case, point.mode, point.impl))
        if slow:
            return (f"compile at {slow[0]} took {slow[1]:.0f} s (> {self.cap:.0f} s), so its "
                    "later rows here are skipped")
        return None


def pytest_configure(config):
    config.stash[_FAILURES] = []
    config.stash[_SKIPPED] = []
    config.stash[_START] = time.perf_counter()
    config.stash[_SWEEP] = Sweep(config)
    config.stash[_MODEL_RESULTS] = []


def pytest_collection_modifyitems(config, items):
    # The matmul peak first: every point is reported against it, so it must not be skipped.
    # Then the whole networks (the end-to-end numbers a user waits for), then the layers.
    items.sort(key=lambda item: (item.originalname != "test_matmul_peak",
                                 item.originalname != "test_models"))


@pytest.fixture
def model_results(request) -> list:
    """Where ``test_models`` leaves its benchmark entries (one per implementation; they are
    timed interleaved, which pytest-benchmark's one-function fixture cannot do)."""
    return request.config.stash[_MODEL_RESULTS]


@pytest.fixture
def sweep(request) -> Sweep:
    return request.config.stash[_SWEEP]


def pytest_runtest_setup(item):
    params = getattr(item, "callspec", None) and item.callspec.params
    point = params and (params.get("point") or params.get("model_point"))
    if not point:
        return
    budget = item.config.getoption("jaxconv_budget")
    reason = (item.config.stash[_SWEEP].skip_reason(point)
              if isinstance(point, bench.Point) else None)
    if reason is None and budget is not None:
        if time.perf_counter() - item.config.stash[_START] > budget:
            reason = f"the sweep's time budget ({budget:.0f} s) was spent"
    if reason is not None:
        item.config.stash[_SKIPPED].append({"id": point.id, "reason": reason})
        pytest.skip(reason)


def pytest_generate_tests(metafunc):
    if "point" in metafunc.fixturenames:
        pts = bench.points(_selected(metafunc.config), metafunc.config.getoption("jaxconv_size"))
        metafunc.parametrize("point", pts, ids=[p.id for p in pts])
    if "model_point" in metafunc.fixturenames:
        import models_case

        wanted = bench.MODELS in _selected(metafunc.config)
        pts = models_case.points(metafunc.config.getoption("jaxconv_size")) if wanted else []
        metafunc.parametrize("model_point", pts, ids=[p.id for p in pts])


@pytest.fixture
def size(request) -> str:
    return request.config.getoption("jaxconv_size")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and hasattr(item, "callspec"):
        excinfo = call.excinfo
        message = str(excinfo.value) if excinfo else str(report.longrepr)
        item.config.stash[_FAILURES].append({
            "id": item.callspec.id,
            "when": report.when,
            "message": f"{type(excinfo.value).__name__}: " * bool(excinfo)
            + " ".join(message.split())[:400],
        })
    return report


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["jaxconv"] = bench.machine_info()


def pytest_benchmark_update_json(config, benchmarks, output_json):
    size = config.getoption("jaxconv_size")
    output_json["jaxconv"] = {
        "size": size,
        "cases": _selected(config),
        "matmul_n": bench.MATMUL_N[size],
        "missing_peers": bench.missing_peers(_selected(config), size),
        "failures": config.stash[_FAILURES],
        "budget_s": config.getoption("jaxconv_budget"),
        "skipped": config.stash[_SKIPPED],
    }
    output_json["benchmarks"].extend(config.stash[_MODEL_RESULTS])
    bench.annotate(output_json)
