"""
Sanity checks, features and deconvnet projections
=================================================

Beyond the article: three more looks inside the trained LeNet-5. Do the attribution maps of the
previous example depend on the weights at all (Adebayo et al., 2018)? What does each channel of
the second convolution respond to (feature visualization, Olah et al., 2017)? And which pixels
made a digit's strongest conv2 activation (the deconvnet, Zeiler & Fergus, 2014)?
"""

# %%
import _gallery
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from matplotlib.patches import Rectangle

from jaxconv import explain, max_pool2d, relu, viz
from jaxconv.data import digits

g = _gallery.Gallery()
d = digits()
model, metrics = g.trained_lenet()  # 30 epochs, ~99 % test accuracy (shared with 08 and 09)
picks = [int(np.flatnonzero(d.y_test == c)[0]) for c in (3, 5, 8)]
x = jnp.asarray(d.x_test[picks])  # (3, 32, 32, 1)
t = model(x).argmax(-1)  # explain the predicted classes

# %%
# Model-parameter randomization (Adebayo et al. 2018): re-draw the weights layer by layer from
# the top (fc3, then fc2, ...; cascading) and recompute the maps. A method that explains the
# model must change; Spearman's rank correlation of ``|map|`` with the trained model's map (mean
# over the three digits) says how much. ``attribute`` also keeps every map for the figure.
# Integrated gradients multiply by ``x - baseline``, the digit itself, which keeps their ranks
# correlated whatever the weights (Adebayo et al.'s point about gradient ⊙ input).
graphdef, params = nnx.split(model, nnx.Param)
layers = ["fc3", "fc2", "fc1", "conv2", "conv1"]
steps = 8 if g.small else 32
attributors = {
    "saliency": lambda m: explain.saliency(m, x, t),
    "integrated gradients": lambda m: explain.integrated_gradients(m, x, t, baseline=-0.1,
                                                                   steps=steps),
    "guided backprop": lambda m: explain.guided_backprop(
        lambda z, activation: m(z, activation=activation), x, t),
}
maps, rho = {}, {}
for method, attr in attributors.items():
    maps[method] = []

    def attribute(p, attr=attr, kept=maps[method]):  # the maps of the model with weights p
        kept.append(attr(nnx.merge(graphdef, p)))
        return kept[-1]

    # the same key for every method: the same randomized weights
    rho[method] = explain.model_parameter_randomization(attribute, params, layers,
                                                        key=jax.random.key(g.seed))

fig = viz.figure(2.0 * (len(layers) + 1), 2.3 * len(attributors))
axs = fig.subplots(len(attributors), len(layers) + 1, squeeze=False)
for row, method in zip(axs, attributors, strict=True):
    titles = ["trained"] + [f"+ {lay} random\nρ = {rho[method][lay]:.2f}" for lay in layers]
    for ax, a, title in zip(row, maps[method], titles, strict=True):
        viz.plot_attribution(d.x_test[picks[0]], np.asarray(a[0]), ax=ax, colorbar=False,
                             alpha=0.8, title=title)
    row[0].set_ylabel(method)
    row[0].set_title(f"{method}\ntrained", fontsize="medium")
fig.suptitle("Sanity check: cascading randomization of LeNet-5's layers, top first "
             "(ρ: Spearman rank correlation of |map| with the trained model's)")
g.save(fig, "sanity_randomization",
       "Beyond the article: the model-parameter randomization test of Adebayo et al. (2018): "
       "attributions of the trained LeNet-5 and after re-drawing its layers from the top, with "
       "the rank correlation to the trained model's maps.",
       kind="extra", layers_randomized=layers,
       rank_correlation={m: {k: round(v, 3) for k, v in r.items()} for m, r in rho.items()})

# %%
# Feature visualization (Olah et al. 2017): gradient ascent on an image to maximize the mean
# activation of one conv2 channel, with random jitter and zoom every step so that the pattern
# must be robust; a small L2 penalty pulls the pixels no channel needs to grey. The objective is
# the mean over all positions, so the answer is a texture: the pattern tiled. One image per
# channel, all 16 optimized together (``channel`` per image).


def conv2(img):  # images in [0, 1] -> LeNet's input range -> conv2 (before its ReLU)
    z = -0.1 + 1.275 * img
    return model.conv2(max_pool2d(relu(model.conv1(z)), 2))


features = explain.feature_visualization(
    conv2, (16, 32, 32, 1), key=jax.random.key(g.seed), channel=jnp.arange(16),
    steps=8 if g.small else 256, learning_rate=0.05, l2=5.0)
fig = viz.figure(8.0, 8.6)
for k, ax in enumerate(fig.subplots(4, 4).ravel()):
    ax.imshow(np.asarray(features[k, ..., 0]), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"conv2 channel {k}", fontsize="medium")
    ax.set_axis_off()
fig.suptitle("What each conv2 channel of the trained LeNet-5 looks for\n"
             "(images maximizing the channel's mean activation)")
g.save(fig, "conv2_features",
       "Beyond the article: feature visualization of the 16 conv2 channels of the trained "
       "LeNet-5 (explain.feature_visualization, activation maximization).",
       kind="extra", output_shape=features.shape[1:])

# %%
# The deconvnet (Zeiler & Fergus 2014): keep one activation -- the strongest of conv2, after
# its ReLU -- set all others to zero and project it back to the pixels: transposed
# convolutions, the max pools' switches, and ReLUs applied to the backward signal.
# ``explain.deconvnet`` does exactly that when the "score" is that single activation.
act2 = np.asarray(relu(model.conv2(max_pool2d(relu(model.conv1(x)), 2))))  # (3, 10, 10, 16)
strongest = [np.unravel_index(a.argmax(), a.shape) for a in act2]  # (i, j, channel) per digit
mask = np.zeros_like(act2)
for n, (i, j, c) in enumerate(strongest):
    mask[n, i, j, c] = 1.0


def one_activation(z, activation):  # (N, 1): the kept conv2 activation of each digit
    a = activation(model.conv2(max_pool2d(activation(model.conv1(z)), 2)))
    return (a * mask).sum((1, 2, 3))[:, None]


projection = explain.deconvnet(one_activation, x, 0)  # (3, 32, 32, 1)
fig = viz.figure(9.0, 2.6 * len(picks))
axs = fig.subplots(len(picks), 3, squeeze=False)
for r, (i, j, c) in enumerate(strongest):
    axs[r, 0].imshow(d.x_test[picks[r]][..., 0], cmap="gray")
    # conv2's receptive field: 14x14 pixels from (2i, 2j)
    axs[r, 0].add_patch(Rectangle((2 * j - 0.5, 2 * i - 0.5), 14, 14, fill=False, ec="r"))
    axs[r, 0].set_title(f"digit {int(d.y_test[picks[r]])}", fontsize="medium")
    axs[r, 0].set_axis_off()
    axs[r, 1].imshow(act2[r, ..., c], cmap="viridis")
    axs[r, 1].plot(j, i, "r+", ms=12)
    axs[r, 1].set_title(f"conv2 channel {c}, max at ({i}, {j})", fontsize="medium")
    axs[r, 1].set_axis_off()
    viz.plot_attribution(d.x_test[picks[r]], np.asarray(projection[r]), ax=axs[r, 2],
                         alpha=0.8, title="deconvnet projection")
fig.suptitle("Zeiler & Fergus: the strongest conv2 activation projected back to the pixels")
g.save(fig, "deconvnet_projection",
       "Beyond the article: for each test digit, its strongest conv2 activation (after ReLU) "
       "projected back to pixel space by the deconvnet (explain.deconvnet).",
       kind="extra", strongest=[{"row": int(i), "col": int(j), "channel": int(c)}
                                for i, j, c in strongest])
