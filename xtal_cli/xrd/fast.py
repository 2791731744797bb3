"""The ``fast`` sticks engine: pymatgen's XRDCalculator physics in one compiled pass per structure.

pymatgen (2026.x) already vectorises the structure factor but spends most of its time in Python:
the reciprocal-point search, a dict merge of reflections and an O(n²) family search per peak.
Here one numba kernel does all of it on arrays, reproducing every numerical choice that changes
the result (see docs/engines.md):

* reciprocal points: the crystallographic reciprocal lattice ``((inv(M)ᵀ·2)·π)/(2π)`` and the
  same floating-point order for |g| as pymatgen's ``find_points_in_spheres`` (so ties between
  equivalent reflections sort identically), its inclusion rule (radius < 1 Å⁻¹: ``|g|² < 1 + 1e-8``
  then ``|g| ≤ r``; otherwise ``|g|² < r² + 1e-8``) and the ``|g| ≥ r_min`` cut;
* one Friedel half-space, ordered by (|g|, -h, -k, -l), intensities doubled;
* F(g) = Σ_e f_e(s) Σ_j occ_j DW_j exp(2πi g·r_j), I = |F|² (1 + cos²2θ)/(sin²θ cos θ);
* reflections merged when round(2θ / 1e-5) agree (2θ and d of the first one kept), peaks
  dropped below 1e-3 % of the strongest, scaled to 100;
* the hkl kept is the largest member of the first family of the peak (families are
  permutations of |h|,|k|,(|i|),|l|; four indices on hexagonal lattices), as pymatgen reports it.

Phase factors use per-atom tables exp(2πi n x) so each (reflection, atom) pair costs two complex
products instead of a sin/cos; the difference to pymatgen is at the 1e-15 level.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from xtal_cli.xrd.reflections import Sticks
from xtal_cli.xrd.scattering import scatterers, scattering_table, table_rows

TWO_THETA_TOL = 1e-5  # pymatgen AbstractDiffractionPatternCalculator.TWO_THETA_TOL
SCALED_INTENSITY_TOL = 1e-3  # pymatgen AbstractDiffractionPatternCalculator.SCALED_INTENSITY_TOL


def reciprocal_rows(matrix: np.ndarray) -> np.ndarray:
    """Crystallographic reciprocal lattice with pymatgen's exact floating-point recipe."""
    recip = np.linalg.inv(matrix).T * 2 * np.pi  # Lattice.reciprocal_lattice
    return recip / (2 * np.pi)  # Lattice.reciprocal_lattice_crystallographic


@njit(cache=True)
def reciprocal_points(recip, real_lengths, r, r_min):
    """Half-space reciprocal points in [r_min, r] (Å⁻¹), ordered by (|g|, -h, -k, -l) like pymatgen.

    Returns (hkl (n, 3) int, |g| (n,), nmax per axis). Public because the torch path
    (:mod:`xtal_cli.xrd.fast_torch`) must enumerate exactly the same reflections.
    """
    r_box = math.sqrt(r * r + 1e-8) if r >= 1.0 else r
    nmax = np.empty(3, dtype=np.int64)
    for c in range(3):
        nmax[c] = int(math.floor(r_box * real_lengths[c])) + 1
    b3 = recip[2]
    b3b3 = b3[0] * b3[0] + b3[1] * b3[1] + b3[2] * b3[2]
    rb2 = (r_box * (1.0 + 1e-9) + 1e-9) ** 2
    cap = 64
    hkl = np.empty((cap, 3), dtype=np.int64)
    g = np.empty(cap)
    r2 = r * r
    n = 0
    # enumeration in descending (h, k, l) order + a stable sort on |g| = pymatgen's lexsort
    for h in range(nmax[0], -1, -1):
        for k in range(nmax[1], -nmax[1] - 1, -1):
            if h == 0 and k < 0:
                continue
            # the l interval where |h b1 + k b2 + l b3| <= r (widened by one; checked exactly below)
            v0 = h * recip[0, 0] + k * recip[1, 0]
            v1 = h * recip[0, 1] + k * recip[1, 1]
            v2 = h * recip[0, 2] + k * recip[1, 2]
            bq = v0 * b3[0] + v1 * b3[1] + v2 * b3[2]
            disc = bq * bq - b3b3 * (v0 * v0 + v1 * v1 + v2 * v2 - rb2)
            if disc < 0.0:
                continue
            root = math.sqrt(disc)
            l_hi = min(nmax[2], int(math.floor((-bq + root) / b3b3)) + 1)
            l_lo = max(-nmax[2], int(math.ceil((-bq - root) / b3b3)) - 1)
            for ll in range(l_hi, l_lo - 1, -1):
                if h == 0 and k == 0 and ll <= 0:
                    continue
                # the same operations, in the same order, as find_points_in_spheres
                x = h * recip[0, 0] + k * recip[1, 0] + ll * recip[2, 0]
                y = h * recip[0, 1] + k * recip[1, 1] + ll * recip[2, 1]
                z = h * recip[0, 2] + k * recip[1, 2] + ll * recip[2, 2]
                d2 = x * x + y * y + z * z
                if r < 1.0:  # find_points_in_spheres searches min_r = 1 then keeps dist <= r
                    if not d2 < 1.0 + 1e-8:
                        continue
                    dist = math.sqrt(d2)
                    if not dist <= r:
                        continue
                else:
                    if not d2 < r2 + 1e-8:
                        continue
                    dist = math.sqrt(d2)
                if r_min > 0.0 and not dist >= r_min:
                    continue
                if n == cap:
                    cap *= 2
                    hkl2 = np.empty((cap, 3), dtype=np.int64)
                    hkl2[:n] = hkl[:n]
                    hkl = hkl2
                    g2 = np.empty(cap)
                    g2[:n] = g[:n]
                    g = g2
                hkl[n, 0] = h
                hkl[n, 1] = k
                hkl[n, 2] = ll
                g[n] = dist
                n += 1
    order = np.argsort(g[:n], kind="mergesort")
    return hkl[:n][order], g[:n][order], nmax


@njit(cache=True)
def _phase_tables(frac, occ, nmax):
    """cos/sin of 2π n x_j for |n| <= nmax, laid out (axis, n, atom); occupancy folded into x."""
    n_at = frac.shape[0]
    width = 2 * nmax.max() + 1
    tr = np.empty((3, width, n_at))
    ti = np.empty((3, width, n_at))
    for c in range(3):
        for j in range(n_at):
            w = occ[j] if c == 0 else 1.0
            for t in range(0, nmax[c] + 1):
                ang = 2.0 * math.pi * t * frac[j, c]
                cs, sn = math.cos(ang), math.sin(ang)
                tr[c, nmax[c] + t, j] = w * cs
                ti[c, nmax[c] + t, j] = w * sn
                tr[c, nmax[c] - t, j] = w * cs
                ti[c, nmax[c] - t, j] = -w * sn
    return tr, ti


@njit(cache=True)
def _structure_factors(hkl, g, nmax, frac, occ, el_start, a, b, z, ustar, has_ustar):
    """|F(g)|² per reflection; element e's scatterers are [el_start[e], el_start[e + 1])."""
    m = hkl.shape[0]
    n_el = a.shape[0]
    tr, ti = _phase_tables(frac, occ, nmax)
    fe = np.empty(n_el)
    out = np.empty(m)
    for i in range(m):
        h, k, ll = hkl[i, 0] + nmax[0], hkl[i, 1] + nmax[1], hkl[i, 2] + nmax[2]
        if i == 0 or g[i] != g[i - 1]:  # equivalent reflections share |g| and f(s)
            s2 = (g[i] / 2.0) ** 2
            for e in range(n_el):
                tot = 0.0
                for q in range(a.shape[1]):
                    tot += a[e, q] * math.exp(-b[e, q] * s2)
                fe[e] = z[e] - 41.78214 * s2 * tot
        fr = 0.0
        fi = 0.0
        for e in range(n_el):
            sr = 0.0
            si = 0.0
            for j in range(el_start[e], el_start[e + 1]):
                ar, ai = tr[0, h, j], ti[0, h, j]
                br, bi = tr[1, k, j], ti[1, k, j]
                cr, ci = tr[2, ll, j], ti[2, ll, j]
                pr = ar * br - ai * bi
                pi = ar * bi + ai * br
                qr = pr * cr - pi * ci
                qi = pr * ci + pi * cr
                if has_ustar:
                    hh, kk, lq = hkl[i, 0], hkl[i, 1], hkl[i, 2]
                    u = ustar[j]
                    quad = (
                        hh * (u[0, 0] * hh + u[0, 1] * kk + u[0, 2] * lq)
                        + kk * (u[1, 0] * hh + u[1, 1] * kk + u[1, 2] * lq)
                        + lq * (u[2, 0] * hh + u[2, 1] * kk + u[2, 2] * lq)
                    )
                    dw = math.exp(-2.0 * math.pi**2 * quad)
                    qr *= dw
                    qi *= dw
                sr += qr
                si += qi
            fr += fe[e] * sr
            fi += fe[e] * si
        out[i] = fr * fr + fi * fi
    return out


@njit(cache=True)
def _sorted_abs_key(h, k, ll, is_hex):
    """Family key: sorted |indices| (with |i| = |h + k| on hexagonal lattices) as one int."""
    v0, v1, v2, v3 = abs(h), abs(k), abs(ll), abs(h + k) if is_hex else -1
    # sorting network on four values (v3 = -1 sorts first and is harmless for three indices)
    if v0 > v1:
        v0, v1 = v1, v0
    if v2 > v3:
        v2, v3 = v3, v2
    if v0 > v2:
        v0, v2 = v2, v0
    if v1 > v3:
        v1, v3 = v3, v1
    if v1 > v2:
        v1, v2 = v2, v1
    return (((v0 + 1) * 65536 + v1 + 1) * 65536 + v2 + 1) * 65536 + v3 + 1


@njit(cache=True)
def _greater(h, k, ll, bh, bk, bl):
    """Lexicographic (h, k, [i,] l) > (bh, bk, [bi,] bl); i = -h-k adds nothing once h, k tie."""
    if h != bh:
        return h > bh
    if k != bk:
        return k > bk
    return ll > bl


@njit(cache=True)
def merge_reflections(hkl, g, i_hkl, wavelength, is_hex, tt_tol, scaled_tol):
    """Lorentz-polarisation, merging at equal 2θ, threshold, scaling and hkl families.

    *i_hkl* is |F|² of each point of :func:`reciprocal_points`; returns (2θ, intensity, hkl, d)
    of the peaks. Shared with the torch path so both engines merge identically.
    """
    m = hkl.shape[0]
    theta = np.arcsin(np.minimum(np.maximum(wavelength * g / 2.0, -1.0), 1.0))
    two_theta = np.degrees(2.0 * theta)
    cos2t = np.cos(2.0 * theta)
    sint = np.sin(theta)
    lp = (1.0 + cos2t**2) / (sint**2 * np.cos(theta))
    inten = 2.0 * i_hkl * lp
    keys = np.rint(two_theta / tt_tol).astype(np.int64)
    # reflections are sorted by |g|, so equal keys form contiguous runs
    start = np.empty(m + 1, dtype=np.int64)
    tot = np.zeros(m)
    nb = 0
    for i in range(m):
        if i == 0 or keys[i] != keys[i - 1]:
            start[nb] = i
            nb += 1
        tot[nb - 1] += inten[i]
    start[nb] = m
    vmax = tot[:nb].max()
    n_keep = 0
    for p in range(nb):
        if tot[p] / vmax * 100.0 > scaled_tol:
            n_keep += 1
    out_tt = np.empty(n_keep)
    out_i = np.empty(n_keep)
    out_d = np.empty(n_keep)
    out_hkl = np.empty((n_keep, 3), dtype=np.int32)
    o = 0
    for p in range(nb):
        if not tot[p] / vmax * 100.0 > scaled_tol:
            continue
        i0 = start[p]
        out_tt[o] = two_theta[i0]
        out_i[o] = tot[p] / (vmax / 100.0)
        out_d[o] = 1.0 / g[i0]
        # pymatgen lists (hkl, -hkl) per reflection, groups them into families of equal sorted
        # |indices| and reports the largest member of the first family; in the half-space the
        # largest of (hkl, -hkl) is always hkl itself.
        ref = _sorted_abs_key(hkl[i0, 0], hkl[i0, 1], hkl[i0, 2], is_hex)
        bh, bk, bl = hkl[i0, 0], hkl[i0, 1], hkl[i0, 2]
        for i in range(i0 + 1, start[p + 1]):
            h, k, ll = hkl[i, 0], hkl[i, 1], hkl[i, 2]
            if _sorted_abs_key(h, k, ll, is_hex) == ref and _greater(h, k, ll, bh, bk, bl):
                bh, bk, bl = h, k, ll
        out_hkl[o, 0] = bh
        out_hkl[o, 1] = bk
        out_hkl[o, 2] = bl
        o += 1
    return out_tt, out_i, out_hkl, out_d


@njit(cache=True)
def is_hexagonal(matrix, angle_tol=5.0, length_tol=0.01):
    """pymatgen's Lattice.is_hexagonal: two right angles, one 60/120° angle, equal lengths.

    Decides whether hkl families use four indices (as pymatgen reports them).
    """
    lengths = np.sqrt(np.sum(matrix**2, axis=1))
    n_right = 0
    n_hex = 0
    right = np.zeros(3, dtype=np.int64)
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        cos = np.dot(matrix[j], matrix[k]) / (lengths[j] * lengths[k])
        ang = math.degrees(math.acos(min(1.0, max(-1.0, cos))))
        if abs(ang - 90.0) <= angle_tol:
            right[n_right] = i
            n_right += 1
        if abs(ang - 60.0) <= angle_tol or abs(ang - 120.0) <= angle_tol:
            n_hex += 1
    return n_right == 2 and n_hex == 1 and abs(lengths[right[0]] - lengths[right[1]]) <= length_tol


@njit(cache=True)
def _pattern(matrix, recip, r, r_min, wavelength, frac, occ, el_start, a, b, z, ustar, has_ustar):
    """The whole calculation for one structure; see the module docstring."""
    lengths = np.sqrt(np.sum(matrix**2, axis=1))
    hkl, g, nmax = reciprocal_points(recip, lengths, r, r_min)
    if g.shape[0] == 0:
        return np.empty(0), np.empty(0), np.empty((0, 3), dtype=np.int32), np.empty(0)
    i_hkl = _structure_factors(hkl, g, nmax, frac, occ, el_start, a, b, z, ustar, has_ustar)
    is_hex = is_hexagonal(matrix)
    return merge_reflections(hkl, g, i_hkl, wavelength, is_hex, TWO_THETA_TOL, SCALED_INTENSITY_TOL)


def fast_sticks(structure, wavelength: float, two_theta_range: tuple[float, float]) -> Sticks:
    """Same result as ``XRDCalculator(wavelength).get_pattern(structure, two_theta_range=...)``."""
    frac, occ, rows = scatterers(structure)
    ustar, has_ustar = site_ustar(structure)
    return sticks_from_arrays(
        structure.lattice.matrix, frac, occ, rows, wavelength, two_theta_range,
        ustar if has_ustar else None,
    )  # fmt: skip


def sticks_from_arrays(
    matrix, frac, occ, rows, wavelength: float, two_theta_range, ustar=None
) -> Sticks:
    """:func:`fast_sticks` of scatterers given as arrays: fractional coordinates (N, 3),
    occupancies (N,) and rows of the scattering table (N,), or element symbols."""
    matrix = np.asarray(matrix, dtype=np.float64)
    table = scattering_table()
    if len(rows) and isinstance(rows[0], str):
        rows = table_rows(rows)
    rows = np.asarray(rows, dtype=np.int64)
    min_r, max_r = (2 * math.sin(math.radians(t / 2)) / wavelength for t in two_theta_range)
    has_ustar = ustar is not None
    ustar = np.asarray(ustar, dtype=np.float64) if has_ustar else np.zeros((1, 3, 3))
    elems, elem = compact_rows(rows)
    order = np.argsort(elem, kind="stable")  # each element's scatterers contiguous
    el_start = np.searchsorted(elem[order], np.arange(len(elems) + 1))
    tt, inten, hkl, d = _pattern(
        matrix, reciprocal_rows(matrix), float(max_r), float(min_r), float(wavelength),
        np.ascontiguousarray(frac[order]), np.ascontiguousarray(occ[order]), el_start,
        table.a[elems], table.b[elems], table.z[elems],
        ustar[order] if has_ustar else ustar, has_ustar,
    )  # fmt: skip
    if len(tt) == 0:
        lo, hi = two_theta_range
        raise ValueError(f"no reflections between 2θ = {lo}° and {hi}°")
    return Sticks(two_theta=tt, intensity=inten, hkl=hkl, d=d)


def compact_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct scattering-table rows in first-seen order and each scatterer's index into them,
    so form factors are evaluated once per element, not once per atom."""
    seen: dict[int, int] = {}
    elem = np.array([seen.setdefault(r, len(seen)) for r in rows.tolist()], dtype=np.int64)
    return np.fromiter(seen, dtype=np.int64, count=len(seen)), elem


def site_ustar(structure) -> tuple[np.ndarray, bool]:
    """Per-scatterer U* matrices (Debye-Waller) and whether the structure has any: only when it
    carries U11_cif … U12_cif site properties (as pymatgen's CIF parser sets them)."""
    if "U11_cif" not in structure.site_properties:
        return np.zeros((1, 3, 3)), False
    from pymatgen.analysis.diffraction.core import get_ustar

    per_site = get_ustar(structure)
    reps = [len(site.species) for site in structure]
    return np.repeat(per_site, reps, axis=0), True
