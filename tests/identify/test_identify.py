"""The library: a synthetic two-phase mixture decomposed, candidates rejected with reasons,
settings that validate themselves, the multiphase engine's weight fractions."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.errors import ParameterError, XtalError


@pytest.fixture(scope="module")
def answer(mixture):
    from xtal_cli.identify.candidates import load_candidates
    from xtal_cli.identify.search import identify
    from xtal_cli.io.scans import read_scan

    scan = read_scan(mixture.scan, wavelength=1.54056)
    scan.wavelength2, scan.ka2_ratio = 1.54439, 0.5
    return identify(scan, load_candidates([str(mixture.candidates)]))


def test_two_phase_mixture_decomposed_within_one_weight_percent(answer, mixture):
    best = answer.best
    assert sorted(p.formula for p in best.phases) == ["NaCl", "Si"]
    for p in best.phases:
        assert abs(p.weight_fraction - mixture.truth[p.formula]) < 0.01, p
        assert 0 < p.weight_fraction_esd < 0.01
    assert best.rwp < 15 and 0.8 < best.gof < 1.5  # noise-limited fit of a model that is right
    assert sum(p.weight_fraction for p in best.phases) == pytest.approx(1.0)


def test_absent_candidate_rejected_with_its_reason(answer):
    reasons = {r.formula: r.reason for r in answer.rejected}
    assert "ZnO" in reasons and "ZnO" not in answer.best.formulas
    assert "lines" in reasons["ZnO"] or "fit" in reasons["ZnO"]


def test_required_unknown_phase_is_an_error(mixture):
    from xtal_cli.identify.candidates import load_candidates
    from xtal_cli.identify.search import identify
    from xtal_cli.io.scans import read_scan

    scan = read_scan(mixture.scan, wavelength=1.54056)
    with pytest.raises(XtalError, match="--require Fe2O3"):
        identify(scan, load_candidates([str(mixture.candidates)]), require=["Fe2O3"])


def test_scan_without_wavelength_is_refused(mixture):
    from xtal_cli.identify.candidates import load_candidates
    from xtal_cli.identify.search import identify
    from xtal_cli.io.scans import read_scan

    scan = read_scan(mixture.scan)
    with pytest.raises(XtalError, match="no wavelength"):
        identify(scan, load_candidates([str(mixture.candidates)]))


@pytest.mark.parametrize(
    "field,value",
    [("max_phases", 0), ("min_score", 1.5), ("beam", 0), ("max_zero", -1), ("background_terms", 0)],
)
def test_settings_name_the_bad_parameter(field, value):
    from xtal_cli.identify.search import IdentifySettings

    with pytest.raises(ParameterError, match=field):
        IdentifySettings(**{field: value})


def test_weight_fractions_follow_zmv(mixture):
    """W ∝ scale · cell mass · volume: doubling one phase's scale doubles its S·ZMV share."""
    from xtal_cli.refine.engine import RietveldModel
    from xtal_cli.refine.fractions import cell_mass, weight_fractions
    from xtal_cli.refine.instrument import Instrument
    from xtal_cli.refine.phases import cell_volume, read_phase

    phases = [read_phase(mixture.candidates / f"{n}.cif") for n in ("NaCl", "Si")]
    tt = np.arange(20.0, 60.0, 0.05)
    model = RietveldModel(tt, np.ones_like(tt), phases, Instrument(lam1=1.5406))
    model.set("scale", 2.0)
    w, esd = weight_fractions(model)
    m = [s * cell_mass(p) * cell_volume(p.cell) for s, p in zip((2.0, 1.0), phases)]
    assert w == pytest.approx(np.array(m) / sum(m))
    assert np.all(esd == 0)  # nothing refined, no covariance
    assert cell_mass(phases[0]) == pytest.approx(4 * (22.990 + 35.45), rel=1e-3)


def test_unstripped_peaks_join_only_where_the_doublet_is_unresolved():
    """The unstripped scan's resolved Kα2 ghosts (47.6°, 70.2°) must not join the picked peaks,
    nor a line already picked be counted twice."""
    from xtal_cli.identify.search import _with_unresolved_doublets
    from xtal_cli.io.scans import Scan
    from xtal_cli.xrd.lineshape import kalpha2_lines, pseudo_voigt_sum
    from xtal_cli.xrd.peakmatch import fwhm_model
    from xtal_cli.xrd.peaks import find_scan_peaks

    tt = np.arange(10.0, 90.0, 0.01)
    lam1, lam2 = 1.54056, 1.54439
    lines = np.array([18.5, 33.0, 47.5, 70.0])
    heights = np.array([400.0, 20000.0, 15000.0, 10000.0])  # 18.5°: broad and weak
    widths = np.array([0.35, 0.12, 0.13, 0.16])
    y = np.zeros_like(tt)
    for x0, h, w in zip(lines, heights, widths):
        pos, inten = kalpha2_lines(np.array([x0]), np.array([h]), (lam1, lam2, 0.5))
        y += pseudo_voigt_sum(tt, pos, inten, np.full(len(pos), w), 0.5, 30.0)
    counts = np.random.default_rng(2).poisson(y + 2000.0).astype(float)
    scan = Scan(tt, counts, wavelength=lam1, wavelength2=lam2, ka2_ratio=0.5)
    peaks = find_scan_peaks(scan)
    got = _with_unresolved_doublets(scan, peaks.two_theta, fwhm_model(peaks))
    assert set(peaks.two_theta) <= set(got)
    assert np.sum(np.abs(got - 18.5) < 0.2) == 1
    raw = find_scan_peaks(scan, strip_ka2_from_file=False).two_theta
    for x0 in (47.5, 70.0):  # resolved doublets: the raw picking sees the Kα2 ghost ...
        ghost = np.degrees(2 * np.arcsin(np.sin(np.radians(x0 / 2)) * lam2 / lam1))
        assert np.min(np.abs(raw - ghost)) < 0.05
        assert np.min(np.abs(got - ghost)) > 0.05  # ... and it is not added
