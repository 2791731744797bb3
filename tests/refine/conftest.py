"""Small phases and instruments for the Rietveld engine tests (written into tmp folders)."""

from __future__ import annotations

import pytest

PRM = """            123456789012345678901234567890123456789012345678901234567890
INS   BANK      1
INS   HTYPE   PXCR
INS  1 ICONS  1.540500  1.544300       0.0         0       0.7    0       0.5
INS  1I HEAD  DUMMY INCIDENT SPECTRUM FOR X-RAY DIFFRACTOMETER
INS  1I ITYP    0    0.0000  180.0000         1
INS  1PRCF1     3    8      0.01
INS  1PRCF11   2.000000E+00  -2.000000E+00   5.000000E+00   0.100000E+00
INS  1PRCF12   0.000000E+00   0.000000E+00   0.100000E-01   0.100000E-01
"""


def write_cif(structure, path):
    from pymatgen.io.cif import CifWriter

    CifWriter(structure, symprec=0.01).write_file(str(path))
    return path


@pytest.fixture()
def prm(tmp_path):
    path = tmp_path / "INST_XRY.PRM"
    path.write_text(PRM)
    return path


@pytest.fixture(scope="session")
def cifs(tmp_path_factory, small_structures):
    from pymatgen.core import Lattice, Structure

    folder = tmp_path_factory.mktemp("cifs")
    out = {name: write_cif(s, folder / f"{name}.cif") for name, s in small_structures.items()}
    mono = Structure.from_spacegroup(
        "P2_1/c", Lattice.monoclinic(5.15, 5.21, 5.31, 99.2), ["Zr", "O", "O"],
        [[0.276, 0.040, 0.208], [0.070, 0.332, 0.345], [0.450, 0.757, 0.479]],
    )  # fmt: skip
    out["ZrO2"] = write_cif(mono, folder / "ZrO2.cif")
    # a perovskite with Dy/Sr sharing the A site, in DSMO's Pbnm setting
    mixed = folder / "mixed.cif"
    mixed.write_text(
        """data_mixed
_cell_length_a 5.402
_cell_length_b 5.415
_cell_length_c 7.628
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_space_group_name_H-M_alt 'P b n m'
loop_
_space_group_symop_operation_xyz
'x, y, z'
'-x, -y, -z'
'x+1/2, -y+1/2, -z'
'-x+1/2, y+1/2, z'
'-x, -y, z+1/2'
'x, y, -z+1/2'
'-x+1/2, y+1/2, -z+1/2'
'x+1/2, -y+1/2, z+1/2'
loop_
_atom_site_label
_atom_site_occupancy
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_U_iso_or_equiv
_atom_site_type_symbol
Mn1 1.0 0.0 0.5 0.0 0.004 Mn
Dy1 0.5 -0.0027(7) 0.02575(16) 0.25 0.008 Dy
Sr1 0.5 -0.0027(7) 0.02575(16) 0.25 0.008 Sr
O1 1.0 0.543(6) -0.013(2) 0.25 0.01 O
O2 1.0 0.2677(18) 0.2774(17) 0.0351(9) 0.01 O
"""
    )
    out["mixed"] = mixed
    return out
