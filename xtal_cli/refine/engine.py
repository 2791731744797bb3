"""The Rietveld model and its weighted least-squares refinement (GSAS-II conventions).

y_calc(2θ) = background(2θ) + Σ_phase,hkl,line  area · S(2θ − pos)

The model is GSAS-II's, term by term, so that the two engines compute the same pattern from the
same parameters (checked by :mod:`xtal_cli.refine.crosscheck`):

* pos = 2θ_Bragg(λ1, d(A)) + Zero − sample position: Bragg–Brentano Shift·4c·cosθ +
  Transparency·100c·sin2θ, or Debye–Scherrer 2c(DisplaceX·cos2θ + DisplaceY·sin2θ), c =
  0.09/(πR) (GSAS-II's ``GetReflPos``); the Kα2 peak at the first-order shift of that position
  (:func:`lineshape.kalpha2_position`) with the Kα1 widths and Lp;
* area = scale · I_line/I_Kα1 · multiplicity · |F|² · L · P · SR, L = 1/(2 sin²θ cosθ),
  P = (1 − Polariz.)·cos²2θ + Polariz. (GSAS-II's polarisation at azimuth 0; Polariz. from the
  instrument file carries the monochromator), SR Suortti's surface roughness (1 unless
  SurfRoughA/B are refined);
* widths from U V W X Y (+ GSAS-II's default sample broadening: 1 µm size, 1000 µstrain,
  Lorentzian) and SH/L: TCH pseudo-Voigt with FCJ asymmetry, :mod:`xtal_cli.xrd.lineshape`,
  over GSAS-II's 50/75-FWHM windows with its quadrature of the asymmetry.

The refinement is Levenberg–Marquardt on w = 1/σ², σ² = counts (as GSAS-II), with the Jacobian
from the compiled kernel (analytic in position and widths, analytic |F|² derivatives for atoms,
exact for the linear background). Parameters switched on in a stage stay on in later stages,
as in GSAS-II's scripted refinements. Rwp, Rp, GOF and esds are computed the standard way.

The Gaussian (U V W) and Lorentzian (X Y) widths are strongly correlated and LM from a single
start can stop in a poorer of several profile minima (on DSMO: Rwp 9.54 % against 8.9–9.0 %
for the same model and flags). A stage with ``restarts`` therefore also refines from a few
width-preserving starting profiles (:meth:`RietveldModel.profile_starts`) and keeps the lowest
χ² whose structure stays physical (Uiso ≥ 0). Only flagged parameters are restarted.

Several phases share one pattern, instrument, zero, sample position and background; each phase
has its own scale, cell, atoms and isotropic size/microstrain broadening (GSAS-II's Lorentzian
defaults, refinable). The first phase's parameters keep their plain names (``scale``, ``A0``,
``Uiso:0``, ...), so a single-phase model is unchanged; phase *k* ≥ 1 prefixes them ``k/``
(``1/scale``, ``1/A0``). Groups (``scale``, ``cell``, ``size``, ``mustrain``, ``po``,
``uover``: an overall displacement parameter added to all of a phase's sites) switch on
every phase's. ``po`` is the March–Dollase ratio of a phase's texture axis
(:meth:`RietveldModel.set_texture_axis`), averaged over each reflection's equivalents.
``fault`` (µm⁻¹, 0 by default) is the inverse size of a cation order's domains: a Lorentzian
broadening of only the superstructure lines of that order
(:func:`~xtal_cli.refine.phases.ordering_reflections`), as stacking faults and antiphase
boundaries broaden them; a phase without such lines has nothing for it to act on.
``order`` (0–1, 1 by default) is S², the squared long-range order parameter of the cations: it
scales the intensity of every line that would vanish were all cations disordered over all
cation sites (:func:`~xtal_cli.refine.phases.disorder_reflections`), as antisite mixing does
(Li/Ti in Li2TiO3's layers, which weakens its 002 at 18.5° 2θ); the average structure's lines
keep theirs.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np

from xtal_cli.errors import XtalError
from xtal_cli.refine import background as bgmod
from xtal_cli.refine.phases import (
    A_to_cell,
    Phase,
    disorder_reflections,
    hkl_terms,
    ordering_reflections,
)
from xtal_cli.refine.scattering import StructureFactors
from xtal_cli.xrd import lineshape

SIZE_UM = 1.0  # GSAS-II default isotropic crystallite size (µm)
MUSTRAIN = 1000.0  # GSAS-II default isotropic microstrain (10⁻⁶)
SIZE_MIN, SIZE_MAX = 0.002, 50.0  # µm, bounds of a refined size
ORDER_MIN = 0.01  # least S² of a cation order (0 would leave its derivative undefined)
PO_MIN, PO_MAX = 0.3, 3.0  # March–Dollase r: beyond these a texture is not a powder's
UOVER_MAX = 0.05  # Å², largest overall displacement parameter added to a phase's sites
SAMPLE_POSITION = ("Shift", "Transparency", "DisplaceX", "DisplaceY")  # BB pair, DS pair
ROUGHNESS = ("SurfRoughA", "SurfRoughB")  # Suortti surface roughness (Bragg–Brentano)
INSTRUMENT_PARAMS = ("zero", *SAMPLE_POSITION, *ROUGHNESS, "U", "V", "W", "X", "Y", "SH/L")


class RefinementFailed(XtalError):
    """A refinement that diverged or ran out of time (a failed BBO trial, not a user error)."""


@dataclass
class Stage:
    """One step of a staged refinement: switch parameters on, maybe change the range, refine."""

    name: str
    refine: tuple[str, ...] = ()  # names or groups: scale background cell xyz uiso + INSTRUMENT
    limits: tuple[float, float] | None = None
    background: tuple[str, int] | None = None  # (type, number of coefficients)
    cycles: int = 4
    restarts: bool = False  # also try the profile restarts of :meth:`RietveldModel.profile_starts`


@dataclass
class Result:
    rwp: float
    rp: float
    gof: float  # sqrt(χ²/(N−P)), as GSAS-II prints it
    chi2_reduced: float  # χ²/(N−P)
    n_points: int
    n_params: int
    values: dict
    esds: dict
    cell: tuple
    cell_esd: tuple
    sites: list
    limits: tuple
    stages: list
    seconds: float
    background: tuple
    negative_uiso: bool = False
    fixed_uiso: list = field(default_factory=list)  # sites whose Uiso went negative, then fixed

    def summary(self) -> dict:
        return {
            "rwp": self.rwp,
            "rp": self.rp,
            "gof": self.gof,
            "chi2_reduced": self.chi2_reduced,
            "n_points": self.n_points,
            "n_params": self.n_params,
            "limits": list(self.limits),
            "background": {"type": self.background[0], "n": self.background[1]},
            "cell": list(self.cell),
            "cell_esd": list(self.cell_esd),
            "sites": self.sites,
            "parameters": {
                k: {"value": v, "esd": self.esds.get(k)} for k, v in self.values.items()
            },
            "stages": self.stages,
            "seconds": self.seconds,
            "negative_uiso": self.negative_uiso,
            "fixed_uiso": self.fixed_uiso,
        }


def lorentz_polarisation(th, polariz: float):
    """Lp = 1 / (2 sin²θ cosθ) · ((1 − P) cos²2θ + P): the powder Lorentz factor and GSAS-II's
    polarisation at azimuth 0 (P, the instrument file's Polariz., carries the monochromator)."""
    sinth, cos = np.sin(th), np.cos(th)
    return ((1 - polariz) * np.cos(2 * th) ** 2 + polariz) / (2 * sinth**2 * cos)


def split_name(name: str) -> tuple[int, str]:
    """(phase index, plain name) of a parameter name: ``"1/A0"`` → ``(1, "A0")``; names without
    a prefix belong to phase 0 or are shared."""
    head, sep, rest = name.partition("/")
    if sep and head.isdigit():  # not "SH/L"
        return int(head), rest
    return 0, name


def phase_prefix(k: int) -> str:
    return f"{k}/" if k else ""


class _PhaseBlock:
    """The per-phase, parameter-independent part of a model: reflections, hkl terms, |F|²."""

    def __init__(self, phase: Phase, prefix: str, d_min: float, lam1: float):
        self.phase, self.prefix = phase, prefix
        self.hkl, self.mult = phase.reflections(d_min)
        if len(self.hkl) == 0:
            raise XtalError(f"{phase.path}: no reflections in the measured 2θ range")
        self.H = hkl_terms(self.hkl)
        s = 0.5 * np.sqrt(self.H @ phase.A0)
        self.sf = StructureFactors(phase, self.hkl, s, lam1)
        self.Hb = self.H @ phase.A_basis  # (nrefl, nA)
        # superstructure lines of a cation order: broadened by the phase's fault parameter
        self.ordered = ordering_reflections(phase, self.hkl).astype(float)
        # lines of any cation order, weakened by the phase's order parameter (S²)
        self.disordered = disorder_reflections(phase, self.hkl).astype(float)
        self.f2_key = None
        self.f2_val = None
        self.po_axis = None  # March–Dollase axis (hkl of the plane normal) or None
        self._po_cos2 = None  # (nrefl, max multiplicity) cos² of each equivalent to the axis

    def set_po_axis(self, axis) -> None:
        """Texture along the normal of plane *axis* (hkl); None: no texture. March–Dollase
        averages over every equivalent of a reflection, so the angles are kept per member."""
        if axis is None:
            self.po_axis, self._po_cos2 = None, None
            return
        a = np.asarray(axis, dtype=float)
        A = self.phase.A0
        g = np.array(
            [[A[0], A[3] / 2, A[4] / 2], [A[3] / 2, A[1], A[5] / 2], [A[4] / 2, A[5] / 2, A[2]]]
        )
        rots = np.concatenate([self.phase.rotations, -self.phase.rotations]).astype(int)
        m = int(self.mult.max())
        cos2 = np.full((len(self.hkl), m), np.nan)
        aa = a @ g @ a
        for i, h in enumerate(self.hkl):
            orbit = np.unique(h @ rots, axis=0).astype(float)
            dots = orbit @ g @ a
            norms = np.einsum("ij,jk,ik->i", orbit, g, orbit)
            cos2[i, : len(orbit)] = dots**2 / (norms * aa)
        self.po_axis, self._po_cos2 = tuple(int(c) for c in axis), np.clip(cos2, 0.0, 1.0)

    def texture(self, r: float) -> tuple[np.ndarray, np.ndarray]:
        """March–Dollase factor P(r) per reflection and d ln P / dr (1 and 0 without an axis)."""
        n = len(self.hkl)
        if self._po_cos2 is None:
            return np.ones(n), np.zeros(n)
        c2 = self._po_cos2
        t = r * r * c2 + (1.0 - c2) / r
        f = t**-1.5
        df = -1.5 * t**-2.5 * (2 * r * c2 - (1.0 - c2) / (r * r))
        P = np.nanmean(f, axis=1)
        return P, np.nanmean(df, axis=1) / P

    def names(self) -> list[str]:
        p, names = self.prefix, []
        names += [f"{p}A{i}" for i in range(self.phase.A_basis.shape[1])]
        for i, site in enumerate(self.phase.sites):
            names += [f"{p}xyz:{i}:{j}" for j in range(site.basis.shape[1])]
            names.append(f"{p}Uiso:{i}")
        return names + [f"{p}size", f"{p}mustrain", f"{p}po", f"{p}Uover", f"{p}fault", f"{p}order"]


@dataclass
class _Layout:
    names: list[str]
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.index = {n: i for i, n in enumerate(self.names)}


class RietveldModel:
    """One measured pattern, one or more phases, one instrument: compute, refine, report."""

    def __init__(self, two_theta, counts, phase: Phase | list[Phase], instrument, sigma=None):
        tt = np.asarray(two_theta, dtype=float)
        y = np.asarray(counts, dtype=float)
        if not (np.all(np.isfinite(tt)) and np.all(np.isfinite(y))):
            raise XtalError("pattern: contains NaN or infinite counts; clean the file first")
        if np.any(y < 0):
            raise XtalError(
                f"pattern: {int(np.sum(y < 0))} negative counts; Rietveld weights need raw "
                "counts (w = 1/counts), not background-subtracted data"
            )
        self.tt, self.yobs = tt, y
        if sigma is not None and np.all(np.asarray(sigma) > 0):
            self.w = 1.0 / np.asarray(sigma, dtype=float) ** 2
        else:
            self.w = 1.0 / np.maximum(y, 1.0)  # σ² = counts, as GSAS-II
        self.phases = list(phase) if isinstance(phase, list | tuple) else [phase]
        if not self.phases:
            raise XtalError("a Rietveld model needs at least one phase")
        self.phase = self.phases[0]
        self.inst = instrument
        self.lines = instrument.lines()
        lam_max = max(lam for lam, _ in self.lines)
        th_max = math.radians(min(tt[-1] + 2.0, 179.0) / 2)
        d_min = lam_max / (2 * math.sin(th_max))
        self.blocks = [
            _PhaseBlock(ph, phase_prefix(k), d_min, instrument.lam1)
            for k, ph in enumerate(self.phases)
        ]
        self.hkl, self.mult = self.blocks[0].hkl, self.blocks[0].mult  # the first phase's
        self.bg_kind, self.bg_n = "chebyschev", 1
        self._build_layout()
        self.values = self._initial_values()
        self.free: list[str] = []
        self.held: set[str] = set()  # never switched on (a Uiso fixed after going negative)
        self.set_limits(float(tt[0]), float(tt[-1]))

    # ------------------------------------------------------------ parameters

    def _build_layout(self) -> None:
        names = ["scale", *INSTRUMENT_PARAMS, *self.blocks[0].names()]
        for b in self.blocks[1:]:
            names += [f"{b.prefix}scale", *b.names()]
        names += [f"bg{i}" for i in range(self.bg_n)]
        old = getattr(self, "layout", None)
        self.layout = _Layout(names)
        if old is not None:
            vals = np.zeros(len(names))
            for n, i in self.layout.index.items():
                if n in old.index:
                    vals[i] = self.values[old.index[n]]
            self.values = vals

    def _initial_values(self) -> np.ndarray:
        inst = self.inst
        v = np.zeros(len(self.layout.names))
        ix = self.layout.index
        for name, val in (("zero", inst.zero), ("U", inst.U), ("V", inst.V), ("W", inst.W),
                          ("X", inst.X), ("Y", inst.Y), ("SH/L", inst.SH_L)):  # fmt: skip
            v[ix[name]] = val
        for b in self.blocks:
            p = b.prefix
            v[ix[f"{p}scale"]] = 1.0
            v[ix[f"{p}size"]], v[ix[f"{p}mustrain"]] = SIZE_UM, MUSTRAIN
            v[ix[f"{p}po"]] = 1.0
            v[ix[f"{p}order"]] = 1.0
            for i, site in enumerate(b.phase.sites):
                v[ix[f"{p}Uiso:{i}"]] = site.uiso
        v[ix["bg0"]] = 1.0
        return v

    def set_background(self, kind: str, n: int) -> None:
        """Change the background function; coefficients kept where they exist (as GSAS-II)."""
        if kind not in bgmod.TYPES:
            raise XtalError(
                f"unknown background type {kind!r}; use one of {', '.join(bgmod.TYPES)}"
            )
        self.bg_kind, self.bg_n = kind, int(n)
        self._build_layout()
        self.free = [f for f in self.free if f in self.layout.index]
        self._bg_basis()

    def set_limits(self, lo: float, hi: float) -> None:
        i0 = int(np.searchsorted(self.tt, lo))
        i1 = int(np.searchsorted(self.tt, hi, side="right"))
        if i1 - i0 < 20:
            raise XtalError(f"2θ limits {lo:g}-{hi:g} hold fewer than 20 points of the pattern")
        self.i0, self.i1 = i0, i1
        self.x = np.ascontiguousarray(self.tt[i0:i1])
        self._bg_basis()

    def _bg_basis(self) -> None:
        self.B = bgmod.basis(self.bg_kind, self.bg_n, self.x, self.inst.lam1)

    def switch_on(self, what) -> None:
        """Flag parameters or groups for refinement (cumulative, as GSAS-II's 'set')."""
        base = [(n, split_name(n)[1]) for n in self.layout.names]
        groups = {
            "scale": [n for n, b in base if b == "scale"],
            "background": [n for n, b in base if b.startswith("bg")],
            "cell": [n for n, b in base if b[0] == "A" and b[1:].isdigit()],
            "xyz": [n for n, b in base if b.startswith("xyz:")],
            "uiso": [n for n, b in base if b.startswith("Uiso:")],
            "size": [n for n, b in base if b == "size"],
            "mustrain": [n for n, b in base if b == "mustrain"],
            "fault": [  # only phases with superstructure lines have something to broaden
                n for n, b in base if b == "fault" and self.blocks[split_name(n)[0]].ordered.any()
            ],
            "order": [
                n
                for n, b in base
                if b == "order" and self.blocks[split_name(n)[0]].disordered.any()
            ],
            "po": [n for n, b in base if b == "po"],
            "uover": [n for n, b in base if b == "Uover"],
        }
        for w in what:
            names = groups.get(w, [w] if w in self.layout.index else None)
            if names is None:
                raise XtalError(f"unknown refinable parameter {w!r}")
            for n in names:
                if n not in self.free and n not in self.held:
                    self.free.append(n)

    def set_texture_axis(self, k: int, axis) -> None:
        """March–Dollase preferred orientation of phase *k* along the normal of plane *axis*
        (hkl, e.g. (0, 0, 1)); its ratio ``po`` (``k/po``, 1 = none) is then refinable."""
        self.blocks[k].set_po_axis(axis)

    def get(self, name: str) -> float:
        return float(self.values[self.layout.index[name]])

    def set(self, name: str, value: float) -> None:
        self.values[self.layout.index[name]] = value

    # ------------------------------------------------------------ model

    def _unpack(self, v, k: int = 0):
        """Phase *k*'s cell parameters, site coordinates, Uiso and coordinate parameters."""
        ix = self.layout.index
        ph, p = self.phases[k], self.blocks[k].prefix
        nA = ph.A_basis.shape[1]
        pA = np.array([v[ix[f"{p}A{i}"]] for i in range(nA)])
        xyz, uiso, pxyz = [], [], []
        for i, site in enumerate(ph.sites):
            q = np.array([v[ix[f"{p}xyz:{i}:{j}"]] for j in range(site.basis.shape[1])])
            pxyz.append(q)
            xyz.append(site.xyz + site.basis @ q if len(q) else site.xyz.copy())
            uiso.append(v[ix[f"{p}Uiso:{i}"]])
        # the overall displacement parameter adds to every site's (FullProf's Bover, in U)
        return pA, xyz, np.array(uiso) + v[ix[f"{p}Uover"]], pxyz

    def _f2(self, b: _PhaseBlock, xyz, uiso, derivatives):
        key = (tuple(np.concatenate(xyz).round(12)), tuple(uiso.round(12)))
        if not derivatives and key == b.f2_key:
            return b.f2_val, None, None
        F2, dx, du = b.sf.compute(xyz, uiso, derivatives)
        b.f2_key, b.f2_val = key, F2
        return F2, dx, du

    def peaks(self, v, derivatives: bool = False):
        """Per-peak position, σ², γ, area (Kα1 then Kα2, phase after phase) and, optionally,
        derivatives; ``slices[k]`` are phase *k*'s rows, ``refl`` the reflection in its phase.

        As GSAS-II (``getPowderProfile``), the Kα2 peak of a reflection sits at
        :func:`lineshape.kalpha2_position` of its observed Kα1 position, with the Kα1 widths and
        Lorentz-polarisation and the intensity ratio of the instrument file.
        """
        parts = [self._phase_peaks(v, k, derivatives) for k in range(len(self.blocks))]
        if len(parts) == 1:
            pk = parts[0]
            pk["slices"] = [slice(0, len(pk["pos"]))]
        else:
            keys = [key for key in parts[0] if key not in ("dF2x", "dF2u")]
            pk = {key: np.concatenate([part[key] for part in parts]) for key in keys}
            ends = np.cumsum([0] + [len(part["pos"]) for part in parts])
            pk["slices"] = [slice(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:])]
        if derivatives:
            pk["dF2"] = [(part["dF2x"], part["dF2u"]) for part in parts]
        return pk

    def _phase_peaks(self, v, k: int, derivatives: bool):
        ix = self.layout.index
        b = self.blocks[k]
        p = b.prefix
        pA, xyz, uiso, _ = self._unpack(v, k)
        A = b.phase.A0 + b.phase.A_basis @ pA
        Q = b.H @ A
        F2, dF2x, dF2u = self._f2(b, xyz, uiso, derivatives)
        lam = self.inst.lam1
        sinth = np.clip(lam * np.sqrt(Q) / 2, 0, 0.999999)
        th = np.arcsin(sinth)
        tth = np.degrees(2 * th)
        pos = tth + v[ix["zero"]] - self._sample_shift(v, th)
        tan, cos = np.tan(th), np.cos(th)
        sig = lineshape.caglioti(th, v[ix["U"]], v[ix["V"]], v[ix["W"]])
        size, strain = v[ix[f"{p}size"]], v[ix[f"{p}mustrain"]]
        sample = 1.8 * lam / (math.pi * size * cos) + 0.018 * strain * tan / math.pi
        fault = v[ix[f"{p}fault"]]  # 1 / ordered-domain size (µm⁻¹), superstructure lines only
        if fault:
            sample = sample + 1.8 * lam * fault * b.ordered / (math.pi * cos)
        # GSAS-II's γ = X / cosθ + Y tanθ, the shared X tanθ + Y / cosθ with X and Y swapped
        gam = lineshape.lorentzian_fwhm(th, v[ix["Y"]], v[ix["X"]]) + self.inst.Z + sample
        lp = lorentz_polarisation(th, self.inst.polariz)
        rough = self._roughness(v, th)
        scale = v[ix[f"{p}scale"]]
        po, dlnpo = b.texture(float(v[ix[f"{p}po"]]))
        # S² on the lines of the cation order (1 on the average structure's)
        lro = 1.0 + (v[ix[f"{p}order"]] - 1.0) * b.disordered
        area = scale * b.mult * F2 * lp * rough * po * lro
        n = len(pos)
        pk = {
            "pos": pos, "sig": sig, "gam": gam, "area": area, "tth": tth, "lp": lp,
            "dQ": np.degrees(lam / (2 * np.sqrt(Q) * cos)),  # d(2θ)/dQ in degrees
            "ratio": np.ones(n), "refl": np.arange(n), "dpos": np.ones(n), "rough": rough,
            "mult": b.mult.astype(float), "scale": np.full(n, scale), "po": po, "dlnpo": dlnpo,
            "lro": lro,
        }  # fmt: skip
        if self.inst.lam2:
            # every reflection keeps its Kα2 peak (one beyond the scan draws nothing), so the
            # peak list has the same length whatever the parameters
            pos2, dpos2 = lineshape.kalpha2_position(pos, lam, self.inst.lam2)
            k2 = dict(pk, pos=pos2, dpos=dpos2, ratio=np.full(n, self.inst.ratio))
            k2["area"] = pk["area"] * self.inst.ratio
            pk = {key: np.concatenate([pk[key], k2[key]]) for key in pk}
        if derivatives:
            pk["dF2x"], pk["dF2u"] = dF2x, dF2u
        return pk

    def _roughness(self, v, th, derivative: str | None = None):
        """Suortti's surface-roughness factor (J. Appl. Cryst. 5, 325, 1972) as GSAS-II computes
        it for Bragg–Brentano samples (``SurfaceRough``): (A + (1 − A) e^(−B/sinθ)) /
        (A + (1 − A) e^(−B)), 1 at A = B = 0. A rough surface loses low-angle intensity, which an
        unmodelled fit pushes into too-small (even negative) Uiso. With *derivative*, the
        derivative of the factor in that parameter instead."""
        if self.inst.geometry != "bragg-brentano":
            return np.ones_like(th) if derivative is None else np.zeros_like(th)
        ix = self.layout.index
        a, b = v[ix["SurfRoughA"]], v[ix["SurfRoughB"]]
        sth = np.sin(th)
        t1 = np.exp(-b / sth)
        eb = math.exp(-b)
        t2 = a + (1.0 - a) * eb
        factor = (a + (1.0 - a) * t1) / t2
        if derivative == "SurfRoughA":
            return ((1.0 - t1) - (1.0 - eb) * factor) / t2
        if derivative == "SurfRoughB":
            return (1.0 - a) * (eb * factor - t1 / sth) / t2
        return factor

    def _sample_shift(self, v, th, derivative: str | None = None):
        """The sample-position aberration of the geometry (deg), GSAS-II's ``GetReflPos``: in
        Bragg–Brentano, displacement (Shift, µm) ∝ cosθ and transparency ∝ sin2θ; in
        Debye–Scherrer, DisplaceX ∝ cos2θ and DisplaceY ∝ sin2θ. With *derivative*, the
        derivative of the shift in that parameter instead."""
        ix = self.layout.index
        const = 0.09 / (math.pi * self.inst.gonio_radius)
        if self.inst.geometry == "bragg-brentano":
            terms = {"Shift": 4 * const * np.cos(th), "Transparency": 100 * const * np.sin(2 * th)}
        else:
            c2, s2 = np.cos(2 * th), np.sin(2 * th)
            terms = {"DisplaceX": 2 * const * c2, "DisplaceY": 2 * const * s2}
        if derivative is not None:
            return terms.get(derivative, 0.0 * th)
        return sum(v[ix[name]] * t for name, t in terms.items())

    def _coefficients(self, v, pk, free):
        """d pos/dp, dσ²/dp, dγ/dp, d area/dp per peak, for the free parameters."""
        npk, P = len(pk["pos"]), len(free)
        Cpos, Csig, Cgam, Carea = (np.zeros((npk, P)) for _ in range(4))
        ix = self.layout.index
        th = np.radians(pk["tth"] / 2)
        tan, cos = np.tan(th), np.cos(th)
        refl = pk["refl"]
        base = (
            pk["scale"] * pk["ratio"] * pk["mult"] * pk["lp"] * pk["rough"] * pk["po"] * pk["lro"]
        )
        ishl = -1
        for p, name in enumerate(free):
            k, bare = split_name(name)
            r = pk["slices"][k]  # a phase parameter acts on its phase's peaks only
            if bare == "scale":
                scale = v[ix[name]]
                Carea[r, p] = pk["area"][r] / scale if scale != 0 else 0
            elif name == "zero":
                Cpos[:, p] = 1.0
            elif name in SAMPLE_POSITION:
                Cpos[:, p] = -self._sample_shift(v, th, derivative=name)
            elif name in ROUGHNESS:
                Carea[:, p] = pk["area"] / pk["rough"] * self._roughness(v, th, derivative=name)
            elif name == "U":
                Csig[:, p] = tan**2
            elif name == "V":
                Csig[:, p] = tan
            elif name == "W":
                Csig[:, p] = 1.0
            elif name == "X":
                Cgam[:, p] = 1.0 / cos
            elif name == "Y":
                Cgam[:, p] = tan
            elif name == "SH/L":
                ishl = p
            elif bare == "size":
                size = v[ix[name]]
                Cgam[r, p] = -1.8 * self.inst.lam1 / (math.pi * size * size * cos[r])
            elif bare == "mustrain":
                Cgam[r, p] = 0.018 * tan[r] / math.pi
            elif bare == "fault":
                ordered = self.blocks[k].ordered[refl[r]]
                Cgam[r, p] = 1.8 * self.inst.lam1 * ordered / (math.pi * cos[r])
            elif bare == "po":
                Carea[r, p] = pk["area"][r] * pk["dlnpo"][r]
            elif bare == "order":  # lro ≥ ORDER_MIN > 0 (bounded)
                disordered = self.blocks[k].disordered[refl[r]]
                Carea[r, p] = pk["area"][r] * disordered / pk["lro"][r]
            elif bare == "Uover":
                Carea[r, p] = base[r] * pk["dF2"][k][1][refl[r], :].sum(axis=1)
            elif bare.startswith("A"):
                a = int(bare[1:])
                Cpos[r, p] = pk["dQ"][r] * self.blocks[k].Hb[refl[r], a]
            elif bare.startswith("xyz:"):
                _, i, j = bare.split(":")
                Carea[r, p] = base[r] * pk["dF2"][k][0][int(i)][refl[r], int(j)]
            elif bare.startswith("Uiso:"):
                i = int(bare.split(":")[1])
                Carea[r, p] = base[r] * pk["dF2"][k][1][refl[r], i]
        Cpos *= pk["dpos"][:, None]  # a Kα2 position follows its Kα1 one
        return Cpos, Csig, Cgam, Carea, ishl

    def calc(self, v=None, free=None):
        """(background, peaks) on the current range; with *free*, also the Jacobian."""
        v = self.values if v is None else v
        ix = self.layout.index
        pk = self.peaks(v, derivatives=free is not None)
        shl = max(float(v[ix["SH/L"]]), 0.0)
        lo, hi = lineshape.fcj_windows(self.x, pk["pos"], pk["sig"], pk["gam"], shl)
        bgc = np.array([v[ix[f"bg{i}"]] for i in range(self.bg_n)])
        ybg = self.B @ bgc
        c = np.ascontiguousarray
        args = (self.x, c(pk["pos"]), c(pk["sig"]), c(pk["gam"]), shl, c(pk["area"]), lo, hi)
        if free is None:
            return ybg, lineshape.fcj_render(*args)
        # the background is linear and apart from the peaks: its columns are B's
        peak_free = [n for n in free if not n.startswith("bg")]
        Cpos, Csig, Cgam, Carea, ishl = self._coefficients(v, pk, peak_free)
        ypk, Jpk = lineshape.fcj_render_jacobian(*args, Cpos, Csig, Cgam, Carea, ishl)
        J = np.empty((len(self.x), len(free)))
        col = {n: i for i, n in enumerate(peak_free)}
        for p, name in enumerate(free):
            J[:, p] = self.B[:, int(name[2:])] if name.startswith("bg") else Jpk[:, col[name]]
        return ybg, ypk, J

    # ------------------------------------------------------------ statistics

    def statistics(self, v=None, n_params: int | None = None) -> dict:
        ybg, ypk = self.calc(v)
        yo, w = self.yobs[self.i0 : self.i1], self.w[self.i0 : self.i1]
        diff = yo - ybg - ypk
        chi2 = float(np.sum(w * diff**2))
        n = len(yo)
        p = len(self.free) if n_params is None else n_params
        red = chi2 / max(n - p, 1)
        return {
            "rwp": 100 * math.sqrt(chi2 / float(np.sum(w * yo**2))),
            "rp": 100 * float(np.sum(np.abs(diff)) / np.sum(yo)),
            "chi2": chi2,
            "chi2_reduced": red,
            "gof": math.sqrt(red),
            "n_points": n,
        }

    # ------------------------------------------------------------ least squares

    def _residual(self, v, free=None):
        sw = np.sqrt(self.w[self.i0 : self.i1])
        yo = self.yobs[self.i0 : self.i1]
        if free is None:
            ybg, ypk = self.calc(v)
            return (ybg + ypk - yo) * sw
        ybg, ypk, J = self.calc(v, free)
        return (ybg + ypk - yo) * sw, J * sw[:, None]

    def initial_scale(self) -> None:
        """Linear estimate of the scale(s) before the first cycle (non-negative least squares
        over the phases' patterns when there are several)."""
        ix = self.layout.index
        if len(self.blocks) > 1:
            self._initial_scales()
            return
        v = self.values.copy()
        v[ix["scale"]] = 1.0
        _, ypk = self.calc(v)
        yo = self.yobs[self.i0 : self.i1]
        w = self.w[self.i0 : self.i1]
        ybg, _ = self.calc(self.values)
        denom = float(np.sum(w * ypk * ypk))
        if denom > 0:
            self.values[ix["scale"]] = max(float(np.sum(w * ypk * (yo - ybg)) / denom), 1e-12)

    def _initial_scales(self) -> None:
        from scipy.optimize import nnls

        ix = self.layout.index
        sw = np.sqrt(self.w[self.i0 : self.i1])
        ybg, _ = self.calc(self.values)
        cols = []
        for b in self.blocks:
            v = self.values.copy()
            for other in self.blocks:
                v[ix[f"{other.prefix}scale"]] = 1.0 if other is b else 0.0
            cols.append(self.calc(v)[1] * sw)
        target = (self.yobs[self.i0 : self.i1] - ybg) * sw
        scales, _ = nnls(np.column_stack(cols), target)
        for b, sc in zip(self.blocks, scales):
            self.values[ix[f"{b.prefix}scale"]] = max(float(sc), 1e-12)

    def lsq(self, cycles: int = 4, deadline: float | None = None, tol: float = 1e-4) -> float:
        """Levenberg–Marquardt on the flagged parameters; returns the final χ²."""
        free = list(self.free)
        ix = np.array([self.layout.index[n] for n in free], dtype=int)
        v = self.values.copy()
        if not free:
            r = self._residual(v)
            return float(r @ r)
        r, J = self._residual(v, free)
        chi2 = float(r @ r)
        if not math.isfinite(chi2):
            raise RefinementFailed("model gives non-finite values")
        lam = 1e-3
        for _cycle in range(cycles):
            if deadline is not None and time.monotonic() > deadline:
                raise RefinementFailed("refinement timed out")
            H = J.T @ J
            g = J.T @ r
            d = np.sqrt(np.diag(H))
            d[d == 0] = 1.0
            Hn = H / np.outer(d, d)
            gn = g / d
            accepted = False
            for _try in range(8):
                M = Hn + lam * np.eye(len(free))
                step = -np.linalg.lstsq(M, gn, rcond=1e-10)[0] / d
                vn = v.copy()
                vn[ix] += step
                self._bound(vn)
                if self._wild(v, vn):
                    lam *= 10
                    continue
                rn = self._residual(vn)
                chi2n = float(rn @ rn)
                if math.isfinite(chi2n) and chi2n <= chi2:
                    accepted = True
                    break
                lam *= 10
            if not accepted:
                break
            lam = max(lam / 10, 1e-6)
            gain = (chi2 - chi2n) / chi2
            v, chi2 = vn, chi2n
            self._check(v)
            if gain < tol:
                break
            r, J = self._residual(v, free)
        self.values = v
        return chi2

    def profile_starts(self) -> list[dict]:
        """Alternative starting profiles for the flagged U V W X Y, keeping today's peak width.

        The Gaussian (U V W) and Lorentzian (X Y) widths trade off against each other and LM
        from one start often stops in the nearest of several minima. Each start puts the
        current total FWHM at the middle of the range back together from a different
        Gaussian/Lorentzian split (TCH), as constant (W, X) or angle-dependent (U, Y) terms;
        only flagged parameters are changed, so nothing the configuration keeps fixed moves.
        """
        flagged = [n for n in ("U", "V", "W", "X", "Y") if n in self.free]
        if not flagged:
            return []
        v = self.values
        ix = self.layout.index
        pk = self.peaks(v)
        mid = 0.5 * (self.x[0] + self.x[-1])
        k = int(np.argmin(np.abs(pk["pos"] - mid)))
        fw = float(lineshape.gsas_tch(pk["sig"][k], pk["gam"][k])[0]) * 100  # centideg
        th = math.radians(pk["tth"][k] / 2)
        # instrument Z + sample terms, not refined here (GSAS-II's X, Y order: see peaks())
        gam_fixed = float(pk["gam"][k]) - float(
            lineshape.lorentzian_fwhm(th, v[ix["Y"]], v[ix["X"]])
        )
        starts = []
        for lor in (0.25, 0.5, 0.75):  # Lorentzian share of the FWHM
            g2 = ((1 - lor) * fw) ** 2 / (8 * math.log(2))  # σ² in centideg²
            gl = max(lor * fw - gam_fixed, 0.0)
            s: dict = {}
            if "U" in flagged:
                s.update(U=g2 / math.tan(th) ** 2, V=0.0, W=0.0)
            elif "W" in flagged:
                s.update(V=0.0, W=g2)
            if "Y" in flagged:
                s.update(X=0.0, Y=gl / math.tan(th))
            elif "X" in flagged:
                s.update(X=gl * math.cos(th))
            s = {n: val for n, val in s.items() if n in flagged}
            if s and s not in starts:
                starts.append(s)
        return starts

    def negative_uiso_sites(self) -> list[str]:
        """The Uiso parameters (``Uiso:i``, ``k/Uiso:i``) that are below zero now."""
        return [
            f"{b.prefix}Uiso:{i}"
            for k, b in enumerate(self.blocks)
            for i, u in enumerate(self._unpack(self.values, k)[2])
            if u < 0
        ]

    def site_of_parameter(self, name: str):
        """The :class:`~xtal_cli.refine.phases.Site` a site parameter (``k/Uiso:i``) belongs to."""
        k, bare = split_name(name)
        return self.phases[k].sites[int(bare.split(":")[1])]

    def negative_uiso(self) -> bool:
        return bool(self.negative_uiso_sites())

    def profile_starts_from(self, values) -> list[dict]:
        """:meth:`profile_starts` evaluated at *values* (the model's values are left as given)."""
        keep = self.values
        self.values = values
        try:
            return self.profile_starts()
        finally:
            self.values = keep

    def _bound(self, v) -> None:
        """Keep size and microstrain broadening physical: a size beyond SIZE_MAX µm broadens
        nothing measurable (a Lorentzian width ∝ 1/size that LM would chase to infinity), and
        neither can be negative; nor can a phase's scale (a negative amount of a phase would
        subtract its lines from the others' misfit)."""
        ix = self.layout.index
        for b in self.blocks:
            i = ix[f"{b.prefix}scale"]
            v[i] = max(v[i], 0.0)
            i, j = ix[f"{b.prefix}size"], ix[f"{b.prefix}mustrain"]
            v[i] = min(max(v[i], SIZE_MIN), SIZE_MAX)
            v[j] = max(v[j], 0.0)
            k = ix[f"{b.prefix}fault"]
            v[k] = min(max(v[k], 0.0), 1.0 / SIZE_MIN)
            k = ix[f"{b.prefix}po"]
            v[k] = min(max(v[k], PO_MIN), PO_MAX)
            k = ix[f"{b.prefix}order"]
            v[k] = min(max(v[k], ORDER_MIN), 1.0)
            # no site's effective Uiso below zero through the overall term
            k = ix[f"{b.prefix}Uover"]
            lowest = min((site.uiso for site in b.phase.sites), default=0.0)
            v[k] = min(max(v[k], -lowest), UOVER_MAX)

    def _wild(self, v, vn) -> bool:
        """A trial step that more than triples a peak's width (FWHM + asymmetric extent) or moves
        a peak by more than a degree: refused without drawing (it would need huge windows)."""
        a, b = self.peaks(v), self.peaks(vn)
        i = self.layout.index["SH/L"]
        fa, fb = (
            lineshape.gsas_tch(p["sig"], p["gam"])[0] + lineshape.fcj_extent(p["pos"], max(s, 0.0))
            for p, s in ((a, v[i]), (b, vn[i]))
        )
        with np.errstate(all="ignore"):
            ratio = np.max(fb / fa)
            shift = np.max(np.abs(b["pos"] - a["pos"]))
        return not (np.isfinite(ratio) and ratio < 3.0 and shift < 1.0)

    def _check(self, v) -> None:
        """Stop a refinement that has left physics (the BBO study marks the trial failed)."""
        for k, ph in enumerate(self.phases):
            what = f"{ph.name}: " if len(self.phases) > 1 else ""
            pA, xyz, uiso, pxyz = self._unpack(v, k)
            A = ph.A0 + ph.A_basis @ pA
            rel = np.abs(A - ph.A0)[:3] / ph.A0[:3]
            if np.any(A[:3] <= 0) or np.max(rel) > 0.05:
                raise RefinementFailed(f"{what}lattice diverged (more than 2.5 % from the start)")
            if np.any(uiso > 1.0) or np.any(uiso < -0.5):
                raise RefinementFailed(f"{what}Uiso diverged")
            if any(len(p) and np.max(np.abs(p)) > 0.25 for p in pxyz):
                raise RefinementFailed(f"{what}atom positions diverged")
            if v[self.layout.index[f"{self.blocks[k].prefix}mustrain"]] > 1e5:
                raise RefinementFailed(f"{what}microstrain diverged")

    def esds(self) -> dict:
        """Standard uncertainties of the flagged parameters (covariance × reduced χ²)."""
        free = list(self.free)
        if not free:
            return {}
        r, J = self._residual(self.values, free)
        red = float(r @ r) / max(len(r) - len(free), 1)
        H = J.T @ J
        d = np.sqrt(np.diag(H))
        d[d == 0] = 1.0
        cov = np.linalg.pinv(H / np.outer(d, d), rcond=1e-12) / np.outer(d, d) * red
        self._cov = (free, cov)
        return {n: float(math.sqrt(max(cov[i, i], 0.0))) for i, n in enumerate(free)}

    # ------------------------------------------------------------ results

    def cell(self, v=None, k: int = 0) -> tuple:
        """Phase *k*'s cell (a, b, c, α, β, γ) at *v* (default: the current values)."""
        v = self.values if v is None else v
        pA, *_ = self._unpack(v, k)
        return A_to_cell(self.phases[k].A0 + self.phases[k].A_basis @ pA)

    def cell_esd(self, k: int = 0) -> tuple:
        """Propagate the A-parameter covariance to a, b, c, α, β, γ (numerical Jacobian)."""
        free, cov = getattr(self, "_cov", ([], None))
        names = [n for n in free if split_name(n)[0] == k and split_name(n)[1][0] == "A"]
        if not names:
            return (0.0,) * 6
        idx = [free.index(n) for n in names]
        C = cov[np.ix_(idx, idx)]
        Jc = np.zeros((6, len(names)))
        for j, n in enumerate(names):
            v1, v2 = self.values.copy(), self.values.copy()
            h = 1e-7 * max(abs(self.phases[k].A0[:3]).max(), 1e-6)
            v1[self.layout.index[n]] += h
            v2[self.layout.index[n]] -= h
            Jc[:, j] = (np.array(self.cell(v1, k)) - np.array(self.cell(v2, k))) / (2 * h)
        return tuple(float(x) for x in np.sqrt(np.maximum(np.diag(Jc @ C @ Jc.T), 0)))

    def sites(self, esds: dict | None = None, k: int = 0) -> list[dict]:
        esds = esds or {}
        p = self.blocks[k].prefix
        _, xyz, uiso, _ = self._unpack(self.values, k)
        out = []
        for i, site in enumerate(self.phases[k].sites):
            # esd of each coordinate from the free parameters along its basis
            sx = np.zeros(3)
            for j in range(site.basis.shape[1]):
                sx += (site.basis[:, j] * esds.get(f"{p}xyz:{i}:{j}", 0.0)) ** 2
            out.append(
                {
                    "label": site.label,
                    "species": [[e, o] for e, o in site.species],
                    "xyz": [float(c) for c in xyz[i]],
                    "xyz_esd": [float(c) for c in np.sqrt(sx)],
                    "uiso": float(uiso[i]),
                    "uiso_esd": esds.get(f"{p}Uiso:{i}", 0.0),
                    "multiplicity": site.multiplicity,
                }
            )
        return out

    def named_values(self) -> dict:
        """Refined values with readable names (cell terms and site coordinates spelled out)."""
        out = {}
        for name in self.layout.names:
            out[self._pretty(name)] = self.get(name)
        return out

    def _pretty(self, name: str) -> str:
        k, bare = split_name(name)
        p = phase_prefix(k)
        sites = self.phases[k].sites
        if bare.startswith("xyz:"):
            _, i, j = bare.split(":")
            return f"{p}{sites[int(i)].label}:dxyz{j}"
        if bare.startswith("Uiso:"):
            return f"{p}{sites[int(bare.split(':')[1])].label}:Uiso"
        return name

    def reflection_positions(self, k: int = 0) -> np.ndarray:
        """Phase *k*'s Kα1 peak positions within the current range (the plot's tick marks)."""
        pos = self._phase_peaks(self.values, k, False)["pos"][: len(self.blocks[k].hkl)]
        return pos[(pos >= self.x[0]) & (pos <= self.x[-1])]

    def phase_pattern(self, k: int) -> np.ndarray:
        """Phase *k*'s calculated peaks alone on the current range (no background)."""
        v = self.values.copy()
        ix = self.layout.index
        for j, b in enumerate(self.blocks):
            if j != k:
                v[ix[f"{b.prefix}scale"]] = 0.0
        return self.calc(v)[1]


def _run_stage(model: RietveldModel, st: Stage, deadline) -> None:
    """Refine one stage's flagged parameters, with its profile restarts."""
    chi2 = model.lsq(cycles=st.cycles, deadline=deadline)
    if not st.restarts:
        return
    # profile restarts, each from the lowest χ² so far; the stage ends on the lowest χ² with a
    # physical structure (Uiso >= 0) when there is one
    found = [(chi2, model.values.copy(), model.negative_uiso())]
    for start in model.profile_starts_from(found[0][1]):
        model.values = min(found, key=lambda f: f[0])[1].copy()
        for name, val in start.items():
            model.set(name, val)
        try:
            chi2 = model.lsq(cycles=st.cycles, deadline=deadline)
        except RefinementFailed as exc:
            if "timed out" in str(exc):
                raise
            continue
        found.append((chi2, model.values.copy(), model.negative_uiso()))
    physical = [f for f in found if not f[2]] or found
    model.values = min(physical, key=lambda f: f[0])[1]


def _run_stages(model: RietveldModel, stages: list[Stage], deadline, history: list, first=False):
    """Run *stages* (the *first* one starts with the linear scale estimate); returns (copy of
    the model, stage index) from just before the first stage that frees a Uiso — where a
    refinement ending with a negative Uiso restarts — or None."""
    snapshot = None
    for k, st in enumerate(stages):
        if st.limits is not None:
            model.set_limits(*st.limits)
        if st.background is not None:
            model.set_background(*st.background)
        if snapshot is None and "uiso" in st.refine:
            snapshot = (copy.deepcopy(model), k)
        model.switch_on(st.refine)
        if first and k == 0:
            model.initial_scale()
        _run_stage(model, st, deadline)
        stats = model.statistics()
        history.append({"stage": st.name, "rwp": stats["rwp"], "n_params": len(model.free)})
    return snapshot


def refine(model: RietveldModel, stages: list[Stage], timeout: float | None = None) -> Result:
    """Run *stages* in order on *model* and return the statistics of the last one.

    A refinement that ends with a refined Uiso negative is run again from the first stage that
    freed the Uiso, with those sites' Uiso fixed at the CIF's value: a negative Uiso is most
    often one light atom absorbing an intensity trend, and fixing it keeps the trial's structure
    physical instead of wasting the trial (the fixed sites are reported in ``fixed_uiso``).
    """
    t0 = time.monotonic()
    deadline = None if timeout is None else t0 + timeout
    history: list[dict] = []
    model.switch_on(["scale"])
    snapshot = _run_stages(model, stages, deadline, history, first=True)
    fixed: list[str] = []
    negative = [n for n in model.negative_uiso_sites() if n in model.free]
    if negative and snapshot is not None:
        start, at = snapshot
        model.__dict__.update(start.__dict__)  # back to before that stage (a private copy)
        del history[at:]
        model.held = set(negative)
        for name in negative:
            site = model.site_of_parameter(name)
            model.set(name, site.uiso)
            k = split_name(name)[0]
            fixed.append(f"{model.phases[k].name}/{site.label}" if k else site.label)
        _run_stages(model, stages[at:], deadline, history)
    esds = model.esds()
    stats = model.statistics()
    _, _, uiso, _ = model._unpack(model.values)
    named_esd = {model._pretty(k): v for k, v in esds.items()}
    return Result(
        rwp=stats["rwp"],
        rp=stats["rp"],
        gof=stats["gof"],
        chi2_reduced=stats["chi2_reduced"],
        n_points=stats["n_points"],
        n_params=len(model.free),
        values=model.named_values(),
        esds=named_esd,
        cell=model.cell(),
        cell_esd=model.cell_esd(),
        sites=model.sites(esds),
        limits=(float(model.x[0]), float(model.x[-1])),
        stages=history,
        seconds=time.monotonic() - t0,
        background=(model.bg_kind, model.bg_n),
        negative_uiso=bool(np.any(uiso < 0)),
        fixed_uiso=sorted(fixed),
    )
