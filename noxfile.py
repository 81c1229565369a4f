"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s bench``, ``nox -s figures``."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

# torch is a test-only reference (parity checks). On machines with a local CPU wheel
# (pip's find-links) set JAXCONV_TEST_TORCH=1 to install it; .ci/run does this when it can.
TORCH = "torch==2.13.0"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (parity with torch when JAXCONV_TEST_TORCH=1)."""
    session.install("-e", ".[test]")
    if os.environ.get("JAXCONV_TEST_TORCH") == "1":
        session.install(TORCH)
    session.run("pytest", *(session.posargs or ["-n", "2"]), env={"JAX_PLATFORMS": "cpu"})


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
    """Regenerate the article's figures into figures/ (pass --out DIR to change)."""
    session.install("-e", ".[all]")
    session.run("python", "examples/article_figures.py", *session.posargs)
