"""Peak shapes on a regular 2θ grid: what a measured pattern looks like.

Sticks become area-normalised pseudo-Voigt peaks (so the integrated intensity of each reflection
is kept) with a fixed FWHM or Caglioti's FWHM² = U tan²θ + V tanθ + W (deg²); optionally the Kα2
doublet, a background and Poisson counting noise. Profiles are returned scaled to a maximum of 1.
The line shape itself (pseudo-Voigt, Caglioti, Kα2) is :mod:`xtal_cli.xrd.lineshape`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from xtal_cli.errors import ParameterError
from xtal_cli.xrd.lineshape import caglioti_fwhm, kalpha2_lines, pseudo_voigt_sum

PROFILE_WINDOW = 30.0  # each peak is drawn within ±30 FWHM of its centre


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

    def __post_init__(self):
        """Raise :class:`ParameterError` naming the first field with a value it cannot take."""
        if not (np.isfinite(self.step) and self.step > 0):
            raise ParameterError("step", self.step, "must be positive (degrees)")
        if not (np.isfinite(self.fwhm) and self.fwhm > 0):
            raise ParameterError("fwhm", self.fwhm, "must be positive (degrees)")
        if not 0 <= self.eta <= 1:
            raise ParameterError("eta", self.eta, "must be within 0-1 (the Lorentzian fraction)")
        if not np.isfinite(self.two_theta_min):
            raise ParameterError("two_theta_min", self.two_theta_min, "must be a number (degrees)")
        if not (np.isfinite(self.two_theta_max) and self.two_theta_min < self.two_theta_max):
            raise ParameterError(
                "two_theta_max",
                self.two_theta_max,
                f"must be above the lowest 2θ ({self.two_theta_min:g}°)",
            )
        if self.caglioti is not None and not _three_numbers(self.caglioti):
            raise ParameterError("caglioti", self.caglioti, "give three numbers U, V, W (deg²)")
        if self.ka2 is not None and not _three_numbers(self.ka2):
            raise ParameterError("ka2", self.ka2, "give (λ1, λ2, I2/I1), or None for no Kα2")
        if self.noise_counts is not None and not self.noise_counts >= 0:
            raise ParameterError(
                "noise_counts",
                self.noise_counts,
                "must be a positive count, or 0 or None for no noise",
            )
        if not self.background >= 0:
            raise ParameterError("background", self.background, "must be zero or positive")

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


def _three_numbers(value) -> bool:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return arr.shape == (3,) and bool(np.all(np.isfinite(arr)))


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
    y = pseudo_voigt_sum(grid, tt, inten, fwhm, settings.eta, PROFILE_WINDOW)
    peak = y.max() if y.size and y.max() > 0 else 1.0
    y = y / peak + settings.background
    if settings.noise_counts:
        rng = rng or np.random.default_rng(0)
        y = rng.poisson(y * settings.noise_counts).astype(float)
    top = y.max()
    return (y / top if top > 0 else y).astype(np.float32)
