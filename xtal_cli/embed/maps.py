"""Maps of the embedding space: 2-D t-SNE coloured by a property, crystal system or element
presence; a periodic-table grid of per-element maps; PCA-based intrinsic dimension.

The intrinsic dimension counts the principal components needed to explain a fraction
(default 90 %) of the variance: of the whole set (global) and of each point's k = 25 nearest
neighbours (local; the mean over points is reported). A small local value in a large embedding
means materials lie on a low-dimensional manifold, which is what makes neighbours meaningful.
"""

from __future__ import annotations

import os
import re

import numpy as np

from xtal_cli.xrd.labels import CRYSTAL_SYSTEMS


def tsne_2d(embedding: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE (sklearn) after a PCA to at most 50 dimensions (faster, less noise)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(embedding, dtype=np.float32)
    n = len(x)
    if n < 5:
        raise ValueError(f"a map needs at least 5 embeddings, got {n}")
    if x.shape[1] > 50 and n > 50:
        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, (n - 1) / 3),
        init="pca",
        random_state=seed,
        learning_rate="auto",
    )
    return tsne.fit_transform(x)


def elements_of(formula: str) -> set[str]:
    """Element symbols of a formula such as ``LiCoO2`` (no pymatgen needed)."""
    return set(re.findall(r"[A-Z][a-z]?", str(formula)))


def _categorical_colors(values):
    import matplotlib

    cats = sorted({str(v) for v in values})
    cmap = matplotlib.colormaps["tab10" if len(cats) <= 10 else "tab20"]
    return cats, {c: cmap(i % cmap.N) for i, c in enumerate(cats)}


def plot_map(
    xy: np.ndarray,
    path: str | os.PathLike,
    *,
    values=None,
    color_by: str = "",
    element: str | None = None,
    formulas=None,
    title: str = "",
) -> None:
    """Scatter the 2-D map; numbers get a colour bar, text gets a legend, ``element`` highlights
    materials that contain it (needs *formulas*)."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    fig = Figure(figsize=(7, 6), dpi=130)
    ax = fig.subplots()
    size = max(1.0, min(12.0, 4000 / max(len(xy), 1)))
    if element is not None:
        has = np.array([element in elements_of(f) for f in formulas])
        ax.scatter(*xy[~has].T, s=size, c="#cccccc", lw=0, label=f"no {element}", rasterized=True)
        ax.scatter(*xy[has].T, s=size * 1.5, c="#d62728", lw=0, label=element, rasterized=True)
        ax.legend(markerscale=3, frameon=False)
    elif values is not None and np.asarray(values).dtype.kind in "fiu":
        v = np.asarray(values, dtype=float)
        ok = np.isfinite(v)
        ax.scatter(*xy[~ok].T, s=size, c="#dddddd", lw=0, rasterized=True)
        sc = ax.scatter(*xy[ok].T, s=size, c=v[ok], cmap="viridis", lw=0, rasterized=True)
        fig.colorbar(sc, ax=ax, label=color_by)
    elif values is not None:
        cats, colors = _categorical_colors(values)
        if set(cats) <= set(CRYSTAL_SYSTEMS):
            cats = [c for c in CRYSTAL_SYSTEMS if c in cats]
        vals = np.asarray([str(v) for v in values])
        for c in cats:
            sel = vals == c
            ax.scatter(*xy[sel].T, s=size, color=colors[c], lw=0, label=c, rasterized=True)
        ax.legend(markerscale=3, frameon=False, fontsize=8, loc="best")
    else:
        ax.scatter(*xy.T, s=size, c="#1f77b4", lw=0, rasterized=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(
        title or f"t-SNE of {len(xy)} embeddings" + (f" by {color_by}" if color_by else "")
    )
    fig.tight_layout()
    fig.savefig(path)


def _table_position(symbol: str) -> tuple[int, int] | None:
    """(row, column) of an element in the 18-column table; La-Lu and Ac-Lr in rows 8 and 9."""
    from pymatgen.core import Element

    try:
        el = Element(symbol)
    except ValueError:
        return None
    if el.is_lanthanoid:
        return 8, 2 + (el.Z - 57) + 1
    if el.is_actinoid:
        return 9, 2 + (el.Z - 89) + 1
    return el.row, el.group


def plot_element_grid(
    xy: np.ndarray, formulas, path: str | os.PathLike, min_count: int = 1
) -> list[str]:
    """A periodic table of small maps, one per element present: its materials in colour.

    Returns the elements drawn.
    """
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    sets = [elements_of(f) for f in formulas]
    counts: dict[str, int] = {}
    for s in sets:
        for e in s:
            counts[e] = counts.get(e, 0) + 1
    fig = Figure(figsize=(18 * 1.1, 9 * 1.1), dpi=110)
    axes = fig.subplots(9, 18)
    for ax in axes.ravel():
        ax.axis("off")
    drawn = []
    for el, count in sorted(counts.items()):
        pos = _table_position(el)
        if pos is None or count < min_count:
            continue
        ax = axes[pos[0] - 1, pos[1] - 1]
        ax.axis("on")
        has = np.array([el in s for s in sets])
        ax.scatter(*xy[~has].T, s=0.2, c="#dddddd", lw=0, rasterized=True)
        ax.scatter(*xy[has].T, s=0.6, c="#d62728", lw=0, rasterized=True)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{el} ({count})", fontsize=7, pad=1)
        drawn.append(el)
    fig.suptitle("Materials containing each element on the t-SNE map of the embedding space")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path)
    return drawn


def _n_components(eigenvalues: np.ndarray, threshold: float) -> int:
    ev = np.clip(np.sort(eigenvalues)[::-1], 0, None)
    total = ev.sum()
    if total <= 0:
        return 0
    return int(np.searchsorted(np.cumsum(ev) / total, threshold) + 1)


def intrinsic_dimension(
    embedding: np.ndarray,
    k: int = 25,
    threshold: float = 0.9,
    max_points: int = 5000,
    seed: int = 0,
) -> dict:
    """Global and local PCA intrinsic dimension (components explaining *threshold* variance).

    Local values are computed for up to *max_points* randomly chosen points (seeded), each on
    its *k* nearest neighbours. The rule is scikit-dimension's ``lPCA(ver="ratio",
    alphaRatio=threshold)``, which gives the same numbers on the same neighbourhoods; ours is
    kept because it is 2-3x faster on 27,000 x 1024 embeddings (one SVD per neighbourhood
    instead of a scikit-learn PCA fit; bench/results/libraries.json, docs/benchmarks.md).
    """
    from xtal_cli.embed.search import ExactIndex

    x = np.asarray(embedding, dtype=np.float64)
    n = len(x)
    if n <= k:
        raise ValueError(f"intrinsic dimension with k={k} needs more than {k} embeddings, got {n}")
    centred = x - x.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    global_id = _n_components(sv**2, threshold)
    rng = np.random.default_rng(seed)
    points = rng.choice(n, size=min(n, max_points), replace=False)
    index = ExactIndex(x.astype(np.float32))
    local = []
    for start in range(0, len(points), 256):
        idx, _ = index.query(x[points[start : start + 256]], k + 1)
        for row in idx:
            nb = x[row[1:]]  # the k neighbours, without the point itself
            s = np.linalg.svd(nb - nb.mean(axis=0), compute_uv=False)
            local.append(_n_components(s**2, threshold))
    local = np.asarray(local)
    return {
        "global": global_id,
        "local_mean": float(local.mean()),
        "local_median": float(np.median(local)),
        "local_std": float(local.std()),
        "k": k,
        "variance_threshold": threshold,
        "n_points": n,
        "n_local": len(local),
        "dim": x.shape[1],
    }
