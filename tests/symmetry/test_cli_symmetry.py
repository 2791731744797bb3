"""featurize → train-symmetry → predict-symmetry through the CLI, determinism, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .conftest import sticks_of, write_scan


def test_train_outputs(trained):
    report = trained["dir"] / "report"
    for name in (
        "metrics.json",
        "confusion_crystal_system.png",
        "confusion_space_group.png",
        "importance_crystal_system.png",
        "accuracy_vs_peaks.png",
        "rules.txt",
    ):
        assert (report / name).stat().st_size > 0, name
    metrics = json.loads((report / "metrics.json").read_text())
    cs = metrics["metrics"]["crystal_system"]
    assert {"accuracy", "precision_macro", "recall_macro", "f1_macro", "per_class"} <= set(cs)
    sg = metrics["metrics"]["space_group"]
    assert 0.0 <= sg["top1"] <= sg["top5"] <= 1.0
    assert len(metrics["explain"]["importances"]["space_group"]["gini"]) == 11
    assert len(metrics["explain"]["accuracy_vs_peaks"]["crystal_system"]["accuracy"]) == 10
    assert (
        "n_peaks" in (report / "rules.txt").read_text()
        or "peak_" in (report / "rules.txt").read_text()
    )
    # the sibling metrics file next to the model
    assert trained["model"].with_name("model.metrics.json").exists()


def test_model_file_contents(trained):
    import h5py

    from xtal_cli.symmetry.estimator import SymmetryModel

    with h5py.File(trained["model"], "r") as h5:
        assert h5.attrs["xtal_layout"] == "symmetry-model/2"
        meta = json.loads(h5.attrs["metadata"])
    assert "scikit-learn" in meta["versions"] and meta["model"] == "extra-trees"
    m = SymmetryModel.load(trained["model"])
    assert set(m.estimators_) == {"crystal_system", "space_group"}
    assert m.feature_settings_.unit == "q"
    assert len(m.training_["fingerprint"]) == 16
    assert m.space_group_symbols_[225] == "Fm-3m"
    assert m.params_["crystal_system"]["n_estimators"] == 20


def test_predict_features_file_json(invoke, trained):
    r = invoke(
        "predict-symmetry", trained["model"], trained["features"], "--format", "json", "--top", "3"
    )
    assert r.exit_code == 0, r.output
    recs = json.loads(r.stdout)
    assert len(recs) == 40
    first = recs[0]
    assert len(first["space_groups"]) == 3 and len(first["crystal_systems"]) == 3
    probs = [c["probability"] for c in first["crystal_systems"]]
    assert probs == sorted(probs, reverse=True)
    # simulated training rows: the model recognises most of them
    correct = sum(
        r["crystal_system"] == ("cubic" if i < 20 else "hexagonal" if i < 30 else "tetragonal")
        for i, r in enumerate(recs)
    )
    assert correct >= 32


def test_predict_scan_table_and_csv(invoke, trained, small_structures, tmp_path):
    scan = write_scan(tmp_path / "nacl.xy", sticks_of(small_structures["NaCl"]), lo=5, hi=89.9)
    r = invoke("predict-symmetry", trained["model"], scan, "--wavelength", "CuKa1", "--ka2", "no")
    assert r.exit_code == 0, r.output
    # the title holds the scan's path, which rich wraps at 80 columns where the tmp path is long
    assert "cubic" in r.stdout and "nacl.xy" in r.stdout.replace("\n", "")
    r = invoke(
        "predict-symmetry",
        trained["model"],
        scan,
        "--wavelength",
        "CuKa1",
        "--format",
        "csv",
        "--top",
        "2",
    )
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("id,rank,crystal_system") and len(lines) == 3
    assert lines[1].split(",")[2] == "cubic"


def test_predict_reads_stdin_list(invoke, trained, small_structures, tmp_path):
    a = write_scan(tmp_path / "a.xy", sticks_of(small_structures["Si"]), lo=5, hi=89.9)
    b = write_scan(tmp_path / "b.xy", sticks_of(small_structures["ZnO"]), lo=5, hi=89.9)
    r = invoke(
        "predict-symmetry",
        trained["model"],
        "-",
        "--wavelength",
        "CuKa1",
        "--format",
        "jsonl",
        input=f"{a}\n{b}\n",
    )
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert [rec["id"] for rec in recs] == [str(a), str(b)]


def test_predict_needs_wavelength(invoke, trained, small_structures, tmp_path):
    scan = write_scan(tmp_path / "x.xy", sticks_of(small_structures["Si"]))
    r = invoke("predict-symmetry", trained["model"], scan)
    assert r.exit_code == 2
    assert "wavelength" in r.stderr


def test_training_is_deterministic(invoke, trained, tmp_path):
    from xtal_cli.symmetry.estimator import SymmetryModel
    from xtal_cli.symmetry.features import read_features

    def ranked(path):
        return SymmetryModel.load(path).rank(X, top=3)

    other = tmp_path / "again.h5"
    r = invoke(
        "train-symmetry",
        trained["features"],
        "-o",
        other,
        "--trees",
        "20",
        "--seed",
        "0",
        "-j",
        "2",
        "-q",
    )
    assert r.exit_code == 0, r.output
    X = read_features(trained["features"]).X
    a = ranked(trained["model"])
    b = ranked(other)
    assert a == b
    r = invoke(
        "train-symmetry",
        trained["features"],
        "-o",
        tmp_path / "s1.h5",
        "--trees",
        "20",
        "--seed",
        "1",
        "-q",
    )
    c = ranked(tmp_path / "s1.h5")
    assert c != a


@pytest.mark.parametrize("model", ["random-forest", "knn", "decision-tree", "logistic-regression"])
def test_other_models(invoke, trained, tmp_path, model):
    out = tmp_path / "m.h5"
    r = invoke(
        "train-symmetry",
        trained["features"],
        "-o",
        out,
        "--model",
        model,
        "--trees",
        "10",
        "--format",
        "json",
        "-q",
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert 0.0 <= summary["metrics"]["crystal_system"]["accuracy"] <= 1.0


def test_year_and_group_splits_and_search(invoke, trained, tmp_path):
    r = invoke(
        "train-symmetry",
        trained["features"],
        "-o",
        tmp_path / "y.h5",
        "--split",
        "year",
        "--trees",
        "10",
        "--format",
        "json",
        "-q",
    )
    assert r.exit_code == 0, r.output
    tr = json.loads(r.stdout)["training"]
    assert tr["split"] == "year" and tr["n_train"] + tr["n_test"] == 32  # rows with a year
    r = invoke(
        "train-symmetry",
        trained["features"],
        "-o",
        tmp_path / "g.h5",
        "--split",
        "group",
        "--group-by",
        "formula",
        "--model",
        "knn",
        "--search",
        "2",
        "--format",
        "json",
        "-q",
    )
    assert r.exit_code == 0, r.output


# ----------------------------------------------------------------------------- bad input


def test_model_of_another_layout_version(invoke, trained, tmp_path):
    import h5py

    old = tmp_path / "old.h5"
    old.write_bytes(trained["model"].read_bytes())
    with h5py.File(old, "a") as h5:
        h5.attrs["xtal_layout"] = "symmetry-model/3"
    r = invoke("predict-symmetry", old, trained["features"])
    assert r.exit_code == 2
    assert "symmetry-model/3" in r.stderr and "retrain" in r.stderr


def test_not_a_model_file(invoke, trained, tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not a model at all")
    r = invoke("predict-symmetry", junk, trained["features"])
    assert r.exit_code == 2 and "junk.h5" in r.stderr and "not HDF5" in r.stderr


@pytest.mark.parametrize("content", ["", "two theta, counts\nabc def\n1 2 3\nfoo bar\n"])
def test_empty_or_non_numeric_pattern(invoke, trained, tmp_path, content):
    bad = tmp_path / "bad.xy"
    bad.write_text(content)
    r = invoke("predict-symmetry", trained["model"], bad, "--wavelength", "CuKa1")
    assert r.exit_code == 2
    assert "bad.xy" in r.stderr
    r = invoke("featurize", bad, "--wavelength", "CuKa1", "-o", tmp_path / "f.h5")
    assert r.exit_code == 2 and "bad.xy" in r.stderr


def test_truncated_hdf5(invoke, trained, patterns_h5, tmp_path):
    for src in (patterns_h5, trained["features"]):
        cut = tmp_path / f"cut_{src.name}"
        data = src.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
        r = invoke("predict-symmetry", trained["model"], cut)
        assert r.exit_code == 2, r.output
        assert "cut_" in r.stderr
    r = invoke("featurize", tmp_path / f"cut_{patterns_h5.name}", "-o", tmp_path / "f.h5")
    assert r.exit_code == 2
    r = invoke(
        "train-symmetry", tmp_path / f"cut_{trained['features'].name}", "-o", tmp_path / "m.h5"
    )
    assert r.exit_code == 2


def test_pattern_below_model_range(invoke, patterns_h5, small_structures, tmp_path):
    """A model for 2θ 40-90° refuses a scan measured only at 5-35°, and warns on partial cover."""
    feats, model = tmp_path / "f.h5", tmp_path / "m.h5"
    assert (
        invoke("featurize", patterns_h5, "--two-theta-min", "40", "-o", feats, "-q").exit_code == 0
    )
    assert invoke("train-symmetry", feats, "-o", model, "--trees", "10", "-q").exit_code == 0
    st = sticks_of(small_structures["NaCl"])
    low = write_scan(tmp_path / "low.xy", st, lo=5, hi=35)
    r = invoke("predict-symmetry", model, low, "--wavelength", "CuKa1")
    assert r.exit_code == 2
    assert "outside the model's range" in r.stderr
    partial = write_scan(tmp_path / "partial.xy", st, lo=5, hi=70)
    r = invoke("predict-symmetry", model, partial, "--wavelength", "CuKa1", "--format", "json")
    assert r.exit_code == 0, r.output
    assert any("underestimated" in w for w in json.loads(r.stdout)[0]["warnings"])


def test_feature_settings_mismatch(invoke, trained, patterns_h5, tmp_path):
    feats = tmp_path / "d.h5"
    assert invoke("featurize", patterns_h5, "--unit", "d", "-o", feats, "-q").exit_code == 0
    r = invoke("predict-symmetry", trained["model"], feats)
    assert r.exit_code == 2 and "unit d" in r.stderr


def test_predict_patterns_file(invoke, trained, patterns_h5):
    r = invoke("predict-symmetry", trained["model"], patterns_h5, "--format", "jsonl")
    assert r.exit_code == 0, r.output
    assert len(r.stdout.strip().splitlines()) == 40


def test_compact_forest_matches_sklearn():
    from sklearn.ensemble import ExtraTreesClassifier

    from xtal_cli.symmetry.forest import CompactForest

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0.5)
    et = ExtraTreesClassifier(15, max_depth=12, random_state=0).fit(X, y)
    cf = CompactForest.from_sklearn(et)
    Xt = rng.normal(size=(300, 6))
    np.testing.assert_allclose(cf.predict_proba(Xt), et.predict_proba(Xt), atol=1e-6)  # numba
    few = Xt[:5]  # few rows take the numpy path
    np.testing.assert_allclose(cf.predict_proba(few), et.predict_proba(few), atol=1e-6)
    np.testing.assert_allclose(cf.feature_importances_, et.feature_importances_)


def test_measured_shared_pattern_gives_ranked_answer(invoke, trained, shared_data):
    scan = shared_data / "measured" / "bbo-rietveld" / "Y2O3" / "Y2O3.csv"
    if not scan.exists():
        pytest.skip("Y2O3 scan not in shared data")
    r = invoke(
        "predict-symmetry",
        trained["model"],
        scan,
        "--wavelength",
        "CuKa",
        "--format",
        "json",
        "--top",
        "3",
    )
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)[0]
    assert rec["n_peaks"] >= 10
    ps = [c["probability"] for c in rec["crystal_systems"]]
    assert ps == sorted(ps, reverse=True) and sum(ps) <= 1 + 1e-6
    assert rec["space_groups"][0]["probability"] > 0


def test_indexing_columns_through_the_cli(invoke, trained, patterns_h5, small_structures, tmp_path):
    """featurize --indexing → a model that featurizes scans the same way; a plain model refuses
    indexed features."""
    from xtal_cli.symmetry.features import read_features

    feats, model = tmp_path / "idx.h5", tmp_path / "idx.h5"
    assert invoke("featurize", patterns_h5, "--indexing", "-o", feats, "-q").exit_code == 0
    fs = read_features(feats)
    assert fs.X.shape[1] == 14 and fs.settings.indexing
    cubic = fs.labels["crystal_system"] == "cubic"
    assert np.all(fs.X[cubic, 11] == 1.0)  # NaCl and Si sticks index on their cubic cells
    par = tmp_path / "idx_j2.h5"
    assert invoke("featurize", patterns_h5, "--indexing", "-j", "2", "-o", par, "-q").exit_code == 0
    assert np.array_equal(read_features(par).X, fs.X)
    r = invoke("featurize", patterns_h5, "-j", "0", "-o", par)
    assert r.exit_code == 2 and "--jobs" in r.stderr
    assert invoke("train-symmetry", feats, "-o", model, "--trees", "10", "-q").exit_code == 0
    scan = write_scan(tmp_path / "nacl.xy", sticks_of(small_structures["NaCl"]))
    r = invoke("predict-symmetry", model, scan, "--wavelength", "CuKa1", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["crystal_system"] == "cubic"
    r = invoke("predict-symmetry", trained["model"], feats)
    assert r.exit_code == 2 and "indexing" in r.stderr
    # --lattices: one score per Bravais lattice, and implies --indexing
    lat = tmp_path / "lat.h5"
    assert invoke("featurize", patterns_h5, "--lattices", "-o", lat, "-q").exit_code == 0
    per = read_features(lat)
    assert per.settings.indexing and per.settings.lattices and per.X.shape[1] == 25
    assert np.all(per.X[cubic, 11:14].max(axis=1) == 1.0)  # cP, cI or cF
    r = invoke("predict-symmetry", model, lat)
    assert r.exit_code == 2 and "lattices" in r.stderr
