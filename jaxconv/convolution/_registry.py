"""The algorithm registry that ``conv2d(..., algorithm=...)`` dispatches through.

Everything about an algorithm lives on its :class:`Algorithm` record, registered once beside its
implementation: the function, what it serves (and why not, for a problem it cannot), the terms
of its cost model, its error model and test tolerance. The selector (``select.py``), autotune,
the CLI, the benchmarks and the tests only iterate the registry.

Every algorithm's function has one signature,

    fn(x, kernel, config) -> y

where ``x`` is batched **NHWC** ``(N, H, W, C)``, ``kernel`` is **HWIO** ``(kh, kw, C // groups, O)``
of the same dtype, ``config`` is a :class:`ConvConfig` whose padding is *zero* padding (``conv2d``
applies reflect / replicate / circular padding before dispatch) and ``y`` is NHWC
``(N, H_out, W_out, O)``. Bias, layout and unbatched inputs are handled by ``conv2d`` itself.

``conv1d`` / ``conv3d`` / ``conv`` dispatch through the same registry with channels-last shapes
of their rank (``(N, W, C)`` / WIO, ``(N, D, H, W, C)`` / DHWIO), so a ``check`` sees the number
of spatial dims as ``len(x_shape) - 2``; an algorithm written for 2-D only refuses the others
with :func:`not_2d_reason`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

Shape = tuple[int, ...]
Pair = tuple[int, int]
Pads = tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class ConvConfig:
    """Static, hashable convolution configuration (after canonicalization).

    One entry per spatial axis in ``stride``, ``padding`` (``(lo, hi)`` zero padding) and
    ``dilation``; two axes (H, W) by default.
    """

    stride: tuple[int, ...] = (1, 1)
    padding: Pads = ((0, 0), (0, 0))
    dilation: tuple[int, ...] = (1, 1)
    groups: int = 1
    precision: Any = None

    @property
    def padded(self) -> bool:
        """Whether any side has zero padding."""
        return any(p for pads in self.padding for p in pads)

    def effective_kernel(self, kernel_hw: Shape) -> Shape:
        """Spatial extent of the dilated kernel: ``(k - 1) * d + 1``."""
        return tuple((k - 1) * d + 1 for k, d in zip(kernel_hw, self.dilation, strict=True))

    def output_hw(self, input_hw: Shape, kernel_hw: Shape) -> Shape:
        """``floor((H + pad - ((kh - 1) * dh + 1)) / sh) + 1`` per spatial axis."""
        eff = self.effective_kernel(kernel_hw)
        return tuple(
            (n + lo + hi - e) // s + 1
            for n, (lo, hi), e, s in zip(input_hw, self.padding, eff, self.stride, strict=True)
        )

    def replace(self, **changes: Any) -> ConvConfig:
        return dataclasses.replace(self, **changes)


ConvFn = Callable[[Any, Any, ConvConfig], Any]
# ``check(x_shape, kernel_shape, dtype, config) -> None | str``: the reason it cannot serve.
CheckFn = Callable[[Shape, Shape, Any, ConvConfig], "str | None"]
# ``terms(x_shape, kernel_shape, config) -> {term: amount}``, counted for float32.
TermsFn = Callable[[Shape, Shape, ConvConfig], dict[str, float]]


ReducesToFn = Callable[[Shape, Shape, ConvConfig], tuple[str, Shape, Shape, ConvConfig]]


def reduction(inner: str, problem: Callable[[Shape, Shape, ConvConfig],
                                            tuple[Shape, Shape, ConvConfig]]) -> ReducesToFn:
    """:attr:`Algorithm.reduces_to` of an algorithm that runs algorithm ``inner`` on
    ``problem(x_shape, kernel_shape, config)`` (its shapes and config)."""
    def reduces_to(x_shape: Shape, kernel_shape: Shape, config: ConvConfig):
        return (inner, *problem(x_shape, kernel_shape, config))

    return reduces_to


def not_2d_reason(name: str, x_shape: Shape) -> str | None:
    """The ``check`` reason of an algorithm that serves only 2-D problems (``None`` for 2-D).

    Checks receive channels-last shapes, so the number of spatial dims is ``len(x_shape) - 2``.
    """
    spatial = len(x_shape) - 2
    if spatial != 2:
        return f"{name} serves 2-D convolutions (got {spatial} spatial dims)"
    return None


def _serves_everything(x_shape: Shape, kernel_shape: Shape, dtype: Any,
                       config: ConvConfig) -> str | None:
    return None


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """A registered convolution algorithm: everything the library knows about it.

    Attributes:
      name: what ``conv2d(..., algorithm=name)`` takes.
      fn: ``fn(x NHWC, kernel HWIO, config) -> y NHWC`` (see the module docstring).
      serves: one line for users: what it serves and when it is fast.
      check: ``check(x_shape, kernel_shape, dtype, config)`` -> why it cannot serve, or ``None``.
      cost_terms: ``terms(x_shape, kernel_shape, config)`` -> amounts of each cost term (float32
        units: ``*flop*`` terms in flops, ``*byte*`` terms in bytes; other terms are counts). The
        selector multiplies them by the constants fitted per backend and mode in
        ``cost_model.json``; whatever makes an algorithm fast or slow on some problems (few
        channels, a 1x1 kernel, XLA's slow paths) belongs here, as a term the fit can weigh.
        ``None``: the cost model never picks it (``jaxconv.autotune`` still measures it).
      error: ``"elementwise"`` when each output's error is relative to that output (the same
        products as a direct sum, in another order) or ``"global"`` when it is relative to the
        largest output (transforms that mix all outputs: FFT, Winograd).
      tolerance: ``{dtype name: (rtol, atol relative to max|y|)}`` against a float64 reference,
        where it differs from the dtype's default (``tests/tolerances.py``).
      reduces_to: for an algorithm that rewrites the problem as another algorithm's problem (a
        3-D convolution as a 2-D one): ``reduces_to(x_shape, kernel_shape, config) -> (name,
        x_shape, kernel_shape, config)`` of the problem it runs (:func:`reduction` writes one).
        Its estimate is that algorithm's on that problem (it has no ``cost_terms`` and no
        constants of its own).
    """

    name: str
    fn: ConvFn
    serves: str
    check: CheckFn = _serves_everything
    cost_terms: TermsFn | None = None
    error: str = "elementwise"
    tolerance: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    reduces_to: ReducesToFn | None = None

    def unsupported_reason(self, x_shape: Shape, kernel_shape: Shape, dtype: Any,
                           config: ConvConfig) -> str | None:
        return self.check(tuple(x_shape), tuple(kernel_shape), dtype, config)


_REGISTRY: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    """Add (or replace) an algorithm under ``algorithm.name``."""
    if algorithm.name == "auto":
        raise ValueError("register: 'auto' is reserved for the selector")
    if algorithm.error not in ("elementwise", "global"):
        raise ValueError(f"register: error must be 'elementwise' or 'global', got {algorithm.error!r}")
    _REGISTRY[algorithm.name] = algorithm
    return algorithm


def get(name: str) -> Algorithm:
    return _REGISTRY[name]


def names() -> tuple[str, ...]:
    """Registered algorithm names, in registration order."""
    return tuple(_REGISTRY)


def algorithms() -> tuple[Algorithm, ...]:
    return tuple(_REGISTRY.values())


def applicable(x_shape: Shape, kernel_shape: Shape, dtype: Any, config: ConvConfig) -> tuple[str, ...]:
    """Names of the algorithms that can serve these (NHWC, HWIO) shapes and config."""
    return tuple(
        a.name
        for a in _REGISTRY.values()
        if a.unsupported_reason(x_shape, kernel_shape, dtype, config) is None
    )
