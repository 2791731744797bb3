"""The numba kernel behind :class:`~xtal_cli.symmetry.forest.CompactForest` (cached on disk)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def forest_proba(X, roots, nodes, leaf_offsets, leaf_classes, leaf_values, n_classes):
    """Mean leaf class fractions over all trees for every row of float32 X (go left when
    ``x[feature] <= threshold``, as scikit-learn).

    Trees in the outer loop: one tree (~1 MB) stays in cache while all rows walk through it,
    instead of every row fetching every tree from memory (10x faster for 500 deep trees).
    """
    n = X.shape[0]
    n_trees = roots.shape[0]
    out = np.zeros((n, n_classes), dtype=np.float64)
    for t in range(n_trees):
        root = roots[t]
        for i in range(n):
            node = nodes[root]
            while node.left >= 0:
                if X[i, node.feature] <= node.threshold:
                    node = nodes[node.left]
                else:
                    node = nodes[node.right]
            slot = node.right
            for k in range(leaf_offsets[slot], leaf_offsets[slot + 1]):
                out[i, leaf_classes[k]] += leaf_values[k]
    return out / n_trees
