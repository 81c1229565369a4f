"""The API reference (docs/api.rst) documents every public name of ``jaxconv``."""

from __future__ import annotations

import re
from pathlib import Path

import jaxconv

API_RST = Path(__file__).resolve().parents[1] / "docs" / "api.rst"


def test_api_reference_lists_every_public_name():
    """A name counts as documented when an autodoc directive names it (a mention in prose does
    not), so a new public function fails here until it is added to the reference."""
    text = API_RST.read_text(encoding="utf-8")
    documented = set(
        re.findall(r"^\.\. auto(?:function|class|module|data):: jaxconv\.(\w+)\s*$", text, re.M)
    )
    missing = sorted(set(jaxconv.__all__) - documented)
    assert not missing, f"docs/api.rst has no autodoc entry for {missing}"


def test_conv_is_the_function_and_the_subpackage_has_its_own_name():
    """``jaxconv.conv`` is the N-d convolution function, whatever was imported before; the
    algorithms, selector and autotuner are reached through ``jaxconv.convolution``."""
    import importlib

    import jaxconv.convolution

    sub = importlib.import_module("jaxconv.convolution")
    assert callable(jaxconv.conv) and not hasattr(jaxconv.conv, "__path__")
    assert jaxconv.convolution is sub and hasattr(sub, "__path__")
    assert sub.autotune is jaxconv.autotune and sub.cost_model.bundled()
