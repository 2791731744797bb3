"""Property-dependent clusters: a random forest on the property, its leaves as a one-hot code.

Sato, Takahashi et al. (Adv. Intell. Syst. 2024): a regression forest trained on the property of
interest decides which descriptors matter; each material is encoded by the leaf it reaches in
every tree (the "z space", one-hot over all leaves of all trees), and ordinary clustering in z
space groups materials that the forest treats alike *for that property*.

Distance and algorithm: k-means (k-means++ starts) with the Euclidean distance on the one-hot
z vectors. For two materials, ``|z_i - z_j|^2 = 2 x (number of trees in which they land in
different leaves)``, so the distance is a monotone function of one minus Breiman's random-forest
proximity, and a cluster centre is, per tree, the share of the cluster in each leaf. A new
material is assigned to the nearest centre, which is what makes held-out scoring possible.
Several properties (given together) are standardised and learned by one multi-output forest, so
its leaves split on what matters for all of them.
"""

from __future__ import annotations

import numpy as np

from xtal_cli.errors import ParameterError


class PropertyClusters:
    """Cluster materials in the leaf space of a random forest trained on their property.

    Parameters follow scikit-learn's names: ``n_clusters``; the forest's ``n_estimators``,
    ``min_samples_leaf`` (leaves of one material would make every material its own neighbour)
    and ``max_features``; ``random_state``. Fitted attributes: ``forest_``, ``kmeans_``,
    ``labels_`` (training materials), ``cluster_means_`` (k, n_properties) in property units.
    """

    def __init__(
        self,
        n_clusters: int = 20,
        *,
        n_estimators: int = 200,
        min_samples_leaf: int = 5,
        max_features: float = 1 / 3,
        n_init: int = 10,
        random_state: int = 0,
        n_jobs: int = 1,
    ):
        self.n_clusters = n_clusters
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.n_init = n_init
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check(self, n: int) -> None:
        for name in ("n_clusters", "n_estimators", "min_samples_leaf", "n_init"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ParameterError(name, value, "must be a whole number >= 1")
        if not (0 < self.max_features <= 1):
            raise ParameterError("max_features", self.max_features, "must be in (0, 1]")
        if n < 2 * self.n_clusters:
            raise ParameterError(
                "n_clusters",
                self.n_clusters,
                f"too many for {n} materials (need at least 2 materials per cluster)",
            )

    def fit(self, X: np.ndarray, y: np.ndarray) -> PropertyClusters:
        from sklearn.cluster import KMeans
        from sklearn.ensemble import RandomForestRegressor

        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
        self._check(len(X))
        self.y_mean_ = y.mean(axis=0)
        self.y_scale_ = np.where(y.std(axis=0) > 0, y.std(axis=0), 1.0)
        target = (y - self.y_mean_) / self.y_scale_
        self.forest_ = RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit(X, target if target.shape[1] > 1 else target[:, 0])
        # every tree's leaves numbered into one column space (only leaves, not inner nodes)
        self._leaf_columns = []
        offset = 0
        for tree in self.forest_.estimators_:
            is_leaf = tree.tree_.children_left == -1
            column = np.full(tree.tree_.node_count, -1, dtype=np.int64)
            column[is_leaf] = offset + np.arange(is_leaf.sum())
            self._leaf_columns.append(column)
            offset += int(is_leaf.sum())
        self.n_leaves_ = offset
        z = self.transform(X)
        self.kmeans_ = KMeans(
            n_clusters=self.n_clusters, n_init=self.n_init, random_state=self.random_state
        ).fit(z)
        self.labels_ = self.kmeans_.labels_
        self.cluster_means_ = cluster_means(y, self.labels_, self.n_clusters)
        return self

    def transform(self, X: np.ndarray):
        """The one-hot leaf code of *X*: a sparse (n, n_leaves_) CSR matrix, one 1 per tree."""
        from scipy import sparse

        leaves = self.forest_.apply(np.asarray(X, dtype=np.float64))  # (n, trees) node ids
        cols = np.stack([self._leaf_columns[t][leaves[:, t]] for t in range(leaves.shape[1])], 1)
        n, trees = cols.shape
        data = np.ones(n * trees, dtype=np.float64)
        indptr = np.arange(0, n * trees + 1, trees)
        return sparse.csr_matrix((data, cols.ravel(), indptr), shape=(n, self.n_leaves_))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The cluster of each material: the nearest centre in z space."""
        return self.kmeans_.predict(self.transform(X))

    def predict_property(self, X: np.ndarray) -> np.ndarray:
        """The property predicted as the training mean of each material's cluster."""
        return self.cluster_means_[self.predict(X)]

    def forest_predict(self, X: np.ndarray) -> np.ndarray:
        """The forest's own prediction, in property units (n, n_properties)."""
        pred = self.forest_.predict(np.asarray(X, dtype=np.float64)).reshape(len(X), -1)
        return pred * self.y_scale_ + self.y_mean_


def cluster_means(y: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(k, n_properties) mean property of each cluster; the overall mean for an empty one."""
    return np.array(
        [y[labels == c].mean(axis=0) if (labels == c).any() else y.mean(axis=0) for c in range(k)]
    )


def cluster_r2(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """R^2 per property column (1 = the prediction explains all variance)."""
    from sklearn.metrics import r2_score

    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_true), -1)
    return np.array([r2_score(y_true[:, j], y_pred[:, j]) for j in range(y_true.shape[1])])


class DescriptorKMeans:
    """The reference: k-means on standardised descriptors (median-imputed), cluster means as the
    prediction. Same interface as :class:`PropertyClusters` for held-out comparison."""

    def __init__(self, n_clusters: int = 20, *, n_init: int = 10, random_state: int = 0):
        self.n_clusters, self.n_init, self.random_state = n_clusters, n_init, random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> DescriptorKMeans:
        from sklearn.cluster import KMeans
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        y = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
        self.pipeline_ = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            KMeans(n_clusters=self.n_clusters, n_init=self.n_init, random_state=self.random_state),
        ).fit(X)
        self.labels_ = self.pipeline_[-1].labels_
        self.cluster_means_ = cluster_means(y, self.labels_, self.n_clusters)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline_.predict(X)

    def predict_property(self, X: np.ndarray) -> np.ndarray:
        return self.cluster_means_[self.predict(X)]


__all__ = ["DescriptorKMeans", "PropertyClusters", "cluster_r2"]
