"""train-detector / detect-phase on measured multiphase scans, one detector per target phase.

* ``alab``: the A-Lab precursor mixtures (shared ``measured/alab-mixtures``, 20 scans of 10
  weighed mixtures of 2–3 of ten precursors). Target and other phases: the published-structure
  CIFs of ``examples/data/phases/`` (as ``bench/alab_candidates.py`` lists them), the target's
  CIFs as the target (TiO2: anatase and rutile both count; the labels do not say which a scan
  holds), every other one as the other phases.
* ``autoanalyzer``: the 18 xrd-autoanalyzer scans (shared ``measured/xrd-autoanalyzer``,
  Li–Mn–Ti–O–F, 1–3 phases each) with their 144 reference CIFs; targets are the five most
  frequent labelled phases (ties broken alphabetically), every reference CIF of the target's
  formula (all its polymorphs) as the target, the other references as the other phases.

Each detector is trained with random peaks, on one CPU thread, 20 epochs of 4,096 fresh
mixtures. A scan is labelled positive for a target when its labels name the target's formula.
Reported per target: held-out synthetic recall/precision at p > 0.95, AUC, detection limit,
training wall and CPU seconds, and the probability of every measured scan; pooled over the
targets done, recall and precision at p > 0.95 (class C and above) on the measured scans; and
the throughput of detect-phase.

Usage: ``python bench/bench_detect.py [--set alab|autoanalyzer] [FORMULA ...]`` trains the
targets given (default: all of the set) that have no finished detector in bench/work/detect*/,
then scores every finished one and writes bench/results/detect.json (both sets). Two processes
with disjoint target lists can train at once.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from alab_candidates import PHASES, alab_scans, precursor_formulas  # noqa: E402
from common import WORK, require_shared, write_result  # noqa: E402

EPOCHS = 20
SAMPLES = 4096
AUTO = Path("measured") / "xrd-autoanalyzer"


def _safe(formula: str) -> str:
    """A file-name form of a formula, as the CIFs of examples/data/phases are named: LaOH3."""
    return "".join(ch for ch in formula if ch.isalnum())


def _reduced(formula: str) -> str:
    from pymatgen.core import Composition

    return Composition(formula).reduced_formula


def data_set(name: str, shared: Path) -> dict:
    """Scans (path, labelled formulas), targets, and the CIF pool of one benchmark set."""
    if name == "alab":
        cifs = sorted(PHASES.glob("*.cif"))
        scans = [(s["scan"], s["phases"]) for s in alab_scans(shared)]
        targets = precursor_formulas(shared)
        return {"out": WORK / "detect", "scans": scans, "targets": targets, "cifs": cifs,
                "of": lambda f: [p for p in cifs if p.stem.split("_")[0] == _safe(f)]}  # fmt: skip
    root = shared / AUTO
    cifs = sorted((root / "References").glob("*.cif"))
    with open(root / "labels_from_filenames.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["file"].startswith("Spectra/")]
    scans = [(root / r["file"], r["phases"].split(";")) for r in rows]
    counts = Counter(f for _, phases in scans for f in phases)
    targets = sorted(counts, key=lambda f: (-counts[f], f))[:5]
    return {"out": WORK / "detect-autoanalyzer", "scans": scans, "targets": targets, "cifs": cifs,
            "of": lambda f: [p for p in cifs if p.stem.rsplit("_", 1)[0] == f]}  # fmt: skip


def train_one(ds: dict, formula: str, epochs: int, samples: int) -> Path:
    from xtal_cli.detect.detector import read_meta
    from xtal_cli.detect.mixtures import MixtureSettings
    from xtal_cli.detect.train import DetectorTrainSettings, train_detector

    out = ds["out"] / _safe(formula)
    try:
        meta = read_meta(out)
        if meta["training"]["epochs_done"] >= epochs and meta.get("evaluation"):
            return out
    except Exception:  # noqa: BLE001 - not trained yet
        pass
    targets = ds["of"](formula)
    if not targets:
        raise SystemExit(f"bench: no CIF for {formula}")
    others = [p for p in ds["cifs"] if p not in targets]
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


def _synthetic(folder: Path, ev: dict) -> dict:
    """The held-out summary plus recall per weight-fraction bin and recall above 10 wt %."""
    ev = dict(ev)
    bins = json.loads((folder / "evaluation.json").read_text())["bins"]
    big = [b for b in bins if b["lo"] >= 0.1 - 1e-9 and b["recall"] is not None]
    n_big = sum(b["n"] for b in big)
    ev["recall_above"] = {  # the positives from the first bin edge above 10 wt %
        "fraction": min(b["lo"] for b in big) if big else None,
        "recall": sum(b["recall"] * b["n"] for b in big) / n_big if n_big else None,
    }
    ev["recall_per_fraction_bin"] = bins
    return ev


def score(ds: dict) -> dict | None:
    from xtal_cli.detect.detector import detect_scans, load_detector

    per_target, pooled = {}, []
    for formula in ds["targets"]:
        folder = ds["out"] / _safe(formula)
        if not (folder / "evaluation.json").exists():
            continue
        det = load_detector(folder)
        t0 = time.perf_counter()
        recs = detect_scans(det, [path for path, _ in ds["scans"]])
        seconds = time.perf_counter() - t0
        want = _reduced(formula)
        label = {str(p): want in {_reduced(f) for f in phases} for p, phases in ds["scans"]}
        rows = []
        for r in recs:
            if r["status"] != "ok":
                raise SystemExit(f"bench: {r['error']}")
            rows.append({"scan": Path(r["scan"]).name, "label": label[r["scan"]],
                         "probability": r["probability"], "class": r["class"]})  # fmt: skip
        pooled.extend(rows)
        per_target[formula] = {
            "target": det.meta["target"]["name"],
            "synthetic": _synthetic(folder, det.meta["evaluation"]),
            "training_seconds": det.meta["training"]["seconds"],
            "training_cpu_seconds": det.meta["training"].get("cpu_seconds"),
            "epochs": det.meta["training"]["epochs_done"],
            "n_others": len(det.meta["others"]),
            "measured": _counts(rows),
            "scoring_seconds": seconds,
            "scans": rows,
        }
    if not per_target:
        return None
    done = list(per_target.values())
    return {
        "targets": ds["targets"],
        "targets_done": list(per_target),
        "n_scans": len(ds["scans"]),
        "pooled_measured": _counts(pooled),
        "synthetic_mean": {
            k: sum(t["synthetic"][k] for t in done) / len(done)
            for k in ("recall", "precision", "auc", "detection_limit")
        },
        "per_target": per_target,
        "settings": {
            "epochs": EPOCHS,
            "samples_per_epoch": SAMPLES,
            "threads": 1,
            "random_peaks": 8,
            "threshold": 0.95,
        },  # fmt: skip
    }


def throughput(folder: Path, scan: Path, n: int = 1000) -> dict:
    """Scans per minute of detect-phase on *n* two-column .xy copies of one measured scan,
    reading included, one process."""
    import numpy as np

    from xtal_cli.detect.detector import detect_scans, load_detector
    from xtal_cli.io.scans import read_scan

    src = read_scan(scan)
    d = WORK / "detect-throughput"
    d.mkdir(parents=True, exist_ok=True)
    text = "\n".join(f"{t:.5f} {y:.1f}" for t, y in zip(src.two_theta, src.counts)) + "\n"
    paths = []
    for k in range(n):
        paths.append(d / f"scan{k:05d}.xy")
        if not paths[-1].exists():
            paths[-1].write_text(text)
    det = load_detector(folder)
    t0 = time.perf_counter()
    recs = detect_scans(det, paths)
    seconds = time.perf_counter() - t0
    if not all(r["status"] == "ok" for r in recs):
        raise SystemExit("bench: a throughput scan was refused")
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
    parser.add_argument("targets", nargs="*", help="formulas to train (default: the set's)")
    parser.add_argument("--set", dest="set_name", choices=("alab", "autoanalyzer"),
                        default="alab")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument("--score-only", action="store_true", help="train nothing")
    args = parser.parse_args()
    shared = require_shared()
    sets = {name: data_set(name, shared) for name in ("alab", "autoanalyzer")}
    if not args.score_only:
        ds = sets[args.set_name]
        for formula in args.targets or ds["targets"]:
            train_one(ds, formula, args.epochs, args.samples)
    result = {name: score(ds) for name, ds in sets.items()}
    first = sorted((WORK / "detect").glob("*/evaluation.json"))
    if first:
        result["throughput"] = throughput(first[0].parent, sets["alab"]["scans"][0][0])
    write_result("detect", result)


if __name__ == "__main__":
    main()
