"""Developer sessions: ``nox -s tests``, ``tests_full``, ``lint``, ``figures``, ``docs``, ``build``,
``bench``."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

# torch is a test-only reference (parity checks). On machines with a local CPU wheel
# (pip's find-links) set JAXCONV_TEST_TORCH=1 to install it; .ci/run does this when it can.
TORCH = "torch==2.13.0"


def _pytest(session: nox.Session, **env: str) -> None:
    session.install("-e", ".[test]")
    if os.environ.get("JAXCONV_TEST_TORCH") == "1":
        session.install(TORCH)
    # testpaths: tests/ and jaxconv/ (--doctest-modules, in pyproject.toml, runs every Examples block).
    session.run("pytest", *(session.posargs or ["-n", "2"]), env={"JAX_PLATFORMS": "cpu", **env})


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite and the docstrings' examples (parity with torch when JAXCONV_TEST_TORCH=1).

    The large products run a seeded sample that keeps every algorithm, argument, layout and dtype,
    compiled with XLA's fast flags (tests/conftest.py); the long end-to-end runs (the examples'
    figures, the bench sweep, four devices) are left to ``tests_full``.
    """
    _pytest(session)


@nox.session(default=False)
def tests_full(session: nox.Session) -> None:
    """``tests`` with every product whole, the long end-to-end runs, compiled as users compile
    (what JAXCONV_FULL_TESTS=1 does to ``nox -s tests``)."""
    _pytest(session, JAXCONV_FULL_TESTS="1")


@nox.session
def lint(session: nox.Session) -> None:
    """Lint with ruff and type-check the package with mypy."""
    session.install("-e", ".[all]", "ruff>=0.6", "mypy>=1.10")
    session.run("ruff", "check", "jaxconv", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("mypy")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Time every conv algorithm against XLA, torch and SciPy; report in bench-results/."""
    session.install("-e", ".[bench,viz]")  # bench: pytest-benchmark, scipy, tqdm, matplotlib
    if os.environ.get("JAXCONV_BENCH_TORCH", "1") == "1":
        session.install(TORCH)
    session.run("python", "benchmarks/bench.py", *session.posargs)  # a script of the clone


@nox.session(default=False)
def figures(session: nox.Session) -> None:
    """Run the article's scripts of examples/: figures, manifest.json, index.html in figures/.

    ``nox -s figures -- --out DIR`` writes elsewhere; ``-- --style article``, ``-- --seed N``,
    ``-- --only 02,05`` as in ``python examples/_gallery.py --help``.
    """
    session.install("-e", ".[all]")
    session.run("python", "examples/_gallery.py", *session.posargs,
                env={"JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"})


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Build the site into docs/_build/html, running the examples; any warning fails it."""
    session.install("-e", ".[docs]")
    for generated in ("docs/_build", "docs/gallery"):  # a fresh build every time
        shutil.rmtree(generated, ignore_errors=True)
    Path("docs/sg_execution_times.rst").unlink(missing_ok=True)
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html",
                *session.posargs, env={"JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"})


@nox.session(default=False)
def build(session: nox.Session) -> None:
    """Build the sdist and wheel, check their metadata, install the wheel in a fresh venv, run it."""
    session.install("build>=1.2", "twine>=5")
    shutil.rmtree("dist", ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", "dist")
    dist = sorted(Path("dist").iterdir())
    session.run("twine", "check", "--strict", *map(str, dist))
    wheel = next(str(p.resolve()) for p in dist if p.suffix == ".whl")
    with tempfile.TemporaryDirectory(prefix="jaxconv-wheel-") as tmp:
        venv = Path(tmp) / "venv"
        session.run("python", "-m", "venv", str(venv))
        py, exe = str(venv / "bin" / "python"), str(venv / "bin" / "jaxconv")
        session.run(py, "-m", "pip", "install", "--quiet", f"{wheel}[viz]", external=True)
        # From the temporary folder, so the checkout's jaxconv/ cannot shadow the installed one.
        with session.chdir(tmp):
            session.run(exe, "info", external=True, env={"JAX_PLATFORMS": "cpu"})
            cat = session.run(py, "-c", "from importlib.resources import files; "
                              "print(files('jaxconv.data') / 'cat.png')",
                              external=True, silent=True).strip()
            session.run(exe, "show", cat, "--layers", "conv3x3:3,relu,maxpool5",
                        "--out", "stages.png", external=True,
                        env={"JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"})
            session.run(py, "-c", "from PIL import Image; im = Image.open('stages.png'); "
                        "im.verify(); print('stages.png:', im.format, im.size)", external=True)
