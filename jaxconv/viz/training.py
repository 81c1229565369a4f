"""Training plots: loss/accuracy curves per epoch and a confusion matrix.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot state, no display needed);
each function takes ``ax=`` and returns the figure it drew on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from numpy.typing import ArrayLike

__all__ = ["plot_confusion_matrix", "plot_training_curves"]


def _history(history: Any) -> list[Mapping]:
    if isinstance(history, Mapping):  # a metrics dict (metrics.json) holding "history"
        history = history.get("history", [])
    history = list(history)
    if not history:
        raise ValueError("plot_training_curves: history is empty (no epoch to plot)")
    return history


def plot_training_curves(history: Mapping[str, Any] | Sequence[Mapping[str, Any]], *,
                         ax: Axes | Sequence[Axes] | None = None,
                         title: str | None = None) -> Figure | SubFigure:
    """Loss and accuracy per epoch, train and test.

    Args:
      history: a list of per-epoch dicts with ``epoch`` and any of ``train_loss``,
        ``test_loss``, ``train_accuracy``, ``test_accuracy`` (as ``jaxconv train`` writes), or
        a metrics dict holding such a list under ``"history"``.
      ax: ``None`` (a new figure with two panels), a pair of Axes ``(loss_ax, acc_ax)``, or one
        Axes (loss on it, accuracy on a twin y-axis).
      title: figure title.

    Returns:
      The figure drawn on (a ``SubFigure`` when ``ax`` lies in one).
    """
    history = _history(history)
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    single = isinstance(ax, Axes)
    fig: Figure | SubFigure
    if ax is None:
        fig = Figure(figsize=(9, 3.6), layout="constrained")
        loss_ax, acc_ax = fig.subplots(1, 2)
    elif isinstance(ax, Axes):
        loss_ax, acc_ax = ax, ax.twinx()
        fig = ax.figure
    else:
        loss_ax, acc_ax = ax
        fig = loss_ax.figure
    for key, style in (("train_loss", "-"), ("test_loss", "--")):
        if any(key in h for h in history):
            loss_ax.plot(epochs, [h.get(key, np.nan) for h in history], style, color="C0",
                         label=key.replace("_", " "))
    for key, style in (("train_accuracy", "-"), ("test_accuracy", "--")):
        if any(key in h for h in history):
            acc_ax.plot(epochs, [100 * h.get(key, np.nan) for h in history], style, color="C1",
                        label=key.replace("_", " "))
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("cross-entropy loss")
    acc_ax.set_ylabel("accuracy (%)")
    if not single:
        acc_ax.set_xlabel("epoch")
        loss_ax.set_title("loss")
        acc_ax.set_title("accuracy")
    for a in (loss_ax, acc_ax):
        if a.get_legend_handles_labels()[0]:
            a.legend(loc="center right" if a is acc_ax else "upper right", fontsize="small")
        a.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_confusion_matrix(cm: ArrayLike, *, ax: Axes | None = None,
                          labels: Sequence[str] | None = None, normalize: bool = False,
                          title: str | None = None) -> Figure | SubFigure:
    """A confusion matrix as an annotated heat map (rows: true class, columns: predicted).

    Args:
      cm: ``(K, K)`` counts (e.g. ``metrics["confusion_matrix"]``).
      ax: Axes to draw on; ``None`` makes a new figure.
      labels: class names (default ``0..K-1``).
      normalize: show each row as fractions of its true class.
      title: axes title (default: the accuracy).

    Returns:
      The figure drawn on (a ``SubFigure`` when ``ax`` lies in one).
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"plot_confusion_matrix: cm must be a square (K, K) matrix, got shape {cm.shape}")
    k = cm.shape[0]
    labels = [str(i) for i in range(k)] if labels is None else [str(s) for s in labels]
    if len(labels) != k:
        raise ValueError(f"plot_confusion_matrix: {len(labels)} labels for a {k}x{k} matrix")
    fig: Figure | SubFigure
    if ax is None:
        fig = Figure(figsize=(5.2, 4.6), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    rows = cm.sum(axis=1, keepdims=True)
    shown = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0) if normalize else cm
    im = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    threshold = shown.max() / 2 if shown.size else 0
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                text = f"{shown[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize="small",
                        color="white" if shown[i, j] > threshold else "black")
    ax.set_xticks(range(k), labels)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = cm.sum()
    acc = np.trace(cm) / total if total else float("nan")
    ax.set_title(title if title is not None else f"accuracy {100 * acc:.2f}% ({int(total)} images)")
    return fig
