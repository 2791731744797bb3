"""Backgrounds against references: ALS (pybaselines) equals the sparse solve it replaced, and
SNIP (ours) equals pybaselines' away from the ends, where only the edge padding differs."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.xrd.peaks import als_background, snip_background


def _pattern():
    rng = np.random.default_rng(0)
    tt = np.arange(10.0, 90.0, 0.02)
    y = 300.0 + 4000.0 / tt
    for pos, amp in ((21.3, 1000.0), (35.0, 2500.0), (56.1, 800.0), (76.4, 90.0)):
        y += amp * np.exp(-0.5 * ((tt - pos) / 0.05) ** 2)
    return tt, rng.poisson(y).astype(float)


def _sparse_als(y, lam=1e7, p=0.01, iterations=10):
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    n = len(y)
    d = sparse.diags([1.0, -2.0, 1.0], [0, -1, -2], shape=(n, n - 2))
    penalty = lam * d.dot(d.transpose())
    w, z = np.ones(n), y
    for _ in range(iterations):
        z = spsolve(sparse.csc_matrix(sparse.spdiags(w, 0, n, n) + penalty), w * y)
        w = p * (y > z) + (1 - p) * (y < z)
    return z


def test_als_equals_the_sparse_solve():
    _, y = _pattern()
    assert np.allclose(als_background(y), _sparse_als(y), rtol=0, atol=1e-6 * y.max())


def test_als_settings_name_the_parameter():
    with pytest.raises(ValueError, match="p="):
        als_background(np.ones(20), p=1.5)
    with pytest.raises(ValueError, match="iterations"):
        als_background(np.ones(20), iterations=0)


def test_snip_equals_pybaselines_away_from_the_ends():
    from pybaselines.smooth import snip

    tt, y = _pattern()
    hw = 75
    v = np.log(np.log(np.sqrt(y + 1.0) + 1.0) + 1.0)
    lib = np.exp(np.exp(snip(v, hw, decreasing=True, pad_kwargs={"mode": "edge"})[0]) - 1) - 1
    lib = lib**2 - 1.0
    ours = snip_background(y, hw)
    inner = (tt > 15.0) & (tt < 85.0)
    assert np.allclose(ours[inner], lib[inner], rtol=0, atol=1e-3 * y.max())
