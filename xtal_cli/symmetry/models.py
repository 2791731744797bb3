"""The classifiers of the published algorithm comparison, with their defaults and search spaces.

Extra-trees is the paper's choice (500 trees, max depth 30, 9 of the 11 features per split);
random forest, k-nearest neighbours, one decision tree and (standardised) logistic regression are
the alternatives it compares against. Tree ensembles are fitted batch-wise into a
:class:`~xtal_cli.symmetry.forest.CompactForest` so that big space-group models stay small.
"""

from __future__ import annotations

import numpy as np

from xtal_cli.errors import XtalError

MODELS = ("extra-trees", "random-forest", "knn", "decision-tree", "logistic-regression")
DEFAULT_MODEL = "extra-trees"
ENSEMBLES = ("extra-trees", "random-forest")

# Published settings (Suzuki et al. 2020) for extra-trees; scikit-learn's customary ones otherwise.
DEFAULTS: dict[str, dict] = {
    "extra-trees": {"n_estimators": 500, "max_depth": 30, "max_features": 9},
    "random-forest": {"n_estimators": 500, "max_depth": 30, "max_features": 9},
    "knn": {"n_neighbors": 10, "weights": "distance"},
    "decision-tree": {"max_depth": 30},
    "logistic-regression": {"C": 10.0, "max_iter": 1000},
}

SEARCH_SPACES: dict[str, dict] = {
    "extra-trees": {
        "max_depth": [10, 15, 20, 25, 30, 40, None],
        "max_features": [3, 5, 7, 9, 11],
        "min_samples_leaf": [1, 2, 3, 5],
    },
    "random-forest": {
        "max_depth": [10, 15, 20, 25, 30, None],
        "max_features": [2, 3, 5, 7, 9],
        "min_samples_leaf": [1, 2, 3, 5],
    },
    "knn": {"n_neighbors": [1, 3, 5, 10, 15, 20, 30, 50], "weights": ["uniform", "distance"]},
    "decision-tree": {
        "max_depth": [5, 10, 15, 20, 30, None],
        "min_samples_leaf": [1, 2, 5, 10, 20],
        "criterion": ["gini", "entropy"],
    },
    "logistic-regression": {"C": [0.01, 0.1, 1.0, 10.0, 100.0]},
}


def check_model(name: str) -> str:
    if name not in MODELS:
        raise XtalError(f"unknown model {name!r}; use one of {', '.join(MODELS)}")
    return name


_TREE_KEYS = ("max_depth", "max_features", "min_samples_leaf", "min_samples_split", "criterion")


def applicable(name: str, params: dict) -> dict:
    """*params* without the options that do not apply to *name* (e.g. --trees for knn)."""
    drop = set()
    if name not in ENSEMBLES:
        drop.add("n_estimators")
    if name in ("knn", "logistic-regression"):
        drop.update(_TREE_KEYS)
    return {k: v for k, v in params.items() if k not in drop}


def make_estimator(name: str, params: dict, *, seed: int, n_jobs: int = 1):
    """An unfitted scikit-learn estimator (for ensembles: the full forest, used by --search)."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    p = {**DEFAULTS[check_model(name)], **applicable(name, params)}
    if name == "extra-trees":
        return ExtraTreesClassifier(**p, random_state=seed, n_jobs=n_jobs)
    if name == "random-forest":
        return RandomForestClassifier(**p, random_state=seed, n_jobs=n_jobs)
    if name == "decision-tree":
        return DecisionTreeClassifier(**p, random_state=seed)
    if name == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(**p, n_jobs=n_jobs))
    return make_pipeline(StandardScaler(), LogisticRegression(**p, random_state=seed))


def fit_model(name: str, params: dict, X, y, *, seed: int, n_jobs: int = 1, progress=None):
    """Fit *name* on (X, y). Tree models come back compact; others as scikit-learn objects."""
    from xtal_cli.symmetry.forest import CompactForest, fit_compact_forest

    p = {**DEFAULTS[check_model(name)], **applicable(name, params)}
    if name in ENSEMBLES:
        n_trees = int(p.pop("n_estimators"))
        n_features = X.shape[1]
        if isinstance(p.get("max_features"), int):
            p["max_features"] = min(p["max_features"], n_features)

        def make(n, rs):
            return make_estimator(name, {**p, "n_estimators": n}, seed=rs, n_jobs=n_jobs)

        return fit_compact_forest(make, X, y, n_trees, seed=seed, name=name, progress=progress)
    est = make_estimator(name, p, seed=seed, n_jobs=n_jobs).fit(X, y)
    if progress is not None:
        progress(1)
    if name == "decision-tree":
        return CompactForest.from_sklearn(est, name)
    return est


def model_size(est) -> int:
    """Bytes a fitted model occupies when pickled (for reports)."""
    import pickle

    return len(pickle.dumps(est, protocol=5))


def proba_for(est, X, classes: np.ndarray) -> np.ndarray:
    """predict_proba aligned to *classes* (estimators may have seen fewer classes in training)."""
    proba = est.predict_proba(X)
    seen = np.asarray(est.classes_)
    if np.array_equal(seen, classes):
        return proba
    out = np.zeros((proba.shape[0], len(classes)))
    out[:, np.searchsorted(classes, seen)] = proba
    return out


# Fitted attributes that rebuild each scikit-learn part without unpickling (model files).
_SCALER_ATTRS = ("mean_", "scale_", "var_")
_LOGISTIC_ATTRS = ("classes_", "coef_", "intercept_", "n_iter_")


def estimator_arrays(name: str, est, train=None) -> tuple[dict, dict]:
    """A fitted model as plain arrays and JSON-able info, for a model file.

    Trees: the :class:`~xtal_cli.symmetry.forest.CompactForest` arrays. kNN: the scaler and the
    training rows *train* ``(X, y)`` it was fitted on (a kNN model is its data; refitting on load
    is cheap). Logistic regression: scaler and coefficients.
    """
    if name not in ("knn", "logistic-regression"):
        return est.to_arrays()
    scaler, clf = est.steps[0][1], est.steps[-1][1]
    arrays = {f"scaler_{a.rstrip('_')}": np.asarray(getattr(scaler, a)) for a in _SCALER_ATTRS}
    info = {"n_features_in": int(scaler.n_features_in_),
            "n_samples_seen": int(scaler.n_samples_seen_)}  # fmt: skip
    if name == "knn":
        X, y = train
        arrays["train_X"] = np.asarray(X, dtype=np.float64)
        arrays["train_y"] = np.asarray(y, dtype=np.int64)
    else:
        arrays.update({a.rstrip("_"): np.asarray(getattr(clf, a)) for a in _LOGISTIC_ATTRS})
        # the solver leaves coef_ in Fortran order; the same order gives bit-equal products
        coef = arrays["coef"]
        info["coef_order"] = "F" if coef.flags.f_contiguous and not coef.flags.c_contiguous else "C"
    return arrays, info


def estimator_from_arrays(name: str, arrays: dict, info: dict, params: dict, *, seed: int):
    """The fitted model :func:`estimator_arrays` described; predicts exactly as the original."""
    from xtal_cli.symmetry.forest import CompactForest

    if name not in ("knn", "logistic-regression"):
        return CompactForest.from_arrays(arrays, info)
    est = make_estimator(name, params, seed=seed, n_jobs=1)
    scaler, clf = est.steps[0][1], est.steps[-1][1]
    for a in _SCALER_ATTRS:
        setattr(scaler, a, np.array(arrays[f"scaler_{a.rstrip('_')}"]))
    scaler.n_features_in_ = int(info["n_features_in"])
    scaler.n_samples_seen_ = int(info["n_samples_seen"])
    if name == "knn":
        clf.fit(scaler.transform(np.array(arrays["train_X"])), np.array(arrays["train_y"]))
    else:
        for a in _LOGISTIC_ATTRS:
            setattr(clf, a, np.array(arrays[a.rstrip("_")]))
        clf.coef_ = np.array(clf.coef_, order=info.get("coef_order", "C"))
        clf.n_features_in_ = int(info["n_features_in"])
    return est
