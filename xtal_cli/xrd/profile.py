"""Peak shapes on a regular 2θ grid: what a measured pattern looks like.

Sticks become area-normalised pseudo-Voigt peaks (so the integrated intensity of each reflection
is kept) with a fixed FWHM or Caglioti's FWHM² = U tan²θ + V tanθ + W (deg²); optionally the Kα2
doublet, a background and Poisson counting noise. Profiles are returned scaled to a maximum of 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

_LN2 = np.log(2.0)


@dataclass(frozen=True)
class ProfileSettings:
    """How to draw a profile. ``caglioti`` (U, V, W in deg²) wins over ``fwhm`` when given."""

    two_theta_min: float = 5.0
    two_theta_max: float = 90.0
    step: float = 0.02
    fwhm: float = 0.1  # degrees 2θ
    caglioti: tuple[float, float, float] | None = None
    eta: float = 0.5  # Lorentzian fraction of the pseudo-Voigt
    ka2: tuple[float, float, float] | None = None  # (λ1, λ2, I2/I1)
    noise_counts: float | None = None  # peak maximum in counts before Poisson noise
    background: float = 0.0  # flat background as a fraction of the maximum

    def grid(self) -> np.ndarray:
        n = int(round((self.two_theta_max - self.two_theta_min) / self.step)) + 1
        return self.two_theta_min + self.step * np.arange(n)

    def as_attrs(self) -> dict:
        """Settings as HDF5 attributes (prefixed ``profile_``)."""
        out = {}
        for key, value in asdict(self).items():
            if value is not None:
                out[f"profile_{key}"] = value
        return out


def caglioti_fwhm(two_theta, u: float, v: float, w: float) -> np.ndarray:
    """FWHM (deg) from Caglioti's U, V, W (deg²); clipped to stay positive."""
    t = np.tan(np.radians(np.asarray(two_theta, dtype=float)) / 2.0)
    return np.sqrt(np.maximum(u * t * t + v * t + w, 1e-8))


def kalpha2_lines(two_theta, intensity, ka2: tuple[float, float, float]):
    """Add the Kα2 line of every reflection: sin θ2 = (λ2/λ1) sin θ1, intensity × ratio."""
    lam1, lam2, ratio = ka2
    two_theta = np.asarray(two_theta, dtype=float)
    s2 = np.sin(np.radians(two_theta) / 2.0) * lam2 / lam1
    ok = s2 < 1.0
    tt2 = 2.0 * np.degrees(np.arcsin(s2[ok]))
    return (
        np.concatenate([two_theta, tt2]),
        np.concatenate([np.asarray(intensity, dtype=float), np.asarray(intensity)[ok] * ratio]),
    )


def pseudo_voigt_sum(grid, centers, areas, fwhm, eta: float = 0.5, window: float = 30.0):
    """Sum of area-normalised pseudo-Voigt peaks on *grid*, each evaluated within ±window·FWHM."""
    grid = np.asarray(grid, dtype=float)
    centers = np.asarray(centers, dtype=float)
    areas = np.asarray(areas, dtype=float)
    fwhm = np.broadcast_to(np.asarray(fwhm, dtype=float), centers.shape)
    # one compiled pass over all peaks (issue 6); numba loads only when profiles are drawn
    from xtal_cli.xrd.fast_profile import pseudo_voigt_sum_fast

    return pseudo_voigt_sum_fast(grid, centers, areas, fwhm, eta, window)


def render_profile(
    two_theta, intensity, settings: ProfileSettings, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Profile (float32, max 1) of sticks at *two_theta* with *intensity* on ``settings.grid()``."""
    grid = settings.grid()
    tt, inten = np.asarray(two_theta, dtype=float), np.asarray(intensity, dtype=float)
    if settings.ka2 is not None:
        tt, inten = kalpha2_lines(tt, inten, settings.ka2)
    if settings.caglioti is not None:
        fwhm = caglioti_fwhm(tt, *settings.caglioti)
    else:
        fwhm = np.full(tt.shape, settings.fwhm)
    y = pseudo_voigt_sum(grid, tt, inten, fwhm, settings.eta)
    peak = y.max() if y.size and y.max() > 0 else 1.0
    y = y / peak + settings.background
    if settings.noise_counts:
        rng = rng or np.random.default_rng(0)
        y = rng.poisson(y * settings.noise_counts).astype(float)
    top = y.max()
    return (y / top if top > 0 else y).astype(np.float32)
