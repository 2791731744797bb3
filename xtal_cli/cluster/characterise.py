"""What distinguishes a cluster: each descriptor's distribution in the cluster against the set.

Effect size: the standardised mean difference, (cluster mean - set mean) / set standard
deviation (Cohen's d against the whole set, as the paper's figure 3b compares a cluster with
all materials). Test: two-sided Mann-Whitney U of the cluster against the other materials (no
normality assumed; descriptors are often skewed or discrete), with Benjamini-Hochberg
false-discovery-rate correction over all clusters x descriptors. A descriptor distinguishes a
cluster when q < ``alpha``; they are ranked by |effect size|.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Distinction:
    """One descriptor that sets a cluster apart."""

    name: str
    family: str
    effect_size: float  # (cluster mean - all mean) / all std
    q_value: float  # BH-corrected Mann-Whitney p
    cluster_median: float
    all_median: float

    def as_dict(self) -> dict:
        return {
            "descriptor": self.name,
            "family": self.family,
            "effect_size": round(self.effect_size, 4),
            "q_value": float(f"{self.q_value:.3g}"),
            "cluster_median": float(f"{self.cluster_median:.5g}"),
            "all_median": float(f"{self.all_median:.5g}"),
        }


def distinguishing(
    X: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    families: list[str],
    *,
    n_clusters: int,
    top: int = 8,
    alpha: float = 0.01,
) -> list[list[Distinction]]:
    """For each cluster, its *top* distinguishing descriptors (see the module docstring)."""
    from scipy.stats import false_discovery_control, mannwhitneyu

    X = np.asarray(X, dtype=np.float64)
    mean = np.nanmean(X, axis=0)
    std = np.nanstd(X, axis=0)
    varied = np.isfinite(std) & (std > 0)
    effects = np.zeros((n_clusters, X.shape[1]))
    pvalues = np.ones((n_clusters, X.shape[1]))
    for k in range(n_clusters):
        inside = labels == k
        if inside.sum() < 2 or (~inside).sum() < 2:
            continue
        a, b = X[inside][:, varied], X[~inside][:, varied]
        with np.errstate(all="ignore"):
            effects[k, varied] = (np.nanmean(a, axis=0) - mean[varied]) / std[varied]
            p = mannwhitneyu(a, b, axis=0, nan_policy="omit").pvalue
        pvalues[k, varied] = np.where(np.isfinite(p), p, 1.0)
    qvalues = false_discovery_control(pvalues.ravel(), method="bh").reshape(pvalues.shape)
    out = []
    for k in range(n_clusters):
        inside = labels == k
        order = np.argsort(-np.abs(np.nan_to_num(effects[k])))
        picked = []
        for j in order:
            if len(picked) == top:
                break
            if not varied[j] or qvalues[k, j] >= alpha or not np.isfinite(effects[k, j]):
                continue
            picked.append(
                Distinction(
                    name=names[j],
                    family=families[j],
                    effect_size=float(effects[k, j]),
                    q_value=float(qvalues[k, j]),
                    cluster_median=float(np.nanmedian(X[inside, j])),
                    all_median=float(np.nanmedian(X[:, j])),
                )
            )
        out.append(picked)
    return out


__all__ = ["Distinction", "distinguishing"]
