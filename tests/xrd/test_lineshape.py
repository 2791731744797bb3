"""The shared line shape: pseudo-Voigt, TCH widths, Kα doublet and its policy."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.xrd import lineshape as ls
from xtal_cli.xrd.units import WAVELENGTHS


def _pv(dx, fw, eta):
    from xtal_cli.xrd._lineshape_kernels import pseudo_voigt

    return np.array(pseudo_voigt(float(dx), float(fw), float(eta)))


@pytest.mark.parametrize("eta", [0.0, 0.4, 1.0])
def test_pseudo_voigt_has_unit_area_and_its_fwhm(eta):
    fw, step = 0.2, 1e-4
    x = np.arange(-2000.0, 2000.0, step) * fw  # Lorentzian tails decay as 1/x²
    y = ls.pseudo_voigt_sum(x, [0.0], [1.0], fw, eta, window=1e9)
    tail = eta * 2 * fw / (np.pi * 2 * x[-1])  # the Lorentzian area beyond ±x_max
    assert y.sum() * step * fw == pytest.approx(1.0 - tail, rel=1e-6)
    peak = _pv(0.0, fw, eta)[0]
    assert _pv(fw / 2, fw, eta)[0] == pytest.approx(peak / 2, rel=1e-12)
    assert _pv(-fw / 2, fw, eta)[0] == pytest.approx(peak / 2, rel=1e-12)


@pytest.mark.parametrize("dx", [-0.31, -0.05, 0.0, 0.02, 0.4])
def test_pseudo_voigt_derivatives_match_finite_differences(dx):
    fw, eta, h = 0.17, 0.35, 1e-6
    _, d_dx, d_fw, d_eta = _pv(dx, fw, eta)
    assert d_dx == pytest.approx((_pv(dx + h, fw, eta)[0] - _pv(dx - h, fw, eta)[0]) / (2 * h),
                                 rel=1e-6, abs=1e-8)  # fmt: skip
    assert d_fw == pytest.approx((_pv(dx, fw + h, eta)[0] - _pv(dx, fw - h, eta)[0]) / (2 * h),
                                 rel=1e-6, abs=1e-8)  # fmt: skip
    assert d_eta == pytest.approx((_pv(dx, fw, eta + h)[0] - _pv(dx, fw, eta - h)[0]) / (2 * h),
                                  rel=1e-6, abs=1e-8)  # fmt: skip


def test_per_peak_eta_kernel_equals_numpy():
    rng = np.random.default_rng(5)
    grid = np.arange(5.0, 90.0, 0.02)
    centers = np.sort(rng.uniform(6.0, 89.0, 50))
    areas = rng.uniform(1.0, 100.0, 50)
    fwhm = rng.uniform(0.03, 0.8, 50)
    eta = rng.uniform(0.0, 1.0, 50)
    window = 20.0
    x = grid[None, :] - centers[:, None]
    f, e = fwhm[:, None], eta[:, None]
    gauss = 2 * np.sqrt(np.log(2) / np.pi) / f * np.exp(-4 * np.log(2) * (x / f) ** 2)
    lorentz = 2 / (np.pi * f * (1 + 4 * (x / f) ** 2))
    dense = areas[:, None] * (e * lorentz + (1 - e) * gauss)
    lo = np.searchsorted(grid, centers - window * fwhm)
    hi = np.searchsorted(grid, centers + window * fwhm)
    idx = np.arange(grid.size)[None, :]
    dense[(idx < lo[:, None]) | (idx >= hi[:, None])] = 0.0  # the ±window·FWHM truncation
    got = ls.pseudo_voigt_sum(grid, centers, areas, fwhm, eta, window)
    np.testing.assert_allclose(got, dense.sum(axis=0), rtol=1e-12, atol=1e-12 * got.max())
    # a scalar η is the same as that η for every peak
    same = ls.pseudo_voigt_sum(grid, centers, areas, fwhm, 0.3, window)
    assert np.array_equal(same, ls.pseudo_voigt_sum(grid, centers, areas, fwhm, [0.3] * 50, window))


def test_tails_kernel_is_the_full_kernel_without_negligible_gaussians():
    """Beyond ±GAUSS_FWHM FWHM only the Lorentzian: the same sum to float rounding, and pure
    Gaussians (η = 0) stop at the core."""
    from xtal_cli.xrd._lineshape_kernels import (
        GAUSS_FWHM,
        pseudo_voigt_into,
        pseudo_voigt_tails_into,
    )

    rng = np.random.default_rng(7)
    grid = np.arange(0.02, 90.0, 0.02)
    centers = rng.uniform(-1.0, 91.0, 200)  # some windows cut by the ends of the grid
    areas = rng.uniform(0.0, 100.0, 200)
    fwhm = rng.uniform(0.005, 1.5, 200)
    eta = np.where(rng.random(200) < 0.2, 0.0, rng.uniform(0.0, 1.0, 200))
    lo = np.searchsorted(grid, centers - 20.0 * fwhm).astype(np.int64)
    hi = np.searchsorted(grid, centers + 20.0 * fwhm).astype(np.int64)
    args = (grid, centers, areas, fwhm, eta, lo, hi)
    full = pseudo_voigt_into(np.zeros(grid.size), *args)
    fast = pseudo_voigt_tails_into(np.zeros(grid.size), *args)
    np.testing.assert_allclose(fast, full, rtol=1e-13, atol=1e-15 * full.max())
    gauss = (np.array([45.0]), np.ones(1), np.array([0.1]), np.zeros(1))  # centre, area, FWHM, η
    whole = (np.zeros(1, dtype=np.int64), np.full(1, grid.size, dtype=np.int64))
    one = pseudo_voigt_tails_into(np.zeros(grid.size), grid, *gauss, *whole)
    assert np.all(one[np.abs(grid - 45.0) > GAUSS_FWHM * 0.1 + 0.02] == 0.0) and one.max() > 9


def test_tch_limits_are_pure_gauss_and_pure_lorentz():
    g = np.array([0.1, 0.3])
    fw, eta = ls.tch_width(g, np.zeros(2))
    np.testing.assert_allclose(fw, g, rtol=1e-12)
    np.testing.assert_allclose(eta, 0.0, atol=1e-12)
    fw, eta = ls.tch_width(np.zeros(2), g)
    np.testing.assert_allclose(fw, g, rtol=1e-12)
    np.testing.assert_allclose(eta, 1.36603 - 0.47719 + 0.11116, rtol=1e-12)  # 1 within 1e-5
    fw, eta = ls.tch_width(0.1, 0.1)  # mixed: wider than either, η in between
    assert 0.1 < float(fw) < 0.2 and 0.0 < float(eta) < 1.0


def test_gsas_tch_converts_centidegrees_and_sigma():
    sig = np.array([4.0, 0.0])  # σ² in centideg²; 0 is floored at 0.001
    fw, eta = ls.gsas_tch(sig, np.array([0.0, 0.0]))
    g = np.sqrt(8 * np.log(2)) * np.sqrt(np.maximum(sig, 0.001)) / 100
    fw_ref, eta_ref = ls.tch_width(g, np.full(2, 0.001 / 100))
    np.testing.assert_allclose(fw, fw_ref, rtol=1e-14)
    np.testing.assert_allclose(eta, eta_ref, rtol=1e-14)


def test_caglioti_and_lorentzian_terms():
    tt = np.array([20.0, 60.0])
    th = np.radians(tt) / 2
    np.testing.assert_allclose(ls.caglioti_fwhm(tt, 0.0, 0.0, 0.01), 0.1)
    np.testing.assert_allclose(ls.caglioti(th, 1.0, 0.0, 0.0), np.tan(th) ** 2)
    np.testing.assert_allclose(ls.lorentzian_fwhm(th, 0.0, 0.1), 0.1 / np.cos(th))
    fw, eta = ls.tch_fwhm_eta(tt, 0.0, 0.0, 0.01, 0.0, 0.0)
    np.testing.assert_allclose(fw, 0.1, rtol=1e-12)
    np.testing.assert_allclose(eta, 0.0, atol=1e-12)


def test_kalpha2_position_and_ratio():
    cu1, cu2 = WAVELENGTHS["CuKa1"], WAVELENGTHS["CuKa2"]
    tt = np.array([30.0, 100.0, 179.5])
    tt2 = ls.doublet_two_theta(tt, cu1, cu2)
    s1 = np.sin(np.radians(tt[:2]) / 2)
    np.testing.assert_allclose(np.sin(np.radians(tt2[:2]) / 2), s1 * cu2 / cu1, rtol=1e-13)
    assert np.isnan(tt2[2])  # Kα2 of a reflection near 180° is not reached
    np.testing.assert_allclose(ls.doublet_two_theta(tt2[:2], cu2, cu1), tt[:2], rtol=1e-12)
    lines, inten = ls.kalpha2_lines(tt, [10.0, 4.0, 1.0], (cu1, cu2, 0.5))
    np.testing.assert_allclose(lines, [*tt, *tt2[:2]])
    np.testing.assert_allclose(inten, [10.0, 4.0, 1.0, 5.0, 2.0])


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("CuKa", ("CuKa1", "CuKa2")),
        ("CuKa1", ("CuKa1", "CuKa2")),
        ("MoKa1", ("MoKa1", "MoKa2")),
        (WAVELENGTHS["MoKa1"] + 1e-4, ("MoKa1", "MoKa2")),
        (1.54056, ("CuKa1", "CuKa2")),
        ("CuKa2", None),
        ("CuKb1", None),
        ("1.54056", None),
        (1.0, None),
        (WAVELENGTHS["CuKa"], None),  # the mean doublet wavelength is not a Kα1 line
    ],
)
def test_kalpha_policy(line, expected):
    pair = ls.kalpha_pair(line)
    if expected is None:
        assert pair is None
    else:
        assert pair == (WAVELENGTHS[expected[0]], WAVELENGTHS[expected[1]], ls.KA2_RATIO)


def test_kalpha_doublet_prefers_what_the_data_say():
    cu1 = WAVELENGTHS["CuKa1"]
    assert ls.kalpha_doublet(cu1) == (cu1, WAVELENGTHS["CuKa2"], 0.5)
    assert ls.kalpha_doublet(cu1, 1.5444, 0.48) == (cu1, 1.5444, 0.48)
    assert ls.kalpha_doublet(cu1, ratio=0.0) == (cu1, WAVELENGTHS["CuKa2"], 0.5)
    assert ls.kalpha_doublet(1.0) is None
    assert ls.kalpha_doublet(1.0, 1.01) == (1.0, 1.01, 0.5)


def test_fcj_profile_has_unit_area():
    x = np.arange(5.0, 40.0, 0.002)
    for shl in (0.0, 0.04):
        y = ls.fcj_peaks(x, [20.0], [4.0], [3.0], shl, [1.0], reach=4)
        assert y.sum() * 0.002 == pytest.approx(1.0, rel=2e-3)
    assert not ls.fcj_extent([20.0, 120.0], 0.0).any()
    assert np.all(ls.fcj_extent([20.0, 120.0], 0.04) > 0)
