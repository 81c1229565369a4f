"""LeNet-5 checkpoints: one msgpack file (Flax serialization), written atomically.

The file holds the model's variant and class count, its ``nnx.Param`` state as a pure dict of
arrays, optionally the optimizer state's leaves, and a JSON ``extra`` (epoch, history, config).
No dependency beyond Flax.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx, serialization

from .lenet import VARIANTS, LeNet5

__all__ = ["FORMAT", "CheckpointError", "load_checkpoint", "save_checkpoint"]

FORMAT = "jaxconv.LeNet5/1"


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

    The file is written to a temporary name in the same folder and renamed, so a crash never
    leaves a half-written checkpoint behind. Returns the path.
    """
    if not isinstance(model, LeNet5):
        raise TypeError(f"save_checkpoint: model must be a LeNet5, got {type(model).__name__}")
    path = Path(path)
    params = _host(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    payload = {
        "format": FORMAT,
        "variant": model.variant,
        "num_classes": model.num_classes,
        "params": params,
        "extra": json.dumps(extra or {}),
    }
    if opt_state is not None:
        leaves = _host(jax.tree.leaves(opt_state))
        payload["opt_state"] = {str(i): leaf for i, leaf in enumerate(leaves)}
    data = serialization.msgpack_serialize(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name beside the target (open "x": never clobbers), then an atomic rename.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.part")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _shapes(tree) -> dict:
    return jax.tree.map(lambda a: tuple(np.shape(a)), tree)


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
      CheckpointError: not a LeNet5 checkpoint, a different variant, or shapes that disagree.
    """
    path = Path(path)
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"load_checkpoint: variant must be one of {VARIANTS}, got {variant!r}")
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except FileNotFoundError:
        raise
    except Exception as e:
        raise CheckpointError(f"load_checkpoint: {path} is not a readable checkpoint ({e})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(
            f"load_checkpoint: {path} is not a jaxconv LeNet5 checkpoint (format {found!r}, "
            f"expected {FORMAT!r})"
        )
    stored = payload["variant"]
    if variant is not None and stored != variant:
        raise CheckpointError(
            f"load_checkpoint: {path} holds a {stored!r} LeNet5 but a {variant!r} one was asked "
            f"for; train a new model (without --resume) or pass --variant {stored}"
        )
    model = LeNet5(int(payload["num_classes"]), variant=stored, algorithm=algorithm)
    state = nnx.state(model, nnx.Param)
    want, got = _shapes(nnx.to_pure_dict(state)), _shapes(payload["params"])
    if want != got:
        raise CheckpointError(
            f"load_checkpoint: {path}: the stored parameters do not fit a {stored!r} LeNet5 "
            f"(expected {want}, found {got})"
        )
    nnx.replace_by_pure_dict(state, jax.tree.map(np.asarray, payload["params"]))
    nnx.update(model, state)

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
    return model, {"extra": json.loads(payload.get("extra", "{}")), "opt_state": restored_opt}
