"""Where a measured scan can be trusted: the range a refinement uses when the user gives none.

A scan is sometimes stitched from segments measured differently (another counting time, slit,
detector mode), and the joint shows as a step in the background that no smooth background
function can follow and no structure explains. The DSMO scan of the BBO-Rietveld data is one:
at 107.2° its background jumps from about 100 to 230 counts and the Bragg peaks above it are a
tenth of what the structure refined below predicts, so refining 10–120° fits the joint, not the
crystal (best Rwp 13.7–14.3 % against 8.9 % on 15–100°).

:func:`background_steps` finds such steps: the background level of each 1° bin is a low
quantile of its counts (peaks are few in a bin's lowest tenth); a step is where the median level
of the bins after a joint differs from that of the bins before it by a large fraction and far
beyond counting noise, both sides are flat, and the change happens across the joint rather than
gradually. A smoothly falling air-scatter background, a broad peak or a cluster of peaks does
not pass all four. :func:`usable_range` keeps the longest
stretch between steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BIN_DEG = 1.0  # width of a background bin
QUANTILE = 0.1  # the bin's background: this quantile of its counts
SIDE_BINS = 5  # bins on either side of a candidate joint (their median is the level)
MIN_RELATIVE = 1.0  # a step at least doubles (or halves) the level
MIN_SIGMA = 10.0  # ... and by this many standard errors of the level
FLAT = 0.2  # each side's drift and scatter stay under this share of the step
ABRUPT = 0.7  # ... and most of the change happens across the joint's bin, not gradually


@dataclass(frozen=True)
class Step:
    """A background discontinuity at *two_theta* (deg): level *before* → *after* (counts)."""

    two_theta: float
    before: float
    after: float

    def describe(self) -> str:
        return (
            f"the background steps from {self.before:.0f} to {self.after:.0f} counts at "
            f"{self.two_theta:.1f}°"
        )


def _levels(two_theta: np.ndarray, counts: np.ndarray):
    edges = np.arange(two_theta[0], two_theta[-1] + BIN_DEG, BIN_DEG)
    idx = np.searchsorted(two_theta, edges)
    centres, levels, sizes = [], [], []
    for a, b in zip(idx[:-1], idx[1:]):
        if b - a >= 5:
            centres.append(float(two_theta[a:b].mean()))
            levels.append(float(np.quantile(counts[a:b], QUANTILE)))
            sizes.append(b - a)
    return np.array(centres), np.array(levels), np.array(sizes)


def background_steps(two_theta, counts) -> list[Step]:
    """Steps in the background of a scan (2θ ascending, raw counts), lowest angle first."""
    tt = np.asarray(two_theta, dtype=float)
    y = np.asarray(counts, dtype=float)
    centres, levels, sizes = _levels(tt, y)
    k = SIDE_BINS
    found: list[Step] = []
    i = k
    while i < len(levels) - k:
        left, right = levels[i - k : i], levels[i + 1 : i + 1 + k]  # bin i may hold the joint
        lo_level, hi_level = float(np.median(left)), float(np.median(right))
        change = hi_level - lo_level
        # standard error of a low quantile of n Poisson counts, roughly 1.5·√(level/n)
        noise = 1.5 * np.sqrt(max(min(lo_level, hi_level), 1.0) / np.median(sizes))
        # each side flat: its straight-line drift and scatter both small against the step
        spread = max(_side(centres[i - k : i], left), _side(centres[i + 1 : i + 1 + k], right))
        abrupt = abs(levels[i + 1] - levels[i - 1]) >= ABRUPT * abs(change)
        if (
            abs(change) > MIN_RELATIVE * max(min(lo_level, hi_level), 1.0)
            and abs(change) > MIN_SIGMA * noise
            and spread < FLAT * abs(change)
            and abrupt
        ):
            j0 = int(np.searchsorted(tt, centres[i - 1]))
            j1 = int(np.searchsorted(tt, centres[i + 1]))
            # the joint: where the smoothed counts first cross halfway between the two levels
            seg = y[j0:j1]
            smooth = np.convolve(seg, np.ones(5) / 5, mode="same") if len(seg) > 5 else seg
            cross = np.nonzero((smooth - 0.5 * (lo_level + hi_level)) * np.sign(change) > 0)[0]
            at = tt[j0 + int(cross[0])] if len(cross) else float(centres[i])
            found.append(Step(float(at), lo_level, hi_level))
            i += k + 1  # the bins after a step describe the new level, not another step
        else:
            i += 1
    return found


def _side(x: np.ndarray, v: np.ndarray) -> float:
    """How far one side's bin levels are from a constant: the drift of their straight-line fit
    across the side, or their scatter about it, whichever is larger."""
    slope, intercept = np.polyfit(x, v, 1)
    drift = abs(slope) * (x[-1] - x[0])
    scatter = float(np.median(np.abs(v - (slope * x + intercept))))
    return max(drift, scatter)


def usable_range(two_theta, counts, margin: float = 0.3) -> tuple[tuple[float, float], list[Step]]:
    """The longest stretch of the scan between background steps (*margin* degrees kept clear
    of each joint), and the steps found; the whole scan when there are none."""
    tt = np.asarray(two_theta, dtype=float)
    steps = background_steps(tt, counts)
    bounds = [float(tt[0])] + [s.two_theta for s in steps] + [float(tt[-1])]
    pieces = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        lo = a if a == tt[0] else a + margin
        hi = b if b == tt[-1] else b - margin
        pieces.append((lo, hi))
    lo, hi = max(pieces, key=lambda p: p[1] - p[0])
    return (lo, hi), steps
