"""conv2d on the benchmark cases: jaxconv's algorithms and auto against XLA, torch and SciPy.

One benchmark group per case x problem x pass. Every point is compiled (first call, timed into
``extra_info["compile_s"]``) and its result checked against XLA's ``lax.conv_general_dilated``
before the timed rounds; each timed call blocks until the result is ready. Shapes are NHWC
images and HWIO kernels, float32; every implementation runs the problem's own padding, stride,
dilation and groups (XLA and torch with the canonical explicit zero padding).
"""

from __future__ import annotations

import functools
import os
import time

import bench
import jax
import numpy as np
import pytest
from jax import lax

import jaxconv
from jaxconv.convolution.tuning import timing_loss

# Error allowed against XLA, relative to max|XLA result| (FFT error scales with the largest
# output, not per element). GPUs and TPUs run XLA's float32 conv in TF32 / bf16 passes.
RTOL = {"cpu": 2e-3, "gpu": 2e-2, "tpu": 2e-2}
DN = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}


@functools.cache
def _inputs(row: bench.Row):
    """Seeded float32 NumPy inputs: x ~ N(0, 1), kernel ~ N(0, 1 / fan_in)."""
    rng = np.random.default_rng(abs(hash((row.x_shape, row.kernel_shape))) % 2**32)
    x = rng.standard_normal(row.x_shape, dtype=np.float32)
    fan_in = int(np.prod(row.kernel_shape[:-1]))
    k = rng.standard_normal(row.kernel_shape, dtype=np.float32) / np.float32(np.sqrt(fan_in))
    return x, k


def _jax_conv(row: bench.Row, impl: str):
    if impl == bench.BASELINE:
        c = row.config
        return lambda x, k: lax.conv_general_dilated(
            x, k, c.stride, c.padding, rhs_dilation=c.dilation, feature_group_count=c.groups,
            dimension_numbers=DN[row.problem.spatial])
    kwargs = row.conv_kwargs
    return lambda x, k: jaxconv.conv(x, k, algorithm=impl, **kwargs)


def _loss_grad(conv):
    return jax.grad(lambda x, k: timing_loss(conv(x, k)), argnums=(0, 1))


def _jax_call(point: bench.Point):
    conv = _jax_conv(point.row, point.impl)
    f = jax.jit(conv if point.mode == "fwd" else _loss_grad(conv))
    x, k = (jax.device_put(a) for a in _inputs(point.row))
    return lambda: jax.block_until_ready(f(x, k))


def _torch_call(point: bench.Point):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(os.cpu_count() or 1)
    x, k = _inputs(point.row)
    if point.row.problem.spatial == 1:
        return _torch_call_1d(point, x, k)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # NCHW
    wt = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
    c = point.row.config
    (top, bottom), (left, right) = c.padding
    symmetric = top == bottom and left == right
    pad = (left, right, top, bottom)  # F.pad: last axis first
    kwargs = dict(stride=c.stride, padding=(top, left) if symmetric else 0,
                  dilation=c.dilation, groups=c.groups)

    def conv(a, w):
        # asymmetric (SAME with a stride, even extent) padding: explicit, as XLA gets it
        return F.conv2d(a if symmetric else F.pad(a, pad), w, **kwargs)

    if point.mode == "fwd":
        def call():
            with torch.no_grad():
                return conv(xt, wt)
    else:
        xt.requires_grad_(True)
        wt.requires_grad_(True)

        def call():
            return torch.autograd.grad(timing_loss(conv(xt, wt)), (xt, wt))

    return call


def _torch_call_1d(point: bench.Point, x: np.ndarray, k: np.ndarray):
    """torch's conv1d of a signal case (NCW, OIW weights), forward only."""
    import torch
    import torch.nn.functional as F

    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1)))  # NCW
    wt = torch.from_numpy(np.ascontiguousarray(k.transpose(2, 1, 0)))  # WIO -> OIW
    c = point.row.config
    assert point.mode == "fwd", f"{point.id}: the signal case times the forward pass"

    def call():
        with torch.no_grad():
            return F.conv1d(F.pad(xt, c.padding[0]), wt, stride=c.stride, dilation=c.dilation,
                            groups=c.groups)

    return call


def _torch_to_nhwc(out, mode):
    if mode == "fwd":
        y = out.detach().numpy()
        return y.transpose(0, 2, 1) if y.ndim == 3 else y.transpose(0, 2, 3, 1)
    gx, gw = out
    return gx.numpy().transpose(0, 2, 3, 1), gw.numpy().transpose(2, 3, 1, 0)


def _scipy_call(point: bench.Point):
    from scipy import signal

    assert point.row.problem.valid, f"{point.id}: SciPy is timed on VALID, stride-1 problems only"
    x, k = _inputs(point.row)
    n, c, o = x.shape[0], x.shape[3], k.shape[3]
    planes = [[np.ascontiguousarray(x[b, :, :, i]) for i in range(c)] for b in range(n)]
    taps = [[np.ascontiguousarray(k[:, :, i, j]) for i in range(c)] for j in range(o)]

    def call():
        # One 2-D correlation per (input, output) channel pair, summed over input channels.
        return np.stack([
            np.stack([
                sum(signal.correlate(p, t, mode="valid", method="auto")
                    for p, t in zip(planes[b], taps[j], strict=True))
                for j in range(o)
            ], axis=-1)
            for b in range(n)
        ])

    return call


def _as_numpy(point, out):
    if point.impl == "torch":
        out = _torch_to_nhwc(out, point.mode)
    leaves = out if isinstance(out, tuple | list) else (out,)
    return [np.asarray(a) for a in leaves]


# XLA's result per (row, pass): the baseline point stores its own output here; a run that
# deselected it (-k) computes it on first use.
_REFERENCE: dict[tuple[bench.Row, str], list[np.ndarray]] = {}


def _reference(row: bench.Row, mode: str) -> list[np.ndarray]:
    if (row, mode) not in _REFERENCE:
        point = bench.Point(row, mode, bench.BASELINE)
        _REFERENCE[row, mode] = _as_numpy(point, _jax_call(point)())
    return _REFERENCE[row, mode]


def _check(point, got):
    if point.impl == bench.BASELINE:
        _REFERENCE[point.row, point.mode] = got
        return
    want = _reference(point.row, point.mode)
    rtol = RTOL.get(jax.default_backend(), RTOL["gpu"])
    names = ("y",) if point.mode == "fwd" else ("dL/dx", "dL/dkernel")
    for name, a, b in zip(names, got, want, strict=True):
        if a.shape != b.shape:
            pytest.fail(f"{point.id}: {name} has shape {a.shape}, XLA gives {b.shape}")
        scale = float(np.max(np.abs(b))) or 1.0
        err = float(np.max(np.abs(a.astype(np.float64) - b)))
        if not err <= rtol * scale:  # also catches NaN
            pytest.fail(f"{point.id}: {name} differs from XLA by {err:.3g} "
                        f"> {rtol:g} x max|XLA| = {rtol * scale:.3g}")


def test_conv(benchmark, point: bench.Point, size: str, sweep):
    make = {"torch": _torch_call, "scipy": _scipy_call}.get(point.impl, _jax_call)
    call = make(point)
    start = time.perf_counter()
    out = call()  # trace + compile + one run (oneDNN primitive creation for torch)
    compile_s = time.perf_counter() - start
    sweep.compiled(point, compile_s)
    _check(point, _as_numpy(point, out))
    start = time.perf_counter()
    call()
    estimate = time.perf_counter() - start

    row = point.row
    case = bench.cases(size)[row.case]
    benchmark.group = point.group
    choice, costs = bench.auto_choice(row) if point.impl == "auto" else (None, None)
    c = row.config
    benchmark.extra_info.update({
        "kind": "conv",
        "case": row.case,
        "case_title": case.title,
        "row": row.label,
        "row_title": bench.row_title(row),
        "order": case.rows.index(row),
        "shape": f"x {'x'.join(map(str, row.x_shape))}, kernel {'x'.join(map(str, row.kernel_shape))}",
        "config": {"stride": list(c.stride), "padding": [list(p) for p in c.padding],
                   "dilation": list(c.dilation), "groups": c.groups},
        "valid": row.problem.valid,
        "x": row.xvalue,
        "shapes": bench.case_shapes(case),
        "mode": point.mode,
        "impl": point.impl,
        "flops": point.flops,
        "compile_s": compile_s,
        **({"auto_choice": choice} if choice else {}),
        **({"auto_costs": costs} if costs else {}),
    })
    benchmark.pedantic(call, rounds=bench.rounds_for(estimate, size), iterations=1)
