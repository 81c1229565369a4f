"""
Why did it say 3?
=================

Beyond the article: which pixels does a trained LeNet-5's decision depend on?
``jaxconv.explain`` computes attributions as pure JAX functions of ``fn(x) -> logits``. The
saliency map is the gradient of the class score with respect to each pixel (Simonyan et al.,
2014); integrated gradients add the gradients along a straight path from a blank image to the
digit, so the attributions sum to the score difference (Sundararajan et al., 2017).
"""

# %%
import _gallery
import jax.numpy as jnp
import numpy as np

from jaxconv import explain, softmax, viz
from jaxconv.data import digits
from jaxconv.models.train import train

g = _gallery.Gallery()
d = digits()  # scikit-learn's digits on LeNet's 32x32 grid


def train_lenet():
    """LeNet-5 trained on the digits (the same run as in the previous example)."""
    data = (d.x_train[:512], d.y_train[:512], d.x_test[:128], d.y_test[:128]) if g.small else "digits"
    return train(data=data, epochs=1 if g.small else 5, seed=g.seed, progress=False)


model, metrics = g.once("lenet", train_lenet)

# %%
# One test image each of a 3, a 5 and an 8, and what the model predicts:
picks = [int(np.flatnonzero(d.y_test == c)[0]) for c in (3, 5, 8)]
x = jnp.asarray(d.x_test[picks])  # (3, 32, 32, 1)
probs = np.asarray(softmax(model(x)))
predicted = probs.argmax(-1)
saliency = explain.saliency(model, x, predicted)  # (3, 32, 32, 1), signed
ig = explain.integrated_gradients(model, x, predicted, baseline=-0.1)  # blank = background
print("predicted", predicted.tolist())

# %%
# Each row: the digit, ``|saliency|``, and integrated gradients over the digit (red: evidence
# for the class, blue: against).
fig = viz.figure(10.0, 2.5 * len(picks))
axs = fig.subplots(len(picks), 4, squeeze=False)
for row, i, c, s, a in zip(axs, picks, predicted, saliency, ig, strict=True):
    viz.plot_saliency(d.x_test[i], np.abs(np.asarray(s)), ax=row[:3].tolist(),
                      titles=(f"digit {int(d.y_test[i])}", f"|∂ score[{c}] / ∂x|",
                              f"predicted {c} ({probs[list(picks).index(i), c]:.0%})"))
    viz.plot_attribution(d.x_test[i], np.asarray(a), ax=row[3], title="integrated gradients")
fig.suptitle(f"Saliency: |gradient| of the class score\nLeNet-5 trained on digits, "
             f"test accuracy {metrics['test_accuracy']:.1%}")
g.save(fig, "saliency",
       "Beyond the article: which pixels move the predicted class score most (|gradient| of the "
       "score, jaxconv.explain.saliency), and integrated gradients.",
       kind="extra", digits=[{"label": int(d.y_test[i]), "predicted": int(c)}
                             for i, c in zip(picks, predicted, strict=True)])
