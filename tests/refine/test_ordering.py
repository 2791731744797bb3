"""Superstructure lines of a cation order and their own broadening (the engine's ``fault``)."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.refine.engine import RietveldModel
from xtal_cli.refine.instrument import read_instrument
from xtal_cli.refine.phases import ordering_reflections, read_phase


@pytest.fixture(scope="module")
def li2mno3(tmp_path_factory):
    """Li2MnO3, C2/m (Strobel & Lambert-Andron, J. Solid State Chem. 75, 90, 1988)."""
    from pymatgen.core import Lattice, Structure

    s = Structure.from_spacegroup(
        "C2/m", Lattice.monoclinic(4.937, 8.532, 5.030, 109.46),
        ["Li", "Li", "Li", "Mn", "O", "O"],
        [[0, 0.5, 0], [0, 0, 0.5], [0, 0.6606, 0.5], [0, 0.16708, 0],
         [0.2189, 0, 0.2273], [0.2540, 0.3212, 0.2233]],
    )  # fmt: skip
    path = tmp_path_factory.mktemp("ordering") / "Li2MnO3.cif"
    s.to(filename=str(path), symprec=0.01)
    return read_phase(path)


def test_honeycomb_lines_are_ordering_lines_layer_lines_are_not(li2mno3, cifs):
    ph = li2mno3
    hkl, _ = ph.reflections(1.2)
    mask = dict(zip(map(tuple, hkl.tolist()), ordering_reflections(ph, hkl)))

    # the same reflection may be listed under an equivalent index: look the equivalents up
    def ordered(h):
        for cand in (h, tuple(-c for c in h), (h[0], -h[1], h[2]), (-h[0], h[1], -h[2])):
            if cand in mask:
                return mask[cand]
        raise KeyError(h)

    # 001 (the layering, 18.7° at Cu Kα) and 130/20-1 (rock-salt subcell) stay sharp lines;
    # 020 and 110 (the Li/Mn honeycomb in the metal layer, 20.8° and 21.7°) are superstructure
    assert not ordered((0, 0, 1)) and not ordered((1, 3, 0)) and not ordered((2, 0, -1))
    assert ordered((0, 2, 0)) and ordered((1, 1, 0))
    nacl = read_phase(cifs["NaCl"])
    h2, _ = nacl.reflections(1.2)
    assert not ordering_reflections(nacl, h2).any()  # one cation: no order


def test_fault_broadens_only_ordering_lines_with_exact_derivative(li2mno3, prm):
    tt = np.arange(15.0, 70.0, 0.02)
    model = RietveldModel(tt, np.ones_like(tt), [li2mno3], read_instrument(prm))
    ordered = model.blocks[0].ordered.astype(bool)
    assert ordered.any() and not ordered.all()
    before = model.peaks(model.values)
    model.set("fault", 20.0)  # 50 nm ordered domains
    after = model.peaks(model.values)
    n = len(model.blocks[0].hkl)
    wider = after["gam"][:n] - before["gam"][:n]
    assert np.all(wider[ordered] > 0) and np.allclose(wider[~ordered], 0)
    model.switch_on(["fault"])
    assert model.free == ["fault"]
    _, _, J = model.calc(free=["fault"])
    v0 = model.values.copy()
    # a step well above the window-edge effect (peaks are drawn within windows set by the widths)
    i, h = model.layout.index["fault"], 0.5
    vp, vm = v0.copy(), v0.copy()
    vp[i] += h
    vm[i] -= h
    num = (model.calc(vp)[1] - model.calc(vm)[1]) / (2 * h)
    assert np.max(np.abs(J[:, 0] - num)) / np.max(np.abs(num)) < 1e-2


def test_a_phase_scale_cannot_go_negative(li2mno3, cifs, prm):
    tt = np.arange(15.0, 70.0, 0.02)
    phases = [read_phase(cifs["NaCl"]), li2mno3]
    model = RietveldModel(tt, np.ones_like(tt), phases, read_instrument(prm))
    v = model.values.copy()
    v[model.layout.index["1/scale"]] = -0.5
    v[model.layout.index["1/fault"]] = -3.0
    model._bound(v)
    assert v[model.layout.index["1/scale"]] == 0.0 and v[model.layout.index["1/fault"]] == 0.0
    model.switch_on(["fault"])
    assert model.free == ["1/fault"]  # NaCl has no superstructure lines to broaden
