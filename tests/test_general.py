"""``jaxconv.conv_general_dilated`` against ``jax.lax.conv_general_dilated``, and inside Flax.

Randomized configurations over every argument (rank, every ``dimension_numbers`` form, string and
explicit paddings with crops, strides, both dilations, feature and batch groups, precision,
``preferred_element_type``, the algorithm): values and gradients against lax's, computed in
float64 from the same rounded inputs. With ``lhs_dilation`` the reference is
:func:`_tap_sum`, the definition written out in ``jax.numpy`` (dilate, pad, sum over kernel
taps), so no ``lhs_dilation`` reaches XLA in the reference either. The default run draws a
seeded sample; ``JAXCONV_FULL_TESTS=1`` draws many more.
"""

from __future__ import annotations

import collections
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen, nnx
from jax import lax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from tolerances import tolerance

import jaxconv
from jaxconv.convolution import _registry
from jaxconv.convolution._registry import ConvConfig
from jaxconv.convolution.general import _general_core
from jaxconv.models import use_jaxconv
from jaxconv.models.flax_hook import JaxconvHook

FULL = os.environ.get("JAXCONV_FULL_TESTS") == "1"
N_CASES = 200 if FULL else 18
FN = "conv_general_dilated"
HIGHEST = lax.Precision.HIGHEST


# ---------------------------------------------------------------------------------------------
# The independent reference and the comparison


def _tap_sum(lhs, rhs, strides, pads, lhs_dilation, rhs_dilation, dn, groups, batch_groups):
    """lax's convolution from its definition: the input dilated by scattering it into zeros,
    padded / cropped with ``lax.pad``, then one product per kernel tap on strided windows."""
    x = jnp.transpose(lhs, (dn.lhs_spec[0], *dn.lhs_spec[2:], dn.lhs_spec[1]))
    k = jnp.transpose(rhs, (*dn.rhs_spec[2:], dn.rhs_spec[1], dn.rhs_spec[0]))
    n, *size = x.shape[:-1]
    *ks, i, o = k.shape
    dilated = [(s - 1) * d + 1 for s, d in zip(size, lhs_dilation, strict=True)]
    xd = jnp.zeros((n, *dilated, x.shape[-1]), x.dtype)
    xd = xd.at[(slice(None), *(slice(None, None, d) for d in lhs_dilation))].set(x)
    xp = lax.pad(xd, jnp.zeros((), x.dtype), ((0, 0, 0), *((lo, hi, 0) for lo, hi in pads),
                                              (0, 0, 0)))
    eff = [(kk - 1) * d + 1 for kk, d in zip(ks, rhs_dilation, strict=True)]
    out = [(p - e) // s + 1 for p, e, s in zip(xp.shape[1:-1], eff, strides, strict=True)]
    blocks = []
    nb, ob = n // batch_groups, o // batch_groups
    for b in range(batch_groups):  # batch block b meets output features [b * ob, (b + 1) * ob)
        xb, kb = xp[b * nb:(b + 1) * nb], k[..., b * ob:(b + 1) * ob]
        y = jnp.zeros((nb, *out, ob), x.dtype)
        for tap in np.ndindex(*ks):
            win = xb[(slice(None), *(slice(t * r, t * r + (m - 1) * s + 1, s) for t, r, m, s
                                     in zip(tap, rhs_dilation, out, strides, strict=True)))]
            win = win.reshape(*win.shape[:-1], groups, i)
            kt = kb[tap].reshape(i, groups, ob // groups)
            y = y + jnp.einsum("...gi,igo->...go", win, kt).reshape(y.shape)
        blocks.append(y)
    y = jnp.concatenate(blocks, axis=-1)
    axes = [0] * y.ndim
    axes[dn.out_spec[0]], axes[dn.out_spec[1]] = 0, y.ndim - 1
    for j, a in enumerate(dn.out_spec[2:]):
        axes[a] = 1 + j
    return jnp.transpose(y, axes)


def _loosest(algorithm: str, dtype) -> tuple[float, float]:
    """The algorithm's tolerance; for ``auto``, the loosest of any it may pick."""
    names = _registry.names() if algorithm == "auto" else (algorithm,)
    tols = [tolerance(a, dtype) for a in names]
    return max(t[0] for t in tols), max(t[1] for t in tols)


def _assert_close(got, ref, algorithm, dtype, what):
    rtol, atol = _loosest(algorithm, dtype)
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol * scale, err_msg=what)


# ---------------------------------------------------------------------------------------------
# Randomized configurations


def _layouts(r, spatial: int, form: str):
    """``(lhs, rhs, out)`` layout strings and the ``dimension_numbers`` argument for a form."""
    if form == "channels_last":
        sp = "DHW"[3 - spatial:]
        specs = (f"N{sp}C", f"{sp}IO", f"N{sp}C")
    elif form == "none":
        sp = "DHW"[3 - spatial:]
        specs = (f"NC{sp}", f"OI{sp}", f"NC{sp}")
    else:  # any letters, any order
        sp = "".join(r.choice(list("ABDEFGHJKLMPQRSTUVWXYZ"), size=spatial, replace=False))
        specs = tuple("".join(r.permutation(list(fixed + sp))) for fixed in ("NC", "OI", "NC"))
    # a ConvDimensionNumbers is built from the strings once the shapes are known
    return specs, (None if form in ("none", "dnums") else specs)


def _draw(seed: int) -> dict:
    """One random configuration (small shapes), every argument drawn."""
    r = np.random.default_rng(seed)
    spatial = (2, 1, 2, 3, 2)[seed % 5]  # stratified: every rank in any five draws
    form = str(r.choice(["none", "dnums", "strings", "channels_last"]))
    specs, dn_arg = _layouts(r, spatial, form)
    g = b = 1
    grouping = r.choice(["none", "feature", "batch"], p=[0.5, 0.3, 0.2])
    if grouping == "feature":
        g = int(r.choice([2, 3]))
    elif grouping == "batch":
        b = 2
    i = int(r.choice([1, 2, 3]))
    c, o = i * g, g * b * int(r.choice([1, 2]))
    n = b * int(r.choice([1, 2]))
    big = 4 if spatial == 3 else 7
    size = [int(v) for v in r.integers(2, big + 1, spatial)]
    ks = [int(v) for v in r.integers(1, 4, spatial)]
    strides = tuple(int(v) for v in r.choice([1, 1, 2], spatial))
    rd = tuple(int(v) for v in r.choice([1, 1, 2], spatial))
    ld = tuple(int(v) for v in r.choice([1, 2, 3], spatial)) if r.random() < 0.25 else None
    eff = [(kk - 1) * d + 1 for kk, d in zip(ks, rd, strict=True)]
    dilated = [(s - 1) * d + 1 for s, d in zip(size, ld or (1,) * spatial, strict=True)]
    if ld is None and r.random() < 0.5:
        padding = str(r.choice(["SAME", "SAME_LOWER", "VALID", "same"]))
        size = [max(s, e) for s, e in zip(size, eff, strict=True)]  # VALID: non-empty
    else:
        padding = []
        for d, e in zip(dilated, eff, strict=True):
            lo, hi = (int(v) for v in r.integers(-2, 4, 2))
            hi = max(hi, e - d - lo)  # a non-empty output (empty ones have their own test)
            padding.append((lo, hi))
    dtype = str(r.choice(["float32", "float32", "float64"]))
    sizes = dict(zip(specs[1].replace("O", "").replace("I", ""), zip(size, ks, strict=True),
                     strict=True))
    lhs_shape = tuple(n if a == "N" else c if a == "C" else sizes[a][0] for a in specs[0])
    rhs_shape = tuple(o if a == "O" else i if a == "I" else sizes[a][1] for a in specs[1])
    if form == "dnums":
        dn_arg = lax.conv_dimension_numbers(lhs_shape, rhs_shape, specs)
    algorithm = "auto"
    negative = not isinstance(padding, str) and min(min(p) for p in padding) < 0
    if ld is None and not negative and r.random() < 0.75:
        # a named algorithm that serves the problem, as jaxconv sees it in channels-last
        pads = (lax.padtype_to_pads(size, eff, strides, padding) if isinstance(padding, str)
                else padding)
        config = ConvConfig(stride=strides, padding=tuple(tuple(int(v) for v in p) for p in pads),
                            dilation=rd, groups=max(g, b))
        ok = _registry.applicable((n // b, *size, b * c), (*ks, i, o), jnp.dtype(dtype), config)
        # the one that serves and the sample has drawn least so far (direct comes with
        # lhs_dilation, below), so a small sample meets many algorithms whatever is registered
        others = [a for a in ok if a != "direct"] or ok
        algorithm = min(others, key=lambda a: (_DRAWN[a], a))
        _DRAWN[algorithm] += 1
    elif ld is not None and r.random() < 0.5:
        algorithm = "direct"
    return dict(
        seed=seed, spatial=spatial, form=form, specs=specs, lhs_shape=lhs_shape,
        rhs_shape=rhs_shape, dtype=dtype, algorithm=algorithm,
        kwargs=dict(
            window_strides=strides, padding=padding, lhs_dilation=ld,
            rhs_dilation=rd if r.random() < 0.8 else (None if set(rd) == {1} else rd),
            dimension_numbers=dn_arg, feature_group_count=g, batch_group_count=b,
            precision=[None, "highest", HIGHEST, ("highest", "default")][int(r.integers(4))],
            preferred_element_type=("float64" if dtype == "float32" and r.random() < 0.2
                                    else None),
        ),
    )


_DRAWN: collections.Counter = collections.Counter()  # named algorithms drawn so far
CASES = [_draw(s) for s in range(N_CASES)]


def _case_id(case) -> str:
    kw = case["kwargs"]
    parts = [f"s{case['seed']}", f"{case['spatial']}d", case["form"], case["dtype"],
             case["algorithm"], "x".join(map(str, case["lhs_shape"])),
             "k" + "x".join(map(str, case["rhs_shape"]))]
    if kw["lhs_dilation"] is not None:
        parts.append(f"ld{''.join(map(str, kw['lhs_dilation']))}")
    if kw["feature_group_count"] > 1:
        parts.append(f"g{kw['feature_group_count']}")
    if kw["batch_group_count"] > 1:
        parts.append(f"b{kw['batch_group_count']}")
    return "-".join(parts)


def test_the_sample_covers_every_argument():
    """The default sample draws every dimension_numbers form, rank, grouping and padding kind."""
    assert {c["form"] for c in CASES} == {"none", "dnums", "strings", "channels_last"}
    assert {c["spatial"] for c in CASES} == {1, 2, 3}
    kws = [c["kwargs"] for c in CASES]
    assert any(k["feature_group_count"] > 1 for k in kws)
    assert any(k["batch_group_count"] > 1 for k in kws)
    assert any(k["lhs_dilation"] is not None for k in kws)
    assert any(k["preferred_element_type"] is not None for k in kws)
    assert {k["padding"].upper() for k in kws if isinstance(k["padding"], str)} == {
        "SAME", "SAME_LOWER", "VALID"}
    assert any(not isinstance(k["padding"], str) and min(min(p) for p in k["padding"]) < 0
               for k in kws)
    assert len({c["algorithm"] for c in CASES}) >= 5


def _value_and_vjp(f):
    """``(f(a, b), vjp(ct))`` as one jitted function (one compilation, not one per op)."""
    def run(a, b, ct):
        y, vjp = jax.vjp(f, a, b)
        return y, vjp(ct.astype(y.dtype))
    return jax.jit(run)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_lax(case):
    """Values and gradients (a random cotangent) equal lax's, float64-computed."""
    r = np.random.default_rng(case["seed"] + 1000)
    dtype = jnp.dtype(case["dtype"])
    lhs = jnp.asarray(r.normal(size=case["lhs_shape"]), dtype)
    rhs = jnp.asarray(r.normal(size=case["rhs_shape"]), dtype)
    kw = case["kwargs"]
    out_dtype = jnp.dtype(kw["preferred_element_type"] or dtype)
    # lax's shape rule (abstract evaluation: nothing reaches XLA)
    expected = jax.eval_shape(lambda a, b: lax.conv_general_dilated(a, b, **kw), lhs, rhs)
    ct = jnp.asarray(r.normal(size=expected.shape), out_dtype)
    y, grads = _value_and_vjp(lambda a, b: jaxconv.conv_general_dilated(
        a, b, **kw, algorithm=case["algorithm"]))(lhs, rhs, ct)
    assert (y.shape, y.dtype) == (expected.shape, out_dtype)

    ref_kw = {**kw, "precision": HIGHEST, "preferred_element_type": None}
    if kw["lhs_dilation"] is None:
        def ref_fn(a, b):
            return lax.conv_general_dilated(a, b, **ref_kw)
    else:
        dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, kw["dimension_numbers"])
        rd = kw["rhs_dilation"] or (1,) * case["spatial"]

        def ref_fn(a, b):
            return _tap_sum(a, b, kw["window_strides"], kw["padding"], kw["lhs_dilation"], rd,
                            dn, kw["feature_group_count"], kw["batch_group_count"])
    ref, ref_grads = _value_and_vjp(ref_fn)(lhs.astype(jnp.float64), rhs.astype(jnp.float64),
                                            ct.astype(jnp.float64))
    alg = case["algorithm"]
    _assert_close(y, ref, alg, out_dtype, "value")
    # each gradient has its operand's dtype (the cotangent is cast back to it)
    _assert_close(grads[0], ref_grads[0], alg, grads[0].dtype, "d lhs")
    _assert_close(grads[1], ref_grads[1], alg, grads[1].dtype, "d rhs")


@pytest.mark.parametrize("seed", range(3))
def test_tap_sum_reference_matches_lax(seed):
    """The reference of the lhs_dilation cases agrees with lax where lax runs without one."""
    case = next(c for c in CASES[seed * 5:] if c["kwargs"]["lhs_dilation"] is None)
    r = np.random.default_rng(seed)
    lhs, rhs = r.normal(size=case["lhs_shape"]), r.normal(size=case["rhs_shape"])
    kw = case["kwargs"]
    dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, kw["dimension_numbers"])
    dn_rhs = [rhs.shape[a] for a in dn.rhs_spec[2:]]
    rd = kw["rhs_dilation"] or (1,) * case["spatial"]
    pads = kw["padding"]
    if isinstance(pads, str):
        pads = lax.padtype_to_pads([lhs.shape[a] for a in dn.lhs_spec[2:]],
                                   [(k - 1) * d + 1 for k, d in zip(dn_rhs, rd, strict=True)],
                                   kw["window_strides"], pads)
    got = _tap_sum(lhs, rhs, kw["window_strides"], pads, (1,) * case["spatial"], rd, dn,
                   kw["feature_group_count"], kw["batch_group_count"])
    ref = lax.conv_general_dilated(lhs, rhs, **{**kw, "precision": HIGHEST,
                                               "preferred_element_type": None})
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Known answers, layouts, dtypes, transformations


def test_known_answer_lhs_dilation_and_batch_groups():
    x = jnp.array([1.0, 2.0, 3.0]).reshape(1, 1, 3)  # NCW, lax's default
    k = jnp.array([1.0, 10.0]).reshape(1, 1, 2)  # OIW
    # zeros inserted: [1, 0, 2, 0, 3], padded (1, 1): [0, 1, 0, 2, 0, 3, 0]
    y = jaxconv.conv_general_dilated(x, k, (1,), [(1, 1)], lhs_dilation=(2,))
    np.testing.assert_array_equal(y[0, 0], [10.0, 1.0, 20.0, 2.0, 30.0, 3.0])
    # with a window stride of 2 every other output stays
    y = jaxconv.conv_general_dilated(x, k, (2,), [(1, 1)], lhs_dilation=(2,))
    np.testing.assert_array_equal(y[0, 0], [10.0, 20.0, 30.0])
    # batch groups: image 0 meets output feature 0, image 1 output feature 1
    x2 = jnp.stack([jnp.ones((1, 3)), 2 * jnp.ones((1, 3))])  # (N=2, C=1, W=3)
    k2 = jnp.array([1.0, 100.0]).reshape(2, 1, 1)  # O=2, I=1, W=1
    y = jaxconv.conv_general_dilated(x2, k2, (1,), "VALID", batch_group_count=2)
    np.testing.assert_array_equal(y, [[[1.0, 1.0, 1.0], [200.0, 200.0, 200.0]]])


@pytest.mark.parametrize("specs", [
    None,
    ("NHWC", "HWIO", "NHWC"), ("NCHW", "OIHW", "NCHW"), ("NHWC", "OIHW", "NCHW"),
    ("NWC", "WIO", "NWC"), ("NCW", "OIW", "NWC"),
    ("NDHWC", "DHWIO", "NDHWC"), ("NCDHW", "OIDHW", "NCDHW"),
    ("HNCW", "IWHO", "WCNH"),
], ids=str)
def test_every_dimension_numbers_form(specs, rng):
    """Strings, the same as ConvDimensionNumbers, and None: all give lax's result."""
    spatial = 2 if specs is None else len(specs[0]) - 2
    sizes = {"N": 2, "C": 4, "O": 6, "I": 2, "D": 3, "H": 5, "W": 6}
    kernel = {"D": 2, "H": 3, "W": 2}
    lhs_spec, rhs_spec = specs[:2] if specs else ("NCHW", "OIHW")
    lhs = rng.normal(size=[sizes[a] for a in lhs_spec])
    rhs = rng.normal(size=[kernel.get(a, sizes[a]) for a in rhs_spec])
    kw = dict(window_strides=(2,) + (1,) * (spatial - 1), padding="SAME",
              rhs_dilation=(1,) * (spatial - 1) + (2,), feature_group_count=2)
    ref = lax.conv_general_dilated(lhs, rhs, dimension_numbers=specs, **kw)
    got = jaxconv.conv_general_dilated(lhs, rhs, dimension_numbers=specs, **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    if specs is not None:
        dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, specs)
        again = jaxconv.conv_general_dilated(lhs, rhs, dimension_numbers=dn, **kw)
        np.testing.assert_array_equal(again, got)


def test_empty_outputs_and_inputs_are_zeros_of_lax_shape():
    x = jnp.ones((2, 3, 5))  # NCW
    k = jnp.ones((4, 3, 7))
    for lhs, rhs, pad in [(x, k, "VALID"), (x[:0], k, "VALID"), (x[:, :, :0], k, [(4, 4)]),
                          (x, k[:, :, :3], [(-5, 0)])]:
        ref = lax.conv_general_dilated(lhs, rhs, (1,), pad)
        got = jaxconv.conv_general_dilated(lhs, rhs, (1,), pad)
        assert got.shape == ref.shape and got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref)
    # a crop past the input eats into the high padding: lax keeps those zeros
    ref = lax.conv_general_dilated(x, k[:, :, :2], (1,), [(-7, 5)])
    np.testing.assert_array_equal(jaxconv.conv_general_dilated(x, k[:, :, :2], (1,), [(-7, 5)]),
                                  ref)


# Float32 problems on which XLA:CPU's own convolution with these negative paddings gave wrong
# values or NaN (jax 0.10.2; found by random search against float64): NHWC x, HWIO k, pads, and
# lhs_dilation (the last: the kernel gradient through the transposed path).
NEGATIVE_PADDING = [
    ((2, 4, 4, 3), (3, 1, 3, 1), [(-2, 2), (-1, -1)], None),
    ((2, 6, 4, 3), (3, 1, 3, 3), [(-2, 0), (-3, 3)], None),
    ((2, 6, 3, 3), (3, 1, 3, 1), [(0, 0), (-3, 1)], None),
    ((2, 3, 7, 2), (3, 2, 1, 2), [(-2, 2), (-1, 2)], (1, 2)),
]


@pytest.mark.parametrize(("x_shape", "k_shape", "pads", "ld"), NEGATIVE_PADDING, ids=str)
def test_negative_padding_is_a_crop_in_float32(x_shape, k_shape, pads, ld, rng):
    """Values and gradients right where XLA:CPU's negatively padded float32 convolution was not."""
    x = jnp.asarray(rng.normal(size=x_shape), jnp.float32)
    k = jnp.asarray(rng.normal(size=k_shape), jnp.float32)
    groups = x_shape[-1] // k_shape[-2]
    kw = dict(window_strides=(1, 1), padding=pads, lhs_dilation=ld, feature_group_count=groups,
              dimension_numbers=("NHWC", "HWIO", "NHWC"))
    ct = jnp.asarray(rng.normal(size=jax.eval_shape(
        lambda a, b: lax.conv_general_dilated(a, b, **kw), x, k).shape), jnp.float32)
    y, grads = _value_and_vjp(lambda a, b: jaxconv.conv_general_dilated(a, b, **kw))(x, k, ct)
    dn = lax.conv_dimension_numbers(x.shape, k.shape, kw["dimension_numbers"])
    ref, ref_grads = _value_and_vjp(lambda a, b: _tap_sum(
        a, b, (1, 1), pads, ld or (1, 1), (1, 1), dn, groups, 1))(
        x.astype(jnp.float64), k.astype(jnp.float64), ct.astype(jnp.float64))
    _assert_close(y, ref, "auto", jnp.float32, "value")
    _assert_close(grads[0], ref_grads[0], "auto", jnp.float32, "d x")
    _assert_close(grads[1], ref_grads[1], "auto", jnp.float32, "d k")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_preferred_element_type_widens(dtype, rng):
    lhs = jnp.asarray(rng.normal(size=(2, 6, 6, 4)), dtype)
    rhs = jnp.asarray(rng.normal(size=(3, 3, 4, 5)), dtype)
    kw = dict(dimension_numbers=("NHWC", "HWIO", "NHWC"), preferred_element_type=jnp.float32)
    got = jaxconv.conv_general_dilated(lhs, rhs, (1, 1), "SAME", **kw)
    ref = lax.conv_general_dilated(lhs, rhs, (1, 1), "SAME", precision=HIGHEST, **kw)
    assert got.dtype == ref.dtype == jnp.float32
    # both accumulate the exactly-widened inputs in float32
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * float(jnp.abs(ref).max()))
    same = jaxconv.conv_general_dilated(lhs, rhs, (1, 1), "SAME",
                                        dimension_numbers=kw["dimension_numbers"])
    assert same.dtype == jnp.dtype(dtype)


def test_mixed_dtypes_are_promoted():
    x = jnp.ones((1, 1, 4), jnp.float32)
    k = jnp.ones((1, 1, 2), jnp.float64)
    assert jaxconv.conv_general_dilated(x, k, (1,), "VALID").dtype == jnp.float64


def test_out_sharding_reshards_like_lax():
    mesh = jax.make_mesh((1,), ("b",), axis_types=(AxisType.Explicit,))
    x, k = jnp.ones((2, 5, 3)), jnp.ones((2, 3, 4))
    kw = dict(dimension_numbers=("NWC", "WIO", "NWC"))
    with jax.set_mesh(mesh):
        ref = lax.conv_general_dilated(x, k, (1,), "SAME", out_sharding=P("b"), **kw)
        got = jaxconv.conv_general_dilated(x, k, (1,), "SAME", out_sharding=P("b"), **kw)
    assert got.sharding == ref.sharding
    np.testing.assert_array_equal(got, ref)
    got = jaxconv.conv_general_dilated(x, k, (1,), "SAME", out_sharding=NamedSharding(mesh, P()),
                                       **kw)
    assert got.sharding.is_equivalent_to(NamedSharding(mesh, P()), got.ndim)


def test_jit_vmap_and_no_retrace(rng):
    kw = dict(window_strides=(1, 2), padding=[(1, -1), (0, 2)],
              dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x = jnp.asarray(rng.normal(size=(3, 6, 7, 2)))
    k = jnp.asarray(rng.normal(size=(2, 3, 2, 4)))
    eager = jaxconv.conv_general_dilated(x, k, **kw)
    jitted = jax.jit(lambda a, b: jaxconv.conv_general_dilated(a, b, **kw))(x, k)
    np.testing.assert_allclose(jitted, eager, rtol=1e-12, atol=1e-12)
    per_image = jax.vmap(lambda a: jaxconv.conv_general_dilated(a[None], k, **kw)[0])(x)
    np.testing.assert_allclose(per_image, eager, rtol=1e-12, atol=1e-12)
    before = _general_core._cache_size()
    jaxconv.conv_general_dilated(x + 1, k, **kw)
    jaxconv.conv_general_dilated(x, k * 2, **{**kw, "window_strides": [1, 2]})
    # lax also takes NumPy arrays for the strides and pads: the same static plan
    as_arrays = jaxconv.conv_general_dilated(x, k, **{**kw, "window_strides": np.array([1, 2]),
                                                      "padding": np.array(kw["padding"])})
    np.testing.assert_array_equal(as_arrays, eager)
    assert _general_core._cache_size() == before


# ---------------------------------------------------------------------------------------------
# Errors: raised before tracing, naming the function and the argument

X = jnp.ones((2, 4, 6, 6))  # NCHW
K = jnp.ones((6, 2, 3, 3))  # OIHW (2 feature groups of 2)


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), [
    ((jnp.ones((2, 4, 6, 6), jnp.int32), K), {}, TypeError, "lhs must have a floating dtype"),
    ((X, jnp.ones((6, 2, 3))), {}, ValueError, "lhs and rhs must have the same rank"),
    ((jnp.ones((2, 4)), jnp.ones((6, 4))), {}, ValueError, "serves 1 to 3 spatial dims"),
    ((X, K), dict(dimension_numbers="NHWC"), TypeError, "dimension_numbers must be None"),
    ((X, K), dict(dimension_numbers=("NCHW", "OIHW", "NCH")), ValueError,
     "one letter per axis"),
    ((X, K), dict(dimension_numbers=("NCHW", "OIHW", "NCXW")), ValueError,
     "same spatial letters"),
    ((X, K), dict(dimension_numbers=lax.ConvDimensionNumbers((0, 1, 2, 2), (0, 1, 2, 3),
                                                             (0, 1, 2, 3))),
     ValueError, r"dimension_numbers.lhs_spec must be a permutation of range\(4\)"),
    ((X, K), dict(window_strides=(1,)), TypeError, "window_strides must be an int or a pair"),
    ((X, K), dict(window_strides=(1, 0)), ValueError, "window_strides must be >= 1"),
    ((X, K), dict(padding="BOGUS"), ValueError, "unknown padding 'BOGUS'"),
    ((X, K), dict(padding=[(1, 1)]), TypeError, r"padding must be one of .* 2 \(low, high\)"),
    ((X, K), dict(padding="SAME", lhs_dilation=(2, 1)), ValueError,
     "padding must be explicit .* with lhs_dilation"),
    ((X, K), dict(padding=[(-5, -2), (0, 0)]), ValueError, "negative padding may crop at most"),
    ((X, K), dict(lhs_dilation=(0, 1), padding=[(0, 0)] * 2), ValueError,
     "lhs_dilation must be >= 1"),
    ((X, K), dict(rhs_dilation=(1, 1, 1)), TypeError, "rhs_dilation must be an int or a pair"),
    ((X, K), dict(feature_group_count=1.5), TypeError, "feature_group_count must be an int"),
    ((X, K), dict(feature_group_count=0), ValueError, "feature_group_count must be >= 1"),
    ((X, K), dict(feature_group_count=1), ValueError,
     r"feature_group_count=1 must divide the lhs features C=4 .* I=2"),
    ((X, jnp.ones((5, 2, 3, 3))), {}, ValueError,
     "feature_group_count=2 must divide the rhs output features O=5"),
    ((jnp.ones((3, 2, 6, 6)), jnp.ones((6, 2, 3, 3))), dict(feature_group_count=1,
                                                          batch_group_count=2), ValueError,
     "batch_group_count=2 must divide the lhs batch N=3"),
    ((X, K), dict(batch_group_count=2), ValueError,
     "at most one of feature_group_count and batch_group_count"),
    ((X, jnp.ones((6, 2, 0, 3))), {}, ValueError,
     r"kernel's spatial sizes must be >= 1, got \(0, 3\)"),
    ((X, K), dict(precision="fast"), ValueError, "unknown precision"),
    ((X, K), dict(precision=3), TypeError, "precision must be None"),
    ((X, K), dict(preferred_element_type="nonsense"), TypeError,
     "preferred_element_type must be None or a dtype"),
    ((X, K), dict(preferred_element_type=jnp.int32), TypeError,
     "preferred_element_type must be a floating dtype"),
    ((X, K), dict(preferred_element_type=jnp.float16), TypeError,
     "preferred_element_type must not be narrower than the operands' dtype float64"),
    ((X, K), dict(out_sharding="b"), TypeError,
     "out_sharding must be None"),
    ((X, K), dict(out_sharding=P("b")), ValueError,
     "out_sharding as a PartitionSpec needs a mesh context"),
    ((X, K), dict(algorithm="magic"), ValueError,
     "unknown algorithm 'magic'"),
    ((X, jnp.ones((6, 2, 5, 5))), dict(algorithm="winograd"), ValueError,
     "algorithm='winograd' cannot serve these arguments"),
    ((X, K), dict(algorithm="fft", lhs_dilation=(2, 2),
                  padding=[(1, 1)] * 2), ValueError, "algorithm='fft' cannot serve lhs_dilation"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_errors(args, kwargs, error, match):
    kwargs = {"window_strides": (1, 1), "padding": "VALID", "feature_group_count": 2, **kwargs}
    with pytest.raises(error, match=f"^{FN}: .*{match}"):
        jaxconv.conv_general_dilated(*args, **kwargs)


def test_errors_come_before_tracing():
    """lax raises a RuntimeError from inside its padding rule; this raises first, under jit."""
    with pytest.raises(ValueError, match=f"{FN}: unknown padding 'BOGUS'"):
        jax.jit(lambda x, k: jaxconv.conv_general_dilated(x, k, (1, 1), "BOGUS",
                                                          feature_group_count=2))(X, K)


# ---------------------------------------------------------------------------------------------
# Flax


def _normal_init(key, shape, dtype=jnp.float32):
    """Parameters drawn by NumPy (seeded by shape): jax.random's initializers compile per shape,
    which cost more than the tests."""
    return jnp.asarray(np.random.default_rng(sum(shape)).normal(size=shape) / 3, dtype)


INIT = dict(kernel_init=_normal_init, bias_init=_normal_init)


def _loss(model, x):
    y = model(x)
    return jnp.sum(jnp.sin(y)), y


@nnx.jit
def _run(model, x):
    """``(y, d params, d x)``, jitted: one compilation per model."""
    (_, y), grads = nnx.value_and_grad(_loss, argnums=(0, 1), has_aux=True)(model, x)
    return y, *grads


def _assert_runs_equal(got, ref):
    """Output and gradients equal (float64: to rounding)."""
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


NNX_LAYERS = [
    (2, dict(in_features=3, out_features=4, kernel_size=(3, 3))),
    (2, dict(in_features=4, out_features=6, kernel_size=(3, 3), strides=2,
             feature_group_count=2, padding="VALID")),
    (2, dict(in_features=3, out_features=2, kernel_size=(2, 3), kernel_dilation=(2, 1),
             padding=[(1, 0), (2, 1)])),
    (2, dict(in_features=2, out_features=3, kernel_size=(3, 3), input_dilation=2,
             padding=[(2, 1), (1, 1)])),
    (2, dict(in_features=4, out_features=4, kernel_size=(3, 3), feature_group_count=4,
             padding="CIRCULAR")),
    (1, dict(in_features=2, out_features=3, kernel_size=(3,), padding="CAUSAL")),
    (3, dict(in_features=2, out_features=2, kernel_size=(2, 2, 2), strides=(1, 2, 1))),
]


@pytest.mark.parametrize(("spatial", "kw"), NNX_LAYERS,
                         ids=lambda v: v if isinstance(v, int) else "-".join(
                             f"{a}={b}" for a, b in v.items() if a not in ("in_features",)))
def test_nnx_conv_hook_gives_the_plain_layer(spatial, kw, rng):
    kw = {**kw, "param_dtype": jnp.float64, **INIT}
    plain = nnx.Conv(**kw, rngs=nnx.Rngs(0))
    ours = nnx.Conv(**kw, conv_general_dilated=jaxconv.conv_general_dilated, rngs=nnx.Rngs(0))
    x = jnp.asarray(rng.normal(size=(2, *(6,) * spatial, kw["in_features"])))
    _assert_runs_equal(_run(ours, x), _run(plain, x))


def test_nnx_conv_hook_float32_under_jit(rng):
    plain = nnx.Conv(8, 16, (3, 3), strides=2, rngs=nnx.Rngs(0), **INIT)
    ours = nnx.Conv(8, 16, (3, 3), strides=2, conv_general_dilated=jaxconv.conv_general_dilated,
                    rngs=nnx.Rngs(0), **INIT)
    x = jnp.asarray(rng.normal(size=(4, 9, 9, 8)), jnp.float32)
    for a, b in zip(jax.tree.leaves(_run(ours, x)), jax.tree.leaves(_run(plain, x)),
                    strict=True):
        _assert_close(a, b, "auto", jnp.float32, "nnx float32")


def test_linen_conv_hook_gives_the_plain_layer(rng):
    kw = dict(features=6, kernel_size=(3, 3), strides=(2, 1), kernel_dilation=(1, 2),
              feature_group_count=2, padding="SAME", param_dtype=jnp.float64, **INIT)
    plain = linen.Conv(**kw)
    ours = linen.Conv(**kw, conv_general_dilated=jaxconv.conv_general_dilated)
    x = jnp.asarray(rng.normal(size=(2, 7, 7, 4)))
    params = plain.init(jax.random.key(0), x)

    def value_and_grads(module):
        def loss(p, x):
            return jnp.sum(jnp.sin(module.apply(p, x)))
        return jax.jit(jax.value_and_grad(loss, (0, 1)))(params, x)

    for a, b in zip(jax.tree.leaves(value_and_grads(ours)), jax.tree.leaves(value_and_grads(plain)),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


class _Net(nnx.Module):
    """Convolutions at several depths (an attribute, a list, a nested module)."""

    def __init__(self, rngs):
        kw = dict(rngs=rngs, param_dtype=jnp.float64, **INIT)
        self.stem = nnx.Conv(3, 4, (3, 3), **kw)
        self.blocks = nnx.List([
            nnx.Conv(4, 4, (3, 3), feature_group_count=4, **kw),
            nnx.Sequential(nnx.Conv(4, 6, (1, 1), strides=2, **kw), nnx.relu),
        ])
        self.up = nnx.ConvTranspose(6, 2, (2, 2), strides=(2, 2), **kw)

    def __call__(self, x):
        x = nnx.relu(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return self.up(x)


def _convs(model):
    return [m for _, m in nnx.iter_modules(model) if isinstance(m, nnx.Conv)]


def test_use_jaxconv_switches_every_conv_and_back(rng):
    model = _Net(nnx.Rngs(0))
    x = jnp.asarray(rng.normal(size=(2, 8, 8, 3)))
    plain = _run(model, x)
    assert use_jaxconv(model) is model
    assert len(_convs(model)) == 3
    assert all(c.conv_general_dilated == JaxconvHook("auto") for c in _convs(model))
    _assert_runs_equal(_run(model, x), plain)
    use_jaxconv(model, algorithm="direct")
    assert {c.conv_general_dilated.algorithm for c in _convs(model)} == {"direct"}
    use_jaxconv(model, algorithm=None)
    assert all(c.conv_general_dilated is lax.conv_general_dilated for c in _convs(model))
    for a, b in zip(jax.tree.leaves(_run(model, x)), jax.tree.leaves(plain), strict=True):
        np.testing.assert_array_equal(a, b)


def test_use_jaxconv_keeps_the_compiled_step(rng):
    """Switching to the same algorithm again leaves the graph unchanged: no retrace."""
    model = use_jaxconv(nnx.Conv(2, 2, (3, 3), rngs=nnx.Rngs(0), **INIT))
    traces = []

    @nnx.jit
    def forward(m, x):
        traces.append(1)
        return m(x)

    x = jnp.ones((1, 5, 5, 2), jnp.float32)
    forward(model, x)
    use_jaxconv(model)
    forward(model, x)
    assert len(traces) == 1
    use_jaxconv(model, algorithm="direct")
    forward(model, x)
    assert len(traces) == 2


def test_use_jaxconv_errors():
    with pytest.raises(TypeError, match=r"use_jaxconv: model must be a flax\.nnx\.Module, got dict"):
        use_jaxconv({})
    with pytest.raises(ValueError, match="use_jaxconv: unknown algorithm 'magic'"):
        use_jaxconv(nnx.Conv(1, 1, (1, 1), rngs=nnx.Rngs(0), **INIT), algorithm="magic")


def test_exported():
    from jaxconv.convolution import conv_general_dilated

    assert "conv_general_dilated" in jaxconv.__all__
    assert jaxconv.conv_general_dilated is conv_general_dilated
    assert "use_jaxconv" in jaxconv.models.__all__
