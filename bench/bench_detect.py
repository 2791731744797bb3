"""train-detector / detect-phase on the A-Lab precursor mixtures (``measured/alab-mixtures``).

For each precursor phase as the target (its published-structure CIF in ``examples/data/phases/``,
as ``bench/alab_candidates.py`` lists them) a detector is trained on synthetic mixtures with the
other precursors' CIFs as the other phases plus random peaks, on one CPU thread; then the 20
measured precursor-mixture scans are scored. A scan is labelled positive for a target when its
labels name the target's formula. Reported: per target the held-out synthetic recall/precision
at p > 0.95, AUC and detection limit, training seconds, and on the measured scans the
probabilities; pooled over the targets done, recall and precision at p > 0.95 (class C and
above). TiO2 has two CIFs (anatase, rutile; the labels do not say which a scan holds): both count
as the target.

Usage: ``python bench/bench_detect.py [FORMULA ...]`` trains the targets given (default: all ten)
that have no finished detector in bench/work/detect/, then scores every finished one and writes
bench/results/detect.json. Two processes with disjoint target lists can train at once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from alab_candidates import PHASES, alab_scans, precursor_formulas  # noqa: E402
from common import WORK, require_shared, write_result  # noqa: E402

OUT = WORK / "detect"
SKIP: dict[str, str] = {}
EPOCHS = 20
SAMPLES = 4096


def _safe(formula: str) -> str:
    """A file-name form of a formula, as the CIFs of examples/data/phases are named: LaOH3."""
    return "".join(ch for ch in formula if ch.isalnum())


def target_cifs(formula: str) -> list[Path]:
    return [p for p in sorted(PHASES.glob("*.cif")) if p.stem.split("_")[0] == _safe(formula)]


def train_one(formula: str, epochs: int, samples: int) -> Path:
    from xtal_cli.detect.detector import read_meta
    from xtal_cli.detect.mixtures import MixtureSettings
    from xtal_cli.detect.train import DetectorTrainSettings, train_detector

    out = OUT / _safe(formula)
    try:
        meta = read_meta(out)
        if meta["training"]["epochs_done"] >= epochs and meta.get("evaluation"):
            return out
    except Exception:  # noqa: BLE001 - not trained yet
        pass
    targets = target_cifs(formula)
    others = [p for p in sorted(PHASES.glob("*.cif")) if p not in targets]
    t0 = time.perf_counter()
    train_detector(
        [str(p) for p in targets],
        [str(p) for p in others],
        out,
        DetectorTrainSettings(epochs=epochs, samples_per_epoch=samples, threads=1),
        mixtures=MixtureSettings(random_peaks=8),
        force=True,
    )
    print(f"{formula}: trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def score(shared: Path) -> dict:
    from pymatgen.core import Composition

    from xtal_cli.detect.detector import detect_scans, load_detector

    scans = alab_scans(shared)
    per_target, pooled = {}, []
    for formula in precursor_formulas(shared):
        folder = OUT / _safe(formula)
        if formula in SKIP or not (folder / "detector.json").exists():
            continue
        det = load_detector(folder)
        if not det.meta.get("evaluation"):
            continue
        t0 = time.perf_counter()
        recs = detect_scans(det, [s["scan"] for s in scans])
        seconds = time.perf_counter() - t0
        want = Composition(formula).reduced_formula
        label = {str(s["scan"]): want in {Composition(p).reduced_formula for p in s["phases"]}
                 for s in scans}  # fmt: skip
        rows = []
        for r in recs:
            if r["status"] != "ok":
                raise SystemExit(f"bench: {r['error']}")
            rows.append({"scan": Path(r["scan"]).name, "label": label[r["scan"]],
                         "probability": r["probability"], "class": r["class"]})  # fmt: skip
        pooled.extend(rows)
        ev = dict(det.meta["evaluation"])
        bins = json.loads((folder / "evaluation.json").read_text())["bins"]
        big = [b for b in bins if b["lo"] >= 0.1 - 1e-9 and b["recall"] is not None]
        n_big = sum(b["n"] for b in big)
        ev["recall_above"] = {  # the positives from the first bin edge above 10 wt %
            "fraction": min(b["lo"] for b in big) if big else None,
            "recall": sum(b["recall"] * b["n"] for b in big) / n_big if n_big else None,
        }
        ev["recall_per_fraction_bin"] = bins
        per_target[formula] = {
            "synthetic": ev,
            "training_seconds": det.meta["training"]["seconds"],
            "training_cpu_seconds": det.meta["training"].get("cpu_seconds"),
            "epochs": det.meta["training"]["epochs_done"],
            "measured": _counts(rows),
            "scoring_seconds_20_scans": seconds,
            "scans": rows,
        }
    return {
        "targets_done": list(per_target),
        "targets_skipped": SKIP,
        "pooled_measured": _counts(pooled),
        "pooled_synthetic_mean": {
            k: (
                sum(t["synthetic"][k] or 0 for t in per_target.values()) / len(per_target)
                if per_target
                else None
            )
            for k in ("recall", "precision", "auc")
        },  # fmt: skip
        "per_target": per_target,
        "settings": {
            "epochs": EPOCHS,
            "samples_per_epoch": SAMPLES,
            "threads": 1,
            "random_peaks": 8,
            "threshold": 0.95,
        },  # fmt: skip
    }


def throughput(n: int = 1000) -> dict | None:
    """Scans per minute of detect-phase on *n* two-column .xy copies of one measured scan
    (10-100° at 0.0131°, ~6,900 points each), reading included, one process."""
    import numpy as np

    from xtal_cli.detect.detector import detect_scans, load_detector
    from xtal_cli.io.scans import read_scan

    folders = sorted(p.parent for p in OUT.glob("*/evaluation.json"))
    if not folders:
        return None
    src = read_scan(alab_scans(require_shared())[0]["scan"])
    d = WORK / "detect-throughput"
    d.mkdir(parents=True, exist_ok=True)
    text = "\n".join(f"{t:.5f} {y:.1f}" for t, y in zip(src.two_theta, src.counts)) + "\n"
    paths = []
    for k in range(n):
        paths.append(d / f"scan{k:05d}.xy")
        if not paths[-1].exists():
            paths[-1].write_text(text)
    det = load_detector(folders[0])
    t0 = time.perf_counter()
    recs = detect_scans(det, paths)
    seconds = time.perf_counter() - t0
    assert all(r["status"] == "ok" for r in recs)
    return {"scans": n, "points_per_scan": len(src.two_theta), "seconds": seconds,
            "scans_per_minute": 60 * n / seconds, "processes": 1,
            "probability_spread": float(np.ptp([r["probability"] for r in recs]))}  # fmt: skip


def _counts(rows: list[dict]) -> dict:
    hit = [r["probability"] > 0.95 for r in rows]
    tp = sum(h and r["label"] for h, r in zip(hit, rows))
    fp = sum(h and not r["label"] for h, r in zip(hit, rows))
    fn = sum(not h and r["label"] for h, r in zip(hit, rows))
    return {"n": len(rows), "positives": sum(r["label"] for r in rows), "tp": tp, "fp": fp,
            "fn": fn, "recall": tp / (tp + fn) if tp + fn else None,
            "precision": tp / (tp + fp) if tp + fp else None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="precursor formulas to train (default: all)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument("--score-only", action="store_true", help="train nothing")
    args = parser.parse_args()
    shared = require_shared()
    if not args.score_only:
        for formula in args.targets or [f for f in precursor_formulas(shared) if f not in SKIP]:
            train_one(formula, args.epochs, args.samples)
    result = score(shared)
    result["throughput"] = throughput()
    write_result("detect", result)


if __name__ == "__main__":
    main()
