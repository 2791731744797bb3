"""Prototypes: groups of compositions whose known structures are the same arrangement.

Two structures are one prototype when pymatgen's StructureMatcher, with its default tolerances
(ltol 0.2, stol 0.3, angle_tol 5°, volumes scaled), maps one onto the other with the elements
anonymised (``group_structures(anonymous=True)``). StructureMatcher rather than a
local-environment distance because it is the same test the benchmark scores a predicted
structure by: "same prototype" then means exactly "this template, with the right elements put
in, would have been a correct answer", the label the pair classifier is meant to learn.

Matching every pair of 25k structures is out of reach, and unnecessary: structures that match
share the stoichiometry type, and (at spglib's 0.1 Å) the space group, the number of sites of
the primitive cell and the sizes of each element's site orbits, so the matcher only runs inside
those bins.
"""

from __future__ import annotations

import warnings
from collections import defaultdict

import numpy as np


def orbit_key(structure, symprec: float = 0.1) -> tuple:
    """The sizes of the site orbits of each element, elements anonymised: equal for two
    structures of one prototype in one space group, so it splits a bin without splitting a
    prototype (the 1,775 ABC2 structures in Fm-3m with 4 sites form dozens of sub-bins)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        orbits = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_dataset()
        orbits = np.asarray(orbits.equivalent_atoms)
    except Exception:  # no dataset: the bin is not split
        return ()
    species = [site.species_string for site in structure]
    sizes: dict[str, list[int]] = defaultdict(list)
    for orbit, count in zip(*np.unique(orbits, return_counts=True)):
        sizes[species[int(orbit)]].append(int(count))
    return tuple(sorted(tuple(sorted(v)) for v in sizes.values()))


def _group_bin(structures: list, symprec: float = 0.1) -> list[int]:
    """Prototype index (0, 1, ...) of each structure of one bin."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    if len(structures) == 1:
        return [0]
    matcher = StructureMatcher()
    sub: dict[tuple, list[int]] = defaultdict(list)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, s in enumerate(structures):
            sub[orbit_key(s, symprec)].append(i)
        label = [0] * len(structures)
        offset = 0
        for members in sub.values():
            group = [structures[i] for i in members]
            for i, s in zip(members, group):
                s.properties = {**(s.properties or {}), "_bin_index": i}
            found = matcher.group_structures(group, anonymous=True) if len(group) > 1 else [group]
            for g, matched in enumerate(found):
                for s in matched:
                    label[s.properties["_bin_index"]] = offset + g
            offset += len(found)
    return label


def _group_bins(bins: list[list], symprec: float = 0.1) -> list[list[int]]:
    return [_group_bin(b, symprec) for b in bins]


def prototype_labels(
    keys: list[tuple], structures: list, jobs: int = 1, symprec: float = 0.1, progress=None
) -> np.ndarray:
    """A prototype number per structure; *keys* are the bins (stoichiometry type, space group,
    primitive sites), *structures* the template cells. Bins are matched in parallel."""
    import joblib

    bins: dict[tuple, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        bins[key].append(i)
    ordered = sorted(bins.values(), key=len, reverse=True)  # big bins first: balanced workers
    batches: list[list[list[int]]] = [[] for _ in range(max(1, jobs) * 16)]
    for n, members in enumerate(ordered):
        batches[n % len(batches)].append(members)
    batches = [b for b in batches if b]
    parallel = joblib.Parallel(n_jobs=jobs, return_as="generator")
    results = []
    for batch, result in zip(batches, parallel(
        joblib.delayed(_group_bins)([[structures[i].copy() for i in b] for b in batch], symprec)
        for batch in batches
    )):  # fmt: skip
        results.append(result)
        if progress is not None:
            progress(sum(len(b) for b in batch))
    labels = np.full(len(keys), -1, dtype=np.int64)
    next_label = 0
    for batch, result in zip(batches, results):
        for members, local in zip(batch, result):
            for i, g in zip(members, local):
                labels[i] = next_label + g
            next_label += max(local) + 1
    # number prototypes in the order of their first member: stable across job counts
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(np.argsort(first))
    remap = dict(zip(np.unique(labels), order))
    return np.array([remap[v] for v in labels], dtype=np.int64)


__all__ = ["prototype_labels"]
