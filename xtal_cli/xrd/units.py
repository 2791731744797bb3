"""Wavelengths and conversions between 2θ (degrees), d (Å), 1/d, 1/d² and Q = 2π/d (Å⁻¹)."""

from __future__ import annotations

import numpy as np

from xtal_cli.errors import XtalError

# Characteristic X-ray lines in Å (the values pymatgen's XRDCalculator uses, so names agree).
# "Ka" is the intensity-weighted Kα1/Kα2 mean (2:1).
WAVELENGTHS: dict[str, float] = {
    "CuKa": 1.54184, "CuKa2": 1.54439, "CuKa1": 1.54056, "CuKb1": 1.39222,
    "MoKa": 0.71073, "MoKa2": 0.71359, "MoKa1": 0.70930, "MoKb1": 0.63229,
    "CrKa": 2.29100, "CrKa2": 2.29361, "CrKa1": 2.28970, "CrKb1": 2.08487,
    "FeKa": 1.93735, "FeKa2": 1.93998, "FeKa1": 1.93604, "FeKb1": 1.75661,
    "CoKa": 1.79026, "CoKa2": 1.79285, "CoKa1": 1.78896, "CoKb1": 1.63079,
    "AgKa": 0.560885, "AgKa2": 0.563813, "AgKa1": 0.559421, "AgKb1": 0.497082,
}  # fmt: skip

UNITS = ("2theta", "d", "inv-d", "inv-d2", "q")

# Laboratory/synchrotron X-rays: anything outside this is almost surely a typo (nm, keV, ...).
_MIN_WAVELENGTH, _MAX_WAVELENGTH = 0.05, 5.0


def resolve_wavelength(value: str | float) -> tuple[float, str]:
    """Return ``(wavelength in Å, label)`` for a line name (``CuKa1``) or a number in Å."""
    if isinstance(value, (int, float)):
        wl, label = float(value), f"{float(value):g}"
    else:
        text = str(value).strip()
        key = {k.lower(): k for k in WAVELENGTHS}.get(text.lower().replace("α", "a"))
        if key is not None:
            return WAVELENGTHS[key], key
        try:
            wl, label = float(text), text
        except ValueError:
            names = ", ".join(WAVELENGTHS)
            raise XtalError(
                f"unknown wavelength {text!r}; give a value in Å or one of {names}"
            ) from None
    if not np.isfinite(wl) or not _MIN_WAVELENGTH <= wl <= _MAX_WAVELENGTH:
        raise XtalError(
            f"wavelength {wl:g} Å is outside {_MIN_WAVELENGTH}-{_MAX_WAVELENGTH} Å; "
            "give it in Å (e.g. 1.5406 for Cu Kα1)"
        )
    return wl, label


def two_theta_to_d(two_theta, wavelength: float):
    """Bragg's law: d = λ / (2 sin θ)."""
    return wavelength / (2.0 * np.sin(np.radians(np.asarray(two_theta, dtype=float)) / 2.0))


def d_to_two_theta(d, wavelength: float):
    """Inverse of :func:`two_theta_to_d`; NaN where the reflection is unreachable (λ > 2d)."""
    s = wavelength / (2.0 * np.asarray(d, dtype=float))
    with np.errstate(invalid="ignore"):
        return np.where(s <= 1.0, 2.0 * np.degrees(np.arcsin(np.minimum(s, 1.0))), np.nan)


def from_two_theta(two_theta, wavelength: float, unit: str):
    """Convert 2θ (degrees) to *unit* (one of :data:`UNITS`)."""
    two_theta = np.asarray(two_theta, dtype=float)
    if unit == "2theta":
        return two_theta.copy()
    s = np.sin(np.radians(two_theta) / 2.0)  # = λ / 2d
    if unit == "d":
        with np.errstate(divide="ignore"):
            return wavelength / (2.0 * s)
    if unit == "inv-d":
        return 2.0 * s / wavelength
    if unit == "inv-d2":
        return (2.0 * s / wavelength) ** 2
    if unit == "q":
        return 4.0 * np.pi * s / wavelength
    raise XtalError(f"unknown unit {unit!r}; use one of {', '.join(UNITS)}")


def to_two_theta(values, wavelength: float, unit: str):
    """Convert *unit* values back to 2θ (degrees) for *wavelength*; NaN where unreachable."""
    values = np.asarray(values, dtype=float)
    if unit == "2theta":
        return values.copy()
    if unit == "d":
        d = values
    elif unit == "inv-d":
        d = 1.0 / values
    elif unit == "inv-d2":
        d = 1.0 / np.sqrt(values)
    elif unit == "q":
        d = 2.0 * np.pi / values
    else:
        raise XtalError(f"unknown unit {unit!r}; use one of {', '.join(UNITS)}")
    return d_to_two_theta(d, wavelength)


def is_wavelength_free(unit: str) -> bool:
    """Units in which one model serves data measured at any wavelength."""
    return unit != "2theta"
