"""Layer specs: parsing, shapes (the article's table), Glorot init, apply vs the ops, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv
from jaxconv import layers
from jaxconv.layers import SpecError

# The article's stacks and output shapes on the 320x400 cat (from the original notebook).
ARTICLE = {
    "conv3x3:3": (318, 398, 3),
    "conv10x10:3": (311, 391, 3),
    "conv3x3:1": (318, 398, 1),
    "conv15x15:1": (306, 386, 1),
    "conv3x3:3,maxpool2": (159, 199, 3),
    "conv3x3:1,maxpool5": (63, 79, 1),
    "conv3x3:3,relu,maxpool5": (63, 79, 3),
    "conv3x3:1,relu,maxpool3,conv3x3:1,relu,maxpool3": (34, 43, 1),
    "conv3x3:3,relu,maxpool3,conv3x3:1,relu,maxpool2": (52, 65, 1),
    "conv3x3:3,relu,maxpool3,conv3x3:3,relu,maxpool2": (52, 65, 3),
}


@pytest.mark.parametrize(("spec", "shape"), ARTICLE.items())
def test_article_shapes(spec, shape):
    assert layers.output_shape(spec, (320, 400, 3)) == shape
    out_shape, _ = layers.build(spec)[0](0, (1, 320, 400, 3))
    assert out_shape == (1, *shape)


def test_parse_tokens_whitespace_case_and_rectangles():
    parsed = layers.parse(" conv3x3:3 , ReLU,Leaky-ReLU, maxpool5,avgpool2,conv3x5:2 ")
    assert [p.kind for p in parsed] == ["conv", "act", "act", "maxpool", "avgpool", "conv"]
    assert [p.name for p in parsed] == ["conv3x3:3", "relu", "leaky_relu", "maxpool5", "avgpool2", "conv3x5:2"]
    assert parsed[0].kernel == (3, 3) and parsed[0].filters == 3
    assert parsed[5].kernel == (3, 5)
    assert parsed[3].window == 5


def test_stage_names_are_unique_in_order():
    parsed = layers.parse("conv3x3:1,relu,maxpool3,conv3x3:1,relu,maxpool3")
    assert layers.stage_names(parsed) == [
        "conv3x3:1", "relu", "maxpool3", "conv3x3:1_2", "relu_2", "maxpool3_2",
    ]


def test_glorot_uniform_bounds_and_variance():
    _, params = layers.build("conv3x3:64")[0](0, (8, 8, 64))
    k = np.asarray(params[0]["kernel"])
    limit = math.sqrt(6 / (9 * 64 + 9 * 64))
    assert k.shape == (3, 3, 64, 64) and k.dtype == np.float32
    assert np.abs(k).max() <= limit
    np.testing.assert_allclose(k.var(), limit**2 / 3, rtol=0.05)  # Var U(-a, a) = a^2 / 3
    np.testing.assert_array_equal(params[0]["bias"], np.zeros(64))


def test_init_is_deterministic_per_seed():
    init, _ = layers.build("conv3x3:3,relu,conv3x3:2")
    _, a = init(7, (10, 10, 3))
    _, b = init(7, (10, 10, 3))
    _, c = init(8, (10, 10, 3))
    for pa, pb in zip(a, b, strict=True):
        for key in pa:
            np.testing.assert_array_equal(pa[key], pb[key])
    assert not np.array_equal(a[0]["kernel"], c[0]["kernel"])
    assert a[1] == {} and a[2]["kernel"].shape == (3, 3, 3, 2)
    _, d = init(jax.random.key(7), (10, 10, 3))  # a key works as well as a seed
    np.testing.assert_array_equal(a[0]["kernel"], d[0]["kernel"])


def test_apply_matches_the_ops_and_returns_every_stage(rng):
    x = jnp.asarray(rng.random((2, 12, 14, 3)), jnp.float32)
    init, apply = layers.build("conv3x3:4,relu,maxpool2,conv2x2:1,tanh,avgpool2")
    out_shape, params = init(0, x.shape)
    y, stages = apply(params, x)
    assert y.shape == out_shape == (2, 2, 2, 1)
    assert list(stages) == ["conv3x3:4", "relu", "maxpool2", "conv2x2:1", "tanh", "avgpool2"]
    ref = jaxconv.conv2d(x, params[0]["kernel"], params[0]["bias"])
    np.testing.assert_array_equal(stages["conv3x3:4"], ref)
    ref = jaxconv.max_pool2d(jaxconv.relu(ref), 2)
    np.testing.assert_array_equal(stages["maxpool2"], ref)
    ref = jaxconv.avg_pool2d(jnp.tanh(jaxconv.conv2d(ref, params[3]["kernel"], params[3]["bias"])), 2)
    np.testing.assert_allclose(y, ref, rtol=1e-6)
    assert stages["avgpool2"] is y
    y1, _ = apply(params, x[0])  # unbatched in, unbatched out
    np.testing.assert_allclose(y1, y[0], rtol=1e-6)


@pytest.mark.parametrize(
    ("spec", "match", "column", "width"),
    [
        ("conv3x3:3,relu,conv3x3,maxpool2", r"layer 3 'conv3x3': unknown layer; a convolution is convKxK:F", 15, 7),
        ("conv3x3:3,,relu", r"layer 2 \(empty\): empty layer \(stray comma\)", 10, 1),
        ("conv3x3:3, relux", r"layer 2 'relux': unknown layer; expected convKxK:F .* activations: elu", 11, 5),
        ("maxpool0", r"layer 1 'maxpool0': the pooling window must be >= 1", 0, 8),
        ("conv0x3:3", r"layer 1 'conv0x3:3': kernel size and filters must be >= 1", 0, 9),
        ("conv3x3:3,maxpoolx", r"layer 2 'maxpoolx': unknown layer; pooling is maxpoolP or avgpoolP", 10, 8),
        ("   ", r"column 1: the spec is empty", 0, 3),
    ],
)
def test_bad_specs_point_at_the_token(spec, match, column, width):
    with pytest.raises(SpecError, match=match) as info:
        layers.parse(spec)
    e = info.value
    assert isinstance(e, ValueError)
    head, shown, caret = str(e).split("\n")
    assert head.startswith("layers: bad spec, ") and "\n" not in e.reason
    assert shown == "    " + spec
    assert caret == "    " + " " * column + "^" * width


def test_kernel_or_window_that_does_not_fit():
    init, _ = layers.build("conv15x15:1,maxpool20")
    with pytest.raises(SpecError, match=r"layer 2 'maxpool20': a 20x20 pooling window does not fit its 6x16 input"):
        init(0, (20, 30, 3))
    with pytest.raises(SpecError, match=r"layer 1 'conv15x15:1': a 15x15 kernel does not fit its 10x30 input"):
        init(0, (10, 30, 3))


def test_type_and_shape_errors():
    with pytest.raises(TypeError, match="layers: spec must be a string"):
        layers.parse(["conv3x3:3"])
    init, apply = layers.build("relu")
    with pytest.raises(ValueError, match=r"input_shape must be \(H, W, C\) or \(N, H, W, C\)"):
        init(0, (3, 3))
    with pytest.raises(ValueError, match="params has 0 entries but the spec has 1 layers"):
        apply([], jnp.zeros((3, 3, 1)))
