"""Time the two kernel gradients :func:`jaxconv.convolution.im2col.gemm_gradients` can use.

    python benchmarks/kernel_gradient.py [ROUNDS]

For each problem (padded and VALID, RGB to 512 channels, stride 1 and 2, 1x1 to 7x7), times
the kernel gradient alone (the VJP w.r.t. the kernel, for a fixed output gradient) computed as
XLA's kernel-gradient convolution and as im2col's chunked GEMMs ``P^T @ dy``, in interleaved
rounds (``tuning.interleaved_medians``), and prints the medians, their ratio and the path
:func:`~jaxconv.convolution.im2col.kernel_gradient_path` takes. Then the forward + backward of
``im2col``, ``winograd`` and ``winograd4`` (as ``auto`` times them for training) with each
kernel gradient, on the padded 3x3 problems.
"""

from __future__ import annotations

import sys

import jax

from jaxconv.convolution import direct, im2col, tuning, winograd
from jaxconv.convolution._registry import ConvConfig

# (x NHWC, kernel HWIO, stride, padding per side)
PROBLEMS = (
    ((16, 32, 32, 64), (3, 3, 64, 64), 1, 1),  # ResNet-18 (CIFAR) stage 1
    ((16, 16, 16, 128), (3, 3, 128, 128), 1, 1),
    ((16, 8, 8, 256), (3, 3, 256, 256), 1, 1),
    ((16, 4, 4, 512), (3, 3, 512, 512), 1, 1),
    ((8, 56, 56, 64), (3, 3, 64, 64), 1, 1),  # ResNet-50 stage 1
    ((8, 56, 56, 64), (3, 3, 64, 128), 2, 1),
    ((4, 112, 112, 3), (3, 3, 3, 64), 1, 1),  # VGG's first layer
    ((2, 224, 224, 3), (7, 7, 3, 64), 2, 3),  # the ImageNet stem
    ((8, 64, 64, 32), (3, 3, 32, 32), 1, 0),  # the layer case, VALID
    ((8, 64, 64, 32), (5, 5, 32, 32), 1, 0),
    ((8, 56, 56, 64), (1, 1, 64, 256), 1, 0),  # ResNet-50 1x1
    ((1, 320, 400, 3), (7, 7, 3, 3), 1, 0),  # the article's cat
    ((64, 28, 28, 1), (5, 5, 1, 6), 1, 0),  # LeNet-5
    ((64, 14, 14, 6), (5, 5, 6, 16), 1, 0),
    ((8, 64, 64, 8), (3, 3, 8, 16), 1, 0),  # few channels, VALID
    ((4, 64, 64, 16), (3, 3, 16, 16), 1, 0),
    ((8, 33, 33, 64), (3, 3, 64, 64), 2, 0),  # strided, VALID
    ((16, 49, 49, 48), (3, 3, 48, 48), 2, 1),
)


def _operands(xs, ks, cfg):
    x = jax.random.normal(jax.random.key(0), xs)
    k = jax.random.normal(jax.random.key(1), ks)
    out = cfg.output_hw(xs[1:3], ks[:2])
    dy = jax.random.normal(jax.random.key(2), (xs[0], *out, ks[-1]))
    return x, k, dy


def _kernel_gradient(conv, x, k, dy, cfg):
    f = jax.jit(lambda x, k, dy: jax.vjp(lambda kk: conv(x, kk, cfg), k)[1](dy)[0])
    compiled = f.lower(x, k, dy).compile()
    return lambda: compiled(x, k, dy)


def _train_step(name, x, k, path, cfg):
    """forward + backward of ``name`` with the kernel gradient forced onto ``path``."""
    jax.clear_caches()  # the path is read at trace time
    saved = im2col.kernel_gradient_path
    im2col.kernel_gradient_path = lambda *args: path
    try:
        compiled, _ = tuning.compile_timed(name, x, k, cfg, "train")
    finally:
        im2col.kernel_gradient_path = saved
    return lambda: compiled(x, k)


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and not (argv[0].isdigit() and int(argv[0]) >= 1)):
        raise SystemExit(f"usage: python benchmarks/kernel_gradient.py [ROUNDS >= 1], got {argv}")
    rounds = int(argv[0]) if argv else 7
    print(f"kernel gradient alone, median ms of {rounds} interleaved rounds ({jax.devices()[0]})")
    print(f"{'x':>18} {'kernel':>14} s  {'xla':>8} {'im2col':>8}  xla/im2col  path")
    for xs, ks, s, p in PROBLEMS:
        cfg = ConvConfig(stride=(s, s), padding=((p, p), (p, p)))
        x, k, dy = _operands(xs, ks, cfg)
        fns = {"xla": _kernel_gradient(direct.conv_direct, x, k, dy, cfg),
               "im2col": _kernel_gradient(im2col.conv_im2col, x, k, dy, cfg)}
        t = tuning.interleaved_medians(fns, rounds)
        print(f"{'x'.join(map(str, xs)):>18} {'x'.join(map(str, ks)):>14} {s}  "
              f"{t['xla'] * 1e3:8.2f} {t['im2col'] * 1e3:8.2f}  {t['xla'] / t['im2col']:10.2f}  "
              f"{im2col.kernel_gradient_path(ks, cfg)}", flush=True)
    print("\nforward + backward (the gradients of sum(y*y)/2), median ms; kernel gradient by")
    print(f"{'x':>18} {'kernel':>14}  " + "  ".join(f"{n + ' gemm/xla':>22}" for n in
                                                    ("im2col", "winograd", "winograd4")))
    for xs, ks, s, p in PROBLEMS:
        cfg = ConvConfig(stride=(s, s), padding=((p, p), (p, p)))
        if not cfg.padded or winograd.check(xs, ks, "float32", cfg) is not None:
            continue
        x, k, _ = _operands(xs, ks, cfg)
        fns = {(n, path): _train_step(n, x, k, path, cfg)
               for n in ("im2col", "winograd", "winograd4") for path in ("im2col", "xla")}
        t = tuning.interleaved_medians(fns, rounds)
        cells = [f"{t[(n, 'im2col')] * 1e3:7.1f}/{t[(n, 'xla')] * 1e3:6.1f} "
                 f"({t[(n, 'im2col')] / t[(n, 'xla')]:.2f}x)"
                 for n in ("im2col", "winograd", "winograd4")]
        print(f"{'x'.join(map(str, xs)):>18} {'x'.join(map(str, ks)):>14}  " + "  ".join(cells),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
