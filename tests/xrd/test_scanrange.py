"""Background steps in measured scans and the default refinement range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xtal_cli.xrd.lineshape import fcj_peaks
from xtal_cli.xrd.scanrange import background_steps, usable_range

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "measured"


def _scan(step_at=None, seed=0):
    tt = np.arange(10.0, 120.0, 0.02)
    rng = np.random.default_rng(seed)
    centres = rng.uniform(15, 115, 60)
    peaks = fcj_peaks(
        tt, centres, np.full(60, 8.0), np.full(60, 6.0), 0.02, rng.uniform(20, 400, 60)
    )
    background = 80 + 400 * np.exp(-(tt - 10) / 6)  # air scatter falling off, then flat
    if step_at is not None:
        background = np.where(tt > step_at, background + 130, background)
    return tt, rng.poisson(background + peaks).astype(float)


def test_a_background_step_is_found_and_left_out():
    tt, y = _scan(step_at=100.0)
    steps = background_steps(tt, y)
    assert len(steps) == 1
    assert steps[0].two_theta == pytest.approx(100.0, abs=0.5)
    assert steps[0].after > 1.8 * steps[0].before
    (lo, hi), _ = usable_range(tt, y)
    assert lo == tt[0] and 99.0 < hi < 100.0


@pytest.mark.parametrize("seed", range(4))
def test_peaks_and_falling_air_scatter_are_not_steps(seed):
    tt, y = _scan(seed=seed)
    assert background_steps(tt, y) == []
    assert usable_range(tt, y)[0] == (tt[0], tt[-1])


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the checkout")
def test_dsmo_scan_joint_and_clean_scans():
    from xtal_cli.io.scans import read_scan

    dsmo = read_scan(SHARED / "bbo-rietveld/DSMO/dsmo.csv", wavelength=1.5405)
    steps = background_steps(dsmo.two_theta, dsmo.counts)
    assert [round(s.two_theta) for s in steps] == [107]
    for other in (
        "bbo-rietveld/Y2O3/Y2O3.csv",
        "bbo-rietveld/LiCoO2/Powder-data-Bruker/LiCoO2.RAW",
    ):
        scan = read_scan(SHARED / other, wavelength=1.5405)
        assert background_steps(scan.two_theta, scan.counts) == []
