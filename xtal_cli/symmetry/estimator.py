"""``SymmetryModel``: crystal system and space group from peak features, as one estimator.

In the scikit-learn style: the constructor takes only hyper-parameters (checked at once, errors
name the parameter), :meth:`SymmetryModel.fit` learns from a :class:`FeatureSet` (or a matrix and
labels) and sets attributes ending in ``_``, :meth:`~SymmetryModel.predict_proba` gives class
probabilities aligned with ``classes_``, and :meth:`~SymmetryModel.predict` ranks candidates for
scans, feature sets or feature rows, checking scans against the range the model was trained on.
:meth:`~SymmetryModel.save` writes a ``symmetry-model/2`` HDF5 file of plain arrays and JSON, and
:meth:`~SymmetryModel.load` rebuilds the model from it without unpickling anything, so a model
file from someone else cannot run code. Training with held-out metrics and reports is
:func:`xtal_cli.symmetry.train.train_symmetry`, which returns a fitted ``SymmetryModel``.

    >>> model = SymmetryModel(n_estimators=100, seed=0).fit(read_features("features.h5"))
    >>> model.save("symmetry.h5")
    >>> SymmetryModel.load("symmetry.h5").predict(read_scan("scan.xy"), top=3)
"""

from __future__ import annotations

import os
import time

import numpy as np

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.symmetry.features import FeatureSet, FeatureSettings
from xtal_cli.symmetry.models import DEFAULTS, ENSEMBLES, MODELS, applicable
from xtal_cli.symmetry.predict import Prediction, check_row, compare_settings, unit_label

TARGETS = ("crystal_system", "space_group")
_MAX_FEATURES_NAMES = ("sqrt", "log2")


def targets_of(fs: FeatureSet, source: str = "") -> dict[str, np.ndarray]:
    """The two label columns as strings / ints; clear errors when a feature file has no labels."""
    missing = [t for t in TARGETS if t not in fs.labels]
    if missing:
        raise XtalError(
            f"{source or 'features'}: no {' or '.join(missing)} labels (measured-scan features "
            "cannot train); featurize a patterns file written by xtal simulate"
        )
    return _label_arrays(fs.labels["crystal_system"], fs.labels["space_group"])


def _label_arrays(cs, sg) -> dict[str, np.ndarray]:
    return {
        "crystal_system": np.asarray(cs).astype(str),
        "space_group": np.asarray(sg).astype(np.int64),
    }


def work_units(model: str, params: dict) -> int:
    """Progress steps of one fit: trees for ensembles, 1 otherwise."""
    return int(params.get("n_estimators", 1)) if model in ENSEMBLES else 1


class SymmetryModel:
    """Extra-trees (or another of :data:`~xtal_cli.symmetry.models.MODELS`) for crystal system
    and space group, one classifier per target.

    Hyper-parameters left ``None`` take the model's defaults (:data:`~.models.DEFAULTS`: 500
    trees, depth 30, 9 features per split for extra-trees). ``params`` passes any other
    scikit-learn parameter (``{"min_samples_leaf": 2}``, ``{"max_depth": None}`` for unlimited
    depth); ``target_params`` overrides per target (what a hyper-parameter search found);
    parameters that do not apply to the model (trees for kNN) are ignored. ``n_jobs`` is the
    number of fitting processes (-1: every core); results do not depend on it.

    Fitted attributes: ``classes_`` (target → label array, the column order of
    :meth:`predict_proba`), ``estimators_``, ``params_`` (target → parameters used),
    ``feature_settings_``, ``feature_names_``, ``space_group_symbols_``, ``training_`` (rows,
    data fingerprint, first-peak percentiles, split), ``metrics_`` (held-out metrics when made
    by :func:`~xtal_cli.symmetry.train.train_symmetry`) and ``fit_seconds_``.
    """

    def __init__(
        self,
        model: str = "extra-trees",
        *,
        n_estimators: int | None = None,
        max_depth: int | None = None,
        max_features: int | float | str | None = None,
        params: dict | None = None,
        target_params: dict | None = None,
        seed: int = 0,
        n_jobs: int = 1,
    ):
        self.model = model
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.max_features = max_features
        self.params = params
        self.target_params = target_params
        self.seed = seed
        self.n_jobs = n_jobs
        self._validate()

    # -- hyper-parameters -----------------------------------------------------------------------
    def _validate(self) -> None:
        if self.model not in MODELS:
            raise ParameterError("model", self.model, f"use one of {', '.join(MODELS)}")
        for name in ("params", "target_params"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, dict) and all(isinstance(k, str) for k in value)
            ):
                raise ParameterError(name, value, "use a dict of parameter names, or None")
        for target, value in (self.target_params or {}).items():
            if target not in TARGETS or not isinstance(value, dict):
                raise ParameterError(
                    "target_params",
                    self.target_params,
                    f"keys are {' and '.join(TARGETS)} with dicts of parameters",
                )
        # the tree settings as each classifier gets them: given directly, in params or per target
        for target in TARGETS:
            merged = self.estimator_params(target)
            for name in ("n_estimators", "max_depth"):
                value = merged.get(name)
                if value is not None and not (_is_int(value) and value >= 1):
                    raise ParameterError(name, value, "use a positive whole number, or None")
            mf = merged.get("max_features")
            ok = (
                mf is None
                or (_is_int(mf) and mf >= 1)
                or (isinstance(mf, float) and 0.0 < mf <= 1.0)
                or mf in _MAX_FEATURES_NAMES
            )
            if not ok:
                raise ParameterError(
                    "max_features",
                    mf,
                    "use a count >= 1, a fraction in (0, 1], 'sqrt', 'log2' or None",
                )
        if not (_is_int(self.seed) and self.seed >= 0):
            raise ParameterError("seed", self.seed, "use a whole number >= 0")
        if not (_is_int(self.n_jobs) and (self.n_jobs >= 1 or self.n_jobs == -1)):
            raise ParameterError(
                "n_jobs", self.n_jobs, "use a positive number, or -1 for all cores"
            )

    _PARAM_NAMES = ("model", "n_estimators", "max_depth", "max_features", "params",
                    "target_params", "seed", "n_jobs")  # fmt: skip

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._PARAM_NAMES}

    def set_params(self, **params) -> SymmetryModel:
        unknown = set(params) - set(self._PARAM_NAMES)
        if unknown:
            raise XtalError(f"{', '.join(sorted(unknown))}: not a SymmetryModel parameter")
        for name, value in params.items():
            setattr(self, name, value)
        self._validate()
        return self

    def __repr__(self) -> str:
        defaults = SymmetryModel().get_params()
        changed = {k: v for k, v in self.get_params().items() if v != defaults[k]}
        return f"SymmetryModel({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def estimator_params(self, target: str) -> dict:
        """The overrides of the model's defaults that *target*'s classifier gets."""
        p = dict(self.params or {})
        for name in ("n_estimators", "max_depth", "max_features"):
            if getattr(self, name) is not None:
                p[name] = getattr(self, name)
        p.update((self.target_params or {}).get(target, {}))
        return p

    # -- fitting --------------------------------------------------------------------------------
    def fit(
        self,
        X,
        y=None,
        *,
        settings: FeatureSettings | None = None,
        classes: dict | None = None,
        symbols: dict | None = None,
        progress=None,
    ) -> SymmetryModel:
        """Fit both classifiers.

        *X*: a labelled :class:`FeatureSet` (its ``crystal_system`` and ``space_group`` labels
        and settings are used), or an (N, F) matrix with *y* = ``{"crystal_system": ...,
        "space_group": ...}`` (or the two arrays in that order) and optionally the
        :class:`FeatureSettings` that made it (needed to predict scans). *classes*: every label
        of each target, when the rows are a subset (a held-out split) of a larger set.
        *progress*: ``progress(target, total)`` returning a per-step callable.
        """
        from xtal_cli.io.bundles import fingerprint
        from xtal_cli.symmetry.models import fit_model

        if isinstance(X, FeatureSet):
            fs = X
            labels = targets_of(fs)
            settings = settings or fs.settings
            if symbols is None and "space_group_symbol" in fs.labels:
                symbols = _symbols(labels["space_group"], fs.labels["space_group_symbol"])
            X = fs.X
        else:
            if y is None:
                raise XtalError("y: give the crystal_system and space_group labels of the rows")
            if isinstance(y, dict):
                missing = [t for t in TARGETS if t not in y]
                if missing:
                    raise XtalError(f"y: no {' or '.join(missing)} labels")
                labels = _label_arrays(y["crystal_system"], y["space_group"])
            else:
                cs, sg = y
                labels = _label_arrays(cs, sg)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or not len(X):
            raise XtalError(f"X: expected a non-empty (rows, features) matrix, got shape {X.shape}")
        if any(len(v) != len(X) for v in labels.values()):
            raise XtalError(f"y: label columns do not have the {len(X)} rows of X")
        if settings is not None and X.shape[1] != settings.n_features:
            raise XtalError(
                f"X: {X.shape[1]} columns, but the feature settings make {settings.n_features}"
            )
        classes = {t: np.unique(labels[t]) for t in TARGETS} if classes is None else classes
        self.classes_, self.estimators_, self.params_, self.fit_seconds_ = {}, {}, {}, {}
        self._train_rows = {}
        for target in TARGETS:
            known = np.asarray(classes[target]).astype(labels[target].dtype)
            y_idx = np.searchsorted(known, labels[target])
            if np.any(y_idx >= len(known)) or not np.array_equal(known[y_idx], labels[target]):
                raise XtalError(f"classes: some {target} labels are not among the classes given")
            p = self.estimator_params(target)
            used = {**DEFAULTS[self.model], **applicable(self.model, p)}
            step = progress(target, work_units(self.model, used)) if progress else None
            t0 = time.perf_counter()
            est = fit_model(
                self.model, p, X, y_idx, seed=self.seed, n_jobs=self.n_jobs, progress=step
            )
            self.fit_seconds_[target] = time.perf_counter() - t0
            self.classes_[target], self.estimators_[target] = known, est
            self.params_[target] = used
            if self.model == "knn":  # a kNN model is its training rows: the file stores them
                self._train_rows[target] = (X, y_idx)
        self.n_features_in_ = int(X.shape[1])
        self.feature_settings_ = settings
        self.feature_names_ = (
            settings.feature_names if settings else [f"x{i}" for i in range(X.shape[1])]
        )
        self.space_group_symbols_ = dict(symbols or {})
        self.training_ = {
            "n_rows": int(len(X)),
            "n_train": int(len(X)),
            "seed": self.seed,
            "fingerprint": fingerprint(X, labels["crystal_system"], labels["space_group"]),
            # percentiles 0..100 of the first peak's position: how far down the model expects data
            "first_peak_percentiles": np.percentile(X[:, 0], np.arange(101)).tolist(),
        }
        self.metrics_ = {}
        return self

    # -- prediction -----------------------------------------------------------------------------
    def predict_proba(self, X, targets: tuple[str, ...] = TARGETS) -> dict[str, np.ndarray]:
        """Target → (N, n_classes) probabilities, columns in the order of ``classes_[target]``."""
        from xtal_cli.symmetry.models import proba_for

        self._check_fitted()
        X = self._matrix(X)
        return {
            t: proba_for(self.estimators_[t], X, np.arange(len(self.classes_[t]))) for t in targets
        }

    def rank(self, X, top: int = 5) -> list[tuple[list, list]]:
        """Per row: the *top* ``(crystal system, p)`` and ``(number, symbol, p)``, best first."""
        proba = self.predict_proba(X)
        out = {}
        for target in TARGETS:
            labels = np.asarray(self.classes_[target])
            k = min(top, proba[target].shape[1])
            idx = np.argsort(-proba[target], axis=1, kind="stable")[:, :k]
            out[target] = (labels[idx], np.take_along_axis(proba[target], idx, axis=1))
        symbols = self.space_group_symbols_
        results = []
        for i in range(len(proba["crystal_system"])):
            cs_names, cs_p = out["crystal_system"][0][i], out["crystal_system"][1][i]
            sg_nums, sg_p = out["space_group"][0][i], out["space_group"][1][i]
            results.append(
                (
                    [(str(n), float(p)) for n, p in zip(cs_names, cs_p)],
                    [(int(n), symbols.get(int(n), ""), float(p)) for n, p in zip(sg_nums, sg_p)],
                )
            )
        return results

    def predict(
        self, inputs, top: int = 5, *, ka2: str = "auto", prominence: float | None = None
    ) -> list[Prediction]:
        """Ranked candidates for a :class:`~xtal_cli.io.scans.Scan`, a list of scans, a
        :class:`FeatureSet` or a feature matrix (rows in the model's feature settings).

        Scans (and features of scans) are checked against the model's range: a row the model
        cannot answer gets ``Prediction.error``, one it answers with caveats gets ``warnings``.
        *ka2* and *prominence* apply to peak picking in scans.
        """
        from xtal_cli.io.scans import Scan

        self._check_fitted()
        if top < 1:
            raise XtalError(f"top {top}: must be at least 1")
        if isinstance(inputs, FeatureSet):
            return self._predict_set(inputs, top, check=inputs.attrs.get("source") == "scan")
        if isinstance(inputs, Scan):
            inputs = [inputs]
        if isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], Scan):
            return self._predict_scans(list(inputs), top, ka2, prominence)
        if isinstance(inputs, (list, tuple)) and not inputs:
            return []
        X = self._matrix(inputs)
        s = self.feature_settings_
        preds = []
        for i, (cs, sg) in enumerate(self.rank(X, top)):
            n_found = int(X[i, s.n_peaks]) if s is not None else 0
            preds.append(Prediction(id=str(i), crystal_systems=cs, space_groups=sg,
                                    n_peaks=n_found))  # fmt: skip
        return preds

    def _predict_scans(self, scans, top: int, ka2: str, prominence) -> list[Prediction]:
        from xtal_cli.symmetry.features import featurize_scans

        settings = self._settings()
        preds: list[Prediction] = []
        for i, scan in enumerate(scans):
            pid = str(scan.meta.get("id") or os.path.basename(scan.path) or f"scan{i}")
            try:
                fs = featurize_scans([scan], settings, ka2=ka2, prominence=prominence)
            except ParameterError:  # a setting, not this scan, is wrong: no scan can be answered
                raise
            except XtalError as exc:
                preds.append(Prediction(id=pid, error=_prefixed(pid, str(exc))))
                continue
            if fs.failures:
                fid, _, reason = fs.failures[0]
                preds.append(Prediction(id=str(fid), error=_prefixed(str(fid), reason)))
                continue
            preds.extend(self._predict_set(fs, top, check=True))
        return preds

    def _predict_set(self, fs: FeatureSet, top: int, check: bool) -> list[Prediction]:
        settings = self._settings()
        mismatch = compare_settings(fs.settings, settings)
        if mismatch:
            raise XtalError(
                f"features were made with {mismatch}; featurize the data again with the model's "
                "settings"
            )
        label = unit_label(settings.unit)
        first_peaks = self.training_.get("first_peak_percentiles")
        preds, ok_rows = [], []
        for i, pid in enumerate(fs.ids):
            pred = Prediction(id=str(pid), n_peaks=int(fs.n_found[i]))
            if check:
                try:
                    pred.warnings = check_row(
                        fs.settings, int(fs.n_found[i]), fs.coverage[i], label, first_peaks
                    )
                except XtalError as exc:
                    pred.error = _prefixed(str(pid), str(exc))
            if pred.error is None:
                ok_rows.append(i)
            preds.append(pred)
        if ok_rows:
            for i, (cs, sg) in zip(ok_rows, self.rank(fs.X[ok_rows], top)):
                preds[i].crystal_systems, preds[i].space_groups = cs, sg
        return preds

    # -- model files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, compress: int = 0) -> int:
        """Write a ``symmetry-model/2`` file atomically (plain arrays + JSON); returns its bytes.

        *compress*: gzip level 0-9 of the arrays (0 is fastest to open: arrays are mapped).
        """
        from xtal_cli.io.bundles import write_model_file
        from xtal_cli.symmetry.models import estimator_arrays

        self._check_fitted()
        arrays, infos = {}, {}
        for target in TARGETS:
            part, info = estimator_arrays(
                self.model, self.estimators_[target], self._train_rows.get(target)
            )
            arrays.update({f"{target}/{name}": value for name, value in part.items()})
            infos[target] = info
        settings = self.feature_settings_
        metadata = {
            "hyper_parameters": self.get_params(),
            "model": self.model,
            "params": self.params_,
            "n_features_in": self.n_features_in_,
            "feature_settings": settings.as_dict() if settings else None,
            "feature_names": list(self.feature_names_),
            "classes": {t: np.asarray(self.classes_[t]).tolist() for t in TARGETS},
            "space_group_symbols": {str(k): v for k, v in self.space_group_symbols_.items()},
            "estimators": infos,
            "training": self.training_,
            "metrics": self.metrics_,
            "fit_seconds": self.fit_seconds_,
        }
        return write_model_file(path, "symmetry-model", metadata, arrays, compress=compress)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SymmetryModel:
        """Read a ``symmetry-model/2`` file (checked; nothing in it is unpickled or executed)."""
        from xtal_cli.io.bundles import read_model_file

        meta, arrays = read_model_file(path, "symmetry-model")
        if meta.get("model") == "cnn":
            raise XtalError(
                f"{path}: holds a cnn profile model; open it with "
                "xtal_cli.symmetry.profile_model.load_symmetry_model"
            )
        return cls.from_file_parts(path, meta, arrays)

    @classmethod
    def from_file_parts(cls, path, meta: dict, arrays: dict) -> SymmetryModel:
        """Rebuild from what :func:`~xtal_cli.io.bundles.read_model_file` returned (checked)."""
        from xtal_cli.symmetry.models import estimator_from_arrays

        try:
            self = cls(**meta["hyper_parameters"])
            fs = meta["feature_settings"]
            self.feature_settings_ = FeatureSettings(**fs) if fs is not None else None
            self.params_ = {t: dict(meta["params"][t]) for t in TARGETS}
            self.n_features_in_ = int(meta["n_features_in"])
            self.feature_names_ = [str(n) for n in meta["feature_names"]]
            self.classes_ = {
                "crystal_system": np.asarray(meta["classes"]["crystal_system"], dtype=str),
                "space_group": np.asarray(meta["classes"]["space_group"], dtype=np.int64),
            }
            self.space_group_symbols_ = {
                int(k): str(v) for k, v in meta["space_group_symbols"].items()
            }
            self.training_ = dict(meta["training"])
            self.metrics_ = dict(meta["metrics"])
            self.fit_seconds_ = dict(meta.get("fit_seconds", {}))
            self.estimators_, self._train_rows = {}, {}
            for target in TARGETS:
                prefix = target + "/"
                part = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
                self.estimators_[target] = estimator_from_arrays(
                    self.model, part, meta["estimators"][target], self.params_[target],
                    seed=self.seed,
                )  # fmt: skip
                if self.model == "knn":
                    self._train_rows[target] = (part["train_X"], part["train_y"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise XtalError(
                f"{path}: incomplete or inconsistent symmetry model ({type(exc).__name__}: "
                f"{exc}); retrain it with xtal train-symmetry"
            ) from None
        except XtalError as exc:
            raise XtalError(f"{path}: {exc}; retrain it with xtal train-symmetry") from None
        return self

    def predict_file(self, path, top: int = 5) -> list[Prediction]:
        """Predictions for a ``features/1`` file (model's settings) or a ``patterns/1`` file."""
        from xtal_cli.symmetry.predict import features_for_file

        return self.predict(features_for_file(self, path), top)

    @property
    def n_train(self) -> int:
        return int(self.training_.get("n_train", 0))

    # -- helpers --------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "estimators_"):
            raise XtalError("this SymmetryModel is not fitted; call fit() or SymmetryModel.load()")

    def _settings(self) -> FeatureSettings:
        if self.feature_settings_ is None:
            raise XtalError(
                "the model was fitted without feature settings, so it cannot featurize scans; "
                "fit it on a FeatureSet (or pass settings=) to predict scans"
            )
        return self.feature_settings_

    def _matrix(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise XtalError(
                f"X: expected (rows, {self.n_features_in_}) features as the model was trained "
                f"on, got shape {X.shape}"
            )
        return X


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _prefixed(pid: str, message: str) -> str:
    return message if message.startswith(pid) else f"{pid}: {message}"


def _symbols(numbers, symbols) -> dict[int, str]:
    out: dict[int, str] = {}
    for num, sym in zip(numbers, np.asarray(symbols)):
        out.setdefault(int(num), str(sym))
    return out
