"""Why a symmetry model decides as it does: feature importances (Gini, permutation, mean |SHAP|),
accuracy against the number of peaks used (the paper's Fig. 2.9), and a shallow decision tree
printed as if-then rules (Fig. 2.10, e.g. cubic vs not)."""

from __future__ import annotations

import numpy as np


def permutation_importance(est, X, y_idx, classes, *, n_repeats=5, seed=0, max_rows=2000) -> dict:
    """Mean and std of the accuracy drop when one feature column is shuffled (held-out rows)."""
    from xtal_cli.symmetry.models import proba_for

    rng = np.random.default_rng(seed)
    if len(X) > max_rows:
        rows = rng.choice(len(X), max_rows, replace=False)
        X, y_idx = X[rows], y_idx[rows]

    def acc(data):
        return float(np.mean(np.argmax(proba_for(est, data, classes), axis=1) == y_idx))

    base = acc(X)
    drops = np.zeros((X.shape[1], n_repeats))
    for j in range(X.shape[1]):
        for r in range(n_repeats):
            Xp = X.copy()
            Xp[:, j] = rng.permutation(Xp[:, j])
            drops[j, r] = base - acc(Xp)
    return {"mean": drops.mean(axis=1).tolist(), "std": drops.std(axis=1).tolist(), "n": len(X)}


def mean_abs_shap(X_train, y_train, X_eval, params: dict, *, seed=0, n_trees=20, max_rows=200):
    """Mean |SHAP| per feature of a small extra-trees model (``n_trees`` trees of the same
    settings) on up to ``max_rows`` rows, averaged over classes. Exact tree SHAP on the full
    500-tree model would take hours; a 20-tree forest ranks features the same way."""
    import shap
    from sklearn.ensemble import ExtraTreesClassifier

    p = {k: v for k, v in params.items() if k in ("max_depth", "max_features", "min_samples_leaf")}
    if isinstance(p.get("max_features"), int):
        p["max_features"] = min(p["max_features"], X_train.shape[1])
    est = ExtraTreesClassifier(n_estimators=n_trees, random_state=seed, **p).fit(X_train, y_train)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(X_eval), min(max_rows, len(X_eval)), replace=False)
    values = shap.TreeExplainer(est).shap_values(X_eval[rows], check_additivity=False)
    values = np.asarray(values)
    # shap returns (rows, features, classes) in recent versions, a list per class in older ones
    if values.ndim == 3 and values.shape[0] == len(rows):
        per_feature = np.abs(values).mean(axis=(0, 2))
    elif values.ndim == 3:
        per_feature = np.abs(values).mean(axis=(0, 1))
    else:
        per_feature = np.abs(values).mean(axis=0)
    return {"mean_abs": per_feature.tolist(), "n": int(len(rows)), "n_trees": n_trees}


def accuracy_vs_peaks(
    X_train, y_train, X_test, y_test, classes, n_peaks, params, *, seed=0, n_trees=100, n_jobs=1
):
    """Held-out accuracy when only the first k peak positions (plus the peak count) are used,
    for k = 1..n_peaks, with an extra-trees model of ``n_trees`` trees (the paper's Fig. 2.9)."""
    from xtal_cli.symmetry.models import fit_model, proba_for

    curve = []
    # the peak count follows the n_peaks positions; any further columns (indexing scores) stay
    extra = list(range(n_peaks, X_train.shape[1]))
    for k in range(1, n_peaks + 1):
        cols = list(range(k)) + extra
        p = {**params, "n_estimators": n_trees}
        est = fit_model("extra-trees", p, X_train[:, cols], y_train, seed=seed, n_jobs=n_jobs)
        proba = proba_for(est, X_test[:, cols], classes)
        curve.append(float(np.mean(np.argmax(proba, axis=1) == y_test)))
    return {"k": list(range(1, n_peaks + 1)), "accuracy": curve, "n_trees": n_trees}


def rules(X, labels, feature_names, target: str, *, depth: int = 3, seed: int = 0) -> dict:
    """A shallow decision tree separating ``labels == target`` from the rest, as if-then rules."""
    from sklearn.tree import DecisionTreeClassifier, export_text

    y = np.where(np.asarray(labels).astype(str) == target, target, f"not {target}")
    if len(np.unique(y)) < 2:
        return {"target": target, "text": f"(no {target} and non-{target} examples to separate)"}
    tree = DecisionTreeClassifier(max_depth=depth, random_state=seed, class_weight="balanced")
    tree.fit(X, y)
    text = export_text(tree, feature_names=list(feature_names), show_weights=False, decimals=3)
    return {
        "target": target,
        "depth": depth,
        "training_accuracy": float(tree.score(X, y)),
        "text": text,
    }


def importance_png(names, series: dict[str, list[float]], path, title: str) -> None:
    """Bar chart of one or more importance series per feature."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    from xtal_cli.io.h5 import atomic_path

    x = np.arange(len(names))
    width = 0.8 / max(1, len(series))
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    for i, (label, values) in enumerate(series.items()):
        v = np.asarray(values, dtype=float)
        v = v / v.max() if v.max() > 0 else v
        ax.bar(x + i * width - 0.4 + width / 2, v, width, label=label)
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel("importance (scaled to max 1)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def curve_png(curve: dict, path, title: str) -> None:
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    from xtal_cli.io.h5 import atomic_path

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for target, c in curve.items():
        ax.plot(c["k"], np.asarray(c["accuracy"]) * 100, marker="o", label=target)
    ax.set_xlabel("number of peak positions used (+ peak count)")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
