"""Superstructure lines of a cation order: their own broadening (the engine's ``fault``) and
their weakening by antisite disorder (``order``)."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.refine.engine import RietveldModel
from xtal_cli.refine.instrument import read_instrument
from xtal_cli.refine.phases import disorder_reflections, ordering_reflections, read_phase


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


def _derivative_error(model, name: str, h: float) -> float:
    """Largest deviation of the analytic derivative of the pattern in *name* from a central
    difference with step *h*, relative to the largest derivative."""
    _, _, J = model.calc(free=[name])
    i = model.layout.index[name]
    vp, vm = model.values.copy(), model.values.copy()
    vp[i] += h
    vm[i] -= h
    num = (model.calc(vp)[1] - model.calc(vm)[1]) / (2 * h)
    return float(np.max(np.abs(J[:, 0] - num)) / np.max(np.abs(num)))


def _lookup(hkl, flags):
    """hkl → flag, where a reflection may be listed under a monoclinic equivalent."""
    table = dict(zip(map(tuple, hkl.tolist()), flags))

    def flag(h):
        for cand in (h, tuple(-c for c in h), (h[0], -h[1], h[2]), (-h[0], h[1], -h[2])):
            if cand in table:
                return table[cand]
        raise KeyError(h)

    return flag


def test_honeycomb_lines_are_ordering_lines_layer_lines_are_not(li2mno3, cifs):
    ph = li2mno3
    hkl, _ = ph.reflections(1.2)
    ordered = _lookup(hkl, ordering_reflections(ph, hkl))

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
    # a step well above the window-edge effect (peaks are drawn within windows set by the widths)
    assert _derivative_error(model, "fault", 0.5) < 1e-2


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


def test_cation_order_lines_hold_layer_and_honeycomb_lines(li2mno3, cifs):
    """All cations averaged, Li2MnO3 is a rock salt: the layer lines (001; 20-1 and 130, the
    layered R-3m's 101) join the honeycomb's 020 and 110 among the lines of the cation order;
    the rock salt's own (002, 200: its 111; 131, 20-2: its 200) are not."""
    ph = li2mno3
    hkl, _ = ph.reflections(1.2)
    order_line = _lookup(hkl, disorder_reflections(ph, hkl))

    for h in [(0, 0, 1), (2, 0, -1), (1, 3, 0), (0, 2, 0), (1, 1, 0)]:
        assert order_line(h), h
    for h in [(0, 0, 2), (2, 0, 0), (1, 3, 1), (2, 0, -2)]:
        assert not order_line(h), h
    # the honeycomb's lines are a subset of the cation order's
    assert not np.any(ordering_reflections(ph, hkl) & ~disorder_reflections(ph, hkl))
    nacl = read_phase(cifs["NaCl"])
    assert not disorder_reflections(nacl, nacl.reflections(1.2)[0]).any()


def test_order_weakens_only_cation_order_lines_with_exact_derivative(li2mno3, prm):
    tt = np.arange(15.0, 70.0, 0.02)
    model = RietveldModel(tt, np.ones_like(tt), [li2mno3], read_instrument(prm))
    lines = model.blocks[0].disordered.astype(bool)
    assert lines.any() and not lines.all()
    assert model.get("order") == 1.0  # fully ordered by default
    n = len(lines)
    before = model.peaks(model.values)["area"][:n]
    model.set("order", 0.25)  # S = 0.5
    after = model.peaks(model.values)["area"][:n]
    assert np.allclose(after[lines], 0.25 * before[lines]) and np.allclose(
        after[~lines], before[~lines]
    )
    model.switch_on(["order"])
    assert model.free == ["order"]
    assert _derivative_error(model, "order", 0.01) < 1e-3
    i, v = model.layout.index["order"], model.values.copy()
    v[i] = 1.7
    model._bound(v)
    assert v[i] == 1.0
    v[i] = -0.2
    model._bound(v)
    assert 0 < v[i] < 0.05
