"""Sphinx configuration: ``nox -s docs`` builds the site into docs/_build/html (warnings fail)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the jaxconv of this checkout
sys.path.insert(0, str(ROOT / "examples"))  # _gallery, for the example scripts and the scraper
# The example scripts write their figures here (not into figures/ of the checkout).
os.environ.setdefault("JAXCONV_FIGURES_OUT", str(ROOT / "docs" / "_build" / "figures"))
os.environ.setdefault("JAXCONV_FIGURES_PROGRESS", "0")  # the pages show the scripts' own output
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import jaxconv  # noqa: E402

project = "jaxconv"
author = "jaxconv developers"
copyright = "jaxconv developers"
release = version = jaxconv.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# algorithms.md is shown by algorithms-in-detail.md (it has two top-level sections).
exclude_patterns = ["_build", "algorithms.md", "gallery/*.ipynb", "gallery/*.py", "gallery/*.zip", "gallery/*.json"]
# The pages of docs/*.md start at "##" (they were written for GitHub): not an error here.
suppress_warnings = ["myst.header"]

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_type_aliases = {"ArrayLike": "jax.typing.ArrayLike"}
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "gallery",
    "filename_pattern": r"/\d\d_",  # run every numbered script
    "ignore_pattern": r"_gallery\.py|make_cat\.py|train_lenet\.py",
    "image_scrapers": ("_gallery.scraper",),
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "capture_repr": (),  # print() output only, not the value of a block's last line
    "show_signature": False,
    "min_reported_time": 1e9,
    "abort_on_example_error": True,
}

html_theme = "furo"
html_title = f"jaxconv {release}"
html_static_path: list[str] = []
MathJax_path = None
