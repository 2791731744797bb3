"""Ranking crystal systems and space groups for new patterns with a trained symmetry model.

Inputs are measured scans (any reader of :mod:`xtal_cli.io.scans`), a ``features/1`` file made
with the model's settings, or a ``patterns/1`` file (featurised here with the model's settings).
Every row is checked against what the model was trained on: a pattern with no peak inside the
model's window is refused; one that covers only part of the window is answered with a warning.
"""

from __future__ import annotations

import glob
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.symmetry.features import FeatureSet, FeatureSettings

# How far (degrees 2θ at the model's wavelength) the data may fall short of the window's edges
# before a warning: peak positions of the lowest-angle peaks and the peak count would be biased.
EDGE_TOLERANCE = 1.0


@dataclass
class Prediction:
    id: str
    crystal_systems: list[tuple[str, float]] = field(default_factory=list)
    space_groups: list[tuple[int, str, float]] = field(default_factory=list)
    n_peaks: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def as_record(self) -> dict:
        rec = {"id": self.id, "n_peaks": self.n_peaks}
        if self.error:
            rec["error"] = self.error
            return rec
        rec["crystal_system"] = self.crystal_systems[0][0]
        rec["crystal_system_probability"] = self.crystal_systems[0][1]
        rec["space_group"] = self.space_groups[0][0]
        rec["space_group_symbol"] = self.space_groups[0][1]
        rec["space_group_probability"] = self.space_groups[0][2]
        rec["crystal_systems"] = [{"name": n, "probability": p} for n, p in self.crystal_systems]
        rec["space_groups"] = [
            {"number": n, "symbol": s, "probability": p} for n, s, p in self.space_groups
        ]
        rec["warnings"] = self.warnings
        return rec

    def as_rows(self) -> list[dict]:
        """Flat rows (one per rank) for CSV."""
        if self.error:
            return [{"id": self.id, "rank": "", "error": self.error}]
        rows = []
        for r in range(max(len(self.crystal_systems), len(self.space_groups))):
            cs = self.crystal_systems[r] if r < len(self.crystal_systems) else ("", "")
            sg = self.space_groups[r] if r < len(self.space_groups) else ("", "", "")
            rows.append(
                {
                    "id": self.id,
                    "rank": r + 1,
                    "crystal_system": cs[0],
                    "crystal_system_probability": cs[1],
                    "space_group": sg[0],
                    "space_group_symbol": sg[1],
                    "space_group_probability": sg[2],
                    "n_peaks": self.n_peaks,
                    "warnings": " | ".join(self.warnings),
                    "error": "",
                }
            )
        return rows


CSV_COLUMNS = [
    "id", "rank", "crystal_system", "crystal_system_probability", "space_group",
    "space_group_symbol", "space_group_probability", "n_peaks", "warnings", "error",
]  # fmt: skip


def check_row(
    settings: FeatureSettings,
    n_found: int,
    coverage,
    unit_label: str,
    first_peaks: np.ndarray | None = None,
) -> list[str]:
    """Warnings for one row; raises :class:`XtalError` when the model cannot answer at all.

    *first_peaks*: percentiles of the training patterns' first-peak positions (in the unit);
    data that start above many of them miss peaks the model relies on.
    """
    from xtal_cli.xrd.units import from_two_theta, to_two_theta

    lo, hi = float(coverage[0]), float(coverage[1])
    w_lo, w_hi = settings.two_theta_min, settings.two_theta_max

    def u(tt):
        return f"{float(from_two_theta(tt, settings.wavelength, settings.unit)):.4g}"

    span = f"{unit_label} {u(w_lo)}-{u(w_hi)}"
    if hi <= w_lo or lo >= w_hi:
        raise XtalError(
            f"the data cover {unit_label} {u(lo)}-{u(hi)}, outside the model's range {span}; "
            "use a model trained for this range"
        )
    if n_found == 0:
        raise XtalError(
            f"no peaks inside the model's range {span} (data cover {u(lo)}-{u(hi)}); "
            "check the wavelength, or lower --prominence"
        )
    warnings = []
    if first_peaks is not None and len(first_peaks):
        first_tt = to_two_theta(
            np.asarray(first_peaks, dtype=float), settings.wavelength, settings.unit
        )
        below = float(np.mean(first_tt < lo)) * 100.0
        if below > 1.0:
            warnings.append(
                f"data start at {unit_label} {u(lo)}, above the first peak of {below:.0f} % of "
                "the training patterns: low-angle peaks may be missing and positions shifted"
            )
    elif lo > w_lo + EDGE_TOLERANCE:
        warnings.append(
            f"data start at {unit_label} {u(lo)} but the model looks from {u(w_lo)}: "
            "lower-angle peaks may be missing, so peak positions may be shifted"
        )
    if hi < w_hi - EDGE_TOLERANCE:
        warnings.append(
            f"data end at {unit_label} {u(hi)} but the model counts peaks up to {u(w_hi)}: "
            "the peak count is underestimated"
        )
    if n_found < 3:
        warnings.append(f"only {n_found} peak(s) found; the ranking is weakly determined")
    return warnings


def unit_label(unit: str) -> str:
    return {"2theta": "2θ (°)", "d": "d (Å)", "inv-d": "1/d (1/Å)", "inv-d2": "1/d² (1/Å²)"}.get(
        unit, "Q (1/Å)"
    )


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Paths, globs, folders (their pattern files), or ``-`` (one path per line on stdin)."""
    from xtal_cli.io.scans import READERS

    paths: list[Path] = []
    for item in inputs:
        if item == "-":
            lines = [ln.strip() for ln in sys.stdin.read().splitlines()]
            paths.extend(expand_inputs([ln for ln in lines if ln and ln != "-"]))
            continue
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in READERS)
            if not found:
                raise XtalError(
                    f"{p}: folder holds no pattern files ({', '.join(sorted(READERS))})"
                )
            paths.extend(found)
        elif any(ch in item for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise XtalError(f"{item}: no files match")
            paths.extend(m for m in matches if m.is_file())
        else:
            paths.append(p)
    if not paths:
        raise XtalError("no input patterns given; pass files, folders, globs or - for stdin")
    return paths


def features_for_file(model, path: Path) -> FeatureSet:
    """A features/1 or patterns/1 file as features in *model*'s terms (checked)."""
    from xtal_cli.io.h5 import layout_kind, read_patterns
    from xtal_cli.symmetry.features import read_features

    settings: FeatureSettings = model.feature_settings_
    if layout_kind(path) == "patterns":
        return _refeaturize(read_patterns(path, structures=False), settings)
    fs = read_features(path)  # also reports truncated files and foreign layouts
    mismatch = compare_settings(fs.settings, settings)
    if mismatch:
        raise XtalError(
            f"{path}: features were made with {mismatch}; featurize the data again with the "
            "model's settings, or pass the patterns/scans directly"
        )
    return fs


def _refeaturize(ps, settings: FeatureSettings) -> FeatureSet:
    """Sticks of a patterns file → features in the model's window and unit (at its wavelength)."""
    from xtal_cli.symmetry.features import assemble_rows, peak_row

    wavelength = float(ps.attrs.get("wavelength", settings.wavelength))
    lo = float(ps.attrs.get("two_theta_min", 0.0))
    hi = float(ps.attrs.get("two_theta_max", 180.0))
    rows = [
        peak_row(tt, inten, wavelength, settings, (lo, hi))
        for tt, inten in zip(ps.sticks_two_theta, ps.sticks_intensity)
    ]
    fs = assemble_rows(ps.ids, rows, settings, ps.failures)
    fs.labels = dict(ps.labels)
    return fs


def compare_settings(found: FeatureSettings, model: FeatureSettings) -> str:
    """'' when features made with *found* can go into a model trained with *model*."""
    diffs = []
    for name in ("unit", "n_peaks", "min_intensity", "resolution", "indexing", "lattices"):
        a, b = getattr(found, name), getattr(model, name)
        if a != b:
            diffs.append(f"{name} {a} (the model uses {b})")
    if not diffs and not np.allclose(found.window, model.window, rtol=1e-6, equal_nan=True):
        diffs.append(f"window {found.window} (the model uses {model.window})")
    return ", ".join(diffs)


def predict_paths(
    model,
    inputs: list[str],
    *,
    wavelength: str | None = None,
    top: int = 5,
    ka2: str = "auto",
    prominence: float | None = None,
) -> list[Prediction]:
    """Predictions of a :class:`~xtal_cli.symmetry.estimator.SymmetryModel` for every input
    path (scans, features/patterns files, folders, globs, ``-``); per-file problems become
    ``Prediction.error``."""
    from xtal_cli.io.h5 import layout_kind
    from xtal_cli.symmetry.features import read_scan_with

    results: list[Prediction] = []
    for path in expand_inputs(inputs):
        if layout_kind(path) is not None:
            results.extend(model.predict_file(path, top))
            continue
        try:
            scan = read_scan_with(path, wavelength)
            if scan.wavelength is None:
                raise XtalError(
                    f"{path}: the file gives no wavelength; pass --wavelength (CuKa for a lab "
                    "Kα1+Kα2 tube, CuKa1 for monochromated data, or Å)"
                )
            scan.meta["id"] = str(path)
            results.extend(model.predict(scan, top, ka2=ka2, prominence=prominence))
        except ParameterError:  # a setting, not this file, is wrong
            raise
        except XtalError as exc:
            msg = str(exc)
            if not msg.startswith(str(path)):
                msg = f"{path}: {msg}"
            results.append(Prediction(id=str(path), error=msg))
    return results
