"""The profile CNN: Q grid, windows, calibration, train-symmetry --model cnn, the built-in model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .conftest import CU, sticks_of, write_scan

pytestmark = pytest.mark.xdist_group("torch")


# ----------------------------------------------------------------------------- Q grid


def test_qgrid_keeps_narrow_line_heights_and_fills_gaps():
    from xtal_cli.symmetry.qgrid import QGrid

    g = QGrid(1.0, 3.0, 100)
    q = np.linspace(1.0, 3.0, 2001)
    y = np.zeros_like(q)
    y[1000] = 7.0  # a line one point wide: the bin's maximum keeps it
    v, first, stop = g.resample(q, y)
    assert (first, stop) == (0, 100) and v.max() == pytest.approx(7.0)
    coarse = np.linspace(1.5, 2.5, 11)  # a coarse scan: most bins get no point
    v, first, stop = g.resample(coarse, coarse)
    assert (first, stop) == (25, 75)
    assert np.all(v[:first] == 0) and np.all(v[stop:] == 0)
    assert np.allclose(v[first:stop], g.centers[first:stop], atol=0.02)  # interpolated


def test_qgrid_settings_validate():
    from xtal_cli.errors import ParameterError
    from xtal_cli.symmetry.qgrid import QGrid

    with pytest.raises(ParameterError, match="q_min"):
        QGrid(3.0, 1.0)
    with pytest.raises(ParameterError, match="n"):
        QGrid(n=3)


def test_same_lines_same_bins_at_any_wavelength(small_structures):
    """In Q a structure's lines sit in the same bins at Cu and at Mo."""
    from xtal_cli.symmetry.qgrid import QGrid, resample_profiles
    from xtal_cli.xrd.units import WAVELENGTHS

    g = QGrid()
    peaks = {}
    for name, tt_max in (("CuKa1", 90.0), ("MoKa1", 42.0)):
        wl = WAVELENGTHS[name]
        st = sticks_of(small_structures["NaCl"], wl, (0.0, tt_max))
        tt = np.arange(2.0, tt_max, 0.005)
        y = sum(
            i * np.exp(-0.5 * ((tt - p) / 0.01) ** 2) for p, i in zip(st.two_theta, st.intensity)
        )
        v, _ = resample_profiles(g, tt, y[None, :], wl)
        v = v[0].astype(float)
        peaks[name] = set(np.flatnonzero((v > 0.2) & (v >= np.roll(v, 1)) & (v >= np.roll(v, -1))))
    common = [b for b in peaks["CuKa1"] if any(abs(b - c) <= 1 for c in peaks["MoKa1"])]
    assert len(common) >= 0.8 * len(peaks["CuKa1"]) > 0


def test_prepare_ignores_what_lies_outside_the_window():
    import torch

    from xtal_cli.symmetry.cnn import prepare

    v = torch.rand(2, 64)
    mask = torch.zeros(2, 64)
    mask[:, 10:40] = 1.0
    other = v.clone()
    other[:, :10] = 50.0  # a huge line outside the window changes nothing
    a, b = prepare(v * mask, mask), prepare(other * mask, mask)
    assert torch.allclose(a, b)
    assert float(a[:, 0, 10:40].max()) == pytest.approx(1.0)
    assert torch.all(a[:, 0, :10] == 0) and torch.all(a[:, 1, 10:40] == 1)


def test_draw_windows_within_coverage_and_trained_range():
    from xtal_cli.symmetry.profile_model import CNNTrainSettings, draw_windows
    from xtal_cli.symmetry.qgrid import QGrid
    from xtal_cli.xrd.units import from_two_theta

    g, s = QGrid(), CNNTrainSettings(p_full=0.0)
    bins = np.tile([100, 1900], (5000, 1))
    w = draw_windows(np.random.default_rng(0), bins, g, s)
    assert np.all(w[:, 0] >= 100) and np.all(w[:, 1] <= 1900) and np.all(w[:, 1] > w[:, 0])
    q20 = from_two_theta(20.0, CU, "q")
    assert np.all(g.q_min + w[:, 0] * g.step <= q20 + g.step)
    assert np.mean(w[:, 1] == 1900) > 0.3  # ends beyond the grid are clipped to it


def test_temperature_and_ece():
    from xtal_cli.symmetry.profile_model import expected_calibration_error, fit_temperature

    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2.0, (4000, 5))
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in p])
    t = fit_temperature(true_logits * 3.0, y)  # overconfident by 3x
    assert 2.4 < t < 3.7
    assert expected_calibration_error(p, y) < 0.04
    sharp = np.exp(true_logits * 3) / np.exp(true_logits * 3).sum(1, keepdims=True)
    assert expected_calibration_error(sharp, y) > 0.08


def test_train_settings_validate():
    from xtal_cli.errors import ParameterError
    from xtal_cli.symmetry.profile_model import CNNTrainSettings

    with pytest.raises(ParameterError, match="window_end"):
        CNNTrainSettings(window_end=(200.0, 100.0))
    with pytest.raises(ParameterError, match="batch_size"):
        CNNTrainSettings(batch_size=1)
    with pytest.raises(ParameterError, match="test_size"):
        CNNTrainSettings(test_size=1.5)


# ----------------------------------------------------------------------------- CLI, small model


@pytest.fixture(scope="module")
def cnn_trained(tmp_path_factory):
    """train-symmetry --model cnn on augmented profiles of 300 embedded structures (1 epoch)."""
    from typer.testing import CliRunner

    from xtal_cli.cli import app

    d = tmp_path_factory.mktemp("cnn")
    runner = CliRunner()
    r = runner.invoke(app, ["simulate", "--builtin", "mp-sample", "--limit", "300", "--augment",
                            "--seed", "0", "-q", "-o", str(d / "aug.h5")])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train-symmetry", str(d / "aug.h5"), "--model", "cnn", "--epochs",
                            "1", "--batch-size", "32", "-q", "--format", "json", "-o",
                            str(d / "cnn.h5")])  # fmt: skip
    assert r.exit_code == 0, r.output
    return {"dir": d, "patterns": d / "aug.h5", "model": d / "cnn.h5",
            "summary": json.loads(r.stdout)}  # fmt: skip


def test_cnn_bundle_records_how_it_was_made(cnn_trained):
    import h5py

    from xtal_cli.symmetry.profile_model import ProfileSymmetryModel, load_symmetry_model

    with h5py.File(cnn_trained["model"], "r") as h5:
        assert h5.attrs["xtal_layout"] == "symmetry-model/2"
        meta = json.loads(h5.attrs["metadata"])
    assert meta["model"] == "cnn" and "torch" in meta["versions"]
    m = load_symmetry_model(cnn_trained["model"])
    assert isinstance(m, ProfileSymmetryModel)
    t = m.training_
    assert (
        t["split"] == "group by formula" and t["n_train"] + t["n_validation"] + t["n_test"] == 300
    )
    assert len(t["fingerprint"]) == 16 and t["sources"][0]["sha256"]
    assert "train-symmetry" in t["recipe"] and t["settings"]["seed"] == 0
    s = cnn_trained["summary"]["metrics"]["crystal_system"]
    assert 0 <= s["ece"] <= 1 and 0 <= s["accuracy"] <= s["top2"] <= 1


def test_cnn_predicts_scans_and_patterns_files(invoke, cnn_trained, small_structures, tmp_path):
    scan = write_scan(tmp_path / "nacl.xy", sticks_of(small_structures["NaCl"]))
    r = invoke("predict-symmetry", cnn_trained["model"], scan, "--wavelength", "CuKa1",
               "--format", "json", "--top", "3")  # fmt: skip
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)[0]
    assert len(rec["crystal_systems"]) == 3 and rec["n_peaks"] >= 3
    total = sum(c["probability"] for c in rec["crystal_systems"])
    assert 0 < total <= 1.0 + 1e-6
    r = invoke("predict-symmetry", cnn_trained["model"], cnn_trained["patterns"], "--format",
               "jsonl")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert len(r.stdout.strip().splitlines()) == 300


def test_cnn_refuses_features_and_narrow_scans_warn(invoke, cnn_trained, small_structures,
                                                     tmp_path):  # fmt: skip
    r = invoke("featurize", cnn_trained["patterns"], "-o", tmp_path / "f.h5")
    assert r.exit_code == 0, r.output
    r = invoke("predict-symmetry", cnn_trained["model"], tmp_path / "f.h5")
    assert r.exit_code == 2 and "profiles, not peak features" in r.stderr
    narrow = write_scan(tmp_path / "narrow.xy", sticks_of(small_structures["NaCl"]), lo=30, hi=45)
    r = invoke("predict-symmetry", cnn_trained["model"], narrow, "--wavelength", "CuKa1",
               "--format", "json")  # fmt: skip
    assert r.exit_code == 0, r.output
    warnings = json.loads(r.stdout)[0]["warnings"]
    assert any("start" in w for w in warnings) and any("end" in w for w in warnings)


def test_cnn_training_input_errors(invoke, cnn_trained, tmp_path):
    r = invoke("train-symmetry", cnn_trained["patterns"], "--model", "cnn", "--split", "random",
               "-o", tmp_path / "x.h5")  # fmt: skip
    assert r.exit_code == 2 and "whole formulas" in r.stderr
    r = invoke("train-symmetry", cnn_trained["patterns"], "--epochs", "3", "-o", tmp_path / "x.h5")
    assert r.exit_code == 2 and "--model cnn only" in r.stderr
    r = invoke("featurize", cnn_trained["patterns"], "-o", tmp_path / "f.h5")
    r = invoke("train-symmetry", tmp_path / "f.h5", "--model", "cnn", "-o", tmp_path / "x.h5")
    assert r.exit_code == 2 and "f.h5" in r.stderr and "Traceback" not in r.output


def test_cnn_resume_continues_from_checkpoint(invoke, cnn_trained, tmp_path):
    out = tmp_path / "m.h5"
    args = ("train-symmetry", cnn_trained["patterns"], "--model", "cnn", "--batch-size", "32",
            "-q", "-o", out)  # fmt: skip
    assert invoke(*args, "--epochs", "1").exit_code == 0
    r = invoke(*args, "--epochs", "2", "--resume")
    assert r.exit_code == 0, r.output
    from xtal_cli.symmetry.profile_model import load_symmetry_model

    assert [h["epoch"] for h in load_symmetry_model(out).training_["history"]] == [1, 2]


def test_corrupted_or_foreign_cnn_bundle_refused(invoke, cnn_trained, small_structures, tmp_path):
    import h5py

    scan = write_scan(tmp_path / "s.xy", sticks_of(small_structures["NaCl"]))
    cut = tmp_path / "cut.h5"
    data = cnn_trained["model"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    r = invoke("predict-symmetry", cut, scan, "--wavelength", "CuKa1")
    assert r.exit_code == 2 and "cut.h5" in r.stderr and "Traceback" not in r.output
    bad = tmp_path / "bad.h5"
    bad.write_bytes(data)
    with h5py.File(bad, "a") as h5:
        name = next(k for k in h5["net"].keys() if k.endswith("weight"))
        del h5["net"][name]
    r = invoke("predict-symmetry", bad, scan, "--wavelength", "CuKa1")
    assert r.exit_code == 2 and "bad.h5" in r.stderr and "inconsistent" in r.stderr


# ----------------------------------------------------------------------------- the built-in model


@pytest.fixture(scope="module")
def builtin():
    from xtal_cli.symmetry.profile_model import builtin_model_path, load_symmetry_model

    return load_symmetry_model(builtin_model_path())


def test_builtin_model_is_small_and_says_how_it_was_made(builtin):
    from xtal_cli.symmetry.profile_model import builtin_model_path

    assert builtin_model_path().stat().st_size <= 25e6
    t = builtin.training_
    assert "make model" in t["recipe"] or "train-symmetry" in t["recipe"]
    assert len(t["sources"]) >= 2 and all(s["sha256"] for s in t["sources"])
    assert t["n_rows"] > 100_000 and t["split"] == "group by formula"


def test_builtin_model_answers_the_bundled_y2o3_scan(invoke):
    from xtal_cli.symmetry.profile_model import builtin_model_path

    scan = builtin_model_path().parents[1] / "examples" / "Y2O3" / "Y2O3.xy"
    r = invoke("predict-symmetry", scan, "--wavelength", "CuKa", "--format", "json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)[0]
    assert rec["crystal_system"] == "cubic"
    assert 206 in [g["number"] for g in rec["space_groups"]]


@pytest.mark.parametrize("name", ["NaCl", "ZnO", "TiO2"])
def test_a_scan_cut_short_is_answered_like_the_full_scan(builtin, small_structures, name,
                                                         tmp_path):  # fmt: skip
    """A synthetic scan of 10-90° and the same scan stopped at 65° (and one starting at 20°)."""
    from xtal_cli.io.scans import read_scan

    st = sticks_of(small_structures[name])
    answers = {}
    for lo, hi in ((10.0, 90.0), (10.0, 65.0), (20.0, 90.0)):
        path = write_scan(tmp_path / f"{name}_{lo:g}_{hi:g}.xy", st, lo=lo, hi=hi)
        pred = builtin.predict(read_scan(path, wavelength=CU), top=3)[0]
        assert pred.error is None and not pred.warnings
        answers[(lo, hi)] = pred.crystal_systems[0][0]
    assert len(set(answers.values())) == 1, answers
