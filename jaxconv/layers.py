"""Layer-spec strings → pure ``(init, apply)`` stacks, as in the article's figures and the CLI.

A spec is a comma-separated list of layers::

    conv3x3:3,relu,maxpool5,conv3x3:1,relu,maxpool2

- ``convKxK:F`` — a VALID, stride-1 ``conv2d`` with F filters of K x K (``convKhxKw:F`` for a
  rectangle), Keras' Glorot-uniform kernel and a zero bias (an untrained Keras ``Conv2D``);
- any activation name of :func:`jaxconv.activation` (``relu``, ``tanh``, ``leaky_relu``, ...);
- ``maxpoolP`` / ``avgpoolP`` — P x P pooling with stride P (Keras' ``MaxPooling2D(P)``).

Images are **NHWC** ``(N, H, W, C)`` or unbatched ``(H, W, C)``; kernels are **HWIO**.

Examples:
  >>> import jax.numpy as jnp
  >>> from jaxconv import layers
  >>> init, apply = layers.build("conv3x3:3,relu,maxpool5")
  >>> out_shape, params = init(0, (320, 400, 3))
  >>> out_shape
  (63, 79, 3)
  >>> y, stages = apply(params, jnp.zeros((320, 400, 3), jnp.float32))
  >>> list(stages)
  ['conv3x3:3', 'relu', 'maxpool5']
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from . import activations as _activations
from .convolution import conv2d
from .pooling import avg_pool2d, max_pool2d

FN = "layers"
_CONV = re.compile(r"conv(\d+)(?:x(\d+))?:(\d+)")
_POOL = re.compile(r"(max|avg)pool(\d+)")
GRAMMAR = "convKxK:F (e.g. conv3x3:3), maxpoolP, avgpoolP or an activation name"
MAX_FILTERS = 4096  # per conv layer: more is a typo (or an out-of-memory) rather than a figure
MAX_KERNEL = 4096  # per side; a kernel must also fit its input


class SpecError(ValueError):
    """A layer spec that does not parse, or does not fit the input shape.

    ``str(error)`` shows the spec with a caret under the bad token; ``reason`` is a one-line
    description that also names the token and its position (1-based).
    """

    def __init__(self, spec: str, start: int, end: int, index: int | None, reason: str):
        self.spec, self.start, self.end, self.index = spec, start, end, index
        token = spec[start:end].strip(" ,")
        if index is None:
            where = f"column {start + 1}"
        else:
            where = f"layer {index + 1} " + (repr(token) if token else "(empty)")
        self.reason = f"{where}: {reason}"
        caret = " " * start + "^" * max(1, end - start)
        super().__init__(f"{FN}: bad spec, {self.reason}\n    {spec}\n    {caret}")


@dataclasses.dataclass(frozen=True)
class Layer:
    """One parsed layer. ``kind`` is ``"conv"``, ``"act"``, ``"maxpool"`` or ``"avgpool"``."""

    kind: str
    token: str
    kernel: tuple[int, int] = (0, 0)  # conv: (kh, kw)
    filters: int = 0  # conv: F
    window: int = 0  # pool: P
    start: int = 0  # position of the token in the spec (for error messages)
    end: int = 0

    @property
    def name(self) -> str:
        """The canonical token, e.g. ``"conv3x3:3"``, ``"relu"``, ``"maxpool5"``."""
        if self.kind == "conv":
            return f"conv{self.kernel[0]}x{self.kernel[1]}:{self.filters}"
        if self.kind == "act":
            return self.token
        return f"{self.kind}{self.window}"


def parse(spec: str) -> tuple[Layer, ...]:
    """Parse a spec string into layers; raise :class:`SpecError` pointing at a bad token.

    Whitespace around tokens is ignored; activation names follow :func:`jaxconv.activation`
    (case and ``-`` ignored).
    """
    if not isinstance(spec, str):
        raise TypeError(f"{FN}: spec must be a string such as 'conv3x3:3,relu,maxpool2', got {spec!r}")
    if not spec.strip():
        raise SpecError(spec, 0, max(1, len(spec)), None, f"the spec is empty; expected {GRAMMAR}")
    layers = []
    pos = 0
    for index, raw in enumerate(spec.split(",")):
        lead = len(raw) - len(raw.lstrip())
        start, end = pos + lead, pos + len(raw.rstrip())
        pos += len(raw) + 1
        token = raw.strip()
        if not token:
            raise SpecError(spec, start, start + 1, index, f"empty layer (stray comma); expected {GRAMMAR}")
        low = token.lower()
        if m := _CONV.fullmatch(low):
            kh = int(m[1])
            kw = int(m[2]) if m[2] else kh
            filters = int(m[3])
            if min(kh, kw, filters) < 1:
                raise SpecError(spec, start, end, index, "kernel size and filters must be >= 1")
            if filters > MAX_FILTERS:
                raise SpecError(spec, start, end, index,
                                f"filters must be <= {MAX_FILTERS}, got {filters}")
            if max(kh, kw) > MAX_KERNEL:
                raise SpecError(spec, start, end, index,
                                f"kernel size must be <= {MAX_KERNEL}, got {kh}x{kw}")
            layers.append(Layer("conv", token, (kh, kw), filters, start=start, end=end))
        elif m := _POOL.fullmatch(low):
            if int(m[2]) < 1:
                raise SpecError(spec, start, end, index, "the pooling window must be >= 1")
            if int(m[2]) > MAX_KERNEL:
                raise SpecError(spec, start, end, index,
                                f"the pooling window must be <= {MAX_KERNEL}, got {int(m[2])}")
            layers.append(Layer(f"{m[1]}pool", token, window=int(m[2]), start=start, end=end))
        else:
            key = low.replace("-", "_")
            if key in _activations.ACTIVATIONS:
                layers.append(Layer("act", key, start=start, end=end))
                continue
            if low.startswith("conv"):
                hint = "a convolution is convKxK:F, e.g. conv3x3:3 (K x K kernel, F filters)"
            elif "pool" in low:
                hint = "pooling is maxpoolP or avgpoolP, e.g. maxpool2 (P x P window, stride P)"
            else:
                names = ", ".join(sorted(_activations.ACTIVATIONS))
                hint = f"expected {GRAMMAR}; activations: {names}"
            raise SpecError(spec, start, end, index, f"unknown layer; {hint}")
    return tuple(layers)


def stage_names(layers: tuple[Layer, ...]) -> list[str]:
    """Unique names for the stages, Keras style: a repeated token gets ``_2``, ``_3``, ..."""
    seen: dict[str, int] = {}
    names = []
    for layer in layers:
        n = seen[layer.name] = seen.get(layer.name, 0) + 1
        names.append(layer.name if n == 1 else f"{layer.name}_{n}")
    return names


def glorot_uniform(
    key: jax.Array, shape: tuple[int, int, int, int], dtype: DTypeLike = jnp.float32
) -> jax.Array:
    """Keras' default kernel initializer for an HWIO kernel: ``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``.

    ``fan_in = kh * kw * I`` and ``fan_out = kh * kw * O`` (Glorot & Bengio 2010; Keras ``compute_fans``).
    """
    kh, kw, i, o = shape
    limit = math.sqrt(6.0 / (kh * kw * i + kh * kw * o))
    return jax.random.uniform(key, shape, dtype, -limit, limit)


def _shape_after(spec: str, layer: Layer, index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    *lead, h, w, c = shape
    if layer.kind == "conv":
        kh, kw = layer.kernel
        if kh > h or kw > w:
            raise SpecError(spec, layer.start, layer.end, index,
                            f"a {kh}x{kw} kernel does not fit its {h}x{w} input (VALID padding)")
        return (*lead, h - kh + 1, w - kw + 1, layer.filters)
    if layer.kind in ("maxpool", "avgpool"):
        p = layer.window
        if p > h or p > w:
            raise SpecError(spec, layer.start, layer.end, index,
                            f"a {p}x{p} pooling window does not fit its {h}x{w} input")
        return (*lead, h // p, w // p, c)
    return shape


def build(spec: str, *, algorithm: str = "auto", dtype: Any = jnp.float32) -> tuple[Callable, Callable]:
    """Build a pure ``(init, apply)`` pair from a spec (as ``jax.example_libraries.stax``).

    Args:
      spec: the layer spec, e.g. ``"conv3x3:3,relu,maxpool5"`` (see the module docstring).
      algorithm: the ``conv2d`` algorithm used by every convolution.
      dtype: parameter dtype.

    Returns:
      ``init(rng, input_shape) -> (output_shape, params)``: ``rng`` an int seed or a
      ``jax.random`` key, ``input_shape`` ``(H, W, C)`` or ``(N, H, W, C)``; ``params`` a list
      with one dict per layer (``{"kernel": (kh, kw, C, F), "bias": (F,)}`` for a conv, ``{}``
      otherwise). A kernel or window that does not fit raises :class:`SpecError`.

      ``apply(params, x) -> (y, stages)``: ``x`` of shape ``(H, W, C)`` or ``(N, H, W, C)``;
      ``stages`` a dict of every layer's output in order, keyed by :func:`stage_names`
      (``stages[last] is y``).
    """
    layers = parse(spec)
    names = stage_names(layers)

    def init(rng, input_shape):
        shape = tuple(int(s) for s in input_shape)
        if len(shape) not in (3, 4) or min(shape) < 1:
            raise ValueError(
                f"{FN}: input_shape must be (H, W, C) or (N, H, W, C) with sizes >= 1, got {input_shape!r}"
            )
        key = jax.random.key(rng) if isinstance(rng, int | np.integer) else rng
        params = []
        for i, layer in enumerate(layers):
            if layer.kind == "conv":
                key, sub = jax.random.split(key)
                kshape = (*layer.kernel, shape[-1], layer.filters)
                params.append({"kernel": glorot_uniform(sub, kshape, dtype),
                               "bias": jnp.zeros((layer.filters,), dtype)})
            else:
                params.append({})
            shape = _shape_after(spec, layer, i, shape)
        return shape, params

    def apply(params, x):
        if len(params) != len(layers):
            raise ValueError(f"{FN}: params has {len(params)} entries but the spec has {len(layers)} layers")
        x = jnp.asarray(x)
        if x.ndim not in (3, 4):
            raise ValueError(f"{FN}: x must be (H, W, C) or (N, H, W, C), got shape {x.shape}")
        stages = {}
        for i, (layer, p, name) in enumerate(zip(layers, params, names, strict=True)):
            _shape_after(spec, layer, i, x.shape)  # clear error before any op complains
            if layer.kind == "conv":
                x = conv2d(x, p["kernel"], p["bias"], algorithm=algorithm)
            elif layer.kind == "act":
                x = _activations.activation(layer.token)(x)
            elif layer.kind == "maxpool":
                x = max_pool2d(x, layer.window)
            else:
                x = avg_pool2d(x, layer.window)
            stages[name] = x
        return x, stages

    init.__doc__ = f"Initialize the stack {spec!r}: (rng, input_shape) -> (output_shape, params)."
    apply.__doc__ = f"Run the stack {spec!r}: (params, x) -> (y, stages)."
    return init, apply


def stage_shapes(spec: str, input_shape: Sequence[int]) -> list[tuple[int, ...]]:
    """The shapes of the input and of every stage's output, in order (no arrays are created).

    Examples:
      >>> from jaxconv import layers
      >>> layers.stage_shapes("conv3x3:4,relu,maxpool2", (10, 12, 3))
      [(10, 12, 3), (8, 10, 4), (8, 10, 4), (4, 5, 4)]
    """
    layers = parse(spec)
    shapes = [tuple(int(s) for s in input_shape)]
    for i, layer in enumerate(layers):
        shapes.append(_shape_after(spec, layer, i, shapes[-1]))
    return shapes


def output_shape(spec: str, input_shape: Sequence[int]) -> tuple[int, ...]:
    """The output shape of a spec on ``input_shape`` (no arrays are created)."""
    return stage_shapes(spec, input_shape)[-1]


def memory_estimate(spec: str, input_shape: Sequence[int], itemsize: int = 4) -> int:
    """Bytes the stack's stage outputs take on ``input_shape`` (input included; no arrays made).

    Every stage is kept (``apply`` returns them all), so the sum is a lower bound on what a run
    needs; a convolution's working memory, and drawing the stages, come on top (``jaxconv show``
    adds them from :func:`stage_shapes`).
    """
    return sum(math.prod(s) for s in stage_shapes(spec, input_shape)) * int(itemsize)


MIN_ALIVE = 0.05  # a stage with fewer non-zero values than this fraction draws as an empty panel


def dead_stages(stages: dict[str, Any]) -> list[str]:
    """The stages that would draw as blank panels: constant, or less than 5% non-zero.

    A ReLU after a filter that is negative almost everywhere on the image (a "dead" filter)
    gives such a stage; another seed draws other filters.

    Examples:
      >>> import numpy as np
      >>> from jaxconv import layers
      >>> layers.dead_stages({"conv": np.arange(4.0), "relu": np.zeros(4)})
      ['relu']
    """
    dead = []
    for name, v in stages.items():
        v = np.asarray(v)
        if not np.ptp(v) > 0 or np.count_nonzero(v) < MIN_ALIVE * v.size:
            dead.append(name)
    return dead
