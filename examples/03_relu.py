"""
ReLU
====

A convolution is usually followed by an activation function. The article's is ReLU,
``max(0, x)``: every negative response becomes 0, the positive ones pass unchanged.
"""

# %%
import _gallery
import jax

from jaxconv import conv2d, relu, viz
from jaxconv.layers import glorot_uniform

g = _gallery.Gallery()
x = g.cat
key = jax.random.key(g.seed)


def filters(k, n, c=3):
    """``n`` random ``k×k×c`` filters, the same as in the convolution example."""
    return glorot_uniform(jax.random.fold_in(key, 1000 * c + 10 * k + n), (k, k, c, n))


def show(spec, stages, caption):
    """Save the cat and each stage side by side, titled with their shapes."""
    y = list(stages.values())[-1]
    fig = viz.figure(2.4 * (len(stages) + 1), 3.0)
    viz.plot_stages({"input": x, **stages}, ax=fig.subplots(1, len(stages) + 1).tolist(),
                    **g.colors)
    fig.suptitle(f"{spec}  →  {viz.fmt_shape(y.shape)}", fontsize="large")
    g.save(fig, f"cat_{_gallery.slug(spec)}", caption, kind="stack", layers=spec,
           output_shape=y.shape, stages=stages)


# %%
# Activation functions
# --------------------
# ReLU and its relatives, as ``jaxconv.activation(name)`` computes them.
names = viz.diagrams.ACTIVATIONS
fig = viz.figure(9.0, 5.4)
viz.plot_activations(names, ax=fig.subplots(3, 4).ravel().tolist())
g.save(fig, "activations", "Common activation functions; ReLU is the one the article's stacks use.",
       kind="illustration", functions=list(names))

# %%
# ReLU after one filter
# ---------------------
# "The cat after the convolution and ReLU": where the filter responded negatively the map is
# now flat zero.
y = conv2d(x, filters(3, 1))
show("conv3x3:1,relu", {"conv3x3:1": y, "relu": relu(y)},
     "ReLU after the one-filter convolution: every negative response becomes 0.")

# %%
# ReLU after three filters
# ------------------------
y = conv2d(x, filters(3, 3))
show("conv3x3:3,relu", {"conv3x3:3": y, "relu": relu(y)},
     "ReLU on the 3-filter output: each channel keeps only its positive responses.")
