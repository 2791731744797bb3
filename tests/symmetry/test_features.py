"""Peak features: units round-trip, wavelength independence, missing peaks, thresholds, files."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.errors import XtalError
from xtal_cli.symmetry.features import (
    FeatureSettings,
    featurize_patterns,
    merge_close,
    peak_row,
    read_features,
    write_features,
)
from xtal_cli.xrd.units import UNITS, WAVELENGTHS, to_two_theta

from .conftest import CU, sticks_of


@pytest.mark.parametrize("unit", UNITS)
def test_units_round_trip(small_structures, unit):
    st = sticks_of(small_structures["TiO2"])
    settings = FeatureSettings(unit=unit, min_intensity=0.0, resolution=0.0)
    row = peak_row(st.two_theta, st.intensity, CU, settings)
    back = to_two_theta(row.values[:10], CU, unit)
    np.testing.assert_allclose(back, np.sort(st.two_theta)[:10], atol=1e-9)
    assert row.values[-1] == len(st.two_theta)


def test_lowest_angle_order_in_d(small_structures):
    st = sticks_of(small_structures["NaCl"])
    row = peak_row(st.two_theta, st.intensity, CU, FeatureSettings(unit="d"))
    d = row.values[: min(10, row.n_found)]
    assert len(d) >= 5
    assert np.all(np.diff(d) < 0)  # lowest angle = largest d first


def test_wavelength_free_features(small_structures):
    """Mo Kα data converted into the Cu Kα1 Q window give the same features as Cu data."""
    s = small_structures["ZnO"]
    settings = FeatureSettings(unit="q")
    cu = sticks_of(s, CU)
    mo_wl = WAVELENGTHS["MoKa1"]
    mo = sticks_of(s, mo_wl, (0.0, 60.0))
    a = peak_row(cu.two_theta, cu.intensity, CU, settings).values
    b = peak_row(mo.two_theta, mo.intensity, mo_wl, settings).values
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_missing_peaks_are_filled_with_window_edge():
    settings = FeatureSettings(unit="q", n_peaks=10)
    row = peak_row([20.0, 30.0, 40.0], [100.0, 50.0, 10.0], CU, settings)
    assert row.n_found == 3
    assert row.values[-1] == 3
    np.testing.assert_allclose(row.values[3:10], settings.window[1])
    assert settings.window[1] == pytest.approx(4 * np.pi * np.sin(np.radians(45)) / CU)
    assert np.all(row.values[:3] < settings.window[1])


def test_relative_intensity_threshold_and_window():
    tt, inten = [10.0, 20.0, 30.0, 95.0], [100.0, 0.5, 5.0, 100.0]
    row = peak_row(tt, inten, CU, FeatureSettings(unit="2theta", min_intensity=1.0))
    assert row.values[-1] == 2  # 20° is below 1 %, 95° is outside 0-90°
    np.testing.assert_allclose(row.values[:2], [10.0, 30.0])
    row = peak_row(tt, inten, CU, FeatureSettings(unit="2theta", min_intensity=0.0))
    assert row.values[-1] == 3


def test_merge_close_peaks():
    tt, inten = merge_close(np.array([10.0, 10.005, 20.0]), np.array([1.0, 3.0, 2.0]), 0.01)
    np.testing.assert_allclose(tt, [10.00375, 20.0])
    np.testing.assert_allclose(inten, [4.0, 2.0])


def test_bad_settings():
    with pytest.raises(XtalError, match="unit='nm': use one of"):
        FeatureSettings(unit="nm")
    with pytest.raises(XtalError, match="window"):
        FeatureSettings(two_theta_min=50, two_theta_max=40)


def test_feature_file_round_trip(pattern_set, tmp_path):
    fs = featurize_patterns(pattern_set, unit="inv-d2", n_peaks=6)
    path = tmp_path / "f.h5"
    write_features(path, fs)
    back = read_features(path)
    np.testing.assert_array_equal(back.X, fs.X)
    assert back.settings == fs.settings
    assert back.ids == fs.ids
    assert back.X.shape == (40, 7)
    assert list(back.labels["crystal_system"][:1]) == ["cubic"]
    assert back.meta["year"].tolist() == list(pattern_set.meta["year"])


def test_truncated_feature_file(pattern_set, tmp_path):
    fs = featurize_patterns(pattern_set)
    path = tmp_path / "f.h5"
    write_features(path, fs)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(XtalError, match="truncated|corrupted|cannot be read"):
        read_features(path)


def test_profile_source_picks_peaks(pattern_set):
    """Peaks picked in rendered profiles sit where the strong sticks are."""
    import copy

    ps = copy.copy(pattern_set)
    idx = [0, 20]  # NaCl and ZnO
    grid = np.arange(5.0, 89.9, 0.02)
    prof = []
    for i in idx:
        y = np.zeros_like(grid)
        for pos, inten in zip(ps.sticks_two_theta[i], ps.sticks_intensity[i]):
            y += inten * np.exp(-0.5 * ((grid - pos) / 0.05) ** 2)
        prof.append(y / y.max())
    ps.ids = [ps.ids[i] for i in idx]
    ps.labels = {k: np.asarray(v)[idx] for k, v in ps.labels.items()}
    ps.meta = {k: np.asarray(v)[idx] for k, v in ps.meta.items()}
    ps.sticks_two_theta = [ps.sticks_two_theta[i] for i in idx]
    ps.sticks_intensity = [ps.sticks_intensity[i] for i in idx]
    ps.profile_grid, ps.profiles = grid, np.array(prof)
    fs = featurize_patterns(ps, source="profile", min_intensity=2.0)
    ref = featurize_patterns(ps, source="sticks", min_intensity=2.0)
    assert fs.attrs["source"] == "profile" and fs.X.shape == (2, 11)
    np.testing.assert_allclose(fs.X[:, :3], ref.X[:, :3], atol=0.01)
    with pytest.raises(XtalError, match="no profiles"):
        featurize_patterns(pattern_set, source="profile")
