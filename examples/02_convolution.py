"""
One convolution
===============

A convolution slides a small kernel over the image; each output value is the sum of a window of
the image times the kernel. With 3 filters the output has 3 channels again, so we can draw it as
a colour image. The filters are random -- an untrained network -- yet we can still see the cat.
"""

# %%
import _gallery
import jax
import jax.numpy as jnp

from jaxconv import conv2d, viz
from jaxconv.layers import glorot_uniform

g = _gallery.Gallery()
x = g.cat  # (320, 400, 3)
key = jax.random.key(g.seed)


def filters(k, n, c=3):
    """``n`` random ``k×k×c`` filters (HWIO), as an untrained Keras ``Conv2D`` draws them.

    The same seed, size and count give the same filters in every script, so the
    ReLU and pooling figures show what happens to *these* convolutions.
    """
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
# How a convolution works
# -----------------------
# A 3×3 kernel over a 5×5 input: 9 positions, each output the sum of the window times the
# kernel. The animation's numbers come from ``conv2d`` itself.
five = jnp.array([[0.0, 0.0, 1.0, 1.0, 1.0]] * 5)[..., None]  # dark left, bright right
edge = jnp.array([[1.0, 0.0, -1.0]] * 3)[..., None, None]  # a vertical-edge filter (HWIO)
print(conv2d(five, edge)[..., 0])  # 3×3 outputs (VALID: 5 - 3 + 1); non-zero at the edge

frames = viz.conv_animation(path=g.out / "convolution.gif", dpi=g.dpi)
g.add("convolution", "convolution.gif",
      "Convolution: a 3×3 kernel slides over a 5×5 input; each output is the sum of the window "
      "times the kernel (values computed by jaxconv.conv2d).",
      kind="illustration", frames=len(frames))

# %%
# Three filters
# -------------
# "Let's convolve the cat with 3 random 3×3 filters." A VALID 3×3 window fits 318×398 times.
y = conv2d(x, filters(3, 3))
show("conv3x3:3", {"conv3x3:3": y},
     "One convolution: 3 random (untrained) 3×3 filters. Still a cat; a VALID 3×3 window trims "
     "a pixel from every side.")

# %%
# Bigger kernels
# --------------
# Each output of a 10×10 kernel mixes a hundred neighbours: the cat blurs.
y = conv2d(x, filters(10, 3))
show("conv10x10:3", {"conv10x10:3": y},
     "A 10×10 kernel mixes a hundred neighbours per output: the cat blurs.")

# %%
# One filter
# ----------
# One filter gives one channel, which we draw with a colour map: a heat map of the cat.
y = conv2d(x, filters(3, 1))
show("conv3x3:1", {"conv3x3:1": y},
     "One filter gives one channel, drawn with a colormap: a heat map of the cat.")

y = conv2d(x, filters(15, 1))
show("conv15x15:1", {"conv15x15:1": y}, "One 15×15 filter: edges smear over 15 pixels.")
