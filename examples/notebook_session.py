"""From structures and a measured scan to a ranked symmetry and a refinement, in Python.

The same steps as ``structures_to_prediction.sh`` and ``refine_y2o3.sh``, through the public API
(``import xtal_cli as xtal``), as a notebook would run them: nothing is printed by the library,
every step returns an object to look at.

Usage:  python examples/notebook_session.py [OUTDIR]          (default OUTDIR: xtal-session)
        QUICK=1 python examples/notebook_session.py OUTDIR    (300 structures, 50 trees, 4 trials)
Time on 2 cores: about 30 s with QUICK=1; about 4 minutes without (2,500 structures, 500 trees,
200 refinement trials).
Outputs in OUTDIR: symmetry.h5 (the model), peaks.png, y2o3-bbo/ (the refinement).
"""

import os
import sys
from importlib.resources import files
from pathlib import Path

import xtal_cli as xtal

quick = os.environ.get("QUICK", "0") != "0"
out = Path(sys.argv[1] if len(sys.argv) > 1 else "xtal-session")
out.mkdir(parents=True, exist_ok=True)
y2o3 = files("xtal_cli.data") / "examples" / "Y2O3"

# A measured lab scan (Cu Kα1 + Kα2: the doublet name makes peak picking strip Kα2).
scan = xtal.read_scan(y2o3 / "Y2O3.xy", wavelength="CuKa")
peaks = xtal.find_peaks(scan)
print(f"{len(scan)} points, {len(peaks.two_theta)} peaks, first at {peaks.two_theta[0]:.3f}°")

# Training data: augmented profiles of the embedded Materials Project structures, featurized the
# way a measured scan is (peaks picked in the profile, indexing scores per Bravais lattice).
structures = xtal.builtin_structures("mp-sample", limit=300 if quick else None)
patterns = xtal.simulate(structures, augment=True, seed=0, jobs=2)
features = xtal.featurize(patterns, source="profile", lattices=True, jobs=2)

# A scikit-learn style estimator: fit, predict, save (arrays + JSON, no pickle), load.
model = xtal.SymmetryModel(n_estimators=50 if quick else None, seed=0, n_jobs=2).fit(features)
best = model.predict(scan, top=5)[0]
for (system, p_cs), (number, symbol, p_sg) in zip(best.crystal_systems, best.space_groups):
    print(f"{system:13s} {p_cs:.3f}   {number:3d} {symbol:8s} {p_sg:.3f}")
model.save(out / "symmetry.h5")
assert xtal.SymmetryModel.load(out / "symmetry.h5").predict(scan)[0] == best

# Automatic Rietveld refinement of the same scan (Optuna TPE over refinement configurations).
report = xtal.refine_bbo(
    y2o3 / "Y2O3.xy",
    y2o3 / "Y2O3.cif",
    y2o3 / "INST_XRY.PRM",
    out / "y2o3-bbo",
    trials=4 if quick else 200,
    seed=0,
)
best_fit = report["best"]
print(f"Rwp {best_fit['rwp']:.2f} %, a = {best_fit['cell'][0]:.5f} Å")
