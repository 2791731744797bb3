"""Every GSAS-II background function, as a basis matrix (the background is linear in them).

The definitions follow GSAS-II's ``getBackground`` for constant-wavelength data, x = 2θ in
degrees over the refined range [x0, x1]:

* ``chebyschev``: Σ c_i t^i with t = 2(x − x0)/(x1 − x0) − 1 (GSAS-II's name; a power series)
* ``chebyschev-1``: Σ c_i T_i(t), true Chebyshev polynomials
* ``cosine``: Σ c_i cos(180° · i · x / x1)
* ``Q^2 power series``: c0 + Σ c_i Q^{2i}/i!;  ``Q^-2 power series``: c0 + Σ c_i i! Q^{-2i}
* ``lin interpolate``, ``inv interpolate``, ``log interpolate``: piecewise-linear between n
  nodes spaced evenly in x, in 1/x or in log x, each coefficient at the node GSAS-II gives it.
"""

from __future__ import annotations

import math

import numpy as np

from xtal_cli.errors import XtalError

TYPES = (
    "chebyschev",
    "chebyschev-1",
    "cosine",
    "Q^2 power series",
    "Q^-2 power series",
    "lin interpolate",
    "inv interpolate",
    "log interpolate",
)
MAX_TERMS = 36  # GSAS-II allows up to 36


def basis(kind: str, n: int, x: np.ndarray, wavelength: float) -> np.ndarray:
    """(len(x), n) matrix B with background = B @ coefficients."""
    if kind not in TYPES:
        raise XtalError(f"unknown background type {kind!r}; use one of {', '.join(TYPES)}")
    if not 1 <= n <= MAX_TERMS:
        raise XtalError(f"background needs 1 to {MAX_TERMS} coefficients, not {n}")
    x = np.asarray(x, dtype=float)
    x0, x1 = x[0], x[-1]
    B = np.zeros((len(x), n))
    if kind in ("chebyschev", "chebyschev-1"):
        t = -1.0 + 2.0 * (x - x0) / (x1 - x0)
        for i in range(n):
            B[:, i] = t**i if kind == "chebyschev" else np.cos(i * np.arccos(np.clip(t, -1, 1)))
    elif kind == "cosine":
        for i in range(n):
            B[:, i] = np.cos(np.radians(180.0 * x * i / x1))
    elif kind in ("Q^2 power series", "Q^-2 power series"):
        q = 4 * np.pi * np.sin(np.radians(x) / 2) / wavelength
        B[:, 0] = 1.0
        qt = np.ones_like(x)
        for i in range(1, n):
            qt = qt * (i * q**-2 if "-2" in kind else q**2 / i)
            B[:, i] = qt
    else:
        if n == 1:
            B[:, 0] = 1.0
        elif n == 2:
            B[:, 1] = (x - x0) / (x1 - x0)
            B[:, 0] = 1.0 - B[:, 1]
        else:
            if kind == "lin interpolate":
                nodes = np.linspace(x0, x1, n)
            elif kind == "inv interpolate":
                nodes = 1.0 / np.linspace(1.0 / x1, 1.0 / x0, n)
            else:
                nodes = np.exp(np.linspace(math.log(x0), math.log(x1), n))
            # coefficient i belongs to node i as GSAS-II lists them: for "inv interpolate" its
            # nodes run high to low between the two ends (1/linspace reversed, then the ends
            # set to x0 and x1), and scipy's interp1d sorts them with their coefficients
            nodes[0], nodes[-1] = x0, x1
            order = np.argsort(nodes, kind="stable")
            eye = np.eye(n)
            for i in range(n):
                B[:, i] = np.interp(x, nodes[order], eye[i][order])
    return B


def initial_coefficients(n: int) -> np.ndarray:
    """GSAS-II's starting values: 1.0 then zeros."""
    c = np.zeros(n)
    c[0] = 1.0
    return c
