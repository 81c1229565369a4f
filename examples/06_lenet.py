"""
LeNet
=====

The article ends with LeNet-5 (LeCun et al., 1998), the network that put these pieces together:
two layers of convolution, activation and pooling, then dense layers down to ten digit classes.
``jaxconv.models.LeNet5`` is a Flax NNX module built from the same ``conv2d``, ``relu`` and
``max_pool2d``; ``model.features(x)`` returns every stage's output, by name, in order.
"""

# %%
import _gallery
import jax.numpy as jnp
from flax import nnx

from jaxconv import viz
from jaxconv.models import LeNet5

g = _gallery.Gallery()
model = LeNet5(rngs=nnx.Rngs(g.seed))  # the modern variant; LeNet5.classic() is the 1998 one
for name, y in model.features(jnp.zeros((1, 32, 32, 1))).items():
    print(f"{name:>8}: {y.shape}")

# %%
# The architecture, drawn from those shapes:
fig = viz.figure(13.0, 3.0)
viz.plot_lenet(model, ax=fig.add_subplot(),
               title="LeNet-5 (modern variant), shapes from LeNet5.features")
g.save(fig, "lenet",
       "LeNet-5: two conv/ReLU/max-pool layers, then dense layers; shapes from the model.",
       kind="illustration")
