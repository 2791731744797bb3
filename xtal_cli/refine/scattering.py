"""X-ray scattering factors and structure factors.

Form factors f0(sinθ/λ) are the Waasmaier–Kirfel fits and the anomalous terms f′, f″ come from
Chantler's tables, both through xraydb (a maintained library), at the energy of the wavelength.
A site scatters with Σ occ·(f0 + f′ + i f″)·exp(−8π² Uiso s²), s = sinθ/λ = 1/(2d).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

HC_KEV_A = 12.398419843  # h·c in keV·Å


@lru_cache(maxsize=256)
def anomalous(element: str, wavelength: float) -> tuple[float, float]:
    """(f′, f″) of *element* at *wavelength* Å (Chantler)."""
    import xraydb

    energy = HC_KEV_A / wavelength * 1000.0
    return float(xraydb.f1_chantler(element, energy)), float(xraydb.f2_chantler(element, energy))


def f0(element: str, s: np.ndarray) -> np.ndarray:
    """Non-dispersive form factor at s = sinθ/λ (Å⁻¹)."""
    import xraydb

    return np.asarray(xraydb.f0(element, np.asarray(s, dtype=float)), dtype=float)


def site_factors(species, s: np.ndarray, wavelength: float) -> np.ndarray:
    """Complex scattering factor of a (possibly mixed) site at each s, occupancies included."""
    total = np.zeros(len(s), dtype=complex)
    for element, occ in species:
        fp, fpp = anomalous(element, float(wavelength))
        total += occ * (f0(element, s) + fp + 1j * fpp)
    return total


class StructureFactors:
    """|F|² of one phase for a fixed reflection list, with derivatives in coordinates and Uiso.

    The scattering factors depend only on s, which changes negligibly with the cell during a
    refinement (< 0.2 %), so they are tabulated once per reflection list.
    """

    def __init__(self, phase, hkl: np.ndarray, s: np.ndarray, wavelength: float):
        self.phase = phase
        self.hkl = np.asarray(hkl, dtype=float)
        self.s2 = np.asarray(s, dtype=float) ** 2
        self.f = [site_factors(site.species, s, wavelength) for site in phase.sites]

    def compute(self, xyz: list[np.ndarray], uiso: np.ndarray, derivatives: bool = False):
        """|F|² (Friedel pair averaged); with *derivatives*, also d|F|²/d(free coord) and /dU.

        Returns ``(F2, dF2_dxyz, dF2_du)`` where dF2_dxyz[i] is (n, nfree_i) for site i.
        """
        n = len(self.hkl)
        Fp = np.zeros(n, dtype=complex)  # F(h)
        Fm = np.zeros(n, dtype=complex)  # F(-h)
        parts = []
        for site, f, x, u in zip(self.phase.sites, self.f, xyz, uiso):
            pos = site.positions(x)  # (m, 3)
            arg = 2 * np.pi * (self.hkl @ pos.T)  # (n, m)
            e = np.exp(1j * arg)
            T = np.exp(-8 * np.pi**2 * u * self.s2)
            G = e.sum(axis=1)
            Fp += f * T * G
            Fm += f * T * np.conj(G)
            parts.append((site, f, T, G, e))
        F2 = 0.5 * (np.abs(Fp) ** 2 + np.abs(Fm) ** 2)
        if not derivatives:
            return F2, None, None
        dxyz, du = [], []
        for site, f, T, G, e in parts:
            # d|F|²/dU = Re[conj(F)·dF] summed over the Friedel pair
            dT = -8 * np.pi**2 * self.s2 * T
            du.append(
                np.real(np.conj(Fp) * f * dT * G) + np.real(np.conj(Fm) * f * dT * np.conj(G))
            )
            cols = []
            for b in site.basis.T:
                # d(h·(R x + t))/dp = h·R b for each orbit member
                hRb = 2 * np.pi * (self.hkl @ np.einsum("mij,j->mi", site.orbit_R, b).T)  # (n, m)
                dG = (1j * hRb * e).sum(axis=1)
                cols.append(
                    np.real(np.conj(Fp) * f * T * dG) + np.real(np.conj(Fm) * f * T * np.conj(dG))
                )
            dxyz.append(np.array(cols).T.reshape(n, -1))
        return F2, dxyz, np.array(du).T.reshape(n, -1)
