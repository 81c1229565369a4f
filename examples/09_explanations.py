"""
Why did it say 3?
=================

Beyond the article: which pixels does a trained LeNet-5's decision depend on?
``jaxconv.explain`` computes attributions as pure JAX functions of ``fn(x) -> logits``. The
saliency map is the gradient of the class score with respect to each pixel (Simonyan et al.,
2014); integrated gradients add the gradients along a straight path from a blank image to the
digit, so the attributions sum to the score difference (Sundararajan et al., 2017). Then every
method of ``jaxconv.explain`` side by side on the same digits.
"""

# %%
import _gallery
import jax
import jax.numpy as jnp
import numpy as np

from jaxconv import explain, max_pool2d, relu, softmax, viz
from jaxconv.data import digits

g = _gallery.Gallery()
d = digits()  # scikit-learn's digits on LeNet's 32x32 grid
model, metrics = g.trained_lenet()  # 30 epochs, ~99 % test accuracy (the previous example's run)

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

# %%
# Every method on the same three digits. Gradient family: saliency (the raw gradient), SmoothGrad
# (the gradient averaged over noisy copies, Smilkov et al. 2017), integrated gradients; guided
# backprop and the deconvnet change the ReLUs' backward rule (Springenberg et al. 2015, Zeiler &
# Fergus 2014). Grad-CAM(++) weighs conv2's 16 maps by their pooled gradients (Selvaraju et al.
# 2017, Chattopadhyay et al. 2018): a coarse 10x10 map, upsampled. Occlusion greys out 4x4
# windows and records how much the score drops (Zeiler & Fergus 2014): no gradients at all.


def fn(z, activation=None):  # the form guided backprop / deconvnet need
    return model(z, activation=activation)


def body(z):  # up to conv2's ReLU: (N, 10, 10, 16)
    return relu(model.conv2(max_pool2d(relu(model.conv1(z)), 2)))


def head(a):  # the rest: pool2, flatten, the dense layers
    a = max_pool2d(a, 2)
    return model.fc3(relu(model.fc2(relu(model.fc1(a.reshape(a.shape[0], -1))))))


samples = 8 if g.small else 50
methods = {
    "saliency": saliency,
    "SmoothGrad": explain.smoothgrad(fn, x, predicted, key=jax.random.key(g.seed),
                                     samples=samples),
    "integrated gradients": ig,
    "Grad-CAM": explain.grad_cam(body, head, x, predicted),
    "Grad-CAM++": explain.grad_cam_plus_plus(body, head, x, predicted),
    "occlusion (4x4)": explain.occlusion(fn, x, predicted, window=4, stride=2, baseline=-0.1),
    "guided backprop": explain.guided_backprop(fn, x, predicted),
    "deconvnet": explain.deconvnet(fn, x, predicted),
}
fig = viz.figure(2.0 * (len(methods) + 1), 2.2 * len(picks))
axs = fig.subplots(len(picks), len(methods) + 1, squeeze=False)
for r, (i, c) in enumerate(zip(picks, predicted, strict=True)):
    axs[r, 0].imshow(d.x_test[i][..., 0], cmap="gray")
    axs[r, 0].set_title(f"digit {int(d.y_test[i])} → {c}", fontsize="medium")
    axs[r, 0].set_axis_off()
    for ax, (method, maps) in zip(axs[r, 1:], methods.items(), strict=True):
        viz.plot_attribution(d.x_test[i], np.asarray(maps[r]), ax=ax, colorbar=False,
                             alpha=0.7, title=method)
fig.suptitle("Every attribution method of jaxconv.explain for the predicted class "
             "(red: for, blue: against; Grad-CAM: jet, non-negative)")
g.save(fig, "explain_methods",
       "Beyond the article: saliency, SmoothGrad, integrated gradients, Grad-CAM, Grad-CAM++, "
       "occlusion, guided backprop and the deconvnet side by side on the same test digits.",
       kind="extra", methods=list(methods))
