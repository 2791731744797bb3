"""Candidate phases for phase identification: CIF files, folders, or structure tables.

Sources are read as :mod:`xtal_cli.io.structures` reads them for ``simulate`` (CIF files,
folders, globs, CSV with a ``cif`` column such as the Materials Project set, pymatgen JSON).
Each becomes a Rietveld :class:`~xtal_cli.refine.phases.Phase`. A CIF that states its symmetry
keeps its own setting and displacement parameters; a structure in P1 (as database exports
are) is first symmetrized with spglib, so its cell refines with the right constraints and its
reflections merge into Laue families.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from xtal_cli.errors import XtalError

SYMPREC = 0.01  # Å, spglib tolerance for symmetrizing P1 structures (pymatgen's default)


@dataclass
class Candidate:
    """One phase that may be in a scan."""

    name: str  # unique within a candidate set: formula and space group, plus the id if needed
    formula: str  # reduced formula (pymatgen), what a phase set is compared by
    space_group: str  # Hermann–Mauguin symbol with its number, "P4_2/mnm (136)"
    source: str  # file or table row
    phase: object  # xtal_cli.refine.phases.Phase
    elements: frozenset = field(default_factory=frozenset)
    ident: str = ""  # database id or file stem


def _symmetrized_cif(structure) -> tuple[str, str]:
    """(CIF text in the conventional setting with symmetry operators, 'symbol (number)')."""
    from pymatgen.io.cif import CifWriter
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sga = SpacegroupAnalyzer(structure, symprec=SYMPREC)
    refined = sga.get_refined_structure()
    text = str(CifWriter(refined, symprec=SYMPREC))
    return text, f"{sga.get_space_group_symbol()} ({sga.get_space_group_number()})"


def _states_symmetry(text: str) -> bool:
    """Whether a CIF lists more than the identity operator (then its own setting is kept)."""
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parser = CifParser.from_str(text)
            block = next(iter(parser._cif.data.values()))
            return len(parser.get_symops(block)) > 1
        except Exception:  # pymatgen raises many types for malformed files
            return False


def candidate_from_item(item) -> Candidate:
    """One :class:`~xtal_cli.io.structures.StructureItem` as a candidate; a structure that
    cannot be read raises :class:`XtalError` naming its source."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from xtal_cli.io.structures import StructureItem, load_structure
    from xtal_cli.refine.phases import phase_from_cif

    own = None
    if item.kind == "cif_file":  # read once: for the structure and for its own setting
        try:
            own = Path(item.payload).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            why = exc.strerror
            raise XtalError(f"{item.source}: candidate CIF cannot be read ({why})") from None
        item = StructureItem(item.id, "cif_text", own, item.source, item.meta)
    try:
        structure = load_structure(item)
    except ValueError as exc:
        raise XtalError(f"{item.source}: candidate structure cannot be read ({exc})") from None
    text = own if own is not None and _states_symmetry(own) else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if text is None:
                text, sg = _symmetrized_cif(structure)
            else:
                sga = SpacegroupAnalyzer(structure, symprec=SYMPREC)
                sg = f"{sga.get_space_group_symbol()} ({sga.get_space_group_number()})"
    except Exception as exc:  # spglib can fail on overlapping atoms
        raise XtalError(f"{item.source}: cannot determine the symmetry ({exc})") from None
    formula = structure.composition.reduced_formula
    phase = phase_from_cif(text, Path(item.source.split(" row ")[0]), name=item.id)
    return Candidate(
        name=item.id,
        formula=formula,
        space_group=sg,
        source=item.source,
        phase=phase,
        elements=frozenset(str(e) for e in structure.composition.elements),
        ident=item.id,
    )


def _unique_names(cands: list[Candidate]) -> None:
    """Names people read: ``TiO2 I4_1/amd`` when that is unique, with the id otherwise."""
    base = [f"{c.formula} {c.space_group.split(' (')[0]}" for c in cands]
    counts = {b: base.count(b) for b in base}
    for c, b in zip(cands, base):
        c.name = b if counts[b] == 1 else f"{b} [{c.ident}]"
        c.phase.name = c.name


def load_candidates(sources: list[str], elements: list[str] | None = None) -> list[Candidate]:
    """All candidate phases of *sources*, keeping those made only of *elements* when given.

    An unreadable candidate is an error naming it (a silently missing phase would make every
    answer wrong); an empty set after filtering is an error too.
    """
    from xtal_cli.io.structures import collect_items

    if not sources:
        raise XtalError("no candidate phases given; pass --candidates CIF files, folders or a CSV")
    items = collect_items(list(sources))
    allowed = None
    if elements:
        from pymatgen.core.periodic_table import Element

        bad = [e for e in elements if not Element.is_valid_symbol(e)]
        if bad:
            raise XtalError(f"--elements: {', '.join(bad)} is not an element symbol")
        allowed = frozenset(elements)
    cands = []
    for item in items:
        if allowed is not None and item.kind == "cif_text":
            # cheap pre-filter on the formula line before parsing a database row
            formula = _formula_elements(item.payload)
            if formula is not None and not formula <= allowed:
                continue
        cand = candidate_from_item(item)
        if allowed is None or cand.elements <= allowed:
            cands.append(cand)
    if not cands:
        what = f" made only of {','.join(sorted(allowed))}" if allowed else ""
        raise XtalError(f"no candidate phases{what} in {', '.join(sources)}")
    _unique_names(cands)
    return cands


def _formula_elements(text: str) -> frozenset | None:
    """Elements of a CIF's ``_chemical_formula_sum`` line, or None when there is none."""
    import re

    for line in text.splitlines():
        if line.startswith("_chemical_formula_sum"):
            return frozenset(re.findall(r"([A-Z][a-z]?)\d*\.?\d*", line.split(None, 1)[1]))
    return None
