"""Optional engine: the same BBO configuration refined by GSAS-II (when ``import GSASII`` works).

GSAS-II is not installable from the package registries; where a user has it, this runs the
published scripted sequence (GSASIIscriptable ``do_refinements``, one call per step) with our
configuration, so the two engines can be compared trial for trial. The result carries what the
native engine's does (:class:`engine.Result`), read back from the GSAS-II project, plus the
calculated curve for the Rietveld plot (GSAS-II has no :class:`engine.RietveldModel`).

GSAS-II prints its progress and, on a failed step, only prints the reason (the project keeps
the previous step's state). Its output is captured, and a step that left no covariance behind
is a failed trial whose one-line reason is taken from that output.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xtal_cli.errors import XtalError
from xtal_cli.refine.engine import RefinementFailed, Result

CELL_KEYS = ("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma")


def available() -> bool:
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # GSAS-II greets on import
            import GSASII  # noqa: F401
    except Exception:
        return False
    return True


def _scriptable():
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            from GSASII import GSASIIscriptable as G2sc
        except ImportError:
            import GSASIIscriptable as G2sc  # older installs put the modules on sys.path
    return G2sc


def version() -> str:
    """The installed GSAS-II's version string (for reports), or ``unknown``."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    for dist in ("GSAS-II", "gsas_ii", "GSASII"):
        try:
            return dist_version(dist)
        except PackageNotFoundError:
            continue
    return "unknown"


def refinement_steps(cfg: dict, full: tuple[float, float]) -> list[tuple[str, dict]]:
    """Our configuration as (stage name, GSAS-II refinement dictionary), in the published
    order; the names are those of the native stages (:func:`bbo.stages`)."""
    start = list(cfg["limits"]) if cfg.get("use_limits", True) else list(full)
    inst1 = ["Zero"] if cfg.get("Zero") else []
    sample = [k for k in ("DisplaceX", "DisplaceY", "Scale") if cfg.get(k)]
    prof = [k for k in ("U", "V", "W", "X", "Y", "SH/L") if cfg.get(k)]
    background = {
        "type": cfg["background"],
        "no. coeffs": int(cfg["n_background"]),
        "refine": bool(cfg["refine_background"]),
    }
    return [
        ("range", {"set": {"Limits": start}}),
        ("background", {"set": {"Background": background}}),
        ("cell+zero", {"set": {"Cell": True, "Instrument Parameters": inst1}}),
        ("sample", {"set": {"Sample Parameters": sample}}),
        ("profile", {"set": {"Instrument Parameters": prof}}),
        ("atoms", {"set": {"Atoms": {"all": "XU"}}}),
        ("full range", {"set": {"Limits": list(full)}}),
    ]


@dataclass
class Curve:
    """Observed, calculated and background counts over the refined range, and the reflection
    positions: what the Rietveld plot draws."""

    x: np.ndarray
    yobs: np.ndarray
    ycalc: np.ndarray
    background: np.ndarray
    reflections: np.ndarray


@dataclass
class Gsas2Result(Result):
    """:class:`engine.Result` read from a GSAS-II project, with its calculated curve."""

    curve: Curve | None = None
    unavailable: tuple[str, ...] = ()  # fields GSAS-II did not give (reported, not guessed)

    def summary(self) -> dict:
        out = super().summary()
        out["gsas2_version"] = version()
        if self.unavailable:
            out["not_given_by_gsas2"] = list(self.unavailable)
        return out


def failure_reason(output: str) -> str:
    """One line from GSAS-II's printed output saying why a step failed."""
    boiler = re.compile(
        r"^(error - )?refinement (failed|error|stopped)$|^note refinement problem", re.I
    )
    lines = [ln.strip(" *\t") for ln in output.splitlines()]
    telling = [
        ln
        for ln in lines
        if ln
        and not boiler.search(ln)
        and re.search(r"error|fail|singular|nan |diverg|abort|ouch", ln, re.I)
    ]
    return telling[-1][:200] if telling else "refinement error (GSAS-II printed no reason)"


def _one_line(exc: Exception) -> str:
    text = " ".join(str(a) for a in exc.args) or type(exc).__name__
    return " ".join(text.split())[:200]


def refine_gsas2(problem, cfg: dict, full, space, phase=None) -> Gsas2Result:
    """Run one configuration in a fresh GSAS-II project. *phase* (our reading of the CIF) orders
    the sites as the native engine does; GSAS-II atoms are matched to it by label.

    Raises RefinementFailed (a failed trial) for anything GSAS-II does wrong during the steps,
    XtalError when GSAS-II cannot read the inputs at all.
    """
    if not available():
        raise XtalError("GSAS-II is not importable; use --engine native")
    if phase is None:
        from xtal_cli.refine.phases import read_phase

        phase = read_phase(problem.cif)
    G2sc = _scriptable()
    t0 = time.monotonic()
    deadline = t0 + space.timeout
    history = []
    with tempfile.TemporaryDirectory() as tmp:
        log = io.StringIO()
        iparams = problem.instrument_file(tmp)  # no file given: the default as .instprm
        try:
            with contextlib.redirect_stdout(log):
                gpx = G2sc.G2Project(newgpx=str(Path(tmp) / "trial.gpx"))
                hist = gpx.add_powder_histogram(problem.pattern, iparams)
                g2phase = gpx.add_phase(problem.cif, phasename="phase", histograms=[hist])
        except Exception as exc:
            raise XtalError(
                f"{problem.cif}: GSAS-II cannot set up the project with {problem.pattern} and "
                f"{problem.instrument or 'the default instrument'} ({_one_line(exc)})"
            ) from None
        cia = g2phase.data["General"]["AtomPtrs"][3]
        for atom in g2phase.data["Atoms"]:
            atom[cia] = "I"  # isotropic displacement, as the published study
        for name, step in refinement_steps(cfg, full):
            gpx["Covariance"]["data"] = {}  # a failed step leaves it empty (nothing raised)
            log = io.StringIO()
            try:
                with contextlib.redirect_stdout(log):
                    gpx.do_refinements([step])
            except Exception as exc:
                raise RefinementFailed(f"GSAS-II {name} step: {_one_line(exc)}") from None
            rvals = gpx["Covariance"]["data"].get("Rvals")
            if not rvals:
                raise RefinementFailed(
                    f"GSAS-II {name} step: {failure_reason(log.getvalue())}"
                ) from None
            history.append(
                {"stage": name, "rwp": float(hist.get_wR()), "n_params": int(rvals["Nvars"])}
            )
            if time.monotonic() > deadline:
                raise RefinementFailed(f"refinement timed out (GSAS-II, after the {name} step)")
        result = _read_result(gpx, hist, g2phase, phase, cfg, history)
    result.seconds = time.monotonic() - t0
    return result


def _read_result(gpx, hist, g2phase, phase, cfg, history) -> Gsas2Result:
    cov = gpx["Covariance"]["data"]
    rvals = cov["Rvals"]
    vary = list(cov.get("varyList", []))
    sig = dict(zip(vary, (float(s) if s is not None else None for s in cov.get("sig", []))))
    sig.update({k: float(v[1]) for k, v in cov.get("depSigDict", {}).items()})
    values = {k: float(v) for k, v in zip(vary, cov.get("variables", []))}
    unavailable = []
    cell, cell_sig = g2phase.get_cell_and_esd()
    cell_esd = tuple(float(cell_sig[k]) for k in CELL_KEYS) if cell_sig else None
    if cell_esd is None:
        unavailable.append("cell_esd")
        cell_esd = (0.0,) * 6
    pid = g2phase.id
    atoms = list(g2phase.atoms())
    index = {a.label: i for i, a in enumerate(atoms)}
    sites = []
    for k, site in enumerate(phase.sites):
        i = next((index[lab] for lab in site.labels or [site.label] if lab in index), k)
        a = atoms[i]
        sites.append(
            {
                "label": site.label,
                "species": [[e, o] for e, o in site.species],
                "xyz": [float(c) for c in a.coordinates],
                "xyz_esd": [sig.get(f"{pid}::dA{ax}:{i}") or 0.0 for ax in "xyz"],
                "uiso": float(a.uiso),
                "uiso_esd": sig.get(f"{pid}::AUiso:{i}") or 0.0,
                "multiplicity": site.multiplicity,
                "gsas2_atom": a.label,
            }
        )
    x = np.asarray(hist.getdata("x"), dtype=float)
    lo, hi = (float(v) for v in hist.data["Limits"][1])
    sel = (x >= lo) & (x <= hi)
    refl = np.asarray(hist.reflections()[g2phase.name]["RefList"], dtype=float)
    ticks = refl[:, 5] if refl.size else np.zeros(0)
    curve = Curve(
        x=x[sel],
        yobs=np.asarray(hist.getdata("yobs"), dtype=float)[sel],
        ycalc=np.asarray(hist.getdata("ycalc"), dtype=float)[sel],
        background=np.asarray(hist.getdata("background"), dtype=float)[sel],
        reflections=ticks[(ticks >= lo) & (ticks <= hi)],
    )
    gof = float(rvals["GOF"])
    uiso = [float(a.uiso) for a in atoms]
    return Gsas2Result(
        rwp=float(hist.get_wR()),
        rp=float(hist.residuals.get("R", float("nan"))),
        gof=gof,
        chi2_reduced=gof**2,
        n_points=int(rvals["Nobs"]),
        n_params=int(rvals["Nvars"]),
        values=values,
        esds={k: v for k, v in sig.items() if k in values},
        cell=tuple(float(cell[k]) for k in CELL_KEYS),
        cell_esd=cell_esd,
        sites=sites,
        limits=(lo, hi),
        stages=history,
        seconds=0.0,
        background=(cfg["background"], int(cfg["n_background"])),
        negative_uiso=min(uiso) < 0,
        curve=curve,
        unavailable=tuple(unavailable),
    )
