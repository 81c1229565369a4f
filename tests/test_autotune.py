"""``jaxconv.autotune``, its JSON cache, ``auto``'s use of it, and ``jaxconv autotune``.

Every test gets its own cache directory (``JAXCONV_CACHE_DIR`` -> ``tmp_path``); nothing asserts
on timings.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import jaxconv
from jaxconv.cli.autotune import main as autotune_main
from jaxconv.convolution import AutotuneResult, _registry
from jaxconv.convolution import cache as at

X, K = (1, 8, 8, 2), (3, 3, 2, 2)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("JAXCONV_CACHE_DIR", str(d))
    at.clear_memory_cache()
    yield d
    at.clear_memory_cache()


def _other(winner: str) -> str:
    """An applicable algorithm other than ``winner`` (to force through the cache)."""
    ok = _registry.applicable(X, K, np.float32, _registry.ConvConfig())
    others = [a for a in ok if a != winner]
    if not others:
        pytest.skip("only one algorithm serves the tiny problem")
    return others[0]


def test_autotune_writes_the_cache(cache_dir):
    r = jaxconv.autotune(X, K, repeats=1)
    assert isinstance(r, AutotuneResult)
    assert r.winner in r.timings_ms
    assert r.winner == min(r.timings_ms, key=r.timings_ms.get)
    assert set(r.timings_ms) == set(r.compile_ms)
    assert set(r.timings_ms) | set(r.failed) == set(
        _registry.applicable(X, K, np.float32, _registry.ConvConfig())
    )
    assert r.path == cache_dir / "autotune.json"
    # atomic write: the file and nothing else (no temporary files left behind)
    assert sorted(p.name for p in cache_dir.iterdir()) == ["autotune.json"]
    data = json.loads(r.path.read_text())
    assert data["schema"] == at.SCHEMA and data["version"] == at.VERSION
    (entry,) = data["entries"].values()
    assert entry["winner"] == r.winner
    assert entry["key"] == r.key
    for field in ("backend", "device_kind", "jax", "x_shape", "kernel_shape", "dtype", "stride",
                  "padding", "dilation", "groups"):
        assert field in r.key
    assert "winner" in str(r) or r.winner in str(r)


def test_auto_uses_the_cached_winner(cache_dir):
    r = jaxconv.autotune(X, K, repeats=1)
    sel = jaxconv.select_algorithm(X, K)
    assert sel.source == "autotune"
    assert sel.algorithm == r.winner
    assert sel.measured_ms == pytest.approx(r.timings_ms)
    # a different config is a different key
    assert jaxconv.select_algorithm(X, K, padding="SAME").source == "cost-model"
    assert jaxconv.select_algorithm(X, K, dtype="float64").source == "cost-model"


def test_forced_winner_is_what_conv2d_runs(cache_dir, monkeypatch):
    r = jaxconv.autotune(X, K, repeats=1)
    forced = _other(r.winner)
    data = json.loads(r.path.read_text())
    for entry in data["entries"].values():
        entry["winner"] = forced
    r.path.write_text(json.dumps(data))

    sel = jaxconv.select_algorithm(X, K)
    assert (sel.algorithm, sel.source) == (forced, "autotune")
    assert forced in str(sel)

    calls = []
    alg = _registry.get(forced)

    def spy(a, b, config):
        calls.append(a.shape)
        return alg.fn(a, b, config)

    monkeypatch.setitem(_registry._REGISTRY, forced, dataclasses.replace(alg, fn=spy))
    x = np.random.default_rng(0).standard_normal(X).astype(np.float32)
    k = np.random.default_rng(1).standard_normal(K).astype(np.float32)
    # unbatched NCHW input canonicalizes to the same NHWC key
    y = jaxconv.conv2d(np.transpose(x[0], (2, 0, 1)), k, data_format="NCHW")
    assert calls == [X]
    ref = jaxconv.conv2d(x, k, algorithm="direct", precision="highest")
    np.testing.assert_allclose(np.transpose(y, (1, 2, 0)), ref[0], rtol=1e-4, atol=1e-4)


def test_cached_winner_that_no_longer_exists_is_ignored(cache_dir):
    r = jaxconv.autotune(X, K, repeats=1)
    data = json.loads(r.path.read_text())
    for entry in data["entries"].values():
        entry["winner"] = "removed_algorithm"
    r.path.write_text(json.dumps(data))
    assert jaxconv.select_algorithm(X, K).source == "cost-model"


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2, 3]", json.dumps({"schema": "someone-else", "version": 1, "entries": {}}),
     json.dumps({"schema": at.SCHEMA, "version": 999, "entries": {}}),
     json.dumps({"schema": at.SCHEMA, "version": at.VERSION, "entries": []})],
    ids=["bad-json", "not-an-object", "foreign-schema", "future-version", "bad-entries"],
)
def test_corrupt_or_foreign_cache_warns_and_is_ignored(cache_dir, content):
    cache_dir.mkdir()
    path = cache_dir / "autotune.json"
    path.write_text(content)
    with pytest.warns(at.AutotuneCacheWarning, match="autotune.json"):
        sel = jaxconv.select_algorithm(X, K)
    assert sel.source == "cost-model"
    # parsed once: a second lookup of the unchanged file does not warn again
    jaxconv.select_algorithm(X, K)
    # conv2d(auto) keeps working
    x = np.ones(X, np.float32)
    assert jaxconv.conv2d(x, np.ones(K, np.float32)).shape == (1, 6, 6, 2)
    # the next autotune replaces the file with a valid one
    r = jaxconv.autotune(X, K, repeats=1)
    assert json.loads(path.read_text())["schema"] == at.SCHEMA
    assert jaxconv.select_algorithm(X, K).algorithm == r.winner


def test_entries_merge_and_survive_reload(cache_dir):
    a = jaxconv.autotune(X, K, repeats=1)
    b = jaxconv.autotune(X, K, repeats=1, stride=2)
    data = json.loads(a.path.read_text())
    assert len(data["entries"]) == 2
    at.clear_memory_cache()  # as a new process would
    assert jaxconv.select_algorithm(X, K).algorithm == a.winner
    assert jaxconv.select_algorithm(X, K, stride=2).algorithm == b.winner


def test_no_cache_and_restricted_algorithms(cache_dir):
    r = jaxconv.autotune(X, K, repeats=1, cache=False, algorithms=["direct"])
    assert r.winner == "direct" and set(r.timings_ms) == {"direct"}
    assert r.path is None
    assert not cache_dir.exists()


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("JAXCONV_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert at.cache_path() == tmp_path / "xdg" / "jaxconv" / "autotune.json"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(repeats=0), ValueError, r"^autotune: repeats must be an int >= 1"),
        (dict(groups=3), ValueError, r"^autotune: groups=3 must divide the input channels"),
        (dict(algorithms=["nope"]), ValueError, r"^autotune: unknown algorithms"),
        (dict(dtype="int8"), TypeError, r"^autotune: x must have a floating dtype"),
    ],
)
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        jaxconv.autotune(X, K, **kwargs)


def test_cli(cache_dir, capsys):
    assert autotune_main(["1x8x8x2", "3x3x2x2", "--repeats", "1", "--padding", "SAME"]) == 0
    out = capsys.readouterr().out
    assert "winner: " in out and "median ms" in out and "autotune.json" in out
    assert (cache_dir / "autotune.json").exists()
    assert jaxconv.select_algorithm(X, K, padding="SAME").source == "autotune"


def test_cli_through_the_jaxconv_command(cache_dir, capsys):
    from jaxconv import cli

    assert cli.main(["autotune", "1x8x8x2", "3x3x2x2", "--repeats", "1", "--stride", "2,1",
                     "--no-cache"]) == 0
    assert "winner: " in capsys.readouterr().out
    assert not cache_dir.exists()


def test_cli_errors(capsys):
    with pytest.raises(SystemExit) as e:
        autotune_main(["1x8x8", "--repeats", "1"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        autotune_main(["8by8", "3x3x2x2"])
    assert autotune_main(["1x8x8x2", "3x3x3x2", "--repeats", "1"]) == 2
    assert "kernel expects 2 input channels" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["direct", "mec"])
def test_training_is_timed_with_a_varying_cotangent(name):
    """The timed backward pass is the gradient of sum(y^2) / 2 (cotangent y, which varies),
    not of sum(y): a constant cotangent let XLA fold away part of mec's gradient. Known answer
    for a 1x1 kernel w: y = w x, so d/dx = w^2 x and d/dw = w sum(x^2)."""
    from jaxconv.convolution import tuning
    from jaxconv.convolution._registry import ConvConfig

    x = np.arange(1.0, 7.0, dtype=np.float32).reshape(1, 2, 3, 1)
    w = np.full((1, 1, 1, 1), 3.0, np.float32)
    dx, dw = tuning.timed_function(name, ConvConfig(), mode="train")(x, w)
    np.testing.assert_allclose(dx, 9.0 * x, rtol=1e-6)
    np.testing.assert_allclose(dw.reshape(()), 3.0 * float(np.sum(x * x)), rtol=1e-6)


def test_top_k_times_the_models_best_plus_direct(cache_dir):
    from jaxconv.convolution import select

    sel = jaxconv.select_algorithm(X, K)
    r = jaxconv.autotune(X, K, repeats=1, cache=False, top_k=1)
    assert set(r.timings_ms) | set(r.failed) == set(select.shortlist(sel.costs, 1))
    assert "direct" in r.timings_ms
    with pytest.raises(ValueError, match=r"^autotune: top_k must be None or an int >= 1, got 0"):
        jaxconv.autotune(X, K, top_k=0)


def test_a_wrong_result_never_wins(cache_dir, monkeypatch):
    """Every measured algorithm is checked against direct before it may win (XLA's picker)."""
    direct = _registry.get("direct")
    monkeypatch.setitem(_registry._REGISTRY, "fast_but_wrong", dataclasses.replace(
        direct, name="fast_but_wrong", fn=lambda x, k, config: 2 * direct.fn(x, k, config)))
    r = jaxconv.autotune(X, K, repeats=1, algorithms=["direct", "fast_but_wrong"])
    assert r.winner == "direct" and "fast_but_wrong" not in r.timings_ms
    assert "differs from direct's" in r.failed["fast_but_wrong"]


def test_cli_top_k_and_a_problem_no_algorithm_runs(cache_dir, capsys, monkeypatch):
    assert autotune_main(["1x8x8x2", "3x3x2x2", "--repeats", "1", "--no-cache", "--top-k", "1"]) == 0
    out = capsys.readouterr().out
    assert "direct" in out and "winner: " in out

    def broken(*args, **kwargs):
        raise RuntimeError("autotune: no algorithm could run this problem: {}")

    monkeypatch.setattr("jaxconv.cli.autotune.autotune", broken)
    assert autotune_main(["1x8x8x2", "3x3x2x2", "--no-cache"]) == 1
    assert capsys.readouterr().err.startswith("jaxconv autotune: autotune: no algorithm")


def test_the_same_program_is_recognized_whatever_its_names():
    """Known answers: a stride-1 1x1 convolution is one ``dot`` through pointwise, im2col and
    mec, and ``auto`` compiles to the program of the algorithm it picks; another shape, another
    program."""
    import jax

    from jaxconv.convolution import tuning

    def compiled(fn, *shapes):
        return jax.jit(fn).lower(*(jax.ShapeDtypeStruct(s, np.float32) for s in shapes)).compile()

    xs, ks = (1, 9, 9, 16), (1, 1, 16, 8)
    progs = {a: compiled(lambda x, k, a=a: jaxconv.conv2d(x, k, algorithm=a), xs, ks)
             for a in ("pointwise", "im2col", "mec", "fft", "direct", "auto")}
    pick = jaxconv.select_algorithm(xs, ks).algorithm
    assert pick in progs
    same = tuning.same_programs(progs)
    assert same["im2col"] == same["mec"] == same["pointwise"] == "pointwise"
    assert same["fft"] == "fft"
    assert same["auto"] == same[pick]

    def add_one(a):
        return a + 1.0

    renamed = compiled(lambda b: jax.numpy.add(b, 1.0), (3, 4))
    assert tuning.program_fingerprint(compiled(add_one, (3, 4))) == tuning.program_fingerprint(renamed)
    assert tuning.program_fingerprint(compiled(add_one, (4, 3))) != tuning.program_fingerprint(renamed)


def test_one_program_under_several_names_is_timed_once():
    from jaxconv.convolution import tuning

    calls = {"a": 0, "b": 0, "c": 0}

    def fn(name):
        def run():
            calls[name] += 1
        return run

    progs = {"a": "one", "b": "one", "c": "two"}
    fingerprints = {"one": "ENTRY %main { one }", "two": "ENTRY %main { two }"}
    medians = tuning.interleaved_medians(
        {n: fn(n) for n in calls}, 3,
        programs={n: type("P", (), {"as_text": lambda self, p=p: fingerprints[p]})()
                  for n, p in progs.items()})
    assert calls == {"a": 4, "b": 0, "c": 4}  # warm-up + 3 rounds; b is a's program
    assert medians["b"] == medians["a"] and set(medians) == set(calls)
    # the models benchmark's way: an untimed call right before each timed one
    times = tuning.interleaved_times({n: fn(n) for n in ("a", "c")}, 2, warm_each_round=True,
                                     rest_s={"c": 0.0})
    assert calls == {"a": 9, "b": 0, "c": 9} and [len(t) for t in times.values()] == [2, 2]


def test_autotune_times_the_names_of_one_program_once(cache_dir):
    """On a stride-1 1x1 layer pointwise, im2col and mec share one timing (the same ``dot``)."""
    r = jaxconv.autotune((1, 9, 9, 16), (1, 1, 16, 8), repeats=2, cache=False,
                         algorithms=["pointwise", "im2col", "mec", "direct"])
    assert r.timings_ms["pointwise"] == r.timings_ms["im2col"] == r.timings_ms["mec"]


def test_autotune_and_first_use_measure_3d_problems(cache_dir):
    """A DHWIO kernel makes a 3-D problem (as for ``jaxconv.conv``); the depth-lowered
    algorithms, which the cost model cannot estimate, are measured beside the model's picks."""
    from jaxconv.convolution import select

    xs, ks = (1, 6, 6, 6, 2), (3, 3, 3, 2, 2)
    r = jaxconv.autotune(xs, ks, padding="SAME", repeats=1, cache=False)
    assert {"direct", "fft", "depth_direct", "depth_mec"} <= set(r.timings_ms)
    assert "im2col" in r.unsupported and r.key["x_shape"] == list(xs)
    with pytest.raises(ValueError, match=r"^autotune: x must have rank 4"):
        jaxconv.autotune(xs, ks, data_format="NHWC")
    select.set_autotune(True)
    try:
        jaxconv.conv3d(np.ones(xs, np.float32), np.ones(ks, np.float32), padding="SAME")
    finally:
        select.set_autotune(None)
    entries = json.loads((cache_dir / "autotune.json").read_text())["entries"].values()
    assert entries and all({"depth_direct", "depth_mec", "direct"} <= set(e["timings_ms"])
                           for e in entries)
    assert jaxconv.select_algorithm(xs, ks, padding="SAME").source == "autotune"
