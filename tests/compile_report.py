"""``pytest --compile-report[=N]``: where a test run's time goes in JAX's compilation pipeline.

Most of the default tier's time is spent building programs, not running them: each distinct
program is traced to a jaxpr, lowered to MLIR and compiled by XLA, at some tens of ms each,
whatever its size. This plugin counts, per test, the programs XLA compiled and the seconds JAX
reports for each stage (``jax.monitoring``'s duration events), and prints a table of the ``N``
tests that spent most, with the run's totals. It works under ``pytest -n`` (the counts travel
with each test's report to the controller).
"""

from __future__ import annotations

import collections

import pytest

#: ``jax.monitoring`` duration events -> the column they are summed into.
EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace_s",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
    "/jax/core/compile/backend_compile_duration": "compile_s",
}
PROPERTY = "jax_compile"  # the name of the report's user property that carries the counts
_RECORDER = pytest.StashKey["_Recorder"]()
# Filled on the process that reports (the xdist controller, or the single process).
_reports: dict[str, collections.Counter] = {}


class _Recorder:
    """Sums the events of the test now running (one test at a time per process)."""

    def __init__(self) -> None:
        self.current: collections.Counter | None = None

    def __call__(self, event: str, duration: float, **_: object) -> None:
        column = EVENTS.get(event)
        if column is None or self.current is None:
            return
        self.current[column] += duration
        if column == "compile_s":
            self.current["programs"] += 1


def summarize(stats: dict[str, dict[str, float]], top: int) -> list[str]:
    """The report's lines: the run's totals, then the ``top`` tests by trace + lower + compile
    seconds (``stats``: test id -> ``programs`` and the seconds of each column of :data:`EVENTS`)."""
    total = collections.Counter()
    for s in stats.values():
        total.update(s)

    def spent(s) -> float:
        return s.get("trace_s", 0.0) + s.get("lower_s", 0.0) + s.get("compile_s", 0.0)

    lines = [f"{len(stats)} tests built {int(total['programs'])} programs: tracing "
             f"{total['trace_s']:.1f} s, lowering {total['lower_s']:.1f} s, XLA compiling "
             f"{total['compile_s']:.1f} s (summed over workers)",
             f"{'programs':>8} {'trace s':>8} {'lower s':>8} {'compile s':>9}  test"]
    for test, s in sorted(stats.items(), key=lambda kv: -spent(kv[1]))[:top]:
        lines.append(f"{int(s.get('programs', 0)):>8} {s.get('trace_s', 0.0):>8.2f} "
                     f"{s.get('lower_s', 0.0):>8.2f} {s.get('compile_s', 0.0):>9.2f}  {test}")
    return lines


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--compile-report", nargs="?", type=int, const=30, default=None,
                     metavar="N", help="report the programs each test compiled and JAX's "
                     "tracing / lowering / compiling seconds, for the N tests that spent most "
                     "(default 30)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("compile_report") is None:
        return
    from jax import monitoring

    recorder = _Recorder()
    monitoring.register_event_duration_secs_listener(recorder)
    config.stash[_RECORDER] = recorder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    recorder = item.config.stash.get(_RECORDER, None)
    if recorder is not None:
        recorder.current = collections.Counter()
    try:
        return (yield)
    finally:
        if recorder is not None:
            recorder.current = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    recorder = item.config.stash.get(_RECORDER, None)
    if recorder is not None and recorder.current is not None and call.when == "teardown":
        report.user_properties.append((PROPERTY, dict(recorder.current)))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, value in report.user_properties:
        if name == PROPERTY:
            _reports.setdefault(report.nodeid, collections.Counter()).update(value)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    top = config.getoption("compile_report")
    if top is None or not _reports:
        return
    terminalreporter.section("JAX compilation by test")
    for line in summarize(_reports, top):
        terminalreporter.write_line(line)
