"""Padding wider than the kernel: the input gradient of every algorithm stays right.

The input gradient of a convolution is a convolution with padding ``extent - 1 - pad``; XLA:CPU
(jax 0.10, float32) returns garbage (values up to 1e35) when that is negative, i.e. when a side's
padding exceeds the dilated kernel's extent less one. ``direct`` adds such padding to the input
itself (``direct.split_padding``); these are problems plain ``lax.conv_general_dilated`` gets
wrong, checked for every algorithm against a float64 NumPy Jacobian.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import cover
from ref_conv import conv_ref

import jaxconv
from jaxconv.convolution import _registry
from jaxconv.convolution._registry import ConvConfig
from jaxconv.convolution.direct import split_padding

# (x shape, kernel shape, padding, stride, dilation): the first three are lax's own failures
PROBLEMS = [
    ((2, 3, 3, 1), (3, 3, 1, 2), ((4, 1), (4, 0)), 1, 1),
    ((2, 4, 3, 2), (2, 2, 2, 3), ((4, 0), (4, 2)), 1, 1),
    ((2, 5, 2, 2), (3, 2, 2, 2), ((4, 0), (5, 4)), 1, 1),
    ((2, 5, 4, 2), (3, 3, 2, 2), ((5, 3), (4, 4)), 2, 1),
    ((1, 6, 5, 1), (2, 3, 1, 2), ((5, 2), (3, 6)), 1, 2),
    ((2, 7, 2), (3, 2, 3), ((5, 4),), 1, 1),
    ((1, 3, 3, 3, 1), (2, 2, 2, 1, 2), ((3, 0), (0, 3), (2, 2)), 1, 1),
]


def _dx_ref(x, k, g, padding, stride, dilation):
    """``J^T g`` of the (linear in x) float64 reference, one basis vector at a time."""
    cols = [conv_ref(e.reshape(x.shape), k, padding=padding, stride=stride,
                     dilation=dilation).ravel() for e in np.eye(x.size)]
    return (np.stack(cols) @ g.ravel()).reshape(x.shape)


def _all_cases():
    for i, (xs, ks, pads, s, d) in enumerate(PROBLEMS):
        sp = len(xs) - 2
        cfg = ConvConfig(stride=(s,) * sp, padding=pads, dilation=(d,) * sp)
        for name in _registry.applicable(xs, ks, jnp.float32, cfg):
            yield i, name


def _levels(case):
    """Every problem, every algorithm on one of lax's own failures and on every spatial rank it
    serves here."""
    i, name = case
    levels = {("problem", i), ("algorithm", name, len(PROBLEMS[i][0]))}
    return levels | ({("lax failure", name)} if i < 3 else set())


# 38 (problem, algorithm) pairs; by default a cover of their levels (every pair with
# JAXCONV_FULL_TESTS=1).
CASES = cover(_all_cases(), _levels)


def _cases():
    for i, name in CASES:
        xs, ks, pads, s, d = PROBLEMS[i]
        yield pytest.param(xs, ks, pads, s, d, name, id=f"{name}-{xs}-{pads}-s{s}d{d}")


def test_the_cases_keep_every_algorithm_and_problem():
    every = list(_all_cases())
    assert {i for i, _ in CASES} == set(range(len(PROBLEMS)))
    assert {n for _, n in CASES} == {n for _, n in every}
    assert {n for i, n in CASES if i < 3} == {n for i, n in every if i < 3}


@pytest.mark.parametrize("xs,ks,pads,s,d,name", list(_cases()))
def test_input_gradient_with_padding_wider_than_the_kernel(xs, ks, pads, s, d, name):
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal(xs), rng.standard_normal(ks)
    y_ref = conv_ref(x, k, padding=pads, stride=s, dilation=d)
    g = rng.standard_normal(y_ref.shape)
    y, vjp = jax.vjp(lambda x: jaxconv.conv(x, jnp.asarray(k, jnp.float32), stride=s,
                                            padding=pads, dilation=d, algorithm=name),
                     jnp.asarray(x, jnp.float32))
    (dx,) = vjp(jnp.asarray(g, jnp.float32))
    dx_ref = _dx_ref(x, k, g, pads, s, d)
    np.testing.assert_allclose(np.asarray(y), y_ref, atol=1e-4 * np.abs(y_ref).max())
    np.testing.assert_allclose(np.asarray(dx), dx_ref, atol=1e-4 * np.abs(dx_ref).max())


def test_split_padding_keeps_the_total_and_leaves_xla_the_kernels_reach():
    inner, outer = split_padding(((4, 1), (0, 7), (-2, 3)), (3, 1, 2), (1, 1, 3))
    assert inner == ((2, 1), (0, 0), (-2, 3))
    assert outer == ((2, 0), (0, 7), (0, 0))
