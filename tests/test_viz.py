"""jaxconv.viz on small inputs: what each function draws, colour rules, no warnings, nothing blank."""

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot; viz itself never needs a GUI backend

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import AxesImage

from jaxconv import viz


def pixels(fig) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3]


def not_blank(artist_or_fig):
    fig = getattr(artist_or_fig, "figure", artist_or_fig)
    fig = fig.get_figure(root=True) if hasattr(fig, "get_figure") else fig
    px = pixels(fig)
    assert px.std() > 5, "the figure is blank"
    return px


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text)]


def test_to_rgb_strategies_known_answers():
    x = np.array([[[-1.0, 0.5, 2.0], [0.0, 1.0, 1.0]]])
    np.testing.assert_allclose(viz.to_rgb(x, "clip"), [[[0, 0.5, 1], [0, 1, 1]]])
    np.testing.assert_allclose(viz.to_rgb(x), [[[0, 0.5, 1], [1 / 3, 2 / 3, 2 / 3]]])
    # uint8 wrap-around: 255*x floored mod 256; 256/255 -> 0, -1/255 -> 255
    w = viz.to_rgb(np.array([[[256 / 255, -1 / 255, 0.5]]]), "wrap")
    np.testing.assert_allclose(w * 255, [[[0, 255, 127]]], atol=1e-9)
    np.testing.assert_allclose(viz.to_rgb(x, vmin=0, vmax=2), np.clip(x / 2, 0, 1))
    with pytest.raises(ValueError, match="to_rgb: strategy must be one of minmax, clip, wrap, got 'hsv'"):
        viz.to_rgb(x, "hsv")
    with pytest.raises(ValueError, match="to_rgb: x must have 3 channels"):
        viz.to_rgb(np.zeros((2, 2, 2)))


def test_color_limit_policies():
    a = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 3.0)], -1)
    a[0, 0, 0] = -2.0
    b = np.full((2, 2, 1), 10.0)
    (pm_a, pm_b) = viz.color_limits([a, b], "per_map")
    np.testing.assert_allclose(pm_a, ([-2, 3], [1, 4]))  # constant channel 1: vmax = vmin + 1
    np.testing.assert_allclose(pm_b, ([10], [11]))
    (pl_a, _) = viz.color_limits([a, b], "per_layer")
    np.testing.assert_allclose(pl_a, ([-2, -2], [3, 3]))
    (gl_a, gl_b) = viz.color_limits([a, b], "global")
    np.testing.assert_allclose(gl_a, ([-2, -2], [10, 10]))
    np.testing.assert_allclose(gl_b, ([-2], [10]))
    (z_a, _) = viz.color_limits([a, b], "per_layer", zero_centered=True)
    np.testing.assert_allclose(z_a, ([-3, -3], [3, 3]))
    with pytest.raises(ValueError, match="color_limits: policy must be one of per_map, per_layer, global"):
        viz.color_limits([a], "each")


def test_plot_image_rgb_and_one_channel(rng):
    img = viz.plot_image(rng.random((6, 8, 3)), title="t")
    assert isinstance(img, AxesImage) and img.get_array().shape == (6, 8, 3)
    assert img.axes.get_title() == "t"
    not_blank(img)
    one = viz.plot_image(rng.standard_normal((1, 6, 8, 1)), zero_centered=True, colorbar=True)
    assert one.get_array().shape == (6, 8)
    lo, hi = one.get_clim()
    assert lo == -hi and one.get_cmap().name == "RdBu_r"
    assert len(one.figure.axes) == 2  # image + colorbar
    not_blank(one)
    with pytest.raises(ValueError, match="plot_image: x must have 1 or 3 channels, got shape"):
        viz.plot_image(np.zeros((4, 4, 5)))


def test_feature_maps_grid_and_policies(rng):
    x = rng.random((5, 6, 4)) * np.array([1, 2, 3, 4])
    imgs = viz.plot_feature_maps(x)
    assert len(imgs) == 4 and all(i.get_array().shape == (5, 6) for i in imgs)
    assert len({i.get_clim() for i in imgs}) == 1  # per_layer: one scale for all channels
    per_map = viz.plot_feature_maps(x, policy="per_map", colorbar=True)
    assert len({i.get_clim() for i in per_map}) == 4
    assert [i.axes.get_title() for i in per_map] == ["c0", "c1", "c2", "c3"]
    not_blank(per_map[0])


def test_single_axes_is_split_into_an_inset_grid(rng):
    fig = viz.figure(4, 3)
    ax = fig.add_subplot()
    imgs = viz.plot_feature_maps(rng.random((4, 4, 3)), ax=ax)
    assert len(imgs) == 3 and all(i.figure is fig for i in imgs)
    assert not ax.axison
    not_blank(fig)
    with pytest.raises(ValueError, match="plot_grid: ax must be None, an Axes or a sequence of >= 3 Axes"):
        viz.plot_feature_maps(rng.random((4, 4, 3)), ax=fig.subplots(1, 2).tolist())


def test_stage_strip_titles_shapes_and_colour(rng):
    x = rng.random((12, 10, 3))
    stages = {"input": x, "conv": rng.standard_normal((10, 8, 1)), "relu": rng.random((10, 8, 1)),
              "many": rng.standard_normal((5, 4, 6))}
    imgs = viz.plot_stages(stages)
    assert len(imgs) == 4
    titles = [i.axes.get_title() for i in imgs]
    assert titles == ["input\n12×10×3", "conv\n10×8×1", "relu\n10×8×1", "many\n5×4×6"]
    assert imgs[0].get_array().shape == (12, 10, 3)
    lo, hi = imgs[1].get_clim()
    assert lo == -hi  # signed -> zero-centred (auto)
    assert imgs[2].get_clim()[0] >= 0  # non-negative -> sequential from its minimum
    assert imgs[3].get_array().shape == (5 * 2 + 1, 4 * 3 + 2)  # 6 maps: 2 rows of 3
    not_blank(imgs[0])
    shared = viz.plot_stages(stages, policy="global", zero_centered=False, colorbar=False)
    assert shared[1].get_clim() == shared[2].get_clim()
    wrap = viz.plot_stages({"x": x * 3}, strategy="wrap", shapes_in_titles=False)
    np.testing.assert_allclose(wrap[0].get_array(), viz.to_rgb(x * 3, "wrap"))
    with pytest.raises(ValueError, match="plot_stages: stages is empty"):
        viz.plot_stages({})


def test_kernels_grid(rng):
    k = rng.standard_normal((3, 3, 2, 4))
    imgs = viz.plot_kernels(k)
    assert len(imgs) == 8 and imgs[5].axes.get_title() == "in 1 → out 1"
    np.testing.assert_array_equal(imgs[5].get_array(), k[:, :, 1, 1])
    lo, hi = imgs[0].get_clim()
    assert lo == -hi == -np.abs(k).max()
    rgb = viz.plot_kernels(rng.standard_normal((5, 5, 3, 6)), rgb=True)
    assert len(rgb) == 6 and rgb[0].get_array().shape == (5, 5, 3)
    not_blank(rgb[0])
    with pytest.raises(ValueError, match=r"plot_kernels: kernel must be HWIO \(kh, kw, I, O\)"):
        viz.plot_kernels(np.zeros((3, 3)))


def test_conv_step_and_output_known_answer():
    np.testing.assert_array_equal(viz.conv_output(), [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    artists = viz.plot_conv_step(step=4)
    fig = artists[0].figure
    shown = texts(fig)
    assert "input" in shown and "kernel" in shown and "output" in shown
    assert any(t.endswith("= 4") for t in shown)  # the running sum at the centre
    not_blank(fig)
    with pytest.raises(ValueError, match=r"plot_conv_step: step must be in \[0, 9\) or None, got 9"):
        viz.plot_conv_step(step=9)


def test_conv_animation_gif(tmp_path):
    from PIL import Image

    frames = viz.conv_animation(path=tmp_path / "c.gif", dpi=30)
    assert len(frames) == 10  # 9 positions, then the finished output
    with Image.open(tmp_path / "c.gif") as gif:
        assert gif.n_frames == 10
    assert np.asarray(frames[0].convert("L")).std() > 5
    assert not np.array_equal(np.asarray(frames[0]), np.asarray(frames[1]))


def test_pooling_diagram_numbers():
    artists = viz.plot_pooling()
    shown = texts(artists[0].figure)
    for value in ("6", "8", "3", "4", "3.25", "5.25", "2"):
        assert value in shown
    assert any("max pool 2×2" in t for t in shown) and any("avg pool 2×2" in t for t in shown)
    not_blank(artists[0])
    with pytest.raises(ValueError, match="plot_pooling: x must be 2-D with sides divisible by window=2"):
        viz.plot_pooling(np.zeros((3, 4)))


def test_activations_plot():
    lines = viz.plot_activations(["relu", "tanh", "lecun_tanh"])
    assert [ln.get_label() for ln in lines] == ["relu", "tanh", "lecun_tanh"]
    x, y = lines[0].get_data()
    np.testing.assert_allclose(y, np.maximum(x, 0), atol=1e-6)
    np.testing.assert_allclose(lines[2].get_ydata().max(), 1.7159 * np.tanh(8 / 3), rtol=1e-5)
    not_blank(lines[0])
    fig = viz.figure()
    ax = fig.add_subplot()
    together = viz.plot_activations(["relu", "gelu"], ax=ax)
    assert all(ln.axes is ax for ln in together) and ax.get_legend() is not None
    with pytest.raises(ValueError, match="activation: unknown name 'nope'"):
        viz.plot_activations(["nope"])


def test_architecture_from_shapes():
    artists = viz.plot_architecture({"input": (32, 32, 1), "conv1": (28, 28, 6), "fc": (120,)})
    shown = texts(artists[0].figure)
    assert {"input", "conv1", "fc", "32×32×1", "28×28×6", "120"} <= set(shown)
    not_blank(artists[0])
    titled = viz.plot_architecture({"input": (8, 8, 1), "fc": (10,)}, title="a net")
    assert titled[0].axes.get_title() == "a net"
    with pytest.raises(ValueError, match=r"plot_architecture: shape of 'x' must be \(H, W, C\) or \(units,\)"):
        viz.plot_architecture({"x": (3, 3)})


def test_lenet_diagram_uses_the_models_shapes():
    pytest.importorskip("flax")
    models = pytest.importorskip("jaxconv.models")
    artists = viz.plot_lenet(models.LeNet5(rngs=0))
    shown = texts(artists[0].figure)
    assert {"conv1+act1", "pool1", "28×28×6", "14×14×6", "10×10×16", "5×5×16", "400", "120", "84"} <= set(shown)
    names = [t for t in shown if t in ("input", "conv1+act1", "pool1", "conv2+act2", "pool2", "flatten")]
    assert names == ["input", "conv1+act1", "pool1", "conv2+act2", "pool2", "flatten"]


def test_saliency_and_kernel_times(rng):
    imgs = viz.plot_saliency(rng.random((8, 8)), rng.random((8, 8)))
    assert len(imgs) == 4 and imgs[1].get_cmap().name == "hot"
    not_blank(imgs[0])
    with pytest.raises(ValueError, match="plot_saliency: saliency must be"):
        viz.plot_saliency(rng.random((8, 8)), rng.random((4, 4)))
    lines = viz.plot_kernel_times([1, 3, 5], [0.1, 1.0, 3.0], label="direct")
    assert lines[0].axes.get_yscale() == "log"
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 3, 5])


def test_grid_and_reexports(rng):
    imgs = viz.plot_grid([rng.random((4, 4, 3)), rng.random((4, 4))], titles=["a", "b"], ncols=2)
    assert [i.axes.get_title() for i in imgs] == ["a", "b"]
    assert all(isinstance(i.axes, Axes) for i in imgs)
    for name in ("plot_conv_vs_kernel", "plot_training_curves", "plot_confusion_matrix"):
        assert callable(getattr(viz, name))
    assert set(viz.__all__) <= set(dir(viz))


def test_tile_mosaic():
    x = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)
    t = viz.tile(x, 2)
    assert t.shape == (5, 5)
    np.testing.assert_array_equal(t[:2, :2], x[..., 0])
    np.testing.assert_array_equal(t[3:, :2], x[..., 2])
    assert np.isnan(t[2]).all() and np.isnan(t[3:, 3:]).all()
