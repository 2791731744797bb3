"""``predict-structure``: a composition -> ranked candidate structures from a template folder.

Rankers score the templates of the query's stoichiometry type (with ``relax``, of every type
with the same number of elements):

- ``pairs``: CSPML's pair classifier, P(same prototype | |Δ descriptors|);
- ``embedding``: cosine of the query composition and each template structure in the joint space;
- ``both``: the mean of the two scores;
- ``euclidean`` and ``random``: the benchmark's baselines (distance between standardised
  descriptors; a seeded random order).

Only the best template of each prototype is kept, so the k candidates are k different
structures rather than k copies of the most common prototype. Each candidate is the template with
the query's elements substituted and its volume rescaled (:mod:`~xtal_cli.templates.substitute`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.templates.embedding import encode
from xtal_cli.templates.library import EMBEDDING, LIBRARY, PAIRS, read_library, read_manifest

RANKERS = ("pairs", "embedding", "both", "euclidean", "random")


@dataclass
class Candidate:
    """One predicted structure for a query composition."""

    query: str
    rank: int
    score: float
    ranker: str
    template_id: str
    template_formula: str
    prototype: str
    spacegroup: int
    structure: object  # pymatgen Structure with the query's elements
    exact: bool  # False when relax paired a template of another stoichiometry type

    def as_dict(self) -> dict:
        return {"query": self.query, "rank": self.rank, "score": round(float(self.score), 6),
                "ranker": self.ranker, "template_id": self.template_id,
                "template_formula": self.template_formula, "prototype": self.prototype,
                "spacegroup": int(self.spacegroup), "exact_stoichiometry": self.exact,
                "formula": self.structure.composition.reduced_formula}  # fmt: skip


def parse_formula(text: str):
    """A reduced pymatgen Composition of *text*, or one clear sentence why not."""
    from pymatgen.core import Composition, Element

    text = str(text).strip()
    if not text:
        raise XtalError("an empty formula; give a chemical formula such as KBr or LiCoO2")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comp = Composition(text)
            ok = (
                len(comp) > 0
                and comp.num_atoms > 0
                and all(type(el) is Element for el in comp.elements)
            )  # no dummy species (Xx)
    except Exception:  # pymatgen raises ValueError, KeyError ... for nonsense
        ok = False
    if not ok:
        raise XtalError(f"{text!r} is not a chemical formula (expected e.g. KBr or LiCoO2)")
    if any(v < 0 for v in comp.values()):
        raise XtalError(f"{text!r} has a negative amount")
    return comp.reduced_composition


class TemplatePredictor:
    """A loaded template folder: ``predict(formula)`` and ``reverse(structure)``."""

    def __init__(self, folder: str | Path):
        from xtal_cli.describe.descriptors import Describer, DescriptorSettings
        from xtal_cli.templates.train import read_pairs

        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.library = read_library(self.folder / LIBRARY)
        if len(self.library) == 0:
            raise XtalError(f"{self.folder}: the template set is empty")
        self.forest, _ = read_pairs(self.folder / PAIRS)
        self.describer = Describer(DescriptorSettings(preset="composition"))
        if list(self.describer.names) != self.library.descriptor_names:
            raise XtalError(f"{self.folder}: made with other descriptors than this xtal's; "
                            "train the templates again")  # fmt: skip
        self.scaler = self.library.standardiser()
        self.Z = self.scaler.transform(self.library.descriptors)
        self.volumes = self.library.element_volumes()
        self.amounts = [None] * len(self.library)
        self.model = None
        self._structure_embedding = None
        if self.manifest.get("embedding") and (self.folder / EMBEDDING).exists():
            self._load_embedding()

    def _load_embedding(self) -> None:
        import torch

        from xtal_cli.templates.embedding import EmbeddingSettings, build_model

        info = self.manifest["embedding"]
        settings = EmbeddingSettings(**info["config"])
        model = build_model(int(info["n_composition"]), int(info["n_structure"]), settings)
        path = self.folder / EMBEDDING
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:  # noqa: BLE001 - zip, pickle and shape errors of all kinds
            raise XtalError(f"{path}: cannot be loaded ({type(exc).__name__}); train the "
                            "templates again") from None  # fmt: skip
        self.model = model
        self._structure_embedding = encode(model, "structure", self.library.fingerprints)

    # -- candidates ---------------------------------------------------------------------------
    def _amounts(self, i: int) -> dict:
        if self.amounts[i] is None:
            from pymatgen.core import Composition

            self.amounts[i] = Composition(self.library.formulas[i]).get_el_amt_dict()
        return self.amounts[i]

    def pool(self, composition, relax: bool = False) -> np.ndarray:
        """Rows of the templates a query may use: its stoichiometry type (or, with *relax*,
        any with as many elements)."""
        from xtal_cli.templates.analysis import anonymous_formula

        rows = np.flatnonzero(self.library.anonymous == anonymous_formula(composition))
        if relax:
            n = len(composition)
            same_n = np.array([sum(c.isupper() for c in a) == n for a in self.library.anonymous])
            rows = np.union1d(rows, np.flatnonzero(same_n))
        return rows

    def scores(self, composition, rows: np.ndarray, ranker: str, seed: int = 0) -> np.ndarray:
        """Higher is better, for the templates *rows*."""
        from xtal_cli.templates.pairs import pair_scores

        if ranker not in RANKERS:
            raise ParameterError("ranker", ranker, f"use one of {', '.join(RANKERS)}")
        if len(rows) == 0:
            return np.zeros(0)
        zq = self.query_vector(composition)
        if ranker == "random":
            return np.random.default_rng(seed).random(len(rows))
        if ranker in ("embedding", "both") and self.model is None:
            raise XtalError(f"{self.folder}: was trained without the embedding; use "
                            "--ranker pairs")  # fmt: skip
        if ranker == "euclidean":
            return self._distance_similarity(zq, rows)
        if ranker in ("pairs", "both"):
            pairs = (pair_scores(self.forest, self.Z[rows], zq) if self.forest is not None
                     else self._distance_similarity(zq, rows))  # fmt: skip
            if ranker == "pairs":
                return pairs
        emb = (encode(self.model, "composition", zq[None, :]) @
               self._structure_embedding[rows].T)[0]  # fmt: skip
        return emb if ranker == "embedding" else 0.5 * (pairs + (emb + 1) / 2)

    def _distance_similarity(self, zq: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """A similarity in (0, 1] from the Euclidean distance of standardised descriptors: the
        baseline, and the pairs ranker's stand-in where no forest was trained."""
        return 1 / (1 + np.linalg.norm(self.Z[rows] - zq, axis=1) / np.sqrt(zq.size))

    def query_vector(self, composition) -> np.ndarray:
        from xtal_cli.describe.descriptors import DescriptorError

        try:
            values = self.describer.describe_composition(composition)
        except DescriptorError as exc:
            raise XtalError(f"{composition.reduced_formula}: cannot be described ({exc})") from None
        return self.scaler.transform(values[None, :])[0]

    def rank(self, composition, k: int = 10, ranker: str = "pairs", relax: bool = False,
             seed: int = 0, distinct: bool = True) -> list[tuple[int, float, dict]]:  # fmt: skip
        """``(template row, score, element mapping)`` of the *k* best templates, best first;
        with *distinct*, only the best template of each prototype."""
        from xtal_cli.templates.substitute import element_map

        if k < 1:
            raise ParameterError("k", k, "must be at least 1")
        rows = self.pool(composition, relax)
        if len(rows) == 0:
            from xtal_cli.templates.analysis import anonymous_formula

            hint = "" if relax else "; --relax allows templates of other stoichiometries"
            kind = anonymous_formula(composition)
            raise XtalError(f"{composition.reduced_formula}: no template of its stoichiometry "
                            f"type {kind} in {self.folder}{hint}")  # fmt: skip
        scores = self.scores(composition, rows, ranker, seed)
        order = np.argsort(-scores, kind="stable")
        query = composition.get_el_amt_dict()
        out: list[tuple[int, float, dict]] = []
        seen: set[int] = set()
        for j in order:
            i = int(rows[j])
            proto = int(self.library.prototypes[i])
            if distinct and proto in seen:
                continue
            mapping = element_map(query, self._amounts(i), relax=relax)
            if mapping is None:
                continue
            seen.add(proto)
            out.append((i, float(scores[j]), mapping))
            if len(out) == k:
                break
        return out

    def candidate(self, row: int, mapping: dict):
        """The template of *row* with its elements replaced and its volume rescaled."""
        from xtal_cli.templates.substitute import substitute

        return substitute(self.library.structure(row), mapping, self.volumes)

    def predict(self, formula, k: int = 10, ranker: str = "pairs", relax: bool = False,
                seed: int = 0, distinct: bool = True) -> list[Candidate]:  # fmt: skip
        """The *k* best candidate structures for *formula* (a string or Composition)."""
        comp = parse_formula(formula) if isinstance(formula, str) else formula.reduced_composition
        name = comp.reduced_formula
        out = []
        for rank, (i, score, mapping) in enumerate(
            self.rank(comp, k, ranker, relax, seed, distinct), start=1
        ):
            structure = self.candidate(i, mapping)
            exact = structure.composition.reduced_formula == name
            out.append(Candidate(name, rank, score, ranker, self.library.ids[i],
                                 self.library.formulas[i], self.library.prototype_names[i],
                                 int(self.library.spacegroups[i]), structure, exact))  # fmt: skip
        return out

    # -- reverse query ------------------------------------------------------------------------
    def reverse(self, structure, formulas: list | None = None, k: int = 10) -> list[dict]:
        """Compositions most likely to take *structure*: the given *formulas*, or else the
        library's compositions of its stoichiometry type, by the joint space's cosine."""
        from xtal_cli.templates.analysis import analyse_structure

        if self.model is None:
            raise XtalError(f"{self.folder}: was trained without the embedding, which the "
                            "reverse query needs")  # fmt: skip
        try:
            info = analyse_structure(structure, float(self.library.attrs.get("symprec", 0.1)))
        except ValueError as exc:
            raise XtalError(f"the structure cannot be analysed: {exc}") from None
        zs = encode(self.model, "structure", info["fingerprint"][None, :])[0]
        if formulas:
            comps = [parse_formula(f) if isinstance(f, str) else f for f in formulas]
            Z = np.array([self.query_vector(c) for c in comps])
            names = [c.reduced_formula for c in comps]
            known = [None] * len(comps)
        else:
            rows = np.flatnonzero(self.library.anonymous == info["anonymous"])
            if len(rows) == 0:
                raise XtalError(f"no composition of stoichiometry type {info['anonymous']} in "
                                f"{self.folder}; give candidate formulas")  # fmt: skip
            Z = self.Z[rows]
            names = [self.library.formulas[i] for i in rows]
            known = [self.library.prototype_names[i] for i in rows]
        sims = encode(self.model, "composition", Z) @ zs
        order = np.argsort(-sims, kind="stable")[:k]
        return [{"rank": r + 1, "formula": names[i], "score": round(float(sims[i]), 6),
                 "known_structure": known[i]} for r, i in enumerate(order)]  # fmt: skip


__all__ = ["Candidate", "RANKERS", "TemplatePredictor", "parse_formula"]
