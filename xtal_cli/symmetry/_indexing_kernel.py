"""numba kernels behind :mod:`xtal_cli.symmetry.indexing` (cached on disk).

A table is a padded array ``tab[j, :lens[j]]`` of the sorted allowed M (or N) for |l| = j; a
cubic table has one row. Trial cells are (a, c) pairs with c ignored when ``uniaxial`` is False.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _nearest(row, n, x):
    """The value of row[:n] (sorted) nearest to x."""
    j = np.searchsorted(row[:n], x)
    if j <= 0:
        return row[0]
    if j >= n:
        return row[n - 1]
    lo, hi = row[j - 1], row[j]
    return lo if x - lo <= hi - x else hi


@njit(cache=True, nogil=True)
def count_lines(tab, lens, a, c, s_max, uniaxial):
    """Allowed reflections up to s_max for each trial cell ((M, l) = (0, 0) excluded)."""
    top = s_max * (1.0 + 1e-9)
    out = np.zeros(a.shape[0], dtype=np.int64)
    for i in range(a.shape[0]):
        total = 0
        rows = tab.shape[0] if uniaxial else 1
        for j in range(rows):
            rest = top - (j * j * c[i] if uniaxial else 0.0)
            if rest < 0:
                break
            total += np.searchsorted(tab[j, : lens[j]], rest / a[i], side="right")
        if lens[0] > 0 and tab[0, 0] == 0.0:
            total -= 1
        out[i] = total
    return out


@njit(cache=True, nogil=True)
def index_lines(tab, lens, s, a, c, uniaxial):
    """Nearest calculated s, its M (or N) and l² for every trial cell and line."""
    n_cell, n_line = a.shape[0], s.shape[0]
    calc = np.zeros((n_cell, n_line))
    m_out = np.zeros((n_cell, n_line))
    l2_out = np.zeros((n_cell, n_line))
    for i in range(n_cell):
        for k in range(n_line):
            best = np.inf
            rows = tab.shape[0] if uniaxial else 1
            for j in range(rows):
                n = lens[j]
                if n == 0:
                    continue
                l2 = float(j * j) if uniaxial else 0.0
                rest = s[k] - l2 * c[i] if uniaxial else s[k]
                row = tab[j]
                start = 0
                if j == 0 and row[0] == 0.0:  # (0 0 0) is not a reflection
                    start = 1
                if start >= n:
                    continue
                m = _nearest(row[start:], n - start, max(rest, 0.0) / a[i])
                value = m * a[i] + (l2 * c[i] if uniaxial else 0.0)
                err = abs(value - s[k])
                if err < best:
                    best = err
                    calc[i, k] = value
                    m_out[i, k] = m
                    l2_out[i, k] = l2
                if uniaxial and l2 * c[i] > s[k] + best:
                    break
    return calc, m_out, l2_out
