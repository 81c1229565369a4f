"""``auto``'s switch to its training choice, under every transformation stack.

When ``auto``'s forward choice and its training choice differ, ``conv2d`` runs one algorithm and
differentiates through another (``_conv2d._switch_when_differentiated``). This is a property
test: random problems, a random ordered pair of algorithms that both serve the problem (forced as
``auto``'s forward and training choices, so it does not depend on today's cost model), and a
random stack of ``jit``, ``vmap`` (over images, kernels or both), ``grad``, ``jvp``, ``vjp``,
``jacfwd``/``jacrev``, ``hessian`` and ``checkpoint``, in both nesting orders. Each result must
equal the same stack run with the named training algorithm and with ``direct``.

The default run keeps every stack, both jit modes and every algorithm as the forward and as the
training choice (a greedy cover); ``JAXCONV_FULL_TESTS=1`` runs every (draw, stack) pair.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FULL, cover

import jaxconv
from jaxconv.convolution import _registry, select
from jaxconv.convolution._canonical import canonicalize

B = 2  # the vmapped axis


def _problems(count: int, seed: int):
    """Random small 2-D problems with an ordered pair (forward, train) of distinct algorithms."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        c = int(rng.choice([1, 2, 3, 4]))
        groups = int(rng.choice([1, c])) if c > 1 else 1
        o = groups * int(rng.choice([1, 2]))
        k = int(rng.choice([1, 2, 3, 5]))
        size = int(rng.integers(k + 2, k + 6))
        cfg = dict(stride=int(rng.choice([1, 1, 2])), dilation=int(rng.choice([1, 1, 2])),
                   padding=str(rng.choice(["VALID", "SAME"])), groups=groups)
        x_shape, k_shape = (1, size, size, c), (k, k, c // groups, o)
        *_, canon = canonicalize("test", jax.ShapeDtypeStruct(x_shape, jnp.float32),
                                 jax.ShapeDtypeStruct(k_shape, jnp.float32), **cfg)
        ok = _registry.applicable(canon.x_shape, canon.kernel_shape, jnp.float32, canon.config)
        if len(ok) < 2:
            continue
        fwd, train = (str(a) for a in rng.choice(ok, size=2, replace=False))
        out.append((x_shape, k_shape, cfg, fwd, train))
    return out


def _loss(conv):
    return lambda x, k: jnp.sum(jnp.sin(conv(x, k)))


# Each stack takes (conv, x, k, xb, kb, tx, tk) and returns a pytree of arrays; ``conv(x, k)``
# is the convolution under test. x: (1, H, W, C), xb: (B, 1, H, W, C), likewise for kernels.
STACKS = {
    "grad(vmap over kernels)": lambda conv, x, k, xb, kb, tx, tk: jax.grad(
        lambda kb: jax.vmap(lambda kk: _loss(conv)(x, kk))(kb).sum())(kb),
    "grad(vmap over images)": lambda conv, x, k, xb, kb, tx, tk: jax.grad(
        lambda xb: jax.vmap(lambda xx: _loss(conv)(xx, k))(xb).sum())(xb),
    "grad(vmap over both)": lambda conv, x, k, xb, kb, tx, tk: jax.grad(
        lambda xb, kb: jax.vmap(_loss(conv))(xb, kb).sum(), argnums=(0, 1))(xb, kb),
    "vmap(grad) over kernels": lambda conv, x, k, xb, kb, tx, tk: jax.vmap(
        jax.grad(_loss(conv), argnums=(0, 1)), in_axes=(None, 0))(x, kb),
    "vmap(grad) over images": lambda conv, x, k, xb, kb, tx, tk: jax.vmap(
        jax.grad(_loss(conv), argnums=(0, 1)), in_axes=(0, None))(xb, k),
    "jvp(vmap)": lambda conv, x, k, xb, kb, tx, tk: jax.jvp(
        jax.vmap(conv), (xb, kb), (tx, tk)),
    "vmap(jvp)": lambda conv, x, k, xb, kb, tx, tk: jax.vmap(
        lambda a, b, ta, tb: jax.jvp(conv, (a, b), (ta, tb)))(xb, kb, tx, tk),
    "vjp(vmap)": lambda conv, x, k, xb, kb, tx, tk: (lambda y, f: f(jnp.cos(y)))(
        *jax.vjp(jax.vmap(conv, in_axes=(None, 0)), x, kb)),
    "jacfwd": lambda conv, x, k, xb, kb, tx, tk: jax.jacfwd(conv, argnums=1)(x, k),
    "jacrev(vmap)": lambda conv, x, k, xb, kb, tx, tk: jax.jacrev(
        lambda kb: jax.vmap(conv, in_axes=(None, 0))(x, kb).sum(axis=(1, 2, 3)))(kb),
    "hessian": lambda conv, x, k, xb, kb, tx, tk: jax.hessian(_loss(conv), argnums=1)(x, k),
    "vmap(hessian)": lambda conv, x, k, xb, kb, tx, tk: jax.vmap(
        jax.hessian(_loss(conv), argnums=1), in_axes=(0, None))(xb, k),
    "grad(checkpoint(vmap))": lambda conv, x, k, xb, kb, tx, tk: jax.grad(
        lambda xb, kb: jax.checkpoint(jax.vmap(_loss(conv)))(xb, kb).sum(),
        argnums=(0, 1))(xb, kb),
    "vmap(grad(checkpoint))": lambda conv, x, k, xb, kb, tx, tk: jax.vmap(
        jax.grad(jax.checkpoint(_loss(conv)), argnums=1))(xb, kb),
}

_DRAWS = _problems(40, seed=2026)
_ALL = [(d, s, j) for d in range(len(_DRAWS)) for s in STACKS for j in (False, True)]
_CASES = _ALL if FULL else cover(_ALL, lambda c: {
    ("stack", c[1]), ("jit", c[2]), ("forward", _DRAWS[c[0]][3]), ("train", _DRAWS[c[0]][4])})


def _ids(case):
    d, s, j = case
    *_, fwd, train = _DRAWS[d]
    return f"{fwd}->{train}-{s}{'-jit' if j else ''}-{d}"


@pytest.fixture
def forced_switch(monkeypatch):
    """Make ``auto`` choose ``fwd`` forward and ``train`` when differentiated."""
    choice = {}
    original = select.choose_algorithm

    def choose(x_shape, kernel_shape, dtype, config, backend=None, mode="forward"):
        if choice:
            return choice[mode]
        return original(x_shape, kernel_shape, dtype, config, backend, mode)

    monkeypatch.setattr(select, "choose_algorithm", choose)
    return choice


@pytest.mark.parametrize("case", _CASES, ids=[_ids(c) for c in _CASES])
def test_switch_matches_the_named_algorithms(case, forced_switch):
    d, stack_name, jitted = case
    x_shape, k_shape, cfg, fwd, train = _DRAWS[d]
    stack = STACKS[stack_name]
    rng = np.random.default_rng(d)
    draw = lambda *s: jnp.asarray(rng.standard_normal(s), jnp.float32)  # noqa: E731
    x, k = draw(*x_shape), draw(*k_shape)
    xb, kb = draw(B, *x_shape), draw(B, *k_shape)
    tx, tk = draw(B, *x_shape), draw(B, *k_shape)

    def run(algorithm):
        conv = lambda a, b: jaxconv.conv2d(a, b, algorithm=algorithm, **cfg)  # noqa: E731
        f = lambda *args: stack(conv, *args)  # noqa: E731
        return (jax.jit(f) if jitted else f)(x, k, xb, kb, tx, tk)

    forced_switch.update(forward=fwd, train=train)
    got = run("auto")
    forced_switch.clear()
    # The training algorithm's own stack is the reference; the full tier also checks both
    # against direct (each algorithm's transformations against direct are test_conv's).
    for name in (train, "direct") if FULL else (train,):
        want = run(name)
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            assert g.shape == w.shape, f"{stack_name}: shape {g.shape} != {name}'s {w.shape}"
            scale = float(jnp.max(jnp.abs(w))) or 1.0
            err = float(jnp.max(jnp.abs(g - w))) / scale
            assert err < 2e-4, f"{stack_name} ({fwd}->{train}): relative error {err:.2e} vs {name}"


def test_the_sample_covers_every_stack_and_both_jit_modes():
    assert {c[1] for c in _CASES} == set(STACKS)
    assert {c[2] for c in _CASES} == {False, True}
    assert len({(_DRAWS[c[0]][3], _DRAWS[c[0]][4]) for c in _CASES}) >= 8
