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
from jaxconv.conv import _registry, cost_model, select
from jaxconv.conv._registry import ConvConfig

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
    if "fft" not in _registry.names():
        pytest.skip("fft is not registered")
    sel = jaxconv.select_algorithm(*ARTICLE, backend="cpu")
    assert sel.algorithm != "direct", str(sel)
    assert sel.costs[sel.algorithm] < select.MARGIN * sel.costs["direct"]


def test_small_problems_stay_direct():
    sel = jaxconv.select_algorithm((1, 8, 8, 3), (3, 3, 3, 3), backend="cpu")
    assert sel.algorithm == "direct"


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
    assert "no cost-model constants" in sel.unsupported["mystery"]
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


def test_one_by_one_kernels_are_a_gemm():
    """A 1x1 convolution is one GEMM: XLA's own or pointwise's, never a transform; pointwise
    needs channels (a 3 -> 3 GEMM is badly shaped)."""
    sel = jaxconv.select_algorithm((8, 64, 64, 32), (1, 1, 32, 32), backend="cpu")
    assert sel.algorithm in ("direct", "pointwise")
    cat = jaxconv.select_algorithm((1, 320, 400, 3), (1, 1, 3, 3), backend="cpu")
    assert cat.algorithm == "direct"


@pytest.mark.parametrize("kwargs", [dict(stride=2), dict(dilation=2), dict(stride=(1, 2))])
def test_strided_and_dilated_need_the_wider_margin(kwargs):
    """Strided and dilated problems go through the model, with ``ODD_MARGIN``."""
    sel = jaxconv.select_algorithm(*LAYER, backend="cpu", **kwargs)
    others = {a: c for a, c in sel.costs.items() if a != "direct"}
    if sel.algorithm == "direct":
        assert all(c >= select.ODD_MARGIN * sel.costs["direct"] for c in others.values()) or \
            "small problem" in sel.reason
    else:
        assert sel.costs[sel.algorithm] < select.ODD_MARGIN * sel.costs["direct"]
