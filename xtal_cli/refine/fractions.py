"""Weight fractions of the phases of a multiphase Rietveld model (Hill & Howard 1987).

With the conventional Rietveld scale (intensity = S · multiplicity · |F_cell|² · Lp), phase p's
weight fraction is W_p = S_p (ZMV)_p / Σ S_i (ZMV)_i, where ZM is the mass of the unit-cell
contents and V the cell volume. The esds propagate the scales' covariance from the last
least-squares cycle (cell masses and volumes are taken as exact). No microabsorption
(Brindley) correction: strongly and weakly absorbing phases of very different particle size
are biased, as in every ZMV analysis without one.
"""

from __future__ import annotations

import numpy as np

from xtal_cli.refine.phases import cell_volume


def cell_mass(phase) -> float:
    """Mass of one unit cell's contents (atomic mass units) from its sites and occupancies."""
    from pymatgen.core.periodic_table import Element

    return float(
        sum(
            site.multiplicity * occ * float(Element(el).atomic_mass)
            for site in phase.sites
            for el, occ in site.species
        )
    )


def weight_fractions(model) -> tuple[np.ndarray, np.ndarray]:
    """(weight fractions, esds) of the phases of a refined
    :class:`~xtal_cli.refine.engine.RietveldModel`, in phase order; esds are zero for scales
    that were not refined (call ``model.esds()`` first for the covariance)."""
    names = [f"{b.prefix}scale" for b in model.blocks]
    scales = np.array([model.get(n) for n in names])
    zmv = np.array(
        [cell_mass(ph) * cell_volume(model.cell(k=k)) for k, ph in enumerate(model.phases)]
    )
    m = scales * zmv
    total = m.sum()
    if not total > 0:
        return np.zeros(len(m)), np.zeros(len(m))
    w = m / total
    free, cov = getattr(model, "_cov", ([], None))
    idx = [free.index(n) if n in free else -1 for n in names]
    C = np.zeros((len(names), len(names)))
    if cov is not None:
        for a, i in enumerate(idx):
            for b, j in enumerate(idx):
                if i >= 0 and j >= 0:
                    C[a, b] = cov[i, j]
    # dW_p/dS_j = zmv_j (δ_pj − W_p) / Σ S_i zmv_i
    J = (np.eye(len(m)) - w[:, None]) * zmv[None, :] / total
    esd = np.sqrt(np.maximum(np.diag(J @ C @ J.T), 0.0))
    return w, esd
