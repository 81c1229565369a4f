"""``algorithm="dft"``: the convolution theorem with every transform a GEMM.

The same mathematics as ``fft`` (a cross-correlation is a product of spectra; only the valid
outputs are kept, so a transform of the padded input's own length suffices), but each 1-D
discrete Fourier transform is a matrix product with a DFT matrix instead of an FFT. That costs
``O(L)`` multiply-adds per point instead of ``O(log L)``, yet on CPU it wins for the lengths of
network layers: XLA:CPU's GEMMs run at hundreds of GFLOP/s, and, above all, a GEMM writes its
result in any layout the next stage wants. ``fft`` spends most of its time moving data between
the FFT's layout (transform axes minor) and the per-frequency GEMM's (frequencies major); here
each stage's output is the next stage's operand as it stands:

1. along W: ``[cos; -sin] (2 Wf, W) @ x`` gives the real and imaginary half-spectra
   (``Wf = W // 2 + 1``: the input is real), then one transpose puts the rows first;
2. along H: ``(H, 2 H) @ ((H, re/im), (Wf, N, C))``, two products (real and imaginary part):
   the spectrum ``X[u, v, n, c]``, frequencies major;
3. per frequency, ``Y = X conj(K)`` as four batched real GEMMs ``(N, C) @ (C, O)`` (the kernel's
   spectrum ``K[u, v, c, o]`` comes from two small products over its ``kh x kw`` support, with
   the dilation in the phases);
4. back along H, only for the output rows that are kept (every ``stride``-th valid row);
5. back along W (a real inverse: the half-spectrum's columns weigh twice), only for the kept
   output columns, and a final transpose to NHWC.

So stride costs nothing extra in the inverse transforms, and no power-of-two length is needed.
Measured on the project's 2-core CPU (float32, forward): 8x64x64x32 -> 32 with 11x11 and 15x15
kernels in 5-7 ms against ``fft``'s 9-12 and oneDNN's 12-19 (``docs/algorithms.md``). The DFT
matrices grow as ``L^2``: ``dft`` serves transforms of up to :data:`MAX_LENGTH` points per axis,
beyond which ``fft``'s ``O(log L)`` and overlap-save blocks take over.

Gradients: every product with a constant DFT matrix (:func:`_constant_product`) and the
per-frequency product (:func:`_per_frequency`) carry a custom JVP, so reverse mode runs plain
products on transposed copies instead of XLA:CPU's slow generic dot (forward + backward on the
7x7 case above: 37-42 ms by autodiff, 21 now).

It shares ``fft``'s guards (:func:`.fft.spectral_call`: non-finite inputs, power-of-two scaling,
half precision computed in float32) and its error model: each output's error is relative to the
largest output (``error="global"``). 2-D, ``groups == 1``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._registry import Algorithm, ConvConfig, Shape, not_2d_reason, register
from .fft import dft_phases, spectral_call

#: Largest padded length per spatial axis ``dft`` serves (its DFT matrices hold ``~2 L^2``
#: numbers, and its transforms cost ``O(L)`` per point).
MAX_LENGTH = 256

_HIGHEST = lax.Precision.HIGHEST  # the transforms are exact; TPU/GPU would round them by default


@functools.lru_cache(maxsize=64)
def _matrices(h: int, w: int, kh: int, kw: int, dilation: tuple[int, int],
              stride: tuple[int, int], ho: int, wo: int) -> dict[str, np.ndarray]:
    """The float64 DFT matrices of one problem (cast to the compute dtype at use)."""
    wf = w // 2 + 1
    v = np.arange(wf)
    tw = dft_phases(v, np.arange(w), w)
    th = dft_phases(np.arange(h), np.arange(h), h)
    ch, sh = np.cos(th), np.sin(th)
    tb = dft_phases(v, np.arange(kw) * dilation[1], w)
    ta = dft_phases(np.arange(h), np.arange(kh) * dilation[0], h)
    ca, sa = np.cos(ta), np.sin(ta)
    t4 = dft_phases(np.arange(ho) * stride[0], np.arange(h), h)
    # The real inverse along W: columns 1 .. W/2 - 1 stand for their mirror images too.
    weight = np.full(wf, 2.0)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    t5 = dft_phases(np.arange(wo) * stride[1], v, w)
    return {
        # X = sum_w x e^{-i v w}: rows [re; im]
        "w": np.concatenate([np.cos(tw), -np.sin(tw)]),  # (2 Wf, W)
        # (a + ib) e^{-i u h}: columns interleave (h, re/im)
        "h_re": np.stack([ch, sh], axis=2).reshape(h, 2 * h),
        "h_im": np.stack([-sh, ch], axis=2).reshape(h, 2 * h),
        "kw": np.stack([np.cos(tb), -np.sin(tb)]),  # (2, Wf, kw)
        "kh_re": np.stack([ca, sa], axis=2).reshape(h, 2 * kh),
        "kh_im": np.stack([-sa, ca], axis=2).reshape(h, 2 * kh),
        # (1 / H) sum_u Y e^{+i u h}, kept rows only
        "ih_cos": np.cos(t4) / h,
        "ih_sin": np.sin(t4) / h,
        # (1 / W) sum_v weight (Zr cos - Zi sin), kept columns only
        "iw": np.concatenate([weight * np.cos(t5), -weight * np.sin(t5)], axis=1) / w,
    }


def _constant_product(a: np.ndarray, b, axis: int):
    """``a @ b`` over ``b``'s ``axis`` -> ``(a.shape[0], *b's other axes)``, for a constant ``a``.

    Differentiated, its transpose multiplies by a precomputed ``a.T`` (a plain product) instead
    of contracting over ``a``'s first axis, which XLA:CPU runs through its generic dot, not its
    GEMM library. Written, as in ``mec``, as a ``custom_jvp`` whose tangent is the
    ``jax.linear_transpose`` of the product we want reverse mode to run. On the ``layer`` case's
    7x7 the kernel gradient took 25 ms with autodiff's products, 9.4 with these and
    :func:`_per_frequency`'s, and 87 with only the latter (XLA fused its multiply-reduce into the
    generic dots).
    """
    # numpy constants: a jax array made here would be a tracer, which custom_jvp cannot close over
    dtype = np.dtype(b.dtype)
    left, left_t = a.astype(dtype), np.ascontiguousarray(a.T, dtype=dtype)

    def transposed(ct):
        y = lax.dot_general(left_t, ct, (((1,), (0,)), ((), ())), precision=_HIGHEST)
        return jnp.moveaxis(y, 0, axis)

    @jax.custom_jvp
    def product(b):
        return lax.dot_general(left, b, (((1,), (axis,)), ((), ())), precision=_HIGHEST)

    @product.defjvp
    def product_jvp(primals, tangents):
        y = product(primals[0])
        (t,) = jax.linear_transpose(transposed, jax.ShapeDtypeStruct(y.shape, y.dtype))(tangents[0])
        return y, t

    return product(b)


def _per_frequency(p, q, precision):
    """``p[f] @ q[f]`` for every frequency ``f``: ``(F, N, C) x (F, C, O) -> (F, N, O)``.

    Differentiated, the kernel spectrum's half is a fused multiply-reduce over the images ``N``,
    and the input's half a batched product with ``q``'s transposed copy. Autodiff contracted
    over ``N`` in a batched product, which XLA:CPU ran through its generic dot (so it did with a
    transposed copy of ``p``: XLA folds the transpose back): 11 of the kernel gradient's 25 ms
    on the ``layer`` case's 7x7.
    """
    def product(p, q):
        return lax.dot_general(p, q, (((2,), (1,)), ((0,), (0,))), precision=precision)

    @jax.custom_jvp
    def bilinear(p, q):
        return product(p, q)

    @bilinear.defjvp
    def bilinear_jvp(primals, tangents):
        (p, q), (dp, dq) = primals, tangents
        y = bilinear(p, q)
        aval = jax.ShapeDtypeStruct(y.shape, y.dtype)
        (tp,) = jax.linear_transpose(lambda ct: product(ct, jnp.swapaxes(q, 1, 2)), aval)(dp)
        (tq,) = jax.linear_transpose(
            lambda ct: jnp.sum(p[:, :, :, None] * ct[:, :, None, :], axis=1), aval)(dq)
        return y, tp + tq

    return bilinear(p, q)


def _correlate(x, kernel, config: ConvConfig):
    """Strided VALID cross-correlation of padded NHWC ``x`` with HWIO ``kernel`` (groups 1)."""
    n, h, w, c = x.shape
    kh, kw, _, o = kernel.shape
    wf = w // 2 + 1
    ho, wo = ((s - (k - 1) * d - 1) // st + 1 for s, k, d, st in
              zip((h, w), (kh, kw), config.dilation, config.stride, strict=True))
    m = _matrices(h, w, kh, kw, tuple(config.dilation), tuple(config.stride), ho, wo)
    mm = _constant_product

    # 1. along W; rows (h, re/im) first for step 2
    a = mm(m["w"], x, 2)  # (2Wf, N, H, C)
    a = jnp.transpose(a.reshape(2, wf, n, h, c), (3, 0, 1, 2, 4)).reshape(2 * h, wf * n * c)
    # 2. along H: the spectrum, frequencies (u, v) major
    xr = mm(m["h_re"], a, 0).reshape(h * wf, n, c)
    xi = mm(m["h_im"], a, 0).reshape(h * wf, n, c)
    # the kernel's spectrum over its support, dilation in the phases. (fft's _kernel_spectrum,
    # an rfft along W, gives the same numbers: reused here it ran 1.05x slower forward and 1.45x
    # slower forward + backward on layer-sized problems, 7x7 and 11x11.)
    b = mm(m["kw"].reshape(2 * wf, kw), kernel, 1)  # (2Wf, kh, C, O)
    b = jnp.transpose(b.reshape(2, wf, kh, c, o), (2, 0, 1, 3, 4)).reshape(2 * kh, wf * c * o)
    kr = mm(m["kh_re"], b, 0).reshape(h * wf, c, o)
    ki = mm(m["kh_im"], b, 0).reshape(h * wf, c, o)

    # 3. Y = X conj(K), per frequency
    def per_frequency(p, q):
        return _per_frequency(p, q, config.precision)

    yr = (per_frequency(xr, kr) + per_frequency(xi, ki)).reshape(h, wf * n * o)
    yi = (per_frequency(xi, kr) - per_frequency(xr, ki)).reshape(h, wf * n * o)
    # 4. back along H, kept rows only
    zr = (mm(m["ih_cos"], yr, 0) - mm(m["ih_sin"], yi, 0)).reshape(ho, wf, n * o)
    zi = (mm(m["ih_sin"], yr, 0) + mm(m["ih_cos"], yi, 0)).reshape(ho, wf, n * o)
    # 5. back along W (real), kept columns only
    z = jnp.concatenate([zr, zi], axis=1)  # (Ho, 2 Wf, N O)
    y = mm(m["iw"], z, 1)  # (Wo, Ho, N O)
    return jnp.transpose(y.reshape(wo, ho, n, o), (2, 1, 0, 3))


def conv_dft(x, kernel, config: ConvConfig):
    """DFT-by-GEMM cross-correlation: NHWC ``x`` (N, H, W, C), HWIO ``kernel`` -> NHWC
    (N, H', W', O), the output size of ``direct``. The result has ``x``'s dtype."""
    return spectral_call(x, kernel, config, lambda x, k: _correlate(x, k, config))


def check(x_shape: Shape, kernel_shape: Shape, dtype, config: ConvConfig) -> str | None:
    """Why dft cannot serve: not 2-D, grouped, or a padded side longer than MAX_LENGTH."""
    del dtype, kernel_shape
    not_2d = not_2d_reason("dft", x_shape)
    if not_2d is not None:
        return not_2d
    if config.groups != 1:
        return f"dft serves groups == 1 (got groups={config.groups})"
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(x_shape[1:3], config.padding, strict=True))
    if max(padded) > MAX_LENGTH:
        return (f"dft serves padded sides up to {MAX_LENGTH} (got {padded[0]}x{padded[1]}): its "
                "DFT matrices grow as the square of the side; fft serves any size")
    return None


def dft_cost_terms(x_shape: Shape, kernel_shape: Shape, config: ConvConfig) -> dict[str, float]:
    """Cost-model terms of ``dft``: the transforms' GEMM flops, the kernel spectrum's, the
    per-frequency products', and the bytes of the three spectra."""
    n, c = x_shape[0], x_shape[-1]
    kh, kw, _, o = kernel_shape
    h, w = (s + lo + hi for s, (lo, hi) in zip(x_shape[1:3], config.padding, strict=True))
    ho, wo = config.output_hw(x_shape[1:3], (kh, kw))
    wf = w // 2 + 1
    freqs = h * wf
    transforms = 2.0 * (2 * wf * w * h * n * c + 4 * h * h * wf * n * c
                        + 4 * ho * h * wf * n * o + 2 * wf * wo * ho * n * o)
    return {
        "call": 1.0,
        "transform_flop": transforms,
        "kernel_flop": 2.0 * (2 * wf * kw * kh + 4 * h * kh * wf) * c * o,
        "product_flop": 8.0 * freqs * n * c * o,
        "byte": 8.0 * freqs * (n * c + c * o + n * o) + 4.0 * math.prod(x_shape),
    }


DFT = register(
    Algorithm(
        name="dft",
        fn=conv_dft,
        serves=(
            f"2-D, groups == 1, padded sides up to {MAX_LENGTH} (the convolution theorem with "
            "DFTs as GEMMs: large kernels on layer-sized images)"
        ),
        check=check,
        cost_terms=dft_cost_terms,
        error="global",
        # As fft: the transforms' rounding spreads over every output, relative to max|y|; a
        # DFT by GEMM sums L terms per point (error ~ eps * sqrt(L)): measured <= 1e-6 * max|y|
        # in float32 at L = 64-256.
        tolerance={"float64": (0.0, 1e-12), "float32": (0.0, 1e-5)},
    )
)
