"""conv2d rejects every bad argument before tracing, with a message naming the function, the
argument, the rule and the values received."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv
from jaxconv.convolution import _registry

X = jnp.zeros((2, 5, 6, 3), jnp.float32)  # NHWC, C=3
K = jnp.zeros((3, 3, 3, 4), jnp.float32)  # HWIO, O=4


def raises(exc, *fragments):
    """``pytest.raises`` matching every literal fragment, in order, in the message."""
    return pytest.raises(exc, match=".*".join(map(re.escape, ("conv2d: ", *fragments))))


@pytest.mark.parametrize(
    ("x", "kernel", "fragments"),
    [
        (jnp.zeros((5, 6), jnp.float32), K, ("x must have rank 4 (NHWC) or 3", "got rank 2",
                                             "(5, 6)")),
        (jnp.zeros((1, 2, 5, 6, 3), jnp.float32), K, ("x must have rank 4", "got rank 5")),
        (X, jnp.zeros((3, 3, 3), jnp.float32), ("kernel must have rank 4", "HWIO",
                                               "got rank 3", "(3, 3, 3)")),
    ],
)
def test_wrong_rank(x, kernel, fragments):
    with raises(ValueError, *fragments):
        jaxconv.conv2d(x, kernel)


def test_channel_mismatch():
    with raises(ValueError, "kernel expects 3 input channels (x has C=3, groups=1) but "
                "kernel.shape[2] is 4"):
        jaxconv.conv2d(X, jnp.zeros((3, 3, 4, 4), jnp.float32))
    # NCHW: C is axis 1
    with raises(ValueError, "kernel expects 5 input channels (x has C=5, groups=1) but "
                "kernel.shape[2] is 3"):
        jaxconv.conv2d(jnp.zeros((1, 5, 6, 3), jnp.float32), K, data_format="NCHW")


def test_groups():
    with raises(ValueError, "groups=2 must divide the input channels C=3"):
        jaxconv.conv2d(X, jnp.zeros((3, 3, 1, 4), jnp.float32), groups=2)
    x4 = jnp.zeros((1, 5, 5, 4), jnp.float32)
    with raises(ValueError, "groups=2 must divide the output channels O=3"):
        jaxconv.conv2d(x4, jnp.zeros((3, 3, 2, 3), jnp.float32), groups=2)
    with raises(ValueError, "kernel expects 2 input channels (x has C=4, groups=2) but "
                "kernel.shape[2] is 4"):
        jaxconv.conv2d(x4, jnp.zeros((3, 3, 4, 2), jnp.float32), groups=2)
    with raises(ValueError, "groups must be >= 1, got 0"):
        jaxconv.conv2d(X, K, groups=0)
    with raises(TypeError, "groups must be an int, got 1.5"):
        jaxconv.conv2d(X, K, groups=1.5)
    with raises(TypeError, "groups must be an int, got True"):
        jaxconv.conv2d(X, K, groups=True)


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        # 3x3 kernel dilated by 3 spans 7 > 5 rows
        (dict(dilation=3), ("kernel (effective size 7x7 from kernel 3x3, dilation (3, 3))",
                            "larger than the padded input 5x6", "output would be empty")),
        # padding makes it fit in width but not in height
        (dict(dilation=(3, 1), padding=((0, 1), (0, 0))),
         ("effective size 7x3", "padded input 6x6")),
    ],
)
def test_kernel_larger_than_padded_input(kwargs, fragments):
    with raises(ValueError, *fragments):
        jaxconv.conv2d(X, K, **kwargs)
    # ... and it fits once padded enough: never a silent empty output
    big = dict(kwargs, padding=3)
    assert jaxconv.conv2d(X, K, **big).shape[1] >= 1


def test_kernel_must_be_non_empty():
    with raises(ValueError, "kernel must be non-empty", "(0, 3, 3, 4)"):
        jaxconv.conv2d(X, jnp.zeros((0, 3, 3, 4), jnp.float32))


@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize("value", [0, -1, (1, 0), (-2, 2)])
def test_stride_and_dilation_positive(name, value):
    with raises(ValueError, f"{name} must be >= 1, got {value!r}"):
        jaxconv.conv2d(X, K, **{name: value})


@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize("value", [1.0, (1, 2, 3), "2", (1, None), True])
def test_stride_and_dilation_kinds(name, value):
    with raises(TypeError, f"{name} must be an int or a pair of ints, got {value!r}"):
        jaxconv.conv2d(X, K, **{name: value})


@pytest.mark.parametrize("padding", [-1, (0, -1), ((0, 0), (-2, 1))])
def test_negative_padding(padding):
    with raises(ValueError, f"padding must be non-negative, got {padding!r}"):
        jaxconv.conv2d(X, K, padding=padding)


@pytest.mark.parametrize("padding", [1.5, (1, 2, 3), ((1, 2), 3), None])
def test_malformed_padding(padding):
    with raises(TypeError, "padding must be a string, an int, a pair (ph, pw) or pairs",
                f"got {padding!r}"):
        jaxconv.conv2d(X, K, padding=padding)


def test_unknown_strings():
    with raises(ValueError, "unknown padding 'SAMEE'; expected one of 'VALID', 'SAME', 'FULL'"):
        jaxconv.conv2d(X, K, padding="SAMEE")
    with raises(ValueError, "unknown padding_mode 'mirror'; expected one of 'zeros', 'reflect', "
                "'replicate', 'circular'"):
        jaxconv.conv2d(X, K, padding_mode="mirror")
    with raises(ValueError, "unknown algorithm 'winograd2'; expected 'auto' or one of", "'direct'"):
        jaxconv.conv2d(X, K, algorithm="winograd2")
    with raises(ValueError, "unknown algorithm None"):
        jaxconv.conv2d(X, K, algorithm=None)
    with raises(ValueError, "data_format must be 'NHWC' or 'NCHW', got 'NWHC'"):
        jaxconv.conv2d(X, K, data_format="NWHC")
    with raises(ValueError, "unknown precision 'fast'"):
        jaxconv.conv2d(X, K, precision="fast")
    with raises(TypeError, "precision must be None, a string, a jax.lax.Precision", "got 3"):
        jaxconv.conv2d(X, K, precision=3)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.int8, jnp.uint8, jnp.bool_, jnp.complex64])
@pytest.mark.parametrize("which", ["x", "kernel", "bias"])
def test_non_float_dtypes(which, dtype):
    args = {"x": X, "kernel": K, "bias": jnp.zeros(4, jnp.float32)}
    args[which] = args[which].astype(dtype)
    with raises(TypeError, f"{which} must have a floating dtype", f"got {jnp.dtype(dtype)}"):
        jaxconv.conv2d(args["x"], args["kernel"], args["bias"])


def test_python_int_lists_are_rejected_not_promoted():
    with raises(TypeError, "x must have a floating dtype", "got int64"):
        jaxconv.conv2d(np.zeros((1, 4, 4, 1), np.int64).tolist(), np.ones((2, 2, 1, 1)))


@pytest.mark.parametrize("shape", [(3,), (1, 4), (4, 1), ()])
def test_bias_shape(shape):
    with raises(ValueError, "bias must have shape (4,) (one per output channel)",
                f"got {shape}"):
        jaxconv.conv2d(X, K, jnp.zeros(shape, jnp.float32))


@pytest.mark.parametrize(
    ("padding", "padding_mode", "fragments"),
    [
        (5, "reflect", ("padding_mode='reflect' needs padding < input size",
                        "height padding is (5, 5) for height 5")),
        (((0, 0), (1, 6)), "reflect", ("width padding is (1, 6) for width 6",)),
        (7, "circular", ("padding_mode='circular' needs padding <= input size",
                         "height padding is (7, 7) for height 5")),
    ],
)
def test_padding_wider_than_input(padding, padding_mode, fragments):
    with raises(ValueError, *fragments):
        jaxconv.conv2d(X, K, padding=padding, padding_mode=padding_mode)


def test_replicate_padding_may_be_wider_than_input():
    assert jaxconv.conv2d(X, K, padding=7, padding_mode="replicate").shape == (2, 17, 18, 4)


def test_algorithm_that_cannot_serve(monkeypatch):
    refuser = _registry.Algorithm(
        name="refuser",
        fn=lambda x, kernel, config: None,
        serves="nothing (a test double)",
        check=lambda x_shape, kernel_shape, dtype, config: "it never serves anything",
    )
    monkeypatch.setitem(_registry._REGISTRY, "refuser", refuser)
    with raises(ValueError, "algorithm='refuser' cannot serve these arguments: it never serves "
                "anything", "Algorithms that can: 'direct'", "(or 'auto')"):
        jaxconv.conv2d(X, K, algorithm="refuser")


def test_errors_are_raised_before_tracing_under_jit():
    with raises(ValueError, "kernel expects 3 input channels"):
        jax.jit(lambda x, k: jaxconv.conv2d(x, k))(X, jnp.zeros((3, 3, 4, 4), jnp.float32))
    with raises(ValueError, "stride must be >= 1"):
        jax.jit(lambda x: jaxconv.conv2d(x, K, stride=0))(X)
