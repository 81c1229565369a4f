"""Parity with ``torch.nn.functional`` for the 1-D and 3-D pools, max-pool indices, max-unpooling
and unfold/fold, on seeded random configurations: values and gradients, in float64."""

from __future__ import annotations

import itertools
import random

import jax
import numpy as np
import pytest
from conftest import FULL
from tolerances import assert_close

import jaxconv

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch


def _config(r: random.Random, nd: int, *, dilate: bool, pad: bool = True):
    """A configuration torch accepts (padding <= half the window, output not empty)."""
    while True:
        size = tuple(r.randint(2, 9 if nd == 1 else 6) for _ in range(nd))
        k = tuple(r.randint(1, 3) for _ in range(nd))
        stride = None if r.random() < 0.25 else tuple(r.randint(1, 3) for _ in range(nd))
        p = tuple(r.randint(0, kk // 2) for kk in k) if pad else (0,) * nd
        dil = tuple(r.randint(1, 2) for _ in range(nd)) if dilate and r.random() < 0.5 else (1,) * nd
        ceil = r.random() < 0.5
        s = k if stride is None else stride
        # torch's avg_pool3d (not 1d/2d) also wants the unpadded input to hold the window
        ok = nd != 3 or all(n >= kk for n, kk in zip(size, k, strict=True))
        for n, kk, ss, pp, dd in zip(size, k, s, p, dil, strict=True):
            padded, eff = n + 2 * pp, (kk - 1) * dd + 1
            o = (padded - eff + (ss - 1 if ceil else 0)) // ss + 1
            if ceil and (o - 1) * ss >= n + pp:
                o -= 1
            ok = ok and o >= 1
        if ok:
            return dict(size=size, window=k, stride=stride, padding=p, dilation=dil,
                        ceil_mode=ceil, first=r.random() < 0.5)


def _configs(seed, nd, n, **kw):
    r = random.Random(seed)
    return [_config(r, nd, **kw) for _ in range(n)]


def _ids(configs):
    return [
        f"{'x'.join(map(str, c['size']))}-k{c['window']}-s{c['stride']}-p{c['padding']}"
        f"-d{c['dilation']}-{'ceil' if c['ceil_mode'] else 'floor'}-{'first' if c['first'] else 'last'}"
        .replace(" ", "")
        for c in configs
    ]


FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}


def _compare(jax_fn, torch_fn, x_first, first, nd):
    """Values and the VJP for a random cotangent; x and results in torch's channels-first."""
    xt = torch.tensor(x_first, requires_grad=True)
    yt = torch_fn(xt)
    ct = np.random.default_rng(1).standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(ct))
    gt, yt = xt.grad.numpy(), yt.detach().numpy()
    if first:
        y, vjp = jax.vjp(lambda x: jax_fn(x, data_format=FIRST[nd]), x_first)
        (g,) = vjp(ct)
    else:
        last = lambda a: np.moveaxis(np.asarray(a), 1, -1)  # noqa: E731
        back = lambda a: np.moveaxis(np.asarray(a), -1, 1)  # noqa: E731
        y, vjp = jax.vjp(jax_fn, last(x_first))
        (g,) = vjp(last(ct))
        y, g = back(y), back(g)
    assert_close(y, yt, err_msg="values")
    assert_close(g, gt, err_msg="gradients")


def _x(cfg, seed, positive=False):
    x = np.random.default_rng(seed).standard_normal((2, 3, *cfg["size"]))
    return np.abs(x) + 0.1 if positive else x


def _last(a):
    return np.moveaxis(np.asarray(a), 1, -1)


MAX = {nd: _configs(nd, nd, 8, dilate=True) for nd in (1, 3)}
AVG = {nd: _configs(10 + nd, nd, 8, dilate=False) for nd in (1, 3)}
LP = {nd: _configs(20 + nd, nd, 3, dilate=False, pad=False) for nd in (1, 3)}
CASES_MAX = [(nd, c) for nd in (1, 3) for c in MAX[nd]]
CASES_AVG = [(nd, c) for nd in (1, 3) for c in AVG[nd]]
CASES_LP = [(nd, c) for nd in (1, 3) for c in LP[nd]]


@pytest.mark.parametrize(("nd", "cfg"), CASES_MAX,
                         ids=[f"{nd}d-{i}" for nd in (1, 3) for i in _ids(MAX[nd])])
def test_max_pool(nd, cfg):
    ours_fn = getattr(jaxconv, f"max_pool{nd}d")
    theirs_fn = getattr(F, f"max_pool{nd}d")

    def ours(x, **kw):
        return ours_fn(x, cfg["window"], stride=cfg["stride"], padding=cfg["padding"],
                       dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"], **kw)

    def theirs(x):
        return theirs_fn(x, cfg["window"], cfg["stride"], cfg["padding"], cfg["dilation"],
                         cfg["ceil_mode"])

    _compare(ours, theirs, _x(cfg, 10), cfg["first"], nd)


@pytest.mark.parametrize(("nd", "cfg"), CASES_AVG,
                         ids=[f"{nd}d-{i}" for nd in (1, 3) for i in _ids(AVG[nd])])
def test_avg_pool(nd, cfg):
    r = random.Random(str(cfg))
    count_include_pad = r.random() < 0.5
    divisor_override = r.choice([None, None, r.randint(1, 7)]) if nd == 3 else None

    def ours(x, **kw):
        return getattr(jaxconv, f"avg_pool{nd}d")(
            x, cfg["window"], stride=cfg["stride"], padding=cfg["padding"],
            ceil_mode=cfg["ceil_mode"], count_include_pad=count_include_pad,
            divisor_override=divisor_override, **kw,
        )

    def theirs(x):
        args = (x, cfg["window"], cfg["stride"], cfg["padding"], cfg["ceil_mode"],
                count_include_pad)
        return F.avg_pool3d(*args, divisor_override) if nd == 3 else F.avg_pool1d(*args)

    _compare(ours, theirs, _x(cfg, 11), cfg["first"], nd)


@pytest.mark.parametrize("norm", [1, 2, 1.5])
@pytest.mark.parametrize(("nd", "cfg"), CASES_LP,
                         ids=[f"{nd}d-{i}" for nd in (1, 3) for i in _ids(LP[nd])])
def test_lp_pool(nd, cfg, norm):
    def ours(x, **kw):
        return getattr(jaxconv, f"lp_pool{nd}d")(
            x, norm, cfg["window"], stride=cfg["stride"], ceil_mode=cfg["ceil_mode"], **kw
        )

    def theirs(x):
        if nd == 1:  # torch 2.x's lp_pool1d wants ints (it multiplies by kernel_size)
            stride = None if cfg["stride"] is None else cfg["stride"][0]
            return F.lp_pool1d(x, norm, cfg["window"][0], stride, cfg["ceil_mode"])
        return F.lp_pool3d(x, norm, cfg["window"], cfg["stride"], cfg["ceil_mode"])

    _compare(ours, theirs, _x(cfg, 12, positive=norm != 2), cfg["first"], nd)


ADAPTIVE = [((7,), 3), ((5,), (8,)), ((6, 5, 7), (4, 2, 3)), ((3, 4, 5), 2)]


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize(("size", "output_size"), ADAPTIVE, ids=lambda v: str(v).replace(" ", ""))
def test_adaptive_pool(size, output_size, kind):
    nd = len(size)
    cfg = dict(size=size)

    def ours(x, **kw):
        return getattr(jaxconv, f"adaptive_{kind}_pool{nd}d")(x, output_size, **kw)

    def theirs(x):
        return getattr(F, f"adaptive_{kind}_pool{nd}d")(x, output_size)

    _compare(ours, theirs, _x(cfg, 13), len(size) == 1, nd)


def _index_cases():
    r = random.Random(7)
    out = []
    for nd in (1, 2, 3):
        for _ in range(4):
            out.append((nd, _config(r, nd, dilate=True)))
    return out


INDEX_CASES = _index_cases()


@pytest.mark.parametrize(("nd", "cfg"), INDEX_CASES,
                         ids=[f"{nd}d-{_ids([c])[0]}" for nd, c in INDEX_CASES])
def test_max_pool_indices_and_unpool(nd, cfg):
    """Indices (with ties: a coarse integer grid) and max_unpool, both layouts, vs torch."""
    x = np.random.default_rng(14).integers(0, 4, (2, 3, *cfg["size"])).astype(np.float64)
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
              ceil_mode=cfg["ceil_mode"])
    yt, it = getattr(F, f"max_pool{nd}d")(torch.tensor(x), cfg["window"], cfg["stride"],
                                          cfg["padding"], cfg["dilation"], cfg["ceil_mode"],
                                          return_indices=True)
    y, i = getattr(jaxconv, f"max_pool{nd}d")(_last(x), cfg["window"], return_indices=True, **kw)
    np.testing.assert_array_equal(_last(yt.numpy()), y)
    np.testing.assert_array_equal(_last(it.numpy()), i)
    _, ic = getattr(jaxconv, f"max_pool{nd}d")(x, cfg["window"], return_indices=True,
                                                data_format=FIRST[nd], **kw)
    np.testing.assert_array_equal(it.numpy(), ic)

    # max_unpool: torch's default size is only valid without padding overhang; use output_size
    stride = cfg["stride"] or cfg["window"]
    size = cfg["size"]
    ut = getattr(F, f"max_unpool{nd}d")(yt, it, cfg["window"], stride, cfg["padding"],
                                        output_size=size)
    u = getattr(jaxconv, f"max_unpool{nd}d")(y, i, cfg["window"], stride=stride,
                                             padding=cfg["padding"], output_size=size)
    np.testing.assert_array_equal(_last(ut.numpy()), u)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_default_size_and_gradient(nd):
    x = np.random.default_rng(15).standard_normal((2, 3, *([5] * nd)))
    yt, it = getattr(F, f"max_pool{nd}d")(torch.tensor(x), 3, 2, 1, return_indices=True)
    yt.requires_grad_(True)
    ut = getattr(F, f"max_unpool{nd}d")(yt, it, 3, 2, 1)
    ct = np.random.default_rng(16).standard_normal(tuple(ut.shape))
    ut.backward(torch.tensor(ct))
    fn = getattr(jaxconv, f"max_unpool{nd}d")
    u, vjp = jax.vjp(lambda y: fn(y, _last(it.numpy()), 3, stride=2, padding=1),
                     _last(yt.detach().numpy()))
    np.testing.assert_array_equal(u, _last(ut.detach().numpy()))
    np.testing.assert_allclose(vjp(_last(ct))[0], _last(yt.grad.numpy()), rtol=1e-12)


def test_max_unpool_output_size_rule_matches_torch():
    yt, it = F.max_pool2d(torch.zeros(1, 1, 7, 7), 2, return_indices=True)  # default 6x6
    y, i = _last(yt.numpy()), _last(it.numpy())
    for h in range(2, 10):
        try:
            F.max_unpool2d(yt, it, 2, output_size=(h, 6))
            expected = None
        except ValueError:  # torch's output_size rule
            expected = "max_unpool2d: invalid output_size"
        except RuntimeError:  # torch's kernel: an index beyond the output
            expected = r"max_unpool2d: indices must lie in \[0, "
        if expected is None:
            assert jaxconv.max_unpool2d(y, i, 2, output_size=(h, 6)).shape == (1, h, 6, 1)
        else:
            with pytest.raises(ValueError, match=expected):
                jaxconv.max_unpool2d(y, i, 2, output_size=(h, 6))


def test_ceil_mode_acceptance_matches_torch():
    """The whole small 1-D and 2-D geometry grid: accepted by both with equal values, or
    rejected by both (ceil_mode may overhang the padded input, dilated or not)."""
    rng = np.random.default_rng(17)
    sizes = range(1, 6) if FULL else (1, 2, 4)  # the default run: input sizes 1, 2 and 4
    for n, k, s, p, d, ceil in itertools.product(sizes, range(1, 4), range(1, 4), range(2),
                                                 range(1, 4), [False, True]):
        if p > k // 2:
            continue
        x = rng.standard_normal((1, 1, n))
        try:
            yt = F.max_pool1d(torch.tensor(x), k, s, p, d, ceil).numpy()
        except RuntimeError:
            with pytest.raises(ValueError, match="max_pool1d: the window"):
                jaxconv.max_pool1d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil,
                                   data_format="NCW")
            continue
        y = jaxconv.max_pool1d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil,
                               data_format="NCW")
        np.testing.assert_array_equal(y, yt)
        if d == 1 and k > n + 2 * p:  # an overhanging window: avg's divisor, lp's scaling
            xt = torch.tensor(np.abs(x) + 0.1)
            for cip in (True, False):
                z = jaxconv.avg_pool1d(xt.numpy(), k, stride=s, padding=p, ceil_mode=ceil,
                                       count_include_pad=cip, data_format="NCW")
                assert_close(z, F.avg_pool1d(xt, k, s, p, ceil, cip).numpy())
            if p == 0:
                z = jaxconv.lp_pool1d(xt.numpy(), 1.5, k, stride=s, ceil_mode=ceil,
                                      data_format="NCW")
                assert_close(z, F.lp_pool1d(xt, 1.5, k, s, ceil).numpy())
    x = rng.standard_normal((1, 1, 5, 5))
    yt = F.max_pool2d(torch.tensor(x), 3, 3, 1, (2, 4), True).numpy()
    np.testing.assert_array_equal(
        jaxconv.max_pool2d(x, 3, padding=1, dilation=(2, 4), ceil_mode=True, data_format="NCHW"),
        yt,
    )


def test_indices_nan_matches_torch():
    x = np.array([[[1.0, np.nan, 2.0, np.nan, 0.0, 5.0]]])
    yt, it = F.max_pool1d(torch.tensor(x), 3, 1, return_indices=True)
    y, i = jaxconv.max_pool1d(x, 3, stride=1, return_indices=True, data_format="NCW")
    np.testing.assert_array_equal(y, yt.numpy())
    np.testing.assert_array_equal(i, it.numpy())


UNFOLD = [((2, 3), 1, 0, 1), (3, 2, 1, 1), ((2, 2), (1, 2), (1, 0), (2, 1)), (2, 3, 1, 2)]


@pytest.mark.parametrize(("window", "stride", "padding", "dilation"), UNFOLD,
                         ids=lambda v: str(v).replace(" ", ""))
def test_unfold_fold(window, stride, padding, dilation):
    rng = np.random.default_rng(18)
    x = rng.standard_normal((2, 3, 7, 8))
    ut = F.unfold(torch.tensor(x), window, dilation, padding, stride).numpy()  # (N, C*kh*kw, L)
    u = np.asarray(jaxconv.unfold(_last(x), window, stride=stride, padding=padding,
                                  dilation=dilation))
    n, ho, wo, depth = u.shape
    kk = depth // 3
    as_torch = u.reshape(n, ho * wo, kk, 3).transpose(0, 3, 2, 1).reshape(n, 3 * kk, ho * wo)
    np.testing.assert_array_equal(as_torch, ut)

    p = rng.standard_normal(ut.shape)
    ft = F.fold(torch.tensor(p), (7, 8), window, dilation, padding, stride).numpy()
    ours = p.reshape(n, 3, kk, ho * wo).transpose(0, 3, 2, 1).reshape(n, ho, wo, depth)
    f = jaxconv.fold(ours, (7, 8), window, stride=stride, padding=padding, dilation=dilation)
    assert_close(f, _last(ft))
