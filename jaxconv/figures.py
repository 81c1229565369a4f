"""The article's figures (and a few more), and ``jaxconv show``.

``jaxconv figures --out DIR`` (also ``nox -s figures`` and ``examples/article_figures.py``)
regenerates, deterministically from ``--seed``, every figure of "Visualizing parts of
Convolutional Neural Networks using Keras and Cats" (E. Reppel, 2017) from the bundled cat: the
cat through 14 random conv/ReLU/pool stacks, the illustrations (convolution GIF, pooling,
activations, LeNet), and beyond the article a kernel-size sweep with measured times, a trained
LeNet's first layer next to a random one, and a saliency map. It writes ``DIR/manifest.json``
and a gallery ``DIR/index.html``.

``jaxconv show IMAGE --layers SPEC --out PNG`` runs any image through any stack and saves the
stage strip.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FULL_SHAPE = (320, 400, 3)
SMALL_SHAPE = (80, 100, 3)
STYLES = ("modern", "article")

# The article's stacks, in its order, with the output shape on the 320x400 cat.
STACKS: tuple[tuple[str, tuple[int, int, int], str], ...] = (
    ("conv3x3:3", (318, 398, 3),
     "One convolution: 3 random (untrained) 3×3 filters. Still a cat; a VALID 3×3 window trims "
     "a pixel from every side."),
    ("conv10x10:3", (311, 391, 3),
     "A 10×10 kernel mixes a hundred neighbours per output: the cat blurs."),
    ("conv3x3:1", (318, 398, 1),
     "One filter gives one channel, drawn with a colormap: a heat map of the cat."),
    ("conv15x15:1", (306, 386, 1),
     "One 15×15 filter: edges smear over 15 pixels."),
    ("conv3x3:1,relu", (318, 398, 1),
     "ReLU after the one-filter convolution: every negative response becomes 0."),
    ("conv3x3:3,relu", (318, 398, 3),
     "ReLU on the 3-filter output: each channel keeps only its positive responses."),
    ("conv3x3:3,maxpool2", (159, 199, 3),
     "2×2 max pooling keeps the strongest response of each block and halves each side."),
    ("conv3x3:1,maxpool5", (63, 79, 1),
     "5×5 max pooling: 25 times fewer values, and the cat is still recognisable."),
    ("conv3x3:3,maxpool5", (63, 79, 3),
     "5×5 max pooling of the 3-filter output."),
    ("conv3x3:1,relu,maxpool5", (63, 79, 1),
     "Convolution, ReLU, pooling: one whole CNN layer, one filter."),
    ("conv3x3:3,relu,maxpool5", (63, 79, 3),
     "One whole CNN layer with 3 filters."),
    ("conv3x3:1,relu,maxpool3,conv3x3:1,relu,maxpool3", (34, 43, 1),
     "Two layers of one filter each: the cat fades into blobs of where the filters fire."),
    ("conv3x3:3,relu,maxpool3,conv3x3:1,relu,maxpool2", (52, 65, 1),
     "Two layers, 3 filters then 1."),
    ("conv3x3:3,relu,maxpool3,conv3x3:3,relu,maxpool2", (52, 65, 3),
     "Two layers of 3 filters: what a random network 'sees' two layers deep."),
)
SWEEP_SIZES = (1, 3, 5, 7, 10, 15, 21, 31)  # the article case of the benchmark suite
SWEEP_SIZES_SMALL = (1, 3, 5)
MAX_REDRAWS = 50
MIN_ALIVE = 0.05  # a stage with fewer non-zero values is "dead" (draws as an empty panel)


class Skip(Exception):
    """A figure that cannot be made here (a missing optional piece); the reason goes in the manifest."""


@dataclasses.dataclass
class Context:
    out: Path
    style: str
    seed: int
    small: bool
    dpi: int
    cat: np.ndarray
    checkpoint: Path | None = None
    bench: Path | None = None
    bench_data: dict | None = None  # plot_data(...) of the bench JSON, checked up front
    trained: Any = None  # the model of --checkpoint, loaded (and so checked) up front
    epochs: int = 5
    _lenet: Any = None  # cached (random, trained, note)
    _stack_seed: int | None = None


@dataclasses.dataclass(frozen=True)
class FigureSpec:
    name: str
    kind: str  # "photo" | "stack" | "illustration" | "extra"
    caption: str
    make: Callable[[Context, FigureSpec], dict]
    layers: str | None = None
    expected: tuple[int, int, int] | None = None


def slug(spec: str) -> str:
    """A file-name-safe form of a spec: ``conv3x3:3,relu`` → ``conv3x3-3_relu``."""
    return spec.replace(":", "-").replace(",", "_")


def _save(fig, ctx: Context, file: str, **kwargs) -> str:
    # No "Software"/date metadata: the same seed gives the same bytes (for a given matplotlib).
    # Atomic (a temporary renamed into place): a kill never leaves a truncated PNG behind.
    from jaxconv._io import save_figure

    save_figure(fig, ctx.out / file, dpi=kwargs.pop("dpi", ctx.dpi), metadata={"Software": None},
                **kwargs)
    return file


# ----------------------------------------------------------------------------------- stacks


def _single_image(ctx: Context, y: np.ndarray):
    """The article's look: the output alone, wrap-around RGB, jet + bilinear for one channel."""
    from jaxconv import viz

    fig = viz.figure(5.0, 4.0, layout=None)
    ax = fig.add_axes((0, 0, 1, 1))
    if y.shape[-1] == 3:
        viz.plot_image(y, ax=ax, strategy="wrap", interpolation="bilinear")
    else:
        viz.plot_image(y, ax=ax, cmap="jet", interpolation="bilinear")
    return fig


def _make_photo(ctx: Context, spec: FigureSpec) -> dict:
    from jaxconv import viz

    if ctx.style == "article":
        fig = _single_image(ctx, ctx.cat)
    else:
        fig = viz.figure(5.0, 4.3)
        viz.plot_image(ctx.cat, ax=fig.add_subplot(), title=f"the cat, {viz.fmt_shape(ctx.cat.shape)}")
    file = _save(fig, ctx, "cat.png", dpi=80 if ctx.style == "article" else ctx.dpi)
    return {"file": file, "layers": "", "output_shape": list(ctx.cat.shape)}


def dead_stages(stages: dict) -> list[str]:
    """Stages that are constant or (after a ReLU) less than 5% non-zero: blank panels."""
    dead = []
    for name, v in stages.items():
        v = np.asarray(v)
        if not np.ptp(v) > 0 or np.count_nonzero(v) < MIN_ALIVE * v.size:
            dead.append(name)
    return dead


def _dead_stages(spec: str, seed: int, x: np.ndarray) -> list[str]:
    from jaxconv import layers

    init, apply = layers.build(spec)
    _, params = init(seed, x.shape)
    _, stages = apply(params, x)
    return dead_stages(stages)


def _stack_seed(ctx: Context) -> int:
    """The seed all stacks are drawn with: ``--seed``, or the next one where no stack is dead.

    Every stack uses the same seed, so "conv3x3:3,relu" is the ReLU of the "conv3x3:3" figure.
    A draw whose ReLU zeroes (almost) a whole stage (a filter negative on nearly all the cat)
    would draw blank panels; then the next seed is taken, for all stacks, and the manifest says so.
    """
    if ctx._stack_seed is None:
        for seed in range(ctx.seed, ctx.seed + MAX_REDRAWS):
            if not any(_dead_stages(s, seed, ctx.cat) for s, _, _ in STACKS):
                break
        ctx._stack_seed = seed
    return ctx._stack_seed


def _make_stack(ctx: Context, spec: FigureSpec) -> dict:
    from jaxconv import layers, viz

    seed = _stack_seed(ctx)
    init, apply = layers.build(spec.layers)
    _, params = init(seed, ctx.cat.shape)
    y, stages = apply(params, ctx.cat)
    y = np.asarray(y)
    extra = {"seed": seed}
    if seed != ctx.seed:
        tried = f"seed {ctx.seed}" if seed == ctx.seed + 1 else f"seeds {ctx.seed} to {seed - 1}"
        extra["redrawn"] = (f"{tried}: some stack's ReLU zeroes over {1 - MIN_ALIVE:.0%} of a "
                            f"stage; every stack is drawn with seed {seed}")
    if ctx.style == "article":
        fig = _single_image(ctx, y)
        file = _save(fig, ctx, f"cat_{slug(spec.layers)}.png", dpi=80)
    else:
        n = len(stages) + 1
        fig = viz.figure(2.4 * n, 3.0)
        viz.plot_stages({"input": ctx.cat, **stages}, ax=fig.subplots(1, n).tolist())
        fig.suptitle(f"{spec.layers}  →  {viz.fmt_shape(y.shape)}", fontsize="large")
        file = _save(fig, ctx, f"cat_{slug(spec.layers)}.png")
    return {"file": file, "layers": spec.layers, "output_shape": list(y.shape), **extra}


# ----------------------------------------------------------------------------- illustrations


def _make_conv_gif(ctx: Context, spec: FigureSpec) -> dict:
    from jaxconv import viz

    frames = viz.conv_animation(path=ctx.out / "convolution.gif", dpi=ctx.dpi)
    return {"file": "convolution.gif", "frames": len(frames)}


def _make_pooling(ctx: Context, spec: FigureSpec) -> dict:
    from jaxconv import viz

    fig = viz.figure(6.0, 3.0)
    viz.plot_pooling(ax=fig.add_subplot())
    return {"file": _save(fig, ctx, "pooling.png")}


def _make_activations(ctx: Context, spec: FigureSpec) -> dict:
    from jaxconv import viz

    fig = viz.figure(9.0, 5.4)
    names = viz.diagrams.ACTIVATIONS
    viz.plot_activations(names, ax=fig.subplots(3, 4).ravel().tolist())
    return {"file": _save(fig, ctx, "activations.png"), "functions": list(names)}


def _models():
    try:
        from flax import nnx

        from jaxconv.models import LeNet5
    except ImportError as e:
        raise Skip(f"jaxconv.models is not importable here ({e})") from None
    return nnx, LeNet5


def _make_lenet(ctx: Context, spec: FigureSpec) -> dict:
    from jaxconv import viz

    nnx, LeNet5 = _models()
    model = LeNet5(rngs=nnx.Rngs(ctx.seed))
    fig = viz.figure(13.0, 3.0)
    viz.plot_lenet(model, ax=fig.add_subplot(), title="LeNet-5 (modern variant), shapes from LeNet5.features")
    return {"file": _save(fig, ctx, "lenet.png")}


# -------------------------------------------------------------------------------- beyond


def _time_ms(fn, *args, reps: int) -> float:
    """Best of ``reps`` calls after a warm-up (the minimum is the least disturbed by other load)."""
    import jax

    jax.block_until_ready(fn(*args))  # compile and warm up outside the timing
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def _make_sweep(ctx: Context, spec: FigureSpec) -> dict:
    import jax.numpy as jnp

    from jaxconv import conv2d, layers, viz

    sizes = SWEEP_SIZES_SMALL if ctx.small else SWEEP_SIZES
    x = jnp.asarray(ctx.cat)
    outs, ms = [], []
    for k in sizes:
        _, params = layers.build(f"conv{k}x{k}:3")[0](ctx.seed, ctx.cat.shape)
        kernel = params[0]["kernel"]
        ms.append(_time_ms(conv2d, x, kernel, reps=1 if ctx.small else 5))
        outs.append(np.asarray(conv2d(x, kernel)))
    ncols = 4 if len(sizes) > 4 else len(sizes)
    nrows = -(-len(sizes) // ncols)
    fig = viz.figure(2.3 * ncols + 3.6, 2.1 * nrows + 0.4)
    left, right = fig.subfigures(1, 2, width_ratios=(2.3 * ncols, 3.6))
    axs = left.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    titles = [f"k={k}: {viz.fmt_shape(o.shape)}\n{t:.1f} ms" for k, o, t in zip(sizes, outs, ms, strict=True)]
    strategy = "wrap" if ctx.style == "article" else "minmax"
    viz.plot_grid(outs, titles=titles, ax=axs[: len(sizes)], strategy=strategy)
    for a in axs[len(sizes):]:
        a.set_axis_off()
    viz.plot_kernel_times(sizes, ms, ax=right.add_subplot(), label="conv2d (auto)")
    fig.suptitle("The cat through one k×k convolution with 3 filters, and the time it took")
    return {"file": _save(fig, ctx, "kernel_sizes.png"), "kernel_sizes": list(sizes),
            "time_ms": [round(t, 3) for t in ms]}


def _lenets(ctx: Context):
    """(random model, trained model, note), made once per run."""
    if ctx._lenet is not None:
        return ctx._lenet
    nnx, LeNet5 = _models()
    random_model = LeNet5(rngs=nnx.Rngs(ctx.seed))
    if ctx.checkpoint is not None:
        from jaxconv.models import load_checkpoint

        trained = ctx.trained if ctx.trained is not None else load_checkpoint(ctx.checkpoint)[0]
        note = f"checkpoint {ctx.checkpoint}"
    else:
        try:
            from jaxconv.models.train import train
        except ImportError as e:
            raise Skip(f"no checkpoint given and jaxconv.models.train is not importable ({e})") from None
        data: Any = "digits"
        if ctx.small:  # a smoke test: a slice of the digits is enough to exercise the path
            from jaxconv.data import digits

            d = digits()
            data = (d.x_train[:512], d.y_train[:512], d.x_test[:128], d.y_test[:128])
        trained, metrics = train(data=data, variant="modern", epochs=ctx.epochs, seed=ctx.seed,
                                 progress=False)
        acc = _last_accuracy(metrics)
        note = f"trained on digits for {ctx.epochs} epoch(s)" + (f", test accuracy {acc:.1%}" if acc else "")
    ctx._lenet = (random_model, trained, note)
    return ctx._lenet


def _last_accuracy(metrics: Any) -> float | None:
    """The last test accuracy in a metrics record, whatever its exact shape (best effort)."""
    if isinstance(metrics, dict):
        for key in ("test_accuracy", "test_acc", "accuracy", "acc"):
            if key in metrics:
                v = metrics[key]
                v = v[-1] if isinstance(v, list | tuple) and v else v
                return float(v) if isinstance(v, int | float | np.floating) else None
        for key in ("history", "epochs"):
            if isinstance(metrics.get(key), list) and metrics[key]:
                return _last_accuracy(metrics[key][-1])
    return None


def _first_conv(model):
    conv = getattr(model, "conv1", None) or model.C1
    return conv


def _make_trained_vs_random(ctx: Context, spec: FigureSpec) -> dict:
    import jax.numpy as jnp

    from jaxconv import max_pool2d, relu, viz

    random_model, trained, note = _lenets(ctx)
    # The gray cat at full size, scaled like the digits LeNet was trained on ([-0.1, 1.175]).
    gray = ctx.cat @ np.array([0.299, 0.587, 0.114])
    x = jnp.asarray((-0.1 + 1.275 * gray)[None, ..., None], jnp.float32)
    rows = []
    for label, model in (("random", random_model), ("trained", trained)):
        conv = _first_conv(model)
        y = max_pool2d(relu(conv(x)), 2)[0]
        rows.append((label, np.asarray(conv.kernel[...]), np.asarray(y)))
    n = rows[0][1].shape[-1]
    fig = viz.figure(1.9 * n, 8.0)
    subs = fig.subfigures(4, 1, height_ratios=(0.62, 1, 0.62, 1))
    for r, (label, kernel, y) in enumerate(rows):
        k_fig, y_fig = subs[2 * r], subs[2 * r + 1]
        viz.plot_kernels(kernel, ax=k_fig.subplots(1, n).tolist())
        k_fig.suptitle(f"{label} conv1 kernels ({kernel.shape[0]}×{kernel.shape[1]})", fontsize="medium")
        viz.plot_feature_maps(y, ax=y_fig.subplots(1, n).tolist(), policy="per_map", titles=False)
        y_fig.suptitle(f"{label}: conv1 → relu → pool1 on the cat, {viz.fmt_shape(y.shape)}",
                       fontsize="medium")
    w0, w1 = rows[0][1], rows[1][1]
    change = float(np.abs(w1 - w0).mean() / np.abs(w0).mean())
    fig.suptitle(f"LeNet-5's first layer on the cat: random (seed {ctx.seed}) vs {note}; "
                 f"mean |Δw| / mean |w| = {change:.0%}")
    return {"file": _save(fig, ctx, "lenet_trained_vs_random.png"), "trained": note,
            "relative_weight_change": round(change, 4),
            "output_shape": list(rows[0][2].shape)}


def _class_score(x, model, c: int):
    """The logit of class ``c`` for one ``(32, 32, 1)`` image."""
    return model(x[None])[0, c]


def _make_saliency(ctx: Context, spec: FigureSpec) -> dict:
    import jax.numpy as jnp
    from flax import nnx

    from jaxconv import softmax, viz

    _, trained, note = _lenets(ctx)
    try:
        from jaxconv.data import digits
        d = digits()
    except (ImportError, AttributeError) as e:
        raise Skip(f"the digits data set is not available ({e})") from None
    picks = [int(np.flatnonzero(d.y_test == c)[0]) for c in (3, 5, 8)]
    fig = viz.figure(7.5, 2.5 * len(picks))
    axs = fig.subplots(len(picks), 3, squeeze=False)
    found = []
    for row, i in zip(axs, picks, strict=True):
        x = jnp.asarray(d.x_test[i])
        probs = np.asarray(softmax(trained(x[None]))[0])
        c = int(np.argmax(probs))
        # d(class score)/d(pixel). nnx.grad, not jax.grad over a closure: the model's methods
        # are nnx.jit-compiled, and those must see the module as an argument of the transform.
        grad = nnx.grad(_class_score, argnums=0)(x, trained, c)
        viz.plot_saliency(np.asarray(x), np.abs(np.asarray(grad)), ax=row.tolist(),
                          titles=(f"digit {int(d.y_test[i])}", f"|∂ score[{c}] / ∂x|",
                                  f"predicted {c} ({probs[c]:.0%})"))
        found.append({"label": int(d.y_test[i]), "predicted": c})
    fig.suptitle(f"Saliency: |gradient| of the class score\nLeNet-5 {note}")
    return {"file": _save(fig, ctx, "saliency.png"), "digits": found, "trained": note}


def _make_bench(ctx: Context, spec: FigureSpec) -> dict:
    from jaxconv import viz

    if ctx.bench is None:
        raise Skip("no --bench JSON given and no bench-results/benchmark.json here (run `nox -s bench` first)")
    data = ctx.bench_data if ctx.bench_data is not None else read_bench(ctx.bench)
    fig = viz.plot_conv_vs_kernel(data)
    return {"file": _save(fig, ctx, "benchmark.png"), "source": str(ctx.bench)}


def read_bench(path: str | os.PathLike) -> dict:
    """The plot data (:func:`jaxconv.viz.benchmark.plot_data`) of a benchmark JSON, checked.

    Raises ``ValueError`` naming the file when it is unreadable, not JSON, not a pytest-benchmark
    record of the suite, or holds no convolution timings; ``OSError`` when it cannot be read.
    """
    from jaxconv.viz.benchmark import plot_data

    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"make_figures: bench JSON {name!r} is not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise OSError(e.errno, f"make_figures: cannot read the bench JSON {name!r} "
                               f"({e.strerror or e})") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ValueError(f"make_figures: bench JSON {name!r} is not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError(f"make_figures: bench JSON {name!r} is not a pytest-benchmark record "
                         "(expected an object with a 'benchmarks' list; run `nox -s bench`)")
    try:
        plot = plot_data(data)
        ok = bool(plot) and all(
            isinstance(series, dict) and all(isinstance(v, int | float) for v in series.values())
            for panel in plot.values() for series in panel.values()
        )
    except (KeyError, TypeError, AttributeError, ValueError, ZeroDivisionError) as e:
        raise ValueError(f"make_figures: bench JSON {name!r} does not follow the benchmark "
                         f"schema ({type(e).__name__}: {e})") from None
    if not ok:
        raise ValueError(f"make_figures: bench JSON {name!r} holds no convolution timings")
    return plot


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("cat", "photo",
               "The cat: “Chelsea” from scikit-image's sample data (CC0, Stefan van der Walt), "
               "cropped and resized to the article's 320×400.", _make_photo, "", FULL_SHAPE),
    *(FigureSpec(f"cat_{slug(s)}", "stack", c, _make_stack, s, shape) for s, shape, c in STACKS),
    FigureSpec("convolution", "illustration",
               "Convolution: a 3×3 kernel slides over a 5×5 input; each output is the sum of the "
               "window times the kernel (values computed by jaxconv.conv2d).", _make_conv_gif),
    FigureSpec("pooling", "illustration",
               "Pooling: each 2×2 block becomes its maximum (max pooling) or its mean (average "
               "pooling).", _make_pooling),
    FigureSpec("activations", "illustration",
               "Common activation functions; ReLU is the one the article's stacks use.",
               _make_activations),
    FigureSpec("lenet", "illustration",
               "LeNet-5: two conv/ReLU/max-pool layers, then dense layers; shapes from the model.",
               _make_lenet),
    FigureSpec("kernel_sizes", "extra",
               "Beyond the article: kernel sizes 1 to 31 on the cat, with the measured time of "
               "each convolution on this machine.", _make_sweep),
    FigureSpec("lenet_trained_vs_random", "extra",
               "Beyond the article: LeNet-5's first layer (conv1 → ReLU → pool1) on the cat, at its "
               "random initial weights and after training on digits (from those same weights unless "
               "--checkpoint is given).",
               _make_trained_vs_random),
    FigureSpec("saliency", "extra",
               "Beyond the article: which pixels move the predicted class score most "
               "(|gradient| of the score, by nnx.grad).", _make_saliency),
    FigureSpec("benchmark", "extra",
               "Benchmarks: convolution time against kernel size, per implementation.", _make_bench),
)
GROUPS = {"stacks": [f.name for f in FIGURES if f.kind == "stack"],
          "illustrations": [f.name for f in FIGURES if f.kind == "illustration"],
          "extras": [f.name for f in FIGURES if f.kind == "extra"]}


def select_figures(only: str | None) -> list[FigureSpec]:
    if not only:
        return list(FIGURES)
    names = set()
    known = {f.name for f in FIGURES}
    for token in only.split(","):
        token = token.strip()
        if token in GROUPS:
            names.update(GROUPS[token])
        elif token in known:
            names.add(token)
        else:
            raise ValueError(f"unknown figure {token!r}; expected a name from the manifest or "
                             f"one of {', '.join(GROUPS)}")
    return [f for f in FIGURES if f.name in names]


def _index_html(entries: list[dict], style: str, seed: int) -> str:
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
            f'<figure id="{html.escape(e["name"])}">{body}<figcaption><b>{html.escape(e["name"])}</b> '
            f'{" ".join(meta)}<br>{html.escape(e.get("caption", ""))}</figcaption></figure>'
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jaxconv figures</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1400px; }}
main {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 1.5em; }}
figure {{ margin: 0; }} img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ font-size: 0.9em; color: #333; }} .skip {{ color: #a33; }}
</style></head><body>
<h1>Visualizing parts of a CNN with cats — jaxconv</h1>
<p>Regenerated by <code>jaxconv figures</code> (style <code>{html.escape(style)}</code>, seed {seed})
after E. Reppel, “Visualizing parts of Convolutional Neural Networks using Keras and Cats” (2017).
Cat photo: “Chelsea”, scikit-image sample data, CC0, Stefan van der Walt.</p>
<main>
{chr(10).join(cards)}
</main></body></html>
"""


def make_figures(out: str | os.PathLike, *, style: str = "modern", seed: int = 0, small: bool = False,
                 only: str | None = None, checkpoint: str | os.PathLike | None = None,
                 bench: str | os.PathLike | None = None, epochs: int | None = None,
                 progress: bool = True) -> dict:
    """Make the figures into ``out``; write ``manifest.json`` and ``index.html``; return the manifest.

    ``small`` renders a 4x smaller cat at low resolution with fewer kernel sizes and one epoch
    of training (for smoke tests); the shapes in the manifest are then those of the small cat.

    Every input is checked before the first file is written: the style and figure names, the
    folder (writable), ``epochs``, the checkpoint (loaded, so its schema and shapes are checked)
    and the bench JSON (its schema); a bad one raises ``ValueError``/``OSError`` (a
    ``CheckpointError`` for the checkpoint) naming it, and nothing is written. Every file is
    written atomically (a temporary renamed into place), so a killed run leaves no truncated
    figure, and the manifest lists only figures completely written.
    """
    if style not in STYLES:
        raise ValueError(f"make_figures: style must be one of {', '.join(STYLES)}, got {style!r}")
    from jaxconv._io import check_output
    from jaxconv.data import cat, load_image

    selected = select_figures(only)
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"make_figures: epochs must be a positive int, got {epochs!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"make_figures: out {str(out)!r} exists and is not a folder")
    names = {f.name for f in selected}
    trained = None
    if checkpoint is not None and names & {"lenet_trained_vs_random", "saliency"}:
        from jaxconv.models import load_checkpoint

        trained, _ = load_checkpoint(checkpoint)
    elif checkpoint is not None:  # not used by these figures, but still a bad argument
        from jaxconv.models import check_checkpoint

        check_checkpoint(checkpoint)
    bench_data = read_bench(bench) if bench is not None and "benchmark" in names else None
    check_output(out / "manifest.json", "make_figures", make_parents=True)
    if small:
        from importlib import resources

        with resources.as_file(resources.files("jaxconv.data") / "cat.png") as p:
            image = load_image(p, size=SMALL_SHAPE[:2])
    else:
        image = cat()
    ctx = Context(out=out, style=style, seed=seed, small=small, dpi=40 if small else 100, cat=image,
                  checkpoint=Path(checkpoint) if checkpoint else None,
                  bench=Path(bench) if bench else None, bench_data=bench_data, trained=trained,
                  epochs=epochs if epochs is not None else (1 if small else 5))
    from tqdm.auto import tqdm

    entries = []
    bar = tqdm(selected, desc="figures", unit="fig", disable=not progress, file=sys.stderr)
    for spec in bar:
        bar.set_postfix_str(spec.name)
        entry = {"name": spec.name, "file": None, "layers": spec.layers, "output_shape": None,
                 "seed": seed, "style": style, "kind": spec.kind, "caption": spec.caption}
        t0 = time.perf_counter()
        try:
            entry.update(spec.make(ctx, spec))
        except Skip as e:
            entry["skipped"] = str(e)
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        entries.append(entry)
    from jaxconv._io import atomic_write

    manifest = {"figures": entries}
    atomic_write(out / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    atomic_write(out / "index.html", _index_html(entries, style, seed))
    return manifest
