"""``algorithm="auto"``'s selector: ``jaxconv.select_algorithm`` and the cost model.

Nothing here asserts on timings: only that choices are deterministic, applicable, conservative
where the model says it is, and explained.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import jaxconv
from jaxconv.convolution import _registry, cases, cost_model, select
from jaxconv.convolution._registry import ConvConfig

LAYER = ((8, 64, 64, 32), (7, 7, 32, 32))
ARTICLE = ((1, 320, 400, 3), (15, 15, 3, 3))


@pytest.fixture(autouse=True)
def _empty_cache(tmp_path, monkeypatch):
    """Every test sees an empty autotune cache of its own."""
    monkeypatch.setenv("JAXCONV_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("shapes", [LAYER, ARTICLE, ((2, 9, 9, 3), (3, 3, 3, 4))])
def test_deterministic_and_applicable(shapes):
    a = jaxconv.select_algorithm(*shapes)
    b = jaxconv.select_algorithm(*shapes)
    assert a == b
    assert a.source == "cost-model"
    config = ConvConfig()
    assert a.algorithm in _registry.applicable(*shapes, np.float32, config)
    assert a.algorithm == select.choose_algorithm(*shapes, np.float32, config)


@pytest.mark.parametrize("backend", ["gpu", "tpu", "cuda"])
@pytest.mark.parametrize("shapes", [LAYER, ARTICLE])
def test_accelerators_keep_direct(backend, shapes):
    sel = jaxconv.select_algorithm(*shapes, backend=backend)
    assert sel.algorithm == "direct"
    assert sel.source == "cost-model"
    assert sel.backend == backend
    assert "autotune" in sel.reason


def test_selection_contents():
    sel = jaxconv.select_algorithm(*LAYER, backend="cpu")
    assert isinstance(sel, jaxconv.Selection)
    assert "direct" in sel.costs
    assert all(isinstance(v, float) and v > 0 for v in sel.costs.values())
    assert sel.algorithm in sel.costs
    # the chosen algorithm is the cheapest estimate or direct (the conservative fallback)
    assert sel.algorithm in (min(sel.costs, key=sel.costs.get), "direct")
    assert all(isinstance(v, str) and v for v in sel.unsupported.values())
    assert not set(sel.costs) & set(sel.unsupported)
    assert sel.measured_ms is None
    assert sel.x_shape == LAYER[0] and sel.kernel_shape == LAYER[1]
    assert sel.dtype == "float32" and sel.config == ConvConfig()
    text = str(sel)
    assert "chosen: " + sel.algorithm in text
    for name in sel.costs:
        assert name in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        sel.algorithm = "direct"


def test_large_kernels_leave_direct_on_cpu():
    """The cat with a 15x15 kernel is the model's clearest case (direct is ~10x slower)."""
    sel = jaxconv.select_algorithm(*ARTICLE, backend="cpu")
    assert sel.algorithm != "direct", str(sel)
    hedge = cost_model.model("cpu").hedge["forward"]
    assert sel.costs[sel.algorithm] < hedge * sel.costs["direct"]


def test_unfitted_dtype_stays_direct():
    sel = jaxconv.select_algorithm(*ARTICLE, dtype="bfloat16", backend="cpu")
    assert sel.algorithm == "direct"
    assert "bfloat16" in sel.reason


def test_unknown_backend_stays_direct():
    sel = jaxconv.select_algorithm(*ARTICLE, backend="someaccelerator")
    assert sel.algorithm == "direct"
    assert sel.costs == {}


def test_canonicalizes_like_conv2d():
    # NCHW, unbatched, padding modes: the selection is made on the batched NHWC shape the
    # algorithm sees, after reflect padding.
    sel = jaxconv.select_algorithm((3, 40, 50), (5, 5, 3, 4), data_format="NCHW", padding=2,
                                   padding_mode="reflect")
    assert sel.x_shape == (1, 44, 54, 3)
    assert sel.config.padding == ((0, 0), (0, 0))
    sel = jaxconv.select_algorithm((1, 40, 50, 3), (5, 5, 3, 4), padding="SAME", stride=2)
    assert sel.config.padding == ((1, 2), (1, 2)) and sel.config.stride == (2, 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(x_shape=(1, 8, 8, 3), kernel_shape=(3, 3, 4, 2)), ValueError,
         r"^select_algorithm: kernel expects 3 input channels"),
        (dict(x_shape=(1, 8, 8, 3), kernel_shape=(3, 3, 3)), ValueError,
         r"^select_algorithm: kernel must have rank 4"),
        (dict(x_shape=(1, 8, 8, 3), kernel_shape=(3, 3, 3, 2), stride=0), ValueError,
         r"^select_algorithm: stride must be >= 1"),
        (dict(x_shape=(1, 2, 2, 3), kernel_shape=(3, 3, 3, 2)), ValueError,
         r"^select_algorithm: the kernel .* is larger than the padded input"),
        (dict(x_shape=(1, 8, 8, 3), kernel_shape=(3, 3, 3, 2), dtype="int32"), TypeError,
         r"^select_algorithm: x must have a floating dtype"),
        (dict(x_shape="1x8x8x3", kernel_shape=(3, 3, 3, 2)), TypeError,
         r"^select_algorithm: x_shape must be a tuple of ints"),
        (dict(x_shape=(1, 8, 8, 3), kernel_shape=(3, 3, 3, 2), backend=3), TypeError,
         r"^select_algorithm: backend must be None or a backend name"),
    ],
)
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        jaxconv.select_algorithm(kwargs.pop("x_shape"), kwargs.pop("kernel_shape"), **kwargs)


def test_algorithm_without_constants_is_reported(monkeypatch):
    direct = _registry.get("direct")
    monkeypatch.setitem(_registry._REGISTRY, "mystery", dataclasses.replace(direct, name="mystery"))
    sel = jaxconv.select_algorithm(*LAYER, backend="cpu")
    assert "mystery" not in sel.costs
    assert "no constants" in sel.unsupported["mystery"]
    assert sel.algorithm != "mystery"


def test_auto_uses_the_selection(monkeypatch):
    """conv2d(auto) runs exactly the algorithm select_algorithm names, with the same result."""
    x = np.random.default_rng(0).standard_normal((1, 96, 80, 3)).astype(np.float32)
    k = np.random.default_rng(1).standard_normal((13, 13, 3, 2)).astype(np.float32)
    sel = jaxconv.select_algorithm(x.shape, k.shape)
    calls = []
    alg = _registry.get(sel.algorithm)

    def spy(a, b, config):
        calls.append(config)
        return alg.fn(a, b, config)

    monkeypatch.setitem(_registry._REGISTRY, sel.algorithm, dataclasses.replace(alg, fn=spy))
    y = jaxconv.conv2d(x, k, algorithm="auto")
    assert calls, f"auto did not run {sel.algorithm}"
    ref = jaxconv.conv2d(x, k, algorithm="direct", precision="highest")
    np.testing.assert_allclose(y, ref, atol=1e-4 * float(np.abs(ref).max()))


def test_estimates_scale_with_work():
    small = cost_model.estimate_seconds("direct", (1, 64, 64, 8), (3, 3, 8, 8), np.float32,
                                    ConvConfig(), "cpu")
    big = cost_model.estimate_seconds("direct", (8, 64, 64, 8), (3, 3, 8, 8), np.float32,
                                  ConvConfig(), "cpu")
    assert 0 < small < big
    assert cost_model.estimate_seconds("direct", (1, 8, 8, 1), (1, 1, 1, 1), np.float32, ConvConfig(),
                                   "nonexistent") is None


def test_default_backend():
    sel = jaxconv.select_algorithm((1, 8, 8, 3), (3, 3, 3, 3))
    assert sel.backend == jax.default_backend()


def _model(constants: dict[str, dict[str, float]], hedge: float = 0.8) -> cost_model.CostModel:
    """A cost model charging ``seconds`` per call to each named algorithm, in both modes."""
    per_alg = {name: {"call": seconds} for name, seconds in constants.items()}
    return cost_model.CostModel("cpu", {"forward": per_alg, "train": per_alg},
                                {"forward": hedge, "train": hedge})


def _choose(model, shapes=LAYER, mode="forward", **kwargs):
    *_, canon = select.canonicalize("test", *(jax.ShapeDtypeStruct(s, np.float32) for s in shapes),
                                    **kwargs)
    return select.select(canon.x_shape, canon.kernel_shape, canon.dtype, canon.config, "cpu",
                         use_cache=False, mode=mode, model=model)


def test_the_lowest_estimate_wins_past_the_hedge(monkeypatch):
    """Known answers of the policy on an injected model: every term costs one ``call``."""
    monkeypatch.setattr(cost_model, "cost_terms", lambda *a: {"call": 1.0})
    fast = _choose(_model({"direct": 1.0, "fft": 0.79, "mec": 0.9}))
    assert fast.algorithm == "fft" and fast.costs == {"direct": 1.0, "fft": 0.79, "mec": 0.9}
    assert "1.27x below direct's (needs 1.25x)" in fast.reason
    hedged = _choose(_model({"direct": 1.0, "fft": 0.81}))
    assert hedged.algorithm == "direct" and "within the model's error" in hedged.reason
    assert _choose(_model({"direct": 0.5, "fft": 0.81})).algorithm == "direct"


def test_training_estimates_carry_the_forward_picks_forward(monkeypatch):
    """A differentiated ``auto`` runs the forward pick's forward and the training pick's forward
    + backward: every training estimate but the forward pick's own carries that forward."""
    monkeypatch.setattr(cost_model, "cost_terms", lambda *a: {"call": 1.0})

    def model(forward, train):
        def as_constants(d):
            return {a: {"call": s} for a, s in d.items()}

        return cost_model.CostModel("cpu", {"forward": as_constants(forward),
                                            "train": as_constants(train)},
                                    {"forward": 0.8, "train": 0.8})

    # forward: fft (0.5 < 0.8); alone, mec would train fastest (2.0 against fft's 2.2), but
    # beside fft's forward it costs 2.5
    sel = _choose(model({"direct": 1.0, "fft": 0.5, "mec": 0.9},
                        {"direct": 3.0, "fft": 2.2, "mec": 2.0}), mode="train")
    assert sel.algorithm == "fft"
    assert sel.costs == {"direct": 3.5, "fft": 2.2, "mec": 2.5}
    # forward: direct (fft's 0.9 is not below the hedge); fft's training 2.0 alone would leave
    # direct's 3.0, with direct's forward beside it (3.0) it does not
    sel = _choose(model({"direct": 1.0, "fft": 0.9}, {"direct": 3.0, "fft": 2.0}), mode="train")
    assert sel.algorithm == "direct" and sel.costs == {"direct": 3.0, "fft": 3.0}


def test_missing_constants_are_no_estimate_never_zero(monkeypatch):
    """An algorithm whose term has no constant is reported, not estimated as free."""
    monkeypatch.setattr(cost_model, "cost_terms", lambda *a: {"call": 1.0, "flop": 1e9})
    model = cost_model.CostModel(
        "cpu", {m: {"direct": {"call": 1.0, "flop": 1e-9}, "fft": {"call": 1e-6}}
                for m in cost_model.MODES}, {"forward": 0.9, "train": 0.9})
    sel = _choose(model)
    assert sel.algorithm == "direct" and "fft" not in sel.costs
    assert "no constants" in sel.unsupported["fft"]
    assert model.missing("fft", (1, 8, 8, 1), (3, 3, 1, 1), ConvConfig()) == ["flop"]


def test_no_model_keeps_direct():
    sel = _choose(None)
    assert sel.algorithm == "direct" and "no cost model" in sel.reason


def test_bundled_model_covers_every_term_of_every_algorithm():
    """Every cost term of every algorithm, in both modes, on every family's problems, has a
    fitted constant (a missing one would silently drop the algorithm from ``auto``)."""
    model = cost_model.model("cpu", calibrated=False)
    problems = cases.sample(24, seed=0, split="fit") + [
        p for case in cases.CASES.values() for p in case.problems]
    gaps = set()
    for p in problems:
        canon = p.canonical()
        for name in _registry.applicable(canon.x_shape, canon.kernel_shape, np.float32,
                                         canon.config):
            if _registry.get(name).cost_terms is None:
                continue
            for mode in cost_model.MODES:
                gaps |= {(name, mode, t) for t in model.missing(
                    name, canon.x_shape, canon.kernel_shape, canon.config, mode)}
    assert not gaps
    assert set(model.hedge) == set(cost_model.MODES)
    assert all(0 < h <= 1 for h in model.hedge.values())


def test_every_applicable_algorithm_is_estimated():
    """On every family's problems, 1-D to 3-D, every applicable algorithm has an estimate in
    both modes: its own terms and constants, or (``reduces_to``) another algorithm's on the
    problem it runs."""
    model = cost_model.model("cpu", calibrated=False)
    volumes = 0
    for p in cases.sample(32, seed=2, split="fit"):
        canon = p.canonical()
        volumes += len(canon.x_shape) == 5
        for name in _registry.applicable(canon.x_shape, canon.kernel_shape, np.float32,
                                         canon.config):
            for mode in cost_model.MODES:
                assert model.estimate(name, canon.x_shape, canon.kernel_shape, np.float32,
                                      canon.config, mode) is not None, (p.label, name, mode)
    assert volumes


def test_a_reduced_algorithm_is_estimated_as_the_algorithm_it_runs():
    """Known answer: depth_mec on a 3-D problem is mec on the 2-D problem it runs, the depth
    taps on the channels (3 x 4 -> 12) and the output depths in the batch (2 x 4 -> 8)."""
    from jaxconv.convolution import depth_lowered

    config = ConvConfig(stride=(2, 1, 1), padding=((1, 1), (1, 1), (0, 2)),
                        dilation=(1, 2, 1), groups=2)
    xs, ks = (2, 7, 8, 9, 4), (3, 3, 3, 2, 6)
    x2, k2, config2 = depth_lowered.lowered_problem(xs, ks, config)
    assert (x2, k2) == ((8, 8, 9, 12), (3, 3, 6, 6))
    assert config2 == ConvConfig(stride=(1, 1), padding=((1, 1), (0, 2)), dilation=(2, 1),
                                 groups=2)
    model = cost_model.model("cpu", calibrated=False)
    for mode in cost_model.MODES:
        assert model.estimate("depth_mec", xs, ks, np.float32, config, mode) == model.estimate(
            "mec", x2, k2, np.float32, config2, mode)


@pytest.mark.parametrize("split", ["fit", "heldout"])
def test_every_pick_is_a_comparison_of_estimates(split):
    """On sampled problems of every family, 1-D to 3-D, the pick is direct or the candidate
    with the lowest estimate, below the hedge: no rule picks without comparing."""
    model = cost_model.model("cpu")
    for p in cases.sample(16, seed=1, split=split):
        canon = p.canonical()
        for mode in cost_model.MODES:
            sel = select.select(canon.x_shape, canon.kernel_shape, canon.dtype, canon.config,
                                "cpu", use_cache=False, mode=mode)
            assert "direct" in sel.costs, (p.label, sel.reason)
            if sel.algorithm != "direct":
                assert sel.costs[sel.algorithm] == min(sel.costs.values()), p.label
                assert sel.costs[sel.algorithm] < model.hedge[mode] * sel.costs["direct"]


def test_cost_model_file_errors(tmp_path):
    """A malformed cost-model file is one clear error naming the file, whatever its content."""
    bad = tmp_path / "cm.json"
    for text in ["[" * 100000, '{"schema": 1e999}', '{"a": ' + "9" * 400 + "}", "\xff",
                 '{"schema": "jaxconv-cost-model", "version": 2, "fits": {"cpu": []}}']:
        bad.write_text(text)
        with pytest.raises(cost_model.CostModelError, match=r"cm\.json"):
            cost_model.read(bad)


def test_jax_version_mismatch_warns(monkeypatch):
    fit = cost_model.bundled()["cpu"]
    old = dataclasses.replace(fit, provenance={**fit.provenance, "jax": "0.0.1"})
    monkeypatch.setattr(cost_model, "read", lambda path=None: {"cpu": old})
    cost_model.bundled.cache_clear()
    try:
        with pytest.warns(cost_model.CostModelWarning, match="fitted with jax 0.0.1"):
            cost_model.bundled()
    finally:
        cost_model.bundled.cache_clear()


def test_sampled_fit_and_heldout_sets_are_disjoint():
    """The held-out problems ``benchmarks/heldout.py`` judges on are never fitted on, whatever
    the seeds: the split is a hash of the problem, and named benchmark problems are fit-only."""
    key = lambda p: (p.x_shape, p.kernel_shape, p.stride, p.padding, p.dilation, p.groups)  # noqa: E731
    fit = {key(p) for seed in (0, 20261206) for p in cases.sample(48, seed=seed, split="fit")}
    held = cases.sample(48, seed=7, split="heldout")
    assert not fit & {key(p) for p in held}
    assert all(cases.split_of(p) == "heldout" for p in held)
    named = [p for case in cases.CASES.values() for p in case.problems]
    assert all(cases.split_of(p) == "fit" for p in named)
    # every family appears, every draw is in the documented flop range
    assert {cases.family(p) for p in held} == set(cases.FAMILIES)
    assert all(cases.FLOP_RANGE[0] <= p.flops() <= cases.FLOP_RANGE[1] for p in held)
    assert cases.sample(8, seed=3) == cases.sample(8, seed=3)
    with pytest.raises(ValueError, match="sample: split must be one of"):
        cases.sample(1, seed=0, split="train")


def test_bundled_cost_model_refits_from_its_timings():
    """``cost_model.json`` is what ``benchmarks/fit_cost_model.py`` fits from the timings it
    measured (kept in ``benchmarks/cost_model_timings.json``): refitting them gives the bundled
    constants and hedge exactly, and the recorded provenance names that measurement."""
    import json
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        import fit_cost_model
    finally:
        sys.path.remove(str(bench))
    raw = json.loads((bench / "cost_model_timings.json").read_text(encoding="utf-8"))
    constants, hedge, _ = fit_cost_model.fit(raw["rows"])
    bundled = cost_model.read()["cpu"]
    refit = {m: {a: {t: float(f"{v:.4g}") for t, v in c.items()} for a, c in per.items()}
             for m, per in constants.items()}
    assert refit == {m: {a: dict(c) for a, c in per.items()}
                     for m, per in bundled.constants.items()}
    assert hedge == dict(bundled.hedge)
    assert bundled.provenance["measured_at"] == raw["measured_at"]
    # training timed with this jaxconv's gradients (raise TRAINING_REVISION, then re-measure)
    assert raw["training_revision"] == cost_model.TRAINING_REVISION
    assert bundled.provenance["training_revision"] == cost_model.TRAINING_REVISION
