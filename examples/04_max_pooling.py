"""
Max pooling
===========

Pooling shrinks the image: max pooling keeps the largest value of each window. With the window
as the stride (Keras' ``MaxPooling2D``), 2×2 pooling halves each side and 5×5 pooling keeps one
value in 25 -- and the cat is still recognisable.
"""

# %%
import _gallery
import jax

from jaxconv import conv2d, max_pool2d, viz
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
# How pooling works
# -----------------
# Each 2×2 block becomes its maximum (or, for average pooling, its mean); the numbers are
# computed by ``max_pool2d`` and ``avg_pool2d``.
fig = viz.figure(6.0, 3.0)
viz.plot_pooling(ax=fig.add_subplot())
g.save(fig, "pooling", "Pooling: each 2×2 block becomes its maximum (max pooling) or its mean "
       "(average pooling).", kind="illustration")

# %%
# 2×2 pooling
# -----------
three, one = conv2d(x, filters(3, 3)), conv2d(x, filters(3, 1))
show("conv3x3:3,maxpool2", {"conv3x3:3": three, "maxpool2": max_pool2d(three, 2)},
     "2×2 max pooling keeps the strongest response of each block and halves each side.")

# %%
# 5×5 pooling
# -----------
# 318×398 becomes 63×79: the last 3 rows and columns do not fill a window and are dropped.
show("conv3x3:1,maxpool5", {"conv3x3:1": one, "maxpool5": max_pool2d(one, 5)},
     "5×5 max pooling: 25 times fewer values, and the cat is still recognisable.")
show("conv3x3:3,maxpool5", {"conv3x3:3": three, "maxpool5": max_pool2d(three, 5)},
     "5×5 max pooling of the 3-filter output.")
