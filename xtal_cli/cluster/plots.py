"""PNG figures of a clustering: the property per cluster, the z-space map, and a cluster's
distinguishing descriptors against the whole set (as the paper's figure 3b)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xtal_cli.cluster.run import ClusterResult


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    return Figure(figsize=(width, height), dpi=120, layout="constrained")


def plot_property(result: ClusterResult, path: str | Path) -> Path:
    """Box plots of each property per cluster (clusters numbered from the highest mean)."""
    props = result.settings.properties
    k = result.settings.n_clusters
    fig = _figure(max(6.0, 0.4 * k + 2), 2.8 * len(props))
    for j, name in enumerate(props):
        ax = fig.add_subplot(len(props), 1, j + 1)
        data = [result.y[result.labels == c, j] for c in range(1, k + 1)]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, k + 1), [f"{c}\n({len(d)})" for c, d in enumerate(data, 1)])
        ax.axhline(np.mean(result.y[:, j]), color="grey", lw=0.8, ls="--", label="all")
        ax.set_ylabel(name)
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("cluster (materials)")
    fig.suptitle("Property per z-space cluster")
    fig.savefig(path)
    return Path(path)


def plot_map(result: ClusterResult, path: str | Path) -> Path | None:
    """The 2-D t-SNE map of z space coloured by cluster and by each property."""
    import matplotlib

    if result.map_xy is None:
        return None
    drawn = np.isfinite(result.map_xy).all(axis=1)
    xy = result.map_xy[drawn]
    props = result.settings.properties
    fig = _figure(5.0 * (1 + len(props)), 4.6)
    ax = fig.add_subplot(1, 1 + len(props), 1)
    k = result.settings.n_clusters
    cmap = matplotlib.colormaps["tab20"]
    labels = result.labels[drawn]
    ax.scatter(xy[:, 0], xy[:, 1], c=[cmap((c - 1) % 20) for c in labels], s=4, lw=0)
    for c in range(1, k + 1):
        if (labels == c).any():
            cx, cy = np.median(xy[labels == c], axis=0)
            ax.annotate(str(c), (cx, cy), fontsize=8, ha="center", weight="bold")
    ax.set_title("z space (t-SNE), by cluster")
    for j, name in enumerate(props):
        ax = fig.add_subplot(1, 1 + len(props), j + 2)
        art = ax.scatter(xy[:, 0], xy[:, 1], c=result.y[drawn, j], s=4, lw=0, cmap="viridis")
        fig.colorbar(art, ax=ax, label=name)
        ax.set_title(f"by {name}")
    for ax in fig.axes:
        if ax.get_label() != "<colorbar>":
            ax.set_xticks([])
            ax.set_yticks([])
    fig.savefig(path)
    return Path(path)


def plot_descriptors(result: ClusterResult, cluster: int, path: str | Path) -> Path | None:
    """Histograms of *cluster*'s six most distinguishing descriptors, cluster against all."""
    found = result.clusters[cluster - 1]["distinguishing"][:6]
    if not found:
        return None
    inside = result.labels == cluster
    cols = 3
    rows = int(np.ceil(len(found) / cols))
    fig = _figure(4.0 * cols, 3.0 * rows)
    for i, d in enumerate(found):
        ax = fig.add_subplot(rows, cols, i + 1)
        values = result.values[:, result.names.index(d["descriptor"])]
        finite = np.isfinite(values)
        bins = np.histogram_bin_edges(values[finite], bins=30)
        ax.hist(values[finite], bins=bins, density=True, color="lightgrey", label="all")
        ax.hist(values[finite & inside], bins=bins, density=True, alpha=0.7,
                color="C3", label=f"cluster {cluster}")  # fmt: skip
        ax.set_title(f"{d['descriptor']}\nd = {d['effect_size']:+.2f}", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.axes[0].legend(fontsize=7)
    fig.suptitle(f"What distinguishes cluster {cluster} (cluster against all materials)")
    fig.savefig(path)
    return Path(path)


__all__ = ["plot_descriptors", "plot_map", "plot_property"]
