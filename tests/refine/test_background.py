"""Every GSAS-II background type: shape, GSAS-II definitions, exact linear recovery."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.errors import XtalError
from xtal_cli.refine.background import TYPES, basis

X = np.arange(15.0, 150.0, 0.05)


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("n", [1, 2, 6, 15])
def test_background_basis_recovers_coefficients(kind, n):
    B = basis(kind, n, X, 1.5405)
    assert B.shape == (len(X), n) and np.all(np.isfinite(B))
    coef = np.linspace(100, 10, n)
    y = B @ coef
    fit = np.linalg.lstsq(B, y, rcond=None)[0]
    # the basis must be usable: the pattern it makes is reproduced (relative to its size; the
    # high Q^2 powers are as ill-conditioned here as in GSAS-II)
    assert np.linalg.norm(B @ fit - y) <= 1e-6 * np.linalg.norm(y)


def test_gsas2_definitions():
    t = -1 + 2 * (X - X[0]) / (X[-1] - X[0])
    np.testing.assert_allclose(basis("chebyschev", 3, X, 1.54)[:, 2], t**2)
    np.testing.assert_allclose(basis("chebyschev-1", 3, X, 1.54)[:, 2], 2 * t**2 - 1, atol=1e-12)
    np.testing.assert_allclose(
        basis("cosine", 2, X, 1.54)[:, 1], np.cos(np.radians(180 * X / X[-1]))
    )
    q = 4 * np.pi * np.sin(np.radians(X) / 2) / 1.54
    np.testing.assert_allclose(basis("Q^2 power series", 3, X, 1.54)[:, 2], q**4 / 2)
    np.testing.assert_allclose(basis("Q^-2 power series", 3, X, 1.54)[:, 2], 2 * q**-4)
    lin = basis("lin interpolate", 4, X, 1.54)
    np.testing.assert_allclose(lin.sum(axis=1), 1.0)  # partition of unity
    assert lin[0, 0] == 1 and lin[-1, -1] == 1


def test_bad_background_requests():
    with pytest.raises(XtalError, match="unknown background"):
        basis("spline", 3, X, 1.54)
    with pytest.raises(XtalError, match="coefficients"):
        basis("cosine", 0, X, 1.54)
