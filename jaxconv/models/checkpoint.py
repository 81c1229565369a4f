"""LeNet-5 checkpoints: one msgpack file (Flax serialization), written atomically.

The file holds the model's variant and class count, its ``nnx.Param`` state as a pure dict of
arrays, optionally the optimizer state's leaves, and a JSON ``extra`` (epoch, history, config).
No dependency beyond Flax.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx, serialization

from jaxconv._io import JSONFileError, atomic_write, parse_json

from .lenet import VARIANTS, LeNet5, param_shapes

__all__ = ["FORMAT", "CheckpointError", "check_checkpoint", "load_checkpoint", "save_checkpoint"]

FORMAT = "jaxconv.LeNet5/1"
MAX_CLASSES = 1_000_000  # a sanity bound on the stored class count (the shapes are checked too)


class CheckpointError(ValueError):
    """A checkpoint is unreadable or does not fit the model asked for; names the file."""


def _host(tree):
    """NumPy copies of every leaf (fully replicated or local arrays)."""
    return jax.tree.map(lambda a: np.asarray(jax.device_get(a)), tree)


def save_checkpoint(
    path: str | os.PathLike,
    model: LeNet5,
    *,
    opt_state: Any = None,
    extra: dict | None = None,
) -> Path:
    """Write ``model`` (and optionally ``opt_state`` and JSON-able ``extra``) to ``path``.

    The file is written to a temporary name in the same folder, fsynced and renamed
    (:func:`jaxconv._io.atomic_open`), so a crash never leaves a half-written checkpoint, and a
    failed write leaves the previous checkpoint as it was. Returns the path.
    """
    if not isinstance(model, LeNet5):
        raise TypeError(f"save_checkpoint: model must be a LeNet5, got {type(model).__name__}")
    path = Path(path)
    try:
        extra_json = json.dumps(extra or {})
    except (TypeError, ValueError) as e:
        raise TypeError(f"save_checkpoint: extra must be JSON-serializable, got {e}") from None
    params = _host(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    payload = {
        "format": FORMAT,
        "variant": model.variant,
        "num_classes": model.num_classes,
        "params": params,
        "extra": extra_json,
    }
    if opt_state is not None:
        leaves = _host(jax.tree.leaves(opt_state))
        payload["opt_state"] = {str(i): leaf for i, leaf in enumerate(leaves)}
    data = serialization.msgpack_serialize(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)
    return path


def _shapes(tree) -> dict:
    return jax.tree.map(lambda a: tuple(np.shape(a)), tree)


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


def _read_payload(path: Path) -> dict:
    """Read and check a checkpoint's payload against its variant's expected shapes.

    Nothing is built: every key, type and shape is checked first (a crafted file cannot make the
    loader allocate a model larger than the arrays it holds). Returns the payload with
    ``extra`` decoded.
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
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"load_checkpoint: {path} is not a jaxconv LeNet5 checkpoint (format {found!r}, "
            f"expected {FORMAT!r})"
        )
    for key in ("variant", "num_classes", "params"):
        if key not in payload:
            raise CheckpointError(f"load_checkpoint: {path}: the checkpoint has no {key!r} entry")
    stored = payload["variant"]
    if not isinstance(stored, str) or stored not in VARIANTS:
        raise CheckpointError(
            f"load_checkpoint: {path}: variant must be one of {VARIANTS}, got {stored!r}"
        )
    k = payload["num_classes"]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= MAX_CLASSES:
        raise CheckpointError(
            f"load_checkpoint: {path}: num_classes must be an int in 1..{MAX_CLASSES}, got {k!r}"
        )
    if not isinstance(payload["params"], dict):
        raise CheckpointError(
            f"load_checkpoint: {path}: params must be a dict of arrays, got "
            f"{type(payload['params']).__name__}"
        )
    want = param_shapes(stored, int(k))
    got = _tree_shapes(payload["params"], path, "params", floating=True)
    if want != got:
        raise CheckpointError(
            f"load_checkpoint: {path}: the stored parameters do not fit a {stored!r} LeNet5 "
            f"with {k} classes (expected {want}, found {got})"
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
    return {**payload, "num_classes": int(k), "extra": extra}


def check_checkpoint(path: str | os.PathLike, *, variant: str | None = None) -> dict:
    """Check a checkpoint file without building a model; return its ``extra``.

    Raises :class:`CheckpointError` (naming the file) for anything :func:`load_checkpoint`
    would reject: unreadable, not a checkpoint, a bad schema or shapes, another variant.
    """
    path = Path(path)
    payload = _read_payload(path)
    _check_variant(path, payload["variant"], variant)
    return payload["extra"]


def _check_variant(path: Path, stored: str, variant: str | None) -> None:
    if variant is not None and stored != variant:
        raise CheckpointError(
            f"load_checkpoint: {path} holds a {stored!r} LeNet5 but a {variant!r} one was asked "
            f"for; train a new model (without --resume) or pass --variant {stored}"
        )


def load_checkpoint(
    path: str | os.PathLike,
    *,
    variant: str | None = None,
    algorithm: str = "auto",
    opt_state: Any = None,
) -> tuple[LeNet5, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
      path: the checkpoint file.
      variant: when given, the variant the caller expects; a checkpoint of another variant
        raises :class:`CheckpointError`.
      algorithm: the conv algorithm of the rebuilt model (not stored: it is a runtime choice).
      opt_state: a template optimizer state (e.g. ``tx.init(params)``); when given, the stored
        leaves are put back into its structure and returned as ``info["opt_state"]``.

    Returns:
      ``(model, info)``: the rebuilt :class:`LeNet5` and a dict with ``"extra"`` (what was saved)
      and ``"opt_state"`` (``None`` without a template or when none was saved).

    Raises:
      CheckpointError: a missing or unreadable file, not a LeNet5 checkpoint, a payload of the
        wrong schema (missing ``variant``/``params``, wrong types, parameters that are not
        floating-point, non-JSON ``extra``), a different variant, or shapes that disagree;
        always naming the file. The payload is
        checked completely before a model is built.
    """
    path = Path(path)
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"load_checkpoint: variant must be one of {VARIANTS}, got {variant!r}")
    payload = _read_payload(path)
    stored = payload["variant"]
    _check_variant(path, stored, variant)

    restored_opt = None
    if opt_state is not None and "opt_state" in payload:
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

    model = LeNet5(payload["num_classes"], variant=stored, algorithm=algorithm)
    state = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(state, jax.tree.map(np.asarray, payload["params"]))
    nnx.update(model, state)
    return model, {"extra": payload["extra"], "opt_state": restored_opt}
