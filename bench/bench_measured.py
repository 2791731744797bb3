"""Measured data: does peak picking find the known phase's strong reflections on real scans?

For every single-phase shared scan with a known phase (Y2O3, DSMO, LiCoO2 and the single-phase
xrd-autoanalyzer scans, matched to reference CIFs by formula; polymorphs are tried and the best
one reported, with the others listed as ambiguous), the reflections above 5 % relative intensity
are simulated from the CIF (Cu Kα1, pymatgen) and matched to the picked peaks within 0.1° 2θ
after a fitted zero shift. Reflections closer than 0.6 × the local measured FWHM (a Caglioti fit
to the picked peaks) are merged first (one measured peak cannot resolve them). Because several
reference CIFs are DFT-relaxed (lattice ~1 % off, anisotropically), a second figure refines the
conventional cell (crystal-system constrained, ±3 %) and the zero shift by robust least squares.

Symmetry models on real scans (``--symmetry``): two extra-trees models are trained on the shared
Materials Project structures, (a) on ideal sticks (the default ``xtal featurize``) and (b) on
augmented profiles (``xtal simulate --augment``, several copies with different seeds, featurized
with ``--source profile``: the same peak picking and Kα2 stripping as a measured scan). With
``--indexing`` (the default; ``--no-indexing``: the published features only) the features
carry the cubic/tetragonal/hexagonal indexing scores, and the same rows without them train two
more models (``*_plain``) in the same run. ``--lattices`` gives the scores per Bravais lattice
(``featurize --lattices``), and the same rows folded to one score per system train two more
(``*_systems``): what the centrings add, measured on identical peak lists. Each scan
is featurized as ``xtal predict-symmetry`` does it (lab Cu Kα1+Kα2, Kα2 stripped) and the ranks of
the true crystal system and space group are reported. The truth is the set of space groups of
all candidate CIFs with the scan's formula (ambiguous polymorphs stay a set); a second, stricter
truth is the reference(s) the scan's own peaks identify (best peak match above).

    nice -n 10 .venv/bin/python bench/bench_measured.py              # peak picking only
    nice -n 10 .venv/bin/python bench/bench_measured.py --symmetry   # + models (full MP set)
    ... --symmetry --structures 3000 --copies 2                      # a quicker subset

Simulated and featurized files are kept in bench/work/ and reused.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    RESULTS,
    WORK,
    require_shared,
    single_phase_scans,
    write_result,
)

CU = (1.540562, 1.544390, 0.5)


def peak_picking(shared: Path) -> tuple[dict, list[dict]]:
    """The peak-picking check; also names, per scan, the reference(s) its peaks identify.

    Per scan and candidate reference: reflections (Cu Kα1) merged where closer than 0.6 × the
    local FWHM (Caglioti fit to the picked peaks); the strong ones (≥ 5 %) matched within 0.1°
    after (a) a zero shift only, (b) a least-squares zero + cell refinement constrained by the
    crystal system (±3 % per free parameter).
    """
    from pymatgen.core import Structure

    from xtal_cli.io.scans import read_scan
    from xtal_cli.refine.cell import CellModel
    from xtal_cli.xrd.peakmatch import fwhm_model, match_fraction
    from xtal_cli.xrd.peaks import find_peaks

    rows = []
    t_pick = []
    for name, scan_path, cifs in single_phase_scans(shared):
        scan = read_scan(scan_path)
        ka2 = (scan.wavelength, scan.wavelength2, scan.ka2_ratio or 0.5) if scan.wavelength2 else CU
        t0 = time.perf_counter()
        pk = find_peaks(scan.two_theta, scan.counts, ka2=ka2)
        t_pick.append(time.perf_counter() - t0)
        fwhm = fwhm_model(pk)
        lo, hi = scan.two_theta[0] + 0.5, scan.two_theta[-1] - 0.5
        per_cif = []
        for cif in cifs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_file(cif)
                model = CellModel(structure, ka2[0], (lo, hi), fwhm)
            strong = model.pos0[model.rel >= model.settings.strong]
            f_zero, z_zero = match_fraction(strong, pk.two_theta)
            x, z = model.refine(pk.two_theta, z_zero)
            f_cell, missed = model.matched(pk.two_theta, x, z)
            _, missed_zero = model.matched(pk.two_theta, np.zeros(len(model.free)), z_zero)
            cell = model.params(x)
            change = {k: round(float(100 * (cell[j] / model.p0[j] - 1)), 2)
                      for k, j in zip("abc", range(3))}  # fmt: skip
            for j in range(3, 6):
                if j in model.free:
                    change["alpha beta gamma".split()[j - 3] + "_deg"] = round(
                        float(cell[j] - model.p0[j]), 2
                    )
            per_cif.append({
                "cif": cif.name, "n_strong": int(len(strong)), "matched_zero": f_zero,
                "zero_shift": z_zero, "matched_zero_cell": f_cell, "zero_shift_cell": z,
                "cell_change_pct": change, "crystal_system": model.system,
                "missed": missed, "missed_zero_only": missed_zero,
            })  # fmt: skip
        per_cif.sort(key=lambda c: (c["matched_zero"], c["matched_zero_cell"]), reverse=True)
        best = per_cif[0]
        ambiguous = [c["cif"] for c in per_cif[1:]
                     if c["matched_zero"] >= best["matched_zero"] - 0.05
                     and c["matched_zero"] > 0.5]  # fmt: skip
        # the phase the scan's own peaks point to (zero + refined cell, ties within 5 points)
        top_cell = max(c["matched_zero_cell"] for c in per_cif)
        identified = sorted(c["cif"] for c in per_cif if c["matched_zero_cell"] >= top_cell - 0.05)
        best_cell = max(per_cif, key=lambda c: (c["matched_zero_cell"], c["matched_zero"]))
        rows.append({
            "scan": scan_path.name, "phase": name, "reference": best["cif"],
            "n_strong": best["n_strong"], "n_picked": len(pk),
            "n_shoulders": int(pk.shoulder.sum()) if pk.shoulder is not None else 0,
            "matched_zero": round(best["matched_zero"], 3),
            "zero_shift": round(best["zero_shift"], 3),
            "missed_zero_only": best["missed_zero_only"],
            "reference_cell": best_cell["cif"], "crystal_system": best_cell["crystal_system"],
            "n_strong_cell": best_cell["n_strong"],
            "matched_zero_cell": round(best_cell["matched_zero_cell"], 3),
            "zero_shift_cell": round(best_cell["zero_shift_cell"], 3),
            "cell_change_pct": best_cell["cell_change_pct"],
            "missed": best_cell["missed"],
            "ambiguous_polymorphs": ambiguous, "identified_by_peaks": identified,
        })  # fmt: skip
        print(rows[-1], file=sys.stderr)
    zero = np.array([r["matched_zero"] for r in rows])
    cell = np.array([r["matched_zero_cell"] for r in rows])
    section = {
        "criterion": "reflections >= 5 % (merged closer than 0.6 x local FWHM) within 0.1 deg "
        "2theta, after a zero shift / after zero + cell least squares (+-3 %, crystal-system "
        "constrained)",
        "mean_matched_zero_only": round(float(zero.mean()), 3),
        "mean_matched_zero_cell": round(float(cell.mean()), 3),
        "scans_at_least_90pct_zero_only": int((zero >= 0.9).sum()),
        "scans_at_least_90pct_zero_cell": int((cell >= 0.9).sum()),
        # every reflection >= 5 % of every scan counted once: the fraction of all strong lines
        "pooled_matched_zero_only": _pooled(rows, "n_strong", "matched_zero"),
        "pooled_matched_zero_cell": _pooled(rows, "n_strong_cell", "matched_zero_cell"),
        "n_scans": len(rows),
        "pick_ms_median": round(1000 * float(np.median(t_pick)), 1),
        "per_scan": rows,
    }
    return section, rows


# ----------------------------------------------------------------------------- symmetry models

XTAL = [sys.executable, "-m", "xtal_cli"]


def _pooled(rows: list[dict], n_key: str, frac_key: str) -> float:
    n = np.array([r[n_key] for r in rows], dtype=float)
    matched = np.round(n * np.array([r[frac_key] for r in rows]))
    return round(float(matched.sum() / n.sum()), 3)


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _xtal(*args: str, output: Path) -> None:
    """Run one xtal CLI command (niced like the bench itself), failing loudly; its CPU time is
    kept beside *output* (``.cpu``) so that reused files still count in the reported cost."""
    cmd = ["nice", "-n", "10", *XTAL, *args, "-o", str(output), "-q"]
    print("$ " + " ".join(cmd[3:]), file=sys.stderr, flush=True)
    before = _cpu_children()
    subprocess.run(cmd, check=True, cwd=Path(__file__).resolve().parents[1])
    Path(f"{output}.cpu").write_text(f"{_cpu_children() - before:.1f}\n")


def _cpu_of(path: Path) -> float | None:
    sidecar = Path(f"{path}.cpu")
    return float(sidecar.read_text()) if sidecar.exists() else None


def structure_source(shared: Path, n: int | None) -> tuple[Path, str]:
    """The MP CSV, or a reproducible random subset of *n* rows of it (in bench/work)."""
    full = shared / "mp_structures.csv.gz"
    if not n:
        return full, "mp_all"
    import pandas as pd

    path = WORK / f"mp_subset{n}.csv.gz"
    if not path.exists():
        df = pd.read_csv(full)
        df.sample(min(n, len(df)), random_state=0).to_csv(path, index=False)
    return path, f"mp_subset{n}"


# Bumped when the peak picker or the features change, so that old feature files are not reused.
FEATURES_REVISION = "pk2"


def augment_digest() -> str:
    """The augmentation ranges, hashed into the work-file names: changing them never reuses
    old files."""
    import hashlib

    from xtal_cli.xrd.augment import settings_dict

    return hashlib.sha1(json.dumps(settings_dict(), sort_keys=True).encode()).hexdigest()[:8]


def augmented_features(
    source: Path, tag: str, copies: int, indexing: str = "none", jobs: int = 1
) -> tuple[list[Path], Path]:
    """Simulate (``--augment``, seed k) and featurize each copy; also sticks features of copy 0."""
    tag = f"{tag}_{augment_digest()}"
    profiles = []
    suffix = (
        f"_{FEATURES_REVISION}" + {"none": "", "systems": "_idx", "lattices": "_lat2"}[indexing]
    )
    extra = {"none": [], "systems": ["--indexing"], "lattices": ["--lattices"]}[indexing]
    extra = extra + ["-j", str(jobs)]
    for k in range(copies):
        pat = WORK / f"{tag}_aug_s{k}.h5"
        if not pat.exists():
            _xtal("simulate", str(source), "--augment", "--seed", str(k), "--resume",
                  "-j", str(jobs), output=pat)  # fmt: skip
        feat = WORK / f"{tag}_aug_s{k}_features{suffix}.h5"
        if not feat.exists():
            _xtal("featurize", str(pat), "--source", "profile", *extra, output=feat)
        profiles.append(feat)
    sticks = WORK / f"{tag}_sticks_features{suffix}.h5"
    if not sticks.exists():  # the sticks stored with the copy-0 profiles: the same structures
        _xtal("featurize", str(WORK / f"{tag}_aug_s0.h5"), *extra, output=sticks)
    cost = {}
    for k in range(copies):
        for stage, path in (("simulate", f"{tag}_aug_s{k}.h5"), ("featurize", profiles[k].name)):
            cost[f"{stage}_copy{k}"] = _cpu_of(WORK / path)
    cost["featurize_sticks"] = _cpu_of(sticks)
    return profiles, sticks, cost


def concat_features(paths: list[Path]):
    from xtal_cli.symmetry.features import read_features

    sets = [read_features(p) for p in paths]
    first = sets[0]
    first.ids = [f"{i}#{k}" for k, fs in enumerate(sets) for i in fs.ids]
    first.X = np.concatenate([fs.X for fs in sets])
    first.n_found = np.concatenate([fs.n_found for fs in sets])
    first.coverage = np.concatenate([fs.coverage for fs in sets])
    first.labels = {k: np.concatenate([fs.labels[k] for fs in sets]) for k in first.labels}
    first.meta = {}
    return first


def _with_columns(fs, X: np.ndarray, **settings):
    """The same rows as *fs* with feature matrix *X* and the settings changed to describe it."""
    import copy
    import dataclasses

    out = copy.copy(fs)
    out.settings = dataclasses.replace(fs.settings, **settings)
    out.X = X
    assert X.shape[1] == out.settings.n_features
    return out


def without_indexing(fs):
    """The same rows with the indexing columns dropped (the published features only)."""
    start = fs.settings.n_peaks + 1
    return _with_columns(fs, fs.X[:, :start], indexing=False, lattices=False)


def systems_only(fs):
    """The same rows with the per-lattice scores folded to one per system (best centring)."""
    from xtal_cli.symmetry.indexing import fold_to_systems

    start = fs.settings.n_peaks + 1
    X = np.column_stack([fs.X[:, :start], fold_to_systems(fs.X[:, start:])])
    return _with_columns(fs, X, lattices=False)


def train_model(fs, trees: int, jobs: int, params: dict):
    """Extra-trees on *fs*; held out: 10 % of the formulas (copies of a structure together)."""
    from xtal_cli.symmetry.train import TrainOptions, train_symmetry

    opts = TrainOptions(
        params={"n_estimators": trees, **params},
        n_jobs=jobs,
        permutation=False,
        test_size=0.1,
        split="group",
        group_by="formula",
    )
    model, report = train_symmetry(fs, opts, log=lambda m: None)
    held = report["metrics"]
    return model, {
        "n_rows": len(fs),
        "held_out_crystal_system_acc": round(held["crystal_system"]["accuracy"], 3),
        "held_out_space_group_top1": round(held["space_group"]["top1"], 3),
        "held_out_space_group_top10": round(held["space_group"]["top10"], 3),
    }


def true_labels(cifs: list[Path]) -> dict[str, tuple[int, str]]:
    from pymatgen.core import Structure

    from xtal_cli.xrd.labels import symmetry_labels

    out = {}
    for cif in cifs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lab = symmetry_labels(Structure.from_file(cif), 0.1)
        out[cif.name] = (lab["space_group"], lab["crystal_system"])
    return out


def ranks(model, X: np.ndarray) -> tuple[list[list[str]], list[list[int]]]:
    """Full ranking (best first) of crystal systems and space groups for each row."""
    rows = model.rank(X, top=1000)
    return [[c for c, _ in cs] for cs, _ in rows], [[int(n) for n, _, _ in sg] for _, sg in rows]


def rank_of(truth: set, ranking: list) -> int | None:
    """1-based rank of the best-ranked true label; None if the model never saw any of them."""
    hits = [ranking.index(t) + 1 for t in truth if t in ranking]
    return min(hits) if hits else None


def symmetry_eval(shared: Path, picks: list[dict], n: int | None, copies: int, trees: int,
                  jobs: int, params: dict, sticks_all: Path | None,
                  indexing: str = "none") -> dict:  # fmt: skip
    from xtal_cli.symmetry.features import featurize_scans, read_features, read_scan_with

    t_wall, cpu0 = time.perf_counter(), _cpu_self() + _cpu_children()
    source, tag = structure_source(shared, n)
    profile_paths, sticks_path, file_cpu = augmented_features(source, tag, copies, indexing, jobs)
    cpu_sim = _cpu_self() + _cpu_children() - cpu0
    models, info = {}, {}
    t0 = _cpu_self()
    sticks_fs, aug_fs = read_features(sticks_path), concat_features(profile_paths)
    models["sticks"], info["sticks"] = train_model(sticks_fs, trees, jobs, params)
    models["augmented"], info["augmented"] = train_model(aug_fs, trees, jobs, params)
    if indexing != "none":  # the same rows without the indexing columns: what do they add?
        for key, fs in (("sticks_plain", sticks_fs), ("augmented_plain", aug_fs)):
            models[key], info[key] = train_model(without_indexing(fs), trees, jobs, params)
    if indexing == "lattices":  # and with one score per system: what does the centring add?
        for key, fs in (("sticks_systems", sticks_fs), ("augmented_systems", aug_fs)):
            models[key], info[key] = train_model(systems_only(fs), trees, jobs, params)
    if sticks_all is not None:  # reference: sticks of every MP structure (more data, no noise)
        models["sticks_all"], info["sticks_all"] = train_model(
            read_features(sticks_all), trees, jobs, params
        )
    cpu_train = _cpu_self() - t0

    rows = []
    identified = {r["scan"]: r["identified_by_peaks"] for r in picks}
    for name, scan_path, cifs in single_phase_scans(shared):
        labels = true_labels(cifs)
        strict = identified.get(scan_path.name, [])
        scan = read_scan_with(scan_path, "CuKa")  # the file's wavelengths win; else lab Cu Kα
        row = {
            "scan": scan_path.name,
            "phase": name,
            "true_space_groups": sorted({sg for sg, _ in labels.values()}),
            "true_crystal_systems": sorted({cs for _, cs in labels.values()}),
            "ambiguous": len({sg for sg, _ in labels.values()}) > 1,
            "identified_by_peaks": strict,
            "identified_space_groups": sorted({labels[c][0] for c in strict if c in labels}),
        }
        for key, model in models.items():
            fs = featurize_scans([scan], model.feature_settings_, ka2="auto")
            cs_rank, sg_rank = ranks(model, fs.X)
            cs_rank, sg_rank = cs_rank[0], sg_rank[0]
            row[f"{key}_n_peaks"] = int(fs.n_found[0])
            row[f"{key}_top_system"] = cs_rank[0]
            row[f"{key}_top_space_groups"] = sg_rank[:3]
            row[f"{key}_system_rank"] = rank_of(set(row["true_crystal_systems"]), cs_rank)
            row[f"{key}_space_group_rank"] = rank_of(set(row["true_space_groups"]), sg_rank)
            strict_sg = set(row["identified_space_groups"])
            strict_cs = {labels[c][1] for c in strict if c in labels}
            row[f"{key}_system_rank_identified"] = rank_of(strict_cs, cs_rank)
            row[f"{key}_space_group_rank_identified"] = rank_of(strict_sg, sg_rank)
        rows.append(row)
        print({k: v for k, v in row.items() if "rank" in k or k == "scan"}, file=sys.stderr)

    def frac(key: str, k: int) -> float:
        vals = [r[key] for r in rows]
        return round(float(np.mean([v is not None and v <= k for v in vals])), 3)

    summary = {}
    for model in models:
        for suffix in ("", "_identified"):
            summary[f"{model}{suffix}"] = {
                "system_top1": frac(f"{model}_system_rank{suffix}", 1),
                "system_top2": frac(f"{model}_system_rank{suffix}", 2),
                "space_group_top1": frac(f"{model}_space_group_rank{suffix}", 1),
                "space_group_top5": frac(f"{model}_space_group_rank{suffix}", 5),
                "space_group_top10": frac(f"{model}_space_group_rank{suffix}", 10),
            }
    acceptance = {}
    for suffix, label in (("", "candidate_set"), ("_identified", "identified_by_peaks")):
        aug, st = summary[f"augmented{suffix}"], summary[f"sticks{suffix}"]
        acceptance[label] = {
            "system_first_more_often_than_sticks": aug["system_top1"] > st["system_top1"],
            "system_top2_at_least_80pct": aug["system_top2"] >= 0.8,
            "space_group_top10_at_least_60pct": aug["space_group_top10"] >= 0.6,
        }
    return {
        "structures": source.name if not n else f"random {n} of mp_structures.csv.gz",
        "augmented_copies": copies,
        "trees": trees,
        "indexing_features": indexing,
        "model_params": params,
        "sticks_all_features": str(sticks_all) if sticks_all else None,
        "training": info,
        "feature_settings": models["sticks"].feature_settings_.as_dict(),
        "summary": summary,
        "acceptance": acceptance,
        "cpu_s": {
            "files_when_made": file_cpu,
            "simulate_and_featurize_this_run": round(cpu_sim, 1),
            "train_models": round(cpu_train, 1),
            "total_this_run": round(_cpu_self() + _cpu_children() - cpu0, 1),
        },
        "wall_s": round(time.perf_counter() - t_wall, 1),
        "per_scan": rows,
    }


CUTS = ((5.0, 65.0), (10.0, 80.0), (20.0, 100.0))


def _cut(scan, lo: float, hi: float):
    """The part of *scan* within 2θ lo–hi, or None when the scan stops before *hi* (the cut
    would not shorten it) or starts above *lo* + 5° (it would not be that window)."""
    import dataclasses

    tt = scan.two_theta
    if tt[-1] < hi - 0.5 or tt[0] > lo + 5.0:
        return None
    keep = (tt >= lo) & (tt <= hi)
    sigma = scan.sigma[keep] if scan.sigma is not None else None
    return dataclasses.replace(scan, two_theta=tt[keep], counts=scan.counts[keep], sigma=sigma)


def _ranked(model, scan) -> tuple[list[str], list[int], dict]:
    pred = model.predict(scan, top=1000)[0]
    if pred.error:
        raise RuntimeError(pred.error)
    info = {"p_top": round(pred.crystal_systems[0][1], 3), "warnings": pred.warnings}
    return [c for c, _ in pred.crystal_systems], [n for n, _, _ in pred.space_groups], info


def held_out_eval(model, data_dir: Path, seeds: tuple[int, ...]) -> dict | None:
    """The bundle's held-out formulas, re-drawn from the training files with several window
    seeds: crystal system, space group top-1/top-10 and ECE per seed (None without the files)."""
    from xtal_cli.symmetry.metrics import top_k_accuracy
    from xtal_cli.symmetry.profile_model import (
        SYSTEMS,
        CNNTrainSettings,
        draw_windows,
        expected_calibration_error,
        load_profile_data,
        split_groups,
    )

    names = [src["file"] for src in model.training_.get("sources", [])]
    paths = [data_dir / n for n in names]
    if not names or not all(p.exists() for p in paths):
        return None
    settings = CNNTrainSettings(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in model.training_["settings"].items()})  # fmt: skip
    data = load_profile_data(paths, model.grid_)
    _, _, test = split_groups(data, settings.test_size, settings.val_fraction, settings.seed)
    y_cs = np.array([SYSTEMS.index(c) for c in data.crystal_system[test]])
    classes = list(model.classes_["space_group"])
    pos = {int(g): i for i, g in enumerate(classes)}
    y_sg = np.array([pos.get(int(g), len(classes)) for g in data.space_group[test]])
    rows = []
    for seed in seeds:
        w = draw_windows(np.random.default_rng([seed, 77]), data.bins[test], model.grid_, settings)
        proba = model.predict_proba(data.values[test], w)
        sg = np.concatenate([proba["space_group"], np.zeros((len(test), 1))], axis=1)
        ece_cs = expected_calibration_error(proba["crystal_system"], y_cs)
        rows.append({
            "window_seed": seed,
            "crystal_system": round(float(np.mean(proba["crystal_system"].argmax(1) == y_cs)), 4),
            "space_group_top1": round(top_k_accuracy(sg, y_sg, 1), 4),
            "space_group_top10": round(top_k_accuracy(sg, y_sg, 10), 4),
            "crystal_system_ece": round(ece_cs, 4),
            "space_group_ece": round(expected_calibration_error(sg, y_sg), 4),
        })  # fmt: skip
    keys = [k for k in rows[0] if k != "window_seed"]
    return {
        "n_patterns": int(len(test)),
        "formulas": int(len(np.unique(data.groups[test]))),
        "per_seed": rows,
        "mean": {k: round(float(np.mean([r[k] for r in rows])), 4) for k in keys},
        "min": {k: round(float(np.min([r[k] for r in rows])), 4) for k in keys},
    }


def builtin_eval(shared: Path, picks: list[dict], model_path: Path | None, data_dir: Path) -> dict:
    """The built-in (or given) symmetry model on the shared single-phase scans, full and cut to
    5–65°, 10–80° and 20–100°; the CLI's wall time for one file; batched throughput; held-out."""
    import os

    from xtal_cli.symmetry.features import read_scan_with
    from xtal_cli.symmetry.profile_model import builtin_model_path, load_symmetry_model

    path = model_path or builtin_model_path()
    model = load_symmetry_model(path)
    identified = {r["scan"]: r["identified_by_peaks"] for r in picks}
    rows, scans = [], []
    for name, scan_path, cifs in single_phase_scans(shared):
        labels = true_labels(cifs)
        truth_cs = {cs for _, cs in labels.values()}
        truth_sg = {sg for sg, _ in labels.values()}
        strict = [c for c in identified.get(scan_path.name, []) if c in labels]
        strict_cs = {labels[c][1] for c in strict}
        strict_sg = {labels[c][0] for c in strict}
        scan = read_scan_with(scan_path, "CuKa")
        scans.append(scan)
        row = {"scan": scan_path.name, "phase": name,
               "range": [round(float(scan.two_theta[0]), 2), round(float(scan.two_theta[-1]), 2)],
               "true_crystal_systems": sorted(truth_cs),
               "true_space_groups": sorted(truth_sg)}  # fmt: skip
        for key, lo_hi in [("full", None), *((f"{lo:g}-{hi:g}", (lo, hi)) for lo, hi in CUTS)]:
            part = scan if lo_hi is None else _cut(scan, *lo_hi)
            if part is None:
                row[key] = None
                continue
            cs, sg, info = _ranked(model, part)
            row[key] = {"top_system": cs[0], "system_rank": rank_of(truth_cs, cs),
                        "space_group_rank": rank_of(truth_sg, sg),
                        "system_rank_identified": rank_of(strict_cs, cs),
                        "space_group_rank_identified": rank_of(strict_sg, sg),
                        "top_space_groups": sg[:3], **info}  # fmt: skip
        rows.append(row)
        print({"scan": row["scan"], **{k: (v or {}).get("system_rank") for k, v in row.items()
                                       if k == "full" or "-" in k}}, file=sys.stderr)  # fmt: skip

    def count(key: str, field: str, k: int, among=None) -> int:
        return sum(1 for r in rows if r[key] is not None and (among is None or r[among])
                   and r[key][field] is not None and r[key][field] <= k)  # fmt: skip

    summary = {"scans": len(rows)}
    for suffix in ("", "_identified"):
        summary[f"system_top1{suffix}"] = count("full", f"system_rank{suffix}", 1)
        summary[f"system_top2{suffix}"] = count("full", f"system_rank{suffix}", 2)
        summary[f"space_group_top1{suffix}"] = count("full", f"space_group_rank{suffix}", 1)
        summary[f"space_group_top10{suffix}"] = count("full", f"space_group_rank{suffix}", 10)
    windows = {}
    for lo, hi in CUTS:
        key = f"{lo:g}-{hi:g}"
        covered = [r for r in rows if r[key] is not None]
        cut_first = sum(1 for r in covered if r[key]["system_rank"] == 1)
        full_first = sum(1 for r in covered if r["full"]["system_rank"] == 1)
        windows[key] = {"scans_covering": len(covered), "system_top1_cut": cut_first,
                        "system_top1_full": full_first,
                        "lost": full_first - cut_first}  # fmt: skip
    # speed: one file through the CLI (fresh process: imports, model load, read, answer)
    xtal = Path(sys.executable).with_name("xtal")
    y2o3 = Path(__file__).resolve().parents[1] / "xtal_cli/data/examples/Y2O3/Y2O3.xy"
    cmd = [str(xtal), "predict-symmetry", *([str(path)] if model_path else []), str(y2o3),
           "--wavelength", "CuKa", "--format", "json"]  # fmt: skip
    walls = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
    # batched: the 13 scans repeated to 2,000 (read once; resampling and network timed)
    batch = [scans[i % len(scans)] for i in range(2000)]
    model.predict(batch[:50])
    t0 = time.perf_counter()
    model.predict(batch)
    per_s = len(batch) / (time.perf_counter() - t0)
    import torch

    return {
        "model": str(path),
        "model_bytes": path.stat().st_size,
        "bundle_metrics": model.metrics_,
        "bundle_training": {k: v for k, v in model.training_.items() if k != "history"},
        "summary": summary,
        "windows": windows,
        "acceptance": {
            "system_top1_at_least_11": summary["system_top1"] >= 11,
            "system_top2_all_13": summary["system_top2"] == summary["scans"] == 13,
            "space_group_top10_at_least_10": summary["space_group_top10"] >= 10,
            "each_cut_loses_at_most_one": all(w["lost"] <= 1 for w in windows.values()),
            "cli_one_file_under_3s": float(np.median(walls)) < 3.0,
            "batched_at_least_1000_per_s": per_s >= 1000,
            "bundle_at_most_25MB": path.stat().st_size <= 25e6,
        },
        "speed": {
            "cli_one_file_wall_s": [round(w, 2) for w in walls],
            "cli_one_file_median_s": round(float(np.median(walls)), 2),
            "batched_scans_per_s": round(per_s, 1),
            "batch": len(batch),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
        },  # fmt: skip
        "held_out": held_out_eval(model, data_dir, (0, 1, 2)),
        "per_scan": rows,
    }


def featurize_jobs(n: int, jobs: int) -> dict:
    """Featurize the first *n* profiles of augmented copy 0 (``--source profile --indexing``)
    with 1 and with *jobs* workers in the same run: the same rows, and the speed ratio."""
    import dataclasses
    import os

    from xtal_cli.io.h5 import read_patterns
    from xtal_cli.symmetry.features import featurize_patterns

    full = read_patterns(WORK / f"mp_all_{augment_digest()}_aug_s0.h5", structures=False)

    def head(m: int):
        """The first *m* patterns (what featurizing profiles reads)."""
        cut = slice(0, m)
        return dataclasses.replace(
            full, ids=full.ids[cut], labels={k: v[cut] for k, v in full.labels.items()},
            meta={k: v[cut] for k, v in full.meta.items()}, profiles=full.profiles[cut],
            extra={k: v[cut] for k, v in full.extra.items()}, failures=[],
        )  # fmt: skip

    featurize_patterns(head(5), source="profile", indexing=True)  # numba cache, imports
    ps = head(n)
    out, rows = {"profiles": len(ps), "jobs": jobs, "cpu_count": os.cpu_count()}, {}
    for j in (1, jobs):
        t0 = time.perf_counter()
        rows[j] = featurize_patterns(ps, source="profile", indexing=True, n_jobs=j)
        out[f"s_j{j}"] = round(time.perf_counter() - t0, 2)
    out["same_rows"] = bool(np.array_equal(rows[1].X, rows[jobs].X))
    out["speedup"] = round(out["s_j1"] / out[f"s_j{jobs}"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symmetry", action="store_true", help="also the symmetry-model comparison")
    ap.add_argument("--structures", type=int, default=0, help="random MP subset (0 = all)")
    ap.add_argument("--copies", type=int, default=2, help="augmented copies per structure")
    ap.add_argument("--trees", type=int, default=300, help="extra-trees per model")
    ap.add_argument("--param", action="append", default=[], help="extra-trees KEY=VALUE")
    ap.add_argument("--sticks-all", type=Path, help="features/1 of all MP sticks (extra model)")
    ap.add_argument(
        "--indexing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="features with indexing scores (and the same models without them)",
    )
    ap.add_argument(
        "--lattices",
        action="store_true",
        help="indexing scores per Bravais lattice (and the same models with one per system)",
    )
    ap.add_argument(
        "--featurize-jobs",
        type=int,
        default=0,
        metavar="N",
        help="also time featurize -j 1 against -j J on N augmented profiles (copy 0)",
    )
    ap.add_argument(
        "--builtin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="score the built-in symmetry model (or --model) on the scans, cut windows, speed",
    )
    ap.add_argument("--model", type=Path, help="a symmetry model file instead of the built-in")
    ap.add_argument(
        "--model-data",
        type=Path,
        default=Path("build/model"),
        help="folder with the model's training patterns files (held-out re-scoring)",
    )
    ap.add_argument("-j", "--jobs", type=int, default=1)
    ap.add_argument("--name", default="measured", help="results file name in bench/results")
    args = ap.parse_args()

    shared = require_shared()
    WORK.mkdir(parents=True, exist_ok=True)
    section, picks = peak_picking(shared)
    result = {"peak_picking": section}
    previous = RESULTS / f"{args.name}.json"
    if args.symmetry:
        result["symmetry"] = symmetry_eval(
            shared, picks, args.structures or None, args.copies, args.trees, args.jobs,
            {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)},
            args.sticks_all,
            "lattices" if args.lattices else ("systems" if args.indexing else "none"),
        )  # fmt: skip
    if args.builtin:
        result["builtin_model"] = builtin_eval(shared, picks, args.model, args.model_data)
    if args.featurize_jobs:
        result["featurize_jobs"] = featurize_jobs(args.featurize_jobs, max(args.jobs, 2))
    if previous.exists():  # keep what this run did not redo (last comparison, variants tried)
        old = json.loads(previous.read_text())
        for key, value in old.items():
            if key not in result and key not in ("benchmark", "date", "machine"):
                result[key] = value
    write_result(args.name, result)


if __name__ == "__main__":
    main()
