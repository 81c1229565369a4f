"""The CIFAR-style ResNet and MobileNetV2 (Flax NNX, BatchNorm): structure, parameter counts,
agreement with plain Flax and with the same networks in PyTorch, BatchNorm modes, training."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

flax = pytest.importorskip("flax")
optax = pytest.importorskip("optax")
from flax import nnx  # noqa: E402
from jax import lax  # noqa: E402

from jaxconv.models import (  # noqa: E402
    MobileNetV2,
    ResNet,
    flax_hook,
    use_jaxconv,
)
from jaxconv.models.mobilenet import make_divisible  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Tiny networks: every layer of the real ones, few channels, 16x16 images.
TINY = {
    "resnet18": lambda **kw: ResNet.resnet18(width=4, **kw),
    "mobilenetv2": lambda **kw: MobileNetV2(width=0.1, **kw),
}


def _torch_models():
    pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch_models

    return torch_models


def _convs(model):
    return [m for _, m in nnx.iter_graph(model) if isinstance(m, nnx.Conv)]


@nnx.jit
def _forward(model, x):
    """One compilation for the whole network (eager, every layer compiles on its own)."""
    return model(x)


def _plain_flax(model):
    """The same network (a copy) with every convolution back on ``lax.conv_general_dilated``."""
    return use_jaxconv(nnx.clone(model), algorithm=None)


@pytest.fixture
def images(rng):
    return rng.standard_normal((2, 16, 16, 3)).astype(np.float32)


# ------------------------------------------------------------------------ parameter counts


def _resnet_count(stage_sizes, width=64, classes=10, cin=3):
    """By hand: k*k*cin*cout per conv, 2 per BatchNorm channel (scale, bias), the dense layer."""
    total = 9 * cin * width + 2 * width
    c = width
    for stage, n in enumerate(stage_sizes):
        out = width * 2**stage
        for _ in range(n):
            total += 9 * c * out + 2 * out + 9 * out * out + 2 * out
            if out != c:
                total += c * out + 2 * out  # the 1x1 shortcut + BN
            c = out
    return total + c * classes + classes


def test_resnet_parameter_counts():
    r18 = nnx.eval_shape(lambda: ResNet.resnet18(rngs=0))  # shapes only: nothing computed
    assert sum(r18.param_counts().values()) == 11_173_962 == _resnet_count((2, 2, 2, 2))
    assert r18.param_counts()["stem"] == 9 * 3 * 64 + 2 * 64 and r18.param_counts()["fc"] == 5130
    r34 = nnx.eval_shape(lambda: ResNet.resnet34(100, rngs=0))
    assert sum(r34.param_counts().values()) == _resnet_count((3, 4, 6, 3), classes=100)
    # BatchNorm's running statistics are state, not parameters
    stats = jax.tree.leaves(nnx.state(r18, nnx.BatchStat))
    assert sum(s.size for s in stats) == 2 * (64 + 4 * 64 + 4 * 128 + 4 * 256 + 4 * 512 + 128 + 256 + 512)


def test_mobilenet_parameter_count_is_torchvisions():
    m = nnx.eval_shape(lambda: MobileNetV2(rngs=0))
    # torchvision's mobilenet_v2(): 3,504,872 parameters with 1000 classes; strides change none.
    assert sum(m.param_counts().values()) == 3_504_872 - (1280 * 1000 + 1000) + (1280 * 10 + 10)


@pytest.mark.parametrize(("name", "kwargs"), [
    ("resnet", {"stage_sizes": (2, 2, 2, 2)}), ("resnet", {"stage_sizes": (3, 4, 6, 3), "width": 8}),
    ("mobilenet", {"width": 1.0}), ("mobilenet", {"width": 0.35}), ("mobilenet", {"width": 1.4}),
])
def test_parameter_counts_equal_pytorchs(name, kwargs):
    tm = _torch_models()
    if name == "resnet":
        flax_model = nnx.eval_shape(lambda: ResNet(kwargs["stage_sizes"], 10, width=kwargs.get("width", 64), rngs=0))
        torch_model = tm.ResNet(kwargs["stage_sizes"], 10, kwargs.get("width", 64))
    else:
        flax_model = nnx.eval_shape(lambda: MobileNetV2(10, width=kwargs["width"], rngs=0))
        torch_model = tm.MobileNetV2(10, kwargs["width"])
    assert sum(flax_model.param_counts().values()) == sum(p.numel() for p in torch_model.parameters())


def test_make_divisible_known_answers():
    # the width-multiplier rule: nearest multiple of 8, at least 8, never 10% below
    assert [make_divisible(v) for v in (32, 16 * 0.35, 24 * 0.35, 32 * 0.35, 1280 * 1.4, 3.0, 90 * 0.5)] == [
        32, 8, 8, 16, 1792, 8, 48]
    assert make_divisible(27) == 32 and make_divisible(20) == 24  # 20 -> 24: ties round up


def test_mobilenet_structure():
    m = MobileNetV2(width=0.5, rngs=0)
    assert len(m.blocks) == 17 and m.blocks[0].expand is None
    assert [b.depthwise.conv.strides for b in m.blocks if b.depthwise.conv.strides != 1] == [2, 2, 2]
    assert [i for i, b in enumerate(m.blocks) if b.residual] == [2, 4, 5, 7, 8, 9, 11, 12, 14, 15]
    dw = m.blocks[3].depthwise.conv
    assert dw.feature_group_count == dw.in_features == dw.out_features == 6 * 16
    assert m.stem.conv.out_features == 16 and m.head.conv.out_features == 1280


# ------------------------------------------------------------------ outputs and references


@pytest.mark.parametrize("name", list(TINY))
def test_shapes_batched_unbatched_and_empty(name, images):
    model = TINY[name](algorithm="direct", rngs=0)
    model.eval()  # one image alone has no batch statistics worth using
    y = _forward(model, images)
    assert y.shape == (2, 10) and y.dtype == jnp.float32
    np.testing.assert_allclose(_forward(model, images[1]), y[1], rtol=1e-4, atol=1e-5)
    assert model(np.zeros((0, 16, 16, 3), np.float32)).shape == (0, 10)
    # any image size (global pooling); shapes only, nothing computed
    assert nnx.eval_shape(lambda m: m(jnp.zeros((1, 7, 9, 3))), model).shape == (1, 10)


@pytest.mark.parametrize("name", list(TINY))
def test_jaxconv_model_equals_plain_flax(name, images):
    """The hook is the only difference: lax's convolutions give the same logits, both modes."""
    model = TINY[name](algorithm="direct", rngs=0)
    plain = _plain_flax(model)
    assert all(c.conv_general_dilated == flax_hook.JaxconvHook("direct") for c in _convs(model))
    assert all(c.conv_general_dilated is lax.conv_general_dilated for c in _convs(plain))
    np.testing.assert_allclose(_forward(model, images), _forward(plain, images), rtol=1e-4, atol=1e-4)
    model.eval()
    plain.eval()
    np.testing.assert_allclose(_forward(model, images), _forward(plain, images), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list(TINY))
def test_outputs_equal_the_pytorch_network(name, rng):
    """The same weights in the PyTorch network written from the papers: same logits."""
    torch = pytest.importorskip("torch")

    tm = _torch_models()
    model = TINY[name](rngs=1)
    model.eval()
    # running statistics away from (0, 1), so that the copy of them is checked too
    for _, bn in nnx.iter_graph(model):
        if isinstance(bn, nnx.BatchNorm):
            bn.mean[...] = jnp.asarray(rng.normal(0, 0.1, bn.mean.shape), jnp.float32)
            bn.var[...] = jnp.asarray(rng.uniform(0.5, 2, bn.var.shape), jnp.float32)
    reference = tm.ResNet(width=4) if name == "resnet18" else tm.MobileNetV2(width=0.1)
    tm.load_flax_state(reference, model).eval()
    x = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)
    with torch.no_grad():
        want = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(_forward(model, x), want, rtol=1e-4, atol=1e-4)


def test_algorithm_reaches_every_conv():
    for model in (ResNet.resnet18(width=2, algorithm="im2col", rngs=0),
                  MobileNetV2(width=0.1, algorithm="direct", rngs=0)):
        convs = _convs(model)
        assert len(convs) == (20 if isinstance(model, ResNet) else 52)
        assert {c.conv_general_dilated for c in convs} == {flax_hook.JaxconvHook(model.algorithm)}


def test_the_hook_gets_each_layers_configuration(monkeypatch, images):
    seen = []
    real = flax_hook.conv_general_dilated

    def spy(lhs, rhs, window_strides, padding, **kw):
        seen.append((rhs.shape, tuple(window_strides), tuple(map(tuple, padding)), kw))
        return real(lhs, rhs, window_strides, padding, **kw)

    monkeypatch.setattr(flax_hook, "conv_general_dilated", spy)
    nnx.eval_shape(lambda m: m(images), MobileNetV2(width=0.1, algorithm="direct", rngs=0))
    assert len(seen) == 52 and all(kw["algorithm"] == "direct" for *_, kw in seen)
    depthwise = [(s, kw) for shape, s, _, kw in seen if shape[2] == 1 and kw["feature_group_count"] > 1]
    assert len(depthwise) == 17 and {s for s, _ in depthwise} == {(1, 1), (2, 2)}
    assert all(pad == ((1, 1), (1, 1)) for shape, _, pad, _ in seen if shape[0] == 3)
    assert all(pad == ((0, 0), (0, 0)) for shape, _, pad, _ in seen if shape[0] == 1)


# ------------------------------------------------------------------------------- BatchNorm


def test_batchnorm_train_uses_the_batch_eval_the_running_averages(images):
    model = ResNet.resnet18(width=2, algorithm="direct", rngs=0)
    bn = model.stem.bn
    other = np.concatenate([images[:1], 3 * images[1:] + 1])
    # training mode: an image's logits depend on the rest of the batch; statistics move
    assert not np.allclose(model(images)[0], model(other)[0], atol=1e-5)
    assert float(jnp.abs(bn.mean[...]).max()) > 0
    before = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    model.eval()
    np.testing.assert_allclose(model(images)[0], model(other)[0], rtol=1e-5, atol=1e-6)
    after = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), before, after))


def test_batchnorm_running_average_is_pytorchs():
    """momentum 0.1 in PyTorch's sense: running = 0.9 running + 0.1 batch (unbiased variance)."""
    model = ResNet.resnet18(width=2, algorithm="direct", rngs=0)
    x = np.random.default_rng(3).standard_normal((4, 8, 8, 3)).astype(np.float32)
    y = np.asarray(model.stem.conv(x), np.float64).reshape(-1, 2)
    model(x)
    np.testing.assert_allclose(model.stem.bn.mean[...], 0.1 * y.mean(0), rtol=1e-4, atol=1e-6)
    # Flax keeps the biased batch variance (PyTorch the unbiased): 0.9 + 0.1 var
    np.testing.assert_allclose(model.stem.bn.var[...], 0.9 + 0.1 * y.var(0), rtol=1e-4)


# -------------------------------------------------------------------------------- training


@pytest.mark.parametrize("name", list(TINY))
def test_a_gradient_step_lowers_the_loss(name, images):
    # auto on one network, a fixed algorithm on the other: each compiles once
    model = TINY[name](algorithm="auto" if name == "resnet18" else "direct", rngs=0)
    labels = jnp.array([3, 7], jnp.int32)
    opt = nnx.Optimizer(model, optax.sgd(0.05, momentum=0.9), wrt=nnx.Param)

    def loss_fn(m):
        return optax.softmax_cross_entropy_with_integer_labels(m(images), labels).mean()

    @nnx.jit
    def step(m, opt):
        loss, grads = nnx.value_and_grad(loss_fn)(m)
        opt.update(m, grads)
        return loss

    losses = [float(step(model, opt)) for _ in range(3)]
    assert losses[-1] < losses[0], losses


# ---------------------------------------------------------------------------------- errors


def test_bad_constructor_arguments():
    with pytest.raises(TypeError, match=r"ResNet: stage_sizes must be a sequence of four ints, got \(2, 2\)"):
        ResNet((2, 2))
    with pytest.raises(ValueError, match=r"ResNet: stage_sizes must be >= 1, got 0"):
        ResNet((2, 0, 2, 2))
    with pytest.raises(TypeError, match=r"ResNet: num_classes must be an int, got 2.5"):
        ResNet.resnet18(2.5)
    with pytest.raises(ValueError, match=r"ResNet: width must be >= 1, got 0"):
        ResNet.resnet34(width=0)
    with pytest.raises(ValueError, match=r"ResNet: algorithm must be 'auto' or one of 'direct'.*got 'magic'"):
        ResNet.resnet18(algorithm="magic")
    with pytest.raises(TypeError, match=r"ResNet: rngs must be an nnx.Rngs, an int seed or a PRNG key, got 'x'"):
        ResNet.resnet18(rngs="x")
    with pytest.raises(TypeError, match=r"MobileNetV2: width must be a number, got '1'"):
        MobileNetV2(width="1")
    with pytest.raises(ValueError, match=r"MobileNetV2: width must be > 0, got -0.5"):
        MobileNetV2(width=-0.5)
    with pytest.raises(ValueError, match=r"MobileNetV2: in_channels must be >= 1, got 0"):
        MobileNetV2(in_channels=0)


@pytest.mark.parametrize("shape", [(2, 16, 16, 1), (2, 3, 16, 16), (16, 16), (1, 2, 16, 16, 3), (2, 0, 16, 3)])
def test_wrong_input_shape_is_the_models_error(shape):
    model = ResNet.resnet18(width=2, rngs=0)
    with pytest.raises(ValueError, match=r"^ResNet: x must be NHWC images of shape \(N, H, W, 3\) "
                                         r"\(or one image \(H, W, 3\)\), got shape " + re_shape(shape)):
        model(np.zeros(shape, np.float32))
    with pytest.raises(TypeError, match=r"MobileNetV2: x must be a real-valued image batch, got dtype complex64"):
        MobileNetV2(width=0.1, rngs=0)(np.zeros((1, 8, 8, 3), np.complex64))


def re_shape(shape) -> str:
    import re

    return re.escape(str(tuple(shape)))
