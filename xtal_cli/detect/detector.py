"""The detector folder (layout ``detector/1``) and prediction on measured scans.

A folder written by ``xtal train-detector`` holds ``detector.json`` (layout version, target phase,
wavelength, 2θ window and step, network config, the SHA-256 of the weights, training settings and
the held-out evaluation), ``model.pt`` (weights, loaded with ``weights_only=True``),
``target.cif`` (a copy of the target's CIF when it came from a file), ``checkpoint.pt`` and
``metrics.jsonl`` (training), ``evaluation.json`` and ``calibration.png``. Loading refuses a
folder that is incomplete or whose weights do not match the recorded checksum, with one sentence;
predicting refuses a scan of another wavelength or one that does not cover the trained window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xtal_cli.errors import XtalError
from xtal_cli.io.bundles import file_sha256 as sha256

LAYOUT = "detector/1"
META = "detector.json"
MODEL = "model.pt"
WAVELENGTH_TOLERANCE = 0.002  # Å: a tube's Kα1 and its Kα average count as the same radiation
REQUIRED = ("layout", "target", "wavelength", "two_theta_min", "two_theta_max", "step", "model")

# published classes (Uryu et al. 2023): A p > 0.999, B 0.990 < p <= 0.999, C 0.950 < p <= 0.990
CLASS_THRESHOLDS = (("A", 0.999), ("B", 0.990), ("C", 0.950))


def classify(p: float) -> str:
    """A/B/C/D class of a probability with the published thresholds (D: p <= 0.950)."""
    for name, threshold in CLASS_THRESHOLDS:
        if p > threshold:
            return name
    return "D"


def detector_grid(two_theta_min: float, two_theta_max: float, step: float) -> np.ndarray:
    """The fixed 2θ grid of a detector (both ends included)."""
    n = int(round((two_theta_max - two_theta_min) / step)) + 1
    return two_theta_min + step * np.arange(n)


def resample(two_theta: np.ndarray, counts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Mean intensity of a scan over each grid point's step (a box average of the piecewise
    linear scan), so scans of any step size give the same profile and fine steps lose no peak."""
    tt = np.asarray(two_theta, dtype=float)
    y = np.asarray(counts, dtype=float)
    step = float(grid[1] - grid[0]) if len(grid) > 1 else 1.0
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(tt))])
    lo = np.clip(grid - step / 2, tt[0], tt[-1])
    hi = np.clip(grid + step / 2, tt[0], tt[-1])
    width = hi - lo
    area = np.interp(hi, tt, cum) - np.interp(lo, tt, cum)
    return np.where(width > 0, area / np.maximum(width, 1e-12), np.interp(grid, tt, y))


@dataclass
class Detector:
    """A loaded detector: its metadata, network and grid."""

    path: Path
    meta: dict
    net: object  # DetectorNet in eval mode
    grid: np.ndarray

    @property
    def wavelength(self) -> float:
        return float(self.meta["wavelength"])

    @property
    def target(self) -> str:
        return str(self.meta["target"]["name"])

    def profile(self, scan, wavelength: float | None = None) -> np.ndarray:
        """A scan on the detector's grid; refuses another wavelength or a too short 2θ range.

        The scan's own wavelength wins; else *wavelength*; else the detector's is assumed.
        """
        wl = scan.wavelength if scan.wavelength is not None else wavelength
        if wl is not None and abs(wl - self.wavelength) > WAVELENGTH_TOLERANCE:
            raise XtalError(
                f"{scan.path}: measured at λ = {wl:.5f} Å but the detector was trained for "
                f"{self.wavelength:.5f} Å; train a detector for that wavelength"
            )
        lo, hi = float(self.grid[0]), float(self.grid[-1])
        tol = float(self.meta["step"])  # the box average fills one step at an edge
        tt = scan.two_theta
        if tt[0] > lo + tol or tt[-1] < hi - tol:
            raise XtalError(
                f"{scan.path}: covers 2θ {tt[0]:.2f}-{tt[-1]:.2f}° but the detector needs "
                f"{lo:g}-{hi:g}°; measure the whole window or train a detector for this range"
            )
        return resample(tt, scan.counts, self.grid).astype(np.float32)

    def predict(self, profiles: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Probability that the target is present, per row of *profiles* (N, P)."""
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(profiles), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(profiles[start : start + batch_size]))
                out.append(torch.sigmoid(self.net(x)).double().numpy())
        return np.concatenate(out) if out else np.zeros(0)


def _refuse(path: Path, problem: str) -> XtalError:
    return XtalError(f"{path}: {problem}; train the detector again with xtal train-detector")


def read_meta(folder: Path) -> dict:
    """``detector.json`` of *folder*, checked for layout and the required fields."""
    meta_path = folder / META
    if not folder.is_dir():
        raise XtalError(f"{folder}: no such detector folder")
    if not meta_path.is_file():
        raise _refuse(folder, f"is not a detector folder (no {META})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        why = f"cannot be read as JSON ({type(exc).__name__}); corrupted?"
        raise _refuse(meta_path, why) from None
    if not isinstance(meta, dict):
        raise _refuse(meta_path, "does not hold a JSON object")
    if meta.get("layout") != LAYOUT:
        raise _refuse(meta_path, f"layout {meta.get('layout')!r} is not {LAYOUT}")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise _refuse(meta_path, f"lacks {', '.join(missing)} (incomplete)")
    return meta


def load_detector(folder, device: str = "cpu") -> Detector:
    """A detector folder, verified: layout, fields, the weights' checksum and their shapes."""
    import torch

    from xtal_cli.detect.model import MODEL_FORMAT, DetectorConfig, DetectorNet

    folder = Path(folder)
    meta = read_meta(folder)
    model_path = folder / MODEL
    if not model_path.is_file():
        raise _refuse(folder, f"has no {MODEL} (incomplete)")
    model = meta["model"]
    if not isinstance(model, dict) or "sha256" not in model or "config" not in model:
        raise _refuse(folder / META, "has no model checksum or config (incomplete)")
    if sha256(model_path) != model["sha256"]:
        raise _refuse(model_path, f"does not match the checksum in {META} (corrupted or replaced)")
    if model.get("format") != MODEL_FORMAT:
        raise _refuse(model_path, f"is model format {model.get('format')}, not {MODEL_FORMAT}")
    try:
        state = torch.load(model_path, map_location="cpu", weights_only=True)
        cfg = DetectorConfig.from_dict(model["config"])
        net = DetectorNet(cfg)
        net.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - zip, pickle and shape errors of all kinds
        raise _refuse(model_path, f"cannot be loaded ({type(exc).__name__})") from None
    grid = detector_grid(
        float(meta["two_theta_min"]), float(meta["two_theta_max"]), float(meta["step"])
    )
    if len(grid) != cfg.n_points:
        raise _refuse(folder / META, f"grid of {len(grid)} points but a network of {cfg.n_points}")
    net.eval()
    return Detector(path=folder, meta=meta, net=net.to(device), grid=grid)


def detect_scans(detector: Detector, paths, wavelength: float | None = None, on_done=None):
    """One record per scan path, sorted by probability (highest first): scan, probability,
    class, or the error that kept it from being scored (status ``failed``)."""
    from xtal_cli.io.scans import read_scan

    records, profiles, rows = [], [], []
    for path in paths:
        rec = {"scan": str(path), "target": detector.target}
        try:
            scan = read_scan(path, wavelength)
            profiles.append(detector.profile(scan, wavelength))
            rows.append(len(records))
            rec["status"] = "ok"
        except XtalError as exc:
            rec.update(status="failed", error=str(exc), probability=None, **{"class": None})
        records.append(rec)
        if on_done:
            on_done(rec)
    if profiles:
        probs = detector.predict(np.stack(profiles))
        for k, p in zip(rows, probs):
            records[k]["probability"] = float(p)
            records[k]["class"] = classify(float(p))
    return sorted(records, key=lambda r: (r["probability"] is None, -(r["probability"] or 0.0)))
