"""Symmetry constraints of the phase model: lattice, site coordinates, mixed sites, absences."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.errors import XtalError
from xtal_cli.refine.phases import A_to_cell, cell_to_A, read_phase


def test_cubic_lattice_has_one_parameter_and_fcc_absences(cifs):
    ph = read_phase(cifs["NaCl"])
    assert ph.crystal_system == "cubic"
    assert ph.A_basis.shape[1] == 1
    np.testing.assert_allclose(ph.A_basis[:3, 0], 1.0)
    hkl, mult = ph.reflections(1.0)
    # F-centring: h, k, l all even or all odd; 111 has 8 members, 200 six
    assert all(len({v % 2 for v in h}) == 1 for h in hkl)
    families = {tuple(sorted(abs(v) for v in h)): m for h, m in zip(hkl, mult)}
    assert families[(1, 1, 1)] == 8 and families[(0, 0, 2)] == 6 and families[(0, 2, 2)] == 12
    assert all(site.basis.shape[1] == 0 for site in ph.sites)  # 4a and 4b are fixed


def test_hexagonal_lattice_and_free_z(cifs):
    ph = read_phase(cifs["ZnO"])
    assert ph.crystal_system == "hexagonal"
    assert ph.A_basis.shape[1] == 2  # a and c; A0 = A1 = A3 tied together
    a_dir = ph.A_basis[:, np.argmax(np.abs(ph.A_basis[0]))]
    assert a_dir[0] == pytest.approx(a_dir[1]) and a_dir[0] == pytest.approx(a_dir[3])
    for site in ph.sites:  # 2b (1/3, 2/3, z): only z moves
        assert site.basis.shape[1] == 1
        np.testing.assert_allclose(np.abs(site.basis[:, 0]), [0, 0, 1], atol=1e-12)
    # 00l with l odd is absent (6_3 screw)
    hkl, _ = ph.reflections(1.0)
    assert not any(h[0] == 0 and h[1] == 0 and h[2] % 2 for h in hkl)


def test_monoclinic_lattice_has_four_parameters_and_general_sites(cifs):
    ph = read_phase(cifs["ZrO2"])
    assert ph.crystal_system == "monoclinic"
    assert ph.A_basis.shape[1] == 4
    assert all(site.basis.shape[1] == 3 and site.multiplicity == 4 for site in ph.sites)
    a, b, c, al, be, ga = A_to_cell(cell_to_A(ph.cell))
    assert (a, b, c, be) == pytest.approx((5.15, 5.21, 5.31, 99.2), abs=1e-6)


def test_mixed_site_is_one_site_with_both_species(cifs):
    ph = read_phase(cifs["mixed"])
    labels = [s.label for s in ph.sites]
    assert "Dy1/Sr1" in labels and len(ph.sites) == 4
    site = ph.sites[labels.index("Dy1/Sr1")]
    assert site.species == [("Dy", 0.5), ("Sr", 0.5)]
    assert site.basis.shape[1] == 2 and site.multiplicity == 4  # 4c (x, y, 1/4)
    assert ph.A_basis.shape[1] == 3  # orthorhombic, Pbnm setting kept
    assert ph.cell[0] == pytest.approx(5.402)


def test_broken_cif_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\n_cell_length_a 5\nloop_\n_atom_site_label\nA1\n")
    with pytest.raises(XtalError, match="bad.cif"):
        read_phase(bad)
    with pytest.raises(XtalError, match="no such CIF"):
        read_phase(tmp_path / "missing.cif")


CRYSTAL_SYSTEM_CASES = {
    # name: (space group, lattice, species, coords, expected system)
    "cubic Fm-3m": ("Fm-3m", ("cubic", 5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]], "cubic"),
    "hexagonal P6_3mc": (
        "P6_3mc",
        ("hexagonal", 3.25, 5.21),
        ["Zn", "O"],
        [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]],
        "hexagonal",
    ),
    "trigonal R-3c (hexagonal axes, R-centred)": (
        "R-3c",
        ("hexagonal", 4.77, 15.66),
        ["Mn", "C", "O"],
        [[0, 0, 0], [0, 0, 0.25], [0.27, 0, 0.25]],
        "trigonal",
    ),
    "tetragonal P4_2/mnm": (
        "P4_2/mnm",
        ("tetragonal", 4.59, 2.96),
        ["Ti", "O"],
        [[0, 0, 0], [0.305, 0.305, 0]],
        "tetragonal",
    ),
    "orthorhombic Pmmn": (
        "Pmmn",
        ("orthorhombic", 11.51, 3.56, 4.37),
        ["V", "O"],
        [[0.101, 0.25, 0.891], [0.104, 0.25, 0.531]],
        "orthorhombic",
    ),
    "monoclinic C2/c (C-centred)": (
        "C2/c",
        ("monoclinic", 8.36, 4.97, 6.19, 114.8),
        ["Li", "C", "O", "O"],
        [[0.197, 0.447, 0.836], [0, 0.066, 0.25], [0, 0.323, 0.25], [0.146, 0.936, 0.313]],
        "monoclinic",
    ),
    "triclinic P-1": (
        "P-1",
        ("from_parameters", 5.0, 6.0, 7.0, 80.0, 95.0, 100.0),
        ["Si", "O"],
        [[0.1, 0.2, 0.3], [0.3, 0.1, 0.2]],
        "triclinic",
    ),
}


@pytest.mark.parametrize("case", sorted(CRYSTAL_SYSTEM_CASES))
def test_crystal_system_from_point_group_not_operator_count(case, tmp_path):
    """Centring copies of a rotation (C2/c, R-3c) must not count as extra axes."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    group, (kind, *params), species, coords, expected = CRYSTAL_SYSTEM_CASES[case]
    lattice = getattr(Lattice, kind)(*params)
    structure = Structure.from_spacegroup(group, lattice, species, coords)
    path = tmp_path / "phase.cif"
    CifWriter(structure, symprec=0.01).write_file(str(path))
    ph = read_phase(path)
    assert ph.crystal_system == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Li2CO3.cif", "monoclinic"), ("MnCO3.cif", "trigonal"), ("NiO.cif", "cubic")],
)
def test_crystal_system_of_reference_cifs(name, expected):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "data" / "phases" / name
    if not path.is_file():
        pytest.skip(f"{name} not in this checkout")
    assert read_phase(path).crystal_system == expected
