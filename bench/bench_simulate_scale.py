"""bench/simulate_scale: ``xtal simulate`` at database scale (issue 17), whole processes, ratios.

Every figure compares against its reference in the same run:
(a) end to end, 500 shared structures (bench/bench_simulate.py's sample), ``-j 1``:
    ``--engine fast`` (gemmi reader, no pymatgen objects) against ``--engine pymatgen``, median of
    three runs each, with the in-process cost of each stage (reader, spglib labels, sticks) so
    the floor that spglib sets is a measured number;
(b) all 27,248 shared structures through both engines (``-j 2``): peaks, hkl, intensities,
    labels and structures compared on every structure; the CIFs the fast reader hands to
    pymatgen counted and listed; the fast run's wall time is the "whole set" figure;
(c) ``simulate --augment``: this code against the code before issue 17 (``BASELINE``, run from
    a ``git archive`` of that commit in the same environment) on the same 2,000 structures and
    seed: patterns per second and the largest profile difference;
(d) cost against size: 1k, 10k and 100k structures (the shared set replicated, ids made unique),
    wall and CPU time and peak memory (largest process), a linear fit extrapolated to 1M; the
    100k run also on a local dask cluster (2 processes), its file compared with loky's.

Usage: python bench/bench_simulate_scale.py [--skip-full] [--skip-scale] [--max-n 100000]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, WORK, require_shared, write_result  # noqa: E402

BASELINE = "c0b1ddd"  # main before issue 17: pymatgen parsing, whole-set lists in memory
PYTHON = str(REPO / ".venv" / "bin" / "python")
SEED = 6


def run(args: list[str], *, pythonpath: Path | None = None) -> dict:
    """Wall time, CPU time and peak RSS (largest process, GNU time) of ``xtal ARGS``; run from
    bench/work, so that ``python -m`` imports the tree on *pythonpath* (else this checkout)."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    fmt = "%e %U %S %M"
    out = WORK / "time.txt"
    t0 = time.perf_counter()
    subprocess.run(
        ["/usr/bin/time", "-o", str(out), "-f", fmt, PYTHON, "-m", "xtal_cli", "simulate", *args],
        check=True, env=env, stdout=subprocess.DEVNULL, cwd=WORK,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    _, user, sys_, rss = out.read_text().split()[-4:]
    return {"wall_s": wall, "cpu_s": float(user) + float(sys_), "peak_rss_mb": int(rss) / 1024}


def baseline_tree() -> Path:
    """The baseline commit's files, unpacked once into bench/work (not a worktree)."""
    dest = WORK / f"baseline-{BASELINE}"
    if not (dest / "xtal_cli").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        archive = WORK / "baseline.tar"
        subprocess.run(
            ["git", "-C", str(REPO), "archive", "-o", str(archive), BASELINE], check=True
        )
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
        archive.unlink()
    return dest


def write_csv(path: Path, rows) -> int:
    n = 0
    with gzip.open(path, "wt", newline="", compresslevel=1) as fh:
        w = csv.writer(fh)
        w.writerow(["material_id", "cif"])
        for mid, cif in rows:
            w.writerow([mid, cif])
            n += 1
    return n


def replicated(df, n: int):
    """*n* rows: the shared set repeated, ids suffixed by the copy (a stand-in for a database)."""
    ids, cifs = df["material_id"].tolist(), df["cif"].tolist()
    for k in range(n):
        copy, i = divmod(k, len(ids))
        yield (ids[i] if copy == 0 else f"{ids[i]}~{copy}", cifs[i])


# ----------------------------------------------------------------------------- comparisons


def compare_patterns(a_path: Path, b_path: Path) -> dict:
    from xtal_cli.io.h5 import read_patterns

    a, b = read_patterns(a_path), read_patterns(b_path)
    out = {"patterns": [len(a.ids), len(b.ids)], "same_ids": a.ids == b.ids}
    if not out["same_ids"]:
        return out
    label_mismatches = {}
    for name in a.labels:
        bad = np.flatnonzero(np.asarray(a.labels[name]) != np.asarray(b.labels[name]))
        if len(bad):
            label_mismatches[name] = [a.ids[i] for i in bad[:20]]
    count, hkl, dtt, di = [], [], 0.0, 0.0
    for k, (x, y) in enumerate(zip(a.sticks_two_theta, b.sticks_two_theta)):
        if len(x) != len(y):
            count.append(a.ids[k])
            continue
        if len(x):
            dtt = max(dtt, float(np.abs(x - y).max()))
            di = max(di, float(np.abs(a.sticks_intensity[k] - b.sticks_intensity[k]).max()) / 100)
        if not np.array_equal(a.sticks_hkl[k], b.sticks_hkl[k]):
            hkl.append(a.ids[k])
    structures = sum(json.loads(p) != json.loads(q) for p, q in zip(a.structures, b.structures))
    out.update(
        {
            "label_mismatches": label_mismatches,
            "max_abs_delta_lattice": float(np.abs(a.lattice - b.lattice).max()) if a.ids else 0,
            "peak_count_mismatches": count[:50],
            "hkl_mismatches": hkl[:50],
            "max_abs_delta_two_theta_deg": dtt,
            "max_rel_intensity_diff": di,
            "structure_json_mismatches": int(structures),
            "failures": [len(a.failures), len(b.failures)],
        }
    )
    out["identical"] = not (label_mismatches or count or hkl or structures) and dtt <= 1e-6
    return out


def compare_files(a_path: Path, b_path: Path) -> dict:
    """Every dataset of two HDF5 files, block by block (bounded memory)."""
    import h5py

    differ = []
    with h5py.File(a_path) as a, h5py.File(b_path) as b:
        names = []
        a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        other = []
        b.visititems(lambda n, o: other.append(n) if isinstance(o, h5py.Dataset) else None)
        for name in names:
            x, y = a[name], b[name]
            if x.shape != y.shape:
                differ.append(name)
                continue
            for s in range(0, x.shape[0] if x.ndim else 1, 50_000):
                sl = slice(s, s + 50_000) if x.ndim else ()
                if not np.array_equal(x[sl], y[sl]):
                    differ.append(name)
                    break
        attrs = {k for k in a.attrs if k not in ("created",) and a.attrs[k] != b.attrs.get(k)}
    return {
        "datasets": len(names), "same_dataset_names": sorted(names) == sorted(other),
        "differing_datasets": differ, "differing_attrs": sorted(attrs - {"backend"}),
        "identical": not differ and sorted(names) == sorted(other),
    }  # fmt: skip


def stage_costs(cifs: list[str]) -> dict:
    """In-process ms per structure of each stage of the fast path, and spglib's share."""
    from xtal_cli.io.fastcif import read_cif_arrays
    from xtal_cli.xrd.fast import sticks_from_arrays
    from xtal_cli.xrd.labels import cell_labels

    cells = [read_cif_arrays(c) for c in cifs[:5]]
    sticks_from_arrays(cells[0].matrix, *cells[0].scatterers(), 1.54056, (0, 90))  # JIT load
    t = {"reader": 0.0, "labels": 0.0, "sticks": 0.0, "structure_json": 0.0}
    for text in cifs:
        t0 = time.perf_counter()
        cell = read_cif_arrays(text)
        t1 = time.perf_counter()
        cell_labels(cell.matrix, cell.frac, cell.species_strings(), cell.reduced_formula())
        t2 = time.perf_counter()
        sticks_from_arrays(cell.matrix, *cell.scatterers(), 1.54056, (0, 90))
        t3 = time.perf_counter()
        json.dumps(cell.as_dict(), separators=(",", ":"))
        t4 = time.perf_counter()
        for k, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            t[k] += dt
    ms = {k: v / len(cifs) * 1e3 for k, v in t.items()}
    ms["labels_share"] = ms["labels"] / sum(v for k, v in ms.items() if k != "labels_share")
    return ms


# ----------------------------------------------------------------------------- parts


def end_to_end_500(df) -> dict:
    sub = df.sample(n=2000, random_state=SEED).head(500)
    csv_path = WORK / "scale_500.csv.gz"
    write_csv(csv_path, zip(sub["material_id"], sub["cif"]))
    res = {}
    for engine in ("fast", "pymatgen"):
        runs = [
            run(
                [
                    str(csv_path),
                    "-o",
                    str(WORK / f"s500_{engine}.h5"),
                    "--engine",
                    engine,
                    "-j",
                    "1",
                    "-q",
                ]
            )  # fmt: skip
            for _ in range(3)
        ]
        res[engine] = {
            "wall_s_median": float(np.median([r["wall_s"] for r in runs])),
            "runs": runs,
        }
    res["ratio_pymatgen_over_fast"] = (
        res["pymatgen"]["wall_s_median"] / res["fast"]["wall_s_median"]
    )
    res["same_output"] = compare_patterns(WORK / "s500_fast.h5", WORK / "s500_pymatgen.h5")
    res["stage_ms_per_structure"] = stage_costs(sub["cif"].tolist())
    spglib_s = res["stage_ms_per_structure"]["labels"] * 500 / 1e3
    res["spglib_labels_s"] = spglib_s
    res["ratio_bound_by_spglib_alone"] = res["pymatgen"]["wall_s_median"] / spglib_s
    res["meets_20x"] = res["ratio_pymatgen_over_fast"] >= 20
    return res


def full_set(data: Path) -> dict:
    out = {}
    for engine in ("fast", "pymatgen"):
        out[engine] = run([str(data), "-o", str(WORK / f"full_{engine}.h5"), "--engine", engine,
                           "-j", "2", "-q"])  # fmt: skip
    out["comparison"] = compare_patterns(WORK / "full_fast.h5", WORK / "full_pymatgen.h5")
    import h5py

    with h5py.File(WORK / "full_fast.h5") as h5:
        grp = h5["reader_fallbacks"]
        ids = grp["id"].asstr()[()].tolist()
        reasons = grp["reason"].asstr()[()].tolist()
    out["reader_fallbacks"] = {"count": len(ids), "list": [list(p) for p in zip(ids, reasons)]}
    out["whole_set_fast_j2_under_20_s"] = out["fast"]["wall_s"] < 20
    out["ratio_pymatgen_over_fast"] = out["pymatgen"]["wall_s"] / out["fast"]["wall_s"]
    for engine in ("fast", "pymatgen"):
        (WORK / f"full_{engine}.h5").unlink(missing_ok=True)
    return out


def augment(df, n: int = 2000) -> dict:
    sub = df.sample(n=n, random_state=SEED + 1)
    csv_path = WORK / f"scale_aug_{n}.csv.gz"
    write_csv(csv_path, zip(sub["material_id"], sub["cif"]))
    args = ["--augment", "--seed", "3", "-j", "1", "-q"]
    warm = WORK / "scale_aug_warm.csv.gz"  # both trees load (or first compile) their kernels
    write_csv(warm, zip(sub["material_id"][:5], sub["cif"][:5]))
    for tree in (None, baseline_tree()):
        run([str(warm), "-o", str(WORK / "aug_warm.h5"), *args], pythonpath=tree)
    new = run([str(csv_path), "-o", str(WORK / "aug_new.h5"), *args])
    old = run([str(csv_path), "-o", str(WORK / "aug_old.h5"), *args], pythonpath=baseline_tree())
    from xtal_cli.io.h5 import read_patterns

    a, b = read_patterns(WORK / "aug_new.h5"), read_patterns(WORK / "aug_old.h5")
    same = a.ids == b.ids
    return {
        "structures": n,
        "baseline_commit": BASELINE,
        "new": {**new, "patterns_per_s": len(a.ids) / new["wall_s"]},
        "baseline": {**old, "patterns_per_s": len(b.ids) / old["wall_s"]},
        "ratio_patterns_per_s": old["wall_s"] / new["wall_s"],
        "same_ids": same,
        "max_abs_profile_diff": float(np.abs(a.profiles - b.profiles).max()) if same else None,
        "same_augment_draws": bool(same and list(a.extra["augment"]) == list(b.extra["augment"])),
    }


def scaling(df, sizes: list[int]) -> dict:
    rows = {}
    for n in sizes:
        path = WORK / f"scale_{n}.csv.gz"
        if not path.exists():
            write_csv(path, replicated(df, n))
        out = WORK / f"scale_{n}_loky.h5"
        rows[n] = {**run([str(path), "-o", str(out), "-j", "2", "-q"]), "structures": n}
        rows[n]["patterns_per_s"] = n / rows[n]["wall_s"]
    big = max(sizes)
    dask = run([str(WORK / f"scale_{big}.csv.gz"), "-o", str(WORK / f"scale_{big}_dask.h5"),
                "-j", "2", "-q", "--backend", "dask"])  # fmt: skip
    same = compare_files(WORK / f"scale_{big}_loky.h5", WORK / f"scale_{big}_dask.h5")
    ns = np.array(sorted(rows), dtype=float)
    walls = np.array([rows[int(n)]["wall_s"] for n in ns])
    slope, intercept = np.polyfit(ns, walls, 1)
    mem = [rows[n]["peak_rss_mb"] for n in sorted(rows)]
    res = {
        "runs": {str(n): rows[n] for n in sorted(rows)},
        "linear_fit_wall_s": {"per_structure_ms": slope * 1e3, "fixed_s": intercept},
        "extrapolated_1M_wall_s_j2": slope * 1e6 + intercept,
        "peak_rss_ratio_largest_over_10k": mem[-1] / rows[10_000]["peak_rss_mb"]
        if 10_000 in rows
        else None,
        "dask_local_cluster": {**dask, "structures": big, "same_file_as_loky": same},
    }
    if res["peak_rss_ratio_largest_over_10k"] is not None:
        res["memory_flat_within_20_percent"] = res["peak_rss_ratio_largest_over_10k"] <= 1.2
    for n in sizes:
        (WORK / f"scale_{n}_loky.h5").unlink(missing_ok=True)
    (WORK / f"scale_{big}_dask.h5").unlink(missing_ok=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-full", action="store_true", help="skip (b), the 27,248 comparison")
    ap.add_argument("--skip-scale", action="store_true", help="skip (d), the 1k-100k runs")
    ap.add_argument("--max-n", type=int, default=100_000, help="largest size of (d)")
    ap.add_argument("--only", choices=("e2e", "full", "augment", "scale"), default=None)
    opts = ap.parse_args()
    import pandas as pd

    data = require_shared() / "mp_structures.csv.gz"
    WORK.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(data)
    result = {"load_average_at_start": list(os.getloadavg())}
    t0 = time.perf_counter()
    parts = {
        "end_to_end_500_j1": lambda: end_to_end_500(df),
        "full_shared_set_j2": lambda: full_set(data),
        "augment_vs_baseline": lambda: augment(df),
        "scaling": lambda: scaling(df, [s for s in (1_000, 10_000, 100_000) if s <= opts.max_n]),
    }
    keys = {"e2e": "end_to_end_500_j1", "full": "full_shared_set_j2",
            "augment": "augment_vs_baseline", "scale": "scaling"}  # fmt: skip
    for name, fn in parts.items():
        if opts.only and keys[opts.only] != name:
            continue
        if (name == "full_shared_set_j2" and opts.skip_full) or (
            name == "scaling" and opts.skip_scale
        ):
            continue
        print(f"bench simulate_scale: {name}", file=sys.stderr, flush=True)
        result[name] = fn()
    result["bench_wall_s"] = time.perf_counter() - t0
    result["load_average_at_end"] = list(os.getloadavg())
    write_result("simulate_scale" + (f"_{opts.only}" if opts.only else ""), result)


if __name__ == "__main__":
    main()
