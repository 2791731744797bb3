"""The fast CIF reader (gemmi) against pymatgen's CifParser, the reference it reproduces."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from xtal_cli.io.fastcif import Fallback, read_cif_arrays
from xtal_cli.io.h5 import read_patterns
from xtal_cli.io.structures import StructureItem
from xtal_cli.xrd.simulate import SimulationSettings, run_simulation, simulate_item

CELL = """data_test
_cell_length_a 4.5937
_cell_length_b 4.5937
_cell_length_c 2.9587
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
"""
# rutile TiO2, P4_2/mnm: the same operators written in the notations CIFs use
RUTILE_OPS = [
    "x, y, z", "-x, -y, z", "-y+1/2, x+1/2, z+1/2", "y+1/2, -x+1/2, z+1/2",
    "-x+1/2, y+1/2, -z+1/2", "x+1/2, -y+1/2, -z+1/2", "y, x, -z", "-y, -x, -z",
    "-x, -y, -z", "x, y, -z", "y+1/2, -x+1/2, -z+1/2", "-y+1/2, x+1/2, -z+1/2",
    "x+1/2, -y+1/2, z+1/2", "-x+1/2, y+1/2, z+1/2", "-y, -x, z", "y, x, z",
]  # fmt: skip
ATOM_LOOP = """loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
"""
ATOMS = (
    ATOM_LOOP
    + """Ti1 Ti 0 0 0 1
O1 O 0.3048(2) 0.3048(2) 0 1.0
"""
)


def _cif(ops, tag="_symmetry_equiv_pos_as_xyz", atoms=ATOMS, cell=CELL) -> str:
    lines = "\n".join(f"'{op}'" for op in ops)
    return f"{cell}loop_\n{tag}\n{lines}\n{atoms}"


def _reference(text: str):
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_str(text, fmt="cif")


def assert_same_as_pymatgen(text: str) -> None:
    cell = read_cif_arrays(text)
    ref = _reference(text)
    np.testing.assert_array_equal(cell.matrix, ref.lattice.matrix)
    np.testing.assert_allclose(cell.frac, ref.frac_coords, rtol=0, atol=1e-12)
    assert cell.species_strings() == [s.species_string for s in ref]
    assert cell.labels == [s.label for s in ref]
    assert cell.reduced_formula() == ref.composition.reduced_formula
    from pymatgen.core import Structure

    assert Structure.from_dict(json.loads(json.dumps(cell.as_dict()))) == ref


def _notations():
    plus = [
        ", ".join(("+" + t if t[0] not in "+-" else t) for t in op.split(", ")) for op in RUTILE_OPS
    ]
    frac_first = [  # "-y+1/2" written "1/2-y"
        re.sub(r"([+-]?)([xyz])\+1/2", lambda m: "1/2" + (m[1] or "+") + m[2], op)
        for op in RUTILE_OPS
    ]
    decimals = [op.replace("1/2", "0.5") for op in RUTILE_OPS]
    compact = [op.replace(" ", "").upper() for op in RUTILE_OPS]
    return {"xyz": RUTILE_OPS, "plus": plus, "frac_first": frac_first, "decimal": decimals,
            "compact": compact}  # fmt: skip


@pytest.mark.parametrize("notation", list(_notations()))
def test_symmetry_operators_in_several_notations(notation):
    text = _cif(_notations()[notation])
    assert_same_as_pymatgen(text)
    assert len(read_cif_arrays(text)) == 6  # 2 Ti + 4 O


def test_the_newer_symop_tag_is_read():
    assert_same_as_pymatgen(_cif(RUTILE_OPS, tag="_space_group_symop_operation_xyz"))


def test_partial_and_mixed_occupancy():
    """A Dy/Sr site given as two rows on one position, and a half-occupied O site."""
    atoms = (
        ATOM_LOOP
        + """Dy1 Dy 0 0 0 0.6
Sr1 Sr 0 0 0 0.4
Ti1 Ti 0.5 0.5 0.5 1
O1 O 0.5 0.5 0 0.5
"""
    )
    cubic = CELL.replace("4.5937", "3.905").replace("2.9587", "3.905")
    ops = ["x,y,z", "-x,-y,-z", "y,x,z", "z,x,y", "y,z,x", "-y,-x,-z", "-z,-x,-y", "-y,-z,-x"]
    text = _cif(ops, atoms=atoms, cell=cubic)
    assert_same_as_pymatgen(text)
    cell = read_cif_arrays(text)
    assert "Sr:0.4, Dy:0.6" in cell.species_strings()  # pymatgen's order: electronegativity


def test_non_standard_setting_and_hexagonal_operators():
    """P 1 21/n 1 (a non-standard setting of P21/c) and R-3m in hexagonal axes (x-y terms and
    centring translations)."""
    mono = CELL.replace("_cell_angle_beta 90", "_cell_angle_beta 101.3")
    p21n = ["x,y,z", "-x+1/2,y+1/2,-z+1/2", "-x,-y,-z", "x+1/2,-y+1/2,z+1/2"]
    atoms = ATOMS.replace("O1 O 0.3048(2) 0.3048(2) 0 1.0", "O1 O 0.21 0.37 0.12 1")
    assert_same_as_pymatgen(_cif(p21n, atoms=atoms, cell=mono))
    hexa = (
        CELL.replace("_cell_length_b 4.5937", "_cell_length_b 4.5937")
        .replace("2.9587", "14.2")
        .replace("_cell_angle_gamma 90", "_cell_angle_gamma 120")
    )
    point_ops = (
        "x,y,z -y,x-y,z -x+y,-x,z y,x,-z x-y,-y,-z -x,-x+y,-z "
        "-x,-y,-z y,-x+y,-z x-y,x,-z -y,-x,z -x+y,y,z x,x-y,z"
    ).split()
    r3m = []
    for t in ("", "+2/3", "+1/3"):
        u = {"": "", "+2/3": "+1/3", "+1/3": "+2/3"}[t]
        for op in point_ops:
            a, b, c = op.split(",")
            r3m.append(f"{a}{t},{b}{u},{c}{u}")
    atoms = ATOMS.replace("O1 O 0.3048(2) 0.3048(2) 0 1.0", "O1 O 0 0 0.2571 1")
    assert_same_as_pymatgen(_cif(r3m, atoms=atoms, cell=hexa))


def test_oxidation_states_give_pymatgen_species():
    atoms = ATOMS.replace("Ti1 Ti", "Ti1 Ti4+").replace("O1 O ", "O1 O2- ")
    text = _cif(RUTILE_OPS, atoms=atoms) + (
        "loop_\n_atom_type_symbol\n_atom_type_oxidation_number\nTi4+ 4\nO2- -2\n"
    )
    assert_same_as_pymatgen(text)
    assert set(read_cif_arrays(text).species_strings()) == {"Ti4+", "O2-"}


def test_what_the_fast_path_leaves_to_pymatgen_says_why():
    no_ops = CELL + "_symmetry_space_group_name_H-M 'P 42/m n m'\n" + ATOMS
    with pytest.raises(Fallback, match="no explicit symmetry operators"):
        read_cif_arrays(no_ops)
    with pytest.raises(Fallback, match="data blocks"):
        read_cif_arrays(_cif(RUTILE_OPS) + "\n" + _cif(RUTILE_OPS).replace("data_test", "data_2"))
    with pytest.raises(Fallback, match="gemmi cannot read"):
        read_cif_arrays("data_x\nloop_\n_a\n'unterminated")
    with pytest.raises(Fallback, match="not a number"):
        read_cif_arrays(_cif(RUTILE_OPS).replace("_cell_length_a 4.5937", "_cell_length_a ?"))


def test_fast_engine_equals_pymatgen_engine_on_symmetric_cifs():
    """Sticks, labels and structure JSON through both readers (pymatgen-written symmetric CIFs)."""
    import pandas as pd
    from pymatgen.io.cif import CifWriter

    from xtal_cli.io.structures import builtin_path

    settings = {e: SimulationSettings(1.54056, "CuKa1", engine=e) for e in ("fast", "pymatgen")}
    for k, text in enumerate(pd.read_csv(builtin_path("mp-sample"))["cif"].head(40)):
        sym = str(CifWriter(_reference(text), symprec=0.01))
        item = StructureItem(f"s{k}", "cif_text", sym, "test")
        fast, ref = (simulate_item(item, k, settings[e]) for e in ("fast", "pymatgen"))
        assert not fast["failed"] and not fast["fallback"]
        assert {n: v for n, v in fast["labels"].items() if n != "lattice"} == {
            n: v for n, v in ref["labels"].items() if n != "lattice"
        }
        np.testing.assert_allclose(fast["labels"]["lattice"], ref["labels"]["lattice"], atol=1e-9)
        np.testing.assert_array_equal(fast["hkl"], ref["hkl"])
        np.testing.assert_allclose(fast["two_theta"], ref["two_theta"], atol=1e-9)
        np.testing.assert_allclose(fast["intensity"], ref["intensity"], atol=1e-6)


def test_a_broken_cif_is_one_failure_and_the_rest_is_written(tmp_path):
    good = _cif(RUTILE_OPS)
    items = [
        StructureItem("a", "cif_text", good, "t"),
        StructureItem("broken", "cif_text", good.replace("_cell_length_c 2.9587", "oops'"), "t"),
        StructureItem("b", "cif_text", good, "t"),
    ]
    out = tmp_path / "p.h5"
    result = run_simulation(items, SimulationSettings(1.54056, "CuKa1"), out, chunk_size=2)
    assert len(result) == 2 and [f[0] for f in result.failures] == ["broken"]
    ps = read_patterns(out)
    assert ps.ids == ["a", "b"] and ps.failures[0][0] == "broken"
