"""Feature visualization by activation maximization (Olah, Mordvintsev, Schubert 2017)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from . import _checks

__all__ = ["PARAMETRIZATIONS", "feature_visualization"]

PARAMETRIZATIONS = ("fourier", "pixel")
# 1 / f**decay reaches max(H, W)**decay at the lowest frequency: beyond 4 that term swamps the
# others (the image saturates to flat black and white already at 4) and, for larger exponents,
# overflows float32 into an all-NaN image.
MAX_DECAY = 4.0

# Lucid's square root of the ImageNet colour correlation (columns: decorrelated -> RGB).
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
_COLOR = _COLOR_SQRT / np.max(np.linalg.norm(_COLOR_SQRT, axis=0))


def _fourier_scale(h: int, w: int, decay: float) -> np.ndarray:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    freq = np.sqrt(fx * fx + fy * fy)
    return (1.0 / np.maximum(freq, 1.0 / max(h, w)) ** decay).astype(np.float32)


def _gaussian_blur(x: jax.Array, sigma: float) -> jax.Array:
    """Separable Gaussian blur of NHWC ``x`` (edge-padded), radius ``ceil(3 sigma)``."""
    r = max(1, int(np.ceil(3 * sigma)))
    k_np = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = jnp.asarray(k_np / k_np.sum(), x.dtype)
    p = jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode="edge")
    h, w = x.shape[1:3]
    rows = k[0] * p[:, 0:h, :, :]
    for i in range(1, 2 * r + 1):
        rows = rows + k[i] * p[:, i:i + h, :, :]
    out = k[0] * rows[:, :, 0:w, :]
    for i in range(1, 2 * r + 1):
        out = out + k[i] * rows[:, :, i:i + w, :]
    return out


def feature_visualization(
    fn: Callable[[jax.Array], jax.Array],
    shape: tuple[int, int, int, int],
    *,
    key: jax.Array,
    channel: ArrayLike = 0,
    steps: int = 256,
    learning_rate: float = 0.05,
    parametrization: str = "fourier",
    decay: float = 1.0,
    decorrelate: bool = True,
    jitter: int = 2,
    scale: tuple[float, float] = (0.95, 1.05),
    blur: float = 0.0,
    l2: float = 0.0,
    return_history: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Images that maximize one channel (or unit) of ``fn``: activation maximization.

    Gradient ascent (Adam) on ``mean_ij fn(T(img))[n, i, j, channel[n]] - l2 * mean(img - 0.5)²``
    where ``T`` is a random transformation drawn each step — a translation of up to ``jitter``
    pixels and a zoom by a factor in ``scale`` (``jax.image.scale_and_translate``) — so that the
    image must work whatever its exact position and size (transformation robustness). The image
    is ``sigmoid`` of a parametrization:

    - ``"fourier"`` (default): a spectrum scaled by ``1 / f^decay`` and inverse-FFT'd, so all
      frequencies learn at similar rates (Olah et al.'s decorrelated space); with 3 channels and
      ``decorrelate``, colours are mixed through the ImageNet colour-correlation square root.
    - ``"pixel"``: the pixels themselves; ``blur > 0`` Gaussian-blurs them (sigma in pixels) after
      every step, the blur regularizer of Yosinski et al.

    Args:
      fn: ``fn(x) -> activations``, ``(N, K)`` (units) or NHWC ``(N, h, w, K)`` (channels,
        averaged over positions), for images ``x`` in ``[0, 1]`` (normalize inside ``fn``).
      shape: the images to optimize, ``(N, H, W, C)``.
      key: PRNG key (initialization and transformations).
      channel: the channel/unit, an int or an int array ``(N,)`` (one per image).
      steps: optimization steps (>= 1).
      learning_rate: Adam step size (> 0).
      parametrization: ``"fourier"`` or ``"pixel"``.
      decay: spectrum decay exponent of the Fourier parametrization, in ``[0, 4]`` (Olah et al.
        use 1).
      decorrelate: colour decorrelation for 3-channel images (Fourier parametrization).
      jitter: maximum random translation in pixels (>= 0).
      scale: ``(low, high)`` random zoom range (``0 < low <= high``).
      blur: Gaussian blur sigma for the pixel parametrization (0 = off).
      l2: weight of an L2 penalty pulling the image to grey (>= 0).
      return_history: also return the objective per step ``(steps, N)``.

    Returns:
      Images ``(N, H, W, C)`` float32 in ``[0, 1]`` (and the history with ``return_history``).
      Cost: ``steps`` forward and backward passes of ``fn`` on ``N`` images, one compilation.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxconv import explain
      >>> w = jnp.where(jnp.arange(8) < 4, 1.0, -1.0).reshape(1, 1, 8, 1)
      >>> fn = lambda x: (x * w).mean((1, 2, 3))[:, None]
      >>> img = explain.feature_visualization(fn, (1, 8, 8, 1), key=jax.random.key(0),
      ...                                     steps=50, learning_rate=0.1, jitter=0)
      >>> bool(img[0, :, :4].mean() > img[0, :, 4:].mean())
      True

    References:
      C. Olah, A. Mordvintsev, L. Schubert, "Feature visualization", Distill, 2017,
      doi:10.23915/distill.00007. J. Yosinski, J. Clune, A. Nguyen, T. Fuchs, H. Lipson,
      "Understanding neural networks through deep visualization", ICML DL workshop 2015.
    """
    name = "feature_visualization"
    _checks.check_callable(name, "fn", fn)
    if (
        not isinstance(shape, tuple | list)
        or len(shape) != 4
        or not all(_checks._args.is_int(s) for s in shape)
    ):
        raise TypeError(f"{name}: shape must be a tuple (N, H, W, C) of ints, got {shape!r}")
    shape = (int(shape[0]), int(shape[1]), int(shape[2]), int(shape[3]))
    if min(shape) < 1:
        raise ValueError(f"{name}: shape must have sizes >= 1, got {shape}")
    key = _checks.check_key(name, key)
    steps = _checks.check_int(name, "steps", steps)
    learning_rate = _checks.check_real(name, "learning_rate", learning_rate, strict=True)
    parametrization = _checks.check_choice(name, "parametrization", parametrization, PARAMETRIZATIONS)
    decay = _checks.check_real(name, "decay", decay)
    if decay > MAX_DECAY:
        raise ValueError(f"{name}: decay must be a real number in [0, {MAX_DECAY:g}] (the spectrum "
                         f"is scaled by 1 / f**decay), got {decay!r}")
    jitter = _checks.check_int(name, "jitter", jitter, minimum=0)
    if (
        not isinstance(scale, tuple | list) or len(scale) != 2
        or not all(isinstance(s, int | float) and not isinstance(s, bool) for s in scale)
    ):
        raise TypeError(f"{name}: scale must be a pair (low, high) of numbers, got {scale!r}")
    if not 0 < scale[0] <= scale[1] or not np.isfinite(scale[1]):
        raise ValueError(f"{name}: scale must satisfy 0 < low <= high, got {tuple(scale)}")
    blur = _checks.check_real(name, "blur", blur)
    if blur > 0 and parametrization != "pixel":
        raise ValueError(f"{name}: blur > 0 needs parametrization='pixel', got {parametrization!r}")
    l2 = _checks.check_real(name, "l2", l2)
    for flag, value in (("decorrelate", decorrelate), ("return_history", return_history)):
        if not isinstance(value, bool):
            raise TypeError(f"{name}: {flag} must be a bool, got {value!r}")

    n, h, w, c = shape
    spec = jax.eval_shape(fn, jax.ShapeDtypeStruct(shape, jnp.float32))
    oshape = getattr(spec, "shape", None)
    if oshape is None or len(oshape) not in (2, 4) or oshape[0] != n:
        got = "shape " + str(tuple(oshape)) if oshape is not None else type(spec).__name__
        raise ValueError(
            f"{name}: fn(x) must return activations (N, K) or (N, h, w, K) with N = {n}, got {got}"
        )
    ch = _checks.check_target(name, channel, n, int(oshape[-1]), "channel")

    f_scale = jnp.asarray(_fourier_scale(h, w, decay))
    color = jnp.asarray(_COLOR) if (decorrelate and c == 3) else None
    k_init, k_run = jax.random.split(key)
    if parametrization == "fourier":
        params = 0.01 * jax.random.normal(k_init, (2, n, c, h, w // 2 + 1), jnp.float32)
    else:
        params = 0.01 * jax.random.normal(k_init, shape, jnp.float32)

    def image(p):
        if parametrization == "pixel":
            return jax.nn.sigmoid(p)
        spectrum = (p[0] + 1j * p[1]) * f_scale[None, None]
        # sqrt(h w) makes the inverse FFT unitary (pixel-like learning rates); / 4 as Lucid.
        img = jnp.fft.irfft2(spectrum * np.sqrt(h * w), s=(h, w)).transpose(0, 2, 3, 1) / 4.0
        if color is not None:
            img = jnp.einsum("nhwc,dc->nhwd", img, color)
        return jax.nn.sigmoid(img)

    def objective(p, k):
        img = image(p)
        k1, k2 = jax.random.split(k)
        s = jax.random.uniform(k1, (), jnp.float32, scale[0], scale[1])
        shift = jax.random.randint(k2, (2,), -jitter, jitter + 1).astype(jnp.float32)
        size = jnp.asarray([h, w], jnp.float32)
        trans = (1 - s) * size / 2 + shift  # zoom about the centre, then translate
        img_t = jax.image.scale_and_translate(
            img, shape, (1, 2), jnp.stack([s, s]), trans, method="linear", antialias=False
        )
        act = fn(img_t)
        act = act if act.ndim == 2 else act.mean(axis=(1, 2))
        per_image = jnp.take_along_axis(act, ch[:, None], axis=1)[:, 0].astype(jnp.float32)
        penalty = l2 * ((img - 0.5) ** 2).mean(axis=(1, 2, 3))
        return (per_image - penalty).sum(), per_image

    grad = jax.grad(objective, has_aux=True)
    b1, b2, eps = 0.9, 0.999, 1e-8

    def step(state, xs):
        p, m, v = state
        i, k = xs
        g, obj = grad(p, k)
        g = -g  # ascend
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        t = (i + 1).astype(jnp.float32)
        p = p - learning_rate * (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps)
        if blur > 0:
            p = _gaussian_blur(p, blur)
        return (p, m, v), obj

    zeros = jnp.zeros_like(params)
    (params, _, _), history = lax.scan(
        step, (params, zeros, zeros), (jnp.arange(steps), jax.random.split(k_run, steps))
    )
    img = image(params)
    return (img, history) if return_history else img
