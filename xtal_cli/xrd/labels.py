"""Symmetry labels of a structure with spglib: space group, crystal system, conventional cell.

Here, next to the simulation that writes them into every patterns file, so that both
:mod:`xtal_cli.xrd` and :mod:`xtal_cli.symmetry` (which reads them) import it without a cycle.
"""

from __future__ import annotations

import os

import numpy as np

# spglib's C library prints diagnostics ("get_bravais_exact_positions_and_lattice failed") on
# stderr for structures it cannot standardise; we report such items ourselves, so silence it.
# Must be set before spglib is first imported.
os.environ.setdefault("SPGLIB_WARNING", "OFF")

CRYSTAL_SYSTEMS = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)
# Last space-group number of each crystal system, in the order above.
_SYSTEM_BOUNDS = (2, 15, 74, 142, 167, 194, 230)


def crystal_system(space_group: int) -> str:
    """Crystal system of an International Tables space-group number (1-230)."""
    if not 1 <= int(space_group) <= 230:
        raise ValueError(f"space group {space_group} is not in 1-230")
    return CRYSTAL_SYSTEMS[int(np.searchsorted(_SYSTEM_BOUNDS, int(space_group)))]


def symmetry_labels(structure, symprec: float = 0.1, angle_tolerance: float = 5.0) -> dict:
    """spglib's view of *structure*: space group number and symbol, crystal system, the
    conventional (standardised) lattice parameters, reduced formula and number of sites.

    Disordered sites are typed by their full species composition (as pymatgen's
    SpacegroupAnalyzer does), so a mixed Dy/Sr site counts as one kind of atom.
    """
    return cell_labels(
        structure.lattice.matrix,
        structure.frac_coords,
        [site.species_string for site in structure],
        structure.composition.reduced_formula,
        symprec,
        angle_tolerance,
    )


def cell_labels(
    matrix, frac, species_strings, formula: str, symprec: float = 0.1, angle_tolerance: float = 5.0
) -> dict:
    """:func:`symmetry_labels` of a cell given as arrays (no pymatgen objects needed)."""
    import spglib

    from xtal_cli.io.fastcif import lattice_parameters

    kinds: dict[str, int] = {}
    types = [kinds.setdefault(s, len(kinds) + 1) for s in species_strings]
    cell = (np.asarray(matrix), np.asarray(frac), types)
    dataset = spglib.get_symmetry_dataset(cell, symprec=symprec, angle_tolerance=angle_tolerance)
    if dataset is None:
        raise ValueError(f"spglib found no space group at symprec={symprec}")
    number = int(dataset.number)
    lengths, angles = lattice_parameters(dataset.std_lattice)
    return {
        "formula": formula,
        "space_group": number,
        "space_group_symbol": str(dataset.international),
        "crystal_system": crystal_system(number),
        "n_sites": len(types),
        "lattice": np.array([*lengths, *angles]),
    }
