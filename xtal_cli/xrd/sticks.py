"""Reflections ("sticks") of a crystal structure: 2θ positions, intensities and Miller indices.

One function, :func:`compute_sticks`, hides the engine so it can be swapped. ``pymatgen`` is the
reference (pymatgen's :class:`XRDCalculator`); other engines must reproduce it (docs/engines.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xtal_cli.xrd.reflections import Sticks

__all__ = ["DEFAULT_ENGINE", "ENGINES", "Sticks", "compute_sticks"]


def _pymatgen_sticks(structure, wavelength: float, two_theta_range: tuple[float, float]) -> Sticks:
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    pattern = XRDCalculator(wavelength=wavelength).get_pattern(
        structure, scaled=True, two_theta_range=two_theta_range
    )
    # pymatgen gives hexagonal families as (h k i l); keep (h k l).
    first = [tuple(fam[0]["hkl"]) for fam in pattern.hkls]
    hkl = np.array([(h[0], h[1], h[-1]) for h in first], dtype=np.int32).reshape(-1, 3)
    return Sticks(
        two_theta=np.asarray(pattern.x, dtype=np.float64),
        intensity=np.asarray(pattern.y, dtype=np.float64),
        hkl=hkl,
        d=np.asarray(pattern.d_hkls, dtype=np.float64),
    )


def _fast_sticks(structure, wavelength: float, two_theta_range: tuple[float, float]) -> Sticks:
    # imported here: numba and the compiled kernels load only when the engine is used
    from xtal_cli.xrd.fast import fast_sticks

    return fast_sticks(structure, wavelength, two_theta_range)


# name -> function(structure, wavelength Å, (2θ min, 2θ max)) -> Sticks
ENGINES: dict[str, Callable[..., Sticks]] = {"pymatgen": _pymatgen_sticks, "fast": _fast_sticks}
DEFAULT_ENGINE = "fast"  # equals pymatgen: tests/xrd/test_engines.py, docs/engines.md


def compute_sticks(
    structure,
    wavelength: float,
    two_theta_range: tuple[float, float] = (0.0, 90.0),
    engine: str = DEFAULT_ENGINE,
) -> Sticks:
    """Reflections of *structure* (a pymatgen Structure) for *wavelength* (Å) in the 2θ range."""
    try:
        fn = ENGINES[engine]
    except KeyError:
        raise ValueError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}") from None
    return fn(structure, wavelength, two_theta_range)
