"""``jaxconv show``'s memory guard: its estimate covers what computing and drawing the stages
allocate, so a stack too large for the machine is refused before any work."""

from __future__ import annotations

import pathlib
import tracemalloc

import pytest

from jaxconv import _io, cli, layers
from jaxconv.cli import show

CAT = pathlib.Path(__file__).resolve().parents[1] / "jaxconv" / "data" / "cat.png"


def _no_apply(monkeypatch):
    real_build = layers.build

    def spy_build(spec, **kw):
        init, _ = real_build(spec, **kw)

        def apply(*a):
            raise AssertionError("the stack ran although it does not fit")

        return init, apply

    monkeypatch.setattr(layers, "build", spy_build)


def test_show_refuses_a_stack_whose_drawing_does_not_fit(tmp_path, capsys, monkeypatch):
    # The case: 3000 filters on the 320x400 cat passed a 4.3 GiB estimate on a machine
    # with 7.7 GiB, then died drawing them (about 41 GiB needed).
    monkeypatch.setattr(_io, "available_memory", lambda: int(7.7 * 2**30))
    _no_apply(monkeypatch)
    rc = cli.main(["show", str(CAT), "--layers", "conv3x3:3000", "--out", str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1, err
    assert "'conv3x3:3000' on the 320x400 image needs about 41.5 GiB to compute and draw" in err
    assert not (tmp_path / "o.png").exists()


def test_memory_needed_counts_every_stage_and_draws_the_largest():
    shapes = layers.stage_shapes("conv3x3:4,relu,maxpool2", (10, 12, 3))
    assert shapes == [(10, 12, 3), (8, 10, 4), (8, 10, 4), (4, 5, 4)]
    sizes = [360, 320, 320, 80]
    assert show.memory_needed("conv3x3:4,relu,maxpool2", (10, 12, 3)) == (
        show.FIXED_BYTES + show.KEPT_BYTES * sum(sizes) + show.DRAW_BYTES * max(sizes))


def test_memory_needed_covers_what_show_allocates(tmp_path, capsys):
    # NumPy and matplotlib allocations (traced) of a real run, against the estimate's drawing
    # part: within it, and not far below it (the old estimate, 12 bytes per element, was).
    spec, size = "conv3x3:24", 160
    shape = (128, 160, 3)  # the cat shrunk to --size 160
    sizes = [a * b * c for a, b, c in layers.stage_shapes(spec, shape)]
    tracemalloc.start()
    try:
        rc = cli.main(["show", str(CAT), "--layers", spec, "--size", str(size),
                       "--out", str(tmp_path / "o.png")])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rc == 0, capsys.readouterr().err
    assert f"{shape[0]}×{shape[1]}×3" in capsys.readouterr().out
    assert show.DRAW_BYTES * max(sizes) / 2 < peak <= show.memory_needed(spec, shape)
    assert peak > 3 * layers.memory_estimate(spec, shape)


@pytest.mark.parametrize("style", ["modern", "article"])
def test_small_stacks_still_run(tmp_path, capsys, style):
    rc = cli.main(["show", str(CAT), "--layers", "conv3x3:2,relu,maxpool2", "--size", "40",
                   "--style", style, "--out", str(tmp_path / "o.png")])
    assert rc == 0 and (tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG", capsys.readouterr().err
