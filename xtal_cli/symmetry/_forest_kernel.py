"""The numba kernel behind :class:`~xtal_cli.symmetry.forest.CompactForest` (cached on disk)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def forest_proba(X, roots, nodes, leaf_offsets, leaf_classes, leaf_values, n_classes):
    """Mean leaf class fractions over all trees for every row of float32 X (go left when
    ``x[feature] <= threshold``, as scikit-learn)."""
    n = X.shape[0]
    n_trees = roots.shape[0]
    out = np.zeros((n, n_classes), dtype=np.float64)
    for i in range(n):
        x = X[i]
        for t in range(n_trees):
            node = nodes[roots[t]]
            while node.left >= 0:
                if x[node.feature] <= node.threshold:
                    node = nodes[node.left]
                else:
                    node = nodes[node.right]
            slot = node.right
            for k in range(leaf_offsets[slot], leaf_offsets[slot + 1]):
                out[i, leaf_classes[k]] += leaf_values[k]
        for c in range(n_classes):
            out[i, c] /= n_trees
    return out
