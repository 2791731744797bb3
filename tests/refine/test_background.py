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


def test_inv_interpolate_coefficients_sit_where_gsas2_puts_them():
    """GSAS-II lists inv-interpolate nodes as 1/linspace(1/x1, 1/x0) with the ends reset to x0
    and x1, so the middle coefficients run from the high-angle end down; scipy then sorts them
    with their nodes. Coefficient 1 therefore sits at the highest inner node."""
    import numpy as np

    from xtal_cli.refine.background import basis

    x = np.linspace(10.0, 110.0, 2001)
    B = basis("inv interpolate", 5, x, 1.54)
    peaks = [x[np.argmax(B[:, i])] for i in range(5)]
    assert peaks[0] == 10.0 and peaks[4] == 110.0
    assert peaks[1] > peaks[2] > peaks[3]  # reversed inner nodes, as GSAS-II's
    inner = 1.0 / np.linspace(1.0 / 110.0, 1.0 / 10.0, 5)[1:4]
    assert np.allclose(peaks[1:4], inner, atol=0.06)
    lin = basis("lin interpolate", 5, x, 1.54)
    assert [x[np.argmax(lin[:, i])] for i in range(5)] == sorted(x[np.argmax(lin, axis=0)])
