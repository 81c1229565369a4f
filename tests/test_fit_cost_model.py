"""The fit's own pieces (``benchmarks/fit_cost_model.py``): the hedge it chooses, how it merges
runs, and the training-only terms it fits."""

import json
import math
import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv
from jaxconv.convolution import _registry, cost_model
from jaxconv.convolution._registry import ConvConfig

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def fit_cost_model():
    sys.path.insert(0, str(_BENCH))
    try:
        import fit_cost_model
    finally:
        sys.path.remove(str(_BENCH))
    return fit_cost_model


def test_the_grid_draws_extra_cnn_layers_from_the_fit_split(fit_cost_model):
    """The round-robin draws first (so a smaller ``--problems`` keeps its problems), then the
    extra ``cnn`` draws: fit split only, no problem twice."""
    from jaxconv.convolution import cases
    drawn = fit_cost_model.drawn_problems(16, seed=3)
    assert drawn[:16] == cases.sample(16, seed=3, split="fit")
    extra = drawn[16:]
    assert 0 < len(extra) <= round(16 * fit_cost_model.EXTRA_DRAWS["cnn"])
    assert all(cases.family(p) == "cnn" and cases.split_of(p) == "fit" for p in extra)
    keys = [(p.x_shape, p.kernel_shape, p.stride, p.padding, p.dilation, p.groups) for p in drawn]
    assert len(set(keys)) == len(keys)


def test_hedge_lets_through_what_the_estimates_rank_right(fit_cost_model):
    # {algorithm: (estimate, measured)}: the lower estimate is the faster algorithm every time,
    # so the hedge must let an estimate 5% below direct's through; of those, the most cautious
    problems = [{"direct": (1.0, 1.0), "fft": (0.95, 0.9)}, {"direct": (1.0, 1.0), "fft": (2.0, 3.0)}]
    assert fit_cost_model.choose_hedge(problems) == 0.975


def test_hedge_keeps_direct_where_near_ties_go_wrong(fit_cost_model):
    # fft estimated 10% below direct but 1.5x slower: a hedge under 0.9 keeps direct; a real
    # 2x win (estimated 0.5) must still get through, so the chosen hedge lies in (0.5, 0.9]
    problems = [{"direct": (1.0, 1.0), "fft": (0.9, 1.5)}] * 3 + [
        {"direct": (1.0, 1.0), "fft": (0.5, 0.5)}]
    h = fit_cost_model.choose_hedge(problems)
    assert 0.5 < h <= 0.9
    assert h == min(fit_cost_model.HEDGES)  # of hedges that work equally, the most cautious


def test_named_and_drawn_problems_weigh_half_each(fit_cost_model):
    # leaving direct for fft loses 2x on three drawn problems and wins 2x on one named one
    drawn = {"direct": (1.0, 1.0), "fft": (0.8, 2.0)}
    named = {"direct": (1.0, 1.0), "fft": (0.8, 0.5)}
    weighted = fit_cost_model.hedge_regrets([drawn] * 3 + [named], [False] * 3 + [True])
    assert weighted[1.0] == pytest.approx(math.log(2) / 2)  # fft everywhere: drawn lose
    assert weighted[0.6] == pytest.approx(math.log(2) / 2)  # direct everywhere: named loses
    plain = fit_cost_model.hedge_regrets([drawn] * 3 + [named])
    assert plain[1.0] == pytest.approx(0.75 * math.log(2))
    assert plain[0.6] == pytest.approx(0.25 * math.log(2))


def test_cross_validation_folds_are_reshuffled_per_repeat(fit_cost_model):
    keys = [f"p{i}" for i in range(10)]
    assignments = [fit_cost_model.folds(keys, r) for r in range(3)]
    for fold in assignments:
        assert sorted(fold) == sorted(keys)
        assert sorted(list(fold.values()).count(f) for f in range(3)) == [3, 3, 4]
    assert assignments[0] != assignments[1] and assignments[0] == fit_cost_model.folds(keys, 0)


def test_training_picks_carry_the_forward_picks_forward(fit_cost_model):
    # forward: fft is picked (0.5 below the 0.9 hedge); in training, mec beside fft's forward
    # costs its own plus fft's forward, estimated and measured; fft's own row is unchanged
    forward = {"p": {"direct": (1.0, 1.1), "fft": (0.5, 0.6)}, "q": {"fft": (1.0, 1.0)}}
    train = {"p": {"direct": (3.0, 3.3), "fft": (2.2, 2.0), "mec": (2.0, 1.9)},
             "q": {"fft": (1.0, 1.0)}}
    out = fit_cost_model.with_forward_pick(train, forward, 0.9)
    assert out["p"] == {"direct": (3.5, 3.9), "fft": (2.2, 2.0), "mec": (2.5, 2.5)}
    assert out["q"] == train["q"]  # no direct estimate forward: nothing to hedge against


def test_a_run_of_some_algorithms_merges_on_the_others_scale(fit_cost_model):
    """A run of a new or changed algorithm (``--algorithms``) is scaled by direct's drift
    against the other runs and replaces that algorithm's rows on the problems it timed; its
    own direct rows do not merge."""
    def row(problem, alg, mode, seconds):
        return {"problem": {"label": problem}, "alg": alg, "mode": mode, "seconds": seconds}

    def run(rows, algorithms=None):
        return {"rows": rows, "machine": "cpu; load 0", "measured_at": "t", "seed": 0,
                "problems": 2, "rounds": 3, "training_revision": 2, "algorithms": algorithms}

    full = run([row(p, "direct", m, 1.0) for p in "ab" for m in ("forward", "train")]
               + [row(p, "new", m, 5.0) for p in "ab" for m in ("forward", "train")])  # before
    # the machine ran 2x slower on the day of the partial run
    part = run([row(p, a, m, 2.0) for p in "ab" for m in ("forward", "train")
                for a in ("direct", "new")], ["new", "direct"])
    merged = fit_cost_model.merge_runs([full, part])
    got = {(r["problem"]["label"], r["alg"], r["mode"]): r["seconds"] for r in merged["rows"]}
    assert got[("a", "new", "forward")] == pytest.approx(1.0)  # 2.0 at half speed; 5.0 gone
    assert sum(r["alg"] == "new" for r in merged["rows"]) == 4
    assert got[("b", "direct", "train")] == 1.0  # the partial run's direct is only the anchor
    # re-timed on one problem only (its plan changed there): the other problem keeps its rows
    only_a = run([row("a", a, m, 2.0) for m in ("forward", "train") for a in ("direct", "new")],
                 ["new", "direct"])
    got = {(r["problem"]["label"], r["alg"], r["mode"]): r["seconds"]
           for r in fit_cost_model.merge_runs([full, only_a])["rows"]}
    assert got[("a", "new", "train")] == pytest.approx(1.0)
    assert got[("b", "new", "train")] == pytest.approx(5.0)
    # re-timed in training only (its gradient changed): its forward rows stay
    train_only = run([row(p, "direct", m, 2.0) for p in "ab" for m in ("forward", "train")]
                     + [row(p, "new", "train", 2.0) for p in "ab"], ["new", "direct"])
    got = {(r["problem"]["label"], r["alg"], r["mode"]): r["seconds"]
           for r in fit_cost_model.merge_runs([full, train_only])["rows"]}
    assert got[("a", "new", "forward")] == pytest.approx(5.0)
    assert got[("a", "new", "train")] == pytest.approx(1.0)
    with pytest.raises(SystemExit, match="one run of every algorithm"):
        fit_cost_model.merge_runs([part, part])
    with pytest.raises(SystemExit, match="must time direct"):
        fit_cost_model.merge_runs([full, run([row("a", "new", "forward", 1.0)], ["new"])])


def test_algorithms_argument_names_the_unknown(fit_cost_model, capsys):
    with pytest.raises(SystemExit):
        fit_cost_model.main(["--algorithms", "magic", "direct", "--dry-run"])
    assert "--algorithms: not registered with cost terms: magic" in capsys.readouterr().err


def test_runs_merge_at_the_geometric_mean(fit_cost_model):
    row = {"problem": {"label": "p"}, "family": "cnn", "alg": "direct", "mode": "forward"}
    a = {"rows": [{**row, "seconds": 1.0}, {**row, "alg": "fft", "seconds": 3.0}],
         "machine": "cpu X; load average 0.1", "measured_at": "t1", "seed": 1, "problems": 4,
         "rounds": 3}
    b = {**a, "rows": [{**row, "seconds": 4.0}], "machine": "cpu X; load average 2",
         "measured_at": "t2"}
    merged = fit_cost_model.merge_runs([a, b])
    by_alg = {r["alg"]: r["seconds"] for r in merged["rows"]}
    assert by_alg == pytest.approx({"direct": 2.0, "fft": 3.0})
    assert merged["measured_at"] == "t1, t2" and merged["rounds"] == 6
    with pytest.raises(SystemExit, match="different machines"):
        fit_cost_model.merge_runs([a, {**b, "machine": "cpu Y"}])


def test_run_to_run_is_the_regret_of_one_runs_fastest_in_another(fit_cost_model):
    def run(times):  # {(label, mode): {alg: seconds}}
        return {"rows": [{"problem": {"label": label}, "family": "cnn", "alg": alg, "mode": mode,
                          "seconds": sec}
                         for (label, mode), algs in times.items() for alg, sec in algs.items()]}

    a = run({("p", "forward"): {"direct": 1.0, "fft": 2.0},
             ("q", "forward"): {"direct": 2.0, "fft": 1.0, "mec": 3.0},
             ("r", "forward"): {"direct": 1.0},  # one algorithm: nothing to compare
             ("p", "train"): {"direct": 1.0, "fft": 2.0}})
    b = run({("p", "forward"): {"direct": 3.0, "fft": 1.5},  # another fastest: 2x
             ("q", "forward"): {"direct": 2.0, "fft": 1.0},  # the same: 1x
             ("r", "forward"): {"direct": 1.0, "fft": 0.5},
             ("p", "train"): {"direct": 1.0, "fft": 2.0}})
    floor = fit_cost_model.run_to_run(a, b)
    assert floor["forward"] == pytest.approx({"geomean": math.sqrt(2.0), "p90": 1.9,
                                              "worst": 2.0, "best_changed": 0.5, "problems": 2})
    assert floor["train"] == pytest.approx({"geomean": 1.0, "p90": 1.0, "worst": 1.0,
                                            "best_changed": 0.0, "problems": 1})


def test_training_rows_of_older_gradients_are_not_merged(fit_cost_model, tmp_path):
    fwd = {"problem": {"label": "p"}, "family": "cnn", "alg": "direct", "mode": "forward"}
    train = {**fwd, "mode": "train"}
    old = {"rows": [{**fwd, "seconds": 1.0}, {**train, "seconds": 9.0}],  # no field: revision 1
           "machine": "cpu X", "measured_at": "t1", "seed": 1, "problems": 4, "rounds": 3}
    new = {**old, "rows": [{**fwd, "seconds": 4.0}, {**train, "seconds": 4.0}],
           "measured_at": "t2", "training_revision": 2}
    merged = fit_cost_model.merge_runs([old, new])
    by_mode = {r["mode"]: r["seconds"] for r in merged["rows"]}
    assert by_mode == pytest.approx({"forward": 2.0, "train": 4.0})  # the old 9.0 is left out
    assert merged["training_measured_at"] == "t2" and merged["training_revision"] == 2
    stale = tmp_path / "old.json"
    stale.write_text(json.dumps(old), encoding="utf-8")
    with pytest.raises(SystemExit, match="measure again"):  # revision 1 < this jaxconv's
        fit_cost_model.main(["--load", str(stale), "--dry-run"])


@pytest.mark.parametrize("name", ["direct", "im2col"])
def test_gradient_terms_are_training_only(name):
    x, k = (2, 16, 16, 8), (3, 3, 8, 4)
    strided = ConvConfig(stride=(2, 2), padding=((1, 1), (1, 1)))
    fwd = cost_model.cost_terms(name, x, k, strided, "forward")
    train = cost_model.cost_terms(name, x, k, strided, "train")
    assert not any(t.startswith(("dx_", "dk_")) for t in fwd)
    assert {t: v for t, v in train.items() if not t.startswith(("dx_", "dk_"))} == fwd
    flop = 2.0 * 2 * 8 * 8 * 9 * 8 * 4  # the forward's: 8x8 outputs at stride 2
    assert train["dx_flop_dilated"] == pytest.approx(4 * flop)  # on the 16x16 input grid
    dense = cost_model.cost_terms(name, x, k, ConvConfig(padding=((1, 1), (1, 1))), "train")
    assert dense["dx_flop_dilated"] == 0.0
    # a strided 1x1 kernel's input gradient has a constant of its own
    one = cost_model.cost_terms(name, x, (1, 1, 8, 4), ConvConfig(stride=(2, 2)), "train")
    assert one["dx_flop_dilated"] == 0.0
    assert one["dx_flop_dilated_1x1"] == pytest.approx(4 * 2.0 * 2 * 8 * 8 * 8 * 4)
    assert train["dx_flop_dilated_1x1"] == 0.0


def test_gemm_gradients_kernel_gradient_path_and_terms():
    """Padded (or few channels): XLA's kernel-gradient convolution, priced by direct's flops per
    path; unpadded stride 1 with many channels: the im2col GEMMs, priced by their flops, patch
    bytes and chunks; the same gradient either way."""
    from jaxconv.convolution import im2col

    x, k = (2, 12, 12, 32), (3, 3, 32, 4)
    padded, valid = ConvConfig(padding=((1, 1), (1, 1))), ConvConfig()
    assert im2col.kernel_gradient_path(k, padded) == "xla"
    assert im2col.kernel_gradient_path(k, valid) == "im2col"
    assert im2col.kernel_gradient_path(k, ConvConfig(stride=(2, 2))) == "xla"
    assert im2col.kernel_gradient_path((3, 3, 8, 4), valid) == "xla"
    for name in ("im2col", "winograd", "winograd4"):
        tp = cost_model.cost_terms(name, x, k, padded, "train")
        tv = cost_model.cost_terms(name, x, k, valid, "train")
        assert tp["dk_flop_padded"] == 2.0 * 2 * 12 * 12 * 9 * 32 * 4 and "dk_gemm_flop" not in tp
        assert tv["dk_gemm_flop"] > 0 and not any(t.startswith("dk_flop") for t in tv)
    rng = np.random.default_rng(0)
    xv = jnp.asarray(rng.standard_normal(x), jnp.float32)
    kv = jnp.asarray(rng.standard_normal(k), jnp.float32)
    for cfg in (padded, valid):
        def loss(kk, alg, cfg=cfg):
            return jnp.sum(jnp.sin(jaxconv.conv2d(xv, kk, padding=cfg.padding, algorithm=alg)))
        want = jax.grad(loss)(kv, "direct")
        for alg in ("im2col", "winograd"):
            np.testing.assert_allclose(jax.grad(loss)(kv, alg), want, rtol=2e-4, atol=2e-4)


def test_winograd_input_gradient_is_its_own_convolution(rng):
    """Stride 1, padding up to k - 1 per side, 48 input channels per group or more: the input
    gradient is the algorithm's own convolution of the output gradient (the kernel flipped,
    channels swapped per group; no XLA convolution in its program), priced by the algorithm's
    terms of that problem (``dx_own_*``); otherwise XLA's transposed convolution and direct's
    terms."""
    from jaxconv.convolution import im2col

    xs, ks = (2, 7, 6, 96), (3, 3, 48, 6)
    cfg = ConvConfig(padding=((2, 0), (1, 1)), groups=2)
    assert im2col.input_gradient_path(ks, cfg) == "own"
    assert im2col.input_gradient_problem(xs, ks, cfg) == (
        (2, 7, 6, 6), (3, 3, 3, 96), ConvConfig(padding=((0, 2), (1, 1)), groups=2))
    wide = cfg.replace(padding=((3, 0), (1, 1)))
    for k_shape, config in [(ks, wide), (ks, cfg.replace(stride=(2, 1))),
                            (ks, cfg.replace(dilation=(1, 2))), ((3, 3, 47, 6), cfg)]:
        assert im2col.input_gradient_path(k_shape, config) == "xla", (k_shape, config)
    k = rng.standard_normal((3, 3, 2, 6))
    kt = np.asarray(im2col.transposed_kernel(jnp.asarray(k), 2))
    for g in range(2):  # kt[i, j, o, g*2 + c] = k[2 - i, 2 - j, c, g*3 + o]
        np.testing.assert_array_equal(kt[:, :, :, 2 * g:2 * g + 2],
                                      k[::-1, ::-1, :, 3 * g:3 * g + 3].transpose(0, 1, 3, 2))
    x = jnp.asarray(rng.standard_normal(xs), jnp.float32)
    kv = jnp.asarray(rng.standard_normal(ks), jnp.float32)
    # an XLA convolution out to the input's 96 channels is XLA's input gradient
    dx_conv = re.compile(r"f32\[2,\d+,\d+,96\] = conv_general_dilated")
    for name in ("winograd", "winograd4"):
        conv = _registry.get(name).fn

        def input_gradient(x, pads, fn=conv):
            return jax.grad(lambda xx: jnp.sum(jnp.sin(fn(xx, kv, cfg.replace(padding=pads)))))(x)
        assert not dx_conv.search(str(jax.make_jaxpr(input_gradient, static_argnums=1)(
            x, cfg.padding))), name
        # (conv2d itself pads the input by what is wider than the kernel: this is the fallback)
        assert dx_conv.search(str(jax.make_jaxpr(input_gradient, static_argnums=1)(
            x, wide.padding))), name
        terms = cost_model.cost_terms(name, xs, ks, cfg, "train")
        m = 2 if name == "winograd" else 4
        tiles = 2 * math.ceil(7 / m) * math.ceil(6 / m)  # over the input's grid
        assert terms["dx_own_flop"] == 2 * (m + 2) ** 2 * tiles * 3 * 96  # (3, 3, 3, 96) kernel
        assert not any(t.startswith("dx_flop") for t in terms)
        fallback = cost_model.cost_terms(name, xs, ks, wide, "train")
        assert "dx_own_flop" not in fallback and any(t.startswith("dx_flop") for t in fallback)
    assert not any(t.startswith("dx_own") for t in cost_model.cost_terms(
        "im2col", xs, ks, cfg, "train"))


def test_every_algorithm_prices_output_positions():
    x, k = (1, 20, 24, 3), (1, 1, 3, 3)
    for name in ("pointwise", "im2col", "mec", "fft"):
        assert cost_model.cost_terms(name, x, k, ConvConfig())["pixel"] == 20 * 24, name
    direct = cost_model.cost_terms("direct", x, k, ConvConfig())
    # priced per path: "pixel" is its unpadded path's, the 1x1 path has its own
    assert direct["pixel"] == 0.0 and direct["pixel_1x1"] == 20 * 24
    assert math.isfinite(cost_model.model("cpu").estimate(
        "pointwise", x, k, "float32", ConvConfig()))
