"""Atomic scattering factors and scatterer arrays, exactly as pymatgen's XRDCalculator uses them.

The coefficients are read from pymatgen's own ``atomic_scattering_params.json`` (four ``(a, b)``
pairs per element), so the fast engine and the reference share one table. The form factor is
``f(s) = Z - 41.78214 s² Σ a_k exp(-b_k s²)`` with ``s = sin θ / λ``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import numpy as np


@dataclass(frozen=True)
class ScatteringTable:
    """Coefficients per element: ``a``/``b`` (E, 4), ``z`` (E,), and ``row`` by symbol."""

    a: np.ndarray
    b: np.ndarray
    z: np.ndarray
    row: dict[str, int]


@lru_cache(maxsize=1)
def scattering_table() -> ScatteringTable:
    """Load pymatgen's coefficient table once (the JSON file, not the heavy diffraction module)."""
    from pymatgen.core.periodic_table import Element

    path = files("pymatgen.analysis.diffraction") / "atomic_scattering_params.json"
    params = json.loads(path.read_text())
    symbols = sorted(params)
    n_coeff = max(len(params[s]) for s in symbols)
    a = np.zeros((len(symbols), n_coeff))
    b = np.zeros((len(symbols), n_coeff))
    for i, sym in enumerate(symbols):
        coeff = np.asarray(params[sym], dtype=np.float64)
        a[i, : len(coeff)] = coeff[:, 0]
        b[i, : len(coeff)] = coeff[:, 1]
    z = np.array([Element(s).Z for s in symbols], dtype=np.float64)
    return ScatteringTable(a=a, b=b, z=z, row={s: i for i, s in enumerate(symbols)})


def form_factors(table: ScatteringTable, rows: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """f(s) for elements *rows* (E,) at s² values *s2* (M,) -> (M, E)."""
    a, b, z = table.a[rows], table.b[rows], table.z[rows]
    expo = np.exp(-b[None, :, :] * s2[:, None, None])  # (M, E, 4)
    return z[None, :] - 41.78214 * s2[:, None] * np.sum(a[None] * expo, axis=2)


def scatterers(structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (site, species) pair: fractional coords (N, 3), occupancy (N,), table row (N,).

    Partially occupied and mixed sites give one scatterer per species, weighted by its occupancy,
    as pymatgen does. Raises ValueError (pymatgen's message) for a species without coefficients.
    """
    frac: list[np.ndarray] = []
    occ: list[float] = []
    symbols: list[str] = []
    for site in structure:
        fc = site.frac_coords
        for sp, occu in site.species.items():
            frac.append(fc)
            occ.append(occu)
            symbols.append(sp.symbol)
    return (
        np.asarray(frac, dtype=np.float64).reshape(-1, 3),
        np.asarray(occ, dtype=np.float64),
        table_rows(symbols),
    )


def table_rows(symbols) -> np.ndarray:
    """Row of every element symbol in the scattering table; ValueError (pymatgen's message) for
    an element without coefficients."""
    row = scattering_table().row
    out = np.empty(len(symbols), dtype=np.int64)
    for i, sym in enumerate(symbols):
        r = row.get(sym)
        if r is None:
            raise ValueError(
                f"Unable to calculate XRD pattern as there is no scattering coefficients for {sym}."
            )
        out[i] = r
    return out
