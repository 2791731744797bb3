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
