"""Several phases in one Rietveld model: names, Jacobian, texture, weight fractions."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.refine.engine import RietveldModel, Stage, refine, split_name
from xtal_cli.refine.instrument import read_instrument
from xtal_cli.refine.phases import read_phase


@pytest.fixture()
def two(cifs, prm):
    phases = [read_phase(cifs["NaCl"]), read_phase(cifs["ZnO"])]
    tt = np.arange(25.0, 90.0, 0.02)
    model = RietveldModel(tt, np.ones_like(tt), phases, read_instrument(prm))
    model.set_texture_axis(1, (0, 0, 1))
    return model


def test_first_phase_keeps_plain_names_others_are_prefixed(two):
    names = two.layout.names
    assert {"scale", "A0", "Uiso:0", "size", "mustrain", "po"} <= set(names)
    assert {"1/scale", "1/A0", "1/A1", "1/Uiso:1", "1/size", "1/po", "1/Uover"} <= set(names)
    assert split_name("1/A0") == (1, "A0") and split_name("SH/L") == (0, "SH/L")
    two.switch_on(["scale", "size"])
    assert set(two.free) == {"scale", "1/scale", "size", "1/size"}


def test_jacobian_matches_finite_differences(two):
    two.set("1/po", 0.8)
    two.set("size", 0.2)
    two.set("1/mustrain", 1500.0)
    two.set("1/Uover", 0.004)
    free = ["scale", "1/scale", "A0", "1/A1", "size", "1/mustrain", "1/po", "1/Uover", "zero", "W"]
    _, ypk, J = two.calc(free=free)
    v0 = two.values.copy()
    for p, name in enumerate(free):
        i = two.layout.index[name]
        h = 1e-5 * max(abs(v0[i]), 0.1)
        vp, vm = v0.copy(), v0.copy()
        vp[i] += h
        vm[i] -= h
        num = (two.calc(vp)[1] - two.calc(vm)[1]) / (2 * h)
        scale = np.max(np.abs(num)) + 1e-12
        # 1 %: position derivatives leave out the far Lorentzian tails (engine docstring); a
        # wrong or missing term is off by its whole size
        assert np.max(np.abs(J[:, p] - num)) / scale < 1e-2, name


def test_texture_ratio_and_fractions_are_recovered(two):
    from xtal_cli.refine.fractions import weight_fractions

    two.set("1/scale", 0.5)
    two.set("1/po", 0.7)  # platy ZnO along c: 00l enhanced
    _, ypk = two.calc()
    two.set("scale", 3000 / ypk.max())
    two.set("1/scale", 0.5 * 3000 / ypk.max())
    truth_w, _ = weight_fractions(two)
    ybg, ypk = two.calc()
    counts = np.random.default_rng(3).poisson(ypk + 80.0).astype(float)
    model = RietveldModel(two.tt, counts, two.phases, two.inst)
    model.set_texture_axis(1, (0, 0, 1))
    res = refine(
        model,
        [Stage("s", ("scale", "background"), background=("chebyschev", 2)), Stage("po", ("po",))],
    )
    w, esd = weight_fractions(model)
    assert abs(model.get("1/po") - 0.7) < 4 * res.esds["1/po"] + 1e-3
    assert np.all(np.abs(w - truth_w) < 4 * esd + 1e-3)
    assert res.gof < 1.1
