"""The native engine's refined model computed by GSAS-II, nothing refined: do they agree?

Every parameter of a :class:`~xtal_cli.refine.engine.RietveldModel` is written into a fresh
GSAS-II project of the same pattern, CIF and instrument file (cell, coordinates, Uiso, scale,
background, U V W X Y Z SH/L, zero, the sample-position pair of the geometry, surface
roughness, Kα2 ratio,
polarisation, the 2θ limits), GSAS-II computes the pattern with zero refinement cycles, and
the two Rwp values and curves are compared (issue 18: within 0.1 Rwp points).

Conventions found on the way (each one changed the native engine to GSAS-II's):

* Bragg–Brentano samples move peaks by Shift (∝ cosθ) and Transparency (∝ sin2θ); GSAS-II
  ignores DisplaceX/DisplaceY there (:func:`instrument.sample_position_terms`).
* The Kα2 peak sits at the first-order shift of the observed Kα1 position, with the Kα1 widths
  and Lorentz-polarisation (:func:`lineshape.kalpha2_position`).
* Peaks extend 50/75 FWHM either side and the FCJ quadrature order follows GSAS-II's rule
  (:func:`lineshape.fcj_windows`, ``_lineshape_kernels._fcj_setup``).
* GSAS-II's histogram scale is ours × cell volume × 100 (its |F|² per unit volume, its profile
  per centidegree).

What stays different, by design, is reported: the scattering factors (Waasmaier–Kirfel f0 and
Chantler f′, f″ from xraydb against GSAS-II's own tables), a few tenths of a percent per
reflection, given as ``intensity_ratio``.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from dataclasses import asdict, dataclass

import numpy as np

from xtal_cli.errors import XtalError

SAMPLE_TYPE = {"bragg-brentano": "Bragg-Brentano", "debye-scherrer": "Debye-Scherrer"}
PROFILE = {"Zero": "zero", "U": "U", "V": "V", "W": "W", "X": "X", "Y": "Y", "SH/L": "SH/L"}


@dataclass
class CrossCheck:
    """Rwp of one model from both engines, and how far their calculated curves differ."""

    rwp_native: float
    rwp_gsas2: float
    difference: float  # rwp_gsas2 − rwp_native, Rwp points
    curve_difference: float  # max |ycalc_gsas2 − ycalc_native| / max(ycalc_native)
    intensity_ratio: tuple[float, float, float]  # GSAS-II/native per reflection: min, median, max
    n_points: int
    gsas2_version: str

    def summary(self) -> dict:
        return asdict(self)


def evaluate_in_gsas2(model, problem) -> CrossCheck:
    """Compute *model* (a refined native model of *problem*) in GSAS-II without refining."""
    from xtal_cli.refine import gsas2

    if not gsas2.available():
        raise XtalError("GSAS-II is not importable: the cross-check needs it")
    with tempfile.TemporaryDirectory() as tmp:
        iparams = problem.instrument_file(tmp)  # no file given: the default as .instprm
        gpx, hist, phase = gsas2.new_project(problem.pattern, iparams, problem.cif, tmp)
        write_model(model, gpx, hist, phase)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                gpx.data["Controls"]["data"]["max cyc"] = 0
                gpx.do_refinements([{}])
        except Exception as exc:  # GSAS-II raises anything; the check is then not available
            reason = " ".join(str(exc).split())[:120]
            raise XtalError(
                f"GSAS-II could not compute the model ({type(exc).__name__}: {reason})"
            ) from None
        x = np.asarray(hist.getdata("x"), dtype=float)
        ycalc = np.asarray(hist.getdata("ycalc"), dtype=float)
        refl = np.asarray(hist.reflections()[phase.name]["RefList"], dtype=float)
        rwp_gsas2 = float(hist.get_wR())
    sel = (x >= model.x[0] - 1e-9) & (x <= model.x[-1] + 1e-9)
    ybg, ypk = model.calc()
    native = ybg + ypk
    if sel.sum() != len(native):
        raise XtalError(
            f"{problem.pattern}: GSAS-II read {sel.sum()} points in the refined range, the native "
            f"engine {len(native)}; the two cannot be compared point by point"
        )
    stats = model.statistics()
    return CrossCheck(
        rwp_native=stats["rwp"],
        rwp_gsas2=rwp_gsas2,
        difference=rwp_gsas2 - stats["rwp"],
        curve_difference=float(np.max(np.abs(ycalc[sel] - native)) / np.max(native)),
        intensity_ratio=_intensity_ratio(model, refl),
        n_points=int(sel.sum()),
        gsas2_version=gsas2.version(),
    )


def write_model(model, gpx, hist, phase) -> None:
    """Every parameter of *model* into the GSAS-II project, all refinement flags off."""
    from GSASII import GSASIIlattice as G2lat

    v, ix, inst = model.values, model.layout.index, model.inst
    ip = hist.data["Instrument Parameters"][0]
    for key, name in PROFILE.items():
        ip[key][1] = float(v[ix[name]])
    for key, val in (("Z", inst.Z), ("Polariz.", inst.polariz), ("Lam1", inst.lam1)):
        ip[key][1] = float(val)
    if inst.lam2:
        ip["Lam2"][1], ip["I(L2)/I(L1)"][1] = float(inst.lam2), float(inst.ratio)
    for entry in ip.values():
        if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], bool):
            entry[2] = False
    cell = list(model.cell())
    volume = float(G2lat.calc_V(G2lat.cell2A(cell)))
    sample = hist.data["Sample Parameters"]
    sample["Type"] = SAMPLE_TYPE[inst.geometry]
    sample["Gonio. radius"] = float(inst.gonio_radius)
    sample["Scale"] = [float(v[ix["scale"]]) * volume * 100.0, False]
    for name in ("Shift", "Transparency", "DisplaceX", "DisplaceY", "SurfRoughA", "SurfRoughB"):
        sample[name] = [float(v[ix[name]]), False]
    coefficients = [float(v[ix[f"bg{i}"]]) for i in range(model.bg_n)]
    hist.data["Background"][0] = [model.bg_kind, False, model.bg_n, *coefficients]
    hist.data["Limits"][1] = [float(model.x[0]), float(model.x[-1])]
    general = phase.data["General"]
    general["Cell"][0] = False
    general["Cell"][1:7] = cell
    general["Cell"][7] = volume
    sites = model.sites()
    site_of = model.phase.site_of_label()
    cx, ct, _, cia = general["AtomPtrs"]  # columns: x, type (label before, flags after), I/A
    for atom in phase.data["Atoms"]:
        label = atom[ct - 1]
        if label not in site_of:
            raise XtalError(f"GSAS-II atom {label!r} has no site in the native model")
        site = sites[site_of[label]]
        atom[cx : cx + 3] = [float(c) for c in site["xyz"]]
        atom[cia] = "I"
        atom[cia + 1] = float(site["uiso"])
        atom[ct + 1] = ""  # no refinement flags
    hp = phase.data["Histograms"][hist.name]
    hp["Scale"] = [1.0, False]


def _intensity_ratio(model, refl) -> tuple[float, float, float]:
    """GSAS-II's integrated intensity of each Kα1 reflection over the native one (scale-matched:
    the ratio is 1 where the two compute the same |F|²·Lp)."""
    if refl.size == 0:
        return (math.nan,) * 3
    pk = model.peaks(model.values)
    n = len(model.hkl)
    native = {tuple(int(c) for c in h): a for h, a in zip(model.hkl, pk["area"][:n])}
    ratios = []
    for row in refl:
        key = tuple(int(c) for c in row[:3])
        if key in native and native[key] > 0:
            ratios.append(row[11] * row[9] / native[key] / 100.0)
    if not ratios:
        return (math.nan,) * 3
    r = np.asarray(ratios)
    return float(r.min()), float(np.median(r)), float(r.max())
