"""The metric-learned similarity of CSPML (Kusaba et al. 2022): a binary classifier that reads
the absolute difference of two compositions' standardised descriptors and says whether their
stable structures are the same prototype.

Pairs are drawn inside a stoichiometry type (only those are ever compared at query time): for
every composition up to ``n_pairs`` partners of its prototype and as many of other prototypes,
then the larger class is cut to the size of the smaller, as CSPML trains on balanced pairs. The
classifier is a random forest kept as a :class:`~xtal_cli.symmetry.forest.CompactForest` (plain
arrays in the model file, numba traversal at query time); CSPML's own ensemble of neural
networks plays the same role.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xtal_cli.errors import ParameterError


@dataclass(frozen=True)
class PairSettings:
    """How the pair classifier is trained; checked on construction."""

    n_pairs: int = 6  # partners of each kind per composition
    n_estimators: int = 100
    min_samples_leaf: int = 2
    max_features: float = 0.3

    def __post_init__(self):
        if self.n_pairs < 1:
            raise ParameterError("n_pairs", self.n_pairs, "must be at least 1")
        if self.n_estimators < 1:
            raise ParameterError("n_estimators", self.n_estimators, "must be at least 1")
        if self.min_samples_leaf < 1:
            raise ParameterError("min_samples_leaf", self.min_samples_leaf, "must be at least 1")
        if not 0 < self.max_features <= 1:
            raise ParameterError("max_features", self.max_features, "must be in (0, 1]")


class Standardiser:
    """Column means and spreads of the training descriptors; NaN (an element without a Magpie
    value) becomes the mean, 0 after scaling."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray):
        self.mean, self.scale = np.asarray(mean, float), np.asarray(scale, float)

    @classmethod
    def fit(cls, X: np.ndarray) -> Standardiser:
        mean = np.nanmean(X, axis=0)
        scale = np.nanstd(X, axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
        return cls(mean, scale)

    def transform(self, X: np.ndarray) -> np.ndarray:
        Z = (np.asarray(X, float) - self.mean) / self.scale
        return np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def pair_features(za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """|za - zb| per descriptor: CSPML's pair representation (symmetric in the two)."""
    return np.abs(np.asarray(za, np.float32) - np.asarray(zb, np.float32))


def sample_pairs(
    types: np.ndarray, prototypes: np.ndarray, n_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced ``(i, j, same)`` pairs inside each stoichiometry type in *types*."""
    pairs: set[tuple[int, int]] = set()
    order = np.argsort(types, kind="stable")
    bounds = np.flatnonzero(np.r_[True, types[order][1:] != types[order][:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        members = order[lo:hi]
        if len(members) < 2:
            continue
        protos = prototypes[members]
        for k, i in enumerate(members):
            same = members[(protos == protos[k]) & (members != i)]
            other = members[protos != protos[k]]
            for pool in (same, other):
                if len(pool):
                    pick = rng.choice(pool, size=min(n_pairs, len(pool)), replace=False)
                    pairs.update((min(i, j), max(i, j)) for j in pick.tolist())
    if not pairs:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, bool)
    ij = np.array(sorted(pairs), dtype=np.int64)
    same = prototypes[ij[:, 0]] == prototypes[ij[:, 1]]
    pos, neg = np.flatnonzero(same), np.flatnonzero(~same)
    n = min(len(pos), len(neg))
    if n:
        keep = np.sort(np.r_[rng.choice(pos, n, replace=False), rng.choice(neg, n, replace=False)])
        ij, same = ij[keep], same[keep]
    return ij[:, 0], ij[:, 1], same


def fit_pair_classifier(Z, i, j, same, settings: PairSettings, seed: int = 0, jobs: int = 1,
                        progress=None):  # fmt: skip
    """A CompactForest on the pair features of (Z[i], Z[j]) with labels *same*."""
    from sklearn.ensemble import RandomForestClassifier

    from xtal_cli.symmetry.forest import fit_compact_forest

    X = pair_features(Z[i], Z[j])

    def make(n, random_state):
        return RandomForestClassifier(
            n_estimators=n, min_samples_leaf=settings.min_samples_leaf,
            max_features=settings.max_features, n_jobs=jobs, random_state=random_state,
        )  # fmt: skip

    return fit_compact_forest(make, X, same.astype(np.int8), settings.n_estimators, seed=seed,
                              name="random-forest", progress=progress)  # fmt: skip


def pair_scores(forest, za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """P(same prototype) for each pair of rows of *za* and *zb* (either may be one row)."""
    za, zb = np.atleast_2d(za), np.atleast_2d(zb)
    if len(za) == 0 or len(zb) == 0:
        return np.zeros(0)
    proba = forest.predict_proba(pair_features(za, zb))
    return proba[:, list(forest.classes_).index(1)]


def balanced_accuracy(forest, Z, i, j, same) -> float:
    """Mean of the per-class accuracies of the classifier on pairs (i, j)."""
    pred = pair_scores(forest, Z[i], Z[j]) >= 0.5
    accs = [np.mean(pred[same == c] == c) for c in (True, False) if np.any(same == c)]
    return float(np.mean(accs)) if accs else float("nan")


__all__ = [
    "PairSettings",
    "Standardiser",
    "balanced_accuracy",
    "fit_pair_classifier",
    "pair_features",
    "pair_scores",
    "sample_pairs",
]
