"""Composition and structure descriptors of one structure, from matminer's featurizers.

Families (each column's family is stored beside its name):

- ``element_properties``: Magpie element-property statistics of the composition (Ward et al.
  2016: mean, spread, range ... of electronegativity, radius, row, valence electrons ...);
- ``stoichiometry``: p-norms of the atomic fractions (0-norm = number of elements);
- ``valence_orbitals``: mean s/p/d/f valence electrons and their fractions;
- ``ionic_character``: whether a charge-neutral assignment of common oxidation states exists,
  and Pauling ionic character (max, mean);
- ``density``: density, volume per atom, packing fraction;
- ``symmetry``: space-group number, crystal system, centrosymmetry, number of operations;
- ``local_environment``: CrystalNN order parameters per site (Zimmermann & Jain 2020: the weight
  of each coordination number and the likeness to each ideal polyhedron, e.g. ``octahedral
  CN_6``), as matminer's SiteStatsFingerprint statistics over all sites (mean, std_dev, minimum,
  maximum) plus the mean over cation sites (every element but the most electronegative one),
  which is what "octahedrally coordinated cations" means to a chemist.

CrystalNN costs about 0.1-0.5 s per symmetry-distinct site; equivalent sites (spglib) have the
same fingerprint, so it is computed once per orbit and the statistics are taken over all sites
(the same numbers as SiteStatsFingerprint, several times faster). The ``fast`` preset leaves the
local environment out (about 15 ms per structure).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from xtal_cli.errors import ParameterError
from xtal_cli.io.structures import exception_reason

PRESETS: dict[str, tuple[str, ...]] = {
    "full": (
        "element_properties",
        "stoichiometry",
        "valence_orbitals",
        "ionic_character",
        "density",
        "symmetry",
        "local_environment",
    ),
    "fast": (
        "element_properties",
        "stoichiometry",
        "valence_orbitals",
        "ionic_character",
        "density",
        "symmetry",
    ),
    # what a formula alone gives (train-templates / predict-structure query by composition)
    "composition": ("element_properties", "stoichiometry", "valence_orbitals", "ionic_character"),
}
SITE_STATS = ("mean", "std_dev", "minimum", "maximum")
SYMMETRY_FEATURES = ("spacegroup_num", "crystal_system_int", "is_centrosymmetric", "n_symmetry_ops")


class DescriptorError(ValueError):
    """One family failed for one structure: *stage* names the family."""

    def __init__(self, stage: str, reason: str):
        self.stage, self.reason = stage, reason
        super().__init__(f"{stage}: {reason}")

    def __reduce__(self):
        return (type(self), (self.stage, self.reason))


@dataclass(frozen=True)
class DescriptorSettings:
    """Which descriptors :class:`Describer` computes; checked on construction."""

    preset: str = "full"
    symprec: float = 0.01  # Å, spglib tolerance of the site orbits (matminer's for the symmetry)

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ParameterError("preset", self.preset, f"use one of {', '.join(PRESETS)}")
        if not (0 < self.symprec < 1):
            raise ParameterError("symprec", self.symprec, "must be between 0 and 1 Å")

    @property
    def families(self) -> tuple[str, ...]:
        return PRESETS[self.preset]


class Describer:
    """Descriptors of pymatgen Structures: ``names``, ``families`` and ``describe(structure)``.

    Featurizers are built once per process (element tables are read from matminer's data files).
    """

    def __init__(self, settings: DescriptorSettings | None = None):
        from matminer.featurizers.composition import (
            ElementProperty,
            IonProperty,
            Stoichiometry,
            ValenceOrbital,
        )

        self.settings = settings or DescriptorSettings()
        self._composition = {
            "element_properties": ElementProperty.from_preset("magpie"),
            "stoichiometry": Stoichiometry(),
            "valence_orbitals": ValenceOrbital(),
            "ionic_character": IonProperty(fast=True),
        }
        if set(self.settings.families) - set(self._composition):
            # matminer's structure and site modules take seconds to import: only when needed
            from matminer.featurizers.site import CrystalNNFingerprint
            from matminer.featurizers.structure import DensityFeatures, GlobalSymmetryFeatures

            self._density = DensityFeatures()
            self._symmetry = GlobalSymmetryFeatures(list(SYMMETRY_FEATURES))
            self._site = CrystalNNFingerprint.from_preset("ops")
        self.names: list[str] = []
        self.families: list[str] = []
        for family in self.settings.families:
            labels = self._labels(family)
            self.names.extend(labels)
            self.families.extend([family] * len(labels))

    def _labels(self, family: str) -> list[str]:
        if family in self._composition:
            labels = self._composition[family].feature_labels()
            if family == "stoichiometry":  # "0-norm" alone says nothing to a reader
                return [f"stoichiometry {label}" for label in labels]
            return list(labels)
        if family == "density":
            return list(self._density.feature_labels())
        if family == "symmetry":
            return list(SYMMETRY_FEATURES)
        site = self._site.feature_labels()
        return [f"{stat} {label}" for label in site for stat in SITE_STATS] + [
            f"cation mean {label}" for label in site
        ]

    def describe(self, structure) -> np.ndarray:
        """All descriptors of *structure* as float64, in the order of :attr:`names`.

        Raises :class:`DescriptorError` naming the family that failed and why."""
        if "local_environment" in self.settings.families and not structure.is_ordered:
            raise DescriptorError(  # said first: other families may fail on it less clearly
                "local_environment",
                "partially occupied sites: CrystalNN needs an ordered structure",
            )
        values: list[float] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for family in self.settings.families:
                try:
                    part = self._family(family, structure)
                except Exception as exc:  # matminer/pymatgen raise many types
                    raise DescriptorError(family, exception_reason(exc)) from None
                values.extend(part)
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)

    def describe_composition(self, composition) -> np.ndarray:
        """The composition families of *composition* (a pymatgen Composition); the settings
        must hold no structure family."""
        structural = [f for f in self.settings.families if f not in self._composition]
        if structural:
            raise ParameterError("preset", self.settings.preset, "needs a structure for "
                                 f"{', '.join(structural)}; use preset 'composition'")  # fmt: skip
        values: list[float] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for family in self.settings.families:
                try:
                    values.extend(self._composition[family].featurize(composition))
                except Exception as exc:  # matminer raises many types
                    raise DescriptorError(family, exception_reason(exc)) from None
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)

    def _family(self, family: str, structure) -> list:
        if family in self._composition:
            return list(self._composition[family].featurize(structure.composition))
        if family == "density":
            try:
                return list(self._density.featurize(structure))
            except TypeError:  # an element without an atomic radius (He, Ne ...): no packing
                return [structure.density, structure.volume / len(structure), np.nan]
        if family == "symmetry":
            return list(self._symmetry.featurize(structure))
        return self._local_environment(structure)

    def _local_environment(self, structure) -> list:
        from matminer.featurizers.utils.stats import PropertyStats
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        try:
            orbit = SpacegroupAnalyzer(structure, symprec=self.settings.symprec)
            orbit = np.asarray(orbit.get_symmetry_dataset().equivalent_atoms)
        except Exception:  # spglib found no symmetry: every site is its own orbit
            orbit = np.arange(len(structure))
        unique = {int(i): None for i in orbit}
        for i in unique:
            unique[i] = [0.0 if v is None else v for v in self._site.featurize(structure, i)]
        per_site = np.array([unique[int(i)] for i in orbit], dtype=np.float64)  # (sites, ops)
        out = [
            PropertyStats.calc_stat(per_site[:, j].tolist(), stat)
            for j in range(per_site.shape[1])
            for stat in SITE_STATS
        ]
        chi = np.array([site.specie.X for site in structure], dtype=np.float64)
        cation = chi < np.nanmax(chi) if np.isfinite(chi).any() else np.zeros(len(chi), bool)
        # one element only (or all equally electronegative): every site counts as a cation site
        rows = per_site[cation] if cation.any() else per_site
        out.extend(rows.mean(axis=0).tolist())
        return out


__all__ = ["DescriptorError", "DescriptorSettings", "Describer", "PRESETS"]
