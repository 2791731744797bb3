"""Peak-list comparison: merging (fixed and local widths), local FWHM model, zero-shift matching."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.xrd.peakmatch import close_groups, fwhm_model, match_fraction, merge_close
from xtal_cli.xrd.peaks import Peaks


def test_fixed_tolerance_merges_weighted_and_sums():
    tt, inten = merge_close(np.array([10.0, 10.005, 20.0]), np.array([1.0, 3.0, 2.0]), 0.01)
    assert np.allclose(tt, [10.00375, 20.0]) and np.allclose(inten, [4.0, 2.0])


def test_no_merge_for_zero_tolerance_or_one_peak():
    tt, inten = np.array([1.0, 1.0]), np.array([1.0, 2.0])
    assert merge_close(tt, inten, 0.0)[0] is tt
    assert merge_close(tt[:1], inten[:1], lambda x: x)[0].tolist() == [1.0]


def test_local_width_merges_at_high_angle_only():
    # the same 0.1° gap: resolved at 20° (width 0.05), unresolved at 80° (width 0.25)
    tt = np.array([80.1, 20.0, 80.0, 20.1])
    inten = np.array([1.0, 1.0, 1.0, 3.0])
    width = lambda x: 0.05 + (np.asarray(x) - 20.0) / 60.0 * 0.2  # noqa: E731
    pos, total = merge_close(tt, inten, width)
    assert np.allclose(pos, [20.0, 20.1, 80.05]) and np.allclose(total, [1, 3, 2])
    # unsorted input: labels in input order, counting in increasing 2θ
    assert close_groups(tt, width).tolist() == [2, 0, 2, 1]
    # a per-gap array gives the same merge as the callable at the gap midpoints
    gaps = width(np.array([20.05, 50.05, 80.05]))
    assert np.allclose(merge_close(tt, inten, gaps)[0], pos)


def test_zero_intensity_group_sits_at_plain_mean():
    pos, total = merge_close(np.array([5.0, 5.02]), np.zeros(2), 0.05)
    assert pos.tolist() == [5.01] and total.tolist() == [0.0]


def test_tolerance_array_of_wrong_length_names_tol():
    with pytest.raises(ValueError, match="tol"):
        close_groups(np.array([1.0, 2.0, 3.0]), np.array([0.1]))


def test_match_fraction_identical_disjoint_and_shifted():
    ref = np.array([20.0, 30.0, 40.0, 50.0])
    f, z = match_fraction(ref, ref)
    assert f == 1.0 and -0.1 <= z < -0.09  # the first (most negative) shift within tol wins
    assert match_fraction(ref, ref + 5.0)[0] == 0.0
    f, z = match_fraction(ref, ref + 0.2, tol=0.01)
    assert f == 1.0 and z == pytest.approx(0.2, abs=0.011)
    assert match_fraction(ref, np.array([]))[0] == 0.0
    with pytest.raises(ValueError, match="step"):
        match_fraction(ref, ref, step=0.0)


def _peaks(tt, fwhm, shoulder=None):
    n = len(tt)
    z = np.zeros(n)
    return Peaks(np.asarray(tt, float), np.ones(n), np.asarray(fwhm, float), z, z, z,
                 z, z, z, 0.0, shoulder=shoulder)  # fmt: skip


def test_fwhm_model_recovers_a_caglioti_law_and_ignores_outliers():
    tt = np.linspace(15, 120, 20)
    t = np.tan(np.radians(tt) / 2)
    fw = np.sqrt(0.01 * t * t - 0.002 * t + 0.004)
    bad = fw.copy()
    bad[5] *= 4  # a broad overlap the robust fit drops
    model = fwhm_model(_peaks(tt, bad))
    keep = np.arange(20) != 5
    assert np.allclose(model(tt[keep]), fw[keep], rtol=1e-6)
    assert model(200.0) == pytest.approx(fw[keep].max())  # clipped to the fitted range


def test_fwhm_model_with_few_maxima_is_their_median():
    model = fwhm_model(_peaks([20, 30, 40, 50], [0.1, 0.2, 0.3, 9.0], np.array([0, 0, 0, 1], bool)))
    assert np.all(model(np.array([10.0, 90.0])) == 0.2)
