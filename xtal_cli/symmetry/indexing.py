"""How well a peak list indexes on a cubic, tetragonal or hexagonal lattice (figures of merit).

Peak positions alone leave the crystal system to be learnt from where the first few peaks fall;
one missed or one extra weak peak in a measured scan shifts every later position. Powder
indexing asks the question directly: is there a small cell of this system whose allowed
reflections account for the observed lines? These features give, per system (or per Bravais
lattice, with the line ratio beside: ``lattices=True``), the fraction of the lowest-angle
lines (up to ``n_lines``) that the best such cell indexes within a 2θ tolerance, in the spirit
of the trial-and-error indexing programs (Werner's TREOR, Louër's DICVOL) but deliberately
small: the trial cells come from assigning low indices to the first lines, and a cell is only
admitted when it predicts few lines (at most ``max_lines_ratio`` times the observed ones), so
that a huge cell cannot index everything by chance.

In 1/d² (s) the systems are:

- cubic ``s = A·N`` with N = h²+k²+l² (no 7, 15, 23, ...: not a sum of three squares);
- tetragonal ``s = A·M + C·l²`` with M = h²+k²;
- hexagonal ``s = A·M + C·l²`` with M = h²+hk+k² (A = 4/(3a²)).

Lower symmetries (orthorhombic and below) are left to the trees: a pattern that none of these
cells indexes is itself the evidence.
"""

from __future__ import annotations

import numpy as np

from xtal_cli.xrd.units import from_two_theta

SYSTEMS = ("cubic", "tetragonal", "hexagonal")
DEFAULT_TOLERANCE = 0.08  # degrees 2θ: peak-picking error plus a typical lab zero shift
DEFAULT_N_LINES = 20
DEFAULT_MAX_LINES_RATIO = 2.5
N_TRIAL_LINES = 5  # trial cells come from the first lines (a spurious weak line may lead)
N_SCREEN_LINES = 10  # trial cells are screened on this many first lines
N_KEPT = 40  # and this many go on to the full test
N_REFINED = 4  # trial cells whose lattice and zero shift are refined by least squares
MAX_ZERO = 0.3  # degrees 2θ: the largest zero shift the refinement may absorb
COARSE = 2.5  # the trial cells are ranked with this multiple of the tolerance


# Lattice centrings tried per system (reflection conditions: I h+k+l even; F h, k, l unmixed;
# R obverse −h+k+l = 3n, hexagonal axes). Counting only the allowed lines keeps a centred
# cell within the line budget.
CENTRINGS = {"cubic": ("P", "I", "F"), "tetragonal": ("P", "I"), "hexagonal": ("P", "R")}
# The same seven as Bravais lattices (cP cI cF tP tI hP hR), scored one by one. The indexed
# fraction alone rarely tells a centring apart (a primitive pattern indexes on a centred cell
# twice its size, and a centred one on the primitive cell), so each lattice also reports how
# economical its best cell is: indexed lines per calculated line (N_obs/N_calc, the line count
# in de Wolff's M20). The right lattice indexes every line with few calculated ones to spare.
LATTICES = tuple((kind, c) for kind in SYSTEMS for c in CENTRINGS[kind])
LATTICE_SYMBOLS = tuple(f"{kind[0]}{c}" for kind, c in LATTICES)
LATTICE_FEATURES = tuple(f"index_{x}" for x in LATTICE_SYMBOLS) + tuple(
    f"n_ratio_{x}" for x in LATTICE_SYMBOLS
)
MAX_L = 12
MAX_M = 400


def _allowed_table(kind: str, centring: str) -> list[np.ndarray]:
    """Sorted allowed M (N for cubic) for each |l| (cubic: one entry, l folded into N)."""
    r = int(np.sqrt(MAX_M)) + 1
    h, k, l_ = np.meshgrid(
        np.arange(-r, r + 1), np.arange(-r, r + 1), np.arange(-MAX_L, MAX_L + 1), indexing="ij"
    )
    h, k, l_ = h.ravel(), k.ravel(), l_.ravel()
    keep = {
        "P": np.ones_like(h, dtype=bool),
        "I": (h + k + l_) % 2 == 0,
        "F": ((h % 2) == (k % 2)) & ((k % 2) == (l_ % 2)),
        "R": (-h + k + l_) % 3 == 0,
    }[centring]
    if kind == "cubic":
        n = (h**2 + k**2 + l_**2)[keep]
        return [np.unique(n[n <= MAX_M]).astype(float)]
    m = (h**2 + k**2) if kind == "tetragonal" else (h**2 + h * k + k**2)
    m, ll = m[keep], np.abs(l_[keep])
    return [np.unique(m[(ll == j) & (m <= MAX_M)]).astype(float) for j in range(MAX_L + 1)]


def _padded(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lens = np.array([len(r) for r in rows], dtype=np.int64)
    tab = np.zeros((len(rows), max(1, lens.max())))
    for j, r in enumerate(rows):
        tab[j, : len(r)] = r
    return tab, lens


_TABLES = {
    (kind, c): _padded(_allowed_table(kind, c)) for kind, cs in CENTRINGS.items() for c in cs
}


def _ds_d2theta(two_theta: np.ndarray, wavelength: float) -> np.ndarray:
    """d(1/d²)/d(2θ) per radian of 2θ: s = 4 sin²θ / λ² gives 2 sin 2θ / λ²."""
    return 2.0 * np.abs(np.sin(np.radians(two_theta))) / wavelength**2


def _count_lines(table, a: np.ndarray, c: np.ndarray | None, s_max: float) -> np.ndarray:
    """Allowed reflections (distinct N, or distinct (M, |l|)) up to *s_max* per trial cell."""
    from xtal_cli.symmetry._indexing_kernel import count_lines

    tab, lens = table
    uniaxial = c is not None
    return count_lines(tab, lens, a, c if uniaxial else a, float(s_max), uniaxial)


def _index_lines(table, s, a, c):
    """For each trial cell and line: the nearest calculated s and its (N or M, l²)."""
    from xtal_cli.symmetry._indexing_kernel import index_lines

    tab, lens = table
    uniaxial = c is not None
    return index_lines(tab, lens, s, a, c if uniaxial else a, uniaxial)


def _trial_cells(kind: str, s: np.ndarray):
    """Trial (A, C) from assigning low indices to the first lines.

    Uniaxial cells come two ways: A from an (h k 0) line and C from a (0 0 l) line, or C first
    and A from an (h k l) line with small l, which is what rhombohedral and body-centred cells
    need (their first lines are often 003, 101, 012 and no h k 0 line is among them).
    """
    first = s[: min(len(s), N_TRIAL_LINES)]
    if kind == "cubic":
        return (first[:, None] / np.arange(1, 13)[None, :]).ravel(), None
    low_m = _TABLES[kind, "P"][0][0, 1:4]  # 1, 2, 4 (tetragonal) or 1, 3, 4 (hexagonal)
    a = (first[:, None] / low_m[None, :]).ravel()
    c = (first[:, None] / (np.array([1, 2, 3, 4, 6]) ** 2)[None, :]).ravel()
    a1, c1 = (v.ravel() for v in np.meshgrid(a, c, indexing="ij"))
    # C first, then A = (s − l²·C) / M for a low (M, l) line
    lsq = np.array([1.0, 4.0])
    rest = first[None, :, None] - lsq[None, None, :] * c[:, None, None]  # (C, line, l)
    a2 = rest[..., None] / low_m[None, None, None, :]
    c2 = np.broadcast_to(c[:, None, None, None], a2.shape)
    aa = np.concatenate([a1, a2.ravel()])
    cc = np.concatenate([c1, c2.ravel()])
    ok = (aa > 0) & (cc > 0)
    # identical trial cells from different assignments are tried once
    key = np.unique(np.round(np.stack([aa[ok], cc[ok]], axis=1), 7), axis=0)
    key = key[(key[:, 0] > 0) & (key[:, 1] > 0)]
    return key[:, 0], key[:, 1]


def indexing_scores(
    two_theta,
    wavelength: float,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    n_lines: int = DEFAULT_N_LINES,
    max_lines_ratio: float = DEFAULT_MAX_LINES_RATIO,
    lattices: bool = False,
) -> np.ndarray:
    """Best indexed fraction of the first *n_lines* lines for cubic, tetragonal, hexagonal.

    *two_theta* are peak positions (degrees) at *wavelength* (Å). Returns three numbers in
    [0, 1] in the order of ``SYSTEMS`` (the best centring of each), or with *lattices*
    fourteen: the fraction per Bravais lattice in the order of ``LATTICES``, then per lattice
    the best cell's indexed lines per calculated line (``LATTICE_FEATURES``). Fewer than three
    lines give zeros (nothing to test).
    """
    tt = np.sort(np.asarray(two_theta, float))
    tt = tt[np.isfinite(tt) & (tt > 0)][:n_lines]
    per_lattice = np.zeros(len(LATTICES))
    ratio = np.zeros(len(LATTICES))
    if len(tt) >= 3:
        s = from_two_theta(tt, wavelength, "inv-d2")
        g = _ds_d2theta(tt, wavelength)
        tol = g * np.radians(tolerance)
        budget = max_lines_ratio * len(s)
        trials = {kind: _trial_cells(kind, s) for kind in SYSTEMS}
        for j, (kind, centring) in enumerate(LATTICES):
            a, c = trials[kind]
            per_lattice[j], ratio[j] = _best_cell(_TABLES[kind, centring], s, g, tol, a, c, budget)
    return np.concatenate([per_lattice, ratio]) if lattices else fold_to_systems(per_lattice)


def fold_to_systems(per_lattice: np.ndarray) -> np.ndarray:
    """Per-lattice fractions (last axis in the order of ``LATTICES``; any line ratios after
    them are ignored) → one per system in the order of ``SYSTEMS``: the best centring."""
    per_lattice = np.asarray(per_lattice)
    return np.stack(
        [per_lattice[..., [j for j, (k, _) in enumerate(LATTICES) if k == kind]].max(axis=-1)
         for kind in SYSTEMS], axis=-1,
    )  # fmt: skip


def _best_cell(table, s, g, tol, a, c, budget) -> tuple[float, float]:
    """Best indexed fraction among the trial cells (refined) that stay within the line budget,
    and the highest indexed-per-calculated line ratio among the cells that reach it."""
    uniaxial = c is not None
    counts = _count_lines(table, a, c, s[-1])
    ok = counts <= budget
    if not ok.any():
        return 0.0, 0.0
    a, c, counts = a[ok], (c[ok] if uniaxial else None), counts[ok]
    if len(a) > N_KEPT:  # screen on the first lines, then test the promising cells fully
        n = min(len(s), N_SCREEN_LINES)
        calc, _, _ = _index_lines(table, s[:n], a, c)
        hits = np.sum(np.abs(calc - s[None, :n]) <= COARSE * tol[None, :n], axis=1)
        keep = np.argsort(-hits, kind="stable")[:N_KEPT]
        a, c, counts = a[keep], (c[keep] if uniaxial else None), counts[keep]
    calc, m, l2 = _index_lines(table, s, a, c)
    err = np.abs(calc - s[None, :])
    frac = np.mean(err <= tol[None, :], axis=1)
    best = float(frac.max())
    at = frac == best
    ratio = float(np.max(best * len(s) / np.maximum(counts[at], 1)))
    coarse = np.mean(err <= COARSE * tol[None, :], axis=1)
    for j in np.argsort(-coarse, kind="stable")[:N_REFINED]:
        near = err[j] <= COARSE * tol
        cols = [m[j], l2[j]] if uniaxial else [m[j]]
        x = np.stack(cols + [g], axis=1)[near] / g[near, None]
        if near.sum() < x.shape[1] + 1:
            continue
        coef, *_ = np.linalg.lstsq(x, s[near] / g[near], rcond=None)
        zero = float(np.clip(coef[-1], -np.radians(MAX_ZERO), np.radians(MAX_ZERO)))
        corrected = s - zero * g
        # the cell again, from the zero-corrected lines
        x = x[:, :-1]
        cell, *_ = np.linalg.lstsq(x, corrected[near] / g[near], rcond=None)
        if np.any(cell <= 0):
            continue
        ra = cell[:1]
        rc = cell[1:2] if uniaxial else None
        n_calc = _count_lines(table, ra, rc, corrected[-1])[0]
        if n_calc > budget:
            continue
        rcalc, _, _ = _index_lines(table, corrected, ra, rc)
        f = float(np.mean(np.abs(rcalc[0] - corrected) <= tol))
        r = f * len(s) / max(n_calc, 1)
        if f > best:
            best, ratio = f, r
        elif f == best:
            ratio = max(ratio, r)
    return best, min(ratio, 1.0)
