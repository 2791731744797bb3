"""Compiled kernels of :mod:`xtal_cli.xrd.lineshape` (numba); import that module, not this one.

Kept apart so that the numpy half of the line-shape module (Kα policy, Caglioti, Kα2 positions)
loads without numba: stripping Kα2 from one scan must not pay the JIT's import. The scalar
functions are ``inline="always"``: a kernel that uses only the value lets LLVM drop the
derivative arithmetic, so the value-only sum pays nothing for it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_LN2 = math.log(2.0)
_CG = 2.0 * math.sqrt(_LN2 / math.pi)  # Gaussian of unit area and FWHM 1 at its centre
_CL = 2.0 / math.pi  # Lorentzian of unit area and FWHM 1 at its centre
_S8LN2 = math.sqrt(8.0 * _LN2)  # FWHM / σ of a Gaussian
_D2R = math.pi / 180.0
_EXP_MIN = 746.0  # exp(-a) is exactly 0.0 for a beyond this: skip the call
CORE_FWHM = 15.0  # FWHMs beyond the asymmetric range where a peak is its Lorentzian tail alone
GAUSS_FWHM = 4.0  # FWHMs beyond which exp(-4 ln2 t²) < 6e-20: a pseudo-Voigt is its Lorentzian

# Gauss–Legendre tables of the FCJ convolution: the positive half of the nodes of an even-order
# rule on [-1, 1], one row per order. The orders and the rule that picks one (:func:`_fcj_setup`)
# are GSAS-II's (psvfcjo.for, B. H. Toby's FCJ code), so both engines integrate the asymmetry
# with the same nodes and compute the same profile.
GL_ORDERS = np.array([*range(2, 32, 2), *range(40, 130, 10), *range(140, 320, 20), 400])
GL_NODES = np.zeros((len(GL_ORDERS), GL_ORDERS.max() // 2))
GL_WEIGHTS = np.zeros_like(GL_NODES)
for _i, _n in enumerate(GL_ORDERS):
    _x, _w = np.polynomial.legendre.leggauss(int(_n))
    GL_NODES[_i, : _n // 2] = _x[_n // 2 :]
    GL_WEIGHTS[_i, : _n // 2] = _w[_n // 2 :]


# ----------------------------------------------------------------------------- pseudo-Voigt


@njit(cache=True, inline="always")
def pseudo_voigt(dx, fw, eta):
    """Unit-area pseudo-Voigt at dx (deg from its centre), FWHM fw, Lorentzian fraction η, and
    its derivatives in dx, fw and η."""
    t = dx / fw
    t2 = t * t
    a = 4.0 * _LN2 * t2
    G = _CG / fw * math.exp(-a) if a < _EXP_MIN else 0.0
    den = 1.0 + 4.0 * t2
    L = _CL / fw / den
    v = eta * L + (1.0 - eta) * G
    dG_dx = G * (-8.0 * _LN2 * dx / (fw * fw))
    dL_dx = L * (-8.0 * dx / (fw * fw)) / den
    dG_dfw = G * (-1.0 + 8.0 * _LN2 * t2) / fw
    dL_dfw = L * (-1.0 + 8.0 * t2 / den) / fw
    return (
        v,
        eta * dL_dx + (1.0 - eta) * dG_dx,
        eta * dL_dfw + (1.0 - eta) * dG_dfw,
        L - G,
    )


@njit(cache=True, fastmath=True)
def pseudo_voigt_into(out, grid, centers, areas, fwhm, eta, lo, hi):
    """Add area-weighted pseudo-Voigts to *out*; peak p (own FWHM, η) covers grid[lo[p]:hi[p]]."""
    for p in range(centers.shape[0]):
        c = centers[p]
        f = fwhm[p]
        e = eta[p]
        a = areas[p]
        for i in range(lo[p], hi[p]):
            out[i] += a * pseudo_voigt(grid[i] - c, f, e)[0]
    return out


@njit(cache=True, inline="always")
def _lorentz_tail(dx, fw, eta):
    """η · unit-area Lorentzian: a pseudo-Voigt far from its centre, where the Gaussian is 0 or
    negligible."""
    t = dx / fw
    return eta * _CL / fw / (1.0 + 4.0 * t * t)


@njit(cache=True, fastmath=True, error_model="numpy")
def pseudo_voigt_tails_into(out, grid, centers, areas, fwhm, eta, lo, hi):
    """:func:`pseudo_voigt_into` without the exponentials that cannot matter: within
    ±GAUSS_FWHM FWHM of its centre a peak is the full pseudo-Voigt, beyond it the Lorentzian
    alone (:func:`_lorentz_tail`; the Gaussian left out is below 6e-20 of its own peak). At the
    ±20 FWHM windows of augmentation that is a fifth of the points with an exp, and the tails
    vectorise (zero-based loops over slices, numpy's division semantics: widths are positive);
    the sum differs from pseudo_voigt_into by rounding. *grid* ascending."""
    for p in range(centers.shape[0]):
        c = centers[p]
        f = fwhm[p]
        e = eta[p]
        a = areas[p]
        clo = min(max(np.searchsorted(grid, c - GAUSS_FWHM * f), lo[p]), hi[p])
        chi = min(max(np.searchsorted(grid, c + GAUSS_FWHM * f), clo), hi[p])
        core = out[clo:chi]
        x = grid[clo:chi]
        for i in range(core.shape[0]):
            core[i] += a * pseudo_voigt(x[i] - c, f, e)[0]
        if e > 0.0:
            for s0, s1 in ((lo[p], clo), (chi, hi[p])):
                tail = out[s0:s1]
                x = grid[s0:s1]
                for i in range(tail.shape[0]):
                    tail[i] += a * _lorentz_tail(x[i] - c, f, e)
    return out


# ----------------------------------------------------------------------------- TCH widths


@njit(cache=True, inline="always")
def tch(g, lo):
    """Thompson–Cox–Hastings (1987): total FWHM Γ and η from the Gaussian and Lorentzian FWHMs
    (one unit), with ∂Γ/∂g, ∂Γ/∂lo, ∂η/∂g, ∂η/∂lo."""
    p = (g**5 + 2.69269 * g**4 * lo + 2.42843 * g**3 * lo**2 + 4.47163 * g**2 * lo**3
         + 0.07842 * g * lo**4 + lo**5)  # fmt: skip
    fw = p**0.2
    dp_dg = (5 * g**4 + 4 * 2.69269 * g**3 * lo + 3 * 2.42843 * g**2 * lo**2
             + 2 * 4.47163 * g * lo**3 + 0.07842 * lo**4)  # fmt: skip
    dp_dl = (2.69269 * g**4 + 2 * 2.42843 * g**3 * lo + 3 * 4.47163 * g**2 * lo**2
             + 4 * 0.07842 * g * lo**3 + 5 * lo**4)  # fmt: skip
    dfw_dg = 0.2 * fw / p * dp_dg
    dfw_dl = 0.2 * fw / p * dp_dl
    q = lo / fw
    eta = 1.36603 * q - 0.47719 * q * q + 0.11116 * q * q * q
    deta_dq = 1.36603 - 2 * 0.47719 * q + 3 * 0.11116 * q * q
    dq_dg = -lo / (fw * fw) * dfw_dg
    dq_dl = 1.0 / fw - lo / (fw * fw) * dfw_dl
    return fw, eta, dfw_dg, dfw_dl, deta_dq * dq_dg, deta_dq * dq_dl


@njit(cache=True, inline="always")
def gsas_tch(sig, gam):
    """:func:`tch` in GSAS-II terms: σ² (centideg²) and γ (centideg), each floored at 0.001 as
    GSAS-II does; FWHM in degrees, derivatives with respect to σ² and γ."""
    clamp_s = sig < 0.001
    clamp_g = gam < 0.001
    if clamp_s:
        sig = 0.001
    if clamp_g:
        gam = 0.001
    fw, eta, dfw_dg, dfw_dl, deta_dg, deta_dl = tch(_S8LN2 * math.sqrt(sig) / 100.0, gam / 100.0)
    dg_dsig = 0.0 if clamp_s else _S8LN2 / (200.0 * math.sqrt(sig))
    dl_dgam = 0.0 if clamp_g else 0.01
    return fw, eta, dfw_dg * dg_dsig, dfw_dl * dl_dgam, deta_dg * dg_dsig, deta_dl * dl_dgam


@njit(cache=True)
def tch_arrays(a, b, gsas):
    """:func:`tch` (value only) over arrays; with *gsas*, *a* and *b* are GSAS-II's σ² and γ
    (:func:`gsas_tch`), else Gaussian and Lorentzian FWHMs."""
    fw = np.empty(a.shape[0])
    eta = np.empty(a.shape[0])
    for k in range(a.shape[0]):
        if gsas:
            fw[k], eta[k], _, _, _, _ = gsas_tch(a[k], b[k])
        else:
            fw[k], eta[k], _, _, _, _ = tch(a[k], b[k])
    return fw, eta


# ----------------------------------------------------------------------------- FCJ asymmetry


@njit(cache=True, inline="always")
def fcj_phi_min(pos, shl):
    """2φ_min (deg): where the axial-divergence tail of a peak at 2θ = *pos* ends (FCJ 1994)."""
    tmp = math.sqrt(1.0 + shl * shl) * math.cos(pos * _D2R)
    if abs(tmp) <= 1.0:
        return math.acos(tmp) / _D2R
    return 0.0 if tmp > 0 else 180.0


@njit(cache=True)
def fcj_extent_array(pos, shl):
    """|2θ − 2φ_min| per peak (0 without asymmetry)."""
    out = np.zeros(pos.shape[0])
    if shl > 0.0:
        for k in range(pos.shape[0]):
            out[k] = abs(pos[k] - fcj_phi_min(pos[k], shl))
    return out


@njit(cache=True)
def _fcj_setup(pos, shl, gam, nodes, weights, orders):
    """Quadrature nodes δ_k and weights w_k·G_k of the FCJ convolution for one peak."""
    if shl <= 0.0:
        d = np.empty(1)
        w = np.empty(1)
        d[0] = pos
        w[0] = 1.0
        return d, w
    c2t = math.cos(pos * _D2R)
    s2t = math.sin(pos * _D2R)
    emin = fcj_phi_min(pos, shl)
    extent = abs(pos - emin)
    # GSAS-II's count: 300 intervals per Lorentzian γ (centideg) of asymmetric extent, 200 per
    # degree for a pure Gaussian; then the next order of the table (at most 400)
    if gam > 0.0:
        k = int(min(300.0 * extent / gam, 1e6))
    else:
        k = int(200.0 * extent)
    idx = 0
    while idx < len(orders) - 1 and k > orders[idx]:
        idx += 1
    n = orders[idx] // 2
    d = np.empty(n)
    w = np.empty(n)
    for j in range(n):
        delta = emin + (pos - emin) * nodes[idx, j]
        sd = math.sin(delta * _D2R)
        cd = math.cos(delta * _D2R)
        t = s2t * s2t - sd * sd
        if pos > 45.0:
            t = cd * cd - c2t * c2t
        f = abs(c2t) / math.sqrt(t) if t > 0 else 1.0
        g = (-1.0 + shl * f) / cd
        d[j] = delta
        w[j] = weights[idx, j] * g
    return d, w


@njit(cache=True)
def _fcj_peak(x, lo, hi, pos, fw, eta, gam, shl, nodes, weights, orders, out, dpos, dfw, deta):
    """One FCJ pseudo-Voigt on x[lo:hi] into out, with its derivatives in position, FWHM, η
    (*gam*, GSAS-II's γ in centideg, sets the quadrature order as GSAS-II does). Returns the
    weighted mean node δ̄ (where the far tails are centred)."""
    d, w = _fcj_setup(pos, shl, gam, nodes, weights, orders)
    sw = 0.0
    sd = 0.0
    for j in range(len(w)):
        sw += w[j]
        sd += w[j] * d[j]
    for i in range(lo, hi):
        s = 0.0
        sp = 0.0
        sf = 0.0
        se = 0.0
        for j in range(len(w)):
            v, vx, vf, ve = pseudo_voigt(x[i] - d[j], fw, eta)
            s += w[j] * v
            sp += w[j] * vx
            sf += w[j] * vf
            se += w[j] * ve
        out[i - lo] = s / sw
        dpos[i - lo] = -sp / sw
        dfw[i - lo] = sf / sw
        deta[i - lo] = se / sw
    return sd / sw


@njit(cache=True)
def fcj_render_jacobian(x, pos, sig, gam, shl, area, lo, hi, Cpos, Csig, Cgam, Carea, ishl,
                        nodes, weights, orders):  # fmt: skip
    """Σ_k area_k · S_k(x) (FCJ pseudo-Voigts of GSAS-II widths, no background) and the Jacobian
    J[i, p] = Σ_k ∂(area_k S_k(x_i))/∂p; with P = 0 columns, the pattern alone.

    Cpos, Csig, Cgam, Carea (npeaks, P) hold d pos_k/dp, dσ²_k/dp, dγ_k/dp, d area_k/dp; column
    *ishl* (or −1) is SH/L, differentiated numerically.

    Each peak covers x[lo:hi] (GSAS-II's long windows), computed in full within its core, the
    asymmetric range [2φ_min, 2θ] ± CORE_FWHM·FWHM. Beyond it the Gaussian is exactly 0 and the
    FCJ convolution of the Lorentzian is one Lorentzian at the mean node to within
    (extent/distance)² — a few 1e-5 of the peak height — so the tails cost one division a point.
    They carry a percent or two of a peak's area; the Jacobian leaves them out (they change the
    step LM proposes, not the χ² that accepts it).
    """
    n = len(x)
    P = Cpos.shape[1]
    y = np.zeros(n)
    J = np.zeros((n, P))
    nmax = 0
    for k in range(len(pos)):
        nmax = max(nmax, hi[k] - lo[k])
    buf = np.empty(nmax)
    bp = np.empty(nmax)
    bf = np.empty(nmax)
    be = np.empty(nmax)
    bs = np.empty(nmax)
    t1 = np.empty(nmax)
    t2 = np.empty(nmax)
    t3 = np.empty(nmax)
    hshl = 1e-4
    for k in range(len(pos)):
        if hi[k] <= lo[k]:
            continue
        fw, eta, dfw_ds, dfw_dg, deta_ds, deta_dg = gsas_tch(sig[k], gam[k])
        edge = fcj_phi_min(pos[k], shl) if shl > 0.0 else pos[k]
        clo = max(lo[k], np.searchsorted(x, min(edge, pos[k]) - CORE_FWHM * fw))
        chi = min(hi[k], np.searchsorted(x, max(edge, pos[k]) + CORE_FWHM * fw))
        if chi < clo:
            chi = clo
        dbar = _fcj_peak(x, clo, chi, pos[k], fw, eta, gam[k], shl, nodes, weights, orders, buf,
                         bp, bf, be)  # fmt: skip
        if ishl >= 0:
            _fcj_peak(x, clo, chi, pos[k], fw, eta, gam[k], shl + hshl, nodes, weights, orders,
                      bs, t1, t2, t3)  # fmt: skip
        a = area[k]
        for i in range(lo[k], clo):
            y[i] += a * _lorentz_tail(x[i] - dbar, fw, eta)
        for i in range(chi, hi[k]):
            y[i] += a * _lorentz_tail(x[i] - dbar, fw, eta)
        for i in range(clo, chi):
            j = i - clo
            y[i] += a * buf[j]
            ds = bf[j] * dfw_ds + be[j] * deta_ds
            dg = bf[j] * dfw_dg + be[j] * deta_dg
            for p in range(P):
                J[i, p] += (
                    a * (bp[j] * Cpos[k, p] + ds * Csig[k, p] + dg * Cgam[k, p])
                    + buf[j] * Carea[k, p]
                )
            if ishl >= 0:
                J[i, ishl] += a * (bs[j] - buf[j]) / hshl
    return y, J
