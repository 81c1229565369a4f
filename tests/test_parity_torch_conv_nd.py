"""Parity with ``torch.nn.functional`` for the N-d family: conv1d / conv3d (values and
gradients, every padding mode) and conv_transpose1d/2d/3d (values and gradients, with
output_padding, groups and dilation).

torch is channels-first with ``(O, C // g, *k)`` weights (``(C_in, C_out // g, *k)`` for the
transposed ops); ours are compared with ``data_format="NCW"/"NCHW"/"NCDHW"`` and the weights
permuted to ``(*k, I, O)``. Configurations are drawn from seeded generators. Skipped when torch
is not installed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import cover
from ref_conv import is_valid_nd

import jaxconv

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytestmark = pytest.mark.torch

FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
CONV = {1: (jaxconv.conv1d, F.conv1d), 3: (jaxconv.conv3d, F.conv3d)}
TRANSPOSE = {1: (jaxconv.conv_transpose1d, F.conv_transpose1d),
             2: (jaxconv.conv_transpose2d, F.conv_transpose2d),
             3: (jaxconv.conv_transpose3d, F.conv_transpose3d)}
TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
              "circular": "circular"}


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)


def to_ours(w):
    """torch ``(A, B, *k)`` weight -> ``(*k, B, A)``."""
    sp = w.ndim - 2
    return np.transpose(w, (*range(2, 2 + sp), 1, 0))


def conv_config(rng, spatial):
    while True:
        groups = int(rng.choice([1, 1, 2, 3]))
        hi = 13 if spatial == 1 else 6
        cfg = dict(
            n=int(rng.integers(1, 3)), groups=groups, c=groups * int(rng.integers(1, 3)),
            o=groups * int(rng.integers(1, 3)),
            size=tuple(int(v) for v in rng.integers(3, hi, spatial)),
            ksize=tuple(int(v) for v in rng.integers(1, 5 if spatial == 1 else 4, spatial)),
            stride=tuple(int(v) for v in rng.integers(1, 4, spatial)),
            dilation=tuple(int(v) for v in rng.integers(1, 3, spatial)),
            pads=tuple(tuple(int(p) for p in rng.integers(0, 3, 2)) for _ in range(spatial)),
            padding_mode=str(rng.choice(list(TORCH_MODE))),
            bias=bool(rng.integers(0, 2)),
        )
        if is_valid_nd(cfg["size"], cfg["ksize"], stride=cfg["stride"], padding=cfg["pads"],
                       dilation=cfg["dilation"], padding_mode=cfg["padding_mode"]):
            return cfg


# The default run keeps every rank, grouping, padding mode and bias setting (JAXCONV_FULL_TESTS=1:
# every draw).
CONV_CASES = cover([(sp, conv_config(np.random.default_rng(seed), sp)) for sp in (1, 3)
                    for seed in range(8)],
                   lambda c: {("rank", c[0]), ("groups", c[1]["groups"]),
                              ("mode", c[1]["padding_mode"]), ("bias", c[1]["bias"])}, k=8)


@pytest.mark.parametrize(("spatial", "cfg"), CONV_CASES,
                         ids=[f"{sp}d-{i}" for i, (sp, _) in enumerate(CONV_CASES)])
def test_conv_matches_torch(spatial, cfg):
    rng = np.random.default_rng(1)
    ours, theirs = CONV[spatial]
    x = rng.normal(size=(cfg["n"], cfg["c"], *cfg["size"]))
    w = rng.normal(size=(cfg["o"], cfg["c"] // cfg["groups"], *cfg["ksize"]))
    b = rng.normal(size=cfg["o"]) if cfg["bias"] else None
    kw = dict(stride=cfg["stride"], dilation=cfg["dilation"], groups=cfg["groups"])
    xt, wt = _t(x), _t(w)
    bt = None if b is None else _t(b)
    flat = [p for lo_hi in reversed(cfg["pads"]) for p in lo_hi]  # F.pad: last axis first
    yt = theirs(F.pad(xt, flat, mode=TORCH_MODE[cfg["padding_mode"]]), wt, bt, **kw)

    def f(x, k, b):
        return ours(x, k, b, padding=cfg["pads"], padding_mode=cfg["padding_mode"],
                    data_format=FIRST[spatial], **kw)

    y, vjp = jax.vjp(f, x, to_ours(w), b)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = rng.normal(size=y.shape)
    yt.backward(torch.tensor(g))
    dx, dk, db = vjp(jnp.asarray(g))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dk, to_ours(wt.grad.numpy()), rtol=1e-10, atol=1e-10)
    if b is not None:
        np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("padding_mode", list(TORCH_MODE))
def test_conv1d_matches_torch_nn_conv1d_module(padding_mode):
    rng = np.random.default_rng(2)
    torch.manual_seed(0)
    m = torch.nn.Conv1d(4, 6, 5, stride=2, padding=3, dilation=2, groups=2,
                        padding_mode=padding_mode)
    x = rng.normal(size=(2, 17, 4)).astype(np.float32)
    yt = m(torch.tensor(x.transpose(0, 2, 1))).detach().numpy().transpose(0, 2, 1)
    y = jaxconv.conv1d(x, to_ours(m.weight.detach().numpy()), m.bias.detach().numpy(),
                       stride=2, padding=3, dilation=2, groups=2, padding_mode=padding_mode,
                       precision="highest")
    np.testing.assert_allclose(y, yt, rtol=1e-5, atol=1e-5)


def test_long_1d_kernel_fft_matches_torch():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 1, 4096))
    w = rng.normal(size=(1, 1, 513))
    yt = F.conv1d(torch.tensor(x), torch.tensor(w), padding=256).numpy()
    y = jaxconv.conv1d(x, to_ours(w), padding="SAME", data_format="NCW", algorithm="fft")
    np.testing.assert_allclose(y, yt, rtol=0, atol=1e-10 * np.abs(yt).max())


def transpose_config(rng, spatial):
    while True:
        groups = int(rng.choice([1, 2, 3]))
        stride = tuple(int(v) for v in rng.integers(1, 4, spatial))
        dilation = tuple(int(v) for v in rng.integers(1, 3, spatial))
        cfg = dict(
            n=int(rng.integers(1, 3)), groups=groups, cin=groups * int(rng.integers(1, 3)),
            og=int(rng.integers(1, 3)),
            size=tuple(int(v) for v in rng.integers(1, 6 if spatial < 3 else 4, spatial)),
            ksize=tuple(int(v) for v in rng.integers(1, 4, spatial)),
            stride=stride, dilation=dilation,
            padding=tuple(int(v) for v in rng.integers(0, 3, spatial)),
            output_padding=tuple(int(rng.integers(0, max(s, d)))
                                 for s, d in zip(stride, dilation, strict=True)),
            bias=bool(rng.integers(0, 2)),
        )
        out = [(m - 1) * s - 2 * p + d * (k - 1) + op + 1
               for m, s, p, d, k, op in zip(cfg["size"], stride, cfg["padding"], dilation,
                                            cfg["ksize"], cfg["output_padding"], strict=True)]
        if min(out) >= 1:
            return cfg


def _an_axis_without_taps(c) -> bool:
    """Whether on some axis no output reads an input: input i meets output i * s + t * d - p
    through tap t, and none of those lands in the output."""
    for m, s, d, k, p, op in zip(c["size"], c["stride"], c["dilation"], c["ksize"], c["padding"],
                                 c["output_padding"], strict=True):
        length = (m - 1) * s - 2 * p + d * (k - 1) + op + 1
        if not any(0 <= i * s + t * d - p < length for i in range(m) for t in range(k)):
            return True
    return False


def _transpose_levels(case) -> set:
    sp, c = case
    pairs = list(zip(c["output_padding"], c["stride"], strict=True))
    return {("rank", sp), ("groups", c["groups"]), ("bias", c["bias"]),
            ("output_padding", any(c["output_padding"])),
            ("output_padding >= stride", any(op >= s for op, s in pairs)),
            ("dilation", max(c["dilation"]) > 1), ("an axis without taps", _an_axis_without_taps(c))}


TRANSPOSE_CASES = cover([(sp, transpose_config(np.random.default_rng(100 + seed), sp))
                         for sp in (1, 2, 3) for seed in range(8)], _transpose_levels, k=12)


@pytest.mark.parametrize(("spatial", "cfg"), TRANSPOSE_CASES,
                         ids=[f"{sp}d-{i}" for i, (sp, _) in enumerate(TRANSPOSE_CASES)])
def test_conv_transpose_matches_torch(spatial, cfg):
    rng = np.random.default_rng(4)
    ours, theirs = TRANSPOSE[spatial]
    x = rng.normal(size=(cfg["n"], cfg["cin"], *cfg["size"]))
    w = rng.normal(size=(cfg["cin"], cfg["og"], *cfg["ksize"]))
    b = rng.normal(size=cfg["og"] * cfg["groups"]) if cfg["bias"] else None
    kw = dict(stride=cfg["stride"], padding=cfg["padding"],
              output_padding=cfg["output_padding"], dilation=cfg["dilation"],
              groups=cfg["groups"])
    xt, wt = _t(x), _t(w)
    bt = None if b is None else _t(b)
    yt = theirs(xt, wt, bt, **kw)

    def f(x, k, b):
        return ours(x, k, b, data_format=FIRST[spatial], **kw)

    y, vjp = jax.vjp(f, x, to_ours(w), b)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = rng.normal(size=y.shape)
    yt.backward(torch.tensor(g))
    dx, dk, db = vjp(jnp.asarray(g))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dk, to_ours(wt.grad.numpy()), rtol=1e-10, atol=1e-10)
    if b is not None:
        np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_the_transpose_cases_cover_groups_output_padding_and_dilation():
    cfgs = [c for _, c in TRANSPOSE_CASES]
    assert {c["groups"] for c in cfgs} == {1, 2, 3}
    assert any(any(c["output_padding"]) for c in cfgs)
    assert any(op >= s for c in cfgs for op, s in zip(c["output_padding"], c["stride"],
                                                       strict=True))  # < dilation only
    assert any(max(c["dilation"]) > 1 for c in cfgs)
    assert any(_an_axis_without_taps(c) for c in cfgs)  # the output is zeros (and the bias)


def test_conv_transpose2d_matches_torch_module_float32():
    rng = np.random.default_rng(5)
    torch.manual_seed(0)
    m = torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0),
                                 output_padding=(1, 2), groups=2, dilation=(1, 2))
    x = rng.normal(size=(2, 5, 4, 4)).astype(np.float32)
    yt = m(torch.tensor(x.transpose(0, 3, 1, 2))).detach().numpy().transpose(0, 2, 3, 1)
    w = m.weight.detach().numpy()
    assert w.shape == (4, 3, 3, 2)
    y = jaxconv.conv_transpose2d(x, w.transpose(2, 3, 1, 0), m.bias.detach().numpy(),
                                 stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2,
                                 dilation=(1, 2), precision="highest")
    assert y.dtype == jnp.float32 and y.shape == yt.shape
    np.testing.assert_allclose(y, yt, rtol=1e-5, atol=1e-5)
