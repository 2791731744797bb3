"""Simulated profiles that look like measurements: per-pattern random instrument and sample effects.

Models trained on ideal sticks meet real scans with broad and Lorentzian-tailed peaks, Kα2
doublets, zero and displacement shifts, backgrounds, counting noise, texture and impurity peaks.
:func:`draw_augmentation` draws one set of such effects (a plain dict, recorded per pattern so a
training set can be audited and reproduced); :func:`augmented_profile` renders the sticks of one
structure with them, in compiled code, and :func:`augmented_profile_reference` is the same render
in numpy, kept as the reference the compiled one is tested against.

Physics (the line shape, TCH widths and Kα2 positions are :mod:`xtal_cli.xrd.lineshape`):
- widths: Thompson–Cox–Hastings pseudo-Voigt, Γ_G² = U tan²θ + V tanθ + W (Caglioti),
  Γ_L = X tanθ + Y / cosθ (strain, size), combined with TCH's 5th-order formula for Γ and η;
  X and Y are the instrument's Lorentzian terms plus the sample's: a crystallite size L
  (Scherrer, Y += K λ / L) and a microstrain ε (Stokes–Wilson, X += 4 ε), both in radians →
  degrees. Size and strain are properties of the sample, drawn for every instrument;
- zero shift Δ2θ = z, specimen displacement Δ2θ = −2 s cosθ / R (rad), R the goniometer radius;
- Kα2: sin θ₂ = (λ₂/λ₁) sin θ₁, intensity × ratio;
- March–Dollase texture: P(α) = (r² cos²α + sin²α / r)^(−3/2), α between the reflection's
  normal and the texture axis (needs the lattice; skipped without it);
- background: polynomial in 2θ, low-angle decay (air/holder scatter) and an amorphous hump;
- Poisson noise for a given count at the strongest point.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields

import numpy as np

from xtal_cli.errors import ParameterError
from xtal_cli.xrd.augment_terms import (
    amorphous_hump,
    background_shape,
    march_dollase_weight,
    peak_shift,
)
from xtal_cli.xrd.lineshape import kalpha2_lines, kalpha_doublet, pseudo_voigt_sum, tch_fwhm_eta
from xtal_cli.xrd.units import WAVELENGTHS

AUGMENT_WINDOW = 20.0  # each peak is drawn within ±20 FWHM of its centre
TEXTURE_AXES = ((0, 0, 1), (1, 0, 0), (0, 1, 0), (1, 1, 0), (1, 1, 1))


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges of the draws. Widths in deg² (U, V, W) and deg (X, Y); lab = Bragg–Brentano tube
    diffractometer, synchrotron = high-resolution capillary beamline."""

    p_synchrotron: float = 0.15
    lab_u: tuple[float, float] = (0.0, 0.03)
    lab_v: tuple[float, float] = (-0.015, 0.0)
    lab_w: tuple[float, float] = (0.002, 0.012)
    lab_x: tuple[float, float] = (0.0, 0.02)
    lab_y: tuple[float, float] = (0.0, 0.02)
    sync_u: tuple[float, float] = (0.0, 0.002)
    sync_v: tuple[float, float] = (-0.0005, 0.0)
    sync_w: tuple[float, float] = (2e-5, 2e-4)
    sync_x: tuple[float, float] = (0.0, 0.01)
    sync_y: tuple[float, float] = (0.0, 0.01)
    # sample broadening: nanocrystalline powders (tens of nm) are common in the lab and give
    # FWHMs of 0.3–1° 2θ; an instrument-only range would never show the model such patterns
    size_nm: tuple[float, float] = (8.0, 1000.0)  # log-uniform crystallite size
    scherrer_k: float = 0.9
    p_strain: float = 0.5
    strain: tuple[float, float] = (1e-4, 2e-3)  # log-uniform microstrain ε when strained
    p_ka2: float = 0.85  # lab tubes without a Kα1 monochromator
    zero_shift: float = 0.05  # deg, σ of a normal, clipped at 3σ
    displacement_mm: float = 0.1  # σ of the specimen displacement
    radius_mm: float = 240.0
    counts: tuple[float, float] = (500.0, 100000.0)  # log-uniform count at the strongest point
    background_level: tuple[float, float] = (0.0, 0.3)  # relative to the strongest point
    p_hump: float = 0.3
    p_texture: float = 0.5
    texture_r: tuple[float, float] = (0.6, 1.4)
    p_impurity: float = 0.3
    impurity_max_peaks: int = 3
    impurity_intensity: tuple[float, float] = (0.005, 0.05)
    p_window: float = 0.3  # chance of a narrower measured 2θ window
    window_min: tuple[float, float] = (5.0, 20.0)
    window_max: tuple[float, float] = (60.0, 90.0)

    def __post_init__(self):
        """Raise :class:`ParameterError` naming the first field with a value it cannot take."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("p_") and not 0 <= value <= 1:
                raise ParameterError(f.name, value, "must be a probability within 0-1")
            if isinstance(f.default, tuple) and not (
                np.shape(value) == (2,) and value[0] <= value[1]
            ):
                raise ParameterError(f.name, value, "give a range (low, high) with low <= high")
        for name in ("size_nm", "strain", "counts", "texture_r"):  # log-uniform, or March r
            if not getattr(self, name)[0] > 0:
                raise ParameterError(name, getattr(self, name), "must be positive")
        for name in ("background_level", "impurity_intensity"):
            if not getattr(self, name)[0] >= 0:
                raise ParameterError(name, getattr(self, name), "must be zero or positive")
        for name in ("scherrer_k", "radius_mm"):
            if not getattr(self, name) > 0:
                raise ParameterError(name, getattr(self, name), "must be positive")
        for name in ("zero_shift", "displacement_mm"):  # standard deviations
            if not getattr(self, name) >= 0:
                raise ParameterError(name, getattr(self, name), "must be zero or positive (σ)")
        n = self.impurity_max_peaks
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ParameterError("impurity_max_peaks", n, "must be a whole number of at least 1")
        if not self.window_min[1] < self.window_max[0]:
            raise ParameterError(
                "window_min",
                self.window_min,
                f"must end below the start of window_max ({self.window_max[0]:g}°)",
            )


def _uniform(rng, bounds) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _log_uniform(rng, bounds) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def draw_augmentation(
    rng: np.random.Generator,
    settings: AugmentSettings | None = None,
    wavelength: float = WAVELENGTHS["CuKa1"],
) -> dict:
    """One random set of instrument and sample effects (JSON-serialisable, recorded per pattern).

    *wavelength* (Å) converts the drawn crystallite size into the Lorentzian width Y (deg).
    """
    s = settings or AugmentSettings()
    sync = bool(rng.random() < s.p_synchrotron)
    pre = "sync" if sync else "lab"
    params: dict = {"instrument": "synchrotron" if sync else "lab"}
    for name in "uvwxy":
        params[name.upper()] = _uniform(rng, getattr(s, f"{pre}_{name}"))
    params["size_nm"] = _log_uniform(rng, s.size_nm)
    params["strain"] = _log_uniform(rng, s.strain) if rng.random() < s.p_strain else 0.0
    params["Y"] += float(np.degrees(s.scherrer_k * wavelength / (10.0 * params["size_nm"])))
    params["X"] += float(np.degrees(4.0 * params["strain"]))
    params["ka2"] = bool(not sync and rng.random() < s.p_ka2)
    params["ka2_ratio"] = _uniform(rng, (0.48, 0.52)) if params["ka2"] else 0.0
    scale = 0.2 if sync else 1.0
    params["zero_shift"] = float(np.clip(rng.normal(0, s.zero_shift * scale), -0.15, 0.15))
    params["displacement_mm"] = 0.0 if sync else float(rng.normal(0, s.displacement_mm))
    params["radius_mm"] = s.radius_mm
    params["counts"] = _log_uniform(rng, s.counts)
    if sync:
        params["counts"] *= 10.0
    params["background_level"] = _uniform(rng, s.background_level)
    params["background_poly"] = [float(v) for v in rng.normal(0, 0.3, 2)]  # slope, curvature
    params["background_decay"] = _uniform(rng, (0.0, 2.0))
    params["hump_height"] = _uniform(rng, (0.02, 0.15)) if rng.random() < s.p_hump else 0.0
    params["hump_center"] = _uniform(rng, (18.0, 30.0))
    params["hump_width"] = _uniform(rng, (4.0, 10.0))
    textured = rng.random() < s.p_texture
    params["texture_r"] = _uniform(rng, s.texture_r) if textured else 1.0
    params["texture_axis"] = list(TEXTURE_AXES[int(rng.integers(len(TEXTURE_AXES)))])
    n_imp = int(rng.integers(1, s.impurity_max_peaks + 1)) if rng.random() < s.p_impurity else 0
    params["impurity_two_theta"] = [float(v) for v in rng.uniform(10, 80, n_imp)]
    params["impurity_intensity"] = [float(v) for v in rng.uniform(*s.impurity_intensity, n_imp)]
    if rng.random() < s.p_window:
        params["window"] = [_uniform(rng, s.window_min), _uniform(rng, s.window_max)]
    else:
        params["window"] = None
    params["seed"] = int(rng.integers(2**31))  # for the noise, so the render is reproducible
    return params


def march_dollase(hkl: np.ndarray, lattice, axis, r: float) -> np.ndarray:
    """Texture factor per reflection; *lattice* is a pymatgen Lattice or a 3×3 matrix (Å)."""
    if r == 1.0 or len(hkl) == 0:
        return np.ones(len(hkl))
    matrix = np.asarray(getattr(lattice, "matrix", lattice), dtype=float)
    recip = np.linalg.inv(matrix).T  # rows: reciprocal vectors (without 2π)
    g = np.asarray(hkl, dtype=float) @ recip
    a = np.asarray(axis, dtype=float) @ recip
    cos = np.abs(g @ a) / (np.linalg.norm(g, axis=1) * np.linalg.norm(a) + 1e-300)
    return march_dollase_weight(np.clip(cos, 0.0, 1.0) ** 2, r)


_NO_TEXTURE = (np.zeros((0, 0)), np.zeros((0, 3)), np.zeros(3))  # recip, hkl, axis


def augmented_profile(
    sticks, grid, params: dict, wavelength: float, *, lattice=None, ka2_wavelength=None
) -> np.ndarray:
    """Render *sticks* (a :class:`~xtal_cli.xrd.sticks.Sticks` at λ1 = *wavelength*) on *grid*
    (ascending, deg) with the effects in *params*; float32 scaled to a maximum of 1 (0 outside
    the 2θ window).

    *lattice* enables March–Dollase texture; *ka2_wavelength* defaults to the Kα2 line of the
    element whose Kα1 is *wavelength* (Cu, Mo, …), else Kα2 is left out.

    Compiled (:mod:`xtal_cli.xrd._augment_kernel`): equals :func:`augmented_profile_reference`
    to float rounding, with the same Poisson draws for the same ``seed``. Its pseudo-Voigts skip
    the Gaussian beyond ±4 FWHM, where it is below 6e-20 of its peak.
    """
    from xtal_cli.xrd import _augment_kernel as kernel

    grid = np.ascontiguousarray(grid, dtype=float)
    tt = np.ascontiguousarray(sticks.two_theta, dtype=float)
    inten = np.ascontiguousarray(sticks.intensity, dtype=float)
    imp_tt = np.asarray(params.get("impurity_two_theta", []), dtype=float)
    imp_i = np.asarray(params.get("impurity_intensity", []), dtype=float)
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"grid must be a non-empty 1-D array of 2θ, got shape {grid.shape}")
    if tt.shape != inten.shape or tt.ndim != 1 or imp_tt.shape != imp_i.shape:
        raise ValueError("sticks (and impurity lines) need one intensity per 2θ")
    r = float(params.get("texture_r", 1.0))
    recip, hkl, axis = _NO_TEXTURE
    if lattice is not None and r != 1.0 and len(sticks.hkl):
        matrix = np.asarray(getattr(lattice, "matrix", lattice), dtype=float)
        recip = np.ascontiguousarray(np.linalg.inv(matrix).T)  # rows: reciprocal vectors
        hkl = np.ascontiguousarray(sticks.hkl, dtype=float)
        axis = np.asarray(params["texture_axis"], dtype=float)
        if hkl.shape != (len(tt), 3) or axis.shape != (3,):
            raise ValueError("texture needs (h, k, l) per reflection and a 3-vector axis")
    lam2 = ratio = 0.0
    if params.get("ka2"):
        doublet = kalpha_doublet(wavelength, ka2_wavelength, params["ka2_ratio"])
        if doublet is not None:
            _, lam2, ratio = doublet
    c1, c2 = params.get("background_poly", [0.0, 0.0])
    counts = float(params.get("counts") or 0.0)
    hump = float(params.get("hump_height", 0.0))
    hump_at = (params["hump_center"], params["hump_width"]) if hump > 0 else (0.0, 1.0)
    y = kernel.render(
        grid, tt, inten, hkl, recip, axis, r, imp_tt, imp_i,
        float(params.get("zero_shift", 0.0)),
        float(params.get("displacement_mm", 0.0)),
        float(params.get("radius_mm", 240.0)),
        float(wavelength), float(lam2), float(ratio),
        *(float(params[k]) for k in "UVWXY"),
        AUGMENT_WINDOW,
        float(params.get("background_level", 0.0)), float(c1), float(c2),
        float(params.get("background_decay", 0.0)),
        hump, float(hump_at[0]), float(hump_at[1]),
        counts,
    )  # fmt: skip
    if counts:
        y = np.random.default_rng(params.get("seed", 0)).poisson(y)
    window = params.get("window")
    w_lo, w_hi = (float(window[0]), float(window[1])) if window is not None else (0.0, 0.0)
    return kernel.finish(y, grid, window is not None, w_lo, w_hi)


def augmented_profile_reference(
    sticks, grid, params: dict, wavelength: float, *, lattice=None, ka2_wavelength=None
) -> np.ndarray:
    """:func:`augmented_profile` in numpy, one array operation per effect: the reference the
    compiled render is tested against (tests/xrd/test_augment.py), as pymatgen is for the sticks.
    """
    grid = np.asarray(grid, dtype=float)
    tt = np.asarray(sticks.two_theta, dtype=float)
    inten = np.asarray(sticks.intensity, dtype=float).copy()
    if lattice is not None and params.get("texture_r", 1.0) != 1.0:
        inten *= march_dollase(sticks.hkl, lattice, params["texture_axis"], params["texture_r"])
    # impurity reflections: a few weak lines of an unknown second phase
    imp_tt = np.asarray(params.get("impurity_two_theta", []), dtype=float)
    imp_i = np.asarray(params.get("impurity_intensity", []), dtype=float) * max(inten.max(), 1.0)
    tt = np.concatenate([tt, imp_tt])
    inten = np.concatenate([inten, imp_i])
    # peak shifts
    theta = np.radians(tt) / 2.0
    tt = tt + peak_shift(
        theta,
        params.get("zero_shift", 0.0),
        params.get("displacement_mm", 0.0),
        params.get("radius_mm", 240.0),
    )
    if params.get("ka2"):
        doublet = kalpha_doublet(wavelength, ka2_wavelength, params["ka2_ratio"])
        if doublet is not None:
            tt, inten = kalpha2_lines(tt, inten, doublet)
    fwhm, eta = tch_fwhm_eta(tt, params["U"], params["V"], params["W"], params["X"], params["Y"])
    y = pseudo_voigt_sum(grid, tt, inten, fwhm, eta, AUGMENT_WINDOW)
    top = y.max() if y.size and y.max() > 0 else 1.0
    y = y / top
    # background relative to the strongest point
    x = (grid - grid.min()) / max(np.ptp(grid), 1e-9)
    c1, c2 = params.get("background_poly", [0.0, 0.0])
    shape = background_shape(x, grid, c1, c2, params.get("background_decay", 0.0))
    bg = params.get("background_level", 0.0) * shape / max(shape.mean(), 1e-9)
    if params.get("hump_height", 0.0) > 0:
        bg = bg + amorphous_hump(
            grid, params["hump_height"], params["hump_center"], params["hump_width"]
        )
    y = y + bg
    if params.get("counts"):
        rng = np.random.default_rng(params.get("seed", 0))
        y = rng.poisson(np.maximum(y, 0.0) * params["counts"]).astype(float)
    window = params.get("window")
    if window is not None:
        y[(grid < window[0]) | (grid > window[1])] = 0.0
    top = y.max()
    return (y / top if top > 0 else y).astype(np.float32)


def settings_dict(settings: AugmentSettings | None = None) -> dict:
    """The ranges used, for the output file's attributes."""
    return asdict(settings or AugmentSettings())
