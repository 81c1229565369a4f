"""Checkpoints of jaxconv's models: one msgpack file (Flax serialization), written atomically.

One format (``jaxconv.checkpoint/2``) for LeNet-5, ResNet-18/34 and MobileNetV2. The file holds
the model's name and build arguments (``num_classes``, ``in_channels``, LeNet-5's ``variant``,
ResNet's or MobileNetV2's ``width``), its ``nnx.Param`` state as a pure dict of arrays, the
BatchNorm running statistics (``nnx.BatchStat``: ResNet, MobileNetV2), optionally the optimizer
state's leaves, and a JSON ``extra`` (epoch, history, config). LeNet-5 files of the first format
(``jaxconv.LeNet5/1``) still load. No dependency beyond Flax.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx, serialization

from jaxconv._io import JSONFileError, atomic_write, parse_json

from .lenet import VARIANTS, LeNet5, param_shapes
from .mobilenet import MobileNetV2
from .resnet import STAGE_SIZES, ResNet

__all__ = ["FORMAT", "NETS", "CheckpointError", "check_checkpoint", "load_checkpoint",
           "save_checkpoint"]

FORMAT = "jaxconv.checkpoint/2"
LENET5_FORMAT = "jaxconv.LeNet5/1"  # the first format, LeNet-5's only: still read, not written
NETS = ("lenet5", "resnet18", "resnet34", "mobilenetv2")
MAX_CLASSES = 1_000_000  # a sanity bound on the stored class count (the shapes are checked too)
MAX_CHANNELS = 65_536  # ... on in_channels and ResNet's width
MAX_WIDTH = 64.0  # ... on MobileNetV2's width multiplier


class CheckpointError(ValueError):
    """A checkpoint is unreadable or does not fit the model asked for; names the file."""


def default_width(name: str) -> int | float:
    """The width a ResNet or MobileNetV2 is built with when none is given (64, 1.0)."""
    cls = MobileNetV2 if name == "mobilenetv2" else ResNet
    return inspect.signature(cls.__init__).parameters["width"].default


def build(name: str, num_classes: int, in_channels: int = 1, *, variant: str = "modern",
          width: int | float | None = None, algorithm: str = "auto", rngs=None) -> nnx.Module:
    """The model ``name`` (:data:`NETS`) for ``in_channels``-channel images (LeNet-5: one)."""
    if name == "lenet5":
        return LeNet5(num_classes, variant=variant, algorithm=algorithm, rngs=rngs)
    kwargs: dict[str, Any] = {} if width is None else {"width": width}
    if name in ("resnet18", "resnet34"):
        return getattr(ResNet, name)(num_classes, in_channels=in_channels, algorithm=algorithm,
                                     rngs=rngs, **kwargs)
    if name == "mobilenetv2":
        return MobileNetV2(num_classes, in_channels=in_channels, algorithm=algorithm, rngs=rngs,
                           **kwargs)
    raise ValueError(f"build: model must be one of {NETS}, got {name!r}")


def _build_args(model) -> dict[str, Any]:
    """The name and build arguments a checkpoint records for ``model``."""
    if isinstance(model, LeNet5):
        return {"model": "lenet5", "num_classes": model.num_classes, "in_channels": 1,
                "variant": model.variant}
    if isinstance(model, ResNet):
        names = {sizes: f"resnet{depth}" for depth, sizes in STAGE_SIZES.items()}
        if model.stage_sizes not in names:
            raise TypeError(f"save_checkpoint: a ResNet must have ResNet-18's or ResNet-34's stage "
                            f"sizes, got {model.stage_sizes}")
        return {"model": names[model.stage_sizes], "num_classes": model.num_classes,
                "in_channels": model.in_channels, "width": model.width}
    if isinstance(model, MobileNetV2):
        return {"model": "mobilenetv2", "num_classes": model.num_classes,
                "in_channels": model.in_channels, "width": model.width}
    raise TypeError(f"save_checkpoint: model must be a LeNet5, ResNet or MobileNetV2, got "
                    f"{type(model).__name__}")


def _describe(args: dict) -> str:
    if args["model"] == "lenet5":
        return f"{args['variant']!r} LeNet5 with {args['num_classes']} classes"
    return (f"{args['model']!r} of width {args['width']} with {args['num_classes']} classes and "
            f"{args['in_channels']} input channels")


def _host(tree):
    """NumPy copies of every leaf (fully replicated or local arrays)."""
    return jax.tree.map(lambda a: np.asarray(jax.device_get(a)), tree)


def _str_keys(tree):
    """``tree`` with every dict key a string (``nnx.List`` indices are ints)."""
    if isinstance(tree, dict):
        return {str(k): _str_keys(v) for k, v in tree.items()}
    return tree


def save_checkpoint(
    path: str | os.PathLike,
    model: nnx.Module,
    *,
    opt_state: Any = None,
    extra: dict | None = None,
) -> Path:
    """Write ``model`` (and optionally ``opt_state`` and JSON-able ``extra``) to ``path``.

    ``model`` is a :class:`LeNet5`, a :class:`ResNet` (18 or 34) or a :class:`MobileNetV2`; the
    file records its name and build arguments, its parameters and (ResNet, MobileNetV2) its
    BatchNorm running statistics. The file is written to a temporary name in the same folder,
    fsynced and renamed (:func:`jaxconv._io.atomic_write`), so a crash never leaves a
    half-written checkpoint, and a failed write leaves the previous checkpoint as it was.
    Returns the path.
    """
    args = _build_args(model)
    path = Path(path)
    try:
        extra_json = json.dumps(extra or {})
    except (TypeError, ValueError) as e:
        raise TypeError(f"save_checkpoint: extra must be JSON-serializable, got {e}") from None
    payload: dict[str, Any] = {"format": FORMAT, **args}
    payload["params"] = _str_keys(_host(nnx.to_pure_dict(nnx.state(model, nnx.Param))))
    if args["model"] != "lenet5":
        payload["batch_stats"] = _str_keys(_host(nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))))
    payload["extra"] = extra_json
    if opt_state is not None:
        leaves = _host(jax.tree.leaves(opt_state))
        payload["opt_state"] = {str(i): leaf for i, leaf in enumerate(leaves)}
    data = serialization.msgpack_serialize(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)
    return path


def _is_array(a) -> bool:
    return isinstance(a, np.ndarray | np.generic) and a.dtype.kind in "biuf"


def _tree_shapes(tree, path: Path, where: str, *, floating: bool = False):
    """The shapes of a nested dict of arrays; CheckpointError for any other leaf or key.

    With ``floating``, every array must have a floating dtype (the model computes in floats: an
    integer parameter would only fail later, inside the first convolution).
    """
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            if not isinstance(k, str):
                raise CheckpointError(f"load_checkpoint: {path}: {where} has a non-string key {k!r}")
            out[k] = _tree_shapes(v, path, f"{where}/{k}", floating=floating)
        return out
    if _is_array(tree):
        if floating and tree.dtype.kind != "f":
            raise CheckpointError(
                f"load_checkpoint: {path}: {where} must be a floating-point array (float16, "
                f"float32 or float64), got dtype {tree.dtype}"
            )
        return tuple(int(d) for d in np.shape(tree))
    raise CheckpointError(
        f"load_checkpoint: {path}: {where} must be a numeric array, got {type(tree).__name__}"
    )


def _difference(want, got, where: str) -> str:
    """The first place two shape trees differ ("" when they agree)."""
    if isinstance(want, dict) and isinstance(got, dict):
        for k in want:
            if k not in got:
                return f"{where}/{k} is missing"
        for k in got:
            if k not in want:
                return f"{where}/{k} is not one of the model's"
        return next((d for k in want if (d := _difference(want[k], got[k], f"{where}/{k}"))), "")
    return "" if want == got else f"{where} has shape {got}, expected {want}"


def _expected_shapes(args: dict) -> tuple[dict, dict]:
    """``(params, batch_stats)`` shapes of the model ``args`` describe, with no arrays made."""
    if args["model"] == "lenet5":
        return param_shapes(args["variant"], args["num_classes"]), {}
    model = nnx.eval_shape(lambda: build(args["model"], args["num_classes"], args["in_channels"],
                                         width=args["width"], rngs=nnx.Rngs(0)))

    def shapes(kind):
        return _str_keys(jax.tree.map(lambda a: tuple(a.shape),
                                      nnx.to_pure_dict(nnx.state(model, kind))))

    return shapes(nnx.Param), shapes(nnx.BatchStat)


def _int_in(value, low: int, high: int) -> bool:
    return bool(not isinstance(value, bool) and isinstance(value, int | np.integer)
                and low <= value <= high)


def _check_build_args(path: Path, payload: dict) -> dict:
    """The stored name and build arguments, checked (CheckpointError naming the file)."""
    name = payload["model"]
    if not isinstance(name, str) or name not in NETS:
        raise CheckpointError(f"load_checkpoint: {path}: model must be one of {NETS}, got {name!r}")
    if name == "lenet5":
        stored = payload["variant"]
        if not isinstance(stored, str) or stored not in VARIANTS:
            raise CheckpointError(
                f"load_checkpoint: {path}: variant must be one of {VARIANTS}, got {stored!r}"
            )
    k = payload["num_classes"]
    if not _int_in(k, 1, MAX_CLASSES):
        raise CheckpointError(
            f"load_checkpoint: {path}: num_classes must be an int in 1..{MAX_CLASSES}, got {k!r}"
        )
    cin = payload["in_channels"]
    high = 1 if name == "lenet5" else MAX_CHANNELS
    if not _int_in(cin, 1, high):
        raise CheckpointError(
            f"load_checkpoint: {path}: in_channels must be an int in 1..{high}, got {cin!r}"
        )
    args: dict[str, Any] = {"model": name, "num_classes": int(k), "in_channels": int(cin)}
    if name == "lenet5":
        args["variant"] = payload["variant"]
        return args
    width = payload["width"]
    if name == "mobilenetv2":
        ok = (not isinstance(width, bool) and isinstance(width, int | float | np.number)
              and math.isfinite(width) and 0 < width <= MAX_WIDTH)
        rule = f"a number in (0, {MAX_WIDTH}]"
        width = float(width) if ok else width
    else:
        ok, rule = _int_in(width, 1, MAX_CHANNELS), f"an int in 1..{MAX_CHANNELS}"
        width = int(width) if ok else width
    if not ok:
        raise CheckpointError(f"load_checkpoint: {path}: width must be {rule}, got {width!r}")
    args["width"] = width
    return args


def _read_payload(path: Path) -> dict:
    """Read and check a checkpoint's payload against its model's expected shapes.

    Nothing is built: every key, type and shape is checked first (a crafted file cannot make the
    loader allocate a model larger than the arrays it holds). Returns the build arguments, the
    arrays and ``extra`` decoded.
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CheckpointError(
            f"load_checkpoint: cannot read {str(path)!r} ({e.strerror or e})"
        ) from e
    try:
        payload = serialization.msgpack_restore(raw)
    except Exception as e:
        raise CheckpointError(f"load_checkpoint: {path} is not a readable checkpoint ({e})") from e
    found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    if found not in (FORMAT, LENET5_FORMAT):
        raise CheckpointError(
            f"load_checkpoint: {path} is not a jaxconv checkpoint (format {found!r}, expected "
            f"{FORMAT!r} or LeNet-5's {LENET5_FORMAT!r})"
        )
    if found == LENET5_FORMAT:  # the first format: LeNet-5 on one channel, nothing else stored
        payload = {**payload, "model": "lenet5", "in_channels": 1}
        payload.pop("batch_stats", None)
    if "model" not in payload:
        raise CheckpointError(f"load_checkpoint: {path}: the checkpoint has no 'model' entry")
    lenet = payload["model"] == "lenet5"
    keys = ("variant", "num_classes", "in_channels", "params") if lenet else (
        "num_classes", "in_channels", "width", "params", "batch_stats")
    for key in keys:
        if key not in payload:
            raise CheckpointError(f"load_checkpoint: {path}: the checkpoint has no {key!r} entry")
    args = _check_build_args(path, payload)
    want_params, want_stats = _expected_shapes(args)
    for key, what, want in (("params", "parameters", want_params),
                            ("batch_stats", "batch statistics", want_stats)):
        if key not in keys:
            continue
        if not isinstance(payload[key], dict):
            raise CheckpointError(
                f"load_checkpoint: {path}: {key} must be a dict of arrays, got "
                f"{type(payload[key]).__name__}"
            )
        diff = _difference(want, _tree_shapes(payload[key], path, key, floating=True), key)
        if diff:
            raise CheckpointError(
                f"load_checkpoint: {path}: the stored {what} do not fit a {_describe(args)} "
                f"({diff})"
            )
    if "opt_state" in payload:
        opt = payload["opt_state"]
        if not isinstance(opt, dict) or sorted(opt) != sorted(map(str, range(len(opt)))) or not all(
            _is_array(v) for v in opt.values()
        ):
            raise CheckpointError(
                f"load_checkpoint: {path}: opt_state must map '0', '1', ... to arrays"
            )
    extra = payload.get("extra", "{}")
    try:
        if not isinstance(extra, str):
            raise TypeError(f"a {type(extra).__name__}, not a JSON string")
        extra = parse_json(extra, "extra")  # its limits: no RecursionError from a crafted file
        if not isinstance(extra, dict):
            raise TypeError(f"a JSON {type(extra).__name__}, not an object")
    except (TypeError, JSONFileError) as e:
        raise CheckpointError(f"load_checkpoint: {path}: extra must be a JSON object ({e})") from None
    return {**args, "params": payload["params"], "batch_stats": payload.get("batch_stats", {}),
            "opt_state": payload.get("opt_state"), "extra": extra}


def _check_asked(model: str | None, variant: str | None, width) -> str | None:
    """The model asked for (``variant`` alone asks for a LeNet5); ValueError for bad arguments."""
    if model is not None and model not in NETS:
        raise ValueError(f"load_checkpoint: model must be one of {NETS}, got {model!r}")
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"load_checkpoint: variant must be one of {VARIANTS}, got {variant!r}")
    if variant is not None and model not in (None, "lenet5"):
        raise ValueError(f"load_checkpoint: variant is for lenet5, not {model!r}")
    if width is not None and (model == "lenet5" or variant is not None):
        raise ValueError("load_checkpoint: width is for resnet18, resnet34 and mobilenetv2, not "
                         "lenet5")
    if width is not None and (isinstance(width, bool) or not isinstance(width, int | float | np.number)):
        raise TypeError(f"load_checkpoint: width must be a number, got {width!r}")
    return "lenet5" if variant is not None else model


def _check_fits(path: Path, args: dict, model: str | None, variant: str | None, width) -> None:
    """CheckpointError when the stored model is not the one asked for."""
    stored = args["model"]
    if model is not None and stored != model:
        raise CheckpointError(
            f"load_checkpoint: {path} holds a {stored!r} model but a {model!r} one was asked "
            f"for"
        )
    if variant is not None and args["variant"] != variant:
        raise CheckpointError(
            f"load_checkpoint: {path} holds a {args['variant']!r} LeNet5 but a {variant!r} one was "
            f"asked for; train a new model (without --resume) or pass --variant {args['variant']}"
        )
    if width is not None and stored == "lenet5":
        raise CheckpointError(f"load_checkpoint: {path} holds a LeNet5 (no width) but width "
                              f"{width} was asked for")
    if width is not None and float(args["width"]) != float(width):
        raise CheckpointError(
            f"load_checkpoint: {path} holds a {stored!r} of width {args['width']} but width "
            f"{width} was asked for; train a new model (without --resume) or pass --width "
            f"{args['width']}"
        )


def check_checkpoint(path: str | os.PathLike, *, variant: str | None = None,
                     model: str | None = None, width: int | float | None = None) -> dict:
    """Check a checkpoint file without building a model; return its ``extra``.

    Raises :class:`CheckpointError` (naming the file) for anything :func:`load_checkpoint`
    would reject: unreadable, not a checkpoint, a bad schema or shapes, another model, variant
    or width than asked for.
    """
    path = Path(path)
    model = _check_asked(model, variant, width)
    payload = _read_payload(path)
    _check_fits(path, payload, model, variant, width)
    return payload["extra"]


def _restore(module: nnx.Module, kind, stored: dict) -> None:
    """Put the stored pure dict (string keys) into ``module``'s ``kind`` state."""

    def match(template, arrays):  # the template's keys (ints for nnx.List indices)
        if isinstance(template, dict):
            return {k: match(v, arrays[str(k)]) for k, v in template.items()}
        return np.asarray(arrays)

    state = nnx.state(module, kind)
    nnx.replace_by_pure_dict(state, match(nnx.to_pure_dict(state), stored))
    nnx.update(module, state)


def load_checkpoint(
    path: str | os.PathLike,
    *,
    variant: str | None = None,
    algorithm: str = "auto",
    opt_state: Any = None,
    model: str | None = None,
    width: int | float | None = None,
) -> tuple[nnx.Module, dict]:
    """Read a checkpoint written by :func:`save_checkpoint` and rebuild its model.

    Args:
      path: the checkpoint file (this format or LeNet-5's first, ``jaxconv.LeNet5/1``).
      variant: when given, the LeNet-5 variant the caller expects; a checkpoint of another
        model or variant raises :class:`CheckpointError`.
      algorithm: the conv algorithm of the rebuilt model (not stored: it is a runtime choice).
      opt_state: a template optimizer state (e.g. ``tx.init(params)``); when given, the stored
        leaves are put back into its structure and returned as ``info["opt_state"]``.
      model: when given, the model the caller expects (one of :data:`NETS`: ``"lenet5"``,
        ``"resnet18"``, ``"resnet34"``, ``"mobilenetv2"``); another raises
        :class:`CheckpointError`.
      width: when given, ResNet's or MobileNetV2's expected width; another raises
        :class:`CheckpointError`.

    Returns:
      ``(model, info)``: the rebuilt :class:`LeNet5`, :class:`ResNet` or :class:`MobileNetV2`
      (the last two in evaluation mode: BatchNorm on the restored running statistics; call
      ``model.train()`` to train on) and a dict with ``"extra"`` (what was saved) and
      ``"opt_state"`` (``None`` without a template or when none was saved).

    Raises:
      CheckpointError: a missing or unreadable file, not a jaxconv checkpoint, a payload of the
        wrong schema (missing ``model``/``variant``/``width``/``params``/``batch_stats``, wrong
        types, arrays that are not floating-point, non-JSON ``extra``), another model, variant
        or width than asked for, or shapes that disagree; always naming the file. The payload
        is checked completely before a model is built.
    """
    path = Path(path)
    asked = _check_asked(model, variant, width)
    payload = _read_payload(path)
    _check_fits(path, payload, asked, variant, width)

    restored_opt = None
    if opt_state is not None and payload["opt_state"] is not None:
        treedef = jax.tree.structure(opt_state)
        template = jax.tree.leaves(opt_state)
        stored_leaves = [payload["opt_state"][str(i)] for i in range(len(payload["opt_state"]))]
        if len(stored_leaves) != len(template) or any(
            np.shape(a) != np.shape(b) for a, b in zip(stored_leaves, template, strict=False)
        ):
            raise CheckpointError(
                f"load_checkpoint: {path}: the stored optimizer state ({len(stored_leaves)} "
                f"arrays) does not fit the optimizer ({len(template)} arrays)"
            )
        restored_opt = jax.tree.unflatten(
            treedef,
            [np.asarray(a, dtype=np.asarray(b).dtype) for a, b in zip(stored_leaves, template, strict=True)],
        )

    net = build(payload["model"], payload["num_classes"], payload["in_channels"],
                variant=payload.get("variant", "modern"), width=payload.get("width"),
                algorithm=algorithm)
    _restore(net, nnx.Param, payload["params"])
    if payload["model"] != "lenet5":
        _restore(net, nnx.BatchStat, payload["batch_stats"])
        net.eval()
    return net, {"extra": payload["extra"], "opt_state": restored_opt}


def resume_state(path: Path, **asked) -> dict:
    """The checkpoint's training state (epoch, history, seconds), checked against the model
    ``asked`` for (:func:`check_checkpoint`'s keywords); CheckpointError else."""
    extra = check_checkpoint(path, **asked)
    epoch, history = extra.get("epoch", 0), extra.get("history", [])
    seconds = extra.get("train_seconds", 0.0)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"train: {path}: extra 'epoch' must be an int >= 0, got {epoch!r}")
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise CheckpointError(f"train: {path}: extra 'history' must be a list of dicts")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise CheckpointError(
            f"train: {path}: extra 'train_seconds' must be a number, got {seconds!r}"
        )
    return {"epoch": epoch, "history": list(history), "train_seconds": float(seconds)}
