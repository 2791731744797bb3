"""Cell + zero fit of reference reflections to picked positions (synthetic: strained sticks)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from xtal_cli.refine.cell import CellFitSettings, CellModel, two_theta
from xtal_cli.xrd.sticks import compute_sticks

CU1 = 1.540562
RANGE = (15.0, 120.0)


def _picked(structure, zero):
    st = compute_sticks(structure, CU1, RANGE)
    return np.sort(st.two_theta[st.intensity >= 1.0]) + zero


def test_two_theta_matches_the_sticks():
    nacl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0] * 3, [0.5] * 3]
    )
    st = compute_sticks(nacl, CU1, RANGE)
    assert np.allclose(
        two_theta([5.64, 5.64, 5.64, 90, 90, 90], st.hkl, CU1), st.two_theta, atol=1e-6
    )


def test_cubic_cell_and_zero_are_recovered():
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]])
    strained = si.copy()
    strained.scale_lattice(si.volume * 1.012**3)  # +1.2 % in a
    model = CellModel(si, CU1, RANGE, 0.1)
    assert model.system == "cubic" and model.free == [0]
    picked = _picked(strained, 0.07)
    assert model.matched(picked, np.zeros(1), 0.0)[0] < 0.5  # the reference cell misses
    x, zero = model.refine(picked, 0.0)
    assert x[0] == pytest.approx(0.012, abs=2e-4) and zero == pytest.approx(0.07, abs=0.005)
    frac, missed = model.matched(picked, x, zero)
    assert frac == 1.0 and missed == []


def test_tetragonal_lengths_are_fitted_independently():
    lat = Lattice.tetragonal(4.594, 2.959)
    rutile = Structure.from_spacegroup("P4_2/mnm", lat, ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]])
    strained = Structure(Lattice.tetragonal(4.594 * 0.995, 2.959 * 1.008), rutile.species,
                         rutile.frac_coords)  # fmt: skip
    model = CellModel(rutile, CU1, RANGE, lambda x: 0.05 + 0.001 * np.asarray(x))
    assert model.system == "tetragonal" and model.free == [0, 2]
    x, zero = model.refine(_picked(strained, -0.05), 0.0)
    assert np.allclose(x, [-0.005, 0.008], atol=2e-4) and zero == pytest.approx(-0.05, abs=0.01)
    a, b, c = model.params(x)[:3]
    assert a == b and c == pytest.approx(2.959 * 1.008, rel=2e-4)


def test_settings_errors_name_the_parameter():
    with pytest.raises(ValueError, match="bound"):
        CellFitSettings(bound=0.0)
    with pytest.raises(ValueError, match="iterations"):
        CellFitSettings(iterations=0)
    with pytest.raises(ValueError, match="min_rel"):
        CellFitSettings(min_rel=120)
