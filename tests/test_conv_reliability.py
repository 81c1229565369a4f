"""The paths around the convolution: empty and absurd sizes, the autotune cache under abuse
(concurrent writers, permissions, bad entries, undecodable bytes), calibration, and the
measure-on-first-use mode of ``auto``."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import stat

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv
from jaxconv.convolution import _registry, cache, calibration, cost_model, select
from jaxconv.convolution._registry import ConvConfig

X, K = (1, 8, 8, 2), (3, 3, 2, 2)


@pytest.fixture(autouse=True)
def _fresh_cache(cache_dir):
    """Every test here gets its own, empty autotune cache (``cache_dir`` in conftest.py)."""
    return cache_dir


# ------------------------------------------------------------------------------ sizes


def test_empty_batch_gives_an_empty_output():
    y = jaxconv.conv2d(np.zeros((0, 8, 8, 3), np.float32), np.zeros((5, 5, 3, 6), np.float32))
    assert y.shape == (0, 4, 4, 6)
    sel = jaxconv.select_algorithm((0, 8, 8, 3), (5, 5, 3, 6), backend="cpu")
    assert sel.algorithm == "direct" and "empty" in sel.reason


def test_zero_channels_select_without_dividing_by_zero():
    sel = jaxconv.select_algorithm((2, 8, 8, 0), (3, 3, 0, 4), backend="cpu")
    assert sel.algorithm == "direct"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(padding=2**31), r"^conv2d: padding must be at most 2\*\*31 - 1"),
        (dict(padding=2**31 - 1), r"^conv2d: the height extents must fit in int32"),
        (dict(dilation=2**40, padding="FULL"), r"^conv2d: dilation must be at most 2\*\*31 - 1"),
        (dict(dilation=2**30, padding="FULL"), r"^conv2d: the height extents must fit in int32"),
        (dict(stride=2**63), r"^conv2d: stride must be at most 2\*\*31 - 1"),
    ],
)
def test_absurd_sizes_are_errors_not_aborts(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jaxconv.conv2d(np.zeros(X, np.float32), np.zeros(K, np.float32), **kwargs)


def test_nested_precision_is_a_type_error():
    with pytest.raises(TypeError, match=r"^conv2d: precision must be None, a string"):
        jaxconv.conv2d(np.zeros(X, np.float32), np.zeros(K, np.float32),
                       precision=("highest", ("highest", "highest")))


# ------------------------------------------------------------------------------ autotune cache


def _store_many(args):
    cache_dir, start = args
    os.environ["JAXCONV_CACHE_DIR"] = cache_dir
    for i in range(start, start + 10):
        key = cache.make_key((1, i + 1, 8, 2), K, "float32", ConvConfig(), "cpu", "test-kind")
        cache.store(key, {"winner": "direct", "timings_ms": {"direct": 1.0}})


def test_concurrent_writers_lose_nothing(cache_dir):
    cache_dir.mkdir()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        pool.map(_store_many, [(str(cache_dir), 10 * i) for i in range(4)])
    entries = json.loads((cache_dir / "autotune.json").read_text())["entries"]
    assert len(entries) == 40
    assert sorted(p.name for p in cache_dir.iterdir()) == ["autotune.json"]


def test_a_write_keeps_the_files_permissions(cache_dir):
    jaxconv.autotune(X, K, repeats=1, algorithms=["direct"])
    path = cache_dir / "autotune.json"
    path.chmod(0o644)
    jaxconv.autotune(X, K, repeats=1, algorithms=["direct"], stride=2)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_malformed_entries_are_ignored_with_one_warning(cache_dir):
    r = jaxconv.autotune(X, K, repeats=1)
    data = json.loads(r.path.read_text())
    (entry,) = data["entries"].values()
    entry["timings_ms"] = {"direct": "fast"}  # a wrong value type
    r.path.write_text(json.dumps(data))
    cache.clear_memory_cache()
    with pytest.warns(cache.AutotuneCacheWarning, match="1 malformed entry"):
        sel = jaxconv.select_algorithm(X, K)
    assert sel.source == "cost-model"
    assert jaxconv.conv2d(np.ones(X, np.float32), np.ones(K, np.float32)).shape == (1, 6, 6, 2)
    jaxconv.autotune(X, K, repeats=1)  # rewrites the file without the bad entry
    assert all(cache.valid_entry(e) for e in json.loads(r.path.read_text())["entries"].values())


def test_undecodable_bytes_are_an_empty_cache(cache_dir):
    cache_dir.mkdir()
    (cache_dir / "autotune.json").write_bytes(b'{"schema": "\xff\xfe"}')
    with pytest.warns(cache.AutotuneCacheWarning, match="unusable: not UTF-8"):
        assert jaxconv.select_algorithm(X, K).source == "cost-model"
    r = jaxconv.autotune(X, K, repeats=1)  # and autotune still works, replacing the file
    assert json.loads(r.path.read_text())["schema"] == cache.SCHEMA


def test_autotune_algorithms_argument():
    with pytest.raises(TypeError, match=r"^autotune: algorithms must be None or a sequence"):
        jaxconv.autotune(X, K, repeats=1, algorithms="fft")
    with pytest.raises(ValueError, match=r"^autotune: algorithms must name at least one"):
        jaxconv.autotune(X, K, repeats=1, algorithms=[])


# ------------------------------------------------------------------------------ first use


def test_measure_on_first_use(cache_dir):
    x, k = np.ones(X, np.float32), np.ones(K, np.float32)
    assert jaxconv.select_algorithm(X, K).source == "cost-model"
    jaxconv.set_autotune(True)
    y = jaxconv.conv2d(x, k)
    assert (cache_dir / "autotune.json").exists()
    sel = jaxconv.select_algorithm(X, K)
    assert sel.source == "autotune" and sel.measured_ms
    np.testing.assert_allclose(y, jaxconv.conv2d(x, k, algorithm="direct"), rtol=1e-5)


def test_measure_on_first_use_from_the_environment(cache_dir, monkeypatch):
    monkeypatch.setenv(select.AUTOTUNE_ENV, "1")
    assert select.autotune_enabled()
    jaxconv.conv2d(np.ones(X, np.float32), np.ones(K, np.float32), padding="SAME")
    assert jaxconv.select_algorithm(X, K, padding="SAME").source == "autotune"
    jaxconv.set_autotune(False)  # the function overrides the variable
    assert not select.autotune_enabled()


def test_set_autotune_rejects_non_bools():
    with pytest.raises(TypeError, match=r"^set_autotune: enabled must be True, False or None"):
        jaxconv.set_autotune("yes")


# ------------------------------------------------------------------------------ calibration


@pytest.fixture
def tiny_problems(monkeypatch):
    probs = [((1, 12, 12, 4), (3, 3, 4, 4), ConvConfig()),
             ((1, 12, 12, 4), (5, 5, 4, 4), ConvConfig(padding=((2, 2), (2, 2))))]
    monkeypatch.setattr(calibration, "problems", lambda: probs)
    return probs


def test_calibrate_rescales_the_cost_model(cache_dir, tiny_problems):
    x_shape, k_shape, config = tiny_problems[0]
    before = cost_model.estimate_seconds("direct", x_shape, k_shape, jnp.float32, config)
    lines = []
    r = jaxconv.calibrate(repeats=1, budget_s=60, progress=lines.append)
    assert r.problems == 2 and r.skipped == 0 and len(lines) == 2
    assert r.path == cache_dir / "calibration.json"
    assert set(r.scales) <= set(_registry.names()) and "direct" in r.scales
    assert all(s > 0 for s in r.scales.values())
    after = cost_model.estimate_seconds("direct", x_shape, k_shape, jnp.float32, config)
    np.testing.assert_allclose(after, before * r.scales["direct"], rtol=1e-9)
    # training constants are rescaled alike
    train = [cost_model.estimate_seconds("direct", x_shape, k_shape, jnp.float32, config,
                                         mode="train", calibrated=c) for c in (True, False)]
    np.testing.assert_allclose(train[0], train[1] * r.scales["direct"], rtol=1e-9)
    uncal = cost_model.estimate_seconds("direct", x_shape, k_shape, jnp.float32, config,
                                        calibrated=False)
    np.testing.assert_allclose(uncal, before, rtol=1e-12)
    assert "direct" in str(r)


def test_calibrate_dry_run_saves_nothing(cache_dir, tiny_problems):
    r = jaxconv.calibrate(repeats=1, save=False)
    assert r.path is None and not (cache_dir / "calibration.json").exists()


def test_corrupt_calibration_is_ignored(cache_dir, tiny_problems):
    cache_dir.mkdir()
    (cache_dir / "calibration.json").write_bytes(b"\xff not json")
    x_shape, k_shape, config = tiny_problems[0]
    with pytest.warns(UserWarning, match="calibration.json: not UTF-8"):
        assert cost_model.estimate_seconds("direct", x_shape, k_shape, jnp.float32, config) == \
            cost_model.estimate_seconds("direct", x_shape, k_shape, jnp.float32, config,
                                        calibrated=False)
    jaxconv.calibrate(repeats=1)  # replaces it
    assert json.loads((cache_dir / "calibration.json").read_text())["schema"] == \
        cost_model.CALIBRATION_SCHEMA


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(repeats=0), r"^calibrate: repeats must be an int >= 1"),
     (dict(budget_s=0), r"^calibrate: budget_s must be a number > 0")],
)
def test_calibrate_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jaxconv.calibrate(**kwargs)


def test_calibrate_cli(cache_dir, tiny_problems, capsys):
    from jaxconv import cli

    assert cli.main(["calibrate", "--repeats", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "factor" in out and "calibration.json" in out
    assert (cache_dir / "calibration.json").exists()


# ------------------------------------------------------------------------------ training choice


def test_train_mode_is_validated():
    assert jaxconv.select_algorithm(X, K, mode="train").mode == "train"
    with pytest.raises(ValueError, match=r"^select_algorithm: mode must be one of"):
        jaxconv.select_algorithm(X, K, mode="backward")


@pytest.fixture
def im2col_trains_fastest(monkeypatch):
    """A cost model under which im2col is the cheapest forward + backward everywhere."""
    fit = cost_model.model("cpu", calibrated=False)
    train = {name: {t: (v if name != "im2col" else v * 1e-6) for t, v in c.items()}
             for name, c in fit.constants["train"].items()}
    model = dataclasses.replace(fit, constants={**fit.constants, "train": train})
    monkeypatch.setattr(cost_model, "model", lambda backend, calibrated=True: model)
    select.clear_caches()
    yield
    select.clear_caches()


def test_a_differentiated_conv_switches_to_the_training_choice(im2col_trains_fastest, monkeypatch):
    shapes = ((2, 20, 20, 8), (5, 5, 8, 4))
    fwd = jaxconv.select_algorithm(*shapes, padding="SAME").algorithm
    assert jaxconv.select_algorithm(*shapes, padding="SAME", mode="train").algorithm == "im2col"
    assert fwd != "im2col"
    calls = []
    for name in (fwd, "im2col"):
        alg = _registry.get(name)

        def spy(a, b, config, alg=alg):
            calls.append(alg.name)
            return alg.fn(a, b, config)

        monkeypatch.setitem(_registry._REGISTRY, name, dataclasses.replace(alg, fn=spy))
    rng = np.random.default_rng(0)
    x, k = (jnp.asarray(rng.standard_normal(s), jnp.float32) for s in shapes)
    y = jaxconv.conv2d(x, k, padding="SAME")
    assert calls == [fwd]
    calls.clear()
    loss = lambda a, b: jnp.sum(jnp.sin(jaxconv.conv2d(a, b, padding="SAME")))  # noqa: E731
    gx, gk = jax.grad(loss, argnums=(0, 1))(x, k)
    # the primal stays the forward choice's (one set of batch axes under vmap), the derivatives
    # are the training choice's
    assert "im2col" in calls and calls.count(fwd) == 1
    ref = lambda a, b: jnp.sum(jnp.sin(jaxconv.conv2d(a, b, padding="SAME", algorithm="direct")))  # noqa: E731
    rx, rk = jax.grad(ref, argnums=(0, 1))(x, k)
    np.testing.assert_allclose(gx, rx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gk, rk, rtol=1e-4, atol=1e-3)
    # forward mode and vmap go through the switch too
    _, ty = jax.jvp(lambda a: jaxconv.conv2d(a, k, padding="SAME"), (x,), (x,))
    np.testing.assert_allclose(ty, y, rtol=1e-4, atol=1e-4)  # conv is linear in x
    gv = jax.vmap(jax.grad(lambda a: loss(a[None], k)))(x)
    np.testing.assert_allclose(gv, rx, rtol=1e-4, atol=1e-4)


def test_autotune_train_mode_is_cached_apart(cache_dir):
    r = jaxconv.autotune(X, K, repeats=1, mode="train")
    assert r.key["mode"] == "train"
    assert jaxconv.select_algorithm(X, K, mode="train").source == "autotune"
    assert jaxconv.select_algorithm(X, K).source == "cost-model"
    with pytest.raises(ValueError, match=r"^autotune: mode must be one of"):
        jaxconv.autotune(X, K, mode="fast")
