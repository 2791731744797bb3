"""Which candidate phases a scan holds, and how much of each.

Three steps, each cheaper than the next is expensive (the spirit of search-match followed by
Rietveld, and of Dara's pruned tree search):

1. **Lines.** Every candidate's reflections are fitted (zero shift, small cell strain) to the
   peaks picked from the scan (:mod:`xtal_cli.identify.match`); a candidate whose strong lines
   are mostly not there is rejected with that reason.
2. **Profiles.** Each survivor is drawn on the scan's grid (its fitted cell, the scan's own
   peak widths, Kα2) and combinations are searched by beam search: a hypothesis grows by the
   phase whose profile, fitted with the others and a Chebyshev background by bounded linear
   least squares, lowers the weighted residual most; growing stops when no phase lowers it by
   ``min_gain`` (relative).
3. **Rietveld.** The best hypotheses are refined with the native multiphase Rietveld engine
   (per-phase scale, cell, size, microstrain and texture; shared zero, sample displacement,
   background, Gaussian instrument profile), then ranked by Rwp with parsimony: a hypothesis
   that only adds phases to a smaller one must lower its Rwp by ``min_gain`` relative, and a
   phase refined below the ``detection_limit`` is dropped. Weight fractions come from the
   scales (ZMV, :mod:`xtal_cli.refine.fractions`).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from xtal_cli.errors import ParameterError, XtalError

# Lines broader than these are not a crystalline phase's: a candidate refined to them is
# fitting a hump of the background or the misfit of other phases (amorphous-like).
MAX_MICROSTRAIN = 20000.0  # 10⁻⁶, i.e. 2 %
MIN_SIZE_UM = 0.005  # 5 nm
# A phase is identified by lines of its own, at least three of them: Hanawalt's rule of
# search-match (the three strongest lines), here lines no other phase of the hypothesis has.
MIN_OWN_LINES = 3


@dataclass(frozen=True)
class IdentifySettings:
    """How phases are searched and refined.

    max_phases: most phases in one hypothesis.
    min_score: least intensity-weighted fraction of a candidate's strong lines (≥ 5 % of its
        strongest) found among the picked peaks for it to be searched at all.
    min_gain: least relative decrease of the figure of merit (Rwp with the strain factor of
        :meth:`Hypothesis.merit`) for a refined hypothesis to keep one more phase.
    screen_gain: least relative decrease of the screening residual (χ² of the profile fit)
        for the search to try one more phase: permissive, the refinement decides.
    beam: hypotheses kept per size in the screening search.
    n_refine: hypotheses refined with Rietveld.
    detection_limit: weight fraction below which a refined phase is reported as not found.
    max_strain: largest relative change of a candidate's cell lengths.
    max_zero: largest zero shift, degrees 2θ.
    background_terms: Chebyshev background terms.
    strain_penalty: how much a hypothesis' mean cell strain (relative to max_strain) weighs
        against its Rwp when hypotheses are compared (:meth:`Hypothesis.merit`).
    texture: refine March–Dollase preferred orientation of each non-cubic phase along the
        normal of its strongest line's plane, and for the best hypothesis also along the
        crystal system's principal axes (kept where it lowers Rwp by TEXTURE_GAIN).
    """

    max_phases: int = 4
    min_score: float = 0.35
    min_gain: float = 0.07
    screen_gain: float = 0.05
    beam: int = 4
    n_refine: int = 4
    detection_limit: float = 0.01
    max_strain: float = 0.03
    max_zero: float = 0.3
    background_terms: int = 10
    texture: bool = True
    strain_penalty: float = 0.5

    def __post_init__(self):
        if int(self.max_phases) != self.max_phases or not 1 <= self.max_phases <= 8:
            raise ParameterError("max_phases", self.max_phases, "must be an integer 1-8")
        for name in ("min_score", "min_gain", "screen_gain", "detection_limit", "max_strain"):
            if not 0 <= getattr(self, name) < 1:
                raise ParameterError(name, getattr(self, name), "must be within [0, 1)")
        for name in ("beam", "n_refine"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ParameterError(name, getattr(self, name), "must be a positive integer")
        if not 0 <= self.strain_penalty <= 10:
            raise ParameterError("strain_penalty", self.strain_penalty, "must be within 0-10")
        if not 0 <= self.max_zero <= 2:
            raise ParameterError("max_zero", self.max_zero, "must be within 0-2 degrees")
        if (
            int(self.background_terms) != self.background_terms
            or not 1 <= self.background_terms <= 36
        ):
            raise ParameterError("background_terms", self.background_terms, "must be 1-36")


@dataclass
class PhaseAmount:
    """One phase of a refined hypothesis."""

    name: str
    formula: str
    space_group: str
    source: str
    weight_fraction: float
    weight_fraction_esd: float
    cell: tuple
    cell_esd: tuple
    scale: float
    size_um: float
    microstrain: float
    match_score: float
    texture_axis: tuple | None = None  # March–Dollase axis (hkl) when texture was refined
    texture_ratio: float = 1.0
    cell_strain: float = 0.0  # largest relative change of a cell length from the candidate's
    ordered_domain_um: float | None = None  # size of its cation order's domains, when refined
    cation_order: float | None = None  # S² of its cation order (1: fully ordered), when it has one

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Hypothesis:
    """A set of phases with its Rietveld refinement."""

    phases: list[PhaseAmount]
    rwp: float
    rp: float
    gof: float
    n_params: int
    screening_residual: float
    model: object = field(default=None, repr=False)  # the refined RietveldModel
    picks: list = field(default_factory=list, repr=False)  # (Candidate, Match) per phase

    def merit(self, cfg: IdentifySettings) -> float:
        """Rwp × (1 + strain_penalty · mean |cell strain| / max_strain): what hypotheses are
        compared by. Between references that fit alike (isostructural compounds, a database
        cell and a measured one), the one that needs less lattice distortion is the likelier."""
        mean = float(np.mean([abs(p.cell_strain) for p in self.phases])) if self.phases else 0.0
        return self.rwp * (1 + cfg.strain_penalty * mean / max(cfg.max_strain, 1e-9))

    @property
    def formulas(self) -> list[str]:
        return sorted(p.formula for p in self.phases)

    def as_dict(self) -> dict:
        return {
            "phases": [p.as_dict() for p in self.phases],
            "rwp": self.rwp,
            "rp": self.rp,
            "gof": self.gof,
            "n_params": self.n_params,
            "screening_residual": self.screening_residual,
        }


@dataclass
class Rejected:
    name: str
    formula: str
    reason: str


@dataclass
class Identification:
    """The answer for one scan: ranked hypotheses (best first) and rejected candidates."""

    scan: str
    hypotheses: list[Hypothesis]
    rejected: list[Rejected]
    n_candidates: int
    limits: tuple
    instrument: str
    seconds: float
    n_peaks: int

    @property
    def best(self) -> Hypothesis | None:
        return self.hypotheses[0] if self.hypotheses else None

    def as_dict(self) -> dict:
        return {
            "scan": self.scan,
            "phases": [p.as_dict() for p in self.best.phases] if self.best else [],
            "rwp": self.best.rwp if self.best else None,
            "hypotheses": [h.as_dict() for h in self.hypotheses],
            "rejected": [dataclasses.asdict(r) for r in self.rejected],
            "n_candidates": self.n_candidates,
            "n_peaks": self.n_peaks,
            "limits": list(self.limits),
            "instrument": self.instrument,
            "seconds": self.seconds,
        }


# ------------------------------------------------------------------ step 2: profiles


def _profile(st, A, zero, x, fwhm, ka2) -> np.ndarray:
    """A candidate's powder profile on grid *x*: its lines at the fitted cell and zero, the
    scan's local widths (pseudo-Voigt, η = 0.5), the Kα2 doublet; unit maximum."""
    from xtal_cli.identify.match import positions
    from xtal_cli.xrd.lineshape import kalpha2_lines, pseudo_voigt_sum

    tt = positions(st, A) + zero
    keep = (tt > x[0] - 2) & (tt < x[-1] + 2) & (st.intensity > 0)
    tt, inten = tt[keep], st.intensity[keep]
    if ka2 is not None:
        tt, inten = kalpha2_lines(tt, inten, ka2)
    y = pseudo_voigt_sum(x, tt, inten, fwhm(tt), 0.5, 30.0)
    top = y.max()
    return y / top if top > 0 else y


class _Screen:
    """Bounded linear least squares of profiles + Chebyshev background on the weighted scan."""

    def __init__(self, x, y, columns: dict, n_bg: int):
        from numpy.polynomial import chebyshev

        sw = 1.0 / np.sqrt(np.maximum(y, 1.0))
        t = 2 * (x - x[0]) / (x[-1] - x[0]) - 1
        self.B = chebyshev.chebvander(t, n_bg - 1) * sw[:, None]
        self.cols = {k: c * sw for k, c in columns.items()}
        self.target = y * sw
        self.cache: dict = {}

    def residual(self, names: frozenset) -> tuple[float, dict]:
        """(weighted residual norm² relative to the background-only fit, scales by name)."""
        from scipy.optimize import lsq_linear

        if names in self.cache:
            return self.cache[names]
        order = sorted(names)
        M = np.column_stack([self.B] + [self.cols[n] for n in order])
        nb = self.B.shape[1]
        lb = np.r_[np.full(nb, -np.inf), np.zeros(len(order))]
        res = lsq_linear(M, self.target, bounds=(lb, np.full(M.shape[1], np.inf)), method="bvls")
        r = M @ res.x - self.target
        out = (float(r @ r), dict(zip(order, res.x[nb:])))
        self.cache[names] = out
        return out


def _beam_search(screen: _Screen, names: list[str], required: frozenset, cfg: IdentifySettings):
    """Hypotheses (frozensets of names) in order of screening residual, grown phase by phase
    while it falls by ``screen_gain`` (a permissive filter: the refinement decides)."""
    start = required
    base, _ = screen.residual(start)
    level = [(base, start)]
    seen = {start: base}
    for _ in range(cfg.max_phases - len(start)):
        grown = []
        for chi, hyp in level:
            for n in names:
                if n in hyp:
                    continue
                new = hyp | {n}
                if new in seen:
                    continue
                chi_new, scales = screen.residual(new)
                seen[new] = chi_new
                if scales.get(n, 0) <= 0 or chi_new > chi * (1 - cfg.screen_gain):
                    continue
                grown.append((chi_new, new))
        if not grown:
            break
        grown.sort(key=lambda t: t[0])
        level = grown[: cfg.beam]
    return sorted(((c, h) for h, c in seen.items() if h), key=lambda t: t[0])


# ------------------------------------------------------------------ step 3: Rietveld


def _stages(n_bg: int, limits):
    from xtal_cli.refine.engine import Stage

    return [
        Stage("scales", ("scale", "background"), limits=limits, background=("chebyschev", n_bg)),
        Stage("cells", ("zero", "cell")),
        Stage("widths", ("size", "W")),
        # no overall displacement parameter: it trades off against the scale and biased the
        # A-Lab weight fractions (MAE 5.3 against 4.8 wt % without it)
        # fault: superstructure lines of a cation order broadened on their own (stacking
        # faults of Li2MnO3's and Li2TiO3's honeycomb), or rock-salt-like references fit them;
        # order: those and the layer lines weakened by antisite mixing (S²)
        Stage("strain", ("mustrain", "fault", "order", "U", "V", "Shift", "po"), cycles=6),
    ]


def _kalpha1_rows(model, pk, k: int) -> np.ndarray:
    """Rows of *pk* (``model.peaks``) holding phase *k*'s Kα1 peaks, one per reflection."""
    start = pk["slices"][k].start
    return np.arange(start, start + len(model.blocks[k].hkl))


def strongest_plane(model, k: int, pk=None) -> tuple[int, int, int]:
    """The hkl (smallest integers) of phase *k*'s strongest calculated line in the range: the
    first guess of a texture axis, as platelets and needles show their strongest reflections
    from the planes they lie on (V2O5's 001, calcite-type 104). *pk*: ``model.peaks`` if at
    hand."""
    from math import gcd

    b = model.blocks[k]
    pk = model.peaks(model.values) if pk is None else pk
    rows = _kalpha1_rows(model, pk, k)
    pos, area = pk["pos"][rows], pk["area"][rows]
    area = np.where((pos >= model.x[0]) & (pos <= model.x[-1]), area / b.mult, 0.0)
    h = [int(c) for c in b.hkl[int(np.argmax(area))]]
    g = gcd(gcd(abs(h[0]), abs(h[1])), abs(h[2])) or 1
    return tuple(c // g for c in h)


def _refine_hypothesis(
    scan, inst, picks: list, limits, cfg: IdentifySettings, deadline, start=None
):
    """Rietveld refinement of one hypothesis; *picks* are (candidate, match) pairs. *start*,
    a refined model of some of the same phases, gives the starting values of what they share
    (a phase added to a converged model, instead of all from the candidates' values)."""
    from xtal_cli.refine.engine import RietveldModel, refine
    from xtal_cli.refine.phases import A_to_cell

    phases = []
    for cand, m in picks:
        ph = copy.copy(cand.phase)
        ph.A0, ph.cell = m.A.copy(), A_to_cell(m.A)
        phases.append(ph)
    model = RietveldModel(scan.two_theta, scan.counts, phases, inst, sigma=scan.sigma)
    zero = float(np.average([m.zero for _, m in picks]))
    model.set("zero", zero)
    if cfg.texture:
        model.set_limits(*limits)
        pk = model.peaks(model.values)  # texture starts at r = 1: axes change no peak here
        for k, ph in enumerate(phases):
            if ph.crystal_system != "cubic":
                model.set_texture_axis(k, strongest_plane(model, k, pk))
    if start is not None:
        _copy_values(start, model)
    timeout = None if deadline is None else max(deadline - time.monotonic(), 1.0)
    result = refine(model, _stages(cfg.background_terms, limits), timeout=timeout)
    return model, result


def _copy_values(src, dst) -> None:
    """Values of *src*'s shared parameters and of each of its phases (matched by name) into
    *dst*; their A parameters are offsets from the same fitted cells, so they carry over."""
    from xtal_cli.refine.engine import phase_prefix, split_name

    where = {ph.name: k for k, ph in enumerate(src.phases)}
    for k, ph in enumerate(dst.phases):
        if ph.name in where:
            dst.blocks[k].set_po_axis(src.blocks[where[ph.name]].po_axis)
    if src.bg_n != dst.bg_n or src.bg_kind != dst.bg_kind:
        dst.set_background(src.bg_kind, src.bg_n)
    for name in dst.layout.names:
        k, bare = split_name(name)
        if bare.startswith("bg") or bare in ("zero", "U", "V", "W", "X", "Y", "SH/L", "Shift"):
            other = bare if k == 0 else None
        else:
            j = where.get(dst.phases[k].name)
            other = None if j is None else phase_prefix(j) + bare
        if other is not None and other in src.layout.index:
            dst.set(name, src.get(other))


def _amounts(model, picks) -> list[PhaseAmount]:
    from xtal_cli.identify.match import signed_length_change
    from xtal_cli.refine.fractions import weight_fractions

    w, esd = weight_fractions(model)
    out = []
    for k, ((cand, m), b) in enumerate(zip(picks, model.blocks)):
        out.append(
            PhaseAmount(
                name=cand.name,
                formula=cand.formula,
                space_group=cand.space_group,
                source=cand.source,
                weight_fraction=float(w[k]),
                weight_fraction_esd=float(esd[k]),
                cell=tuple(float(c) for c in model.cell(k=k)),
                cell_esd=tuple(float(c) for c in model.cell_esd(k=k)),
                scale=model.get(f"{b.prefix}scale"),
                size_um=model.get(f"{b.prefix}size"),
                microstrain=model.get(f"{b.prefix}mustrain"),
                match_score=m.score,
                texture_axis=b.po_axis,
                texture_ratio=model.get(f"{b.prefix}po"),
                cell_strain=signed_length_change(cand.phase.cell, model.cell(k=k)),
                ordered_domain_um=_domain(model.get(f"{b.prefix}fault")),
                cation_order=model.get(f"{b.prefix}order") if b.disordered.any() else None,
            )
        )
    return out


def _domain(fault: float) -> float | None:
    """Ordered-domain size (µm) from the fault parameter (its inverse); None when unbroadened."""
    return 1.0 / fault if fault > 0 else None


def identify(
    scan,
    candidates: list,
    settings: IdentifySettings | None = None,
    *,
    instrument=None,
    require: list[str] = (),
    limits: tuple[float, float] | None = None,
    timeout: float | None = None,
    sticks_cache: dict | None = None,
) -> Identification:
    """Identify and quantify the phases of *scan* among *candidates*.

    *scan* is a :class:`~xtal_cli.io.scans.Scan` with its wavelength; *candidates* from
    :func:`~xtal_cli.identify.candidates.load_candidates`. *instrument* defaults to the
    laboratory default with the scan's wavelengths (its profile is refined); *require* names
    candidates (name or formula) every hypothesis must hold; *limits* the 2θ range (default:
    the scan without its background steps). *sticks_cache* may be shared across scans of one
    batch (the candidates' reflections at one wavelength).
    """
    from xtal_cli.identify.match import candidate_sticks, match_candidate
    from xtal_cli.refine.instrument import default_instrument
    from xtal_cli.xrd.lineshape import kalpha_doublet
    from xtal_cli.xrd.peakmatch import fwhm_model
    from xtal_cli.xrd.peaks import find_scan_peaks
    from xtal_cli.xrd.scanrange import usable_range

    cfg = settings if settings is not None else IdentifySettings()
    t0 = time.monotonic()
    deadline = None if timeout is None else t0 + timeout
    if not candidates:
        raise XtalError("no candidate phases to search")
    if scan.wavelength is None:
        raise XtalError(
            f"{scan.path}: the file gives no wavelength; pass --wavelength (Å or a tube, e.g. CuKa)"
        )
    inst = instrument if instrument is not None else default_instrument(scan)
    if limits is None:
        limits, _ = usable_range(scan.two_theta, scan.counts)
    lo, hi = float(limits[0]), float(limits[1])
    required = _resolve_required(candidates, require)

    peaks = find_scan_peaks(scan)
    if len(peaks) < 2:
        raise XtalError(f"{scan.path}: fewer than two peaks found; is this a diffraction scan?")
    fwhm = fwhm_model(peaks)
    tt = _with_unresolved_doublets(scan, peaks.two_theta, fwhm)
    inside = (tt >= lo) & (tt <= hi)
    picked = tt[inside]

    # 1. lines
    cache = sticks_cache if sticks_cache is not None else {}
    rejected: list[Rejected] = []
    matched = {}
    any_in_range = False
    for cand in candidates:
        key = (cand.name, round(inst.lam1, 6), round(hi, 1))
        if key not in cache:
            cache[key] = candidate_sticks(cand.phase, inst.lam1, hi, inst.polariz)
        m = match_candidate(
            cache[key], picked, fwhm, (lo, hi), bound=cfg.max_strain, max_zero=cfg.max_zero
        )
        any_in_range |= m.n_strong > 0
        if m.n_strong == 0:
            rejected.append(
                Rejected(cand.name, cand.formula, "no strong reflections in the 2θ range")
            )
        elif not m.strongest_found and cand.name not in required:
            why = f"no matching lines: its strongest line (2θ ≈ {m.strongest:.2f}°) is not there"
            rejected.append(Rejected(cand.name, cand.formula, why))
        elif m.score < cfg.min_score and cand.name not in required:
            rejected.append(
                Rejected(
                    cand.name,
                    cand.formula,
                    f"no matching lines: {m.n_matched} of its {m.n_strong} strong lines found "
                    f"({100 * m.score:.0f} % of their intensity)",
                )
            )
        else:
            matched[cand.name] = (cand, m)
    if not any_in_range:
        raise XtalError(
            f"{scan.path}: no candidate has reflections in the scan's 2θ range {lo:.1f}-{hi:.1f}°"
        )

    # 2. profiles
    ka2 = kalpha_doublet(inst.lam1, inst.lam2, inst.ratio) if inst.lam2 else None
    i0, i1 = np.searchsorted(scan.two_theta, [lo, hi])
    x, y = scan.two_theta[i0:i1], scan.counts[i0:i1]
    cols = {n: _profile(m.sticks, m.A, m.zero, x, fwhm, ka2) for n, (_c, m) in matched.items()}
    screen = _Screen(x, y, cols, cfg.background_terms)
    ranked = _beam_search(screen, sorted(matched), frozenset(required), cfg)

    # 3. Rietveld on the best few, each pruned by backward elimination
    refiner = _Refiner(scan, inst, matched, screen, (lo, hi), cfg, deadline, required)
    finals: dict[frozenset, Hypothesis] = {}
    for _chi, hyp in ranked[: cfg.n_refine]:
        h = refiner.settle(hyp)
        if h is not None:
            finals[frozenset(p.name for p in h.phases)] = h
    hypotheses = _rank(list(finals.values()), cfg)
    if hypotheses:
        swapped = refiner.swap_phases(hypotheses[0])
        if swapped is not None:
            finals[frozenset(p.name for p in swapped.phases)] = swapped
            hypotheses = _rank(list(finals.values()), cfg)
    if hypotheses and cfg.texture:
        hypotheses[0] = _with_texture(hypotheses[0], deadline)
    in_best = {p.name for p in hypotheses[0].phases} if hypotheses else set()
    for n, (cand, _m) in matched.items():
        if n not in in_best:
            rejected.append(Rejected(n, cand.formula, refiner.reasons.get(n, "not needed")))
    return Identification(
        scan=str(scan.path),
        hypotheses=hypotheses,
        rejected=rejected,
        n_candidates=len(candidates),
        limits=(lo, hi),
        instrument=inst.describe(),
        seconds=time.monotonic() - t0,
        n_peaks=int(inside.sum()),
    )


def _with_unresolved_doublets(scan, picked: np.ndarray, fwhm) -> np.ndarray:
    """*picked* (Kα2-stripped peaks) plus the peaks of the unstripped scan where the Kα1–Kα2
    splitting is under half a peak width and no stripped peak lies within half a width. There
    the doublet is one peak, so no Kα2 ghost can be picked, and Rachinger stripping only halves
    a broad weak line against its noise (Li2TiO3's 002 at 18.5° in a three-phase scan)."""
    from xtal_cli.xrd.lineshape import doublet_two_theta
    from xtal_cli.xrd.peaks import find_scan_peaks

    if not (scan.wavelength and scan.wavelength2):
        return picked
    raw = find_scan_peaks(scan, strip_ka2_from_file=False).two_theta
    split = doublet_two_theta(raw, scan.wavelength, scan.wavelength2) - raw  # NaN: no Kα2
    half = 0.5 * fwhm(raw)
    near = (
        np.min(np.abs(raw[:, None] - picked[None, :]), axis=1) <= half
        if len(picked)
        else np.zeros(len(raw), bool)
    )
    return np.sort(np.r_[picked, raw[(split < half) & ~near]])


def _resolve_required(candidates, require) -> set[str]:
    out = set()
    for r in require:
        hits = [c.name for c in candidates if r in (c.name, c.formula, c.ident)]
        if not hits:
            raise XtalError(f"--require {r}: no candidate phase has that name or formula")
        out.add(hits[0])
    return out


class _Refiner:
    """Rietveld refinements of phase sets (each set once), and the pruning of a set."""

    def __init__(self, scan, inst, matched, screen, limits, cfg, deadline, required):
        self.scan, self.inst, self.matched, self.screen = scan, inst, matched, screen
        self.limits, self.cfg, self.deadline, self.required = limits, cfg, deadline, required
        self.done: dict[frozenset, Hypothesis | None] = {}
        self.reasons: dict[str, str] = {}
        self.culprit: dict[frozenset, str] = {}  # the phase that made a refinement fail

    def refine(self, names: frozenset, start: Hypothesis | None = None) -> Hypothesis | None:
        from xtal_cli.refine.engine import RefinementFailed

        if names in self.done and start is None:
            return self.done[names]
        chi, scales = self.screen.residual(names)
        base, _ = self.screen.residual(frozenset())
        picks = [self.matched[n] for n in sorted(names, key=lambda n: -scales.get(n, 0.0))]
        try:
            model, res = _refine_hypothesis(
                self.scan, self.inst, picks, self.limits, self.cfg, self.deadline,
                start=None if start is None else start.model,
            )  # fmt: skip
            h = Hypothesis(_amounts(model, picks), res.rwp, res.rp, res.gof, res.n_params,
                           chi / base, model, picks)  # fmt: skip
            for p in h.phases:
                if p.microstrain > MAX_MICROSTRAIN or p.size_um < MIN_SIZE_UM:
                    self.culprit[names] = p.name
                    raise RefinementFailed(
                        f"{p.name} refined to lines too broad for a crystalline phase "
                        f"(size {1000 * p.size_um:.0f} nm, microstrain {p.microstrain / 1e4:.1f} %)"
                    )
        except RefinementFailed as exc:
            if "timed out" in str(exc):
                raise
            for n in [self.culprit[names]] if names in self.culprit else names:
                self.reasons.setdefault(n, f"refinement failed ({exc})")
            h = None
        if start is not None:  # a second try: keep the better of the two
            old = self.done.get(names)
            if h is None or (old is not None and old.rwp <= h.rwp):
                return old
        self.done[names] = h
        return h

    def swap_phases(
        self, h: Hypothesis, per_phase: int = 3, screen_ratio: float = 1.15
    ) -> Hypothesis | None:
        """*h* with one phase replaced by another candidate, refined from *h*'s converged
        values and settled, when that lowers the merit; None when no swap helps.

        The search reaches some phase sets only through poorer minima or not at all: of two
        references for the same lines (isostructural LiTi2O4 strained 2 % onto LiMn2O4's, a
        rock-salt-derived Ti4O5 onto a partly disordered Li2TiO3) the first found keeps the
        other out, and a set refined from the candidates' cells can stop where a shared phase
        (anatase) sits at the wrong cell. For each phase, the *per_phase* candidates whose
        swapped-in profile screens best are refined starting from *h* (the phases they share
        keep their refined values), if the swapped set screens within *screen_ratio* of *h*'s
        residual; only a swap whose refinement beats the best merit so far is settled. A
        candidate of the same formula and space group is the same structure from another
        database entry and is skipped."""
        cfg, names = self.cfg, frozenset(p.name for p in h.phases)
        best, own = h, self.screen.residual(names)[0]
        for p in h.phases:
            if p.name in self.required:
                continue
            rest = names - {p.name}
            alts = []
            for n, (c, _m) in self.matched.items():
                if n in names or (c.formula == p.formula and c.space_group == p.space_group):
                    continue
                chi, scales = self.screen.residual(rest | {n})
                if scales.get(n, 0.0) > 0 and chi <= screen_ratio * own:
                    alts.append((chi, n))
            for _chi, n in sorted(alts)[:per_phase]:
                t = self.refine(rest | {n}, start=h)
                if t is None or t.merit(cfg) >= best.merit(cfg):
                    continue
                t = self.settle(rest | {n})
                if t is not None and t.merit(cfg) < best.merit(cfg):
                    best = t
        return None if best is h else best

    def settle(self, names: frozenset) -> Hypothesis | None:
        """Refine *names*, then drop phases one at a time while one is below the detection
        limit or its removal raises the Rwp by less than ``min_gain`` (relative)."""
        cfg = self.cfg
        h = self.refine(names)
        while h is None and names in self.culprit and len(names) > 1:
            names = names - {self.culprit[names]}  # without the phase that broke it
            h = self.refine(names)
        while h is not None and len(h.phases) > 1:
            optional = [p for p in h.phases if p.name not in self.required]
            low = [p for p in optional if p.weight_fraction < cfg.detection_limit]
            if low:
                p = min(low, key=lambda p: p.weight_fraction)
                self.reasons.setdefault(
                    p.name, f"weight below the detection limit ({100 * cfg.detection_limit:g} wt %)"
                )
                names = names - {p.name}
                h = self.refine(names)
                continue
            own, under = line_overlaps(h.model)
            lone = [k for k, p in enumerate(h.phases) if own[k] < MIN_OWN_LINES and p in optional]
            if lone:
                # a phase without lines of its own only re-weights other phases' peaks (an
                # isostructural reference, a few-line phase under a main phase's misfit): one
                # of it and the phases it lies under is redundant; drop the one whose removal
                # costs least (the partner may be the worse reference of the two)
                drop = set(lone) | {j for k in lone for j in under[k]}
                drop = [h.phases[k] for k in sorted(drop) if h.phases[k] in optional]
                trials = [(self.refine(names - {p.name}), p) for p in drop]
                trials = [(t.merit(cfg), p, t) for t, p in trials if t is not None]
                if trials:
                    _, p, smaller = min(trials, key=lambda t: t[0])
                    self.reasons.setdefault(
                        p.name,
                        f"fewer than {MIN_OWN_LINES} lines of its own: the others lie under "
                        "other phases' peaks"
                        if own[h.phases.index(p)] < MIN_OWN_LINES
                        else "its lines are explained as well by a phase that fits better",
                    )
                    names, h = names - {p.name}, smaller
                    continue
            trials, restarted = [], False
            for p in optional:
                smaller = self.refine(names - {p.name})
                if smaller is not None and smaller.rwp < h.rwp:
                    # fewer phases fitting better: the larger refinement stopped in a poorer
                    # minimum; refine it again from the smaller one's converged values
                    again = self.refine(names, start=smaller)
                    if again is not None and again.rwp < h.rwp:
                        h, restarted = again, True
                        break
                if smaller is not None and h.merit(cfg) > smaller.merit(cfg) * (1 - cfg.min_gain):
                    trials.append((smaller.merit(cfg), p, smaller))
            if restarted:
                continue  # a new refinement of the same phases: its amounts checked again
            if not trials:
                break
            _, p, smaller = min(trials, key=lambda t: t[0])
            self.reasons.setdefault(
                p.name,
                f"does not improve the fit enough (Rwp {h.rwp:.2f} % with it, "
                f"{smaller.rwp:.2f} % without)",
            )
            names, h = names - {p.name}, smaller
        return h


# principal texture axes (normals of these planes) tried per crystal system
TEXTURE_AXES = {
    "cubic": [],
    "tetragonal": [(0, 0, 1), (1, 0, 0)],
    "hexagonal": [(0, 0, 1), (1, 0, 0)],
    "trigonal": [(0, 0, 1), (1, 0, 0)],
    "orthorhombic": [(1, 0, 0), (0, 1, 0), (0, 0, 1)],
    "monoclinic": [(1, 0, 0), (0, 1, 0), (0, 0, 1)],
    "triclinic": [(1, 0, 0), (0, 1, 0), (0, 0, 1)],
}
TEXTURE_GAIN = 0.02  # relative Rwp decrease for one texture parameter to be kept
TEXTURE_MIN_FRACTION = 0.05  # phases below this weight fraction are left untextured


def _with_texture(h: Hypothesis, deadline) -> Hypothesis:
    """*h* with March–Dollase texture refined for each phase (of at least
    TEXTURE_MIN_FRACTION) along the principal axis that lowers the Rwp most, where it lowers
    it by TEXTURE_GAIN relative: platelets and needles are common in powders, and an
    untextured phase biases its weight fraction."""
    from xtal_cli.refine.engine import RefinementFailed, Stage, phase_prefix, refine

    best = h
    for k, ph in enumerate(h.model.phases):
        if h.phases[k].weight_fraction < TEXTURE_MIN_FRACTION:
            continue
        trial_best = None
        for axis in TEXTURE_AXES.get(ph.crystal_system, []):
            model = copy.deepcopy(best.model)
            model.set_texture_axis(k, axis)
            timeout = None if deadline is None else max(deadline - time.monotonic(), 1.0)
            try:
                res = refine(model, [Stage("texture", (f"{phase_prefix(k)}po",))], timeout=timeout)
            except RefinementFailed as exc:
                if "timed out" in str(exc):
                    return best
                continue
            if trial_best is None or res.rwp < trial_best[0].rwp:
                trial_best = (res, model)
        if trial_best is not None and trial_best[0].rwp < best.rwp * (1 - TEXTURE_GAIN):
            res, model = trial_best
            best = Hypothesis(_amounts(model, best.picks), res.rwp, res.rp, res.gof,
                              res.n_params, best.screening_residual, model, best.picks)  # fmt: skip
    return best


def line_overlaps(
    model, strong: float = 0.05, sigmas: float = 3.0, apart: float = 0.5
) -> tuple[list[int], list[set[int]]]:
    """Per phase of a refined multiphase *model*: how many of its strong lines (calculated
    peak ≥ *strong* × its highest) are its own — no strong line of another phase within
    *apart* × the local FWHM, more intensity there than all other phases together, and
    *sigmas* counting σ above the noise (a phase with none only re-weights peaks the others
    already put there); and the other phases with a strong line within *apart* × the local
    FWHM of one of its strong lines (those its lines lie under)."""
    from xtal_cli.xrd.lineshape import gsas_tch

    if len(model.phases) == 1:
        return [1], [set()]
    x = model.x
    ybg, ytot = model.calc()
    sigma = np.sqrt(np.maximum(ybg + ytot, 1.0))
    pk = model.peaks(model.values)
    fwhm = gsas_tch(pk["sig"], pk["gam"])[0] / 100.0  # centideg → deg
    lines = []  # per phase: Kα1 positions, FWHMs, calculated heights, strong mask
    for k in range(len(model.blocks)):
        rows = _kalpha1_rows(model, pk, k)
        pos, fw = pk["pos"][rows], fwhm[rows]
        yk = model.phase_pattern(k)
        inside = (pos >= x[0]) & (pos <= x[-1])
        height = np.where(inside, np.interp(pos, x, yk), 0.0)
        top = height.max() if len(height) else 0.0
        lines.append((pos, fw, height, inside & (height >= strong * top) & (top > 0), yk))
    own, partners = [], []
    for k, (pos, fw, height, is_strong, yk) in enumerate(lines):
        near = np.zeros(len(pos), bool)
        under = set()
        for j, (pj, _f, _h, sj, _y) in enumerate(lines):
            if j == k or not sj.any():
                continue
            close = np.min(np.abs(pos[:, None] - pj[sj][None, :]), axis=1) <= apart * fw
            if (close & is_strong).any():
                under.add(j)
            near |= close
        rest = np.interp(pos, x, ytot - yk)
        noise = np.interp(pos, x, sigma)
        mine = is_strong & ~near & (height > rest) & (height > sigmas * noise)
        own.append(int(mine.sum()))
        partners.append(under)
    return own, partners


def _rank(hyps: list[Hypothesis], cfg: IdentifySettings) -> list[Hypothesis]:
    """Order by Rwp, except that a hypothesis holding all the phases of a smaller one (and
    more) goes after it unless it beats its Rwp by ``min_gain`` (relative)."""
    hyps = sorted(hyps, key=lambda h: h.merit(cfg))
    out: list[Hypothesis] = []
    for h in hyps:
        names = {p.name for p in h.phases}
        if not any(
            {p.name for p in o.phases} < names and h.merit(cfg) > o.merit(cfg) * (1 - cfg.min_gain)
            for o in hyps
        ):
            out.append(h)
    return out + [h for h in hyps if h not in out]
