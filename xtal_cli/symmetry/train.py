"""Training crystal-system and space-group classifiers on peak features, with held-out reports.

``train_symmetry(features, TrainOptions(...))`` splits the rows (random, by year, or grouped),
optionally runs a randomised hyper-parameter search with cross-validation on the training part,
fits a :class:`~xtal_cli.symmetry.estimator.SymmetryModel` on the training part, evaluates it on
the held-out part and returns the fitted model (with its metrics and training information) and a
report.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.io.jsonable import write_json
from xtal_cli.symmetry.estimator import TARGETS, SymmetryModel, targets_of
from xtal_cli.symmetry.features import FeatureSet
from xtal_cli.symmetry.models import DEFAULTS, ENSEMBLES, MODELS
from xtal_cli.xrd.labels import CRYSTAL_SYSTEMS

__all__ = ["SPLITS", "TARGETS", "TrainOptions", "split_indices", "targets_of", "train_symmetry"]
SPLITS = ("random", "year", "group")


@dataclass
class TrainOptions:
    """How :func:`train_symmetry` splits, searches and explains; checked on construction."""

    model: str = "extra-trees"
    params: dict = field(default_factory=dict)  # overrides of models.DEFAULTS[model]
    split: str = "random"
    test_size: float = 0.2
    seed: int = 0
    n_jobs: int = 1
    group_by: str = "formula"  # column for --split group
    year_cutoff: float | None = None  # --split year: train on year <= cutoff
    search: int = 0  # randomised-search iterations (0 = none)
    search_trees: int = 50  # trees per ensemble during the search (memory and time)
    permutation: bool = True  # permutation importances on up to 2000 held-out rows
    shap: bool = False
    rules: str | None = None  # a crystal system to separate from the rest
    rules_depth: int = 3
    curve: bool = False  # accuracy against the number of peaks used
    curve_trees: int = 100
    report_dir: str | None = None

    def __post_init__(self):
        """Raise :class:`ParameterError` naming the first field with a value it cannot take."""
        if self.model not in MODELS:
            raise ParameterError("model", self.model, f"use one of {', '.join(MODELS)}")
        if not (isinstance(self.params, dict) and all(isinstance(k, str) for k in self.params)):
            raise ParameterError("params", self.params, "use a dict of parameter names")
        if self.split not in SPLITS:
            raise ParameterError("split", self.split, f"use one of {', '.join(SPLITS)}")
        if not (isinstance(self.test_size, numbers.Real) and 0.0 < self.test_size < 1.0):
            raise ParameterError("test_size", self.test_size, "must be a fraction between 0 and 1")
        if not isinstance(self.group_by, str):
            raise ParameterError("group_by", self.group_by, "must be a column name")
        if self.year_cutoff is not None and not np.isfinite(self.year_cutoff):
            raise ParameterError("year_cutoff", self.year_cutoff, "must be a year, or None")
        if self.rules is not None and self.rules not in CRYSTAL_SYSTEMS:
            raise ParameterError(
                "rules", self.rules, f"use a crystal system: {', '.join(CRYSTAL_SYSTEMS)}"
            )
        least = {"seed": 0, "search": 0, "search_trees": 1, "rules_depth": 1, "curve_trees": 1}
        for name, low in least.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ParameterError(name, value, f"must be a whole number of at least {low}")
        n = self.n_jobs
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or (n < 1 and n != -1):
            raise ParameterError("n_jobs", n, "use a number of workers, or -1 for all cores")


def _column(fs: FeatureSet, name: str) -> np.ndarray | None:
    if name in fs.labels:
        return np.asarray(fs.labels[name])
    if name in fs.meta:
        return np.asarray(fs.meta[name])
    return None


def split_indices(fs: FeatureSet, opts: TrainOptions) -> tuple[np.ndarray, np.ndarray, dict]:
    """Train and test row indices for the chosen split, and a description of it."""
    n = len(fs)
    rng = np.random.default_rng(opts.seed)
    if opts.split == "random":
        order = rng.permutation(n)
        n_test = max(1, int(round(opts.test_size * n)))
        test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
        return train, test, {"split": "random", "test_size": opts.test_size}
    if opts.split == "year":
        years = _column(fs, "year")
        if years is None:
            raise ParameterError(
                "split", "year", "the features have no 'year' column; split at random or by group"
            )
        y = np.array([_to_float(v) for v in years])
        has = np.flatnonzero(np.isfinite(y))
        if len(has) < 10:
            raise ParameterError(
                "split", "year", f"only {len(has)} rows have a year; split at random or by group"
            )
        cutoff = opts.year_cutoff
        if cutoff is None:  # the year that leaves about test_size of the dated rows for testing
            cutoff = float(np.quantile(y[has], 1.0 - opts.test_size, method="lower"))
        train = has[y[has] <= cutoff]
        test = has[y[has] > cutoff]
        if not len(train) or not len(test):
            raise XtalError(f"year cutoff {cutoff:g} leaves no training or no test rows")
        info = {"split": "year", "year_cutoff": cutoff, "rows_with_year": int(len(has))}
        return train, test, info
    if opts.split == "group":
        groups = _column(fs, opts.group_by)
        if groups is None:
            raise ParameterError(
                "group_by", opts.group_by, "the features have no such label or meta column"
            )
        from sklearn.model_selection import GroupShuffleSplit

        gss = GroupShuffleSplit(n_splits=1, test_size=opts.test_size, random_state=opts.seed)
        train, test = next(gss.split(np.zeros(n), groups=groups.astype(str)))
        return np.sort(train), np.sort(test), {"split": "group", "group_by": opts.group_by}
    raise ParameterError("split", opts.split, f"use one of {', '.join(SPLITS)}")


def _to_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _search(name, X, y, opts: TrainOptions, progress=None) -> dict:
    """Randomised search (3-fold CV, accuracy) over models.SEARCH_SPACES on the training rows."""
    from sklearn.model_selection import KFold, RandomizedSearchCV, StratifiedKFold

    from xtal_cli.symmetry.models import SEARCH_SPACES, make_estimator

    params = dict(opts.params)
    if name in ENSEMBLES:
        params["n_estimators"] = min(opts.search_trees, params.get("n_estimators", 10**9))
    est = make_estimator(name, params, seed=opts.seed, n_jobs=1)
    # classes with fewer than 3 members cannot be stratified; plain shuffled K-fold then.
    counts = np.bincount(y)
    stratify = counts[counts > 0].min() >= 3
    cv = (StratifiedKFold if stratify else KFold)(3, shuffle=True, random_state=opts.seed)
    search = RandomizedSearchCV(
        est,
        {_prefixed(est, k): v for k, v in SEARCH_SPACES[name].items()},
        n_iter=opts.search,
        cv=cv,
        scoring="accuracy",
        random_state=opts.seed,
        n_jobs=opts.n_jobs,
        error_score="raise",
    )
    search.fit(X, y)
    best = {k.split("__")[-1]: _plain(v) for k, v in search.best_params_.items()}
    return {"best_params": best, "best_cv_accuracy": float(search.best_score_)}


def _prefixed(est, key: str) -> str:
    steps = getattr(est, "steps", None)
    return f"{steps[-1][0]}__{key}" if steps else key


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def train_symmetry(
    fs: FeatureSet, opts: TrainOptions, *, source: str = "", progress=None, log=print
) -> tuple[SymmetryModel, dict]:
    """Fit, evaluate and explain; returns ``(fitted SymmetryModel, metrics_report)``.

    The label classes come from all rows, the classifiers from the training rows only; the
    model's ``metrics_`` are the held-out ones and ``training_`` says how the rows were split.
    """
    from xtal_cli.io.bundles import fingerprint
    from xtal_cli.symmetry import explain
    from xtal_cli.symmetry.metrics import classification_metrics, confusion_png
    from xtal_cli.symmetry.models import model_size

    model = SymmetryModel(opts.model, params=dict(opts.params), seed=opts.seed, n_jobs=opts.n_jobs)
    if len(fs) < 10:
        raise XtalError(f"{source or 'features'}: only {len(fs)} patterns; training needs more")
    labels = targets_of(fs, source)
    X = np.asarray(fs.X, dtype=np.float64)
    train, test, split_info = split_indices(fs, opts)
    names = fs.settings.feature_names
    report_dir = Path(opts.report_dir) if opts.report_dir else None
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)

    # classes (index -> label) from every row, so held-out labels have a column too
    classes = {t: np.unique(labels[t]) for t in TARGETS}
    y_all = {t: np.searchsorted(classes[t], labels[t]) for t in TARGETS}
    explain_out: dict = {}
    timings: dict[str, float] = {}
    if opts.search:
        found = {}
        for target in TARGETS:
            log(f"{target}: randomised search, {opts.search} candidates x 3 folds")
            t0 = time.perf_counter()
            result = _search(opts.model, X[train], y_all[target][train], opts)
            timings[f"{target}_search_s"] = time.perf_counter() - t0
            found[target] = result["best_params"]
            explain_out.setdefault("search", {})[target] = result
        model.set_params(target_params=found)
    symbols = {}
    if "space_group_symbol" in fs.labels:
        for num, sym in zip(labels["space_group"], np.asarray(fs.labels["space_group_symbol"])):
            symbols.setdefault(int(num), str(sym))
    model.fit(
        X[train],
        {t: labels[t][train] for t in TARGETS},
        settings=fs.settings,
        classes=classes,
        symbols=symbols,
        progress=progress,
    )

    metrics = {}
    for target in TARGETS:
        y = y_all[target]
        classes_idx = np.arange(len(classes[target]))
        est = model.estimators_[target]
        timings[f"{target}_fit_s"] = model.fit_seconds_[target]
        t0 = time.perf_counter()
        proba = model.predict_proba(X[test], targets=(target,))[target]
        timings[f"{target}_predict_s"] = time.perf_counter() - t0
        class_names = [str(c) for c in classes[target]]
        ks = (1, 5, 10) if target == "space_group" else (1, 2, 3)
        metrics[target] = classification_metrics(y[test], proba, class_names, ks)
        timings[f"{target}_model_bytes"] = model_size(est)

        imp = {}
        if hasattr(est, "feature_importances_"):
            imp["gini"] = np.asarray(est.feature_importances_).tolist()
        if opts.permutation:
            imp["permutation"] = explain.permutation_importance(
                est, X[test], y[test], classes_idx, seed=opts.seed
            )
        if opts.shap:
            t0 = time.perf_counter()
            imp["shap"] = explain.mean_abs_shap(
                X[train], y[train], X[test], model.params_[target], seed=opts.seed
            )
            timings[f"{target}_shap_s"] = time.perf_counter() - t0
        explain_out.setdefault("importances", {})[target] = imp

        if report_dir is not None:
            order = _display_order(target, class_names)
            remap = np.argsort(order)
            confusion_png(
                remap[y[test]],
                remap[np.argmax(proba, axis=1)],
                [class_names[i] for i in order],
                report_dir / f"confusion_{target}.png",
                f"{target.replace('_', ' ')} ({opts.model}, held-out {len(test)})",
            )
            series = {"Gini": imp["gini"]} if "gini" in imp else {}
            if "permutation" in imp:
                series["permutation"] = imp["permutation"]["mean"]
            if "shap" in imp:
                series["mean |SHAP|"] = imp["shap"]["mean_abs"]
            explain.importance_png(
                names, series, report_dir / f"importance_{target}.png", f"{target} importances"
            )

        if opts.curve:
            t0 = time.perf_counter()
            tree_params = (
                model.params_[target] if opts.model == "extra-trees" else DEFAULTS["extra-trees"]
            )
            tree_params = {k: v for k, v in tree_params.items() if k != "n_estimators"}
            curve = explain.accuracy_vs_peaks(
                X[train], y[train], X[test], y[test], classes_idx, fs.settings.n_peaks,
                tree_params, seed=opts.seed, n_trees=opts.curve_trees, n_jobs=opts.n_jobs,
            )  # fmt: skip
            timings[f"{target}_curve_s"] = time.perf_counter() - t0
            explain_out.setdefault("accuracy_vs_peaks", {})[target] = curve

    if opts.curve and report_dir is not None:
        explain.curve_png(
            explain_out["accuracy_vs_peaks"],
            report_dir / "accuracy_vs_peaks.png",
            "held-out accuracy vs peaks used",
        )
    if opts.rules:
        explain_out["rules"] = explain.rules(
            X[train], labels["crystal_system"][train], names, opts.rules,
            depth=opts.rules_depth, seed=opts.seed,
        )  # fmt: skip

    training = {
        "source": str(source),
        "n_rows": int(len(fs)),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "seed": opts.seed,
        "fingerprint": fingerprint(X, labels["crystal_system"], labels["space_group"]),
        "first_peak_percentiles": model.training_["first_peak_percentiles"],
        **split_info,
    }
    model.training_, model.metrics_ = training, metrics
    report = {
        "model": opts.model,
        "params": model.params_,
        "training": training,
        "metrics": metrics,
        "explain": explain_out,
        "timings": timings,
        "feature_settings": fs.settings.as_dict(),
        "feature_names": names,
        "options": {k: v for k, v in asdict(opts).items() if k != "report_dir"},
    }
    if report_dir is not None:
        write_json(report_dir / "metrics.json", report)
        if opts.rules:
            (report_dir / "rules.txt").write_text(explain_out["rules"]["text"])
    return model, report


def _display_order(target: str, class_names: list[str]) -> list[int]:
    if target == "crystal_system":
        rank = {c: i for i, c in enumerate(CRYSTAL_SYSTEMS)}
        return sorted(range(len(class_names)), key=lambda i: rank.get(class_names[i], 99))
    return sorted(range(len(class_names)), key=lambda i: int(class_names[i]))


def write_metrics_json(path, report: dict) -> None:
    write_json(path, report)
