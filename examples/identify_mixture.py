"""Which phases, and how much of each: `xtal identify-phases` on a mixture of known amounts.

Draws a lab Cu Kα scan of anatase + wurtzite ZnO at 35 : 65 wt % with the Rietveld engine (the
bundled published structures of examples/data/phases/, crystallite-size broadening, background,
Poisson noise), then asks `xtal identify-phases` which of the twelve bundled reference phases it
holds, and prints the answer beside the truth. Outputs in OUT (default identify-example/):
mix.xy, the answer's report.json, rietveld.png and refined CIFs under OUT/phases/mix/.

Usage (xtal on PATH, e.g. .venv/bin):
    python examples/identify_mixture.py [OUT]      about 20 s on 2 cores (QUICK=1: the same)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

PHASES = Path(__file__).resolve().parent / "data" / "phases"
TRUTH = {"TiO2": 0.35, "ZnO": 0.65}


def draw_mixture(path: Path) -> None:
    """A scan of the TRUTH weight fractions, scales set by the ZMV relation."""
    import xtal_cli as xtal
    from xtal_cli.refine.fractions import cell_mass
    from xtal_cli.refine.instrument import Instrument
    from xtal_cli.refine.phases import cell_volume, read_phase

    phases = [read_phase(PHASES / "TiO2_anatase.cif"), read_phase(PHASES / "ZnO_wurtzite.cif")]
    tt = np.arange(15.0, 90.0, 0.02)
    inst = Instrument(lam1=1.540598, lam2=1.544426, ratio=0.5, polariz=0.5)
    model = xtal.RietveldModel(tt, np.ones_like(tt), phases, inst)
    for k, (ph, w) in enumerate(zip(phases, TRUTH.values())):
        prefix = f"{k}/" if k else ""
        model.set(f"{prefix}scale", w / (cell_mass(ph) * cell_volume(ph.cell)))
        model.set(f"{prefix}size", 0.15)  # 150 nm crystallites
    _, peaks = model.calc()
    counts = np.random.default_rng(1).poisson(peaks * 4000 / peaks.max() + 150.0)
    lines = ["# anatase + ZnO, Cu Ka1/Ka2"] + [f"{a:.2f} {c}" for a, c in zip(tt, counts)]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "identify-example")
    out.mkdir(parents=True, exist_ok=True)
    scan = out / "mix.xy"
    draw_mixture(scan)
    done = subprocess.run(
        ["xtal", "identify-phases", str(scan), "-c", str(PHASES), "--wavelength", "CuKa",
         "-o", str(out / "phases"), "--format", "json", "--overwrite", "-q"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (record,) = json.loads(done.stdout)
    found = {p["formula"]: p["weight_fraction"] for p in record["phases"]}
    print(f"Rwp {record['rwp']:.2f} %")
    for formula in sorted(set(found) | set(TRUTH)):
        print(f"{formula:8s} found {100 * found.get(formula, 0):5.1f} wt %   "
              f"weighed {100 * TRUTH.get(formula, 0):5.1f} wt %")  # fmt: skip


if __name__ == "__main__":
    main()
