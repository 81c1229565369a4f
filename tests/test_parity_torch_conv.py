"""Parity with ``torch.nn.functional``: conv2d and every activation, values and gradients.

torch is NCHW / OIHW: images are compared with ``data_format="NCHW"`` (and, once, transposed
from NHWC), kernels are transposed HWIO -> OIHW. Configurations are drawn from a seeded
generator, so they include odd ones nobody tuned for. Skipped when torch is not installed.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import cover
from ref_conv import is_valid

import jaxconv

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytestmark = pytest.mark.torch

TORCH_MODE = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)


def torch_conv(x, k, b, *, stride, pads, dilation, groups, padding_mode):
    """x NCHW, k HWIO, pads ((top, bottom), (left, right)); returns (y, grads-fn)."""
    xt, wt = _t(x), _t(np.transpose(k, (3, 2, 0, 1)))
    bt = None if b is None else _t(b)
    (top, bottom), (left, right) = pads
    mode = "constant" if padding_mode == "zeros" else TORCH_MODE[padding_mode]
    xp = F.pad(xt, (left, right, top, bottom), mode=mode)
    y = F.conv2d(xp, wt, bt, stride=stride, dilation=dilation, groups=groups)
    return xt, wt, bt, y


def random_config(rng):
    while True:
        groups = int(rng.choice([1, 1, 2, 3]))
        cin, og = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        cfg = dict(
            n=int(rng.integers(1, 4)), c=cin * groups, o=og * groups, groups=groups,
            h=int(rng.integers(3, 13)), w=int(rng.integers(3, 13)),
            kh=int(rng.integers(1, 6)), kw=int(rng.integers(1, 6)),
            stride=(int(rng.integers(1, 4)), int(rng.integers(1, 4))),
            dilation=(int(rng.integers(1, 4)), int(rng.integers(1, 3))),
            pads=tuple(tuple(int(p) for p in rng.integers(0, 4, 2)) for _ in range(2)),
            padding_mode=str(rng.choice(["zeros", "reflect", "replicate", "circular"])),
            bias=bool(rng.integers(0, 2)),
        )
        if is_valid(cfg["h"], cfg["w"], cfg["kh"], cfg["kw"], stride=cfg["stride"],
                    padding=cfg["pads"], dilation=cfg["dilation"],
                    padding_mode=cfg["padding_mode"]):
            return cfg


# The default run keeps every grouping, padding mode, bias setting, and strided and dilated
# draws (JAXCONV_FULL_TESTS=1: every draw).
CONFIGS = cover([random_config(np.random.default_rng(seed)) for seed in range(24)],
                lambda c: {("groups", c["groups"]), ("mode", c["padding_mode"]),
                           ("bias", c["bias"]), ("stride", max(c["stride"]) > 1),
                           ("dilation", max(c["dilation"]) > 1)}, k=10)


def _id(c):
    return (f"{c['n']}x{c['c']}x{c['h']}x{c['w']}-k{c['kh']}x{c['kw']}x{c['o']}-g{c['groups']}"
            f"-s{c['stride']}-d{c['dilation']}-p{c['pads']}-{c['padding_mode']}"
            f"{'-bias' if c['bias'] else ''}").replace(" ", "")


@pytest.mark.parametrize("cfg", CONFIGS, ids=_id)
def test_conv2d_matches_torch(cfg):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(cfg["n"], cfg["c"], cfg["h"], cfg["w"]))
    k = rng.normal(size=(cfg["kh"], cfg["kw"], cfg["c"] // cfg["groups"], cfg["o"]))
    b = rng.normal(size=cfg["o"]) if cfg["bias"] else None
    kw = dict(stride=cfg["stride"], dilation=cfg["dilation"], groups=cfg["groups"])

    xt, wt, bt, yt = torch_conv(x, k, b, pads=cfg["pads"], padding_mode=cfg["padding_mode"], **kw)

    def f(x, k, b):
        return jaxconv.conv2d(x, k, b, padding=cfg["pads"], padding_mode=cfg["padding_mode"],
                              data_format="NCHW", **kw)

    y, vjp = jax.vjp(f, x, k, b)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-10)

    g = rng.normal(size=y.shape)
    yt.backward(torch.tensor(g))
    dx, dk, db = vjp(jnp.asarray(g))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dk, wt.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-10, atol=1e-10)
    if b is not None:
        np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv2d_matches_torch_nn_conv2d_module(padding_mode):
    # nn.Conv2d's own padding_mode path (symmetric padding), float32, NHWC on our side
    rng = np.random.default_rng(2)
    torch.manual_seed(0)
    m = torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(2, 1), dilation=(1, 2), groups=2,
                        padding_mode=padding_mode)
    x = rng.normal(size=(2, 7, 9, 4)).astype(np.float32)
    yt = m(torch.tensor(x.transpose(0, 3, 1, 2))).detach().numpy().transpose(0, 2, 3, 1)
    k = m.weight.detach().numpy().transpose(2, 3, 1, 0)
    y = jaxconv.conv2d(jnp.asarray(x), jnp.asarray(k), jnp.asarray(m.bias.detach().numpy()),
                       stride=(2, 1), padding=(2, 1), dilation=(1, 2), groups=2,
                       padding_mode=padding_mode, precision="highest")
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y, yt, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ksize", [(3, 3), (2, 4), (4, 1)])
def test_same_padding_matches_torch(ksize):
    # torch's padding="same" (stride 1) also puts the odd extra pad at the end
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 2, 6, 7))
    k = rng.normal(size=(*ksize, 2, 3))
    with warnings.catch_warnings():  # torch notes that even kernels need an extra padded copy
        warnings.simplefilter("ignore", UserWarning)
        yt = F.conv2d(torch.tensor(x), torch.tensor(k.transpose(3, 2, 0, 1)), padding="same",
                      dilation=(1, 2))
    y = jaxconv.conv2d(x, k, padding="SAME", dilation=(1, 2), data_format="NCHW")
    np.testing.assert_allclose(y, yt.numpy(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Activations

ACTIVATIONS = [
    ("relu", {}, F.relu),
    ("relu6", {}, F.relu6),
    ("leaky_relu", {}, F.leaky_relu),
    ("leaky_relu", dict(negative_slope=0.3), lambda x: F.leaky_relu(x, 0.3)),
    ("elu", {}, F.elu),
    ("elu", dict(alpha=0.7), lambda x: F.elu(x, alpha=0.7)),
    ("selu", {}, F.selu),
    ("gelu", {}, F.gelu),
    ("gelu", dict(approximate=True), lambda x: F.gelu(x, approximate="tanh")),
    ("sigmoid", {}, torch.sigmoid),
    ("tanh", {}, torch.tanh),
    ("softplus", {}, F.softplus),
    ("softplus", dict(beta=3.0, threshold=4.0), lambda x: F.softplus(x, beta=3.0, threshold=4.0)),
    ("silu", {}, F.silu),
    ("hard_tanh", {}, F.hardtanh),
    ("hard_tanh", dict(min_val=-2.0, max_val=0.5), lambda x: F.hardtanh(x, -2.0, 0.5)),
    ("hard_sigmoid", {}, F.hardsigmoid),
    ("lecun_tanh", {}, lambda x: 1.7159 * torch.tanh(2 * x / 3)),
    ("softmax", {}, lambda x: F.softmax(x, dim=-1)),
    ("softmax", dict(axis=0), lambda x: F.softmax(x, dim=0)),
    ("log_softmax", {}, lambda x: F.log_softmax(x, dim=-1)),
    ("log_softmax", dict(axis=1), lambda x: F.log_softmax(x, dim=1)),
]


@pytest.mark.parametrize(("name", "kwargs", "torch_fn"), ACTIVATIONS,
                         ids=[f"{n}{'-' + str(k) if k else ''}" for n, k, _ in ACTIVATIONS])
def test_activation_matches_torch(name, kwargs, torch_fn):
    rng = np.random.default_rng(4)
    # random points plus every kink and threshold, where the gradient conventions differ most
    special = [-3.0, -2.0, -1.0, 0.0, 0.5, 1.0, 4 / 3, 3.0, 6.0, 20.0, 21.0, -0.0]
    x = np.concatenate([rng.normal(scale=4, size=36), special]).reshape(4, 12)
    f = jaxconv.activation(name)
    y, vjp = jax.vjp(lambda x: f(x, **kwargs), jnp.asarray(x))
    xt = _t(x)
    yt = torch_fn(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-13)
    g = rng.normal(size=x.shape)
    yt.backward(torch.tensor(g))
    # torch's float64 hardsigmoid backward multiplies by a float32 1/6 (rel. error 3e-8)
    rtol = 1e-7 if name == "hard_sigmoid" else 1e-12
    np.testing.assert_allclose(vjp(jnp.asarray(g))[0], xt.grad.numpy(), rtol=rtol, atol=1e-13)
    # float32 values too
    y32 = f(jnp.asarray(x, jnp.float32), **kwargs)
    np.testing.assert_allclose(y32, torch_fn(torch.tensor(x, dtype=torch.float32)).numpy(),
                               rtol=2e-6, atol=2e-6)
