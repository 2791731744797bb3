"""Cheap candidate scoring: a candidate's strong lines against the peaks picked from a scan.

Database cells are often 1–3 % off (DFT relaxations, anisotropically for layered phases) and a
scan has a zero shift, so each candidate's reflections are first fitted to the picked peaks:
a grid over an isotropic strain × zero shift, then least squares on the phase's own
symmetry-constrained reciprocal metric (the Rietveld engine's A parameters) and the zero,
with picked peaks assigned to the nearest reflection group within a shrinking tolerance. The
score is the intensity-weighted fraction of the candidate's strong reflection groups that lie
within a peak width of a picked peak. Positions and intensities only: a filter in front of the
full-profile search, not a refinement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xtal_cli.xrd.peakmatch import close_groups, group_positions

STRONG = 5.0  # % of the strongest group: lines a phase present at a few wt % still shows
MERGE = 0.6  # reflections closer than this × local FWHM are one observed peak


@dataclass
class Sticks:
    """A candidate's reflections in a 2θ window at λ1: hkl terms, constrained-metric basis and
    intensities (multiplicity · |F|² · Lp at the CIF's atoms)."""

    H: np.ndarray  # (n, 6) hkl terms of 1/d² = H · A
    A0: np.ndarray
    A_basis: np.ndarray
    intensity: np.ndarray
    wavelength: float


@dataclass
class Match:
    """The best fit of one candidate's lines to the picked peaks."""

    score: float  # intensity-weighted fraction of strong groups matched, 0–1
    n_strong: int
    n_matched: int
    zero: float  # degrees, picked = calculated + zero
    A: np.ndarray  # fitted reciprocal metric (Rietveld A terms)
    strain: float  # largest relative change of a cell length, signed
    sticks: Sticks | None = None  # the candidate's reflections the fit is of
    strongest: float = float("nan")  # 2θ of its strongest line in the window (fitted cell)
    strongest_found: bool = False  # whether a picked peak is there


def candidate_sticks(phase, wavelength: float, tt_max: float, polariz: float = 0.5) -> Sticks:
    """Reflections of a :class:`~xtal_cli.refine.phases.Phase` up to *tt_max* (+3° of room for
    a cell that grows) with their powder intensities."""
    from xtal_cli.refine.engine import lorentz_polarisation
    from xtal_cli.refine.phases import hkl_terms
    from xtal_cli.refine.scattering import StructureFactors

    th_max = math.radians(min(tt_max + 3.0, 175.0) / 2)
    hkl, mult = phase.reflections(wavelength / (2 * math.sin(th_max)))
    H = hkl_terms(hkl)
    s = 0.5 * np.sqrt(H @ phase.A0)
    sf = StructureFactors(phase, hkl, s, wavelength)
    F2, _, _ = sf.compute(
        [site.xyz for site in phase.sites], np.array([st.uiso for st in phase.sites])
    )
    lp = lorentz_polarisation(np.arcsin(np.clip(wavelength * s, 0, 0.999999)), polariz)
    return Sticks(H, phase.A0.copy(), phase.A_basis, mult * F2 * lp, wavelength)


def positions(st: Sticks, A: np.ndarray) -> np.ndarray:
    s = st.wavelength * np.sqrt(np.maximum(st.H @ A, 0)) / 2
    return 2 * np.degrees(np.arcsin(np.clip(s, 0, 1)))


def _score(pos, rel, strong, picked, tol_at) -> tuple[float, int, bool]:
    """(intensity-weighted fraction of strong groups found, how many, strongest found)."""
    if not len(picked) or not strong.any():
        return 0.0, 0, False
    d = np.min(np.abs(pos[strong][:, None] - picked[None, :]), axis=1)
    hit = d <= tol_at(pos[strong])
    top = bool(hit[np.argmax(rel[strong])])
    return float(rel[strong][hit].sum() / rel[strong].sum()), int(hit.sum()), top


def match_candidate(
    st: Sticks,
    picked: np.ndarray,
    fwhm,
    tt_range: tuple[float, float],
    *,
    bound: float = 0.03,
    max_zero: float = 0.3,
) -> Match:
    """Fit zero and cell of *st* to the *picked* Kα1 positions and score the strong lines.

    *fwhm* is the local peak width (a callable of 2θ, :func:`~xtal_cli.xrd.peakmatch.fwhm_model`);
    a strong group counts as found within max(0.05°, 0.5 FWHM) of a picked peak. *bound* is
    the largest relative change of a cell length, *max_zero* of the zero shift (degrees).
    """
    from scipy.optimize import least_squares

    picked = np.sort(np.asarray(picked, dtype=float))
    lo, hi = tt_range

    def tol_at(x):
        return np.maximum(0.05, 0.5 * fwhm(x))

    pos0 = positions(st, st.A0)
    inside = (pos0 > lo - 1.0) & (pos0 < hi + 1.0) & (st.intensity > 0)
    H, inten = st.H[inside], st.intensity[inside]
    sub = Sticks(H, st.A0, st.A_basis, inten, st.wavelength)
    if not len(H):
        return Match(0.0, 0, 0, 0.0, st.A0.copy(), 0.0, st)
    group = close_groups(pos0[inside], lambda x: MERGE * fwhm(x))
    total = np.bincount(group, weights=inten)
    rel = 100 * total / total.max()

    def gpos(A):
        return group_positions(positions(sub, A), inten, group)

    g0 = gpos(st.A0)
    visible = (g0 >= lo) & (g0 <= hi)
    strong = (rel >= STRONG) & visible
    # isotropic strain × zero grid: d scales by 1 + e, so A by 1 / (1 + e)². Only fits that
    # put the strongest line on a picked peak count first (a candidate without it is rejected
    # anyway): in a multiphase scan a wrong strain can line many weak lines up with other
    # phases' peaks and outscore the right one
    best = (-np.inf, 0.0, 0.0)
    zeros = np.arange(-max_zero, max_zero + 1e-9, 0.01)
    top_k = int(np.argmax(np.where(strong, rel, -1.0)))
    top_in_strong = int(np.sum(strong[:top_k]))
    for e in np.linspace(-bound, bound, 61):
        p = gpos(st.A0 / (1 + e) ** 2)[strong]
        d = np.abs(picked[None, None, :] - p[None, :, None] - zeros[:, None, None])
        hit = np.min(d, axis=2) <= tol_at(p)[None, :]
        f = (hit * rel[strong][None, :]).sum(axis=1)
        if strong.any():
            f = f + np.where(hit[:, top_in_strong], 0.0, -1e6)
        k = int(np.argmax(f))
        val = float(f[k]) - 1e-3 * abs(e)
        if val > best[0]:
            best = (val, e, float(zeros[k]))
    _, e, zero = best
    # least squares on the phase's A parameters (A = A0 + A_basis p) and the zero
    nA = st.A_basis.shape[1]
    p0 = np.linalg.lstsq(st.A_basis, st.A0 / (1 + e) ** 2 - st.A0, rcond=None)[0]
    v = np.r_[p0, zero]
    targets = rel >= 2.0
    for it in range(4):
        tol = max(0.12, 0.4 - 0.1 * it)
        gp = gpos(st.A0 + st.A_basis @ v[:nA])[targets] + v[-1]
        d = np.abs(picked[:, None] - gp[None, :])
        near = np.argmin(d, axis=1)
        use = d[np.arange(len(picked)), near] <= tol
        if use.sum() < nA + 2:
            break
        obs, grp = picked[use], near[use]

        def resid(w, obs=obs, grp=grp):
            return gpos(st.A0 + st.A_basis @ w[:nA])[targets][grp] + w[-1] - obs

        fit = least_squares(resid, v, loss="soft_l1", f_scale=0.03)
        A = st.A0 + st.A_basis @ fit.x[:nA]
        if np.all(A[:3] > 0) and _length_change(st.A0, A) <= bound and abs(fit.x[-1]) <= max_zero:
            v = fit.x
        else:
            break
    A = st.A0 + st.A_basis @ v[:nA]
    score, n_hit, top = _score(gpos(A) + v[-1], rel, strong, picked, tol_at)
    iso_A = st.A0 / (1 + e) ** 2
    iso = _score(gpos(iso_A) + zero, rel, strong, picked, tol_at)
    if (iso[2], iso[0]) > (top, score):  # the least squares may chase a wrong assignment
        A, v[-1] = iso_A, zero
        score, n_hit, top = iso
    change = _signed_change(st.A0, A)
    where = float(gpos(A)[strong][np.argmax(rel[strong])] + v[-1]) if strong.any() else math.nan
    return Match(score, int(strong.sum()), n_hit, float(v[-1]), A, change, st, where, top)


def _lengths(A: np.ndarray) -> np.ndarray:
    from xtal_cli.refine.phases import A_to_cell

    return np.array(A_to_cell(A)[:3])


def _length_change(A0, A) -> float:
    return float(np.max(np.abs(_lengths(A) / _lengths(A0) - 1)))


def signed_length_change(cell0, cell) -> float:
    """The largest relative change of a cell length from *cell0* to *cell*, with its sign."""
    r = np.asarray(cell[:3]) / np.asarray(cell0[:3]) - 1
    return float(r[np.argmax(np.abs(r))])


def _signed_change(A0, A) -> float:
    return signed_length_change(_lengths(A0), _lengths(A))
