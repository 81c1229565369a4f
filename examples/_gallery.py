"""Plumbing shared by the example scripts: settings, saving figures, the manifest, the gallery.

Every numbered script in this folder starts with ``g = _gallery.Gallery()`` and saves
its figures with ``g.save(fig, name, caption, ...)``. Each save writes the figure, then
``manifest.json`` (name, file, layer spec, output shape, seed, ... of every figure) and the
gallery page ``index.html``, all atomically (a temporary renamed into place), so a run that is
killed leaves only whole files and a manifest of the figures completely written.

Run one script, or all of them in one process (what ``nox -s figures`` does)::

    python examples/02_convolution.py --out figures        # one section of the article
    python examples/_gallery.py                            # every script, into figures/
    python examples/_gallery.py --out /tmp/figs --style article --seed 1 --only 02,05

Options: ``--out DIR`` (default ``figures``, or ``$JAXCONV_FIGURES_OUT``), ``--style modern``
(stage strips, min-max RGB, colorbars) or ``article`` (the 2017 look: uint8 wrap-around RGB,
jet + bilinear), ``--seed N`` (the random filters), ``--small`` (a 4x smaller cat, fewer kernel
sizes, one epoch of training on a slice: a smoke test). The docs build runs the same scripts
through sphinx-gallery and picks up the saved files (:data:`SAVED`) to show them on each page.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import os
import runpy
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPTS = tuple(sorted(HERE.glob("[0-9][0-9]_*.py")))
ENV_OUT = "JAXCONV_FIGURES_OUT"
ENV_PROGRESS = "JAXCONV_FIGURES_PROGRESS"  # "0": no progress lines (the docs build sets it)
STYLES = ("modern", "article")
SMALL_SHAPE = (80, 100)

# Files saved since the docs' image scraper last looked (docs/conf.py empties it).
SAVED: list[Path] = []
_settings: Settings | None = None  # set by main() when it runs every script in one process
_cache: dict[str, Any] = {}  # values shared by the scripts of one process (a trained LeNet)


@dataclasses.dataclass(frozen=True)
class Settings:
    out: Path
    style: str = "modern"
    seed: int = 0
    small: bool = False
    progress: bool = True


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Make the article's figures from the bundled cat.")
    p.add_argument("--out", default=os.environ.get(ENV_OUT, "figures"),
                   help="output folder (default: %(default)s)")
    p.add_argument("--style", choices=STYLES, default="modern",
                   help="'modern' (default): stage strips, min-max RGB, colorbars; "
                        "'article': the 2017 look (uint8 wrap-around RGB, jet + bilinear)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random filters (default 0)")
    p.add_argument("--small", action="store_true",
                   help="a 4x smaller cat, fewer kernel sizes, one epoch (a smoke test)")
    p.add_argument("--no-progress", action="store_true", help="print nothing while working")
    return p


def _parse(argv: Sequence[str]) -> Settings:
    args, _ = parser().parse_known_args(argv)
    progress = not args.no_progress and os.environ.get(ENV_PROGRESS, "1") != "0"
    return Settings(Path(args.out), args.style, args.seed, args.small, progress)


def slug(spec: str) -> str:
    """A file-name-safe form of a layer spec: ``conv3x3:3,relu`` → ``conv3x3-3_relu``."""
    return spec.replace(":", "-").replace(",", "_")


class Gallery:
    """One script's figures: the settings, the cat, and ``save`` (figure + manifest + gallery)."""

    def __init__(self, script: str | None = None) -> None:
        from jaxconv.data import cat, load_image

        # The calling script: its __file__, or (under sphinx-gallery, which sets no __file__)
        # sys.argv[0].
        script = script or sys._getframe(1).f_globals.get("__file__") or sys.argv[0]
        self.script = Path(script).name
        self.settings = _settings or _parse(sys.argv[1:])
        self.out, self.style, self.seed = self.settings.out, self.settings.style, self.settings.seed
        self.small = self.settings.small
        self.dpi = 40 if self.small else 100
        if self.small:
            from importlib import resources

            with resources.as_file(resources.files("jaxconv.data") / "cat.png") as p:
                self.cat = load_image(p, size=SMALL_SHAPE)
        else:
            self.cat = cat()  # (320, 400, 3), floats in [0, 1]
        self.entries: list[dict] = []
        self._t0 = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)

    @property
    def colors(self) -> dict[str, Any]:
        """``viz.plot_stages`` colour options of the style (the article's wrap-around or min-max)."""
        if self.style == "article":
            return {"strategy": "wrap", "cmap": "jet", "zero_centered": False, "colorbar": False,
                    "interpolation": "bilinear"}
        return {}

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per process (so two scripts share a trained model)."""
        key = f"{key}/{self.seed}/{self.small}"
        if key not in _cache:
            _cache[key] = make()
        return _cache[key]

    def trained_lenet(self) -> tuple[Any, dict]:
        """``(model, metrics)``: LeNet-5 trained on the digits with the default 30 epochs (about
        99 % test accuracy, a few seconds), once per process; ``--small``: one epoch on a slice."""
        from jaxconv.data import digits
        from jaxconv.models.train import train

        def make():
            if self.small:
                d = digits()
                data = (d.x_train[:512], d.y_train[:512], d.x_test[:128], d.y_test[:128])
                return train(data=data, epochs=1, seed=self.seed, progress=False)
            return train(data="digits", seed=self.seed, progress=False)

        return self.once("lenet", make)

    def save(self, fig: Any, name: str, caption: str, *, kind: str, file: str | None = None,
             layers: str | None = None, output_shape: Sequence[int] | None = None,
             **extra: Any) -> None:
        """Save ``fig`` as ``OUT/name.png`` and list it in the manifest and the gallery."""
        from jaxconv._io import save_figure

        file = file or f"{name}.png"
        # No "Software" metadata: the same seed gives the same bytes (for a given matplotlib).
        save_figure(fig, self.out / file, dpi=extra.pop("dpi", self.dpi),
                    metadata={"Software": None})
        self.add(name, file, caption, kind=kind, layers=layers, output_shape=output_shape,
                 **extra)

    def add(self, name: str, file: str, caption: str, *, kind: str, layers: str | None = None,
            output_shape: Sequence[int] | None = None, **extra: Any) -> None:
        """List a file already written in ``OUT`` (an animation) in the manifest and gallery."""
        path = self.out / file
        SAVED.append(path)
        if layers:
            from jaxconv.layers import dead_stages

            stages = extra.pop("stages", None)
            dead = dead_stages(stages) if stages is not None else []
            if dead:
                extra["dead_stages"] = dead
                self._say(f"note: {name}: {', '.join(dead)} (nearly) all zero (a dead ReLU); "
                          "try another --seed")
        extra.pop("stages", None)
        shape = [int(s) for s in output_shape] if output_shape is not None else None
        self._record({"name": name, "file": file, "layers": layers, "output_shape": shape,
                      "seed": self.seed, "style": self.style, "kind": kind, "caption": caption,
                      **extra})

    def skip(self, name: str, caption: str, reason: str, *, kind: str) -> None:
        """List a figure that cannot be made here, with the reason."""
        self._record({"name": name, "file": None, "layers": None, "output_shape": None,
                      "seed": self.seed, "style": self.style, "kind": kind, "caption": caption,
                      "skipped": reason})

    def _say(self, text: str) -> None:
        if self.settings.progress:
            print(text, file=sys.stderr, flush=True)

    def _record(self, entry: dict) -> None:
        now = time.perf_counter()
        entry = {**entry, "script": self.script, "seconds": round(now - self._t0, 2)}
        self._t0 = now
        self.entries = [e for e in self.entries if e["name"] != entry["name"]] + [entry]
        shape = "×".join(map(str, entry["output_shape"] or [])) or ""
        status = entry["file"] or f"skipped ({entry.get('skipped')})"
        self._say(f"  {entry['name']:<48} {shape:<12} {status}  ({entry['seconds']:.1f} s)")
        write_manifest(self.out, self.script, self.entries)


def _script_rank(name: str) -> int:
    names = [s.name for s in SCRIPTS]
    return names.index(name) if name in names else len(names)


def read_manifest(out: Path) -> list[dict]:
    try:
        return list(json.loads((out / "manifest.json").read_text(encoding="utf-8"))["figures"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def write_manifest(out: Path, script: str, entries: list[dict]) -> None:
    """Replace ``script``'s entries in ``OUT/manifest.json``, in script order; rewrite the gallery."""
    from jaxconv._io import atomic_write

    others = [e for e in read_manifest(out) if e.get("script") != script]
    merged = sorted([*others, *entries], key=lambda e: _script_rank(e.get("script", "")))
    text = json.dumps({"figures": merged}, indent=2, ensure_ascii=False) + "\n"
    atomic_write(out / "manifest.json", text)
    atomic_write(out / "index.html", index_html(merged))


def index_html(entries: list[dict]) -> str:
    """The gallery page: one card per figure with its spec, output shape and caption."""
    cards = []
    for e in entries:
        meta = []
        if e.get("layers"):
            meta.append(f"<code>{html.escape(e['layers'])}</code>")
        if e.get("output_shape"):
            meta.append("→ " + "×".join(map(str, e["output_shape"])))
        body = (f'<a href="{html.escape(e["file"])}"><img src="{html.escape(e["file"])}" '
                f'alt="{html.escape(e["name"])}" loading="lazy"></a>' if e.get("file")
                else f'<p class="skip">not made: {html.escape(e.get("skipped", ""))}</p>')
        cards.append(
            f'<figure id="{html.escape(e["name"])}">{body}<figcaption><b>{html.escape(e["name"])}'
            f'</b> {" ".join(meta)}<br>{html.escape(e.get("caption", ""))} '
            f'<small>(examples/{html.escape(e.get("script", ""))})</small></figcaption></figure>'
        )
    styles = sorted({str(e.get("style")) for e in entries})
    seeds = sorted({str(e.get("seed")) for e in entries})
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jaxconv figures</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1400px; }}
main {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 1.5em; }}
figure {{ margin: 0; }} img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ font-size: 0.9em; color: #333; }} .skip {{ color: #a33; }}
</style></head><body>
<h1>Visualizing parts of a CNN with cats — jaxconv</h1>
<p>Made by the scripts of <code>examples/</code> (<code>nox -s figures</code>; style
{html.escape(", ".join(styles))}, seed {html.escape(", ".join(seeds))}) after E. Reppel,
“Visualizing parts of Convolutional Neural Networks using Keras and Cats” (2017).
Cat photo: “Chelsea”, scikit-image sample data, CC0, Stefan van der Walt.</p>
<main>
{chr(10).join(cards)}
</main></body></html>
"""


def scraper(block: Any, block_vars: dict, gallery_conf: dict) -> str:
    """sphinx-gallery image scraper: the files the block saved, copied next to its page."""
    import shutil

    from sphinx_gallery.scrapers import figure_rst

    images = []
    for src, dest in zip(SAVED, block_vars["image_path_iterator"], strict=False):
        dest = Path(dest).with_suffix(src.suffix)
        shutil.copyfile(src, dest)
        images.append(dest)
    SAVED.clear()
    return figure_rst(images, gallery_conf["src_dir"])


def main(argv: Sequence[str] | None = None) -> int:
    """Run every numbered script (or ``--only 02,05``) in one process; write the gallery."""
    global _settings
    p = parser()
    p.add_argument("--only", help="comma-separated script numbers or names, e.g. 01,05")
    args = p.parse_args(argv)
    scripts = list(SCRIPTS)
    if args.only:
        wanted = [t.strip() for t in args.only.split(",") if t.strip()]
        unknown = [t for t in wanted if not any(s.name.startswith(t) for s in SCRIPTS)]
        if unknown:
            p.error(f"--only: no script {', '.join(unknown)}; "
                    f"expected one of {', '.join(s.name for s in SCRIPTS)}")
        scripts = [s for s in SCRIPTS if any(s.name.startswith(t) for t in wanted)]
    _settings = _parse(argv if argv is not None else sys.argv[1:])
    out = _settings.out
    if out.exists() and not out.is_dir():
        p.error(f"--out {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if not args.only:  # a full run starts a fresh manifest
        from jaxconv._io import atomic_write

        atomic_write(out / "manifest.json", json.dumps({"figures": []}) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    t0 = time.perf_counter()
    for i, script in enumerate(scripts, 1):
        if _settings.progress:
            print(f"[{i}/{len(scripts)}] examples/{script.name}", file=sys.stderr, flush=True)
        runpy.run_path(str(script), run_name="__main__")
    entries = read_manifest(out)
    made = [e for e in entries if e.get("file")]
    print(f"wrote {len(made)} figures to {out}/ in {time.perf_counter() - t0:.1f} s; "
          f"gallery: {out / 'index.html'}")
    for e in entries:
        if not e.get("file"):
            print(f"  skipped {e['name']}: {e.get('skipped')}")
    return 0


if __name__ == "__main__":
    import _gallery  # the module the scripts import, so they see main()'s settings

    sys.exit(_gallery.main())
