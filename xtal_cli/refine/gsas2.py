"""Optional engine: the same BBO configuration refined by GSAS-II (when ``import GSASII`` works).

GSAS-II is not installable from the package registries; where a user has it, this runs the
published scripted sequence (GSASIIscriptable ``do_refinements``) with our configuration, so the
two engines can be compared trial for trial.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

from xtal_cli.errors import XtalError


def available() -> bool:
    try:
        import GSASII  # noqa: F401
    except Exception:
        return False
    return True


def _scriptable():
    try:
        from GSASII import GSASIIscriptable as G2sc
    except ImportError:
        import GSASIIscriptable as G2sc  # older installs put the modules on sys.path
    return G2sc


def refinement_steps(cfg: dict, full: tuple[float, float]) -> list[dict]:
    """Our configuration as GSAS-II refinement dictionaries, in the published order."""
    start = list(cfg["limits"]) if cfg.get("use_limits", True) else list(full)
    inst1 = ["Zero"] if cfg.get("Zero") else []
    sample = [k for k in ("DisplaceX", "DisplaceY", "Scale") if cfg.get(k)]
    prof = [k for k in ("U", "V", "W", "X", "Y", "SH/L") if cfg.get(k)]
    return [
        {"set": {"Limits": start}},
        {
            "set": {
                "Background": {
                    "type": cfg["background"],
                    "no. coeffs": int(cfg["n_background"]),
                    "refine": bool(cfg["refine_background"]),
                }
            }
        },  # fmt: skip
        {"set": {"Cell": True, "Instrument Parameters": inst1}},
        {"set": {"Sample Parameters": sample}},
        {"set": {"Instrument Parameters": prof}},
        {"set": {"Atoms": {"all": "XU"}}},
        {"set": {"Limits": list(full)}},
    ]


def refine_gsas2(problem, cfg: dict, full, space):
    """Run one configuration in a fresh GSAS-II project; returns an object like engine.Result."""
    from xtal_cli.refine.engine import RefinementFailed

    if not available():
        raise XtalError("GSAS-II is not importable; use --engine native")
    G2sc = _scriptable()
    with tempfile.TemporaryDirectory() as tmp:
        gpx = G2sc.G2Project(newgpx=str(Path(tmp) / "trial.gpx"))
        hist = gpx.add_powder_histogram(problem.pattern, problem.instrument)
        phase = gpx.add_phase(problem.cif, phasename="phase", histograms=[hist])
        for atom in phase.data["Atoms"]:
            atom[9] = "I"  # isotropic displacement, as the published study
        try:
            for step in refinement_steps(cfg, full):
                gpx.do_refinements([step])
        except Exception as exc:  # GSAS-II raises plain Exceptions on singular matrices
            raise RefinementFailed(f"GSAS-II: {exc}") from None
        rwp = float(hist.get_wR())
        uiso = [a.uiso for a in phase.atoms()]
        cell = phase.get_cell()
        sites = [
            {"label": a.label, "xyz": list(a.coordinates), "uiso": a.uiso} for a in phase.atoms()
        ]
    return SimpleNamespace(
        rwp=rwp,
        rp=float("nan"),
        gof=float("nan"),
        seconds=0.0,
        cell=tuple(
            cell[k]
            for k in (
                "length_a",
                "length_b",
                "length_c",
                "angle_alpha",
                "angle_beta",
                "angle_gamma",
            )
        ),
        sites=sites,
        negative_uiso=min(uiso) < 0,
        summary=lambda: {"rwp": rwp, "cell": cell, "sites": sites},
    )
