"""Comparing peak lists: merging unresolved reflections, local peak width, zero-shift matching.

A simulated stick list resolves reflections that a measured peak cannot, and a measured pattern
is usually offset by a small zero shift. These helpers put a reference stick list and a picked
peak list on the same footing before they are compared:

- :func:`merge_close` merges reflections closer than a tolerance, either one fixed width (the
  symmetry features' ``resolution``) or the local peak width at each 2θ;
- :func:`fwhm_model` is that local width, a Caglioti fit to the picked peaks' FWHMs;
- :func:`match_fraction` is the fraction of reference positions found among the picked peaks
  after the best zero shift.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xtal_cli.errors import ParameterError
from xtal_cli.xrd.lineshape import caglioti

__all__ = ["close_groups", "fwhm_model", "group_positions", "match_fraction", "merge_close"]

Tolerance = float | np.ndarray | Callable[[np.ndarray], np.ndarray]


def close_groups(two_theta: np.ndarray, tol: Tolerance) -> np.ndarray:
    """Group label of each peak: neighbours (in 2θ order) at most *tol* apart share one.

    *tol* (degrees) is a number, an array of one tolerance per gap between consecutive sorted
    peaks, or a callable giving the tolerance at a 2θ (evaluated at each gap's midpoint), such
    as ``lambda x: 0.6 * fwhm(x)`` for "closer than 0.6 × the local FWHM". Labels count from 0
    in increasing 2θ and are returned in the input order, so ``bincount(labels, weights=...)``
    sums over groups.
    """
    tt = np.asarray(two_theta, dtype=float)
    order = np.argsort(tt, kind="stable")
    s = tt[order]
    if callable(tol):
        limit = np.asarray(tol(0.5 * (s[1:] + s[:-1])), dtype=float)
    else:
        limit = np.asarray(tol, dtype=float)
    if limit.ndim and limit.shape != (max(len(s) - 1, 0),):
        raise ParameterError(
            "tol", f"{limit.size} values", f"give one per gap between peaks ({len(s) - 1})"
        )
    if np.any(np.isnan(limit)):
        raise ParameterError("tol", "NaN", "must be a number of degrees")
    labels = np.empty(len(tt), dtype=np.intp)
    labels[order] = np.concatenate([[0], np.cumsum(np.diff(s) > limit)]).astype(np.intp)
    return labels


def merge_close(tt: np.ndarray, inten: np.ndarray, tol: Tolerance) -> tuple[np.ndarray, np.ndarray]:
    """Merge peaks closer than *tol* into one: intensity-weighted position, summed intensity.

    One measured peak cannot resolve reflections closer than its width, so comparing sticks
    with picked peaks (or featurizing either) first merges them. *tol* is a fixed width in
    degrees (0 or less: no merging) or local widths, as in :func:`close_groups`. The result is
    sorted by 2θ; a group of zero total intensity sits at its plain mean position.
    """
    if len(tt) < 2 or (not callable(tol) and np.ndim(tol) == 0 and tol <= 0):
        return tt, inten
    group = close_groups(tt, tol)
    return _group_means(tt, inten, group)


def _group_means(tt, inten, group) -> tuple[np.ndarray, np.ndarray]:
    total = np.bincount(group, weights=inten)
    weight = np.where(total > 0, total, 1.0)
    centre = np.bincount(group, weights=tt * inten) / weight
    plain = np.bincount(group, weights=tt) / np.bincount(group)
    return np.where(total > 0, centre, plain), total


def group_positions(tt: np.ndarray, inten: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Intensity-weighted position of each group of :func:`close_groups` (moved reflections
    keep their grouping: a refined cell shifts the members, not the merge)."""
    return _group_means(np.asarray(tt, dtype=float), np.asarray(inten, dtype=float), group)[0]


def fwhm_model(peaks) -> Callable[[np.ndarray], np.ndarray]:
    """Local peak width (degrees) at any 2θ: a robust Caglioti fit FWHM² = U tan²θ + V tanθ + W
    to the picked maxima of *peaks* (:class:`~xtal_cli.xrd.peaks.Peaks`; shoulders excluded).

    Widths grow with angle (instrument, size, strain), so merging reflections with one global
    median FWHM merges too much at low angle and too little at high angle. Trimmed least squares
    (up to three passes, residuals beyond 3 MAD dropped); the prediction is clipped to the range
    of the fitted widths. Fewer than four maxima: their median (0.1° without any).
    """
    main = ~peaks.shoulder if peaks.shoulder is not None else np.ones(len(peaks), bool)
    tt, fw = peaks.two_theta[main], peaks.fwhm[main]
    if len(tt) < 4:
        med = float(np.median(fw)) if len(fw) else 0.1
        return lambda x: np.full(np.shape(x), med)
    t = np.tan(np.radians(tt) / 2)
    A = np.column_stack([t * t, t, np.ones_like(t)])
    use = np.ones(len(t), bool)
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(A[use], fw[use] ** 2, rcond=None)
        r = fw**2 - A @ coef
        mad = 1.4826 * np.median(np.abs(r[use] - np.median(r[use]))) + 1e-12
        new = np.abs(r - np.median(r[use])) <= 3 * mad
        if new.sum() < 4 or np.array_equal(new, use):
            break
        use = new
    lo, hi = float(fw[use].min()), float(fw[use].max())

    def fwhm(x):
        f2 = caglioti(np.radians(np.asarray(x, dtype=float)) / 2, *coef)
        return np.clip(np.sqrt(np.maximum(f2, lo * lo)), lo, hi)

    return fwhm


def match_fraction(
    ref_tt: np.ndarray,
    picked: np.ndarray,
    *,
    tol: float = 0.1,
    step: float = 0.005,
    max_shift: float = 0.3,
) -> tuple[float, float]:
    """Best fraction of *ref_tt* within *tol* (degrees) of a picked peak over zero shifts in
    ±*max_shift* (grid *step*), and that zero shift: ``(fraction, zero)``.

    The zero shift is the offset of the picked positions (picked = reference + zero); the first
    (most negative) shift reaching the best fraction wins. Either list empty: ``(0.0, 0.0)``.
    """
    if not tol > 0:
        raise ParameterError("tol", tol, "must be positive (degrees)")
    if not step > 0:
        raise ParameterError("step", step, "must be positive (degrees)")
    if not max_shift >= 0:
        raise ParameterError("max_shift", max_shift, "must be zero or positive (degrees)")
    ref_tt, picked = np.asarray(ref_tt, dtype=float), np.asarray(picked, dtype=float)
    best = (0.0, 0.0)
    if not len(ref_tt) or not len(picked):
        return best
    for z in np.arange(-max_shift, max_shift + 1e-4, step):
        d = np.min(np.abs(ref_tt[:, None] - (picked[None, :] - z)), axis=1)
        f = float(np.mean(d <= tol))
        if f > best[0]:
            best = (f, float(z))
    return best
