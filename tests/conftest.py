"""Strict test environment: float64 references available, rank promotion is an error.

Also the one switch between the two tiers: by default the large products (algorithm x case,
property draws) run a seeded sample through :func:`sample` / :func:`cover`, and XLA compiles
fast (:data:`FAST_COMPILE`); ``JAXCONV_FULL_TESTS=1`` (``nox -s tests_full``) runs the products
whole, compiled as users compile them.
"""

import os
import random
from collections.abc import Callable, Iterable
from typing import TypeVar

FULL = os.environ.get("JAXCONV_FULL_TESTS") == "1"

# The default tier compiles fast: without XLA:CPU's LLVM optimizations, and with its older fusion
# code generator instead of the MLIR fusion emitters. The thousands of tiny programs the tests
# build compile in about a quarter of the time, and run the same HLO (other machine code, not
# other operations). The full tier compiles as users do. Set before jax makes its CPU client; a
# run that names an optimization level in XLA_FLAGS keeps its own flags.
FAST_COMPILE = ("--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true "
                "--xla_cpu_use_fusion_emitters=false")
if not FULL and "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

T = TypeVar("T")

# ``pytest --compile-report[=N]``: the programs each test compiled and JAX's seconds per stage.
pytest_plugins = ["compile_report"]

# A long end-to-end test whose lines a cheaper default-tier test also runs: full tier only.
full_only = pytest.mark.skipif(not FULL, reason="full tier only (JAXCONV_FULL_TESTS=1)")


def sample(cases: Iterable[T], k: int, seed: int = 0) -> list[T]:
    """``k`` of ``cases`` drawn with ``seed``, in their original order; all of them when
    ``JAXCONV_FULL_TESTS=1`` or when there are at most ``k``."""
    cases = list(cases)
    if FULL or len(cases) <= k:
        return cases
    keep = sorted(random.Random(seed).sample(range(len(cases)), k))
    return [cases[i] for i in keep]


def cover(items: Iterable[T], levels: Callable[[T], set], k: int = 0, seed: int = 0) -> list[T]:
    """A sample of ``items`` that keeps every level: a greedy cover of the union of
    ``levels(item)`` (e.g. ``{(algorithm, factor, value), ...}``), then :func:`sample` of the rest
    up to ``k`` items in all (every item when ``JAXCONV_FULL_TESTS=1``)."""
    items = list(items)
    todo = set().union(*map(levels, items))
    picked: list[int] = []
    while todo:  # each pick covers at least one level, so this ends
        best = max(range(len(items)), key=lambda i: len(levels(items[i]) & todo))
        picked.append(best)
        todo -= levels(items[best])
    rest = [i for i in range(len(items)) if i not in picked]
    rest = sample(rest, max(k - len(picked), 0), seed)
    return [items[i] for i in sorted(picked + rest)]


def every_level(cases: Iterable[tuple], k: int = 0, seed: int = 0) -> list[tuple]:
    """:func:`cover` of a product of tuples: every value of every position in one case at least,
    ``k`` cases in all (every case when ``JAXCONV_FULL_TESTS=1``)."""
    cases = list(cases)
    if FULL:
        return cases
    return cover(cases, lambda c: {(i, repr(v)) for i, v in enumerate(c)}, k, seed)


def _pairs(levels: dict[str, int]) -> set:
    names = list(levels)
    return {
        ((a, levels[a]), (b, levels[b])) for i, a in enumerate(names) for b in names[i + 1:]
    }


def pairwise_cases(factors: dict[str, list], build: Callable[[dict[str, int]], T],
                   valid: Callable[[T], bool], seed: int = 0,
                   tries: int = 200) -> tuple[list[T], set]:
    """Greedy all-pairs covering (AETG-style) of ``factors`` (``{name: levels}``): cases
    ``build({name: level index})``, ``valid`` ones only, such that every pair of levels of every
    two factors is in one case at least; returns the cases and the pairs no valid case holds."""
    rnd = random.Random(seed)
    names = list(factors)
    uncovered = {
        ((a, i), (b, j))
        for ai, a in enumerate(names)
        for b in names[ai + 1:]
        for i in range(len(factors[a]))
        for j in range(len(factors[b]))
    }
    cases: list[T] = []
    infeasible = set()
    while uncovered:
        target = min(uncovered)
        best, gain = None, 0
        for _ in range(tries):
            levels = {n: rnd.randrange(len(factors[n])) for n in names}
            levels.update(dict(target))
            if not valid(build(levels)):
                continue
            g = len(_pairs(levels) & uncovered)
            if g > gain:
                best, gain = levels, g
        if best is None:
            infeasible.add(target)
            uncovered.discard(target)
            continue
        cases.append(build(best))
        uncovered -= _pairs(best)
    return cases, infeasible


def check_grads_together(named: dict[str, Callable], check: Callable[[Callable], None]) -> None:
    """Run ``check(f)`` (``jax.test_util.check_grads`` calls on ``f``) once for all of ``named``
    (functions of the same arguments): ``f`` is one jitted program returning every function's
    output, so each derivative compiles once instead of once per function. On a failure, and
    with ``JAXCONV_FULL_TESTS=1``, each function is checked alone and the message names it."""

    def each() -> None:
        for name, fn in named.items():
            try:
                check(jax.jit(fn))
            except AssertionError as e:
                raise AssertionError(f"{name}: {e}") from None

    if FULL or len(named) == 1:
        each()
        return
    fns = list(named.values())
    try:
        check(jax.jit(lambda *args: [fn(*args) for fn in fns]))
    except AssertionError:
        each()  # raises, naming the function
        raise


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator per test."""
    return np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="session")
def _isolated_autotune_cache(tmp_path_factory):
    """Keep ``auto`` away from the user's real autotune cache (``~/.cache/jaxconv``)."""
    old = os.environ.get("JAXCONV_CACHE_DIR")
    os.environ["JAXCONV_CACHE_DIR"] = str(tmp_path_factory.mktemp("jaxconv-cache"))
    yield
    if old is None:
        os.environ.pop("JAXCONV_CACHE_DIR", None)
    else:
        os.environ["JAXCONV_CACHE_DIR"] = old


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty autotune cache folder of the test's own; memoized choices forgotten on both sides."""
    from jaxconv.convolution import cache, select

    d = tmp_path / "cache"
    monkeypatch.setenv("JAXCONV_CACHE_DIR", str(d))
    monkeypatch.delenv(select.AUTOTUNE_ENV, raising=False)
    cache.clear_memory_cache()
    select.clear_caches()
    yield d
    cache.clear_memory_cache()
    select.clear_caches()
    select.set_autotune(None)
