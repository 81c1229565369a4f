"""Parity with ``torch.nn.functional`` pooling on seeded random configurations: values and gradients.

The configurations are drawn, not hand-picked: odd and even sizes, non-square windows, stride
larger than the window, ``ceil_mode`` with padding, dilation, overlapping adaptive bins and
adaptive outputs larger than the input. Everything runs in float64 on both sides.
"""

from __future__ import annotations

import random

import jax
import numpy as np
import pytest
from tolerances import assert_close

import jaxconv

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch


def _window_config(r: random.Random, *, dilate: bool, pad: bool = True):
    """A configuration PyTorch accepts: padding <= half the window, window fits the padded input."""
    while True:
        h, w = r.randint(3, 11), r.randint(3, 11)
        k = (r.randint(1, 4), r.randint(1, 4))
        stride = None if r.random() < 0.25 else (r.randint(1, 5), r.randint(1, 5))
        pad = (r.randint(0, k[0] // 2), r.randint(0, k[1] // 2)) if pad else (0, 0)
        dil = (r.randint(1, 3), r.randint(1, 3)) if dilate and r.random() < 0.5 else (1, 1)
        eff = ((k[0] - 1) * dil[0] + 1, (k[1] - 1) * dil[1] + 1)
        if eff[0] <= h + 2 * pad[0] and eff[1] <= w + 2 * pad[1]:
            return dict(
                size=(h, w), window=k, stride=stride, padding=pad, dilation=dil,
                ceil_mode=r.random() < 0.5, nchw=r.random() < 0.5,
            )


def _configs(seed: int, n: int, **kw):
    r = random.Random(seed)
    return [_window_config(r, **kw) for _ in range(n)]


def _ids(configs):
    return [
        f"{c['size'][0]}x{c['size'][1]}-k{c['window']}-s{c['stride']}-p{c['padding']}"
        f"-d{c['dilation']}-{'ceil' if c['ceil_mode'] else 'floor'}"
        f"-{'nchw' if c['nchw'] else 'nhwc'}"
        for c in configs
    ]


def _compare(jax_fn, torch_fn, x_nchw, nchw):
    """Values and the vector-Jacobian product for a random cotangent, both layouts via NCHW."""
    xt = torch.tensor(x_nchw, requires_grad=True)
    yt = torch_fn(xt)
    ct = np.random.default_rng(1).standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(ct))
    gt = xt.grad.numpy()
    yt = yt.detach().numpy()

    if nchw:
        y, vjp = jax.vjp(lambda x: jax_fn(x, data_format="NCHW"), x_nchw)
        (g,) = vjp(ct)
    else:
        to_nhwc, to_nchw = (0, 2, 3, 1), (0, 3, 1, 2)
        y, vjp = jax.vjp(jax_fn, x_nchw.transpose(to_nhwc))
        (g,) = vjp(ct.transpose(to_nhwc))
        y, g = np.asarray(y).transpose(to_nchw), np.asarray(g).transpose(to_nchw)
    assert_close(y, yt, err_msg="values")
    assert_close(g, gt, err_msg="gradients")


def _x(cfg, seed, positive=False):
    x = np.random.default_rng(seed).standard_normal((2, 3, *cfg["size"]))
    return np.abs(x) + 0.1 if positive else x


MAX_CONFIGS = _configs(0, 12, dilate=True)
AVG_CONFIGS = _configs(1, 12, dilate=False)
LP_CONFIGS = [
    {**c, "ceil_mode": i % 2 == 0} for i, c in enumerate(_configs(2, 6, dilate=False, pad=False))
]


@pytest.mark.parametrize("cfg", MAX_CONFIGS, ids=_ids(MAX_CONFIGS))
def test_max_pool2d(cfg):
    def ours(x, **kw):
        return jaxconv.max_pool2d(
            x, cfg["window"], stride=cfg["stride"], padding=cfg["padding"],
            dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"], **kw,
        )

    def theirs(x):
        return F.max_pool2d(
            x, cfg["window"], cfg["stride"], cfg["padding"], cfg["dilation"], cfg["ceil_mode"]
        )

    _compare(ours, theirs, _x(cfg, 10), cfg["nchw"])


@pytest.mark.parametrize("cfg", AVG_CONFIGS, ids=_ids(AVG_CONFIGS))
def test_avg_pool2d(cfg):
    r = random.Random(str(cfg))
    count_include_pad = r.random() < 0.5
    divisor_override = r.choice([None, None, None, r.randint(1, 7)])

    def ours(x, **kw):
        return jaxconv.avg_pool2d(
            x, cfg["window"], stride=cfg["stride"], padding=cfg["padding"],
            ceil_mode=cfg["ceil_mode"], count_include_pad=count_include_pad,
            divisor_override=divisor_override, **kw,
        )

    def theirs(x):
        return F.avg_pool2d(
            x, cfg["window"], cfg["stride"], cfg["padding"], cfg["ceil_mode"],
            count_include_pad, divisor_override,
        )

    _compare(ours, theirs, _x(cfg, 11), cfg["nchw"])


@pytest.mark.parametrize("norm", [1, 2, 1.5])
@pytest.mark.parametrize("cfg", LP_CONFIGS[:3], ids=_ids(LP_CONFIGS[:3]))
def test_lp_pool2d(cfg, norm):
    def ours(x, **kw):
        return jaxconv.lp_pool2d(
            x, norm, cfg["window"], stride=cfg["stride"], ceil_mode=cfg["ceil_mode"], **kw
        )

    def theirs(x):
        return F.lp_pool2d(x, norm, cfg["window"], cfg["stride"], cfg["ceil_mode"])

    # negative inputs give NaN for odd or fractional powers (in both): gradients need x > 0
    _compare(ours, theirs, _x(cfg, 12, positive=norm != 2), cfg["nchw"])


@pytest.mark.parametrize("cfg", LP_CONFIGS[3:], ids=_ids(LP_CONFIGS[3:]))
def test_lp_pool2d_values_with_negative_inputs(cfg):
    """Odd and fractional powers of negative sums are NaN in torch: the same NaNs here."""
    x = _x(cfg, 13)
    for norm in (1, 3, 2.5):
        y = jaxconv.lp_pool2d(
            x, norm, cfg["window"], stride=cfg["stride"], ceil_mode=cfg["ceil_mode"],
            data_format="NCHW",
        )
        yt = F.lp_pool2d(torch.tensor(x), norm, cfg["window"], cfg["stride"], cfg["ceil_mode"])
        np.testing.assert_allclose(np.asarray(y), yt.numpy(), rtol=1e-12, atol=1e-12)


def _adaptive_configs(seed: int, n: int):
    r = random.Random(seed)
    out = []
    for _ in range(n):
        h, w = r.randint(1, 11), r.randint(1, 11)
        oh = r.choice([None, r.randint(1, h + 3)])
        ow = r.randint(1, w + 3)
        out.append(dict(size=(h, w), output_size=(oh, ow), nchw=r.random() < 0.5))
    out.append(dict(size=(7, 9), output_size=4, nchw=False))
    return out


ADAPTIVE_CONFIGS = _adaptive_configs(3, 5)
ADAPTIVE_IDS = [
    f"{c['size'][0]}x{c['size'][1]}-to-{c['output_size']}-{'nchw' if c['nchw'] else 'nhwc'}"
    for c in ADAPTIVE_CONFIGS
]


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("cfg", ADAPTIVE_CONFIGS, ids=ADAPTIVE_IDS)
def test_adaptive_pool2d(cfg, kind):
    ours_fn = jaxconv.adaptive_avg_pool2d if kind == "avg" else jaxconv.adaptive_max_pool2d
    theirs_fn = F.adaptive_avg_pool2d if kind == "avg" else F.adaptive_max_pool2d

    def ours(x, **kw):
        return ours_fn(x, cfg["output_size"], **kw)

    def theirs(x):
        return theirs_fn(x, cfg["output_size"])

    _compare(ours, theirs, _x(cfg, 14), cfg["nchw"])


def test_design_example_matches_torch():
    """MaxPooling2D(5) on 318x398: 63x79 in both."""
    x = np.random.default_rng(0).standard_normal((1, 1, 318, 398)).astype(np.float32)
    y = jaxconv.max_pool2d(x, 5, data_format="NCHW")
    yt = F.max_pool2d(torch.tensor(x), 5)
    assert y.shape == tuple(yt.shape) == (1, 1, 63, 79)
    np.testing.assert_array_equal(np.asarray(y), yt.numpy())
