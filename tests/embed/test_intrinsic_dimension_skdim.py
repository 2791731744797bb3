"""intrinsic_dimension follows scikit-dimension's lPCA 'ratio' rule (same numbers, kept ours
for speed: docs/benchmarks.md, "Maintained libraries vs our own")."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.embed.maps import intrinsic_dimension


def test_global_and_local_equal_skdim_lpca_ratio():
    lpca = pytest.importorskip("skdim.id").lPCA
    from xtal_cli.embed.search import ExactIndex

    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(64, 64)))
    x = np.pad(rng.normal(size=(400, 5)) * [1, 0.8, 0.6, 0.4, 0.2], ((0, 0), (0, 59))) @ q
    x += 0.01 * rng.normal(size=x.shape)
    ours = intrinsic_dimension(x, k=25, threshold=0.9, max_points=100, seed=3)
    est = lpca(ver="ratio", alphaRatio=0.9)
    assert ours["global"] == est.fit(x).dimension_
    points = np.random.default_rng(3).choice(len(x), size=100, replace=False)
    idx, _ = ExactIndex(x.astype(np.float32)).query(x[points], 26)
    local = est.fit_pw(x, precomputed_knn=idx[:, 1:], n_neighbors=25).dimension_pw_
    assert ours["local_mean"] == pytest.approx(float(np.mean(local)), rel=1e-12)
    assert ours["local_std"] == pytest.approx(float(np.std(local)), rel=1e-12, abs=1e-12)
