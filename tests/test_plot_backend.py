"""Library plots leave the caller's matplotlib alone: no backend switch, no pyplot state.

A notebook user who calls a plotting function must keep their backend (inline, widget ...), so
the library draws on a bare ``matplotlib.figure.Figure`` and never calls ``matplotlib.use``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys, types
from pathlib import Path
import numpy as np
import matplotlib
out = Path(sys.argv[1])
before = matplotlib.get_backend()
from xtal_cli.io.scans import read_text
from xtal_cli.xrd.peaks import find_scan_peaks, plot_peaks
scan = read_text("xtal_cli/data/examples/Y2O3/Y2O3.xy")
plot_peaks(scan, find_scan_peaks(scan), out / "peaks.png")
from xtal_cli.symmetry.metrics import confusion_png
confusion_png([0, 1, 1], [0, 1, 0], ["a", "b"], out / "conf.png", "t")
from xtal_cli.symmetry.explain import curve_png, importance_png
importance_png(["a", "b"], {"x": [1, 2]}, out / "imp.png", "t")
curve_png({"cs": {"k": [1, 2], "accuracy": [0.5, 0.6]}}, out / "curve.png", "t")
from xtal_cli.refine import report
x = np.linspace(10, 80, 50)
model = types.SimpleNamespace(x=x, yobs=x + 1, i0=0, i1=50, calc=lambda: (x * 0, x),
                              reflection_positions=lambda: [20, 30])
report.plot_rietveld(out / "riet.png", model, "t")
report.plot_history(out / "hist.png", [0, 1], [3.0, 2.0])
report.plot_mds(out / "mds.png", [], [], None)
from xtal_cli.embed.maps import plot_element_grid, plot_map
xy = np.random.default_rng(0).normal(size=(20, 2))
plot_map(xy, out / "map.png", values=["cubic"] * 10 + ["triclinic"] * 10)
plot_element_grid(xy, ["Y2O3", "NaCl"] * 10, out / "grid.png")
print(before, matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


def test_plots_keep_the_callers_backend(tmp_path):
    env = {**os.environ, "MPLBACKEND": "svg"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    before, after, pyplot = done.stdout.split()[-3:]
    assert before.lower() == "svg" and after.lower() == "svg"
    assert pyplot == "False"  # drawn without pyplot's global figure manager
    names = {"peaks", "conf", "imp", "curve", "riet", "hist", "mds", "map", "grid"}
    for name in names:
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_no_backend_switch_in_library_code():
    calls = []
    for path in sorted((ROOT / "xtal_cli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"use", "switch_backend"}
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"matplotlib", "mpl", "plt"}
            ):
                calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not calls, calls
