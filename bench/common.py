"""Helpers for benchmark scripts: locating shared data and writing results."""

from __future__ import annotations

import csv
import json
import platform
import sys
import time
from pathlib import Path

from xtal_cli.parallel import available_cores

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results"
WORK = REPO / "bench" / "work"  # scratch files (git-ignored)


def require_shared() -> Path:
    if not SHARED_DATA.is_dir():
        sys.exit("bench: ../shared/data is needed for benchmarks")
    return SHARED_DATA


def shared_or_none() -> Path | None:
    """../shared/data, or None (with a message on stderr) where it is missing: for benches
    whose other parts still run."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    print("bench: ../shared/data is missing; skipping the measured-scan part", file=sys.stderr)
    return None


def single_phase_scans(shared: Path) -> list[tuple[str, Path, list[Path]]]:
    """The shared measured scans of one known phase: (phase, scan, candidate reference CIFs).

    Y2O3, DSMO and LiCoO2 (bbo-rietveld) and the single-phase xrd-autoanalyzer scans, whose
    references are every CIF with the phase's formula (polymorphs included).
    """
    m = shared / "measured"
    out = [
        ("Y2O3", m / "bbo-rietveld/Y2O3/Y2O3.csv", [m / "bbo-rietveld/Y2O3/Y2O3.cif"]),
        ("DSMO", m / "bbo-rietveld/DSMO/dsmo.csv", [m / "bbo-rietveld/DSMO/dsmo.cif"]),
        ("LiCoO2", m / "bbo-rietveld/LiCoO2/Powder-data-Bruker/LiCoO2.RAW",
         sorted((m / "bbo-rietveld/LiCoO2/COD").glob("*.cif"))),
    ]  # fmt: skip
    refs = sorted((m / "xrd-autoanalyzer/References").glob("*.cif"))
    with open(m / "xrd-autoanalyzer/labels_from_filenames.csv") as fh:
        for row in csv.DictReader(fh):
            if row["n_phases"] != "1":
                continue
            cifs = [r for r in refs if r.stem.rsplit("_", 1)[0] == row["phases"]]
            out.append((row["phases"], m / "xrd-autoanalyzer" / row["file"], cifs))
    return out


def write_result(name: str, result: dict) -> None:
    """Print *result* as one JSON line and keep it in bench/results/<name>.json."""
    result = {
        "benchmark": name,
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"python": platform.python_version(), "cpu_count": available_cores()},
        **result,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
