"""Line shapes of powder peaks: the one definition that profiles, augmentation and refinement use.

* pseudo-Voigt: area-normalised, η L + (1 − η) G with one FWHM; summed over many peaks, each with
  its own FWHM and η, evaluated within ±``window`` FWHM of its centre (compiled);
* Thompson–Cox–Hastings (1987): total FWHM and η from the Gaussian and Lorentzian FWHMs;
* widths: Caglioti U tan²θ + V tanθ + W (FWHM² in deg², or GSAS-II's σ² in centideg²) and the
  Lorentzian X tanθ + Y / cosθ;
* Kα doublet: where Kα2 lands (sin θ₂ = λ₂/λ₁ sin θ₁), and which λ₂ and I₂/I₁ belong to a tube;
* Finger–Cox–Jephcoat (1994) axial-divergence asymmetry, with GSAS-II's widths and analytic
  derivatives, for the Rietveld engine (:mod:`xtal_cli.refine.engine`).

The compiled kernels live in :mod:`xtal_cli.xrd._lineshape_kernels` and load (numba) on the
first call that needs one; the Kα policy and the Caglioti/Lorentzian widths are plain numpy, and
the fused augmentation kernel (:mod:`xtal_cli.xrd._augment_kernel`) compiles :func:`caglioti`,
:func:`lorentzian_fwhm` and :func:`doublet_sine` as they are.
"""

from __future__ import annotations

import numpy as np

from xtal_cli.xrd.units import WAVELENGTHS

KA2_RATIO = 0.5  # I(Kα2)/I(Kα1) when the data do not say
KA_ELEMENTS = ("Cu", "Mo", "Cr", "Fe", "Co", "Ag")  # tubes whose Kα lines are in WAVELENGTHS
KA1_TOLERANCE = 2e-4  # Å: a wavelength this close to a Kα1 line is taken as that line
CAGLIOTI_FLOOR = 1e-8  # deg²: Caglioti FWHM² below this (V < 0 at low angle) is taken as this


# ----------------------------------------------------------------------------- pseudo-Voigt


def pseudo_voigt_sum(grid, centers, areas, fwhm, eta, window: float) -> np.ndarray:
    """Σ areas · pseudo-Voigt(grid − centers) on *grid* (deg); *fwhm* and *eta* per peak or one
    for all; each peak is evaluated only within ±*window*·FWHM (the truncation is part of the
    result, so callers keep theirs: 30 for profiles, 20 for augmentation)."""
    grid = np.ascontiguousarray(grid, dtype=float)
    centers = np.ascontiguousarray(centers, dtype=float)
    areas = np.ascontiguousarray(areas, dtype=float)
    fwhm = np.ascontiguousarray(np.broadcast_to(np.asarray(fwhm, dtype=float), centers.shape))
    eta = np.ascontiguousarray(np.broadcast_to(np.asarray(eta, dtype=float), centers.shape))
    out = np.zeros_like(grid)
    if centers.size == 0:
        return out
    lo = np.searchsorted(grid, centers - window * fwhm).astype(np.int64)
    hi = np.searchsorted(grid, centers + window * fwhm).astype(np.int64)
    from xtal_cli.xrd._lineshape_kernels import pseudo_voigt_into

    return pseudo_voigt_into(out, grid, centers, areas, fwhm, eta, lo, hi)


# ----------------------------------------------------------------------------- widths


def caglioti(theta, u: float, v: float, w: float):
    """U tan²θ + V tanθ + W (θ in rad): FWHM² in deg² (Caglioti) or σ² in centideg² (GSAS-II).
    Like :func:`lorentzian_fwhm`, plain arithmetic that the fused augmentation kernel compiles."""
    t = np.tan(theta)
    return u * t**2 + v * t + w


def lorentzian_fwhm(theta, x: float, y: float):
    """X tanθ + Y / cosθ (θ in radians): strain and size broadening. GSAS-II names the two terms
    the other way round (γ = X / cosθ + Y tanθ): pass its (Y, X)."""
    return x * np.tan(theta) + y / np.cos(theta)


def caglioti_fwhm(two_theta, u: float, v: float, w: float) -> np.ndarray:
    """FWHM (deg) from Caglioti's U, V, W (deg²) at *two_theta* (deg); clipped to stay positive."""
    theta = np.radians(np.asarray(two_theta, dtype=float)) / 2.0
    return np.sqrt(np.maximum(caglioti(theta, u, v, w), CAGLIOTI_FLOOR))


def tch_width(g, lo) -> tuple[np.ndarray, np.ndarray]:
    """TCH total FWHM and η from Gaussian FWHMs *g* and Lorentzian FWHMs *lo* (one unit)."""
    return _tch_map(g, lo, gsas=False)


def tch_fwhm_eta(two_theta, u, v, w, x, y) -> tuple[np.ndarray, np.ndarray]:
    """TCH pseudo-Voigt at *two_theta* (deg): total FWHM (deg) and η (clipped to [0, 1]) from a
    Caglioti Gaussian (U, V, W in deg²) and the Lorentzian X tanθ + Y / cosθ (deg)."""
    two_theta = np.asarray(two_theta, dtype=float)
    theta = np.radians(two_theta) / 2.0
    g = caglioti_fwhm(two_theta, u, v, w)
    total, eta = tch_width(g, np.maximum(lorentzian_fwhm(theta, x, y), 0.0))
    return total, np.clip(eta, 0.0, 1.0)


def gsas_tch(sig, gam) -> tuple[np.ndarray, np.ndarray]:
    """TCH FWHM (deg) and η from GSAS-II's σ² (centideg²) and γ (centideg), floored at 0.001."""
    return _tch_map(sig, gam, gsas=True)


def _tch_map(a, b, gsas: bool):
    """The compiled TCH loop over broadcast inputs of any shape."""
    from xtal_cli.xrd._lineshape_kernels import tch_arrays

    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    fw, eta = tch_arrays(np.ascontiguousarray(a).ravel(), np.ascontiguousarray(b).ravel(), gsas)
    return fw.reshape(a.shape), eta.reshape(a.shape)


# ----------------------------------------------------------------------------- Kα doublet


def kalpha_pair(line: str | float) -> tuple[float, float, float] | None:
    """``(λ1, λ2, I2/I1)`` of a tube's Kα doublet, from a line name (``CuKa``, ``CuKa1``) or a
    wavelength in Å within :data:`KA1_TOLERANCE` of a Kα1 line; None for anything else
    (Kβ, Kα2, a number string, an unknown wavelength)."""
    for element in KA_ELEMENTS:
        ka1 = WAVELENGTHS[f"{element}Ka1"]
        if isinstance(line, str):
            hit = line in (f"{element}Ka", f"{element}Ka1")
        else:
            hit = abs(float(line) - ka1) < KA1_TOLERANCE
        if hit:
            return ka1, WAVELENGTHS[f"{element}Ka2"], KA2_RATIO
    return None


def kalpha_doublet(wavelength: float, wavelength2: float | None = None, ratio: float | None = None):
    """``(λ1, λ2, I2/I1)`` to draw or strip for data at Kα1 = *wavelength*: *wavelength2* when the
    data name it (a file's Kα2), else the Kα2 of that tube (:func:`kalpha_pair`); *ratio* when
    given and non-zero, else :data:`KA2_RATIO`. None when no Kα2 is known."""
    if not wavelength2:
        pair = kalpha_pair(float(wavelength))
        if pair is None:
            return None
        wavelength2 = pair[1]
    return wavelength, wavelength2, float(ratio) if ratio else KA2_RATIO


def doublet_sine(two_theta, wavelength: float, other: float):
    """sin θ' = (other / wavelength) sin θ of reflections at *two_theta* (deg). Plain arithmetic
    on arrays or scalars: the fused augmentation kernel compiles this same function."""
    return np.sin(np.radians(two_theta) / 2.0) * (other / wavelength)


def doublet_two_theta(two_theta, wavelength: float, other: float) -> np.ndarray:
    """2θ (deg) of the same reflections measured with *other* instead of *wavelength*
    (:func:`doublet_sine`); NaN where sin θ' ≥ 1 (not reached)."""
    s = doublet_sine(np.asarray(two_theta, dtype=float), wavelength, other)
    with np.errstate(invalid="ignore"):
        return np.where(s < 1.0, 2.0 * np.degrees(np.arcsin(s)), np.nan)


def kalpha2_position(two_theta, wavelength: float, wavelength2: float):
    """Rietveld convention for the Kα2 peak of a reflection observed at *two_theta* (deg, Kα1,
    aberrations included): 2θ + (360/π)(λ2 − λ1)/λ1 · tan(2θ/2), GSAS-II's first-order shift,
    and its derivative d2θ₂/d2θ (to carry position derivatives over). Returns (2θ₂, d2θ₂/d2θ)."""
    two_theta = np.asarray(two_theta, dtype=float)
    rel = (wavelength2 - wavelength) / wavelength
    half = np.radians(two_theta) / 2.0
    return two_theta + np.degrees(2.0 * rel * np.tan(half)), 1.0 + rel / np.cos(half) ** 2


def kalpha2_lines(two_theta, intensity, ka2: tuple[float, float, float]):
    """Sticks with the Kα2 line of every reflection appended (intensity × ratio); *ka2* is
    ``(λ1, λ2, I2/I1)`` and *two_theta* refers to λ1. Reflections Kα2 cannot reach are left out."""
    lam1, lam2, ratio = ka2
    two_theta = np.asarray(two_theta, dtype=float)
    intensity = np.asarray(intensity, dtype=float)
    tt2 = doublet_two_theta(two_theta, lam1, lam2)
    ok = ~np.isnan(tt2)
    return (
        np.concatenate([two_theta, tt2[ok]]),
        np.concatenate([intensity, intensity[ok] * ratio]),
    )


# ----------------------------------------------------------------------------- FCJ asymmetry


def fcj_extent(pos, shl: float) -> np.ndarray:
    """|2θ − 2φ_min| in degrees: how far the FCJ asymmetry of peaks at *pos* reaches (0 without
    asymmetry, ``shl`` = S/L + H/L ≤ 0)."""
    from xtal_cli.xrd._lineshape_kernels import fcj_extent_array

    pos = np.asarray(pos, dtype=float)
    return fcj_extent_array(np.ascontiguousarray(pos).ravel(), float(shl)).reshape(pos.shape)


def fcj_windows(x: np.ndarray, pos: np.ndarray, sig, gam, shl: float, reach: float = 1.0):
    """Index range [lo, hi) of *x* covered by each peak, GSAS-II's (``getWidthsCW``): with
    w = 2.355 σ + γ (deg), 50 (w + SH/L·|cos 2θ|) on the low-angle side and 75 w on the high one,
    swapped above 90°; *reach* scales both (the Lorentzian tails decay as 1/Δ², so what a window
    cuts off is part of the model: the same windows give the same model as GSAS-II)."""
    pos = np.asarray(pos, dtype=float)
    w = np.maximum(2.355 * np.sqrt(np.maximum(sig, 0.0)) / 100.0 + np.asarray(gam) / 100.0, 1e-4)
    fmin = reach * 50.0 * (w + shl * np.abs(np.cos(np.radians(pos))))
    fmax = reach * 75.0 * w
    high = pos > 90.0
    fmin, fmax = np.where(high, fmax, fmin), np.where(high, fmin, fmax)
    lo = np.searchsorted(x, pos - fmin).astype(np.int64)
    hi = np.searchsorted(x, pos + fmax).astype(np.int64)
    return lo, hi


def fcj_render(x, pos, sig, gam, shl: float, area, lo, hi) -> np.ndarray:
    """Σ area · FCJ pseudo-Voigt (GSAS-II σ², γ; unit area) on x[lo:hi] per peak, no background."""
    none = np.zeros((len(pos), 0))  # no parameters: the Jacobian kernel's pattern alone
    return fcj_render_jacobian(x, pos, sig, gam, shl, area, lo, hi, none, none, none, none, -1)[0]


def fcj_render_jacobian(x, pos, sig, gam, shl: float, area, lo, hi, Cpos, Csig, Cgam, Carea, ishl):
    """:func:`fcj_render` and its Jacobian J[i, p]; C* (npeaks, P) hold d pos/dp, dσ²/dp, dγ/dp
    and d area/dp per peak, column *ishl* (or −1) is SH/L (one-sided difference)."""
    from xtal_cli.xrd import _lineshape_kernels as k

    return k.fcj_render_jacobian(x, pos, sig, gam, shl, area, lo, hi, Cpos, Csig, Cgam, Carea,
                                 ishl, k.GL_NODES, k.GL_WEIGHTS, k.GL_ORDERS)  # fmt: skip


def fcj_peaks(x, pos, sig, gam, shl: float, area, reach: float = 1.0) -> np.ndarray:
    """Pattern of FCJ peaks (no background) on the grid *x*, windows included: for direct use."""
    x = np.ascontiguousarray(x, dtype=float)
    pos = np.ascontiguousarray(pos, dtype=float)
    sig = np.ascontiguousarray(sig, dtype=float)
    gam = np.ascontiguousarray(gam, dtype=float)
    lo, hi = fcj_windows(x, pos, sig, gam, shl, reach)
    area = np.ascontiguousarray(area, dtype=float)
    return fcj_render(x, pos, sig, gam, float(shl), area, lo, hi)
