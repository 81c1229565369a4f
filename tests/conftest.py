"""Strict test environment: float64 references available, rank promotion is an error."""

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator per test."""
    return np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="session")
def _isolated_autotune_cache(tmp_path_factory):
    """Keep ``auto`` away from the user's real autotune cache (``~/.cache/jaxconv``)."""
    import os

    old = os.environ.get("JAXCONV_CACHE_DIR")
    os.environ["JAXCONV_CACHE_DIR"] = str(tmp_path_factory.mktemp("jaxconv-cache"))
    yield
    if old is None:
        os.environ.pop("JAXCONV_CACHE_DIR", None)
    else:
        os.environ["JAXCONV_CACHE_DIR"] = old
