"""
Whole layers
============

Convolution, ReLU and max pooling together make one layer of a CNN. Stacking two such layers,
the second convolving the first one's output, the cat fades into blobs of where the filters fire:
what a random network "sees" two layers deep.
"""

# %%
import _gallery
import jax

from jaxconv import conv2d, max_pool2d, relu, viz
from jaxconv.layers import glorot_uniform

g = _gallery.Gallery()
x = g.cat
key = jax.random.key(g.seed)


def filters(k, n, c=3, layer=1):
    """``n`` random ``k×k×c`` filters; the first layer's are those of the convolution example."""
    seed = 1000 * c + 10 * k + n + 100_000 * (layer - 1)
    return glorot_uniform(jax.random.fold_in(key, seed), (k, k, c, n))


def show(spec, stages, caption):
    """Save the cat and each stage side by side, titled with their shapes."""
    y = list(stages.values())[-1]
    fig = viz.figure(2.4 * (len(stages) + 1), 3.0)
    viz.plot_stages({"input": x, **stages}, ax=fig.subplots(1, len(stages) + 1).tolist(),
                    **g.colors)
    fig.suptitle(f"{spec}  →  {viz.fmt_shape(y.shape)}", fontsize="large")
    g.save(fig, f"cat_{_gallery.slug(spec)}", caption, kind="stack", layers=spec,
           output_shape=y.shape, stages=stages)


def layer(x, kernel, pool):
    """One CNN layer: convolution, ReLU, max pooling; returns every stage."""
    y = conv2d(x, kernel)
    return y, relu(y), max_pool2d(relu(y), pool)


# %%
# One layer
# ---------
c, r, p = layer(x, filters(3, 1), 5)
show("conv3x3:1,relu,maxpool5", {"conv3x3:1": c, "relu": r, "maxpool5": p},
     "Convolution, ReLU, pooling: one whole CNN layer, one filter.")

c, r, p = layer(x, filters(3, 3), 5)
show("conv3x3:3,relu,maxpool5", {"conv3x3:3": c, "relu": r, "maxpool5": p},
     "One whole CNN layer with 3 filters.")

# %%
# Two layers
# ----------
# The second layer's filters see the first layer's channels: 1 or 3 of them.
c1, r1, p1 = layer(x, filters(3, 1), 3)
c2, r2, p2 = layer(p1, filters(3, 1, c=1, layer=2), 3)
show("conv3x3:1,relu,maxpool3,conv3x3:1,relu,maxpool3",
     {"conv3x3:1": c1, "relu": r1, "maxpool3": p1, "conv3x3:1_2": c2, "relu_2": r2,
      "maxpool3_2": p2},
     "Two layers of one filter each: the cat fades into blobs of where the filters fire.")

c1, r1, p1 = layer(x, filters(3, 3), 3)
c2, r2, p2 = layer(p1, filters(3, 1, c=3, layer=2), 2)
show("conv3x3:3,relu,maxpool3,conv3x3:1,relu,maxpool2",
     {"conv3x3:3": c1, "relu": r1, "maxpool3": p1, "conv3x3:1": c2, "relu_2": r2,
      "maxpool2": p2},
     "Two layers, 3 filters then 1.")

c2, r2, p2 = layer(p1, filters(3, 3, c=3, layer=2), 2)
show("conv3x3:3,relu,maxpool3,conv3x3:3,relu,maxpool2",
     {"conv3x3:3": c1, "relu": r1, "maxpool3": p1, "conv3x3:3_2": c2, "relu_2": r2,
      "maxpool2": p2},
     "Two layers of 3 filters: what a random network 'sees' two layers deep.")
