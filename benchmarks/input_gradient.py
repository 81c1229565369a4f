"""Time the input gradients :func:`jaxconv.convolution.im2col.gemm_gradients` can use for
``winograd`` and ``winograd4``.

    python benchmarks/input_gradient.py [ROUNDS]

For each 3x3 stride-1 problem (ResNet-18's and ResNet-50's layers, VGG's first, few channels,
the ``layer`` case), times the input gradient alone (the VJP w.r.t. the input, for a fixed
output gradient) as XLA's transposed convolution and as each Winograd algorithm's own (the
same Winograd convolution of the output gradient, the kernel flipped), then each algorithm's
forward + backward (``tuning.timed``, as ``auto`` times them for training)
with either input gradient, in interleaved rounds (``tuning.interleaved_medians``), and prints
the medians and their ratios. ``im2col.OWN_INPUT_GRADIENT_CHANNELS`` comes from these runs.
"""

from __future__ import annotations

import functools
import sys

import jax

from jaxconv.convolution import direct, im2col, tuning, winograd
from jaxconv.convolution._registry import ConvConfig

# (x NHWC, kernel HWIO, padding per side)
PROBLEMS = (
    ((16, 32, 32, 64), (3, 3, 64, 64), 1),  # ResNet-18 (CIFAR), batch 16
    ((16, 16, 16, 128), (3, 3, 128, 128), 1),
    ((16, 8, 8, 256), (3, 3, 256, 256), 1),
    ((16, 4, 4, 512), (3, 3, 512, 512), 1),
    ((64, 32, 32, 64), (3, 3, 64, 64), 1),  # ResNet-18, batch 64
    ((8, 56, 56, 64), (3, 3, 64, 64), 1),  # ResNet-50 stage 1
    ((16, 32, 32, 48), (3, 3, 48, 48), 1),  # around the channel threshold
    ((8, 34, 34, 64), (3, 3, 64, 64), 0),
    ((8, 16, 16, 96), (3, 3, 96, 96), 1),
    ((8, 32, 32, 32), (3, 3, 32, 32), 1),
    ((8, 32, 32, 16), (3, 3, 16, 32), 1),
    ((4, 112, 112, 3), (3, 3, 3, 64), 1),  # VGG's first layer
    ((8, 64, 64, 8), (3, 3, 8, 16), 0),  # few channels, VALID
    ((8, 64, 64, 32), (3, 3, 32, 32), 0),  # the layer case, VALID
)
ALGORITHMS = {"winograd": 2, "winograd4": 4}


def _variants(m: int):
    """The Winograd algorithm with its own input gradient and with XLA's."""
    fn = functools.partial(winograd.conv_winograd, m=m)
    return {"own": im2col.gemm_gradients(fn, own_input_gradient=True),
            "xla": im2col.gemm_gradients(fn)}


def _compiled(f, *args):
    compiled = jax.jit(f).lower(*args).compile()
    return lambda: compiled(*args)


def _input_gradient(conv, x, k, dy, cfg):
    return _compiled(lambda x, k, dy: jax.vjp(lambda xx: conv(xx, k, cfg), x)[1](dy)[0], x, k, dy)


def _train(conv, x, k, cfg):
    compiled = tuning.timed(lambda a, b: conv(a, b, cfg), "train").lower(x, k).compile()
    return lambda: compiled(x, k)


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and not (argv[0].isdigit() and int(argv[0]) >= 1)):
        raise SystemExit(f"usage: python benchmarks/input_gradient.py [ROUNDS >= 1], got {argv}")
    rounds = int(argv[0]) if argv else 7
    print(f"median ms of {rounds} interleaved rounds ({jax.devices()[0]}); input gradient alone: "
          "XLA's | each algorithm's own (own / XLA); forward + backward with its own / with "
          "XLA's input gradient")
    for xs, ks, p in PROBLEMS:
        cfg = ConvConfig(padding=((p, p), (p, p)))
        x = jax.random.normal(jax.random.key(0), xs)
        k = jax.random.normal(jax.random.key(1), ks)
        dy = jax.random.normal(jax.random.key(2), (xs[0], *cfg.output_hw(xs[1:3], ks[:2]), ks[-1]))

        fns = {"xla dx": _input_gradient(direct.conv_direct, x, k, dy, cfg)}
        for name, m in ALGORITHMS.items():
            own = _variants(m)
            fns[f"{name} dx"] = _input_gradient(own["own"], x, k, dy, cfg)
            fns[f"{name} own"] = _train(own["own"], x, k, cfg)
            fns[f"{name} xla"] = _train(own["xla"], x, k, cfg)
        t = {key: v * 1e3 for key, v in tuning.interleaved_medians(fns, rounds).items()}
        cells = [f"{n} {t[n + ' dx']:6.2f} ({t[n + ' dx'] / t['xla dx']:.2f})" for n in ALGORITHMS]
        steps = [f"{n} {t[n + ' own']:6.1f}/{t[n + ' xla']:6.1f} "
                 f"({t[n + ' own'] / t[n + ' xla']:.2f}x)" for n in ALGORITHMS]
        print(f"{'x'.join(map(str, xs)):>16} {'x'.join(map(str, ks)):>11} p{p}  dx: xla "
              f"{t['xla dx']:6.2f} | " + " | ".join(cells) + "   fwd+bwd: " + " | ".join(steps),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
