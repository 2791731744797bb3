"""Augmented simulations: draws are recorded and reproducible, and each effect does what it says."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from functools import cache

import numpy as np
import pytest

from xtal_cli.xrd.augment import (
    AugmentSettings,
    augmented_profile,
    augmented_profile_reference,
    draw_augmentation,
    march_dollase,
)
from xtal_cli.xrd.lineshape import tch_fwhm_eta
from xtal_cli.xrd.peaks import find_peaks
from xtal_cli.xrd.sticks import Sticks

GRID = np.arange(10.0, 90.0, 0.02)
CUKA1 = 1.54056
MOKA1 = 0.70930


def _sticks():
    return Sticks(
        two_theta=np.array([28.44, 47.30, 56.12, 69.13, 76.38]),
        intensity=np.array([100.0, 55.0, 30.0, 6.0, 11.0]),
        hkl=np.array([[1, 1, 1], [2, 2, 0], [3, 1, 1], [4, 0, 0], [3, 3, 1]]),
        d=np.array([3.135, 1.920, 1.637, 1.358, 1.246]),
    )


def _clean(**overrides) -> dict:
    params = {
        "U": 0.0, "V": 0.0, "W": 0.004, "X": 0.0, "Y": 0.0, "ka2": False, "ka2_ratio": 0.0,
        "zero_shift": 0.0, "displacement_mm": 0.0, "radius_mm": 240.0, "counts": None,
        "background_level": 0.0, "background_poly": [0.0, 0.0], "background_decay": 0.0,
        "hump_height": 0.0, "texture_r": 1.0, "texture_axis": [0, 0, 1],
        "impurity_two_theta": [], "impurity_intensity": [], "window": None, "seed": 0,
    }  # fmt: skip
    params.update(overrides)
    return params


def test_draws_are_reproducible_json_and_within_ranges():
    s = AugmentSettings()
    a = [draw_augmentation(np.random.default_rng(5), s) for _ in range(2)]
    assert a[0] == a[1]
    json.dumps(a[0])
    draws = [draw_augmentation(np.random.default_rng(i), s) for i in range(300)]
    labs = [d for d in draws if d["instrument"] == "lab"]
    assert 0.7 < len(labs) / len(draws) < 0.95
    assert all(s.lab_w[0] <= d["W"] <= s.lab_w[1] for d in labs)
    assert all(s.size_nm[0] <= d["size_nm"] <= s.size_nm[1] for d in draws)
    assert 0.3 < np.mean([d["strain"] > 0 for d in draws]) < 0.7
    assert all(not d["ka2"] for d in draws if d["instrument"] == "synchrotron")
    assert any(d["window"] for d in draws) and any(d["impurity_two_theta"] for d in draws)


def test_clean_render_has_peaks_at_the_sticks():
    y = augmented_profile(_sticks(), GRID, _clean(), CUKA1)
    pk = find_peaks(GRID, y, background=None, min_relative_height=0.03)
    assert np.allclose(pk.two_theta, _sticks().two_theta, atol=0.01)
    assert y.dtype == np.float32 and y.max() == pytest.approx(1.0)


def test_zero_shift_and_displacement_move_peaks():
    y = augmented_profile(_sticks(), GRID, _clean(zero_shift=0.1), CUKA1)
    pk = find_peaks(GRID, y, background=None, min_relative_height=0.03)
    assert np.allclose(pk.two_theta, _sticks().two_theta + 0.1, atol=0.01)
    y = augmented_profile(_sticks(), GRID, _clean(displacement_mm=0.2), CUKA1)
    pk = find_peaks(GRID, y, background=None, min_relative_height=0.03)
    expected = -np.degrees(2 * 0.2 * np.cos(np.radians(_sticks().two_theta / 2)) / 240.0)
    assert np.allclose(pk.two_theta - _sticks().two_theta, expected, atol=0.01)


def test_ka2_adds_the_doublet_that_rachinger_removes():
    y = augmented_profile(_sticks(), GRID, _clean(ka2=True, ka2_ratio=0.5), CUKA1)
    raw = find_peaks(GRID, y, background=None, min_relative_height=0.02)
    stripped = find_peaks(GRID, y, background=None, min_relative_height=0.02,
                          ka2=(CUKA1, 1.54439, 0.5))  # fmt: skip
    assert len(raw) > len(_sticks())
    assert np.allclose(stripped.two_theta, _sticks().two_theta, atol=0.015)


def test_tch_widths_grow_with_angle_and_lorentz_terms():
    f, eta = tch_fwhm_eta(np.array([20.0, 80.0]), 0.01, -0.005, 0.005, 0.0, 0.0)
    assert f[1] > f[0] and np.allclose(eta, 0.0, atol=1e-6)
    f2, eta2 = tch_fwhm_eta(np.array([20.0, 80.0]), 0.01, -0.005, 0.005, 0.05, 0.05)
    assert np.all(f2 > f) and np.all(eta2 > 0.3)


def test_crystallite_size_gives_the_scherrer_width():
    """A 10 nm powder on a sharp instrument: FWHM = K λ / (L cos θ), and the draw records L."""
    s = AugmentSettings(size_nm=(10.0, 10.0), p_strain=0.0, lab_x=(0.0, 0.0), lab_y=(0.0, 0.0))
    d = draw_augmentation(np.random.default_rng(0), s, wavelength=CUKA1)
    assert d["size_nm"] == pytest.approx(10.0) and d["strain"] == 0.0 and d["X"] == 0.0
    y = augmented_profile(_sticks(), GRID, _clean(W=1e-6, Y=d["Y"]), CUKA1)
    pk = find_peaks(GRID, y, background=None, min_relative_height=0.03)
    first = np.argmin(np.abs(pk.two_theta - 28.44))
    scherrer = np.degrees(0.9 * CUKA1 / (100.0 * np.cos(np.radians(28.44 / 2))))
    assert pk.fwhm[first] == pytest.approx(scherrer, rel=0.1)
    assert 0.7 < scherrer < 0.9  # nanocrystalline: far broader than any lab instrument


def test_march_dollase_enhances_reflections_along_the_axis():
    lattice = np.eye(3) * 5.43
    hkl = np.array([[0, 0, 1], [1, 0, 0], [1, 1, 1]])
    p = march_dollase(hkl, lattice, (0, 0, 1), 0.7)
    assert p[0] > 1 > p[1] and p[0] == pytest.approx(0.7**-3)
    assert np.allclose(march_dollase(hkl, lattice, (0, 0, 1), 1.0), 1.0)


def test_noise_background_window_and_impurities():
    params = _clean(counts=2000.0, background_level=0.2, hump_height=0.1, hump_center=22.0,
                    hump_width=5.0, window=[20.0, 80.0], impurity_two_theta=[40.0],
                    impurity_intensity=[0.05], seed=3)  # fmt: skip
    y = augmented_profile(_sticks(), GRID, params, CUKA1)
    assert np.all(y[GRID < 20.0] == 0) and np.all(y[GRID > 80.0] == 0)
    inside = (GRID > 30) & (GRID < 35)
    assert y[inside].min() > 0.1  # background
    clean = augmented_profile(_sticks(), GRID, {**params, "counts": None}, CUKA1)
    assert np.std(np.diff(y[inside])) > 5 * np.std(np.diff(clean[inside]))  # Poisson noise
    pk = find_peaks(GRID, y)
    assert np.any(np.abs(pk.two_theta - 40.0) < 0.05)  # the impurity line is there


def test_simulate_augment_records_draws(tmp_path, invoke):
    import h5py

    out = tmp_path / "aug.h5"
    result = invoke("simulate", "--builtin", "mp-sample", "--limit", "3", "--augment", "-q",
                    "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    with h5py.File(out) as h5:
        draws = [json.loads(v) for v in h5["extra/augment"][()]]
    assert len(draws) == 3 and {"U", "zero_shift", "counts"} <= set(draws[0])
    assert len({d["seed"] for d in draws}) == 3  # independent per pattern


@cache
def _real_cases() -> list:
    """(sticks, lattice, λ) of mp-sample structures: cubic HfB12, hexagonal NbS2, triclinic AgSO4
    (268 reflections), tetragonal KNaH2, and NbS2 again at Mo Kα1."""
    import pandas as pd
    from pymatgen.core import Structure

    from xtal_cli.io.structures import builtin_path
    from xtal_cli.xrd.sticks import compute_sticks

    cifs = pd.read_csv(builtin_path("mp-sample"), nrows=6)["cif"]
    out = []
    for row, lam in ((0, CUKA1), (1, CUKA1), (4, CUKA1), (5, CUKA1), (1, MOKA1)):
        with warnings.catch_warnings():  # pymatgen rounds a few coordinates of these CIFs
            warnings.simplefilter("ignore")
            s = Structure.from_str(cifs[row], fmt="cif")
        out.append((compute_sticks(s, lam, (0.0, 90.0)), s.lattice, lam))
    return out


def test_compiled_render_equals_the_numpy_reference():
    """200 draws on real structures, on xtal simulate's grid: the compiled render is the reference
    to float rounding without noise, and with noise the same Poisson draws (identical output)."""
    from xtal_cli.xrd.profile import ProfileSettings

    grid = ProfileSettings(two_theta_min=0.02, two_theta_max=90.0, step=0.02).grid()
    cases = _real_cases()
    seen = Counter()
    for i in range(200):
        params = draw_augmentation(np.random.default_rng([0, i]))
        sticks, lattice, lam = cases[i % len(cases)]
        lattice = None if i % 7 == 0 else lattice  # as detect's mixtures call it
        for p in (params, {**params, "counts": None}):
            new = augmented_profile(sticks, grid, p, lam, lattice=lattice)
            ref = augmented_profile_reference(sticks, grid, p, lam, lattice=lattice)
            assert new.dtype == np.float32 and new.shape == grid.shape
            if p["counts"]:
                assert np.array_equal(new, ref), f"draw {i}: Poisson counts differ"
            else:
                assert np.abs(new.astype(float) - ref).max() <= 1e-6, f"draw {i}"
        seen.update({
            "ka2": params["ka2"], "texture": params["texture_r"] != 1.0 and lattice is not None,
            "impurity": bool(params["impurity_two_theta"]), "window": bool(params["window"]),
            "hump": params["hump_height"] > 0, "synchrotron": params["instrument"] != "lab",
            "mo": lam == MOKA1 and params["ka2"],
        })  # fmt: skip
    assert min(seen.values()) >= 10, seen  # every effect drawn often enough to be compared


def test_compiled_render_checks_its_inputs():
    params = _clean()
    with pytest.raises(ValueError, match="grid"):
        augmented_profile(_sticks(), np.zeros(0), params, CUKA1)
    with pytest.raises(ValueError, match="impurity"):
        augmented_profile(_sticks(), GRID, _clean(impurity_two_theta=[40.0]), CUKA1)
    bad = Sticks(two_theta=_sticks().two_theta, intensity=_sticks().intensity,
                 hkl=_sticks().hkl[:2], d=_sticks().d)  # fmt: skip
    with pytest.raises(ValueError, match="texture"):
        augmented_profile(bad, GRID, _clean(texture_r=0.8), CUKA1, lattice=np.eye(3) * 5.43)
