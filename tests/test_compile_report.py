"""``pytest --compile-report``: the recorder counts what JAX compiles, the summary ranks tests."""

import collections

import compile_report
import jax
import jax.numpy as jnp
from jax import monitoring


def test_the_recorder_counts_each_program_compiled():
    recorder = compile_report._Recorder()
    monitoring.register_event_duration_secs_listener(recorder)
    try:
        recorder.current = collections.Counter()
        f = jax.jit(lambda x: jnp.sin(x) * 3.0)
        f(jnp.arange(7.0))
        f(jnp.arange(7.0) + 1)  # the same program again: compiled once
        jax.jit(lambda x: jnp.cos(x) - 1.0)(jnp.arange(5.0))
        # eager ops (arange, +) may compile programs of their own: at least the two jits
        got = recorder.current
        assert got["programs"] >= 2
        assert got["compile_s"] > 0 and got["lower_s"] > 0 and got["trace_s"] > 0
        recorder.current = None  # between tests nothing is recorded
        jax.jit(lambda x: x * 5.0)(jnp.arange(3.0))
        assert recorder.current is None
    finally:
        monitoring.unregister_event_duration_listener(recorder)


def test_events_outside_the_three_stages_are_ignored():
    recorder = compile_report._Recorder()
    recorder.current = collections.Counter()
    recorder("/jax/compilation_cache/cache_retrieval_time_sec", 0.5)
    recorder("/jax/core/compile/backend_compile_duration", 0.25)
    recorder("/jax/core/compile/jaxpr_to_mlir_module_duration", 0.125)
    assert recorder.current == {"programs": 1, "compile_s": 0.25, "lower_s": 0.125}


def test_summary_totals_and_ranks_by_seconds_spent():
    stats = {
        "t.py::cheap": {"programs": 1, "trace_s": 0.0, "lower_s": 0.01, "compile_s": 0.02},
        "t.py::dear": {"programs": 3, "trace_s": 0.5, "lower_s": 1.0, "compile_s": 2.0},
        "t.py::middle": {"programs": 9, "compile_s": 0.5},
    }
    lines = compile_report.summarize(stats, top=2)
    assert lines[0] == ("3 tests built 13 programs: tracing 0.5 s, lowering 1.0 s, XLA compiling "
                        "2.5 s (summed over workers)")
    assert lines[2].split() == ["3", "0.50", "1.00", "2.00", "t.py::dear"]
    assert lines[3].split() == ["9", "0.00", "0.00", "0.50", "t.py::middle"]
    assert len(lines) == 4
