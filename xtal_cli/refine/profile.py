"""GSAS-II's constant-wavelength peak shape, compiled: TCH pseudo-Voigt with FCJ asymmetry.

Conventions (GSAS-II, CW X-ray):

* Gaussian variance σ² = U tan²θ + V tanθ + W  (centideg²), Lorentzian FWHM γ = X/cosθ + Y tanθ
  (centideg), both floored at 0.001 as GSAS-II does;
* total FWHM and mixing η from Thompson, Cox & Hastings (1987);
* axial-divergence asymmetry by the Finger, Cox & Jephcoat (1994) convolution with
  S/L = H/L = (SH/L)/2, integrated by Gauss–Legendre over [2φ_min, 2θ] with the number of nodes
  chosen from the asymmetric extent over the Lorentzian width (as GSAS's PSVFCJO does);
* each profile is normalised to unit area in degrees 2θ and evaluated only in a window of
  ±``NFWHM`` FWHM around its peak (plus the asymmetric extent), so the cost is linear in the
  number of reflections.

The kernels also accumulate the Jacobian of the whole pattern: for each peak, dS/dpos, dS/dσ²,
dS/dγ are analytic (TCH chain rule) and dS/d(SH/L) is a one-sided difference; global parameters
enter through per-peak coefficient matrices built by the engine.
"""

from __future__ import annotations

import math

import numba
import numpy as np

NFWHM = 15.0  # half-width of the evaluation window, in FWHM
MAX_WINDOW = 8.0  # degrees: the window never grows beyond this
_LN2 = math.log(2.0)
_CG = 2.0 * math.sqrt(_LN2 / math.pi)
_CL = 2.0 / math.pi
_S8LN2 = math.sqrt(8.0 * _LN2)
_D2R = math.pi / 180.0

# Gauss-Legendre tables: the positive half of the nodes of an even-order rule on [-1, 1]
_ORDERS = np.array([2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 30, 40, 50, 60, 80, 100])
_NODES = np.zeros((len(_ORDERS), _ORDERS.max() // 2))
_WEIGHTS = np.zeros_like(_NODES)
for _i, _n in enumerate(_ORDERS):
    _x, _w = np.polynomial.legendre.leggauss(int(_n))
    _NODES[_i, : _n // 2] = _x[_n // 2 :]
    _WEIGHTS[_i, : _n // 2] = _w[_n // 2 :]


def tch(sig, gam):
    """FWHM (degrees) and η of the TCH pseudo-Voigt from σ² (centideg²) and γ (centideg)."""
    sig = np.maximum(np.asarray(sig, dtype=float), 0.001)
    gam = np.maximum(np.asarray(gam, dtype=float), 0.001)
    g = _S8LN2 * np.sqrt(sig) / 100.0
    lo = gam / 100.0
    fw = (g**5 + 2.69269 * g**4 * lo + 2.42843 * g**3 * lo**2 + 4.47163 * g**2 * lo**3
          + 0.07842 * g * lo**4 + lo**5) ** 0.2  # fmt: skip
    q = lo / fw
    eta = 1.36603 * q - 0.47719 * q**2 + 0.11116 * q**3
    return fw, eta


def fcj_extent(pos, shl):
    """|2θ − 2φ_min| in degrees: how far the FCJ asymmetry reaches (0 without asymmetry)."""
    pos = np.asarray(pos, dtype=float)
    if shl <= 0:
        return np.zeros_like(pos)
    c = np.cos(np.radians(pos)) * math.sqrt(1.0 + shl * shl)
    emin = np.where(
        np.abs(c) <= 1.0, np.degrees(np.arccos(np.clip(c, -1, 1))), np.where(c > 0, 0, 180)
    )
    return np.abs(pos - emin)


@numba.njit(cache=True, inline="always")
def _tch_scalar(sig, gam):
    """FWHM, η and their derivatives with respect to σ² and γ (TCH 1987)."""
    clamp_s = sig < 0.001
    clamp_g = gam < 0.001
    if clamp_s:
        sig = 0.001
    if clamp_g:
        gam = 0.001
    g = _S8LN2 * math.sqrt(sig) / 100.0
    lo = gam / 100.0
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
    dg_dsig = 0.0 if clamp_s else _S8LN2 / (200.0 * math.sqrt(sig))
    dl_dgam = 0.0 if clamp_g else 0.01
    return (
        fw,
        eta,
        dfw_dg * dg_dsig,
        dfw_dl * dl_dgam,
        deta_dq * dq_dg * dg_dsig,
        deta_dq * dq_dl * dl_dgam,
    )


@numba.njit(cache=True, inline="always")
def _pv(dx, fw, eta):
    """Unit-area pseudo-Voigt at dx (deg) and its derivatives in dx, FWHM and η."""
    t = dx / fw
    t2 = t * t
    G = _CG / fw * math.exp(-4.0 * _LN2 * t2)
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


@numba.njit(cache=True)
def _fcj_setup(pos, shl, fw, nodes, weights, orders):
    """Quadrature nodes δ_k and weights w_k·G_k of the FCJ convolution for one peak."""
    if shl <= 0.0:
        d = np.empty(1)
        w = np.empty(1)
        d[0] = pos
        w[0] = 1.0
        return d, w
    c2t = math.cos(pos * _D2R)
    s2t = math.sin(pos * _D2R)
    tmp = math.sqrt(1.0 + shl * shl) * c2t
    if abs(tmp) <= 1.0:
        emin = math.acos(tmp) / _D2R
    elif tmp > 0:
        emin = 0.0
    else:
        emin = 180.0
    extent = abs(pos - emin)
    # nodes ~ 6 per FWHM of asymmetric extent (GSAS counts per Lorentzian width, which explodes
    # for nearly Gaussian peaks; the total width is what the integrand varies on)
    k = int(6.0 * extent / max(fw, 1e-4))
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


@numba.njit(cache=True)
def _peak(x, lo, hi, pos, fw, eta, shl, gam, nodes, weights, orders, out, dpos, dfw, deta):
    """Evaluate one FCJ pseudo-Voigt on x[lo:hi] into out (and derivative arrays)."""
    d, w = _fcj_setup(pos, shl, fw, nodes, weights, orders)
    sw = 0.0
    for j in range(len(w)):
        sw += w[j]
    for i in range(lo, hi):
        s = 0.0
        sp = 0.0
        sf = 0.0
        se = 0.0
        for j in range(len(w)):
            v, vx, vf, ve = _pv(x[i] - d[j] + (0.0), fw, eta)
            s += w[j] * v
            sp += w[j] * vx
            sf += w[j] * vf
            se += w[j] * ve
        out[i - lo] = s / sw
        dpos[i - lo] = -sp / sw
        dfw[i - lo] = sf / sw
        deta[i - lo] = se / sw


@numba.njit(cache=True)
def render(x, pos, sig, gam, shl, area, lo, hi, nodes, weights, orders):
    """Σ_k area_k · S_k(x): the calculated peaks without background."""
    y = np.zeros(len(x))
    nmax = 0
    for k in range(len(pos)):
        nmax = max(nmax, hi[k] - lo[k])
    buf = np.empty(nmax)
    b1 = np.empty(nmax)
    b2 = np.empty(nmax)
    b3 = np.empty(nmax)
    for k in range(len(pos)):
        if hi[k] <= lo[k]:
            continue
        fw, eta, _, _, _, _ = _tch_scalar(sig[k], gam[k])
        _peak(
            x, lo[k], hi[k], pos[k], fw, eta, shl, gam[k], nodes, weights, orders, buf, b1, b2, b3
        )
        for i in range(lo[k], hi[k]):
            y[i] += area[k] * buf[i - lo[k]]
    return y


@numba.njit(cache=True)
def render_jacobian(x, pos, sig, gam, shl, area, lo, hi, Cpos, Csig, Cgam, Carea, ishl,
                    nodes, weights, orders):  # fmt: skip
    """Peaks and the Jacobian J[i, p] = Σ_k ∂(area_k S_k(x_i))/∂p.

    Cpos, Csig, Cgam, Carea (npeaks, P) hold d pos_k/dp, dσ²_k/dp, dγ_k/dp, d area_k/dp; column
    *ishl* (or −1) is SH/L, differentiated numerically.
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
        fw, eta, dfw_ds, dfw_dg, deta_ds, deta_dg = _tch_scalar(sig[k], gam[k])
        _peak(
            x, lo[k], hi[k], pos[k], fw, eta, shl, gam[k], nodes, weights, orders, buf, bp, bf, be
        )
        if ishl >= 0:
            _peak(x, lo[k], hi[k], pos[k], fw, eta, shl + hshl, gam[k], nodes, weights, orders,
                  bs, t1, t2, t3)  # fmt: skip
        a = area[k]
        for i in range(lo[k], hi[k]):
            j = i - lo[k]
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


def windows(x: np.ndarray, pos: np.ndarray, fwhm: np.ndarray, shl: float, nfwhm: float = NFWHM):
    """Index range [lo, hi) of x covered by each peak's window (asymmetry side widened)."""
    ext = fcj_extent(pos, shl)
    fwhm = np.minimum(fwhm, MAX_WINDOW / nfwhm)  # a diverging width must not cost the world
    left = pos - nfwhm * fwhm - np.where(pos < 90, ext, 0.0)
    right = pos + nfwhm * fwhm + np.where(pos >= 90, ext, 0.0)
    lo = np.searchsorted(x, left).astype(np.int64)
    hi = np.searchsorted(x, right).astype(np.int64)
    return lo, hi


def calc_peaks(x, pos, sig, gam, shl, area, nfwhm: float = NFWHM) -> np.ndarray:
    """Pattern of peaks (no background) on the grid x, for direct use and tests."""
    x = np.ascontiguousarray(x, dtype=float)
    pos = np.ascontiguousarray(pos, dtype=float)
    sig = np.ascontiguousarray(sig, dtype=float)
    gam = np.ascontiguousarray(gam, dtype=float)
    fw, _ = tch(sig, gam)
    lo, hi = windows(x, pos, fw, shl, nfwhm)
    return render(x, pos, sig, gam, float(shl), np.ascontiguousarray(area, dtype=float), lo, hi,
                  _NODES, _WEIGHTS, _ORDERS)  # fmt: skip
