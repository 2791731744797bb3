"""Tree ensembles stored compactly, so a 500-tree, depth-30 space-group model stays small.

scikit-learn keeps a dense class-probability vector in every node of every tree: with 230 space
groups, ~20k training patterns and fully grown trees that is ~40 MB per tree, 20 GB for the
published 500 trees. A fitted tree only needs, per node, the split (feature, threshold, children)
and, per leaf, its few non-zero class fractions. :class:`CompactForest` holds exactly that (all
trees concatenated, leaves as a sparse list), predicts the same probabilities as the forest it was
made from, and is grown batch by batch (:func:`fit_compact_forest`) so the dense trees never all
exist at once. Traversal runs in numba (thousands of patterns per second).
"""

from __future__ import annotations

import numpy as np

_LEAF = -1
_NUMPY_ROWS = 16  # up to this many rows, traverse in numpy (no numba import or JIT load)
NODE = np.dtype(
    [("left", np.int32), ("right", np.int32), ("feature", np.int32), ("threshold", np.float32)]
)


def _float32_floor(t: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold: for float32 x, x <= t ⇔ x <= floor32(t)."""
    t32 = t.astype(np.float32)
    over = t32.astype(np.float64) > t
    t32[over] = np.nextafter(t32[over], np.float32(-np.inf))
    return t32


class CompactForest:
    """A fitted tree ensemble (extra-trees, random forest, one decision tree) in compact form.

    ``predict_proba`` is the mean of the trees' leaf class fractions, as in scikit-learn.
    Construct it with :func:`fit_compact_forest` or :meth:`from_sklearn`. It deliberately does
    not derive from scikit-learn classes: loading a model must not import scikit-learn,
    and it is plain arrays (:meth:`to_arrays`), so a model file holds no pickle.
    """

    def __init__(self, estimator_name: str = "extra-trees"):
        self.estimator_name = estimator_name

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_sklearn(cls, fitted, name: str = "extra-trees") -> CompactForest:
        self = cls(name)
        self.classes_ = np.asarray(fitted.classes_)
        self.n_features_in_ = int(fitted.n_features_in_)
        self._reset()
        self.add_trees(fitted)
        return self._finish()

    def _reset(self) -> None:
        self._parts: list[tuple] = []
        self._importances = np.zeros(self.n_features_in_)

    def add_trees(self, fitted) -> None:
        """Append the trees of a fitted forest or tree (same classes and features)."""
        if not np.array_equal(np.asarray(fitted.classes_), self.classes_):
            raise ValueError("trees of another class set cannot join this forest")
        trees = getattr(fitted, "estimators_", [fitted])
        for tree in trees:
            t = tree.tree_
            values = t.value[:, 0, :]
            values = values / np.maximum(values.sum(axis=1, keepdims=True), 1e-300)
            leaves = np.flatnonzero(t.children_left == _LEAF)
            leaf_values = values[leaves]
            nz_rows, nz_cols = np.nonzero(leaf_values > 0)
            self._parts.append(
                (
                    t.feature.astype(np.int16),
                    t.threshold.astype(np.float64),
                    t.children_left.astype(np.int32),
                    t.children_right.astype(np.int32),
                    leaves.astype(np.int32),
                    np.bincount(nz_rows, minlength=len(leaves)).astype(np.int32),
                    nz_cols.astype(np.int16),
                    leaf_values[nz_rows, nz_cols].astype(np.float32),
                    int(t.max_depth),
                )
            )
            self._importances += tree.feature_importances_

    def _finish(self) -> CompactForest:
        parts = self._parts
        n_nodes = np.array([len(p[0]) for p in parts], dtype=np.int64)
        node_start = np.concatenate([[0], np.cumsum(n_nodes)]).astype(np.int64)
        if node_start[-1] >= 2**31:
            raise ValueError("forest too large for 32-bit node indices; use fewer trees")
        self.roots_ = node_start[:-1].astype(np.int32)
        # One 16-byte record per node, so a traversal step touches one cache line. Internal
        # nodes: children as global indices; leaves: left = -1, right = slot in the leaf table.
        nodes = np.zeros(int(node_start[-1]), dtype=NODE)
        slot0 = 0
        for p, start in zip(parts, node_start):
            feature, threshold, left, right, leaves = p[0], p[1], p[2], p[3], p[4]
            sl = slice(int(start), int(start) + len(feature))
            is_leaf = left == _LEAF
            nodes["left"][sl] = np.where(is_leaf, _LEAF, left + start)
            slots = np.zeros(len(feature), dtype=np.int64)
            slots[leaves] = slot0 + np.arange(len(leaves))
            nodes["right"][sl] = np.where(is_leaf, slots, right + start)
            nodes["feature"][sl] = np.where(is_leaf, 0, feature)
            nodes["threshold"][sl] = _float32_floor(threshold)
            slot0 += len(leaves)
        self.nodes_ = nodes
        leaf_counts = np.concatenate([p[5] for p in parts])
        self.leaf_offsets_ = np.concatenate([[0], np.cumsum(leaf_counts)]).astype(np.int32)
        self.leaf_classes_ = np.concatenate([p[6] for p in parts])
        self.leaf_values_ = np.concatenate([p[7] for p in parts])
        self.n_trees_ = len(parts)
        self.max_depth_ = max(p[8] for p in parts)
        self.feature_importances_ = self._importances / max(1, self.n_trees_)
        del self._parts, self._importances
        return self

    # -- plain arrays (model files) --------------------------------------------------------------
    ARRAYS = ("classes", "roots", "nodes", "leaf_offsets", "leaf_classes", "leaf_values",
              "feature_importances")  # fmt: skip

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """The fitted forest as numeric arrays plus a few scalars: all a model file stores."""
        arrays = {name: np.asarray(getattr(self, name + "_")) for name in self.ARRAYS}
        info = {
            "estimator_name": self.estimator_name,
            "n_features_in": int(self.n_features_in_),
            "n_trees": int(self.n_trees_),
            "max_depth": int(self.max_depth_),
        }
        return arrays, info

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], info: dict) -> CompactForest:
        """The forest :meth:`to_arrays` described (arrays may be read-only memory maps)."""
        self = cls(str(info["estimator_name"]))
        for name in cls.ARRAYS:
            setattr(self, name + "_", arrays[name])
        if self.nodes_.dtype != NODE:
            raise ValueError(f"node records have dtype {self.nodes_.dtype}, expected {NODE}")
        self.n_features_in_ = int(info["n_features_in"])
        self.n_trees_ = int(info["n_trees"])
        self.max_depth_ = int(info["max_depth"])
        if len(self.roots_) != self.n_trees_:
            raise ValueError(f"{len(self.roots_)} tree roots for {self.n_trees_} trees")
        self._check_links()
        return self

    def _check_links(self) -> None:
        """Refuse arrays that would make traversal leave its arrays or never end: the compiled
        kernel trusts every index, and a model file may come from anywhere."""
        nodes, n_nodes = self.nodes_, len(self.nodes_)
        left, right, feature = nodes["left"], nodes["right"], nodes["feature"]
        inner = left >= 0
        here = np.flatnonzero(inner)
        n_slots = len(self.leaf_offsets_) - 1
        offsets = np.asarray(self.leaf_offsets_, dtype=np.int64)
        leaf_slot = right[~inner]
        problems = [
            (np.any((self.roots_ < 0) | (self.roots_ >= n_nodes)), "a tree root outside the nodes"),
            # children come after their parent (as scikit-learn numbers them): no cycles
            (np.any((left[inner] <= here) | (left[inner] >= n_nodes)), "a left child out of order"),
            (np.any((right[inner] <= here) | (right[inner] >= n_nodes)), "a right child misplaced"),
            (np.any((feature[inner] < 0) | (feature[inner] >= self.n_features_in_)), "a feature"),
            (np.any(left[~inner] != -1) or np.any((leaf_slot < 0) | (leaf_slot >= n_slots)),
             "a leaf slot outside the leaf table"),
            (n_slots < 0 or offsets[0] != 0 or np.any(np.diff(offsets) < 0)
             or offsets[-1] != len(self.leaf_classes_) or len(self.leaf_values_) != offsets[-1],
             "leaf offsets that do not index the leaf table"),
            (np.any((self.leaf_classes_ < 0) | (self.leaf_classes_ >= len(self.classes_))),
             "a leaf class outside the classes"),
        ]  # fmt: skip
        for bad, what in problems:
            if bad:
                raise ValueError(f"the forest arrays hold {what}")

    # -- prediction -----------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        # scikit-learn compares float32 features with float64 thresholds; with thresholds
        # rounded down to float32 (see _float32_floor) float32 comparisons decide identically.
        X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected (N, {self.n_features_in_}) features, got {X.shape}")
        if len(X) <= _NUMPY_ROWS:
            return self._proba_numpy(X)
        from xtal_cli.symmetry._forest_kernel import forest_proba

        return forest_proba(
            X,
            self.roots_,
            self.nodes_,
            self.leaf_offsets_,
            self.leaf_classes_,
            self.leaf_values_,
            len(self.classes_),
        )

    def _proba_numpy(self, X: np.ndarray) -> np.ndarray:
        """All trees at once in numpy: for a few rows this beats importing and loading numba."""
        nodes = self.nodes_
        left, right = nodes["left"], nodes["right"]
        feature, threshold = nodes["feature"], nodes["threshold"]
        n, n_trees = len(X), len(self.roots_)
        rows = np.repeat(np.arange(n), n_trees)
        node = np.tile(np.asarray(self.roots_, dtype=np.int64), n)
        for _ in range(self.max_depth_ + 1):
            inner = left[node] >= 0
            if not inner.any():
                break
            at = node[inner]
            go_left = X[rows[inner], feature[at]] <= threshold[at]
            node[inner] = np.where(go_left, left[at], right[at])
        slot = right[node].astype(np.int64)
        start, stop = self.leaf_offsets_[slot], self.leaf_offsets_[slot + 1]
        counts = (stop - start).astype(np.int64)
        entry = np.repeat(start - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        out = np.zeros((n, len(self.classes_)))
        np.add.at(
            out, (np.repeat(rows, counts), self.leaf_classes_[entry]), self.leaf_values_[entry]
        )
        return out / n_trees

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X, y) -> float:
        return float(np.mean(self.predict(X) == np.asarray(y)))

    @property
    def n_nodes_(self) -> int:
        return int(len(self.nodes_))

    @property
    def nbytes_(self) -> int:
        arrays = (
            self.roots_, self.nodes_, self.leaf_offsets_, self.leaf_classes_, self.leaf_values_
        )  # fmt: skip
        return int(sum(a.nbytes for a in arrays))


def fit_compact_forest(
    make_estimator,
    X,
    y,
    n_estimators: int,
    *,
    seed: int = 0,
    name: str = "extra-trees",
    batch_size: int = 25,
    progress=None,
) -> CompactForest:
    """Grow ``n_estimators`` trees in batches and keep them compact.

    ``make_estimator(n_trees, random_state)`` returns an unfitted scikit-learn forest; batch
    seeds come from one :class:`numpy.random.SeedSequence`, so the result depends on *seed* and
    *batch_size* only (not on the number of jobs).
    """
    seeds = np.random.SeedSequence(seed).generate_state(max(1, -(-n_estimators // batch_size)))
    forest = None
    done = 0
    for batch_seed in seeds:
        n = min(batch_size, n_estimators - done)
        if n <= 0:
            break
        est = make_estimator(n, int(batch_seed) % (2**31 - 1)).fit(X, y)
        if forest is None:
            forest = CompactForest(name)
            forest.classes_ = np.asarray(est.classes_)
            forest.n_features_in_ = int(est.n_features_in_)
            forest._reset()
        forest.add_trees(est)
        done += n
        del est
        if progress is not None:
            progress(n)
    return forest._finish()
