"""pytest-benchmark suite options and the extra data its JSON carries.

Run it through ``python -m jaxconv.bench`` (or ``nox -s bench``), which adds the report and the
plot; plain ``pytest benchmarks --benchmark-json=out.json`` works too. Options:
``--jaxconv-size=full|quick|tiny`` and ``--jaxconv-cases=article,layer,lenet``.
"""

from __future__ import annotations

import pytest

from jaxconv import bench


def pytest_addoption(parser):
    group = parser.getgroup("jaxconv benchmarks")
    group.addoption("--jaxconv-size", default="full", choices=bench.SIZES,
                    help="sweep size: full (DESIGN.md), quick (a subset), tiny (smoke test)")
    group.addoption("--jaxconv-cases", default=",".join(bench.cases()),
                    help="comma-separated cases to run (default: all)")


def _selected(config) -> list[str]:
    return [c.strip() for c in config.getoption("jaxconv_cases").split(",") if c.strip()]


def pytest_configure(config):
    config.stash[_FAILURES] = []


_FAILURES = pytest.StashKey[list]()


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
    }
    bench.annotate(output_json)
