"""Optional engine: the same BBO configuration refined by GSAS-II (when ``import GSASII`` works).

GSAS-II is not installable from the package registries; where a user has it, this runs the
published scripted sequence with our configuration, so the two engines can be compared trial
for trial. It follows the BBO-Rietveld notebooks (quantumbeam/BBO-Rietveld ``1_Y2O3.ipynb``,
``2_DSMO.ipynb``; read, not copied):

- project (``Project.__init__`` there): a new ``G2Project``, ``add_powder_histogram(pattern,
  instrument)``, ``add_phase(cif, histograms=[hist])``, every atom set isotropic ('I'); GSAS-II's
  default Controls, which are also those saved in their ``data/DSMO/DSMO_init.gpx`` (max cyc 3,
  min dM/M 0.001, analytic Hessian, Marquardt -3): :func:`new_project` sets them explicitly so a
  site's GSAS-II config cannot change them. The notebooks also force ``I(L2)/I(L1)`` to 0.5;
  here the instrument file's value stands (0.5 in their INST_XRY.PRM, which GSAS-II 2.x reads).
- steps (``objective`` there): one ``do_refinements([step])`` per step, in their order and with
  their dictionaries (:func:`refinement_steps`): Limits [lb, ub] → Background (type, terms,
  refine) → Cell + Zero → DisplaceX/DisplaceY/Scale (DisplaceX/Y as Shift/Transparency in
  Bragg–Brentano: :func:`refinement_steps`) → U V W X Y SH/L → Atoms 'XU' → Limits of the
  full range. All are ``set`` (flags stay on). Their first and last steps carry a top-level
  ``'refine'`` key (``limits refine``, True), which ``iter_refinements`` never reads (it reads
  set/clear/once/skip/output/call/histograms/phases): the first step always narrows to
  [lb, ub], whatever ``limits refine`` says. The histogram scale is refined from the first step
  on (GSAS-II's default flag), as there.
- score: Rwp is ``hist.get_wR()`` after the last step; a negative Uiso is a penalised trial and
  an exception a failed one (the notebooks give both 1e9; :mod:`bbo` scores them). Stricter
  than the notebooks: GSAS-II only prints a failed step and goes on, and they score what the
  later steps give; here a step that leaves no covariance behind ends the trial as failed, its
  one-line reason taken from GSAS-II's captured output (as the native engine reports failures).

Cost: GSAS-II's least squares (``HessianLSQ``) is ~93 % of a refinement (cProfile, Y2O3);
setting up the project takes ~35 ms, so it is made fresh per trial (copying a template .gpx
would save under 1 %). The phase read for labels is cached per CIF, and BLAS runs single-
threaded (the workers already fill the cores).
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xtal_cli.errors import XtalError
from xtal_cli.refine.engine import RefinementFailed, Result
from xtal_cli.refine.instrument import sample_position_terms

CELL_KEYS = ("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma")


def available() -> bool:
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # GSAS-II greets on import
            import GSASII  # noqa: F401
    except Exception:
        return False
    return True


def _module(name: str):
    """GSAS-II's module *name*, its import-time printing swallowed."""
    import importlib

    with contextlib.redirect_stdout(io.StringIO()):
        try:
            return importlib.import_module(f"GSASII.{name}")
        except ImportError:  # older installs put the modules on sys.path
            return importlib.import_module(name)


def _scriptable():
    return _module("GSASIIscriptable")


def _background_basis(G2pwd, hfx, parmDict, bakType, dataType, xdata, n):
    """(n, len(xdata)): GSAS-II's own background function with one unit coefficient each.
    Every GSAS-II background type is linear in its coefficients, so these rows are its exact
    derivatives."""
    p = dict(parmDict)
    p[hfx + "nDebye"], p[hfx + "nPeaks"] = 0, 0  # the background terms alone
    rows = np.zeros((n, len(xdata)))
    for i in range(n):
        for j in range(n):
            p[f"{hfx}Back;{j}"] = 1.0 if i == j else 0.0
        rows[i] = G2pwd.getBackground(hfx, p, bakType, dataType, xdata, None)[0]
    return rows


def background_derivative_errors(G2pwd=None) -> dict:
    """Largest relative difference, per background type, between GSAS-II's analytic
    derivatives (``getBackgroundDerv``, what its least squares uses) and those of its own
    background function (6 terms on 20-90 deg, Cu; exact, as the function is linear).
    GSAS-II 2.0.0: 1.0 for the last node of lin/inv/log interpolate (that node's ramp runs the
    wrong way) and ~1 for every node of inv interpolate (its nodes are listed high to low, the
    derivative assumes low to high); the Q^2 and Q^-2 power series take Q = 2 pi sin(theta) /
    lambda in the derivative but 4 pi sin(theta) / lambda in the function, so term i is off by
    4^i. Chebyschev and cosine are right."""
    from xtal_cli.refine.background import TYPES

    G2pwd = G2pwd or _module("GSASIIpwd")
    x = np.linspace(20.0, 90.0, 300)
    pd = {f":0:Back;{i}": 10.0 + i for i in range(6)}
    pd.update({":0:Lam1": 1.5406, ":0:nDebye": 0, ":0:nPeaks": 0})
    errors = {}
    for kind in TYPES:
        with contextlib.redirect_stdout(io.StringIO()):
            analytic = np.asarray(G2pwd.getBackgroundDerv(":0:", pd, kind, "PXC", x)[0])
        exact = _background_basis(G2pwd, ":0:", pd, kind, "PXC", x, 6)
        scale = np.max(np.abs(exact), axis=1)
        errors[kind] = float(np.max(np.max(np.abs(analytic - exact), axis=1) / scale))
    return errors


@functools.cache
def _wrong_background_types() -> tuple[str, ...]:
    return tuple(k for k, err in background_derivative_errors().items() if err > 1e-9)


@contextlib.contextmanager
def exact_background_derivatives(enabled: bool = True):
    """While active, GSAS-II's least squares gets the exact derivatives of its own background
    function for the types whose analytic ones are wrong (:func:`background_derivative_errors`,
    checked once per process); the model GSAS-II computes is unchanged, only the step its
    Hessian takes. Without this GSAS-II 2.0.0 cannot refine five of the seven published
    background types (on DSMO, with the native engine's best configuration, the background
    step ends at 66.6 % Rwp uncorrected and 23.8 % corrected, as the native engine). Yields
    the corrected types: none when GSAS-II's are right, or when *enabled* is False or
    ``XTAL_GSAS2_UNCORRECTED=1`` asks for GSAS-II exactly as installed."""
    import os

    off = not enabled or os.environ.get("XTAL_GSAS2_UNCORRECTED")
    wrong = () if off else _wrong_background_types()
    if not wrong:
        yield ()
        return
    G2pwd = _module("GSASIIpwd")
    analytic = G2pwd.getBackgroundDerv

    def derivatives(hfx, parmDict, bakType, dataType, xdata, fixback=None):
        out = analytic(hfx, parmDict, bakType, dataType, xdata, fixback)
        if bakType in wrong and len(out[0]):
            n = len(out[0])
            out = (_background_basis(G2pwd, hfx, parmDict, bakType, dataType, xdata, n), *out[1:])
        return out

    G2pwd.getBackgroundDerv = derivatives
    try:
        yield wrong
    finally:
        G2pwd.getBackgroundDerv = analytic


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


# Controls as GSAS-II defaults them and as BBO-Rietveld's DSMO_init.gpx saved them.
CONTROLS = {"max cyc": 3, "min dM/M": 0.001, "deriv type": "analytic Hessian", "Marquardt": -3}


def refinement_steps(
    cfg: dict, full: tuple[float, float], geometry: str = "bragg-brentano"
) -> list[tuple[str, dict]]:
    """Our configuration as (stage name, GSAS-II refinement dictionary), the published steps
    in their order (see the module docstring); the names are those of the native stages
    (:func:`bbo.stages`). The top-level ``refine`` keys are the notebooks' and have no effect.

    One deliberate change: the notebooks flag DisplaceX/DisplaceY, which GSAS-II ignores for
    a Bragg–Brentano histogram; the flags refine that geometry's Shift/Transparency instead
    (:func:`instrument.sample_position_terms`), in both engines."""
    terms = sample_position_terms(geometry)
    inst1 = ["Zero"] if cfg.get("Zero") else []
    sample = [terms[k] for k in ("DisplaceX", "DisplaceY") if cfg.get(k)]
    sample += ["Scale"] if cfg.get("Scale") else []
    prof = [k for k in ("U", "V", "W", "X", "Y", "SH/L") if cfg.get(k)]
    background = {
        "type": cfg["background"],
        "no. coeffs": int(cfg["n_background"]),
        "refine": bool(cfg["refine_background"]),
    }
    return [
        (
            "range",
            {"set": {"Limits": list(cfg["limits"])}, "refine": bool(cfg.get("use_limits", True))},
        ),
        ("background", {"set": {"Background": background}}),
        ("cell+zero", {"set": {"Cell": True, "Instrument Parameters": inst1}}),
        ("sample", {"set": {"Sample Parameters": sample}}),
        ("profile", {"set": {"Instrument Parameters": prof}}),
        ("atoms", {"set": {"Atoms": {"all": "XU"}}}),
        ("full range", {"set": {"Limits": list(full)}, "refine": True}),
    ]


def new_project(pattern, instrument, cif, workdir):
    """A GSAS-II project in *workdir* (``trial.gpx``) set up as the published study's: the
    pattern with its instrument file, the CIF's phase on it, atoms isotropic, the published
    Controls. Returns ``(gpx, hist, phase)``; GSAS-II's printing is swallowed.

    Raises XtalError (naming the CIF, pattern and instrument) when GSAS-II cannot read them.
    """
    G2sc = _scriptable()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            gpx = G2sc.G2Project(newgpx=str(Path(workdir) / "trial.gpx"))
            hist = gpx.add_powder_histogram(str(pattern), str(instrument))
            g2phase = gpx.add_phase(str(cif), phasename="phase", histograms=[hist])
    except Exception as exc:
        raise XtalError(
            f"{cif}: GSAS-II cannot set up the project with {pattern} and "
            f"{instrument} ({_one_line(exc)})"
        ) from None
    cia = g2phase.data["General"]["AtomPtrs"][3]
    for atom in g2phase.data["Atoms"]:
        atom[cia] = "I"  # isotropic displacement, as the published study
    gpx["Controls"]["data"].update(CONTROLS)
    return gpx, hist, g2phase


_PHASES: dict = {}


def _phase(cif):
    """Our reading of *cif* (site order and labels), read once per file version."""
    from xtal_cli.refine.phases import read_phase

    path = Path(cif)
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _PHASES:
        _PHASES[key] = read_phase(cif)
    return _PHASES[key]


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

    corrected: tuple[str, ...] = ()  # background types given exact derivatives

    def summary(self) -> dict:
        out = super().summary()
        out["gsas2_version"] = version()
        out["gsas2_exact_derivatives"] = list(self.corrected)
        if self.unavailable:
            out["not_given_by_gsas2"] = list(self.unavailable)
        return out


def failure_reason(output: str) -> str:
    """One line from GSAS-II's printed output saying why a step failed: its "Note refinement
    problem" text when it printed one, else the last line naming an error."""
    notes = re.findall(r"Note refinement problem:[ \t]*\n(.*?)(?:\n[ \t]*\n|\Z)", output, re.S)
    if notes:
        note = " ".join(notes[-1].replace("See console.", " ").split())
        if note:
            return note[:200]
    boiler = re.compile(
        r"^(error\s*[-:]\s*)?refinement (failed|error|stopped)$|^note refinement problem", re.I
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


def refine_gsas2(
    problem, cfg: dict, full, space, phase=None, exact_derivatives: bool = True
) -> Gsas2Result:
    """Run one configuration in a fresh GSAS-II project. *phase* (our reading of the CIF) orders
    the sites as the native engine does; GSAS-II atoms are matched to it by label.

    *exact_derivatives* (default) corrects GSAS-II's background derivatives where they are
    wrong (:func:`exact_background_derivatives`); the result's ``corrected`` names the types.
    Raises RefinementFailed (a failed trial) for anything GSAS-II does wrong during the steps,
    XtalError when GSAS-II cannot read the inputs at all.
    """
    if not available():
        raise XtalError("GSAS-II is not importable; use --engine native")
    from threadpoolctl import threadpool_limits

    phase = _phase(problem.cif) if phase is None else phase
    t0 = time.monotonic()
    deadline = t0 + space.timeout
    history = []
    # small dense algebra: BLAS threads only fight the other workers for the cores
    with (
        tempfile.TemporaryDirectory() as tmp,
        threadpool_limits(1),
        exact_background_derivatives(exact_derivatives) as corrected,
    ):
        iparams = problem.instrument_file(tmp)  # no file given: the default as .instprm
        gpx, hist, g2phase = new_project(problem.pattern, iparams, problem.cif, tmp)
        kind = hist.data["Sample Parameters"]["Type"]
        geometry = "debye-scherrer" if "Debye" in kind else "bragg-brentano"
        steps = refinement_steps(cfg, full, geometry)
        at = next(k for k, (name, _) in enumerate(steps) if name == "atoms")
        _run_steps(gpx, hist, steps[:at], deadline, history)
        before = Path(tmp) / "before_atoms.gpx"
        shutil.copyfile(gpx.filename, before)  # GSAS-II saved the project after the last step
        _run_steps(gpx, hist, steps[at:], deadline, history)
        negative = [a for a in g2phase.atoms() if a.uiso < 0]
        fixed = []
        if negative:
            # as the native engine: rerun from the atoms step with those Uiso held at the CIF's
            gpx, hist, g2phase, fixed = _hold_uiso(before, phase, {a.label for a in negative})
            del history[at:]
            flags = {a.label: "X" if a.label in fixed else "XU" for a in g2phase.atoms()}
            retry = [("atoms", {"set": {"Atoms": flags}}), *steps[at + 1 :]]
            _run_steps(gpx, hist, retry, deadline, history)
        result = _read_result(gpx, hist, g2phase, phase, cfg, history)
        result.fixed_uiso = sorted(fixed)
        result.corrected = tuple(corrected)
    result.seconds = time.monotonic() - t0
    return result


def _run_steps(gpx, hist, steps, deadline, history) -> None:
    """One ``do_refinements`` call per step; a step GSAS-II could not do is a failed trial."""
    for name, step in steps:
        gpx["Covariance"]["data"] = {}  # a failed step leaves it empty (nothing raised)
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log):
                gpx.do_refinements([step])
        except Exception as exc:
            raise RefinementFailed(f"GSAS-II {name} step: {_one_line(exc)}") from None
        rvals = gpx["Covariance"]["data"].get("Rvals")
        if not rvals:
            raise RefinementFailed(f"GSAS-II {name} step: {failure_reason(log.getvalue())}")
        history.append(
            {"stage": name, "rwp": float(hist.get_wR()), "n_params": int(rvals["Nvars"])}
        )
        if time.monotonic() > deadline:
            raise RefinementFailed(f"refinement timed out (GSAS-II, after the {name} step)")


def _hold_uiso(saved, phase, labels):
    """The project as saved before the atoms step, with the Uiso of the atoms named in *labels*
    (and of atoms sharing their site) back at the CIF's value; (gpx, hist, phase, fixed labels)."""
    G2sc = _scriptable()
    with contextlib.redirect_stdout(io.StringIO()):
        gpx = G2sc.G2Project(gpxfile=str(saved))
    hist, g2phase = gpx.histograms()[0], gpx.phases()[0]
    site_of = phase.site_of_label()
    held = {site_of[label] for label in labels if label in site_of}
    fixed = {label for label, k in site_of.items() if k in held}
    cia = g2phase.data["General"]["AtomPtrs"][3]
    for atom in g2phase.data["Atoms"]:
        if atom[0] in fixed:
            atom[cia + 1] = float(phase.sites[site_of[atom[0]]].uiso)
    return gpx, hist, g2phase, fixed


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
    values, esds = _named_parameters(hist, sites, values, sig, float(cell["volume"]))
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
        esds=esds,
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


def _named_parameters(hist, sites, refined: dict, sig: dict, volume: float) -> tuple[dict, dict]:
    """Values (refined or held) and esds (refined ones) under the native engine's names where
    the quantity is the same (scale converted to the native units, zero, displacements, profile,
    background terms, Uiso),
    so the two reports read alike; GSAS-II's refined cell (reciprocal metric ``A``) and
    coordinate shifts keep GSAS-II's names, as the native engine's bases differ."""
    hp = f":{hist.id}:"
    sample = hist.data["Sample Parameters"]
    inst = hist.data["Instrument Parameters"][0]
    bkg = hist.data["Background"][0]
    values, esds = {}, {}

    def put(name, value, key, unit=1.0):
        values[name] = float(value) * unit
        if sig.get(key) is not None:
            esds[name] = sig[key] * unit

    # GSAS-II's histogram scale is the native one × cell volume × 100 (crosscheck.py)
    put("scale", sample["Scale"][0], hp + "Scale", 1.0 / (100.0 * volume))
    put("zero", inst["Zero"][1], hp + "Zero")
    for name in ("Shift", "Transparency", "DisplaceX", "DisplaceY"):
        put(name, sample[name][0], hp + name)
    for name in ("U", "V", "W", "X", "Y", "SH/L"):
        put(name, inst[name][1], hp + name)
    for k in range(int(bkg[2])):
        put(f"bg{k}", bkg[3 + k], f"{hp}Back;{k}")
    for site in sites:
        values[f"{site['label']}:Uiso"] = site["uiso"]
        if site["uiso_esd"]:
            esds[f"{site['label']}:Uiso"] = site["uiso_esd"]
    for key, value in refined.items():  # the rest of what GSAS-II refined, by its names
        if key.startswith(hp) or "::AUiso:" in key:
            continue
        values[key] = value
        if sig.get(key) is not None:
            esds[key] = sig[key]
    return values, esds
