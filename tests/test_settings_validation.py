"""Settings objects check themselves on construction and name the Python parameter; the command
line prints its flag for it instead, as one line with exit status 2 and no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xtal_cli.errors import ParameterError
from xtal_cli.refine.cell import CellFitSettings
from xtal_cli.symmetry.features import FeatureSettings, featurize_scans
from xtal_cli.symmetry.train import TrainOptions
from xtal_cli.xrd.augment import AugmentSettings
from xtal_cli.xrd.peaks import find_peaks
from xtal_cli.xrd.profile import ProfileSettings

Y2O3 = Path(__file__).resolve().parents[1] / "xtal_cli/data/examples/Y2O3/Y2O3.xy"

BAD = [
    (FeatureSettings, {"unit": "nm"}, "unit"),
    (FeatureSettings, {"n_peaks": 0}, "n_peaks"),
    (FeatureSettings, {"n_peaks": 2.5}, "n_peaks"),
    (FeatureSettings, {"n_peaks": True}, "n_peaks"),
    (FeatureSettings, {"min_intensity": 100.0}, "min_intensity"),
    (FeatureSettings, {"min_intensity": "1"}, "min_intensity"),
    (FeatureSettings, {"wavelength": 0.0}, "wavelength"),
    (FeatureSettings, {"two_theta_min": -1.0}, "two_theta_min"),
    (FeatureSettings, {"two_theta_min": 50.0, "two_theta_max": 40.0}, "two_theta_max"),
    (FeatureSettings, {"two_theta_max": 200.0}, "two_theta_max"),
    (FeatureSettings, {"resolution": -0.1}, "resolution"),
    (FeatureSettings, {"indexing": "yes"}, "indexing"),
    (ProfileSettings, {"step": 0.0}, "step"),
    (ProfileSettings, {"fwhm": -0.1}, "fwhm"),
    (ProfileSettings, {"eta": 1.5}, "eta"),
    (ProfileSettings, {"two_theta_min": 50.0, "two_theta_max": 40.0}, "two_theta_max"),
    (ProfileSettings, {"caglioti": (0.01, 0.02)}, "caglioti"),
    (ProfileSettings, {"ka2": (1.54, 1.544)}, "ka2"),
    (ProfileSettings, {"noise_counts": -5.0}, "noise_counts"),
    (ProfileSettings, {"background": -0.1}, "background"),
    (AugmentSettings, {"p_ka2": 1.2}, "p_ka2"),
    (AugmentSettings, {"counts": (1000.0, 10.0)}, "counts"),
    (AugmentSettings, {"size_nm": (0.0, 100.0)}, "size_nm"),
    (AugmentSettings, {"strain": (0.0, 1e-3)}, "strain"),
    (AugmentSettings, {"radius_mm": 0.0}, "radius_mm"),
    (AugmentSettings, {"impurity_max_peaks": 0}, "impurity_max_peaks"),
    (AugmentSettings, {"window_min": (5.0, 70.0)}, "window_min"),
    (TrainOptions, {"test_size": 1.0}, "test_size"),
    (TrainOptions, {"split": "yearly"}, "split"),
    (TrainOptions, {"model": "svm"}, "model"),
    (TrainOptions, {"search": -1}, "search"),
    (TrainOptions, {"rules": "cubik"}, "rules"),
    (TrainOptions, {"n_jobs": 0}, "n_jobs"),
    (CellFitSettings, {"bound": 0.0}, "bound"),
]


@pytest.mark.parametrize("cls, kwargs, parameter", BAD, ids=lambda v: getattr(v, "__name__", ""))
def test_bad_settings_name_the_parameter(cls, kwargs, parameter):
    with pytest.raises(ParameterError) as info:
        cls(**kwargs)
    assert info.value.parameter == parameter
    assert str(info.value).startswith(f"{parameter}=") and "--" not in str(info.value)


def test_good_settings_still_construct():
    """Defaults, edge values and numpy scalars (as read back from HDF5) pass."""
    FeatureSettings(n_peaks=np.int64(6), min_intensity=np.float32(0.0), resolution=0.0)
    ProfileSettings(eta=0.0, noise_counts=0, caglioti=np.array([0.01, -0.005, 0.01]))
    AugmentSettings(size_nm=(10.0, 10.0), p_strain=0.0, lab_x=(0.0, 0.0), lab_y=(0.0, 0.0))
    TrainOptions(n_jobs=-1, rules="cubic", year_cutoff=2010)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [({"background": "magic"}, "background"), ({"smooth": 4}, "smooth"),
     ({"prominence": -1.0}, "prominence"), ({"min_relative_height": 2.0}, "min_relative_height"),
     ({"background_width": 0.0}, "background_width")],
)  # fmt: skip
def test_peak_options_name_the_parameter(kwargs, parameter):
    tt = np.linspace(10, 80, 500)
    with pytest.raises(ParameterError) as info:
        find_peaks(tt, np.exp(-((tt - 40) ** 2) / 0.1), **kwargs)
    assert info.value.parameter == parameter


def test_a_bad_peak_option_is_an_error_not_a_failure_per_scan():
    from xtal_cli.symmetry.features import read_scan_with

    scan = read_scan_with(Y2O3, "CuKa")
    with pytest.raises(ParameterError, match="prominence"):
        featurize_scans([scan], FeatureSettings(), prominence=-1.0)
    with pytest.raises(ParameterError, match="ka2"):
        featurize_scans([scan], FeatureSettings(), ka2="maybe")


def _one_line_error(result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], result.stderr


@pytest.mark.parametrize(
    "args, expected",
    [(["--profile", "--step", "0"], "--step 0: must be positive"),
     (["--profile", "--fwhm", "-1"], "--fwhm -1: must be positive"),
     (["--profile", "--eta", "2"], "--eta 2: must be within 0-1"),
     (["--profile", "--noise", "-5"], "--noise -5:"),
     (["--profile", "--background", "-1"], "--background -1:"),
     (["--caglioti", "0.1,0.2"], "--caglioti 0.1 0.2: give three numbers"),
     (["--caglioti", "0.1,x,3"], "--caglioti 0.1,x,3: give three numbers")],
)  # fmt: skip
def test_simulate_prints_the_flag(invoke, tmp_path, args, expected):
    r = invoke("simulate", "--builtin", "mp-sample", "--limit", "1", *args, "-o", tmp_path / "p.h5")
    _one_line_error(r, expected)
    assert not (tmp_path / "p.h5").exists()


@pytest.mark.parametrize(
    "args, expected",
    [(["--peaks", "0"], "--peaks 0: must be a whole number of at least 1"),
     (["--min-intensity", "100"], "--min-intensity 100:"),
     (["--resolution", "-1"], "--resolution -1:"),
     (["--two-theta-min", "50", "--two-theta-max", "40"], "--two-theta-max 40: the 2θ window"),
     (["--unit", "nm"], "--unit nm: use one of"),
     (["--prominence", "-3"], "--prominence -3:")],
)  # fmt: skip
def test_featurize_prints_the_flag(invoke, tmp_path, args, expected):
    r = invoke("featurize", Y2O3, "--wavelength", "CuKa", *args, "-o", tmp_path / "f.h5", "-q")
    _one_line_error(r, expected)


def test_train_symmetry_prints_the_flag(invoke, tmp_path):
    features = tmp_path / "f.h5"
    assert invoke("featurize", Y2O3, "--wavelength", "CuKa", "-o", features, "-q").exit_code == 0
    for args, expected in (
        (["--test-size", "1.5"], "--test-size 1.5: must be a fraction between 0 and 1"),
        (["--split", "yearly"], "--split yearly: use one of random, year, group"),
        (["--rules", "cubik"], "--rules cubik: use a crystal system"),
    ):
        r = invoke("train-symmetry", features, *args, "-o", tmp_path / "m.h5", "-q")
        _one_line_error(r, expected)


def test_a_feature_file_with_bad_settings_names_the_file(invoke, tmp_path):
    import h5py

    from xtal_cli.errors import XtalError
    from xtal_cli.symmetry.features import read_features

    features = tmp_path / "f.h5"
    assert invoke("featurize", Y2O3, "--wavelength", "CuKa", "-o", features, "-q").exit_code == 0
    with h5py.File(features, "a") as h5:
        h5.attrs["n_peaks"] = 0
    with pytest.raises(XtalError, match=r"f\.h5: feature settings .*n_peaks=0"):
        read_features(features)
