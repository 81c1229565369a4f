"""The ``jaxconv`` command line: ``info``, usage, unknown commands."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import jax
import pytest

import jaxconv
from jaxconv import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_info_lists_versions_backend_and_every_algorithm(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"jaxconv   {jaxconv.__version__}" in out
    assert f"jax       {jax.__version__}" in out
    assert f"backend   {jax.default_backend()}" in out
    assert out.count("device    ") == len(jax.devices())
    assert "default 'auto'" in out
    for alg in jaxconv.algorithms():
        error = "each output" if alg.error == "elementwise" else "largest"
        assert re.search(rf"^  {re.escape(alg.name)} +{error} +{re.escape(alg.serves)}$", out, re.M)


def test_info_help_and_bad_option(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["info", "--help"])
    assert e.value.code == 0
    assert "usage: jaxconv info" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli.main(["info", "--bogus"])
    assert e.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_usage_and_version(capsys):
    assert cli.main([]) == 2  # no command: usage, and a failing status for scripts
    assert "usage: jaxconv COMMAND" in capsys.readouterr().out
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert f"  {name} " in out
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == jaxconv.__version__


def test_unknown_command_exits_2_with_a_message(capsys):
    assert cli.main(["frobnicate", "--x"]) == 2
    captured = capsys.readouterr()
    assert "jaxconv: unknown command 'frobnicate'" in captured.err
    assert "usage: jaxconv COMMAND" in captured.err
    assert captured.out == ""


def _python_m(*args):
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    return subprocess.run(
        [sys.executable, "-m", "jaxconv", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=300, check=False,
    )


def test_python_m_jaxconv():
    info = _python_m("info")
    assert info.returncode == 0, info.stderr
    assert "algorithms (conv2d(..., algorithm=NAME)" in info.stdout
    for alg in jaxconv.algorithms():
        assert re.search(rf"^  {re.escape(alg.name)} +\S", info.stdout, re.M)
    bad = _python_m("nope")
    assert bad.returncode == 2
    assert "unknown command 'nope'" in bad.stderr
