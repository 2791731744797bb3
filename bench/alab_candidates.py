"""Candidate reference phases and labelled scans for benchmarking ``identify-phases`` on the A-Lab
precursor mixtures (shared ``measured/alab-mixtures``).

The candidates for a precursor formula are every Materials Project polymorph of it in the shared
``mp_structures.csv.gz`` (DFT-relaxed cells, so their lines sit ~1 % low in 2θ) plus the CIFs
written from published diffraction studies in ``examples/data/phases/`` for the commercial ambient
polymorphs that MP set lacks (NiO, La(OH)3, bixbyite In2O3, rutile, Li2CO3, α-Bi2O3, MnCO3).
Which polymorph a scan holds is left to the method under test: nothing here says.
"""

from __future__ import annotations

import csv
import gzip
import shutil
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = REPO / "examples" / "data" / "phases"
ALAB = Path("measured") / "alab-mixtures"


def alab_scans(shared: Path) -> list[dict]:
    """The labelled precursor-mixture scans: one dict per labels.csv row of kind
    ``precursor_mixture`` with ``scan`` (Path), ``phases`` (formulas as labelled, e.g.
    ``La(OH)3``), ``weight_fractions`` (floats, same order) and ``duration`` (``2min``/``8min``)."""
    labels = Path(shared) / ALAB / "labels.csv"
    rows = []
    with open(labels, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["kind"] != "precursor_mixture":
                continue
            phases = row["phases"].split(";")
            fractions = [float(w) for w in row["weight_fractions"].split(";")]
            if len(phases) != len(fractions):
                raise ValueError(f"{labels}: {row['file']} has {len(phases)} phases but "
                                 f"{len(fractions)} weight fractions")  # fmt: skip
            rows.append(
                {
                    "scan": labels.parent / row["file"],
                    "phases": phases,
                    "weight_fractions": fractions,
                    "duration": row["scan"],
                }
            )
    return rows


def precursor_formulas(shared: Path) -> list[str]:
    """The distinct labelled precursor formulas, in first-seen order."""
    seen: dict[str, None] = {}
    for row in alab_scans(shared):
        seen.update(dict.fromkeys(row["phases"]))
    return list(seen)


def _safe(formula: str) -> str:
    """A file-name-safe form of a formula: La(OH)3 -> LaOH3."""
    return "".join(ch for ch in formula if ch.isalnum())


def alab_candidates(shared: Path, out_dir: Path) -> list[Path]:
    """Write the candidate CIFs into *out_dir* and return their paths: one symmetrized CIF per MP
    polymorph of each labelled precursor formula (``<formula>_<material_id>.cif``, refined cell
    from spglib at symprec 0.01) and a copy of every published-data CIF of examples/data/phases."""
    from pymatgen.core import Composition, Structure
    from pymatgen.io.cif import CifWriter
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    shared = Path(shared)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = {Composition(f).reduced_formula: f for f in precursor_formulas(shared)}
    written: list[Path] = []
    csv.field_size_limit(1 << 30)
    with gzip.open(shared / "mp_structures.csv.gz", "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_str(row["cif"], fmt="cif")
            formula = wanted.get(structure.composition.reduced_formula)
            if formula is None:
                continue
            refined = SpacegroupAnalyzer(structure, symprec=0.01).get_refined_structure()
            path = out_dir / f"{_safe(formula)}_{row['material_id']}.cif"
            CifWriter(refined, symprec=0.01).write_file(path)
            written.append(path)
    for cif in sorted(PHASES.glob("*.cif")):
        written.append(Path(shutil.copy(cif, out_dir / cif.name)))
    return written
