"""Synthetic multiphase patterns for training a one-target phase detector.

A positive holds the target at a random weight fraction (log-uniform down to
``MixtureSettings.min_fraction``) with 0–3 other phases; a negative holds 1–3 other phases and no
target. Weight fractions become Rietveld scales through ZMV (:mod:`xtal_cli.refine.fractions`,
Hill & Howard): a phase's line intensities are its per-cell |F|²·m·Lp times W / (Z M V), so a
heavy, dense phase at 5 wt % shows as weakly as it would in a weighed mixture. Every phase's
lattice is strained by up to ``strain`` per axis (equal axes keep equal lengths) so that solid
solutions and slightly different reference cells still count; optional random peaks stand for
unknown phases. The sum of all reflections then goes through the augmentation ``simulate
--augment`` draws (:mod:`xtal_cli.xrd.augment`: widths, Kα2, shifts, background, noise), with
March–Dollase texture drawn per phase, on the detector's fixed 2θ grid, scaled to a maximum of 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.xrd.augment import (
    TEXTURE_AXES,
    AugmentSettings,
    augmented_profile,
    draw_augmentation,
    march_dollase,
)
from xtal_cli.xrd.reflections import Sticks

MARGIN = 3.0  # degrees 2θ of reflections kept beyond the grid (shifts and strain move them in)


@dataclass(frozen=True)
class MixtureSettings:
    """How mixtures are drawn; checked on construction, errors name the field."""

    p_target: float = 0.5  # share of positives
    min_fraction: float = 0.03  # lowest target weight fraction (log-uniform up to 1)
    max_others: int = 3  # other phases in one mixture (0..max_others with the target)
    strain: float = 0.004  # largest relative change of a cell length (uniform ±)
    random_peaks: int = 0  # up to this many random peaks per pattern (unknown phases)
    random_peak_intensity: tuple[float, float] = (0.01, 0.3)  # of the strongest line, log-uniform

    def __post_init__(self):
        if not 0 < self.p_target < 1:
            raise ParameterError("p_target", self.p_target, "must be between 0 and 1")
        if not 0 < self.min_fraction < 1:
            raise ParameterError("min_fraction", self.min_fraction, "must be between 0 and 1")
        if not (isinstance(self.max_others, int) and 0 <= self.max_others <= 10):
            raise ParameterError("max_others", self.max_others, "must be a whole number 0-10")
        if not 0 <= self.strain < 0.05:
            raise ParameterError("strain", self.strain, "must be within 0-0.05 (relative)")
        if not (isinstance(self.random_peaks, int) and 0 <= self.random_peaks <= 100):
            raise ParameterError("random_peaks", self.random_peaks, "must be a whole number 0-100")
        lo, hi = self.random_peak_intensity
        if not 0 < lo <= hi:
            raise ParameterError(
                "random_peak_intensity", self.random_peak_intensity, "give 0 < low <= high"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MixtureSettings:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "random_peak_intensity" in kw:
            kw["random_peak_intensity"] = tuple(kw["random_peak_intensity"])
        return cls(**kw)


@dataclass
class PhaseLines:
    """One phase's reflections, ready to be strained and scaled in a mixture."""

    name: str
    hkl: np.ndarray  # (M, 3)
    intensity: np.ndarray  # per unit weight fraction: |F|² m Lp / (Z M V), arbitrary units
    matrix: np.ndarray  # (3, 3) lattice rows, Å
    groups: np.ndarray  # (3,) axis index → strain group (equal lengths share one)


def structure_of_phase(phase):
    """A pymatgen Structure holding every atom of a :class:`~xtal_cli.refine.phases.Phase`
    (its orbits expanded): the detector simulates the phase as identify-phases reads it."""
    from pymatgen.core import Lattice, Structure

    lattice = Lattice.from_parameters(*phase.cell)
    species, coords = [], []
    for site in phase.sites:
        seen: list[np.ndarray] = []
        for pos in np.mod(site.positions(), 1.0):
            if any(np.all(np.abs(((pos - q) + 0.5) % 1.0 - 0.5) < 2e-3) for q in seen):
                continue
            seen.append(pos)
            species.append({el: occ for el, occ in site.species})
            coords.append(pos)
    return Structure(lattice, species, coords)


def phase_lines(candidate, wavelength: float, two_theta_range: tuple[float, float]) -> PhaseLines:
    """Reflections of an :class:`~xtal_cli.identify.candidates.Candidate` on the absolute scale
    that makes weight fractions physical (Hill & Howard: intensity ∝ W / ZMV)."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    from xtal_cli.refine.fractions import cell_mass
    from xtal_cli.refine.phases import cell_volume
    from xtal_cli.xrd.sticks import compute_sticks

    structure = structure_of_phase(candidate.phase)
    lo = max(two_theta_range[0] - MARGIN, 1.0)
    hi = min(two_theta_range[1] + MARGIN, 175.0)
    try:
        sticks = compute_sticks(structure, wavelength, (lo, hi))
        # the engines scale the strongest line to 100; one unscaled pattern gives the per-cell
        # |F|² m Lp of that line, which weight fractions need
        absolute = XRDCalculator(wavelength=wavelength).get_pattern(
            structure, scaled=False, two_theta_range=(lo, hi)
        )
    except ValueError as exc:
        raise XtalError(f"{candidate.source}: no reflections to learn from ({exc})") from None
    top = float(np.max(absolute.y)) if len(absolute.y) else 0.0
    if not top > 0 or len(sticks) == 0:
        raise XtalError(f"{candidate.source}: no reflections between 2θ {lo:g}° and {hi:g}°")
    zmv = cell_mass(candidate.phase) * cell_volume(candidate.phase.cell)
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    lengths = np.linalg.norm(matrix, axis=1)
    groups = np.arange(3)
    for i in range(3):
        for j in range(i):
            if abs(lengths[i] - lengths[j]) < 1e-4 * lengths[j]:
                groups[i] = groups[j]
                break
    return PhaseLines(
        name=candidate.name,
        hkl=np.asarray(sticks.hkl, dtype=float),
        intensity=np.asarray(sticks.intensity, dtype=float) * (top / 100.0) / zmv,
        matrix=matrix,
        groups=groups,
    )


def strained_two_theta(lines: PhaseLines, eps: np.ndarray, wavelength: float) -> np.ndarray:
    """2θ (deg) of *lines* with cell lengths scaled by 1 + eps[group] (NaN beyond 180°)."""
    m = lines.matrix * (1.0 + eps[lines.groups])[:, None]
    recip = np.linalg.inv(m).T
    inv_d = np.linalg.norm(lines.hkl @ recip, axis=1)
    s = wavelength * inv_d / 2.0
    with np.errstate(invalid="ignore"):
        return np.degrees(2.0 * np.arcsin(np.where(s < 1, s, np.nan)))


class MixtureMaker:
    """Draws labelled synthetic patterns of one target among other phases on a fixed grid.

    *target* may be several structures (polymorphs, end members of a solid solution) that all
    count as the target: a positive holds one of them, drawn uniformly.
    """

    def __init__(
        self,
        target: PhaseLines | list[PhaseLines],
        others: list[PhaseLines],
        grid: np.ndarray,
        wavelength: float,
        settings: MixtureSettings | None = None,
        augment: AugmentSettings | None = None,
    ):
        self.targets = list(target) if isinstance(target, (list, tuple)) else [target]
        self.others = list(others)
        self.grid = np.asarray(grid, dtype=float)
        self.wavelength = float(wavelength)
        self.settings = settings or MixtureSettings()
        self.augment = augment or AugmentSettings()
        if not self.others and not self.settings.random_peaks:
            raise XtalError(
                "negatives need something besides the target: give --others phases or "
                "--random-peaks"
            )

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, int, float, list[str]]:
        """One pattern: (profile float32 on the grid, label 1/0, target weight fraction, names)."""
        s = self.settings
        positive = bool(rng.random() < s.p_target)
        n_max = min(s.max_others, len(self.others))
        if positive:
            n_other = int(rng.integers(0, n_max + 1))
        else:
            n_other = int(rng.integers(1 if self.others else 0, max(n_max, 1) + 1))
            n_other = min(n_other, len(self.others))
        chosen = [self.others[k] for k in rng.choice(len(self.others), n_other, replace=False)]
        if positive and len(self.targets) > 1:
            target = self.targets[int(rng.integers(len(self.targets)))]
        else:
            target = self.targets[0]
        phases = ([target] if positive else []) + chosen
        w_target = 0.0
        if positive:
            if n_other:
                w_target = float(np.exp(rng.uniform(np.log(s.min_fraction), 0.0)))
            else:
                w_target = 1.0
            rest = rng.dirichlet(np.ones(n_other)) * (1.0 - w_target) if n_other else []
            fractions = [w_target, *rest]
        else:
            fractions = list(rng.dirichlet(np.ones(n_other))) if n_other else []
        params = draw_augmentation(rng, self.augment, self.wavelength)
        params["window"] = None  # the detector's window is fixed; scans must cover it
        tt_all, i_all = [], []
        for lines, w in zip(phases, fractions):
            eps = rng.uniform(-s.strain, s.strain, 3) if s.strain > 0 else np.zeros(3)
            tt = strained_two_theta(lines, eps, self.wavelength)
            inten = lines.intensity * w
            if rng.random() < self.augment.p_texture:
                axis = TEXTURE_AXES[int(rng.integers(len(TEXTURE_AXES)))]
                r = float(rng.uniform(*self.augment.texture_r))
                inten = inten * march_dollase(lines.hkl, lines.matrix, axis, r)
            ok = np.isfinite(tt)
            tt_all.append(tt[ok])
            i_all.append(inten[ok])
        params["texture_r"] = 1.0  # drawn per phase above
        tt = np.concatenate(tt_all) if tt_all else np.zeros(0)
        inten = np.concatenate(i_all) if i_all else np.zeros(0)
        if s.random_peaks:
            n = int(rng.integers(0, s.random_peaks + 1))
            if n or not len(tt):
                n = max(n, 1)
                top = inten.max() if len(inten) else 1.0
                lo, hi = np.log(s.random_peak_intensity)
                tt = np.concatenate([tt, rng.uniform(self.grid[0], self.grid[-1], n)])
                inten = np.concatenate([inten, top * np.exp(rng.uniform(lo, hi, n))])
        sticks = Sticks(two_theta=tt, intensity=inten, hkl=np.zeros((len(tt), 3), int), d=tt)
        y = augmented_profile(sticks, self.grid, params, self.wavelength)
        return y, int(positive), w_target, [p.name for p in phases]

    def batch(self, n: int, seed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """*n* patterns drawn from *seed* (an int or a list of ints): (X (n, P), y (n,), w (n,))."""
        rng = np.random.default_rng(seed)
        X = np.empty((n, len(self.grid)), dtype=np.float32)
        y = np.empty(n, dtype=np.float32)
        w = np.empty(n, dtype=np.float32)
        for k in range(n):
            X[k], y[k], w[k], _ = self.draw(rng)
        return X, y, w
