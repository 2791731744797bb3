"""The :class:`Sticks` record every sticks engine returns.

Its own module so that the engines (:mod:`xtal_cli.xrd.fast`, :mod:`xtal_cli.xrd.fast_torch`) and
the engine registry (:mod:`xtal_cli.xrd.sticks`, which loads them lazily) share it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Sticks:
    """Powder reflections, sorted by 2θ; intensities scaled so the strongest is 100."""

    two_theta: np.ndarray  # degrees
    intensity: np.ndarray
    hkl: np.ndarray  # (M, 3) int, the first member of each merged family
    d: np.ndarray  # Å

    def __len__(self) -> int:
        return len(self.two_theta)
