"""The Rietveld engine: profile normalisation, instrument files, recovery of known parameters."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.errors import XtalError
from xtal_cli.refine.engine import RietveldModel, Stage, refine
from xtal_cli.refine.instrument import read_instrument
from xtal_cli.refine.phases import read_phase
from xtal_cli.xrd.lineshape import fcj_peaks


def test_profile_has_unit_area_and_fcj_tail_on_the_low_side():
    x = np.arange(5.0, 60.0, 0.002)
    sym = fcj_peaks(x, [20.0], [4.0], [3.0], 0.0, [1.0], reach=4)
    asym = fcj_peaks(x, [20.0], [4.0], [3.0], 0.05, [1.0], reach=4)
    assert sym.sum() * 0.002 == pytest.approx(1.0, abs=2e-3)
    assert asym.sum() * 0.002 == pytest.approx(1.0, abs=5e-3)
    # axial divergence at low angle pushes intensity below the Bragg angle
    mean = lambda y: np.sum(x * y) / np.sum(y)  # noqa: E731
    assert mean(asym) < mean(sym) - 0.01
    assert x[np.argmax(sym)] == pytest.approx(20.0, abs=0.002)


def test_prm_reader_follows_gsas2(prm):
    inst = read_instrument(prm)
    assert (inst.lam1, inst.lam2, inst.ratio, inst.polariz) == (1.5405, 1.5443, 0.5, 0.7)
    assert (inst.U, inst.V, inst.W, inst.X, inst.Y) == (2.0, -2.0, 5.0, 0.0, 0.0)
    assert inst.SH_L == pytest.approx(0.02)  # S/L + H/L


def test_instprm_reader(tmp_path):
    path = tmp_path / "lab.instprm"
    path.write_text(
        "#GSAS-II instrument parameter file\nType:PXC\nLam1:1.540593\nLam2:1.544427\n"
        "I(L2)/I(L1):0.5\nZero:0.01\nPolariz.:0.5\nU:3.0\nV:-1.0\nW:4.0\nX:1.5\nY:2.5\n"
        "Z:0.0\nSH/L:0.003\nAzimuth:0.0\n"
    )
    inst = read_instrument(path)
    assert (inst.lam1, inst.zero, inst.X, inst.SH_L) == (1.540593, 0.01, 1.5, 0.003)


def test_missing_or_wrong_instrument_file(tmp_path):
    with pytest.raises(XtalError, match="instrument file not found"):
        read_instrument(tmp_path / "INST.PRM")
    other = tmp_path / "junk.prm"
    other.write_text("hello\n")
    with pytest.raises(XtalError, match="neither"):
        read_instrument(other)


def _truth(cifs, prm):
    phase = read_phase(cifs["ZnO"])
    inst = read_instrument(prm)
    tt = np.arange(25.0, 110.0, 0.02)
    model = RietveldModel(tt, np.ones_like(tt), phase, inst)
    model.set_background("chebyschev", 3)
    truth = {"scale": 1.0, "zero": 0.03, "U": 4.0, "V": -3.0, "W": 6.0, "X": 2.0, "Y": 3.0,
             "SH/L": 0.025, "bg0": 200.0, "bg1": -40.0, "bg2": 15.0, "Uiso:0": 0.008,
             "Uiso:1": 0.012, "xyz:1:0": 0.006}  # fmt: skip
    for k, v in truth.items():
        model.set(k, v)
    ybg, ypk = model.calc()
    model.set("scale", 5000.0 / ypk.max())
    truth["scale"] = model.get("scale")
    ybg, ypk = model.calc()
    counts = np.random.default_rng(7).poisson(ybg + ypk).astype(float)
    return phase, inst, tt, counts, truth


def test_refinement_recovers_known_parameters_within_esds(cifs, prm):
    phase, inst, tt, counts, truth = _truth(cifs, prm)
    model = RietveldModel(tt, counts, phase, inst)
    model.set("U", 2.0)
    model.set("X", 0.5)
    model.set("SH/L", 0.01)
    model.set("A0", 0.001 * phase.A0[0])  # about 0.05 % off in a
    stages = [
        Stage("background", background=("chebyschev", 3), refine=("background",)),
        Stage("cell+zero", refine=("cell", "zero")),
        Stage("profile", refine=("U", "V", "W", "X", "Y", "SH/L")),
        Stage("atoms", refine=("xyz", "uiso"), cycles=20),
    ]
    res = refine(model, stages)
    assert res.gof < 1.1  # at the noise level
    assert res.cell[0] == pytest.approx(phase.cell[0], abs=4 * res.cell_esd[0] + 1e-6)
    for raw in ("zero", "SH/L", "W", "X", "Uiso:1"):
        name = model._pretty(raw)
        esd = res.esds[name]
        assert abs(res.values[name] - truth[raw]) < 4 * esd, (name, res.values[name], truth[raw])
    # P6_3mc is polar: only z(O) - z(Zn) is defined (the origin floats along c)
    zn, o = (model._pretty(f"xyz:{i}:0") for i in (0, 1))
    dz = res.values[o] - res.values[zn]
    assert abs(dz - truth["xyz:1:0"]) < 4 * np.hypot(res.esds[o], res.esds[zn])


def test_bad_counts_are_refused(cifs, prm):
    phase, inst = read_phase(cifs["NaCl"]), read_instrument(prm)
    tt = np.arange(20.0, 80.0, 0.02)
    y = np.full_like(tt, 100.0)
    y[5] = np.nan
    with pytest.raises(XtalError, match="NaN"):
        RietveldModel(tt, y, phase, inst)
    y[5] = -3
    with pytest.raises(XtalError, match="negative counts"):
        RietveldModel(tt, y, phase, inst)


def test_unmodelled_roughness_uiso_is_fixed_not_negative(cifs, prm):
    """Surface roughness takes low-angle intensity away; refined without it, Uiso goes negative.
    The engine reruns that stage with the offending Uiso fixed, so the trial stays physical."""
    phase, inst, tt, counts, truth = _truth(cifs, prm)
    model = RietveldModel(tt, counts, phase, inst)
    model.set_background("chebyschev", 3)
    for k, v in truth.items():
        model.set(k, v)
    model.set("SurfRoughA", 0.0)
    model.set("SurfRoughB", 0.6)  # strong Suortti roughness in the truth
    ybg, ypk = model.calc()
    counts = np.random.default_rng(3).poisson(ybg + ypk).astype(float)
    free = RietveldModel(tt, counts, phase, inst)
    for k in ("U", "V", "W", "X", "Y", "SH/L", "zero"):
        free.set(k, truth[k])
    stages = [
        Stage("background", background=("chebyschev", 3), refine=("background",)),
        Stage("atoms", refine=("uiso",), cycles=20),
    ]
    res = refine(free, stages)
    assert res.fixed_uiso  # at least one site fixed at its CIF value
    assert not res.negative_uiso
    assert all(s["uiso"] >= 0 for s in res.sites)
    # the same with roughness refined: nothing to fix, and the roughness is found again
    again = RietveldModel(tt, counts, phase, inst)
    for k in ("U", "V", "W", "X", "Y", "SH/L", "zero"):
        again.set(k, truth[k])
    again.set("SurfRoughB", 0.3)
    stages[1] = Stage("atoms", refine=("uiso", "SurfRoughB"), cycles=30)
    res = refine(again, stages)
    assert not res.fixed_uiso
    assert res.values["SurfRoughB"] == pytest.approx(0.6, abs=4 * res.esds["SurfRoughB"] + 0.02)


def test_bragg_brentano_positions_follow_gsas2(cifs, prm):
    """Shift ∝ cosθ and Transparency ∝ sin2θ move Bragg–Brentano peaks (GSAS-II GetReflPos);
    DisplaceX/Y do nothing there; the Kα2 peak follows its Kα1 position."""
    import math

    phase, inst = read_phase(cifs["NaCl"]), read_instrument(prm)
    tt = np.arange(20.0, 120.0, 0.02)
    model = RietveldModel(tt, np.ones_like(tt), phase, inst)
    base = model.peaks(model.values)["pos"]
    n = len(model.hkl)
    th = np.radians(model.peaks(model.values)["tth"][:n] / 2)
    c = 0.09 / (math.pi * inst.gonio_radius)
    for name, value, expect in (
        ("Shift", 50.0, -4 * c * 50.0 * np.cos(th)),
        ("Transparency", 0.5, -100 * c * 0.5 * np.sin(2 * th)),
        ("DisplaceX", 80.0, 0.0 * th),
    ):
        v = model.values.copy()
        v[model.layout.index[name]] = value
        moved = model.peaks(v)["pos"]
        assert np.allclose(moved[:n] - base[:n], expect, atol=1e-12), name
        # Kα2 = Kα1 + (360/π)(Δλ/λ) tan(2θ_obs / 2)
        rel = (inst.lam2 - inst.lam1) / inst.lam1
        assert np.allclose(
            moved[n:], moved[:n] + np.degrees(2 * rel * np.tan(np.radians(moved[:n]) / 2))
        )
