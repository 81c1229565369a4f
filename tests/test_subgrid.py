"""What is specific to ``subgrid_winograd`` / ``subgrid_winograd4`` (dilated convolutions on the
input's sub-grids; the shared products of ``test_conv.py`` run them on the cases they serve)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
from compositions import composed
from ref_conv import conv2d_ref
from tolerances import assert_close

import jaxconv
from jaxconv.convolution import cost_model
from jaxconv.convolution._registry import ConvConfig, get
from jaxconv.convolution.direct import conv_direct
from jaxconv.convolution.subgrid import subgrid_problem

NAMES = ("subgrid_winograd", "subgrid_winograd4")

# Dilation on both axes, on one only, unequal; padding asymmetric, wider than the kernel, none;
# sizes that are not multiples of the dilation; groups and a channel multiplier.
CASES = [
    ((2, 9, 11, 4), (3, 3, 4, 6), ConvConfig(padding=((2, 2), (2, 2)), dilation=(2, 2))),
    ((1, 12, 10, 6), (3, 3, 2, 6), ConvConfig(padding=((1, 3), (0, 2)), dilation=(3, 1),
                                              groups=3)),
    ((2, 8, 9, 2), (3, 3, 2, 3), ConvConfig(dilation=(1, 2))),
    ((1, 7, 7, 3), (3, 3, 1, 6), ConvConfig(padding=((5, 4), (4, 5)), dilation=(2, 3),
                                            groups=3)),
]


def test_the_sub_grid_problem():
    """Known answer: the padded 13x15 input cut into 2x2 sub-grids of 7x8 (rounded up), the
    undilated kernel, no padding, the groups kept."""
    config = ConvConfig(padding=((2, 2), (2, 2)), dilation=(2, 2), groups=2)
    xs, ks, config2 = subgrid_problem((2, 9, 11, 4), (3, 3, 2, 6), config)
    assert (xs, ks) == ((8, 7, 8, 4), (3, 3, 2, 6))
    assert config2 == ConvConfig(groups=2)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_values_and_gradients(name, case, rng):
    """Values against the float64 reference; reverse and forward mode against direct's."""
    xs, ks, config = CASES[case]
    x, k = jnp.asarray(rng.normal(size=xs)), jnp.asarray(rng.normal(size=ks))
    fn = get(name).fn
    y = jax.jit(fn, static_argnums=2)(x, k, config)
    ref = conv2d_ref(np.asarray(x), np.asarray(k), padding=config.padding,
                     dilation=config.dilation, groups=config.groups)
    assert y.shape == ref.shape
    assert_close(y, ref, algorithm=name)
    ct = jnp.asarray(rng.normal(size=ref.shape))
    t = (jnp.asarray(rng.normal(size=xs)), jnp.asarray(rng.normal(size=ks)))

    @functools.partial(jax.jit, static_argnums=0)
    def derivatives(f, x, k):
        f = functools.partial(f, config=config)
        return jax.vjp(f, x, k)[1](ct), jax.jvp(f, (x, k), t)[1]

    for g, w in zip(jax.tree.leaves(derivatives(fn, x, k)),
                    jax.tree.leaves(derivatives(conv_direct, x, k)), strict=True):
        assert_close(g, np.asarray(w), algorithm=name)


def test_what_they_serve_and_why_not():
    check = get("subgrid_winograd4").unsupported_reason
    dilated = ConvConfig(padding=((2, 2), (2, 2)), dilation=(2, 2))
    assert check((1, 9, 9, 2), (3, 3, 2, 2), np.float32, dilated) is None
    assert "serves dilated convolutions" in check((1, 9, 9, 2), (3, 3, 2, 2), np.float32,
                                                  ConvConfig())
    assert "serves stride 1" in check((1, 9, 9, 2), (3, 3, 2, 2), np.float32,
                                      dilated.replace(stride=(2, 2)))
    assert check((1, 9, 9, 2), (5, 5, 2, 2), np.float32, dilated).startswith(
        "subgrid_winograd4, on the sub-grids: winograd")
    assert "2-D" in check((1, 9, 9, 9, 2), (3, 3, 3, 2, 2), np.float32,
                          ConvConfig(stride=(1,) * 3, padding=((0, 0),) * 3, dilation=(2,) * 3))
    with pytest.raises(ValueError, match="subgrid_winograd serves dilated convolutions"):
        jaxconv.conv2d(np.ones((1, 8, 8, 2)), np.ones((3, 3, 2, 2)), algorithm="subgrid_winograd")


@pytest.mark.parametrize("mode", cost_model.MODES)
def test_estimated_as_winograd_on_the_sub_grids(mode):
    """Known answer: the estimate is the inner algorithm's on the sub-grid problem."""
    model = cost_model.model("cpu", calibrated=False)
    config = ConvConfig(padding=((2, 2), (2, 2)), dilation=(2, 2))
    xs, ks = (8, 32, 32, 64), (3, 3, 64, 64)
    xs2, ks2, config2 = subgrid_problem(xs, ks, config)
    for name, inner in zip(NAMES, ("winograd", "winograd4"), strict=True):
        got = model.estimate(name, xs, ks, np.float32, config, mode)
        assert got is not None
        assert got == model.estimate(inner, xs2, ks2, np.float32, config2, mode)
    sel = jaxconv.select_algorithm(xs, ks, padding=2, dilation=2, backend="cpu")
    assert set(NAMES) <= set(sel.costs)


@pytest.mark.parametrize("name", NAMES)
def test_check_grads_and_vmap(name, rng):
    """Second order by finite differences (conv is bilinear: eps=1 is exact), and the gradient
    under vmap over images equal to a loop over them."""
    kw = dict(padding=((2, 1), (1, 2)), dilation=(2, 3), algorithm=name)
    x, k = rng.normal(size=(2, 7, 8, 2)), rng.normal(size=(3, 3, 2, 3))

    @jax.jit
    def f(x, k):
        return jaxconv.conv2d(x, k, **kw)

    jax.test_util.check_grads(f, (x, k), order=2, modes=("fwd",), eps=1.0)
    jax.test_util.check_grads(lambda x: f(x, k), (x,), order=2, modes=("rev",), eps=1.0)

    def loss(k, xi):
        return jnp.sum(jnp.sin(jaxconv.conv2d(xi, k, **kw)))

    per_image = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(k, x[:, None])
    loop = np.stack([jax.jit(jax.grad(loss))(k, x[i:i + 1]) for i in range(2)])
    assert_close(per_image, loop, algorithm=name)


@pytest.mark.parametrize("name", NAMES)
def test_composed_transformations(name, rng):
    """vmap inside grad and jvp, grad inside vmap: direct's derivatives."""
    x = rng.normal(size=(2, 1, 8, 7, 2))
    k = rng.normal(size=(3, 3, 2, 3))
    kw = dict(padding="SAME", dilation=2)

    def conv(x, k, a):
        return jaxconv.conv2d(x, k, algorithm=a, **kw)

    for transformed in composed(conv, lambda y: jnp.sum(jnp.sin(y)), x, k):
        run = jax.jit(transformed, static_argnums=0)
        for got, want in zip(jax.tree.leaves(run(name)), jax.tree.leaves(run("direct")),
                             strict=True):
            assert_close(got, np.asarray(want), algorithm=name)
