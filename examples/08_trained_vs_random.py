"""
Trained filters and random ones
===============================

Beyond the article: every filter so far was random. What does a *trained* network's first
layer do to the cat? We train LeNet-5 on scikit-learn's handwritten digits (a few seconds on a
CPU, to about 99 % test accuracy) and run the gray cat through its first layer -- convolution,
ReLU, pooling -- before and after training, from the same initial weights.
"""

# %%
import _gallery
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxconv import max_pool2d, relu, viz
from jaxconv.models import LeNet5

g = _gallery.Gallery()

# LeNet-5 trained on the digits: 30 epochs, about 99 % test accuracy (``g.trained_lenet`` wraps
# ``jaxconv.models.train.train(data="digits", seed=g.seed)``; one epoch on a slice with --small).
# Trained once per run: the explanation examples reuse it.
random_model = LeNet5(rngs=nnx.Rngs(g.seed))  # the weights training starts from
trained, metrics = g.trained_lenet()
note = (f"trained on digits for {metrics['epochs']} epochs, "
        f"test accuracy {metrics['test_accuracy']:.1%}")
print(note)

# %%
# The gray cat, scaled like the digits LeNet was trained on (background -0.1, ink 1.175):
gray = g.cat @ np.array([0.299, 0.587, 0.114])
x = jnp.asarray((-0.1 + 1.275 * gray)[None, ..., None], jnp.float32)

rows = []
for label, model in (("random", random_model), ("trained", trained)):
    y = max_pool2d(relu(model.conv1(x)), 2)[0]  # conv1 -> ReLU -> pool1
    rows.append((label, np.asarray(model.conv1.kernel[...]), np.asarray(y)))

# %%
# Each kernel above the feature map it makes:
n = rows[0][1].shape[-1]
fig = viz.figure(1.9 * n, 8.0)
subs = fig.subfigures(4, 1, height_ratios=(0.62, 1, 0.62, 1))
for r, (label, kernel, y) in enumerate(rows):
    viz.plot_kernels(kernel, ax=subs[2 * r].subplots(1, n).tolist())
    subs[2 * r].suptitle(f"{label} conv1 kernels ({kernel.shape[0]}×{kernel.shape[1]})",
                         fontsize="medium")
    viz.plot_feature_maps(y, ax=subs[2 * r + 1].subplots(1, n).tolist(), policy="per_map",
                          titles=False)
    subs[2 * r + 1].suptitle(f"{label}: conv1 → relu → pool1 on the cat, {viz.fmt_shape(y.shape)}",
                             fontsize="medium")
w0, w1 = rows[0][1], rows[1][1]
change = float(np.abs(w1 - w0).mean() / np.abs(w0).mean())
fig.suptitle(f"LeNet-5's first layer on the cat: random (seed {g.seed}) vs {note};\n"
             f"mean |Δw| / mean |w| = {change:.0%}")
g.save(fig, "lenet_trained_vs_random",
       "Beyond the article: LeNet-5's first layer (conv1 → ReLU → pool1) on the cat, at its "
       "random initial weights and after training on digits from those same weights.",
       kind="extra", trained=note, relative_weight_change=round(change, 4),
       output_shape=rows[0][2].shape)
