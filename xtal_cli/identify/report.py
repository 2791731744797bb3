"""Outputs of phase identification: per scan a folder with ``report.json``, ``rietveld.png``
and the refined CIFs of the best hypothesis; per batch a ``summary.json``.

Every file is written atomically (temporary file + rename), and ``report.json`` last, so a
folder holding one is a finished scan (what ``--resume`` skips).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

REPORT = "report.json"
PLOT = "rietveld.png"
SUMMARY = "summary.json"
FORMAT = "identify-phases/1"


def safe_name(name: str) -> str:
    """A phase or scan name as a file name: ``TiO2 P4_2/mnm [mp-2]`` -> ``TiO2_P4_2-mnm_mp-2``."""
    text = re.sub(r"[/\\]", "-", name.strip())
    text = re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._")
    return text or "phase"


def scan_folders(paths: list[Path]) -> list[str]:
    """One output folder name per scan: its stem, or ``parent-stem`` (then ``stem.ext``, then a
    number) where stems collide, so the same batch always gets the same folders."""
    names = [safe_name(p.stem) for p in paths]
    for how in (
        lambda p: safe_name(f"{p.parent.name}-{p.stem}"),
        lambda p: safe_name(f"{p.parent.name}-{p.name}"),
    ):
        clash = {n for n in names if names.count(n) > 1}
        names = [how(p) if n in clash else n for p, n in zip(paths, names)]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def phase_cifs(hypothesis, meta: dict | None = None) -> dict[str, str]:
    """File name -> CIF text of each refined phase of *hypothesis* (its refined cell and sites
    with esds, in the candidate's own setting)."""
    from xtal_cli.refine.report import cif_text, with_esd

    model = hypothesis.model
    esds = model.esds()  # raw parameter names, as model.sites() wants them
    out: dict[str, str] = {}
    for k, amount in zip(_model_indices(hypothesis), hypothesis.phases):
        lines = dict(meta or {})
        wt = with_esd(100 * amount.weight_fraction, 100 * amount.weight_fraction_esd)
        lines.update({"phase": amount.name, "weight fraction": f"{wt} wt %",
                      "candidate": amount.source})  # fmt: skip
        phase = model.phases[k]
        block = safe_name(amount.name)
        text = cif_text(phase, model.cell(k=k), model.sites(esds, k=k), model.cell_esd(k=k),
                        lines, program="identify-phases", block=block)  # fmt: skip
        name = block + ".cif"
        while name in out:
            name = name[:-4] + "_.cif"
        out[name] = text
    return out


def _model_indices(hypothesis) -> list[int]:
    """The model's phase index of each phase of *hypothesis* (matched by name)."""
    index = {ph.name: k for k, ph in enumerate(hypothesis.model.phases)}
    return [index.get(p.name, j) for j, p in enumerate(hypothesis.phases)]


def plot_identification(path, hypothesis, title: str = "") -> None:
    """Rietveld plot of a refined hypothesis: observed, calculated, background, difference and
    one labelled row of tick marks per phase."""
    from xtal_cli.refine.report import plot_curves

    model = hypothesis.model
    ybg, ypk = model.calc()
    x, yo = model.x, model.yobs[model.i0 : model.i1]
    ticks = {
        f"{p.name} {100 * p.weight_fraction:.1f} wt %": model.reflection_positions(k)
        for k, p in zip(_model_indices(hypothesis), hypothesis.phases)
    }
    plot_curves(path, x, yo, ybg + ypk, ybg, ticks, title)


def write_scan_outputs(folder: Path, ident, run: dict) -> dict:
    """Write the folder of one answered scan and return its report (``report.json``).

    *run* describes the run (settings, candidates, version), stored with the answer.
    """
    from xtal_cli.refine.report import atomic_write, write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, **run, **ident.as_dict(), "files": {}}
    best = ident.best
    if best is not None and best.model is not None:
        names = ", ".join(p.name for p in best.phases)
        title = f"{Path(ident.scan).name}: {names} (Rwp {best.rwp:.2f} %, GOF {best.gof:.2f})"
        plot_identification(folder / PLOT, best, title)
        meta = {"scan": Path(ident.scan).name, "Rwp": f"{best.rwp:.3f} %", "GOF": f"{best.gof:.3f}"}
        cifs = phase_cifs(best, meta)
        for name, text in cifs.items():
            atomic_write(folder / name, text)
        doc["files"] = {"plot": PLOT, "cifs": list(cifs)}
    write_json(folder / REPORT, doc)
    return doc


def read_report(folder: Path) -> dict | None:
    """The finished report of a scan folder, or None when there is none (or it is unreadable,
    e.g. from an older format: then the scan is answered again)."""
    path = Path(folder) / REPORT
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if doc.get("format") == FORMAT else None


def record_from_report(doc: dict, folder: Path) -> dict:
    """The one-line answer of a scan (what stdout and ``summary.json`` list) from its report."""
    phases = [
        {
            "name": p["name"],
            "formula": p["formula"],
            "space_group": p["space_group"],
            "weight_fraction": p["weight_fraction"],
            "weight_fraction_esd": p["weight_fraction_esd"],
            "cell": list(p["cell"]),
            "cell_esd": list(p["cell_esd"]),
        }
        for p in doc.get("phases", [])
    ]
    best = doc["hypotheses"][0] if doc.get("hypotheses") else {}
    return {
        "scan": doc["scan"],
        "status": "ok",
        "phases": phases,
        "rwp": best.get("rwp"),
        "gof": best.get("gof"),
        "n_hypotheses": len(doc.get("hypotheses", [])),
        "rejected": len(doc.get("rejected", [])),
        "seconds": doc.get("seconds"),
        "output": str(folder),
        "error": None,
    }


def failure_record(scan: str, folder: Path, error: str) -> dict:
    return {
        "scan": scan,
        "status": "failed",
        "phases": [],
        "rwp": None,
        "gof": None,
        "n_hypotheses": 0,
        "rejected": 0,
        "seconds": None,
        "output": str(folder),
        "error": error,
    }


def write_summary(outdir: Path, records: list[dict], run: dict) -> Path:
    """``summary.json``: the run and one record per scan (answer or failure), in input order."""
    from xtal_cli.refine.report import write_json

    ok = sum(r["status"] == "ok" for r in records)
    doc = {
        "format": FORMAT,
        **run,
        "n_scans": len(records),
        "answered": ok,
        "failed": len(records) - ok,
        "scans": records,
    }
    path = Path(outdir) / SUMMARY
    write_json(path, doc)
    return path


CSV_COLUMNS = ["scan", "status", "phases", "weight_fractions", "weight_fraction_esds", "rwp",
               "gof", "cells", "error"]  # fmt: skip


def csv_row(rec: dict) -> dict:
    """A record flattened for CSV: per-phase lists joined with ``;``, a cell as six numbers."""
    ph = rec["phases"]
    return {
        "scan": rec["scan"],
        "status": rec["status"],
        "phases": ";".join(p["name"] for p in ph),
        "weight_fractions": ";".join(f"{p['weight_fraction']:.5f}" for p in ph),
        "weight_fraction_esds": ";".join(f"{p['weight_fraction_esd']:.5f}" for p in ph),
        "rwp": rec["rwp"],
        "gof": rec["gof"],
        "cells": ";".join(" ".join(f"{c:.5f}" for c in p["cell"]) for p in ph),
        "error": rec["error"] or "",
    }
