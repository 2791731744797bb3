"""Peak finding: synthetic patterns with known peaks, Kα2 stripping, and the shared real scans."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.errors import XtalError
from xtal_cli.xrd.peaks import find_peaks, plot_peaks, snip_background, strip_ka2

CU = (1.540562, 1.544390, 0.5)
TRUE = np.array([21.3, 28.44, 35.0, 47.3, 56.12, 69.1, 76.4])
AMPS = np.array([1000.0, 400.0, 2500.0, 150.0, 800.0, 300.0, 90.0])


def _ka2_position(tt1: float, l1: float, l2: float) -> float:
    return 2 * np.degrees(np.arcsin(l2 / l1 * np.sin(np.radians(tt1) / 2)))


def _pattern(rng=None, *, ka2=False, background=True, step=0.02, fwhm=0.12):
    tt = np.arange(10.0, 90.0, step)
    y = np.zeros_like(tt)
    s = fwhm / 2.3548
    for pos, amp in zip(TRUE, AMPS):
        y += amp * np.exp(-0.5 * ((tt - pos) / s) ** 2)
        if ka2:
            y += CU[2] * amp * np.exp(-0.5 * ((tt - _ka2_position(pos, CU[0], CU[1])) / s) ** 2)
    if background:
        y += 200.0 + 3000.0 / tt + 40.0 * np.exp(-0.5 * ((tt - 25.0) / 6.0) ** 2)
    if rng is not None:
        y = rng.poisson(y).astype(float)
    return tt, y


def test_noiseless_profile_finds_every_peak_exactly():
    tt, y = _pattern(background=False)
    pk = find_peaks(tt, y, background=None)
    assert len(pk) == len(TRUE)
    assert np.allclose(pk.two_theta, TRUE, atol=0.005)
    assert np.allclose(pk.height / pk.height.max(), AMPS / AMPS.max(), atol=0.02)
    assert np.allclose(pk.fwhm, 0.12, atol=0.02)
    assert np.all(np.diff(pk.two_theta) > 0)


def test_noisy_pattern_with_background_finds_peaks_and_no_spurious_ones():
    rng = np.random.default_rng(1)
    tt, y = _pattern(rng)
    pk = find_peaks(tt, y)
    assert len(pk) == len(TRUE), pk.two_theta
    assert np.all(np.abs(pk.two_theta - TRUE) < 0.02)
    # Background follows the smooth part: residual around the true one is small vs the peaks.
    true_bg = 200.0 + 3000.0 / tt + 40.0 * np.exp(-0.5 * ((tt - 25.0) / 6.0) ** 2)
    far = np.min(np.abs(tt[:, None] - TRUE[None, :]), axis=1) > 1.0
    assert np.median(np.abs(pk.background[far] - true_bg[far])) < 15


def test_position_sigma_is_calibrated():
    """The reported σ should match the scatter of positions over noise realisations (±2×)."""
    rng = np.random.default_rng(7)
    positions, sigmas = [], []
    for _ in range(30):
        tt, y = _pattern(rng)
        pk = find_peaks(tt, y)
        j = np.argmin(np.abs(pk.two_theta - 76.4))  # the weakest peak has the largest σ
        positions.append(pk.two_theta[j])
        sigmas.append(pk.sigma[j])
    scatter, reported = np.std(positions), np.median(sigmas)
    assert 0.5 < reported / scatter < 2.0, (reported, scatter)


def test_rachinger_removes_the_ka2_component():
    tt, y = _pattern(ka2=True, background=False, step=0.01)
    stripped = strip_ka2(tt, y, *CU)
    pure, _ = _pattern(ka2=False, background=False, step=0.01)[1], None
    assert np.max(np.abs(stripped - pure)) < 0.03 * AMPS.max()
    with_ka2 = find_peaks(tt, y, background=None, ka2=None, min_relative_height=0.02)
    without = find_peaks(tt, y, background=None, ka2=CU, min_relative_height=0.02)
    assert len(with_ka2) > len(TRUE)  # resolved Kα2 partners at high angle count as peaks
    assert len(without) == len(TRUE)
    assert np.allclose(without.two_theta, TRUE, atol=0.01)


def test_snip_background_lies_under_the_peaks():
    tt, y = _pattern(background=True)
    bg = snip_background(y, int(1.5 / 0.02))
    assert np.all(bg <= y + 1e-6)
    assert abs(bg[np.argmin(np.abs(tt - 35.0))] - (200 + 3000 / 35.0 + 40 * np.exp(-5.0))) < 20


def test_als_background_runs():
    tt, y = _pattern(np.random.default_rng(3))
    pk = find_peaks(tt, y, background="als")
    assert np.all(np.min(np.abs(pk.two_theta[:, None] - TRUE[None, :]), axis=0) < 0.03)


def test_explicit_prominence_and_relative_height_threshold():
    tt, y = _pattern(np.random.default_rng(2))
    strong = find_peaks(tt, y, min_relative_height=0.2)
    assert set(np.round(strong.two_theta)) == {21.0, 35.0, 56.0}
    assert len(find_peaks(tt, y, prominence=1e9)) == 0


def test_non_uniform_grid_is_resampled():
    tt, y = _pattern(background=False)
    keep = np.ones(len(tt), bool)
    keep[::7] = False
    pk = find_peaks(tt[keep], y[keep], background=None)
    assert len(pk) == len(TRUE)


@pytest.mark.parametrize(
    "tt, y",
    [
        (np.arange(5.0), np.ones(5)),
        (np.arange(20.0), np.r_[np.ones(19), np.nan]),
        (np.arange(20.0), np.ones(21)),
    ],
)
def test_bad_input_raises_xtal_error(tt, y):
    with pytest.raises(XtalError):
        find_peaks(tt, y)


def test_bad_options_raise_xtal_error():
    tt, y = _pattern()
    with pytest.raises(XtalError, match="background"):
        find_peaks(tt, y, background="magic")
    with pytest.raises(XtalError, match="odd"):
        find_peaks(tt, y, smooth=4)


def test_plot_peaks_writes_png(tmp_path):
    from xtal_cli.io.scans import Scan

    tt, y = _pattern(np.random.default_rng(0), ka2=True)
    scan = Scan(two_theta=tt, counts=y, path="synthetic.xy")
    pk = find_peaks(tt, y, ka2=CU)
    out = tmp_path / "peaks.png"
    plot_peaks(scan, pk, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_y2o3_scan_peaks_match_the_known_phase(shared_data):
    """Real scan: the strong reflections of cubic Y2O3 are found (zero shift fitted)."""
    import warnings

    from pymatgen.core import Structure

    from xtal_cli.io.scans import read_scan
    from xtal_cli.xrd.sticks import compute_sticks

    folder = shared_data / "measured" / "bbo-rietveld" / "Y2O3"
    scan = read_scan(folder / "Y2O3.csv")
    pk = find_peaks(scan.two_theta, scan.counts, ka2=CU)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure = Structure.from_file(folder / "Y2O3.cif")
    sticks = compute_sticks(structure, CU[0], (10.0, 90.0))
    strong = sticks.two_theta[sticks.intensity >= 5]
    best = max(
        np.mean(np.min(np.abs(strong[:, None] - (pk.two_theta[None, :] - z)), axis=1) <= 0.1)
        for z in np.arange(-0.3, 0.3001, 0.01)
    )
    assert best >= 0.9


def _lorentz(tt, pos, amp, fwhm):
    return amp / (1.0 + ((tt - pos) / (0.5 * fwhm)) ** 2)


def _gauss(tt, pos, amp, fwhm):
    return amp * np.exp(-0.5 * ((tt - pos) / (fwhm / 2.3548)) ** 2)


def test_shoulder_without_a_maximum_is_found_by_the_second_derivative():
    """A reflection half as strong, 0.9 FWHM beside a stronger one, makes no maximum of its own."""
    tt = np.arange(20.0, 60.0, 0.01)
    clean = 100.0 + _gauss(tt, 40.0, 4000.0, 0.3) + _gauss(tt, 40.27, 2000.0, 0.3)
    assert len(find_peaks(tt, clean, background=None, shoulders=False)) == 1  # no own maximum
    for seed in range(3):
        y = np.random.default_rng(seed).poisson(clean).astype(float)
        pk = find_peaks(tt, y)
        assert len(pk) == 2, pk.two_theta
        assert np.allclose(pk.two_theta, [40.0, 40.27], atol=0.05)
        assert pk.shoulder.tolist() == [False, True]
        assert len(find_peaks(tt, y, shoulders=False)) == 1


def test_overlapping_broad_peaks_are_both_kept_with_their_own_widths():
    """Two broad peaks whose valley stays above half height (nanocrystalline anatase 53.9/55.1):
    the lower one's width must not run across its neighbour (it was then dropped as background)."""
    tt = np.arange(40.0, 70.0, 0.01)
    clean = 300.0 + _lorentz(tt, 53.9, 800.0, 0.8) + _lorentz(tt, 55.1, 850.0, 0.8)
    y = np.random.default_rng(4).poisson(clean).astype(float)
    pk = find_peaks(tt, y)
    for pos in (53.9, 55.1):
        j = np.argmin(np.abs(pk.two_theta - pos))
        assert abs(pk.two_theta[j] - pos) < 0.05, pk.two_theta
        assert abs(pk.fwhm[j] - 0.8) < 0.2, pk.fwhm


def test_weak_broad_high_angle_peak_counts_by_area():
    """0.6 % of the strongest height but 6 % of its area (widths grow with angle): kept."""
    tt = np.arange(20.0, 120.0, 0.01)
    clean = 50.0 + _gauss(tt, 30.0, 20000.0, 0.1) + _gauss(tt, 110.0, 120.0, 1.0)
    y = np.random.default_rng(5).poisson(clean).astype(float)
    pk = find_peaks(tt, y)
    assert np.any(np.abs(pk.two_theta - 110.0) < 0.1), pk.two_theta


@pytest.mark.parametrize("seed", range(5))
def test_poisson_noise_on_strong_peaks_makes_no_shoulders(seed):
    """Counting noise on the flanks of strong, clean peaks (where it is largest) and on the
    background must not pass the curvature test."""
    tt = np.arange(10.0, 90.0, 0.02)
    clean = 500.0 + 2000.0 / tt + _gauss(tt, 45.0, 30000.0, 0.3) + _lorentz(tt, 70.0, 8000.0, 0.5)
    y = np.random.default_rng(seed).poisson(clean).astype(float)
    pk = find_peaks(tt, y)
    assert np.allclose(pk.two_theta, [45.0, 70.0], atol=0.02), pk.two_theta
    assert not pk.shoulder.any()
