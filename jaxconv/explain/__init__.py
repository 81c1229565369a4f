"""Attribution methods: which input pixels a CNN's output depends on, as pure JAX functions.

Every method explains ``fn(x) -> logits (N, K)`` at NHWC images ``x`` ``(N, H, W, C)`` for one
output per image, ``target`` (an int or an int array ``(N,)``). Arguments are validated before
any tracing (``TypeError`` / ``ValueError`` naming the function, argument, rule and value).
Perturbation-heavy methods (SmoothGrad, integrated gradients, occlusion) evaluate their copies
in chunks of ``batch_size`` inside a ``lax.scan``, so memory does not grow with the number of
samples, steps or windows. See ``docs/explain.md``.

- gradients: :func:`saliency`, :func:`smoothgrad`, :func:`integrated_gradients`
  (+ :func:`completeness_gap`);
- modified backprop: :func:`guided_backprop`, :func:`deconvnet` via the ReLUs
  :func:`guided_relu`, :func:`deconv_relu` (the model takes its activation as an argument);
- class activation maps: :func:`grad_cam`, :func:`grad_cam_plus_plus`;
- perturbation: :func:`occlusion`;
- feature visualization: :func:`feature_visualization`;
- sanity checks: :func:`model_parameter_randomization`, :func:`rank_correlation`.
"""

from .backprop import deconv_relu, deconvnet, guided_backprop, guided_relu
from .cam import grad_cam, grad_cam_plus_plus
from .featvis import PARAMETRIZATIONS, feature_visualization
from .gradients import IG_METHODS, completeness_gap, integrated_gradients, saliency, smoothgrad
from .occlusion import occlusion
from .sanity import model_parameter_randomization, rank_correlation

__all__ = [
    "IG_METHODS",
    "PARAMETRIZATIONS",
    "completeness_gap",
    "deconv_relu",
    "deconvnet",
    "feature_visualization",
    "grad_cam",
    "grad_cam_plus_plus",
    "guided_backprop",
    "guided_relu",
    "integrated_gradients",
    "model_parameter_randomization",
    "occlusion",
    "rank_correlation",
    "saliency",
    "smoothgrad",
]
