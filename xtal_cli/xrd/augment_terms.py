"""The effects of :mod:`xtal_cli.xrd.augment` as plain arithmetic on arrays or scalars.

The numpy reference (``augmented_profile_reference``) applies them to whole arrays and the fused
kernel (:mod:`xtal_cli.xrd._augment_kernel`) compiles these same functions, so both compute one
definition. Kept apart from ``augment`` so that the kernel does not import the module that
imports it.
"""

from __future__ import annotations

import numpy as np


def march_dollase_weight(cos2, r: float):
    """March–Dollase P(α) = (r² cos²α + sin²α / r)^(−3/2) from cos²α."""
    return (r * r * cos2 + (1.0 - cos2) / r) ** -1.5


def peak_shift(theta, zero_shift: float, displacement_mm: float, radius_mm: float):
    """Δ2θ (deg) of a peak at θ (rad): zero shift z − 2 s cosθ / R (specimen displacement s)."""
    return zero_shift - np.degrees(2.0 * displacement_mm * np.cos(theta) / radius_mm)


def background_shape(x, grid, c1: float, c2: float, decay: float):
    """Unscaled background at 2θ = *grid* (x: 2θ mapped onto 0–1): a quadratic in x floored at
    0.1, plus the low-angle decay (air and holder scatter)."""
    shape = 1.0 + c1 * (x - 0.5) + 2.0 * c2 * (x - 0.5) ** 2
    return np.maximum(shape, 0.1) + decay * np.exp(-grid / 8.0)


def amorphous_hump(grid, height: float, center: float, width: float):
    """Gaussian hump of an amorphous phase or holder (height relative to the strongest point)."""
    return height * np.exp(-0.5 * ((grid - center) / width) ** 2)
