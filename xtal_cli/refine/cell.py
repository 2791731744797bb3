"""Cell and zero-shift fit of a reference structure's reflections to picked peak positions.

Reference CIFs are often DFT-relaxed (lattice ~1 % off, anisotropically) and a measured scan
has a zero shift, so the reflections of a correct reference can miss the picked peaks by more
than their width. :class:`CellModel` refines the conventional cell (crystal-system ties,
bounded relative change) and the zero shift by robust least squares against picked positions,
before asking which strong reflections were found. It uses only positions, no intensities or
profiles: a quick check of a phase, not a Rietveld refinement (:mod:`xtal_cli.refine.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xtal_cli.errors import ParameterError
from xtal_cli.refine.phases import cell_to_A, inv_d2
from xtal_cli.xrd.peakmatch import close_groups, group_positions, match_fraction

__all__ = ["CELL_FREE", "CellFitSettings", "CellModel", "two_theta"]

# free cell parameters (indices into a, b, c, α, β, γ) and ties {parameter: source} per system
CELL_FREE: dict[str, tuple[list[int], dict[int, int]]] = {
    "cubic": ([0], {1: 0, 2: 0}),
    "tetragonal": ([0, 2], {1: 0}),
    "hexagonal": ([0, 2], {1: 0}),
    "trigonal": ([0, 2], {1: 0}),  # hexagonal setting of the conventional cell
    "orthorhombic": ([0, 1, 2], {}),
    "monoclinic": ([0, 1, 2], {}),  # + the one angle that is not 90° (CellModel)
    "triclinic": ([0, 1, 2, 3, 4, 5], {}),
}


def two_theta(cell: np.ndarray, hkl: np.ndarray, wavelength: float) -> np.ndarray:
    """2θ (degrees) of *hkl* for the cell (a, b, c, α, β, γ) at *wavelength* (Å), with the
    Rietveld engine's metric (:mod:`xtal_cli.refine.phases`); beyond 2θ = 180° it clips."""
    s = wavelength * np.sqrt(np.maximum(inv_d2(hkl, cell_to_A(cell)), 0)) / 2
    return 2 * np.degrees(np.arcsin(np.clip(s, -1, 1)))


@dataclass(frozen=True)
class CellFitSettings:
    """How :class:`CellModel` merges, bounds, fits and counts.

    bound: largest relative change of each free cell length (and free angle), e.g. 0.03 = ±3 %.
    max_zero: largest zero shift (degrees 2θ).
    merge_factor: reflections closer than this × the local FWHM are one group.
    strong: relative intensity (%) of the groups that are counted as found or missed.
    min_rel: relative intensity (%) of the groups that picked peaks may be assigned to.
    iterations: assignment + least-squares rounds (the tolerance shrinks 0.4° → 0.15°).
    match_tol: a strong group within this (degrees) of a picked peak counts as found.
    """

    bound: float = 0.03
    max_zero: float = 0.3
    merge_factor: float = 0.6
    strong: float = 5.0
    min_rel: float = 2.0
    iterations: int = 5
    match_tol: float = 0.1

    def __post_init__(self):
        if not 0 < self.bound < 1:
            raise ParameterError("bound", self.bound, "must be within (0, 1)")
        if not self.max_zero > 0:
            raise ParameterError("max_zero", self.max_zero, "must be positive (degrees)")
        if not self.merge_factor >= 0:
            raise ParameterError("merge_factor", self.merge_factor, "must be zero or positive")
        for name in ("strong", "min_rel"):
            if not 0 <= getattr(self, name) <= 100:
                raise ParameterError(name, getattr(self, name), "must be within 0-100 %")
        if int(self.iterations) != self.iterations or self.iterations < 1:
            raise ParameterError("iterations", self.iterations, "must be a positive integer")
        if not self.match_tol > 0:
            raise ParameterError("match_tol", self.match_tol, "must be positive (degrees)")


class CellModel:
    """Reflection groups of a reference whose positions follow a refined conventional cell.

    The conventional standard cell and crystal system come from spglib (pymatgen's
    SpacegroupAnalyzer, symprec 0.1); the free lengths (and, monoclinic, the angle that is not
    90°; triclinic, all angles) may change by ±``bound`` relative with the system's ties, plus a
    zero shift of ±``max_zero``. Reflections of *structure* at *wavelength* (Å) in *tt_range*
    are merged once, where closer than ``merge_factor`` × *fwhm* (a number or a callable of 2θ,
    e.g. :func:`~xtal_cli.xrd.peakmatch.fwhm_model`); a refined cell moves the members of each
    group, not the grouping.

    Attributes: ``system``, ``p0`` (a, b, c, α, β, γ of the reference), ``free`` (indices of the
    free parameters), ``pos0`` (group positions of the reference) and ``rel`` (group intensity,
    strongest = 100).
    """

    def __init__(
        self,
        structure,
        wavelength: float,
        tt_range: tuple[float, float],
        fwhm,
        settings: CellFitSettings | None = None,
    ):
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        from xtal_cli.xrd.sticks import compute_sticks

        if not wavelength > 0:
            raise ParameterError("wavelength", wavelength, "must be a positive number of Å")
        if not tt_range[0] < tt_range[1]:
            raise ParameterError("tt_range", tuple(tt_range), "must be (low, high) with low < high")
        self.settings = settings = settings if settings is not None else CellFitSettings()
        sga = SpacegroupAnalyzer(structure, symprec=0.1)
        conv = sga.get_conventional_standard_structure()
        self.system = sga.get_crystal_system()
        self.wavelength = wavelength
        lat = conv.lattice
        self.p0 = np.array([*lat.abc, *lat.angles], dtype=float)
        free, self.ties = CELL_FREE[self.system]
        free = list(free)
        if self.system == "monoclinic":
            free.append(3 + int(np.argmax(np.abs(self.p0[3:] - 90.0))))
        self.free = free
        st = compute_sticks(conv, wavelength, tt_range)
        if not len(st.two_theta):
            raise ParameterError("tt_range", tuple(tt_range), "holds no reflection")
        self.hkl = st.hkl.astype(float)
        # an hkl inconsistent with the conventional cell keeps the CIF position
        self.ok = np.abs(two_theta(self.p0, self.hkl, wavelength) - st.two_theta) < 0.01
        self.tt0, self.inten = st.two_theta, st.intensity
        if callable(fwhm):
            tol = lambda x: settings.merge_factor * fwhm(x)  # noqa: E731
        else:
            tol = settings.merge_factor * float(fwhm)
        self.groups = close_groups(st.two_theta, tol)
        total = np.bincount(self.groups, weights=st.intensity)
        self.rel = 100 * total / total.max()
        self.pos0 = group_positions(st.two_theta, st.intensity, self.groups)

    def params(self, x: np.ndarray) -> np.ndarray:
        """The cell (a, b, c, α, β, γ) for relative changes *x* of the free parameters."""
        p = self.p0.copy()
        for k, j in enumerate(self.free):
            p[j] = self.p0[j] * (1 + x[k])
        for j, src in self.ties.items():
            p[j] = p[src]
        return p

    def positions(self, x: np.ndarray) -> np.ndarray:
        """Group positions (intensity-weighted) for relative cell changes *x*, no zero shift."""
        tt = two_theta(self.params(x), self.hkl, self.wavelength)
        tt = np.where(self.ok, tt, self.tt0)
        return group_positions(tt, self.inten, self.groups)

    def refine(self, picked: np.ndarray, zero0: float) -> tuple[np.ndarray, float]:
        """Least-squares zero + cell against the *picked* positions: ``(x, zero)``.

        Each picked peak is assigned to the nearest group (≥ ``min_rel`` %) within a tolerance
        that shrinks from 0.4° to 0.15°; a soft-L1 loss (scale 0.03°) keeps wrong assignments
        from pulling. Starts from the best isotropic scale × zero on a coarse grid (*zero0*
        when no scale matches anything), so axes strained very differently (e.g. −1 % and
        +1.5 %) can start too far off to be assigned and stay unrefined.
        """
        from scipy.optimize import least_squares

        cfg = self.settings
        picked = np.asarray(picked, dtype=float)
        targets = self.rel >= cfg.min_rel
        strong = self.rel >= cfg.strong
        nfree = len(self.free)
        best = (-1.0, 0.0, zero0)  # isotropic scale (all free lengths together) and zero
        for s in np.linspace(-cfg.bound, cfg.bound, 61):
            x = np.array([s if j < 3 else 0.0 for j in self.free])
            f, z = match_fraction(
                self.positions(x)[strong], picked, step=0.01, max_shift=cfg.max_zero
            )
            if f - 1e-3 * abs(s) > best[0]:  # the smallest scale change among equals
                best = (f - 1e-3 * abs(s), s, z)
        x = np.array([best[1] if j < 3 else 0.0 for j in self.free])
        lb = np.r_[np.full(nfree, -cfg.bound), -cfg.max_zero]
        ub = np.r_[np.full(nfree, cfg.bound), cfg.max_zero]
        v = np.clip(np.r_[x, best[2]], lb + 1e-9, ub - 1e-9)
        for it in range(cfg.iterations):
            tol = max(0.15, 0.4 - 0.1 * it)
            pos = self.positions(v[:-1])[targets] + v[-1]
            dist = np.abs(picked[:, None] - pos[None, :])
            near = np.argmin(dist, axis=1)
            use = dist[np.arange(len(picked)), near] <= tol
            if use.sum() < nfree + 2:
                break
            obs, grp = picked[use], near[use]

            def resid(w, obs=obs, grp=grp):
                return self.positions(w[:-1])[targets][grp] + w[-1] - obs

            v = least_squares(resid, v, bounds=(lb, ub), loss="soft_l1", f_scale=0.03).x
        return v[:-1], float(v[-1])

    def matched(
        self, picked: np.ndarray, x: np.ndarray, zero: float
    ) -> tuple[float, list[tuple[float, float]]]:
        """Fraction of strong groups within ``match_tol`` of a picked peak for cell changes *x*
        and *zero*, and the missed ones as (2θ without the zero shift, relative intensity)."""
        cfg = self.settings
        pos = self.positions(x) + zero
        strong = self.rel >= cfg.strong
        d = np.min(np.abs(pos[strong][:, None] - np.asarray(picked)[None, :]), axis=1)
        far = d > cfg.match_tol
        miss = [
            (round(float(p - zero), 3), round(float(r), 1))
            for p, r in zip(pos[strong][far], self.rel[strong][far])
        ]
        return float(np.mean(d <= cfg.match_tol)), miss
