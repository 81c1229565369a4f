"""``jaxconv figures`` end to end (small), the manifest's shapes, and ``jaxconv show``."""

import json
import pathlib

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from jaxconv import figures
from jaxconv.cli import figures as figures_cli
from jaxconv.cli import show as show_cli

PIL = pytest.importorskip("PIL.Image")

# The table: every stack of the article and its output shape on the 320x400 cat.
TABLE = {
    "": [320, 400, 3],
    "conv3x3:3": [318, 398, 3],
    "conv10x10:3": [311, 391, 3],
    "conv3x3:1": [318, 398, 1],
    "conv15x15:1": [306, 386, 1],
    "conv3x3:1,relu": [318, 398, 1],
    "conv3x3:3,relu": [318, 398, 3],
    "conv3x3:3,maxpool2": [159, 199, 3],
    "conv3x3:1,maxpool5": [63, 79, 1],
    "conv3x3:3,maxpool5": [63, 79, 3],
    "conv3x3:1,relu,maxpool5": [63, 79, 1],
    "conv3x3:3,relu,maxpool5": [63, 79, 3],
    "conv3x3:1,relu,maxpool3,conv3x3:1,relu,maxpool3": [34, 43, 1],
    "conv3x3:3,relu,maxpool3,conv3x3:1,relu,maxpool2": [52, 65, 1],
    "conv3x3:3,relu,maxpool3,conv3x3:3,relu,maxpool2": [52, 65, 3],
}


def load_png(path):
    with PIL.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_manifest_shapes_equal_the_articles_table(tmp_path, capsys):
    # Full-size cat, the article style (one small image per stack): the real shapes.
    rc = figures_cli.main(["--out", str(tmp_path), "--only", "cat,stacks", "--style", "article",
                       "--no-progress"])
    assert rc == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entries = manifest["figures"]
    assert {e["layers"]: e["output_shape"] for e in entries} == TABLE
    assert [e["layers"] for e in entries] == list(TABLE)  # the article's order
    for e in entries:
        assert {"name", "file", "layers", "output_shape", "seed"} <= set(e)
        px = load_png(tmp_path / e["file"])
        assert px.std() > 5, f"{e['file']} is blank"
    # Deterministic from the seed: one seed for all stacks, no dead (blank) stack.
    seeds = {e["seed"] for e in entries if e["layers"]}
    assert len(seeds) == 1
    assert "wrote 15 figures" in capsys.readouterr().out


def test_figures_end_to_end_small(tmp_path, monkeypatch):
    # Everything but the 14 stacks (the test above makes those at full size), on a 4x smaller cat.
    # Run from an empty folder: a bench-results/benchmark.json in the cwd would be plotted.
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "figs"
    only = "cat,cat_conv3x3-3_relu_maxpool5,illustrations,extras"
    assert figures_cli.main(["--out", str(out), "--small", "--no-progress", "--only", only]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    names = [e["name"] for e in manifest["figures"]]
    extras = [f.name for f in figures.FIGURES if f.kind in ("illustration", "extra")]
    assert names == ["cat", "cat_conv3x3-3_relu_maxpool5", *extras]
    made = {e["name"]: e for e in manifest["figures"] if e["file"]}
    skipped = {e["name"]: e["skipped"] for e in manifest["figures"] if not e["file"]}
    assert set(skipped) <= {"benchmark", "lenet", "lenet_trained_vs_random", "saliency"}
    assert "no --bench JSON" in skipped["benchmark"]
    for e in made.values():
        path = out / e["file"]
        assert path.is_file() and path.stat().st_size > 0
        if path.suffix == ".png":
            assert load_png(path).std() > 5, f"{e['file']} is blank"
    with PIL.open(out / "convolution.gif") as gif:
        assert gif.n_frames == 10
    assert made["kernel_sizes"]["kernel_sizes"] == list(figures.SWEEP_SIZES_SMALL)
    assert all(t > 0 for t in made["kernel_sizes"]["time_ms"])
    html = (out / "index.html").read_text()
    for e in made.values():
        assert f'src="{e["file"]}"' in html
    assert "Chelsea" in html and "conv3x3:3,relu,maxpool5" in html
    # The small cat is 80x100: a 3x3 conv then 5x5 pooling gives 15x19.
    assert made["cat_conv3x3-3_relu_maxpool5"]["output_shape"] == [15, 19, 3]


def test_figures_is_deterministic_from_the_seed(tmp_path):
    args = ["--no-progress", "--style", "article", "--only", "cat_conv3x3-3,pooling"]
    figures_cli.main(["--out", str(tmp_path / "a"), *args])
    figures_cli.main(["--out", str(tmp_path / "b"), *args])
    for name in ("cat_conv3x3-3.png", "pooling.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_unknown_figure_name(tmp_path, capsys):
    assert figures_cli.main(["--out", str(tmp_path), "--only", "dog"]) == 2
    assert "unknown figure 'dog'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "layers", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "conv3x3:3", "cannot load image"),
        (b"", "conv3x3:3", "the file is empty"),
        (None, "conv3x3:3,relux", "bad --layers 'conv3x3:3,relux': layer 2 'relux': unknown layer"),
        (None, "conv40x40:1", "does not fit the 20x30 image: layer 1 'conv40x40:1'"),
    ],
)
def test_show_fails_with_one_line_and_writes_nothing(tmp_path, capsys, content, layers, message):
    image = tmp_path / "in.png"
    if content is None:
        PIL.fromarray(np.zeros((20, 30, 3), np.uint8)).save(image)
    else:
        image.write_bytes(content)
    out = tmp_path / "out.png"
    rc = show_cli.main([str(image), "--layers", layers, "--out", str(out)])
    captured = capsys.readouterr()
    assert rc != 0
    assert captured.err.count("\n") == 1 and captured.err.startswith("jaxconv show: ")
    assert message in captured.err and "Traceback" not in captured.err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_show_writes_the_stage_strip(tmp_path, capsys, rng):
    image = tmp_path / "in.png"
    PIL.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "strip.png"
    rc = show_cli.main([str(image), "--layers", "conv3x3:2,relu,avgpool2", "--out", str(out), "--seed", "1"])
    assert rc == 0 and out.is_file()
    assert "24×30×3 → 22×28×2 → 22×28×2 → 11×14×2" in capsys.readouterr().out
    assert load_png(out).std() > 5


def test_show_through_the_cli(tmp_path, capsys):
    from jaxconv import cli

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert cli.main(["show", str(bad), "--layers", "relu", "--out", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.jpg" in err


def test_bench_json_defaults_to_a_sweep_left_in_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert figures_cli._default_bench(None) is None
    (tmp_path / "bench-results").mkdir()
    (tmp_path / "bench-results" / "benchmark.json").write_text("{}")
    assert figures_cli._default_bench(None) == str(pathlib.Path("bench-results") / "benchmark.json")
    assert figures_cli._default_bench("mine.json") == "mine.json"
