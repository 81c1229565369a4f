"""The article's example scripts (examples/) end to end: the manifest's names, layer specs and
shapes, the gallery; and ``jaxconv show``."""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from conftest import full_only

from jaxconv.cli import show as show_cli

PIL = pytest.importorskip("PIL.Image")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

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


@pytest.fixture
def gallery(monkeypatch):
    """``examples/_gallery.py`` imported as the scripts import it; ``run(args)`` runs the scripts."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "_gallery", raising=False)
    import _gallery

    def run(*args):
        monkeypatch.setattr(_gallery, "_settings", None)
        monkeypatch.setattr(_gallery, "_cache", {})
        return _gallery.main(["--no-progress", *args])

    _gallery.run = run
    yield _gallery
    monkeypatch.delitem(sys.modules, "_gallery", raising=False)


# Every figure of a full run, in the order of the scripts (one per section of the article).
NAMES = [
    "cat",
    "convolution", "cat_conv3x3-3", "cat_conv10x10-3", "cat_conv3x3-1", "cat_conv15x15-1",
    "activations", "cat_conv3x3-1_relu", "cat_conv3x3-3_relu",
    "pooling", "cat_conv3x3-3_maxpool2", "cat_conv3x3-1_maxpool5", "cat_conv3x3-3_maxpool5",
    "cat_conv3x3-1_relu_maxpool5", "cat_conv3x3-3_relu_maxpool5",
    "cat_conv3x3-1_relu_maxpool3_conv3x3-1_relu_maxpool3",
    "cat_conv3x3-3_relu_maxpool3_conv3x3-1_relu_maxpool2",
    "cat_conv3x3-3_relu_maxpool3_conv3x3-3_relu_maxpool2",
    "lenet", "kernel_sizes", "benchmark", "lenet_trained_vs_random", "saliency", "explain_methods",
    "sanity_randomization", "conv2_features", "deconvnet_projection",
]


def test_scripts_are_the_articles_sections(gallery):
    assert [s.name for s in gallery.SCRIPTS] == [
        "01_the_cat.py", "02_convolution.py", "03_relu.py", "04_max_pooling.py", "05_layers.py",
        "06_lenet.py", "07_kernel_sweep.py", "08_trained_vs_random.py", "09_explanations.py",
        "10_inside_lenet.py",
    ]


def test_manifest_shapes_equal_the_articles_table(tmp_path, gallery, capsys):
    # Full-size cat, the article style: the article's sections with the real shapes.
    assert gallery.run("--out", str(tmp_path), "--only", "01,02,03,04,05", "--style", "article") == 0
    entries = json.loads((tmp_path / "manifest.json").read_text())["figures"]
    stacks = [e for e in entries if e["layers"] is not None]
    assert {e["layers"]: e["output_shape"] for e in stacks} == TABLE
    assert [e["layers"] for e in stacks] == list(TABLE)  # the article's order
    assert [e["name"] for e in entries] == NAMES[:18]
    for e in entries:
        assert {"name", "file", "layers", "output_shape", "seed", "style", "kind", "caption",
                "script"} <= set(e)
        assert e["style"] == "article" and e["seed"] == 0
        assert "dead_stages" not in e, f"{e['name']}: blank stages {e.get('dead_stages')}"
        if e["file"].endswith(".png"):
            assert load_png(tmp_path / e["file"]).std() > 5, f"{e['file']} is blank"
    assert "wrote 18 figures" in capsys.readouterr().out


@full_only  # ~80 s; the library code it runs is tested piece by piece in the default tier
def test_examples_end_to_end_small(tmp_path, gallery, monkeypatch, capsys):
    # Every script, on a 4x smaller cat. Run from an empty folder: a
    # bench-results/benchmark.json in the cwd would be plotted.
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "figs"
    assert gallery.run("--out", str(out), "--small") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["name"] for e in manifest["figures"]] == NAMES
    made = {e["name"]: e for e in manifest["figures"] if e["file"]}
    skipped = {e["name"]: e["skipped"] for e in manifest["figures"] if not e["file"]}
    assert list(skipped) == ["benchmark"]
    assert "bench-results/benchmark.json" in skipped["benchmark"]
    for e in made.values():
        path = out / e["file"]
        assert path.is_file() and path.stat().st_size > 0
        if path.suffix == ".png":
            assert load_png(path).std() > 5, f"{e['file']} is blank"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [e["file"] for e in made.values()] + ["manifest.json", "index.html"])  # no temporaries
    with PIL.open(out / "convolution.gif") as gif:
        assert gif.n_frames == 10
    assert made["kernel_sizes"]["kernel_sizes"] == [1, 3, 5]
    assert all(t > 0 for t in made["kernel_sizes"]["time_ms"])
    assert [d["label"] for d in made["saliency"]["digits"]] == [3, 5, 8]
    assert len(made["explain_methods"]["methods"]) == 8
    assert list(made["sanity_randomization"]["rank_correlation"]["saliency"]) == [
        "fc3", "fc2", "fc1", "conv2", "conv1"]
    assert made["conv2_features"]["output_shape"] == [32, 32, 1]
    assert len(made["deconvnet_projection"]["strongest"]) == 3
    html = (out / "index.html").read_text()
    for e in made.values():
        assert f'src="{e["file"]}"' in html
    assert "Chelsea" in html and "conv3x3:3,relu,maxpool5" in html
    # The small cat is 80x100: a 3x3 conv gives 78x98, then 5x5 pooling 15x19.
    assert made["cat"]["output_shape"] == [80, 100, 3]
    assert made["cat_conv3x3-3"]["output_shape"] == [78, 98, 3]
    assert made["cat_conv3x3-3_relu_maxpool5"]["output_shape"] == [15, 19, 3]
    assert made["lenet_trained_vs_random"]["output_shape"] == [38, 48, 6]
    assert "wrote 26 figures" in capsys.readouterr().out


def test_one_script_replaces_only_its_entries(tmp_path, gallery):
    out = str(tmp_path)
    assert gallery.run("--out", out, "--small", "--only", "01,04") == 0
    first = json.loads((tmp_path / "manifest.json").read_text())["figures"]
    assert gallery.run("--out", out, "--small", "--only", "01", "--seed", "3") == 0
    again = json.loads((tmp_path / "manifest.json").read_text())["figures"]
    assert [e["name"] for e in again] == [e["name"] for e in first]  # script order kept
    assert [e["seed"] for e in again] == [3] + [0] * (len(first) - 1)


def test_figures_are_deterministic_from_the_seed(tmp_path, gallery):
    for d in ("a", "b"):
        assert gallery.run("--out", str(tmp_path / d), "--small", "--only", "02,04") == 0
    for name in ("cat_conv3x3-3.png", "pooling.png", "cat_conv3x3-1_maxpool5.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_unknown_script(tmp_path, gallery, capsys):
    with pytest.raises(SystemExit) as e:
        gallery.run("--out", str(tmp_path), "--only", "42")
    assert e.value.code == 2
    assert "--only: no script 42" in capsys.readouterr().err


def test_interrupted_run_leaves_whole_files_and_a_valid_manifest(tmp_path, gallery, monkeypatch):
    from matplotlib.figure import Figure

    real = Figure.savefig
    saved = []

    def savefig(self, fname, *a, **k):
        if len(saved) == 2:  # the third figure: half written, then killed (Ctrl-C)
            fname.write(b"\x89PNG half")
            raise KeyboardInterrupt
        saved.append(1)
        return real(self, fname, *a, **k)

    monkeypatch.setattr(Figure, "savefig", savefig)
    with pytest.raises(KeyboardInterrupt):
        gallery.run("--out", str(tmp_path), "--small", "--only", "01,04")
    # cat and pooling are whole and listed; no temporary, no half-written stack figure.
    entries = json.loads((tmp_path / "manifest.json").read_text())["figures"]
    assert [e["name"] for e in entries] == ["cat", "pooling"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cat.png", "index.html", "manifest.json", "pooling.png"]


def test_manifest_and_gallery_are_written_atomically(tmp_path, gallery, monkeypatch):
    from jaxconv import _io

    written = []
    real = _io.atomic_write
    monkeypatch.setattr(_io, "atomic_write",
                        lambda p, d: written.append(Path(p).name) or real(p, d))
    assert gallery.run("--out", str(tmp_path), "--small", "--only", "01") == 0
    assert written == ["manifest.json", "index.html"]  # after the cat, the only figure
    assert json.loads((tmp_path / "manifest.json").read_text())["figures"][0]["file"] == "cat.png"


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
