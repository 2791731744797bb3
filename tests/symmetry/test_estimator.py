"""SymmetryModel: hyper-parameter checks, fit/predict on every input kind, save/load equality."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xtal_cli.errors import XtalError
from xtal_cli.symmetry.estimator import TARGETS, SymmetryModel
from xtal_cli.symmetry.models import MODELS

from .conftest import sticks_of, write_scan


@pytest.fixture(scope="module")
def features(pattern_set):
    from xtal_cli.symmetry.features import featurize_patterns

    return featurize_patterns(pattern_set, unit="q")


@pytest.fixture(scope="module")
def scans(small_structures, tmp_path_factory):
    from xtal_cli.symmetry.features import read_scan_with

    folder = tmp_path_factory.mktemp("scans")
    paths = [
        write_scan(folder / "nacl.xy", sticks_of(small_structures["NaCl"]), lo=5, hi=89.9),
        write_scan(folder / "zno.xy", sticks_of(small_structures["ZnO"]), lo=5, hi=70),
    ]
    return [read_scan_with(p, "CuKa1") for p in paths]


@pytest.fixture(scope="module")
def fitted(features):
    return SymmetryModel(n_estimators=15, seed=0).fit(features)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"model": "svm"}, "model"),
        ({"n_estimators": 0}, "n_estimators"),
        ({"n_estimators": 2.5}, "n_estimators"),
        ({"max_depth": -1}, "max_depth"),
        ({"max_features": 0}, "max_features"),
        ({"max_features": "most"}, "max_features"),
        ({"params": ["max_depth", 3]}, "params"),
        ({"target_params": {"lattice": {}}}, "target_params"),
        ({"seed": -1}, "seed"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"params": {"n_estimators": 0}}, "n_estimators"),  # as train-symmetry --trees passes it
        ({"target_params": {"space_group": {"max_depth": 0}}}, "max_depth"),
    ],
)
def test_bad_hyper_parameters_name_the_parameter(kwargs, name):
    from xtal_cli.errors import ParameterError

    with pytest.raises(ParameterError, match=rf"^{name}=") as info:
        SymmetryModel(**kwargs)
    assert info.value.parameter == name


def test_params_and_repr(fitted):
    m = SymmetryModel("knn", n_estimators=5, params={"n_neighbors": 3}, seed=2)
    assert m.get_params()["params"] == {"n_neighbors": 3}
    assert "knn" in repr(m) and "seed=2" in repr(m)
    with pytest.raises(XtalError, match="not a SymmetryModel parameter"):
        m.set_params(trees=3)
    assert fitted.params_["space_group"]["n_estimators"] == 15
    assert fitted.params_["space_group"]["max_depth"] == 30  # the model's default


def test_fit_sets_fitted_attributes(fitted, features):
    assert set(fitted.classes_) == set(TARGETS)
    assert list(fitted.classes_["crystal_system"]) == ["cubic", "hexagonal", "tetragonal"]
    assert list(fitted.classes_["space_group"]) == [136, 186, 225, 227]
    assert fitted.feature_settings_ == features.settings
    assert fitted.space_group_symbols_[186] == "P6_3mc"
    assert len(fitted.training_["first_peak_percentiles"]) == 101
    assert fitted.n_features_in_ == 11
    proba = fitted.predict_proba(features.X)
    assert proba["space_group"].shape == (40, 4)
    np.testing.assert_allclose(proba["crystal_system"].sum(axis=1), 1.0)


def test_not_fitted_and_wrong_width(fitted):
    with pytest.raises(XtalError, match="not fitted"):
        SymmetryModel().predict(np.zeros((1, 11)))
    with pytest.raises(XtalError, match="11"):
        fitted.predict_proba(np.zeros((2, 5)))


def test_fit_on_matrix_and_labels_equals_fit_on_feature_set(features, fitted):
    y = {t: features.labels[t] for t in TARGETS}
    other = SymmetryModel(n_estimators=15, seed=0).fit(features.X, y, settings=features.settings)
    a, b = fitted.predict_proba(features.X), other.predict_proba(features.X)
    assert all(np.array_equal(a[t], b[t]) for t in TARGETS)
    labels = (y["crystal_system"], y["space_group"])
    pair = SymmetryModel(n_estimators=15, seed=0).fit(features.X, labels)
    assert np.array_equal(pair.predict_proba(features.X)["space_group"], a["space_group"])
    with pytest.raises(XtalError, match="cannot featurize scans"):
        pair.predict(features)


def test_predict_every_input_kind(fitted, features, scans):
    from xtal_cli.symmetry.features import featurize_scans

    one = fitted.predict(scans[0], top=2)
    assert len(one) == 1 and one[0].crystal_systems[0][0] == "cubic"
    assert len(one[0].crystal_systems) == 2 and one[0].error is None
    both = fitted.predict(scans, top=2)
    assert [p.id for p in both] == ["nacl.xy", "zno.xy"]
    assert both[0].as_record() == one[0].as_record()
    assert any("underestimated" in w for w in both[1].warnings)  # ZnO scan stops at 70°
    rows = fitted.predict(features, top=3)
    assert len(rows) == 40 and not rows[0].warnings  # simulated sticks are not checked
    matrix = fitted.predict(features.X, top=3)
    assert [p.crystal_systems for p in matrix] == [p.crystal_systems for p in rows]
    assert matrix[0].n_peaks == rows[0].n_peaks
    as_set = fitted.predict(featurize_scans(scans, fitted.feature_settings_), top=2)
    assert [p.as_record() for p in as_set] == [p.as_record() for p in both]


def test_predict_reports_per_item_errors(fitted, scans, small_structures, tmp_path):
    from xtal_cli.symmetry.features import read_scan_with

    low = read_scan_with(
        write_scan(tmp_path / "low.xy", sticks_of(small_structures["NaCl"]), lo=150, hi=170),
        "CuKa1",
    )
    preds = fitted.predict([low, scans[0]])
    assert preds[0].error and preds[0].error.startswith(str(low.meta.get("id") or "low.xy"))
    assert "outside the model's range" in preds[0].error or "no peaks" in preds[0].error
    assert preds[1].error is None and preds[1].crystal_systems


@pytest.mark.parametrize("model", MODELS)
def test_every_model_saves_and_loads_to_equal_predictions(model, features, scans, tmp_path):
    m = SymmetryModel(model, n_estimators=8, seed=1).fit(features)
    m.metrics_ = {"crystal_system": {"accuracy": 0.5}}
    path = tmp_path / f"{model}.h5"
    size = m.save(path)
    assert size == path.stat().st_size > 0
    back = SymmetryModel.load(path)
    assert back.get_params() == m.get_params()
    a, b = m.predict_proba(features.X), back.predict_proba(features.X)
    assert all(np.array_equal(a[t], b[t]) for t in TARGETS)
    assert [p.as_record() for p in back.predict(scans)] == [p.as_record() for p in m.predict(scans)]
    assert back.rank(features.X[:3]) == m.rank(features.X[:3])
    for attr in ("params_", "training_", "metrics_", "space_group_symbols_", "feature_names_"):
        assert getattr(back, attr) == getattr(m, attr), attr
    assert back.feature_settings_ == m.feature_settings_
    assert all(np.array_equal(back.classes_[t], m.classes_[t]) for t in TARGETS)
    again = tmp_path / f"{model}_again.h5"  # a loaded model saves again to the same content
    back.save(again)
    c = SymmetryModel.load(again).predict_proba(features.X)
    assert all(np.array_equal(a[t], c[t]) for t in TARGETS)


def test_compressed_file_is_smaller_and_predicts_the_same(features, tmp_path):
    rng = np.random.default_rng(0)  # noisy labels grow big trees, as real space groups do
    X = rng.uniform(0.5, 5.0, size=(1500, 11))
    y = {"crystal_system": rng.choice(["cubic", "hexagonal"], 1500),
         "space_group": rng.integers(1, 231, 1500)}  # fmt: skip
    big = SymmetryModel(n_estimators=10, seed=0).fit(X, y, settings=features.settings)
    plain, packed = tmp_path / "plain.h5", tmp_path / "packed.h5"
    big.save(plain)
    big.save(packed, compress=4)
    assert packed.stat().st_size < 0.6 * plain.stat().st_size
    a = SymmetryModel.load(plain)
    b = SymmetryModel.load(packed)
    assert isinstance(a.estimators_["space_group"].nodes_, np.memmap)  # mapped, not read
    pa, pb, pc = a.predict_proba(X), b.predict_proba(X), big.predict_proba(X)
    assert all(np.array_equal(pa[t], pb[t]) and np.array_equal(pa[t], pc[t]) for t in TARGETS)
    with pytest.raises(XtalError, match="compress"):
        big.save(tmp_path / "x.h5", compress=12)


def test_train_symmetry_returns_a_fitted_model(features, tmp_path):
    from xtal_cli.symmetry.train import TrainOptions, train_symmetry

    opts = TrainOptions(params={"n_estimators": 10}, permutation=False)
    model, report = train_symmetry(features, opts, log=lambda m: None)
    assert isinstance(model, SymmetryModel)
    assert model.metrics_ == report["metrics"] and model.training_ == report["training"]
    assert model.training_["n_train"] + model.training_["n_test"] == 40
    model.save(tmp_path / "t.h5")
    assert SymmetryModel.load(tmp_path / "t.h5").metrics_ == report["metrics"]


def test_cli_writes_hdf5_whatever_the_name(invoke, trained, tmp_path):
    out = tmp_path / "legacy_name.joblib"
    r = invoke("train-symmetry", trained["features"], "-o", out, "--trees", "5", "-q")
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    r = invoke("predict-symmetry", out, trained["features"], "--format", "json")
    assert r.exit_code == 0, r.output


def test_train_jobs_minus_one_means_every_core(invoke, trained, tmp_path):
    r = invoke(
        "train-symmetry", trained["features"], "-o", tmp_path / "j.h5", "--trees", "5", "-j", "-1",
        "--format", "json", "-q",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    from xtal_cli.parallel import available_cores

    metrics = json.loads((tmp_path / "j.metrics.json").read_text())
    assert metrics["options"]["n_jobs"] == available_cores()
    r = invoke("train-symmetry", trained["features"], "-o", tmp_path / "j.h5", "-j", "0")
    assert r.exit_code == 2 and "--jobs" in r.stderr
