"""Exact and HNSW search, the saved index, intrinsic dimension and scan resampling."""

import numpy as np

from xtal_cli.embed.maps import intrinsic_dimension
from xtal_cli.embed.search import ExactIndex, HnswIndex, Whitening, open_index


def test_exact_search_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 32)).astype(np.float32)
    q = rng.normal(size=(3, 32)).astype(np.float32)
    idx, dist = ExactIndex(x).query(q, 7)
    full = np.linalg.norm(x[None] - q[:, None], axis=2)
    assert np.array_equal(idx, np.argsort(full, axis=1)[:, :7])
    assert np.allclose(dist, np.sort(full, axis=1)[:, :7], rtol=1e-4)


def test_hnsw_index_is_saved_reused_and_accurate(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 16)).astype(np.float32)
    source = tmp_path / "emb.h5"
    source.write_bytes(b"stand-in for the embeddings file")
    index = open_index(x, "hnsw", source)
    saved = tmp_path / "emb.h5.hnsw"
    assert saved.exists()
    stamp = saved.stat().st_mtime_ns
    again = open_index(x, "hnsw", source)
    assert isinstance(again, HnswIndex) and saved.stat().st_mtime_ns == stamp
    q = x[:50] + 0.01
    approx, _ = index.query(q, 10)
    exact, _ = ExactIndex(x).query(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx, exact)])
    assert recall > 0.95
    # an index over a transform of the same file is kept beside it, not in its place
    open_index(x[:, :8], "hnsw", source, variant="whitened")
    assert (tmp_path / "emb.h5.whitened.hnsw").exists() and saved.stat().st_mtime_ns == stamp


def test_whitening_gives_unit_covariance_and_mahalanobis_neighbours():
    rng = np.random.default_rng(3)
    # one direction 100x wider than the others: Euclidean neighbours follow it alone
    x = rng.normal(size=(3000, 8)) * np.array([100.0, 1, 1, 1, 1, 1, 1, 1])
    w = Whitening(n_components=8).fit(x)
    z = w.transform(x)
    assert np.allclose(np.cov(z.T), np.eye(8), atol=0.02)
    # distances in the whitened space are Mahalanobis distances
    diff = x[1] - x[0]
    maha = np.sqrt(diff @ np.linalg.inv(np.cov(x.T)) @ diff)
    assert np.isclose(np.linalg.norm(z[1] - z[0]), maha, rtol=1e-3)
    # fewer components than asked keep the leading directions; a null space is dropped, not
    # divided by zero
    assert Whitening(n_components=3).fit(x).transform(x).shape == (3000, 3)
    flat = np.c_[x[:, :2], np.zeros((3000, 6))]
    assert np.isfinite(Whitening(n_components=8).fit_transform(flat)).all()
    assert Whitening(n_components=8).fit(flat).components_.shape[0] == 2


def test_intrinsic_dimension_of_a_plane_in_high_dimensions():
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.normal(size=(64, 3)))[0]
    x = rng.normal(size=(600, 3)) @ basis.T
    res = intrinsic_dimension(x, k=25, threshold=0.95)
    assert res["global"] == 3 and res["local_median"] <= 3
    noise = rng.normal(size=(600, 64))
    assert intrinsic_dimension(noise, k=25)["global"] > 30


def test_measured_scan_is_converted_to_the_model_wavelength():
    from xtal_cli.embed.infer import resample_scan
    from xtal_cli.embed.models import EmbedConfig
    from xtal_cli.io.scans import Scan

    cfg = EmbedConfig(grid_min=10, grid_max=110, grid_points=5001, wavelength=1.54184)
    d = 2.0  # Å: Mo Kα 2θ = 20.40°, Cu Kα 2θ = 45.31°
    tt = np.linspace(5, 60, 5501)
    centre = np.degrees(2 * np.arcsin(0.70932 / (2 * d)))
    scan = Scan(tt, 100 + 1000 * np.exp(-0.5 * ((tt - centre) / 0.05) ** 2), wavelength=0.70932)
    prof = resample_scan(scan, cfg)
    grid = np.linspace(10, 110, 5001)
    assert prof.max() == 1.0
    assert abs(grid[np.argmax(prof)] - np.degrees(2 * np.arcsin(1.54184 / (2 * d)))) < 0.05
    assert prof[grid < 40].max() < 0.05  # flat background removed


def test_maps_by_crystal_system_and_element(tmp_path):
    from xtal_cli.embed.maps import plot_map

    rng = np.random.default_rng(3)
    xy = rng.normal(size=(60, 2))
    systems = np.array(["cubic", "hexagonal", "triclinic"] * 20, dtype=object)
    formulas = ["LiCoO2", "NaCl", "Si"] * 20
    plot_map(xy, tmp_path / "cs.png", values=systems, color_by="crystal_system")
    plot_map(xy, tmp_path / "li.png", element="Li", formulas=formulas)
    assert (tmp_path / "cs.png").stat().st_size > 5000 and (tmp_path / "li.png").exists()
