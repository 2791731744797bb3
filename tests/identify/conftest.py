"""A synthetic two-phase scan (NaCl + Si drawn by the Rietveld engine at known scales, with
background and Poisson noise) and its candidate phases, written once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


@dataclass
class Mixture:
    folder: Path
    candidates: Path  # NaCl, Si and ZnO (ZnO is not in the scan)
    scan: Path  # 2θ 20-80°, no wavelength in the file (Cu Kα1+Kα2)
    low: Path  # the same counts at 5-20°, where no candidate has a reflection
    truth: dict  # formula -> weight fraction of the scan


def _write_xy(path: Path, tt, y) -> Path:
    lines = ["# synthetic NaCl + Si, Cu Ka1/Ka2"] + [f"{a:.3f} {b:.0f}" for a, b in zip(tt, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def mixture(tmp_path_factory, small_structures) -> Mixture:
    from pymatgen.io.cif import CifWriter

    from xtal_cli.io.scans import Scan
    from xtal_cli.refine.engine import RietveldModel
    from xtal_cli.refine.fractions import weight_fractions
    from xtal_cli.refine.instrument import default_instrument
    from xtal_cli.refine.phases import read_phase

    folder = tmp_path_factory.mktemp("mixture")
    cands = folder / "candidates"
    cands.mkdir()
    for name in ("NaCl", "Si", "ZnO"):
        CifWriter(small_structures[name], symprec=0.01).write_file(str(cands / f"{name}.cif"))
    tt = np.arange(20.0, 80.0, 0.02)
    lab = Scan(tt, np.ones_like(tt), wavelength=1.54056, wavelength2=1.54439, ka2_ratio=0.5)
    phases = [read_phase(cands / "NaCl.cif"), read_phase(cands / "Si.cif")]
    model = RietveldModel(tt, np.ones_like(tt), phases, default_instrument(lab))
    model.set("1/scale", 0.6)  # Si weaker than NaCl: unequal fractions
    _, peaks = model.calc()
    w, _ = weight_fractions(model)
    rng = np.random.default_rng(7)
    background = 60 + 40 * np.exp(-(tt - 20) / 15)
    y = rng.poisson(peaks * (3000 / peaks.max()) + background).astype(float)
    return Mixture(
        folder=folder,
        candidates=cands,
        scan=_write_xy(folder / "mix.xy", tt, y),
        low=_write_xy(folder / "low.xy", tt / 4, y),
        truth={"NaCl": float(w[0]), "Si": float(w[1])},
    )
