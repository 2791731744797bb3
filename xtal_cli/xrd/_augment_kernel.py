"""Compiled render of :func:`xtal_cli.xrd.augment.augmented_profile` (numba); import that module.

The reference (:func:`~xtal_cli.xrd.augment.augmented_profile_reference`) applies one numpy
operation per effect, each a pass over the peaks or the grid with its own temporary; at tens of
peaks that glue costs as much as the line shapes. :func:`render` does every effect up to the
counting noise in one call, and :func:`finish` the window and the scaling after it; the noise
stays numpy's ``Generator.poisson`` in between, so the draws are the reference's.

One physics core: the per-peak and per-point formulas are the reference's own functions, compiled
here as they are (March–Dollase, shifts, Kα2 positions, Caglioti and Lorentzian widths,
background), and the line shapes are :mod:`xtal_cli.xrd._lineshape_kernels` (TCH, pseudo-Voigt);
this module only loops. numba's cache follows this file alone: after editing one of those
functions, the cached kernel is stale until ``__pycache__`` is cleared (the equality tests in
tests/xrd/test_augment.py fail until then).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from xtal_cli.xrd import augment_terms as _aug
from xtal_cli.xrd import lineshape as _ls
from xtal_cli.xrd._lineshape_kernels import pseudo_voigt_tails_into, tch

_FLOOR = _ls.CAGLIOTI_FLOOR
_march_dollase_weight = njit(inline="always")(_aug.march_dollase_weight)
_peak_shift = njit(inline="always")(_aug.peak_shift)
_background_shape = njit(inline="always")(_aug.background_shape)
_amorphous_hump = njit(inline="always")(_aug.amorphous_hump)
_doublet_sine = njit(inline="always")(_ls.doublet_sine)
_caglioti = njit(inline="always")(_ls.caglioti)
_lorentzian_fwhm = njit(inline="always")(_ls.lorentzian_fwhm)


@njit(cache=True)
def _texture(inten, hkl, recip, axis, r):
    """inten × March–Dollase P(α) per reflection; *recip* rows are the reciprocal vectors."""
    a = np.zeros(3)
    for j in range(3):
        for i in range(3):
            a[j] += axis[i] * recip[i, j]
    norm_a = np.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])
    for k in range(inten.shape[0]):
        g0 = hkl[k, 0] * recip[0, 0] + hkl[k, 1] * recip[1, 0] + hkl[k, 2] * recip[2, 0]
        g1 = hkl[k, 0] * recip[0, 1] + hkl[k, 1] * recip[1, 1] + hkl[k, 2] * recip[2, 1]
        g2 = hkl[k, 0] * recip[0, 2] + hkl[k, 1] * recip[1, 2] + hkl[k, 2] * recip[2, 2]
        norm_g = np.sqrt(g0 * g0 + g1 * g1 + g2 * g2)
        cos = abs(g0 * a[0] + g1 * a[1] + g2 * a[2]) / (norm_g * norm_a + 1e-300)
        cos = min(max(cos, 0.0), 1.0)
        inten[k] *= _march_dollase_weight(cos * cos, r)


@njit(cache=True)
def render(grid, two_theta, intensity, hkl, recip, axis, texture_r, imp_two_theta, imp_intensity,
           zero_shift, displacement_mm, radius_mm, lam1, lam2, ka2_ratio, u, v, w, x, y, window,
           bg_level, c1, c2, decay, hump_height, hump_center, hump_width, counts):  # fmt: skip
    """The profile before the counting noise: peaks scaled to a maximum of 1 plus the background,
    or, with *counts* ≠ 0, the Poisson mean max(that, 0) × counts.

    Texture applies when *recip* (3×3, rows the reciprocal vectors) is given (not 0×0) and
    *texture_r* ≠ 1; *lam2* = 0 leaves Kα2 out. Peaks cover grid[lo:hi] with lo and hi found as
    np.searchsorted finds them (±*window* FWHM), so the truncation is the reference's.
    """
    n_sticks = two_theta.shape[0]
    inten = intensity.copy()
    if recip.shape[0] == 3 and texture_r != 1.0:
        _texture(inten, hkl, recip, axis, texture_r)
    top = 1.0  # impurity intensities are relative to the strongest reflection, at least 1
    for k in range(n_sticks):
        top = max(inten[k], top)
    n1 = n_sticks + imp_two_theta.shape[0]
    cap = 2 * n1 if lam2 > 0.0 else n1
    pos = np.empty(cap)
    area = np.empty(cap)
    for k in range(n1):
        if k < n_sticks:
            tt, a = two_theta[k], inten[k]
        else:
            tt, a = imp_two_theta[k - n_sticks], imp_intensity[k - n_sticks] * top
        pos[k] = tt + _peak_shift(np.radians(tt) / 2.0, zero_shift, displacement_mm, radius_mm)
        area[k] = a
    m = n1
    if lam2 > 0.0:
        for k in range(n1):
            s = _doublet_sine(pos[k], lam1, lam2)
            if s < 1.0:  # else Kα2 does not reach the reflection
                pos[m] = 2.0 * np.degrees(np.arcsin(s))
                area[m] = area[k] * ka2_ratio
                m += 1
    pos = pos[:m]
    area = area[:m]
    fw = np.empty(m)
    eta = np.empty(m)
    lo = np.empty(m, dtype=np.int64)
    hi = np.empty(m, dtype=np.int64)
    for k in range(m):
        theta = np.radians(pos[k]) / 2.0
        g = np.sqrt(max(_caglioti(theta, u, v, w), _FLOOR))
        lor = max(_lorentzian_fwhm(theta, x, y), 0.0)
        fw[k], e, _, _, _, _ = tch(g, lor)
        eta[k] = min(max(e, 0.0), 1.0)
        lo[k] = np.searchsorted(grid, pos[k] - window * fw[k])
        hi[k] = np.searchsorted(grid, pos[k] + window * fw[k])
    n = grid.shape[0]
    out = pseudo_voigt_tails_into(np.zeros(n), grid, pos, area, fw, eta, lo, hi)
    peak = 0.0
    for i in range(n):
        peak = max(out[i], peak)
    if peak <= 0.0:
        peak = 1.0
    gmin = grid[0]
    gmax = grid[0]
    for i in range(n):
        gmin = min(gmin, grid[i])
        gmax = max(gmax, grid[i])
    span = max(gmax - gmin, 1e-9)
    shape = np.empty(n)
    total = 0.0
    for i in range(n):
        shape[i] = _background_shape((grid[i] - gmin) / span, grid[i], c1, c2, decay)
        total += shape[i]
    mean = max(total / n, 1e-9)
    for i in range(n):
        bg = bg_level * shape[i] / mean
        if hump_height > 0.0:
            bg = bg + _amorphous_hump(grid[i], hump_height, hump_center, hump_width)
        out[i] = out[i] / peak + bg
        if counts != 0.0:
            out[i] = max(out[i], 0.0) * counts
    return out


@njit(cache=True)
def finish(y, grid, windowed, w_lo, w_hi):
    """float32 profile scaled to a maximum of 1 (if positive), 0 outside [w_lo, w_hi] when
    *windowed*; *y* is :func:`render`'s output or the Poisson counts drawn from it."""
    n = y.shape[0]
    val = np.empty(n)
    top = -np.inf
    for i in range(n):
        val[i] = y[i]
        if windowed and (grid[i] < w_lo or grid[i] > w_hi):
            val[i] = 0.0
        top = max(val[i], top)
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        out[i] = val[i] / top if top > 0.0 else val[i]
    return out
