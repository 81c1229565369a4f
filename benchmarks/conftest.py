"""pytest-benchmark suite options and the extra data its JSON carries.

Run it through ``python -m jaxconv.bench`` (or ``nox -s bench``), which adds the report and the
plot; plain ``pytest benchmarks --benchmark-json=out.json`` works too. Options:
``--jaxconv-size=full|quick|tiny``, ``--jaxconv-cases=article,layer,lenet`` and
``--jaxconv-budget=SECONDS`` (points that would start later are skipped and listed).
"""

from __future__ import annotations

import time

import pytest

from jaxconv import bench


def pytest_addoption(parser):
    group = parser.getgroup("jaxconv benchmarks")
    group.addoption("--jaxconv-size", default="full", choices=bench.SIZES,
                    help="sweep size: full (DESIGN.md), quick (a subset), tiny (smoke test)")
    group.addoption("--jaxconv-cases", default=",".join(bench.cases()),
                    help="comma-separated cases to run (default: all)")
    group.addoption("--jaxconv-budget", type=float, default=None, metavar="SECONDS",
                    help="skip the points that would start after this many seconds of sweep "
                    "(they are listed in the JSON and the report)")


def _selected(config) -> list[str]:
    return [c.strip() for c in config.getoption("jaxconv_cases").split(",") if c.strip()]


_FAILURES = pytest.StashKey[list]()
_SKIPPED = pytest.StashKey[list]()
_START = pytest.StashKey[float]()


def pytest_configure(config):
    config.stash[_FAILURES] = []
    config.stash[_SKIPPED] = []
    config.stash[_START] = time.perf_counter()


def pytest_collection_modifyitems(config, items):
    # The matmul peak first: every point is reported against it, so it must not be skipped.
    items.sort(key=lambda item: item.originalname != "test_matmul_peak")


def pytest_runtest_setup(item):
    budget = item.config.getoption("jaxconv_budget")
    elapsed = time.perf_counter() - item.config.stash[_START]
    if budget is not None and elapsed > budget and "point" in getattr(item, "callspec", {}).params:
        item.config.stash[_SKIPPED].append(item.callspec.id)
        pytest.skip(f"the sweep's time budget ({budget:.0f} s) is spent")


def pytest_generate_tests(metafunc):
    if "point" in metafunc.fixturenames:
        pts = bench.points(_selected(metafunc.config), metafunc.config.getoption("jaxconv_size"))
        metafunc.parametrize("point", pts, ids=[p.id for p in pts])


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
    bench.annotate(output_json)
