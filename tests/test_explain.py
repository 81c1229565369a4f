"""jaxconv.explain: known answers for every attribution method, dtypes, errors, viz and CLI."""

from __future__ import annotations

import stat
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv
import jaxconv.explain as explain

H, W, C, K = 6, 5, 2, 3


# ----------------------------------------------------------------------------- models


def linear_model(rng, c=C):
    """``fn(x) = Σ x * w[..., k] + b[k]`` with its weights ``(H, W, c, K)``."""
    w = rng.normal(size=(H, W, c, K))
    b = rng.normal(size=(K,))

    def fn(x):
        wk = jnp.asarray(w, x.dtype)
        return jnp.einsum("nhwc,hwck->nk", x, wk) + jnp.asarray(b, x.dtype).reshape(1, K)

    return fn, w


def conv_params(rng):
    return {
        "conv": rng.normal(size=(3, 3, 1, 4)) * 0.7,
        "dense": rng.normal(size=(4 * 4 * 4, K)) * 0.3,
    }


def conv_net(params, x, activation=jaxconv.relu):
    """8x8x1 -> conv 3x3 SAME (4) -> act -> max pool 2 -> dense K, from jaxconv ops."""
    h = jaxconv.conv2d(x, jnp.asarray(params["conv"], x.dtype), padding="SAME", algorithm="direct")
    h = jaxconv.max_pool2d(activation(h), 2)
    return h.reshape(h.shape[0], -1) @ jnp.asarray(params["dense"], x.dtype)


@pytest.fixture
def net(rng):
    params = conv_params(rng)
    return params, (lambda x, activation=jaxconv.relu: conv_net(params, x, activation))


@pytest.fixture
def images(rng):
    return jnp.asarray(rng.uniform(-1, 1, size=(2, 8, 8, 1)), jnp.float32)


# ----------------------------------------------------------------------------- gradients


def test_linear_saliency_smoothgrad_ig_are_the_weights(rng):
    fn, w = linear_model(rng)
    x = jnp.asarray(rng.normal(size=(2, H, W, C)))
    t = np.array([2, 0])
    wt = np.stack([w[..., 2], w[..., 0]])  # (2, H, W, C)
    np.testing.assert_allclose(explain.saliency(fn, x, t), wt, rtol=1e-12)
    sg = explain.smoothgrad(fn, x, t, key=jax.random.key(0), samples=7, batch_size=3)
    np.testing.assert_allclose(sg, wt, rtol=1e-12)  # the gradient is constant: exact expectation
    sg = explain.smoothgrad(fn, x, t, key=jax.random.PRNGKey(0), samples=2)  # legacy uint32 key
    np.testing.assert_allclose(sg, wt, rtol=1e-12)
    attr, gap = explain.integrated_gradients(fn, x, t, steps=3, return_gap=True)
    np.testing.assert_allclose(attr, np.asarray(x) * wt, rtol=1e-12)
    np.testing.assert_allclose(gap, 0, atol=1e-10)
    base = jnp.asarray(rng.normal(size=(C,)))  # per-channel baseline broadcasts
    attr = explain.integrated_gradients(fn, x, t, baseline=base, steps=2, method="riemann_middle")
    np.testing.assert_allclose(attr, (np.asarray(x) - np.asarray(base)) * wt, rtol=1e-10)
    np.testing.assert_allclose(explain.completeness_gap(fn, x, t, attr, baseline=base), 0, atol=1e-10)


def test_smoothgrad_averages_noisy_gradients(rng):
    # f = Σ x² / 2 has gradient x: SmoothGrad's expectation is x, the noise averages out.
    fn = lambda x: 0.5 * (x**2).sum((1, 2, 3))[:, None]  # noqa: E731
    x = jnp.asarray(rng.uniform(0, 1, size=(1, 4, 4, 1)))
    sg = explain.smoothgrad(fn, x, 0, key=jax.random.key(1), samples=400, sigma=0.1, batch_size=64)
    np.testing.assert_allclose(sg, x, atol=0.03)
    same = explain.smoothgrad(fn, x, 0, key=jax.random.key(1), samples=5, sigma=0.0)
    np.testing.assert_allclose(same, x, rtol=1e-12)


def test_ig_completeness_gap_shrinks_with_steps(net, images):
    _, fn = net
    gaps = [
        float(jnp.abs(explain.integrated_gradients(fn, images, 1, steps=s, return_gap=True)[1]).max())
        for s in (3, 12, 96)
    ]
    diff = np.abs(np.asarray(fn(images)[:, 1] - fn(jnp.zeros_like(images))[:, 1])).max()
    assert gaps[2] < gaps[0]
    assert gaps[2] < 0.05 * diff + 1e-6


@pytest.mark.parametrize("method", explain.IG_METHODS)
def test_ig_quadratures_are_exact_on_a_linear_model(rng, method):
    fn, w = linear_model(rng)
    x = jnp.asarray(rng.normal(size=(1, H, W, C)))
    attr = explain.integrated_gradients(fn, x, 1, steps=5, method=method, batch_size=2)
    np.testing.assert_allclose(attr, np.asarray(x) * w[None, ..., 1], rtol=1e-10)


@pytest.mark.parametrize("method", explain.IG_METHODS)
def test_ig_nodes_and_weights_over_uneven_chunks(rng, method):
    # f = Σ x³ / 3: the path gradient at α is α² x², so IG = x³ Σ_i w_i α_i², known per rule.
    fn = lambda x: (x**3).sum((1, 2, 3))[:, None] / 3  # noqa: E731
    x = jnp.asarray(rng.uniform(0.5, 1.5, size=(1, 3, 2, 1)))
    steps = 7  # chunks of 3: the last holds one real node and two zero-weight repeats
    i = np.arange(steps)
    alphas, weights = {
        "trapezoid": (i / (steps - 1), np.where((i == 0) | (i == steps - 1), 0.5, 1) / (steps - 1)),
        "riemann_left": (i / steps, np.full(steps, 1 / steps)),
        "riemann_right": ((i + 1) / steps, np.full(steps, 1 / steps)),
        "riemann_middle": ((i + 0.5) / steps, np.full(steps, 1 / steps)),
    }[method]
    attr = explain.integrated_gradients(fn, x, 0, steps=steps, method=method, batch_size=3)
    np.testing.assert_allclose(attr, np.asarray(x) ** 3 * (weights * alphas**2).sum(), rtol=1e-12)


def test_smoothgrad_samples_over_uneven_chunks(rng):
    # f = Σ x³ / 3 has gradient x²; sample i's noise is drawn with fold_in(key, i).
    fn = lambda x: (x**3).sum((1, 2, 3))[:, None] / 3  # noqa: E731
    x = jnp.asarray(rng.uniform(-1, 1, size=(2, 3, 2, 1)))
    key, samples, sigma = jax.random.key(4), 5, 0.3
    spread = np.ptp(np.asarray(x).reshape(2, -1), axis=1).reshape(2, 1, 1, 1)
    ref = np.mean([(np.asarray(x) + sigma * spread * np.asarray(
        jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype))) ** 2 for i in range(samples)], 0)
    for batch_size in (1, 2, 5, 64):
        got = explain.smoothgrad(fn, x, 0, key=key, samples=samples, sigma=sigma, batch_size=batch_size)
        np.testing.assert_allclose(got, ref, rtol=1e-12)


def _largest_value(jaxpr) -> int:
    """Elements of the largest intermediate of a (closed) jaxpr, sub-jaxprs (loops) included."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    sizes = [int(np.prod(v.aval.shape)) for eqn in jaxpr.eqns for v in eqn.outvars if hasattr(v.aval, "shape")]
    for eqn in jaxpr.eqns:
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else [param]:
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    sizes.append(_largest_value(sub))
    return max(sizes, default=0)


def test_memory_does_not_grow_with_steps_or_samples(net, images):
    # Traced, not run: the largest array of the computation is a chunk's, not steps' or samples'.
    _, fn = net
    one_chunk = 16 * images.size * 8  # batch_size copies of the images, with headroom
    for n in (64, 2**31 - 1):
        ig = jax.make_jaxpr(lambda x, n=n: explain.integrated_gradients(fn, x, 0, steps=n))(images)
        sg = jax.make_jaxpr(lambda x, n=n: explain.smoothgrad(fn, x, 0, key=jax.random.key(0), samples=n))(images)
        assert _largest_value(ig) <= one_chunk and _largest_value(sg) <= one_chunk, n


def test_gradient_methods_work_under_jit(net, images):
    _, fn = net
    t = jnp.asarray([1, 2])
    sal = jax.jit(lambda x, t: explain.saliency(fn, x, t))(images, t)
    np.testing.assert_allclose(sal, explain.saliency(fn, images, np.array([1, 2])), rtol=1e-6)
    ig = jax.jit(lambda x: explain.integrated_gradients(fn, x, 0, steps=4))(images)
    np.testing.assert_allclose(ig, explain.integrated_gradients(fn, images, 0, steps=4), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- Grad-CAM


def cam_net():
    """body: maps of bright (channel 0) and dark (channel 1) pixels, pooled 2x; head: class
    0 counts bright, class 1 dark."""
    k = jnp.stack([jnp.ones((3, 3)), -jnp.ones((3, 3))], -1).reshape(3, 3, 1, 2) / 9

    def body(x):
        h = jaxconv.conv2d(x, k.astype(x.dtype), padding="SAME", algorithm="direct")
        return jaxconv.max_pool2d(jaxconv.relu(h), 2)

    def head(m):
        return m.sum((1, 2))  # (N, 2)

    return body, head


@pytest.mark.parametrize("method", [explain.grad_cam, explain.grad_cam_plus_plus])
def test_grad_cam_concentrates_on_the_evidence(method):
    x = np.zeros((1, 16, 16, 1))
    x[0, 2:6, 2:6] = 1.0  # bright blob top-left
    x[0, 10:14, 10:14] = -1.0  # dark blob bottom-right
    x = jnp.asarray(x, jnp.float32)
    body, head = cam_net()
    for target, (rows, cols) in ((0, (slice(0, 8), slice(0, 8))), (1, (slice(8, 16), slice(8, 16)))):
        cam = np.asarray(method(body, head, x, target))
        assert cam.shape == (1, 16, 16) and cam.dtype == np.float32
        assert cam.min() >= 0 and cam.max() == pytest.approx(1.0)
        assert cam[0, rows, cols].sum() > 0.9 * cam.sum()


# ----------------------------------------------------------------------------- occlusion


def occlusion_reference(fn, x, t, wh, ww, sh, sw, baseline):
    x = np.asarray(x)
    n, h, w, _ = x.shape
    full = np.asarray(fn(jnp.asarray(x)))[np.arange(n), t]
    rows = sorted(set(range(0, h - wh + 1, sh)) | {h - wh})
    cols = sorted(set(range(0, w - ww + 1, sw)) | {w - ww})
    tot, cnt = np.zeros((n, h, w)), np.zeros((h, w))
    for r in rows:
        for c in cols:
            occ = x.copy()
            occ[:, r:r + wh, c:c + ww] = baseline
            d = full - np.asarray(fn(jnp.asarray(occ)))[np.arange(n), t]
            tot[:, r:r + wh, c:c + ww] += d[:, None, None]
            cnt[r:r + wh, c:c + ww] += 1
    return tot / np.maximum(cnt, 1)  # pixels no window covers (stride > window): 0


def test_occlusion_1x1_is_the_exact_linear_contribution(rng):
    fn, w = linear_model(rng)
    x = jnp.asarray(rng.normal(size=(2, H, W, C)))
    t = np.array([1, 2])
    occ = explain.occlusion(fn, x, t, window=1, stride=1, baseline=0.5, batch_size=7)
    wt = np.stack([w[..., 1], w[..., 2]])
    np.testing.assert_allclose(occ, ((np.asarray(x) - 0.5) * wt).sum(-1), rtol=1e-10, atol=1e-12)


def test_occlusion_matches_a_brute_force_reference(net, images):
    _, fn = net
    got = explain.occlusion(fn, images, np.array([0, 2]), window=(3, 2), stride=(2, 3), baseline=-0.5,
                            batch_size=4)
    want = occlusion_reference(fn, images, np.array([0, 2]), 3, 2, 2, 3, -0.5)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- guided / deconvnet


def test_guided_backprop_and_deconvnet_known_answers():
    # x (1, 2, 2, 1) -> 2x2 conv to 3 units (one position) -> act -> dense v -> 1 logit.
    kern = np.array([[1.0, -1.0, 0.5], [2.0, 1.0, -1.0], [-1.0, 0.5, 1.0], [0.5, 1.0, 1.0]])
    v = np.array([1.0, -2.0, 3.0])
    x = jnp.asarray(np.array([0.0, 1.0, -1.0, 0.0]).reshape(1, 2, 2, 1))

    def fn(z, activation=jaxconv.relu):
        h = jaxconv.conv2d(z, jnp.asarray(kern.reshape(2, 2, 1, 3)), algorithm="direct")
        return activation(h).reshape(1, 3) @ jnp.asarray(v).reshape(3, 1)

    pre = np.array([0.0, 1.0, -1.0, 0.0]) @ kern  # (3,) pre-activations: [3, 0.5, -2]
    mask = pre > 0
    assert mask.tolist() == [True, True, False]  # mixed signs: every rule differs
    expect = {
        "gradient": kern @ (v * mask),
        "guided": kern @ (np.maximum(v, 0) * mask),
        "deconvnet": kern @ np.maximum(v, 0),
    }
    got = {
        "gradient": explain.saliency(fn, x, 0),
        "guided": explain.guided_backprop(fn, x, 0),
        "deconvnet": explain.deconvnet(fn, x, 0),
    }
    for name in expect:
        np.testing.assert_allclose(np.asarray(got[name]).ravel(), expect[name], rtol=1e-12, err_msg=name)
    # the forward pass is unchanged
    np.testing.assert_allclose(fn(x, explain.guided_relu), fn(x))
    np.testing.assert_allclose(fn(x, explain.deconv_relu), fn(x))


def test_deconvnet_through_max_pool_uses_the_switches():
    x = jnp.asarray(np.array([[0.1, 0.9], [0.3, -0.2]]).reshape(1, 2, 2, 1))

    def fn(z, activation):
        return activation(jaxconv.max_pool2d(z, 2)).reshape(1, 1) * -1.0

    np.testing.assert_allclose(explain.deconvnet(fn, x, 0)[0, ..., 0], 0)  # relu(-1) = 0
    fn2 = lambda z, activation: activation(jaxconv.max_pool2d(-z, 2)).reshape(1, 1)  # noqa: E731
    # max of -x is at x = -0.2 (position (1, 1)); pre-activation 0.2 > 0, gradient -1 there.
    np.testing.assert_allclose(np.asarray(explain.saliency(lambda z: fn2(z, jaxconv.relu), x, 0))[0, ..., 0],
                               [[0, 0], [0, -1]])
    np.testing.assert_allclose(np.asarray(explain.deconvnet(fn2, x, 0))[0, ..., 0], [[0, 0], [0, -1]])


def test_lenet_takes_its_activation():
    from jaxconv.models import LeNet5

    model = LeNet5(rngs=0, algorithm="direct")
    x = jnp.asarray(np.random.default_rng(0).uniform(-0.1, 1.175, size=(1, 32, 32, 1)), jnp.float32)
    np.testing.assert_array_equal(model(x, activation=explain.guided_relu), model(x))
    feats = model.features(x, activation=explain.deconv_relu)
    np.testing.assert_array_equal(feats["fc3"], model(x))
    fn = lambda z, activation: model(z, activation=activation)  # noqa: E731
    g = explain.guided_backprop(fn, x, 3)
    assert g.shape == x.shape and np.isfinite(g).all()
    with pytest.raises(TypeError, match="LeNet5: activation must be a callable"):
        model(x, activation=3)


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_attributions_are_finite_and_keep_the_dtype(net, images, dtype):
    _, fn = net
    x = images.astype(dtype)
    key = jax.random.key(0)
    body, head = cam_net()
    outs = {
        "saliency": explain.saliency(fn, x, 0),
        "smoothgrad": explain.smoothgrad(fn, x, 0, key=key, samples=2),
        "ig": explain.integrated_gradients(fn, x, 0, steps=2),
        "occlusion": explain.occlusion(fn, x, 0, window=4, stride=4),
        "guided": explain.guided_backprop(fn, x, 0),
        "deconvnet": explain.deconvnet(fn, x, 0),
        "grad_cam": explain.grad_cam(body, head, x, 0),
        "grad_cam_pp": explain.grad_cam_plus_plus(body, head, x, 0),
    }
    for name, a in outs.items():
        assert a.dtype == dtype, name
        assert np.isfinite(np.asarray(a, np.float32)).all(), name


# ----------------------------------------------------------------------------- feature viz


def test_feature_visualization_finds_the_template():
    template = np.where(np.arange(8)[None, :] < 4, 1.0, -1.0) * np.ones((8, 1))
    tw = jnp.asarray(template.reshape(1, 8, 8, 1), jnp.float32)

    def fn(x):  # 2 units: the template and its negative
        s = (x * tw).mean((1, 2, 3))
        return jnp.stack([s, -s], -1)

    img, hist = explain.feature_visualization(
        fn, (2, 8, 8, 1), key=jax.random.key(0), channel=np.array([0, 1]), steps=60,
        learning_rate=0.1, jitter=1, return_history=True,
    )
    assert hist.shape == (60, 2)
    acts = np.asarray(fn(img))
    assert acts[0, 0] > 0.25 and acts[1, 1] > 0.25  # from ~0 at the start (mean grey image)
    img = np.asarray(img)
    assert img.shape == (2, 8, 8, 1) and img.min() >= 0 and img.max() <= 1
    assert img[0, :, :4].mean() > img[0, :, 4:].mean() + 0.2  # unit 0: bright left
    assert img[1, :, :4].mean() < img[1, :, 4:].mean() - 0.2  # unit 1: bright right
    pix = explain.feature_visualization(
        lambda x: jaxconv.conv2d(x, jnp.ones((3, 3, 3, 2), x.dtype), algorithm="direct"),
        (1, 8, 8, 3), key=jax.random.key(1), steps=5, parametrization="pixel", blur=0.5,
    )
    four = explain.feature_visualization(
        lambda x: x, (1, 8, 8, 3), key=jax.random.key(1), steps=5, channel=2, l2=0.1,
    )
    assert pix.shape == four.shape == (1, 8, 8, 3)
    assert np.isfinite(pix).all() and np.isfinite(four).all()
    for shape in ((1, 8, 8, 3), (1, 512, 512, 1)):  # the steepest decay allowed stays finite
        steep = explain.feature_visualization(lambda x: x.mean((1, 2)), shape, key=jax.random.key(2),
                                              steps=2, decay=explain.featvis.MAX_DECAY)
        assert np.isfinite(steep).all()


# ----------------------------------------------------------------------------- sanity checks


def test_rank_correlation_matches_scipy(rng):
    from scipy import stats

    a = rng.integers(0, 5, size=40).astype(float)  # ties
    b = a + rng.normal(size=40)
    assert explain.rank_correlation(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert explain.rank_correlation(a, a) == pytest.approx(1.0)
    assert np.isnan(explain.rank_correlation(np.ones(4), np.arange(4)))


def test_model_parameter_randomization(net, images, rng):
    params, _ = net
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    params["unused"] = jnp.asarray(rng.normal(size=(5,)), jnp.float32)  # not read by conv_net

    def attribute(p):
        return explain.saliency(lambda x: conv_net(p, x), images, 0)

    ref = np.asarray(attribute(params))
    assert explain.rank_correlation(np.abs(ref[0]), np.abs(np.asarray(attribute(params))[0])) == 1.0
    cascade = explain.model_parameter_randomization(
        attribute, params, ["dense", "conv"], key=jax.random.key(0)
    )
    same = explain.model_parameter_randomization(attribute, params, ["unused"], key=jax.random.key(0))
    assert same == {"unused": 1.0}  # the attributions did not change: perfect rank agreement
    assert list(cascade) == ["dense", "conv"]
    assert all(r < 0.6 for r in cascade.values()), cascade
    indep = explain.model_parameter_randomization(
        attribute, params, ["conv"], key=jax.random.key(0), cascading=False, absolute=False
    )
    assert indep["conv"] < 0.6


# ----------------------------------------------------------------------------- errors


def _errors(fn, images):
    body, head = cam_net()
    key = jax.random.key(0)
    return [
        (lambda: explain.saliency(3, images, 0), TypeError, "saliency: fn must be callable"),
        (lambda: explain.saliency(fn, np.ones((8, 8, 1)), 0), ValueError,
         r"saliency: x must be NHWC images .* got shape \(8, 8, 1\)"),
        (lambda: explain.saliency(fn, np.ones((1, 8, 8, 1), np.int32), 0), TypeError,
         "saliency: x must have a floating dtype"),
        (lambda: explain.saliency(fn, images, 3), ValueError, r"saliency: target must be in \[0, 3\).*got 3"),
        (lambda: explain.saliency(fn, images, -1), ValueError, r"saliency: target must be in \[0, 3\)"),
        (lambda: explain.saliency(fn, images, [0, 1, 2]), ValueError,
         r"saliency: target must have shape \(N,\) = \(2,\), got shape \(3,\)"),
        (lambda: explain.saliency(fn, images, 1.5), TypeError, "saliency: target must be an int"),
        (lambda: explain.saliency(lambda x: x, images, 0), ValueError,
         r"saliency: fn\(x\) must return logits of shape \(N, K\)"),
        (lambda: explain.smoothgrad(fn, images, 0, key=0), TypeError, "smoothgrad: key must be a PRNG key"),
        (lambda: explain.smoothgrad(fn, images, 0, key=key, samples=0), ValueError,
         "smoothgrad: samples must be an int >= 1, got 0"),
        (lambda: explain.smoothgrad(fn, images, 0, key=key, sigma=-0.1), ValueError,
         "smoothgrad: sigma must be a finite real number >= 0, got -0.1"),
        (lambda: explain.smoothgrad(fn, images, 0, key=key, batch_size=2.0), TypeError,
         "smoothgrad: batch_size must be an int"),
        (lambda: explain.integrated_gradients(fn, images, 0, steps=1), ValueError,
         "integrated_gradients: steps must be an int >= 2, got 1"),
        (lambda: explain.integrated_gradients(fn, images, 0, steps=2**31), ValueError,
         "integrated_gradients: steps must be an int <= 2147483647, got 2147483648"),
        (lambda: explain.smoothgrad(fn, images, 0, key=key, samples=2**31), ValueError,
         "smoothgrad: samples must be an int <= 2147483647, got 2147483648"),
        (lambda: explain.integrated_gradients(fn, images, 0, method="simpson"), ValueError,
         "integrated_gradients: method must be one of 'trapezoid'.*got 'simpson'"),
        (lambda: explain.integrated_gradients(fn, images, 0, baseline=np.ones((3, 3))), ValueError,
         r"integrated_gradients: baseline must be broadcastable to x's shape \(2, 8, 8, 1\), got shape \(3, 3\)"),
        (lambda: explain.integrated_gradients(fn, images, 0, return_gap=1), TypeError,
         "integrated_gradients: return_gap must be a bool"),
        (lambda: explain.completeness_gap(fn, images, 0, images[:1]), ValueError,
         "completeness_gap: attributions must have x's shape"),
        (lambda: explain.grad_cam(body, 3, images, 0), TypeError, "grad_cam: head must be callable"),
        (lambda: explain.grad_cam(lambda x: x[..., 0], head, images, 0), ValueError,
         r"grad_cam: body\(x\) must return NHWC feature maps"),
        (lambda: explain.grad_cam_plus_plus(body, head, images, 2), ValueError,
         r"grad_cam_plus_plus: target must be in \[0, 2\)"),
        (lambda: explain.occlusion(fn, images, 0, window=0), ValueError,
         "occlusion: window must be a positive int or pair, got 0"),
        (lambda: explain.occlusion(fn, images, 0, window="a"), TypeError, "occlusion: window must be"),
        (lambda: explain.occlusion(fn, images, 0, stride=(1, 0)), ValueError,
         r"occlusion: stride must be a positive int or pair, got \(1, 0\)"),
        (lambda: explain.occlusion(fn, images, 0, window=9), ValueError,
         r"occlusion: window must fit in the image \(8x8\), got \(9, 9\)"),
        (lambda: explain.guided_backprop(fn, images, 5), ValueError, r"guided_backprop: target must be in \[0, 3\)"),
        (lambda: explain.deconvnet(None, images, 0), TypeError, "deconvnet: fn must be callable"),
        (lambda: explain.feature_visualization(fn, (1, 8, 8), key=key), TypeError,
         r"feature_visualization: shape must be a tuple \(N, H, W, C\)"),
        (lambda: explain.feature_visualization(fn, (1, 8, 8, 1), key=key, steps=0), ValueError,
         "feature_visualization: steps must be an int >= 1, got 0"),
        (lambda: explain.feature_visualization(fn, (1, 8, 8, 1), key=key, parametrization="cppn"),
         ValueError, "feature_visualization: parametrization must be one of 'fourier', 'pixel'"),
        (lambda: explain.feature_visualization(fn, (1, 8, 8, 1), key=key, scale=(1.2, 1.0)), ValueError,
         r"feature_visualization: scale must satisfy 0 < low <= high, got \(1.2, 1.0\)"),
        (lambda: explain.feature_visualization(fn, (1, 8, 8, 1), key=key, decay=1e308), ValueError,
         r"feature_visualization: decay must be a real number in \[0, 4\] .*got 1e\+308"),
        (lambda: explain.feature_visualization(fn, (1, 8, 8, 1), key=key, blur=1.0), ValueError,
         "feature_visualization: blur > 0 needs parametrization='pixel'"),
        (lambda: explain.feature_visualization(fn, (1, 8, 8, 1), key=key, channel=3), ValueError,
         r"feature_visualization: channel must be in \[0, 3\) \(the model has 3 outputs\), got 3"),
        (lambda: explain.rank_correlation([1, 2], [1, 2, 3]), ValueError,
         "rank_correlation: a and b must have the same number of elements"),
        (lambda: explain.rank_correlation(["a", "b"], [1, 2]), TypeError,
         "rank_correlation: a must be a real-valued array"),
        (lambda: explain.model_parameter_randomization(lambda p: p, {"a": jnp.ones(3)}, ["b"], key=key),
         ValueError, r"model_parameter_randomization: layers must be top-level names of params \['a'\], got 'b'"),
        (lambda: explain.model_parameter_randomization(lambda p: p, {"a": jnp.ones(3)}, "a", key=key),
         TypeError, "model_parameter_randomization: layers must be a non-empty sequence"),
    ]


def test_bad_arguments_raise_with_a_matching_message(net, images):
    _, fn = net
    for call, exc, match in _errors(fn, images):
        with pytest.raises(exc, match=match):
            call()


# ----------------------------------------------------------------------------- viz


def test_plot_attribution(rng):
    from matplotlib.colorbar import Colorbar

    from jaxconv import viz

    out = viz.plot_attribution(rng.uniform(size=(8, 8, 1)), rng.normal(size=(1, 8, 8, 1)))
    assert isinstance(out["colorbar"], Colorbar)
    lo, hi = out["overlay"].get_clim()
    assert lo == -hi  # signed: symmetric limits
    out = viz.plot_attribution(rng.uniform(size=(8, 8, 3)), rng.uniform(size=(8, 8)), colorbar=False,
                               cmap="magma", alpha=0.3)
    assert out["colorbar"] is None and out["overlay"].get_alpha() == 0.3
    with pytest.raises(ValueError, match="plot_attribution: attribution must have the image's height"):
        viz.plot_attribution(np.zeros((8, 8)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"plot_attribution: alpha must be a number in \[0, 1\], got 2"):
        viz.plot_attribution(np.zeros((8, 8)), np.zeros((8, 8)), alpha=2)


# ----------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from PIL import Image

    from jaxconv.models import LeNet5, save_checkpoint

    d = tmp_path_factory.mktemp("explain-cli")
    ckpt = save_checkpoint(d / "ckpt.msgpack", LeNet5(rngs=0))
    img = np.full((40, 30), 255, np.uint8)
    img[10:30, 12:16] = 0  # a dark "1" on white paper
    Image.fromarray(img).save(d / "digit.png")
    return d, ckpt


@pytest.mark.parametrize("method", ["gradcam", "ig"])
def test_cli_writes_a_png(checkpoint, method, capsys):
    from jaxconv import cli

    d, ckpt = checkpoint
    out = d / f"{method}.png"
    rc = cli.main(["explain", str(d / "digit.png"), "--checkpoint", str(ckpt), "--method", method,
                   "--target", "1", "--out", str(out), "--steps", "8"])
    assert rc == 0, capsys.readouterr().err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(d.glob(".*.part"))  # the temporary file was renamed


def test_cli_bad_input_is_one_line_exit_2_for_flags_1_for_files(checkpoint, capsys):
    from jaxconv.cli.explain import main

    d, ckpt = checkpoint
    img = str(d / "digit.png")
    cases = [  # (argv, status, message): 2 a bad flag, 1 a file that cannot be used
        ([str(d / "missing.png"), "--checkpoint", str(ckpt)], 1, "no such file"),
        ([img, "--checkpoint", str(d / "missing.msgpack")], 1, "no such checkpoint"),
        ([img, "--checkpoint", img], 1, "not a readable checkpoint"),
        ([img, "--checkpoint", str(ckpt), "--target", "10"], 2, r"--target must be in \[0, 10\), got 10"),
        ([img, "--checkpoint", str(ckpt), "--window", "0"], 2, "--window must be >= 1, got 0"),
        ([img, "--checkpoint", str(ckpt), "--method", "occlusion", "--window", "40"], 2,
         "occlusion: window must fit in the image"),
        ([img, "--checkpoint", str(ckpt), "--method", "gradcam", "--layer", "fc1"], 2,
         "--layer must be one of"),
    ]
    for argv, status, match in cases:
        rc = main([*argv, "--out", str(d / "bad.png")])
        err = capsys.readouterr().err
        assert rc == status, (argv, err)
        assert err.count("\n") == 1 and err.startswith("jaxconv explain: "), err
        assert __import__("re").search(match, err), err
    assert main([img, "--checkpoint", str(ckpt), "--out", str(d / "no" / "x.png")]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert main([img, "--checkpoint", str(ckpt), "--out", str(d / "x.bmp")]) == 2
    assert "unsupported image format" in capsys.readouterr().err
    assert main([img, "--checkpoint", str(ckpt), "--method", "nope", "--out", "x.png"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'nope'" in err, err
    assert not (d / "bad.png").exists()


def test_cli_refuses_a_read_only_out_like_show(checkpoint, capsys):
    from jaxconv import cli

    d, ckpt = checkpoint
    out = d / "ro.png"
    out.write_bytes(b"keep")
    out.chmod(0o444)
    rc = cli.main(["explain", str(d / "digit.png"), "--checkpoint", str(ckpt), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and err == f"jaxconv explain: --out: cannot write {str(out)!r}: the file is read-only\n"
    assert out.read_bytes() == b"keep" and stat.S_IMODE(out.stat().st_mode) == 0o444


def test_cli_nan_checkpoint_is_an_error_not_a_plot(checkpoint, capsys):
    from flax import nnx

    from jaxconv import cli
    from jaxconv.models import load_checkpoint, save_checkpoint

    d, ckpt = checkpoint
    model, _ = load_checkpoint(ckpt)
    state = nnx.state(model, nnx.Param)
    nnx.update(model, jax.tree.map(lambda a: jnp.full_like(a, jnp.nan), state))
    nan_ckpt = save_checkpoint(d / "nan.msgpack", model)
    out = d / "nan.png"
    rc = cli.main(["explain", str(d / "digit.png"), "--checkpoint", str(nan_ckpt), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1, err
    assert f"the checkpoint {str(nan_ckpt)!r} gives 10 non-finite outputs (of 10)" in err
    assert not out.exists()


# ----------------------------------------------------------------------------- packaging


def test_import_is_light():
    code = (
        "import sys, jaxconv, jaxconv.explain as e; "
        "assert jaxconv.explain is e; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('flax', 'matplotlib', 'scipy', 'optax')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
