"""From a template and a query composition to a candidate structure: which query element goes
on which template element's sites, and the cell volume the new elements need.

Correspondence: the elements of one amount in the reduced formula (the two 1s of ABC2) can trade
places, so within each amount the assignment of least chemical dissimilarity is taken
(Hungarian algorithm; dissimilarity from Pettifor's Mendeleev number, Pauling electronegativity
and atomic radius), which puts Na on Li's sites and S on O's, as a chemist substituting would.

Volume: each element's volume in a crystal is fitted (non-negative least squares) to the
training structures' volumes per formula unit; a candidate keeps its template's packing and
takes the volume ratio of the two element sets.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np


@cache
def _element_vector(symbol: str) -> np.ndarray:
    from pymatgen.core import Element

    el = Element(symbol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mendeleev = float(el.mendeleev_no or 0)
        chi = float(el.X) if np.isfinite(el.X) else 2.0
        radius = float(el.atomic_radius or el.atomic_radius_calculated or 1.5)
    return np.array([mendeleev / 10.0, chi, radius / 0.5])


def dissimilarity(a: str, b: str) -> float:
    return float(np.abs(_element_vector(a) - _element_vector(b)).sum())


def element_map(query: dict[str, float], template: dict[str, float], relax: bool = False):
    """``{template element: query element}`` for reduced-formula amount dicts, or None when
    the two are not of one stoichiometry type (with *relax*: the same number of elements is
    enough, elements are paired by amount rank, then similarity)."""
    from scipy.optimize import linear_sum_assignment

    if len(query) != len(template):
        return None
    q_amounts, t_amounts = sorted(query.values()), sorted(template.values())
    if not relax and not np.allclose(q_amounts, t_amounts):
        return None
    mapping: dict[str, str] = {}
    if not relax:
        for amount in sorted(set(t_amounts)):
            t_els = [e for e, n in template.items() if np.isclose(n, amount)]
            q_els = [e for e, n in query.items() if np.isclose(n, amount)]
            cost = np.array([[dissimilarity(t, q) for q in q_els] for t in t_els])
            rows, cols = linear_sum_assignment(cost)
            mapping.update({t_els[r]: q_els[c] for r, c in zip(rows, cols)})
        return mapping
    t_els, q_els = list(template), list(query)
    tf = np.array([template[e] for e in t_els]) / sum(template.values())
    qf = np.array([query[e] for e in q_els]) / sum(query.values())
    cost = np.array([[dissimilarity(t, q) + 20 * abs(a - b) for q, b in zip(q_els, qf)]
                     for t, a in zip(t_els, tf)])  # fmt: skip
    rows, cols = linear_sum_assignment(cost)
    return {t_els[r]: q_els[c] for r, c in zip(rows, cols)}


class ElementVolumes:
    """Volume per atom of each element in crystals, fitted to known structures."""

    def __init__(self, symbols: list[str], volumes: np.ndarray):
        self.symbols = list(symbols)
        self.volumes = np.asarray(volumes, float)
        self._table = dict(zip(self.symbols, self.volumes))
        ratio = [v / self._sphere(s) for s, v in self._table.items() if v > 0]
        self._ratio = float(np.median(ratio)) if ratio else 1.0

    @staticmethod
    def _sphere(symbol: str) -> float:
        r = _element_vector(symbol)[2] * 0.5
        return 4.0 / 3.0 * np.pi * r**3

    @classmethod
    def fit(cls, amounts: list[dict[str, float]], volumes: np.ndarray) -> ElementVolumes:
        """*amounts* per structure (element counts of the cell whose volume is *volumes*)."""
        from scipy.optimize import nnls

        symbols = sorted({e for a in amounts for e in a})
        col = {s: k for k, s in enumerate(symbols)}
        A = np.zeros((len(amounts), len(symbols)))
        for r, a in enumerate(amounts):
            for e, n in a.items():
                A[r, col[e]] = n
        # relative residuals: a 10-atom and a 100-atom cell weigh alike
        w = 1.0 / np.maximum(np.asarray(volumes, float), 1e-6)
        v, _ = nnls(A * w[:, None], np.ones(len(amounts)), maxiter=50 * len(symbols))
        return cls(symbols, v)

    def volume(self, amounts: dict[str, float]) -> float:
        total = 0.0
        for e, n in amounts.items():
            v = self._table.get(e, 0.0)
            total += n * (v if v > 0 else self._ratio * self._sphere(e))
        return total


def substitute(template, mapping: dict[str, str], volumes: ElementVolumes | None = None):
    """The template with its elements replaced by *mapping*; the volume follows the element
    volumes' ratio (kept when *volumes* is None)."""
    out = template.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out.replace_species(mapping)
        if volumes is not None:
            before = volumes.volume(template.composition.get_el_amt_dict())
            after = volumes.volume(out.composition.get_el_amt_dict())
            if before > 0 and after > 0:
                out.scale_lattice(template.volume * after / before)
    return out


__all__ = ["ElementVolumes", "dissimilarity", "element_map", "substitute"]
