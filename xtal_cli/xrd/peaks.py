"""Peak finding for measured and profile patterns: background, Kα2 stripping, smoothing, picking.

The pipeline is the classic one of powder-diffraction search programs, with defaults chosen so
that the shared laboratory scans need no tuning:

1. resample to a uniform 2θ grid when the steps vary (SNIP and Savitzky–Golay need one);
2. background by SNIP (Ryan et al. 1988; Morháč 2009) on the log-log-sqrt transformed signal,
   or asymmetric least squares (Eilers & Boelens 2005);
3. Kα2 stripping by Rachinger's recursion (J. Sci. Instrum. 25, 254, 1948) when ``ka2`` is given;
4. Savitzky–Golay smoothing with a window set from the width of the strongest peaks;
5. ``scipy.signal.find_peaks`` with a prominence threshold in units of the estimated noise, which
   grows like Poisson noise with the signal level, plus a floor relative to the strongest peak.

Positions are refined by a parabola through the three top points; the position uncertainty σ
is the Cramér–Rao bound of a Gaussian peak's position in white noise (plus the grid quantisation).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from xtal_cli.errors import ParameterError, XtalError

# Background window (degrees 2θ): wider than any Bragg peak of a crystalline lab sample, narrower
# than amorphous humps and sample-holder scattering.
DEFAULT_BACKGROUND_WIDTH = 1.5
# Peaks must rise this many local noise σ above their surroundings (scipy's prominence).
DEFAULT_NOISE_SIGMAS = 5.0
DEFAULT_MIN_RELATIVE_HEIGHT = 0.01
SHOULDER_WINDOW = 0.75


@dataclass
class Peaks:
    """Picked peaks (sorted by 2θ) and the processed signal they were picked from."""

    two_theta: np.ndarray  # degrees
    height: np.ndarray  # background-subtracted (and Kα2-stripped) height
    fwhm: np.ndarray  # degrees
    sigma: np.ndarray  # estimated standard uncertainty of the position, degrees
    area: np.ndarray  # integrated intensity estimate (pseudo-Voigt-ish: 1.064 · height · fwhm)
    prominence: np.ndarray
    grid: np.ndarray  # the (uniform) 2θ grid of the arrays below
    background: np.ndarray  # estimated background on the grid
    stripped: np.ndarray  # net signal on the grid: smoothed, background removed, Kα2 stripped
    noise: float  # robust σ of the noise at background level (after smoothing)
    settings: dict = field(default_factory=dict)
    shoulder: np.ndarray | None = None  # True: found as a shoulder (no maximum of its own)

    def __len__(self) -> int:
        return len(self.two_theta)

    @property
    def relative_height(self) -> np.ndarray:
        """Heights scaled so the strongest peak is 100 (like stick intensities)."""
        top = self.height.max() if len(self.height) else 1.0
        return 100.0 * self.height / top


# ----------------------------------------------------------------------------- background


def snip_background(y: np.ndarray, half_width: int, *, lls: bool = True) -> np.ndarray:
    """SNIP background with a decreasing clipping window (Morháč & Matoušek 2008).

    *half_width* (points) should be about the full base width of the broadest Bragg peak. The
    log-log-sqrt (LLS) transform compresses strong peaks so that weak ones are not eaten.

    Kept rather than pybaselines' ``smooth.snip``: that one also clips its edge padding, so
    within a window of the ends its background differs (by up to 0.5 % of the strongest peak
    on the shared scans, 63 % on a short excerpt; the picked peaks were the same) and it is
    2-3x slower (bench/results/libraries.json). Ours keeps the padding at the edge values.
    """
    y = np.asarray(y, dtype=float)
    half_width = int(max(1, min(half_width, (len(y) - 1) // 2)))
    offset = float(min(0.0, y.min()))
    v = y - offset
    if lls:
        v = np.log(np.log(np.sqrt(v + 1.0) + 1.0) + 1.0)
    pad = np.pad(v, half_width, mode="edge")
    n = len(v)
    for p in range(half_width, 0, -1):
        centre = pad[half_width : half_width + n]
        mean = 0.5 * (
            pad[half_width - p : half_width - p + n] + pad[half_width + p : half_width + p + n]
        )
        pad[half_width : half_width + n] = np.minimum(centre, mean)
    v = pad[half_width : half_width + n]
    if lls:
        v = (np.exp(np.exp(v) - 1.0) - 1.0) ** 2 - 1.0
    return v + offset


def als_background(
    y: np.ndarray, *, lam: float = 1e7, p: float = 0.01, iterations: int = 10
) -> np.ndarray:
    """Asymmetric least-squares baseline (Eilers & Boelens 2005): smooth, and mostly below y.

    *lam* weighs smoothness (second differences), *p* is the weight of points above the
    baseline (1 − *p* below), *iterations* the number of weighted solves. pybaselines'
    ``whittaker.asls`` with no early stop: the same baseline as our former sparse solve
    (within 2e-7 of the strongest net peak, the same picked peaks, on the shared and test
    scans; bench/results/libraries.json) and ~14x faster with its banded solver.
    """
    from pybaselines.whittaker import asls

    if not lam > 0:
        raise ParameterError("lam", lam, "must be positive")
    if not 0 < p < 1:
        raise ParameterError("p", p, "must be within (0, 1)")
    if int(iterations) != iterations or iterations < 1:
        raise ParameterError("iterations", iterations, "must be a positive integer")
    y = np.asarray(y, dtype=float)
    return asls(y, lam=lam, p=p, max_iter=int(iterations) - 1, tol=0.0)[0]


# ----------------------------------------------------------------------------- Kα2


def strip_ka2(
    two_theta: np.ndarray,
    intensity: np.ndarray,
    wavelength1: float,
    wavelength2: float,
    ratio: float,
) -> np.ndarray:
    """Rachinger Kα2 stripping: I₁(2θ) = I(2θ) − R·I₁(2θ′), with 2θ′ the Kα1 angle whose Kα2
    lands at 2θ (sin θ′ = λ₁/λ₂ · sin θ). Works point by point in increasing 2θ."""
    from xtal_cli.xrd.lineshape import doublet_two_theta

    tt = np.asarray(two_theta, dtype=float)
    y = np.asarray(intensity, dtype=float)
    # unreached only if λ₁ > λ₂: the old clip to sin θ′ = 1 put it at 180°
    source = np.nan_to_num(doublet_two_theta(tt, wavelength2, wavelength1), nan=180.0)
    pos = np.interp(source, tt, np.arange(len(tt)), left=-1.0)  # fractional index of 2θ′
    out = y.tolist()
    pos_l = pos.tolist()
    for i in range(len(out)):
        f = pos_l[i]
        if f < 0:
            continue
        j = int(f)
        w = f - j
        if j + 1 < i:
            prev = out[j] * (1.0 - w) + out[j + 1] * w
        elif j < i:
            prev = out[j]
        else:
            continue
        out[i] -= ratio * prev
    return np.asarray(out)


# ----------------------------------------------------------------------------- noise, smoothing


def robust_noise(y: np.ndarray, lag: int = 1) -> float:
    """σ of the noise from the median absolute second difference at *lag* points.

    Insensitive to peaks (few points) and to smooth background (cancels); a lag longer than the
    correlation length of the noise (detector binning, smoothing) avoids underestimating it.
    """
    y = np.asarray(y, dtype=float)
    lag = max(1, int(lag))
    if len(y) <= 2 * lag:
        return 0.0
    d2 = y[2 * lag :] - 2.0 * y[lag:-lag] + y[: -2 * lag]
    return float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6.0))


def typical_fwhm_points(net: np.ndarray, noise: float, signal: np.ndarray | None = None) -> float:
    """Median FWHM (in grid points) of the five most prominent peaks; 0 when there are none.

    With *signal* (the raw counts), the 10 σ prominence floor grows like Poisson noise with the
    signal level, so that noise spikes on top of a strong peak do not count as narrow peaks.
    """
    from scipy.signal import find_peaks as sp_find_peaks
    from scipy.signal import peak_widths

    floor = 10 * noise if noise > 0 else 0.05 * max(float(net.max()), 0.0)
    if floor <= 0:
        return 0.0
    idx, props = sp_find_peaks(net, prominence=floor)
    if len(idx) == 0:
        return 0.0
    prom = props["prominences"]
    if signal is not None and noise > 0 and np.median(signal) > 0:
        local = np.sqrt(np.maximum(1.0, signal[idx] / np.median(signal)))
        ok = prom >= floor * local
        if ok.any():
            idx, prom = idx[ok], prom[ok]
    top = idx[np.argsort(prom)[-5:]]
    return float(np.median(peak_widths(net, top, rel_height=0.5)[0]))


def _noise_gain(window: int, polyorder: int = 3) -> float:
    """Σc² of a Savitzky–Golay filter: the factor by which it scales white-noise variance."""
    if not window:
        return 1.0
    from scipy.signal import savgol_coeffs

    return float(np.sum(savgol_coeffs(window, polyorder) ** 2))


def _refine_tops(tt, net, idx, width_points):
    """Least-squares parabola through the points within ±0.35 FWHM of each maximum."""
    step = tt[1] - tt[0]
    pos = tt[idx].astype(float)
    height = net[idx].astype(float)
    for k, (i, w) in enumerate(zip(idx, width_points)):
        hw = max(1, int(round(0.35 * w)))
        lo, hi = max(0, i - hw), min(len(net), i + hw + 1)
        if hi - lo < 3:
            continue
        x = np.arange(lo, hi) - i
        c2, c1, c0 = np.polyfit(x, net[lo:hi], 2)
        if c2 >= 0:
            continue
        v = -c1 / (2 * c2)
        if abs(v) <= hw:
            pos[k] = tt[i] + v * step
            height[k] = c0 - c1 * c1 / (4 * c2)
    return pos, height


def _fwhm_points(net: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """FWHM (points) of each picked maximum (*idx* sorted), at half its height above zero.

    Each side is followed down to the valley towards the neighbouring picked peak; a side that
    reaches that valley before half height (an unresolved neighbour) is not trusted and the
    other side's half width counts twice. (scipy's ``peak_widths`` alone measures at half the
    prominence and lets a lower neighbour merge into one very broad "peak".)
    """
    from scipy.signal import peak_widths

    n = len(idx)
    if n == 0:
        return np.zeros(0)
    idx = np.asarray(idx, dtype=np.intp)
    valleys = np.empty(n + 1, dtype=np.intp)
    valleys[0], valleys[-1] = 0, len(net) - 1
    for k in range(n - 1):
        a, b = int(idx[k]), int(idx[k + 1])
        valleys[k + 1] = a + int(np.argmin(net[a : b + 1]))
    lb, rb = valleys[:-1], valleys[1:]
    h = net[idx].astype(float)
    _, _, left, right = peak_widths(net, idx, rel_height=0.5, prominence_data=(h, lb, rb))
    hl, hr = idx - left, right - idx
    blocked_l, blocked_r = net[lb] >= 0.5 * h, net[rb] >= 0.5 * h
    w = hl + hr
    w = np.where(blocked_l & ~blocked_r, 2.0 * hr, w)
    w = np.where(blocked_r & ~blocked_l, 2.0 * hl, w)
    w = np.where(blocked_l & blocked_r, 2.0 * np.minimum(hl, hr), w)
    return np.maximum(w, 1.0)


def _find_shoulders(tt, net, y, idx, width_points, typical, noise, level, noise_sigmas):
    """Reflections without a maximum: significant minima of the smoothed second derivative
    more than half a FWHM from every picked maximum.

    The second derivative comes from a Savitzky–Golay filter (cubic, window half the typical
    FWHM, on the already smoothed net signal). Its noise σ is the robust spread over the
    background points, scaled like the peaks' Poisson noise with the signal level; a shoulder
    needs a curvature of ``noise_sigmas`` of those σ and a net height of ``noise_sigmas`` noise
    σ, like a peak's prominence. Returns (indices, positions, heights, FWHMs in points).
    """
    from scipy.signal import find_peaks as sp_find_peaks
    from scipy.signal import savgol_filter

    empty = (np.zeros(0, dtype=np.intp), np.zeros(0), np.zeros(0), np.zeros(0))
    typical = typical if typical > 0 else float(np.median(width_points))
    win = max(5, _odd(SHOULDER_WINDOW * typical))
    if win >= len(net) or noise <= 0:
        return empty
    d2 = savgol_filter(net, win, 3, deriv=2, mode="interp")
    quiet = net < 3.0 * noise
    ref = d2[quiet] if quiet.sum() >= 50 else d2
    sd = float(1.4826 * np.median(np.abs(ref - np.median(ref))))
    if sd <= 0:
        return empty
    cand, _ = sp_find_peaks(-d2, height=noise_sigmas * sd, distance=max(1, int(0.5 * typical)))
    cand = cand[(cand >= win) & (cand < len(net) - win)]
    if not len(cand):
        return empty
    scale = np.sqrt(np.maximum(1.0, y[cand] / level)) if level is not None else 1.0
    ok = (-d2[cand] >= noise_sigmas * sd * scale) & (net[cand] >= noise_sigmas * noise * scale)
    # distance to the nearest picked maximum, in units of that maximum's FWHM
    j = np.searchsorted(idx, cand)
    jl, jr = np.clip(j - 1, 0, len(idx) - 1), np.clip(j, 0, len(idx) - 1)
    dl, dr = np.abs(cand - idx[jl]), np.abs(idx[jr] - cand)
    near = np.where(dl <= dr, jl, jr)
    ok &= np.abs(cand - idx[near]) > 0.5 * width_points[near]
    cand, near = cand[ok], near[ok]
    if not len(cand):
        return empty
    a, b, c = d2[cand - 1], d2[cand], d2[cand + 1]
    denom = a - 2.0 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(denom > 0, 0.5 * (a - c) / denom, 0.0)
    pos = tt[cand] + np.clip(v, -0.5, 0.5) * (tt[1] - tt[0])
    fwhm = width_points[near]
    # a Gaussian's curvature at its centre is -A/s²: the height without the neighbour's flank
    height = np.minimum(net[cand], -b * (fwhm / 2.3548) ** 2)
    return cand, pos, height, fwhm


def _odd(x: float) -> int:
    n = int(round(x))
    return n if n % 2 == 1 else n + 1


# ----------------------------------------------------------------------------- main entry


def find_peaks(
    two_theta,
    intensity,
    *,
    ka2: tuple[float, float, float] | None = None,
    prominence: float | None = None,
    min_relative_height: float = DEFAULT_MIN_RELATIVE_HEIGHT,
    background: str | None = "snip",
    smooth: int | str | None = "auto",
    background_width: float = DEFAULT_BACKGROUND_WIDTH,
    noise_sigmas: float = DEFAULT_NOISE_SIGMAS,
    shoulders: bool = True,
) -> Peaks:
    """Pick the Bragg peaks of a pattern on a 2θ grid.

    ka2: ``(λ1, λ2, I2/I1)`` to strip the Kα2 component (Rachinger), or None to keep it.
    prominence: absolute prominence threshold (intensity units); None = ``noise_sigmas`` × the
        local noise, which scales like √signal relative to the background level.
    min_relative_height: drop peaks lower than this fraction of the strongest net peak.
    background: ``"snip"`` (default), ``"als"`` or None (data are already background-free).
    smooth: ``"auto"`` (Savitzky–Golay window from the peak widths), an odd window in points,
        or None/0 for no smoothing.
    background_width: SNIP window in degrees 2θ (about the base width of the broadest peak).
    shoulders: also report reflections without a maximum of their own (second-derivative
        minima beside a stronger peak; ``Peaks.shoulder`` marks them).
    """
    from scipy.signal import find_peaks as sp_find_peaks
    from scipy.signal import savgol_filter

    if background not in ("snip", "als", None, "none"):
        raise ParameterError("background", background, "use snip, als or none")
    if prominence is not None and not prominence >= 0:
        raise ParameterError("prominence", prominence, "must be zero or positive, or None")
    if not 0 <= min_relative_height <= 1:
        raise ParameterError(
            "min_relative_height", min_relative_height, "must be a fraction within 0-1"
        )
    if not background_width > 0:
        raise ParameterError("background_width", background_width, "must be positive (° 2θ)")
    if not noise_sigmas >= 0:
        raise ParameterError("noise_sigmas", noise_sigmas, "must be zero or positive")
    if smooth != "auto" and smooth and (int(smooth) < 5 or int(smooth) % 2 == 0):
        raise ParameterError("smooth", smooth, "use auto, None or an odd window of at least 5")
    tt = np.asarray(two_theta, dtype=float)
    y = np.asarray(intensity, dtype=float)
    if tt.shape != y.shape or tt.ndim != 1:
        raise XtalError("find_peaks: 2θ and intensity must be 1-D arrays of the same length")
    if len(tt) < 10:
        raise XtalError(f"find_peaks: only {len(tt)} points; a powder pattern needs more")
    if not (np.all(np.isfinite(tt)) and np.all(np.isfinite(y))):
        raise XtalError("find_peaks: 2θ or intensity contains NaN or infinite values")
    order = np.argsort(tt, kind="stable")
    tt, y = tt[order], y[order]
    steps = np.diff(tt)
    step = float(np.median(steps))
    if step <= 0:
        raise XtalError("find_peaks: 2θ values do not increase")
    if np.any(np.abs(steps - step) > 0.01 * step):  # non-uniform: resample at the median step
        grid = np.arange(tt[0], tt[-1] + 0.5 * step, step)
        y = np.interp(grid, tt, y)
        tt = grid

    estimate_bg = background in ("snip", "als")

    def _background(signal):
        if background == "snip":
            return snip_background(signal, int(round(background_width / step)))
        if background == "als":
            return als_background(signal)
        return np.zeros_like(signal)

    # A first pass on the raw data gives the noise and the typical peak width ...
    net0 = y - _background(y) if estimate_bg else y
    raw_noise = robust_noise(net0)
    fwhm_points = typical_fwhm_points(net0, raw_noise, y if estimate_bg else None)
    if smooth == "auto":  # half the FWHM keeps peak heights within about 1 %
        window = max(5, _odd(0.5 * fwhm_points)) if fwhm_points >= 6 else 0
    else:
        window = int(smooth or 0)
    if not window or window >= len(y):
        window = 0
    # ... then background and peaks come from the smoothed signal.
    ys = savgol_filter(y, window, 3, mode="interp") if window else y
    bg = _background(ys)
    net = ys - bg
    # Noise of the signal peaks are picked from, at a lag beyond its correlation length.
    noise = robust_noise(net, lag=max(3, window))
    if estimate_bg and noise > 0:
        # Clipping filters settle on the lower envelope of the noise: lift by the median residual
        # of the points that are background, so heights and the plotted background are unbiased.
        quiet = net < np.median(net) + 3.0 * noise
        offset = float(np.median(net[quiet]))
        bg = bg + offset
        net = net - offset

    if ka2 is not None:
        l1, l2, ratio = (float(v) for v in ka2)
        net = strip_ka2(tt, net, l1, l2, ratio)

    # Local noise grows like Poisson noise with the signal level (relative to the typical level,
    # which is the background's for any pattern that is mostly background).
    level = float(np.median(y)) if np.median(y) > 0 and noise > 0 else None
    # Prominence is measured within about three peak widths: a noise wiggle cannot borrow the
    # depth of a distant valley, which keeps false peaks rare at a few σ.
    wlen = max(7, _odd(3 * fwhm_points)) if fwhm_points > 0 else None
    with warnings.catch_warnings():  # flat-topped noiseless maxima have prominence 0: dropped
        warnings.simplefilter("ignore")
        candidates, props = sp_find_peaks(
            net, prominence=max(noise, 1e-12 * max(net.max(), 1.0)), wlen=wlen
        )
    prom = props["prominences"]
    if prominence is None:
        if level is not None:
            local = noise * np.sqrt(np.maximum(1.0, (y[candidates]) / level))
        else:
            local = np.full(len(candidates), noise)
        keep = prom >= noise_sigmas * local
    else:
        keep = prom >= float(prominence)
    keep &= net[candidates] > 0
    idx, prom = candidates[keep], prom[keep]

    width_points = _fwhm_points(net, idx)
    pos, height = _refine_tops(tt, net, idx, width_points)
    widths = np.maximum(width_points * step, step)
    # Anything broader than the background window is background the SNIP could not follow
    # (amorphous humps, sample-holder scattering), not a Bragg peak.
    if background == "snip":
        bragg = widths <= background_width
        idx, prom, pos, height, widths = (v[bragg] for v in (idx, prom, pos, height, widths))
    # Relative floor on height or on area: peaks broaden with angle (size, strain, Caglioti), so a
    # high-angle reflection of a few % intensity can be far below 1 % of the strongest height.
    if len(idx):
        area = height * widths
        rel = (height >= min_relative_height * height.max()) | (
            area >= min_relative_height * area.max()
        )
        idx, prom, pos, height, widths = (v[rel] for v in (idx, prom, pos, height, widths))
    shoulder = np.zeros(len(idx), dtype=bool)

    # Shoulders: reflections without a maximum of their own show as a minimum of the second
    # derivative beside a stronger peak (the classic search-program test).
    if shoulders and len(idx):
        s_idx, s_pos, s_height, s_fwhm = _find_shoulders(
            tt, net, y, idx, widths / step, fwhm_points, noise, level, noise_sigmas
        )
        if len(s_idx):
            floor = max(float(prominence or 0.0), min_relative_height * float(height.max()))
            ok = s_height >= floor
            s_idx, s_pos, s_height, s_fwhm = (v[ok] for v in (s_idx, s_pos, s_height, s_fwhm))
        if len(s_idx):
            idx = np.concatenate([idx, s_idx])
            prom = np.concatenate([prom, np.zeros(len(s_idx))])
            pos = np.concatenate([pos, s_pos])
            height = np.concatenate([height, s_height])
            widths = np.concatenate([widths, s_fwhm * step])
            shoulder = np.concatenate([shoulder, np.ones(len(s_idx), dtype=bool)])
            order = np.argsort(pos, kind="stable")
            idx, prom, pos, height, widths, shoulder = (
                v[order] for v in (idx, prom, pos, height, widths, shoulder)
            )

    # Cramér–Rao σ of a Gaussian centre in white noise: (σ_n / A) · sqrt(2 s Δ / √π), with
    # s = FWHM / 2.355. Smoothing made the noise σ_n smaller but correlated; the equivalent
    # white-noise step is Δ / Σc² (c: the Savitzky–Golay coefficients).
    s = widths / 2.3548
    step_eff = step / _noise_gain(window)
    if level is not None:
        local_noise = noise * np.sqrt(np.maximum(1.0, y[idx] / level))
    else:
        local_noise = np.full(len(idx), noise)
    with np.errstate(divide="ignore", invalid="ignore"):
        crlb = local_noise / np.maximum(height, 1e-300) * np.sqrt(2 * s * step_eff / np.sqrt(np.pi))
    sigma = np.sqrt(crlb**2 + step**2 / 12.0)

    # duplicates: a dataclass built field by field (deliberate)
    return Peaks(
        two_theta=pos,
        height=height,
        fwhm=widths,
        sigma=sigma,
        area=1.064 * height * widths,
        prominence=prom,
        grid=tt,
        background=bg,
        stripped=net,
        noise=float(noise),
        shoulder=shoulder,
        settings={
            "background": background or "none",
            "background_width": background_width,
            "smooth_window": window,
            "prominence_window": wlen,
            "ka2": list(ka2) if ka2 is not None else None,
            "prominence": prominence,
            "noise_sigmas": noise_sigmas,
            "min_relative_height": min_relative_height,
            "shoulders": shoulders,
        },
    )


def find_scan_peaks(scan, *, strip_ka2_from_file: bool = True, **kwargs) -> Peaks:
    """:func:`find_peaks` on a :class:`~xtal_cli.io.scans.Scan`, stripping Kα2 when the scan
    names both wavelengths (pass ``ka2=`` to override)."""
    if "ka2" not in kwargs and strip_ka2_from_file and scan.wavelength and scan.wavelength2:
        from xtal_cli.xrd.lineshape import kalpha_doublet

        kwargs["ka2"] = kalpha_doublet(scan.wavelength, scan.wavelength2, scan.ka2_ratio)
    return find_peaks(scan.two_theta, scan.counts, **kwargs)


def plot_peaks(scan, peaks: Peaks, path: str | os.PathLike, *, title: str | None = None) -> None:
    """PNG for a person to check the picking: scan, background, net signal and picked peaks."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    fig = Figure(figsize=(10, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    top.plot(scan.two_theta, scan.counts, lw=0.6, color="0.3", label="scan")
    top.plot(peaks.grid, peaks.background, lw=1.0, color="tab:orange", label="background")
    top.set_ylabel("intensity")
    top.legend(loc="upper right", fontsize=8)
    bottom.plot(
        peaks.grid,
        peaks.stripped,
        lw=0.6,
        color="tab:blue",
        label="net (Kα2 stripped)" if peaks.settings.get("ka2") else "net",
    )
    bottom.plot(
        peaks.two_theta, peaks.height, "v", color="tab:red", ms=4, label=f"{len(peaks)} peaks"
    )
    bottom.set_xlabel("2θ (degrees)")
    bottom.set_ylabel("net intensity")
    bottom.legend(loc="upper right", fontsize=8)
    top.set_title(title if title is not None else (os.path.basename(scan.path) or "pattern"))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
