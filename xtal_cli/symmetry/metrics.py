"""Held-out metrics of a symmetry classifier: accuracy, per-class and averaged precision, recall
and F1, top-k accuracy, and the normalised confusion matrix as a PNG."""

from __future__ import annotations

import os

import numpy as np


def top_k_accuracy(proba: np.ndarray, y: np.ndarray, k: int) -> float:
    """Fraction of rows whose true class index is among the k most probable (ties: stable)."""
    if len(y) == 0:
        return float("nan")
    k = min(k, proba.shape[1])
    top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == np.asarray(y)[:, None], axis=1)))


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, class_names: list[str], ks=(1, 5, 10)
) -> dict:
    """Metrics for integer labels *y_true* and probabilities over ``len(class_names)`` classes."""
    from sklearn.metrics import precision_recall_fscore_support

    y_pred = np.argmax(proba, axis=1)
    present = np.unique(np.concatenate([y_true, y_pred]))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    out = {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_pred == y_true)) if len(y_true) else float("nan"),
    }
    for k in ks:  # k >= number of classes gives 1.0, which is the truth
        out[f"top{k}"] = top_k_accuracy(proba, y_true, k)
    for avg in ("macro", "weighted"):
        pa, ra, fa, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=present, average=avg, zero_division=0
        )
        out[f"precision_{avg}"] = float(pa)
        out[f"recall_{avg}"] = float(ra)
        out[f"f1_{avg}"] = float(fa)
    out["per_class"] = {
        str(class_names[c]): {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, c in enumerate(present)
    }
    return out


def confusion_png(
    y_true, y_pred, class_names: list[str], path: str | os.PathLike, title: str
) -> None:
    """Row-normalised confusion matrix (recall on the diagonal) as a PNG, written atomically."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone
    from sklearn.metrics import confusion_matrix

    from xtal_cli.io.h5 import atomic_path

    labels = np.arange(len(class_names))
    cm = confusion_matrix(y_true, y_pred, labels=labels).astype(float)
    rows = cm.sum(axis=1, keepdims=True)
    cm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(class_names)
    size = 4 + 0.45 * n if n <= 20 else 12
    fig = Figure(figsize=(size, size * 0.85))
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    if n <= 20:
        ax.set_xticks(labels, class_names, rotation=45, ha="right")
        ax.set_yticks(labels, class_names)
        for i in range(n):
            for j in range(n):
                if cm[i, j] >= 0.005:
                    color = "white" if cm[i, j] > 0.5 else "black"
                    ax.text(
                        j, i, f"{cm[i, j]:.2f}", ha="center", va="center", color=color, fontsize=8
                    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
