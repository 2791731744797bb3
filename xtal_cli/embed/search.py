"""Nearest neighbours in the embedding space (Euclidean, the distance the triplet loss shapes).

The triplet loss makes a few directions dominate Euclidean distances (the ones that tell one
pattern from another); :class:`Whitening` gives the leading principal directions equal weight
(Mahalanobis distance in that subspace), which brings materials with similar properties closer
(docs/benchmarks.md: k-NN band gap).

Exact search is one matrix-vector product with precomputed norms: a few milliseconds for tens of
thousands of 1024-d embeddings. Above ``HNSW_THRESHOLD`` rows (or when asked) an hnswlib graph
index is built once and saved beside the embeddings file (``<file>.hnsw`` + ``.hnsw.json``); it
is reused while the embeddings file is unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from xtal_cli.io.h5 import atomic_path

HNSW_THRESHOLD = 100_000


class Whitening:
    """PCA whitening (scikit-learn estimator style): centre, rotate onto the leading
    *n_components* principal directions and scale each to unit variance.

    Directions with variance below ``rtol`` times the largest are dropped rather than blown up
    (a set with fewer materials than dimensions has a null space).
    """

    def __init__(self, n_components: int = 128, rtol: float = 1e-6):
        self.n_components = n_components
        self.rtol = rtol

    def fit(self, x: np.ndarray) -> Whitening:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError("whitening needs at least 2 embeddings")
        self.mean_ = x.mean(axis=0)
        xc = x - self.mean_
        # exact eigenvectors (a randomised SVD misestimates the small variances whitening divides
        # by); through the covariance matrix when there are more rows than columns, the fast way
        if x.shape[0] >= x.shape[1]:
            var, vec = np.linalg.eigh(xc.T @ xc / (len(x) - 1))
            order = np.argsort(var)[::-1]
            var, components = var[order], vec[:, order].T
        else:
            _, sv, components = np.linalg.svd(xc, full_matrices=False)
            var = sv**2 / (len(x) - 1)
        var, components = var[: self.n_components], components[: self.n_components]
        keep = var > self.rtol * var[0]
        self.components_ = components[keep]
        self.scale_ = 1.0 / np.sqrt(var[keep])
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        return ((x - self.mean_) @ self.components_.T * self.scale_).astype(np.float32)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)


class ExactIndex:
    """Brute-force L2 search (float32 BLAS)."""

    kind = "exact"

    def __init__(self, embedding: np.ndarray):
        self.x = np.ascontiguousarray(embedding, dtype=np.float32)
        self.sq = np.einsum("ij,ij->i", self.x, self.x)

    def query(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances) of the *k* nearest rows to each row of *q*, nearest first."""
        q = np.atleast_2d(np.asarray(q, dtype=np.float32))
        k = min(k, len(self.x))
        d2 = self.sq[None, :] - 2.0 * (q @ self.x.T) + np.einsum("ij,ij->i", q, q)[:, None]
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(self.x) else None
        if part is None:
            part = np.tile(np.arange(len(self.x)), (len(q), 1))
        order = np.take_along_axis(d2, part, axis=1).argsort(axis=1)
        idx = np.take_along_axis(part, order, axis=1)
        dist = np.sqrt(np.clip(np.take_along_axis(d2, idx, axis=1), 0, None))
        return idx, dist


class HnswIndex:
    """Approximate search with hnswlib (HNSW graph, L2), saved and reloaded."""

    kind = "hnsw"

    def __init__(self, index, n: int):
        self.index = index
        self.n = n

    @classmethod
    def build(cls, embedding: np.ndarray, m: int = 16, ef_construction: int = 200, threads=1):
        import hnswlib

        n, dim = embedding.shape
        index = hnswlib.Index(space="l2", dim=dim)
        index.init_index(max_elements=n, ef_construction=ef_construction, M=m, random_seed=0)
        index.add_items(np.asarray(embedding, np.float32), np.arange(n), num_threads=threads)
        return cls(index, n)

    def save(self, path: Path, fingerprint: str) -> None:
        with atomic_path(path) as tmp:
            self.index.save_index(str(tmp))
        meta = {"n": self.n, "dim": self.index.dim, "fingerprint": fingerprint}
        with atomic_path(_meta_path(path)) as tmp:
            tmp.write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: Path, dim: int, n: int, fingerprint: str) -> HnswIndex | None:
        """The saved index, or None when missing or built from another embeddings file."""
        import hnswlib

        meta_path = _meta_path(path)
        if not (path.exists() and meta_path.exists()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if meta != {"n": n, "dim": dim, "fingerprint": fingerprint}:
            return None
        index = hnswlib.Index(space="l2", dim=dim)
        index.load_index(str(path), max_elements=n)
        return cls(index, n)

    def query(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.atleast_2d(np.asarray(q, dtype=np.float32))
        k = min(k, self.n)
        self.index.set_ef(max(64, 2 * k))
        idx, d2 = self.index.knn_query(q, k=k)
        return idx.astype(np.int64), np.sqrt(np.clip(d2, 0, None))


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def file_fingerprint(path: str | os.PathLike) -> str:
    """Size and modification time: cheap, and changes whenever ``embed`` rewrites the file."""
    st = Path(path).stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def open_index(
    embedding: np.ndarray,
    method: str = "auto",
    source: str | os.PathLike | None = None,
    variant: str = "",
) -> ExactIndex | HnswIndex:
    """An index over *embedding*; ``auto`` picks exact below ``HNSW_THRESHOLD`` rows.

    With *source* (the embeddings file) an HNSW index is saved as ``<source>.hnsw`` and reused;
    *variant* names an index over a transform of the file's embeddings
    (``<source>.<variant>.hnsw``, e.g. ``whitened``), so both can be kept.
    """
    if method == "auto":
        method = "hnsw" if len(embedding) >= HNSW_THRESHOLD else "exact"
    if method == "exact":
        return ExactIndex(embedding)
    if method != "hnsw":
        raise ValueError(f"unknown index {method!r}; use auto, exact or hnsw")
    if source is None:
        return HnswIndex.build(embedding, threads=os.cpu_count() or 1)
    path = Path(str(source) + (f".{variant}" if variant else "") + ".hnsw")
    fingerprint = file_fingerprint(source)
    index = HnswIndex.load(path, embedding.shape[1], len(embedding), fingerprint)
    if index is None:
        index = HnswIndex.build(embedding, threads=os.cpu_count() or 1)
        index.save(path, fingerprint)
    return index
