"""What train-templates needs of one structure: its composition keys, symmetry, a composition-free
structure fingerprint and the standard primitive cell that serves as the template.

The fingerprint describes the arrangement without the elements (space group, Wyckoff letters,
cell shape, stoichiometry type), so the structure side of the joint embedding
(:mod:`xtal_cli.templates.embedding`) sees what two compositions of one prototype share, and a
structure from outside the library (``predict-structure --structure``) can be placed next to them.
"""

from __future__ import annotations

import string
import warnings

import numpy as np

MAX_ELEMENTS = 8
WYCKOFF_LETTERS = string.ascii_lowercase + "A"
CRYSTAL_SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal",
                   "hexagonal", "cubic")  # fmt: skip


def fingerprint_names() -> list[str]:
    return (
        [f"space group {n}" for n in range(1, 231)]
        + [f"crystal system {c}" for c in CRYSTAL_SYSTEMS]
        + [f"Wyckoff {w}" for w in WYCKOFF_LETTERS]
        + [f"fraction {i + 1}" for i in range(MAX_ELEMENTS)]
        + ["log sites per cell", "log orbits", "b/a", "c/a", "cos alpha", "cos beta", "cos gamma"]
    )


def anonymous_formula(composition) -> str:
    """``ABC2`` for LiCoO2: the stoichiometry type (pymatgen's anonymized reduced formula)."""
    return composition.reduced_composition.anonymized_formula


def _crystal_system(number: int) -> str:
    edges = (2, 15, 74, 142, 167, 194, 230)
    return CRYSTAL_SYSTEMS[int(np.searchsorted(edges, number))]


def analyse_structure(structure, symprec: float = 0.1) -> dict:
    """Keys, symmetry, fingerprint and template cell of *structure*.

    Raises ValueError for what a template library cannot hold (partial occupancy, a symmetry
    search that fails)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    if not structure.is_ordered:
        raise ValueError("partially occupied sites: a template must be ordered")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        composition = structure.composition.reduced_composition
        if len(composition) > MAX_ELEMENTS:
            raise ValueError(f"{len(composition)} elements; templates hold at most {MAX_ELEMENTS}")
        try:
            sga = SpacegroupAnalyzer(structure, symprec=symprec)
            data = sga.get_symmetry_dataset()
            primitive = sga.get_primitive_standard_structure()
        except Exception as exc:  # spglib returns None or raises on broken cells
            raise ValueError(f"symmetry search failed ({type(exc).__name__})") from None
    if data is None:
        raise ValueError("symmetry search failed")
    number = int(data.number)
    return {
        "formula": composition.reduced_formula,
        "anonymous": anonymous_formula(composition),
        "spacegroup": number,
        "n_sites": len(primitive),
        "fingerprint": structure_fingerprint(primitive, number, list(data.wyckoffs),
                                             np.asarray(data.equivalent_atoms), composition),
        "template": primitive,
    }  # fmt: skip


def structure_fingerprint(primitive, number: int, wyckoffs, orbits, composition) -> np.ndarray:
    """The composition-free fingerprint (names: :func:`fingerprint_names`)."""
    sg = np.zeros(230)
    sg[number - 1] = 1
    system = np.zeros(len(CRYSTAL_SYSTEMS))
    system[CRYSTAL_SYSTEMS.index(_crystal_system(number))] = 1
    first = {int(o): w for o, w in zip(orbits, wyckoffs)}  # one letter per orbit
    letters = np.zeros(len(WYCKOFF_LETTERS))
    for w in first.values():
        if w in WYCKOFF_LETTERS:
            letters[WYCKOFF_LETTERS.index(w)] += 1
    letters /= max(1, len(first))
    fractions = np.zeros(MAX_ELEMENTS)
    amounts = sorted(composition.get_el_amt_dict().values())
    fractions[: len(amounts)] = np.array(amounts) / sum(amounts)
    lat = primitive.lattice
    a, b, c = lat.abc
    cosines = np.cos(np.radians(lat.angles))
    shape = [np.log(len(primitive)), np.log(len(first)), b / a, c / a, *cosines]
    return np.concatenate([sg, system, letters, fractions, shape]).astype(np.float32)


__all__ = ["analyse_structure", "anonymous_formula", "fingerprint_names", "structure_fingerprint"]
