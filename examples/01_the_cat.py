"""
The cat
=======

The article starts from a photo of a cat, 320 pixels high and 400 wide, with three colour
channels. jaxconv bundles one: "Chelsea" from scikit-image's sample data (CC0, photographer
Stefan van der Walt), cropped to the article's 4:5 and resized to 320×400.

Images are NHWC, ``(N, H, W, C)``, or unbatched ``(H, W, C)``, with float values; the cat's are
in ``[0, 1]``.
"""

# %%
import _gallery

from jaxconv import viz
from jaxconv.data import cat

g = _gallery.Gallery()  # --out, --style, --seed; saves figures, manifest and gallery
x = g.cat  # cat() -- or a 4x smaller one with --small
print(cat().shape, cat().dtype)

# %%
# "This is our cat." Every figure is a detached matplotlib ``Figure`` from ``viz.figure``;
# the ``viz.plot_*`` functions draw into the axes they are given.
fig = viz.figure(5.0, 4.3)
viz.plot_image(x, ax=fig.add_subplot(), title=f"the cat, {viz.fmt_shape(x.shape)}")
g.save(fig, "cat", "The cat: “Chelsea” from scikit-image's sample data (CC0, Stefan van der "
       "Walt), cropped and resized to the article's 320×400.",
       kind="photo", layers="", output_shape=x.shape)
