"""Benchmark of the structure/XRD embeddings on the shared Materials Project set (issue 4).

Steps: simulate Cu Kα profiles (10-110° 2θ, 0.02° steps) for the shared MP structures; train
train-embed on 80 % (the seeded validation split of 20 % is the test set: no model selection is
done on it); then, within the test set: XRD->structure and structure->XRD retrieval top-1/top-10;
k-NN (k = 10) regression of band gap and formation energy from the structure embedding (each
representation preprocessed as 5-fold CV on the train set prefers), against
a composition-only baseline (fraction-weighted element-property statistics, pymatgen) and a
hand-crafted structure descriptor (sorted eigenvalues of the sine Coulomb matrix, computed here)
on the same split; the 10 nearest neighbours of LiCoO2 (mp-22526) when present; training
throughput (pairs/s); query latency for the whole set and for 27k x 1024 embeddings.

    python bench/bench_embed.py            # acceptance run: all 27k structures, 2 h training budget
    python bench/bench_embed.py --quick    # ~2,000 structures, 10 min training budget

Training runs under a wall-clock budget (``--budget-min``, default 120; the cosine learning-rate
decay follows elapsed time, so the run ends decayed whatever the machine's load) with the
defaults of ``xtal train-embed``; an interrupted run continues from its checkpoint when the
command is repeated. The result file states whether the acceptance criteria are met.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, WORK, require_shared, write_result  # noqa: E402

PROPERTIES = ("band_gap", "formation_energy_per_atom")
ELEMENT_PROPS = ("Z", "X", "row", "group", "atomic_mass", "atomic_radius", "mendeleev_no")


def simulate(shared: Path, out: Path, n: int | None, seed: int, jobs: int) -> Path:
    from xtal_cli.io.structures import collect_items
    from xtal_cli.xrd.profile import ProfileSettings
    from xtal_cli.xrd.simulate import SimulationSettings, run_simulation

    items = collect_items([str(shared / "mp_structures.csv.gz")])
    if n is not None and n < len(items):
        pick = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
        items = [items[i] for i in pick]
    settings = SimulationSettings(
        wavelength=1.54184,
        wavelength_label="CuKa",
        two_theta_min=10,
        two_theta_max=110,
        profile=ProfileSettings(two_theta_min=10, two_theta_max=110, step=0.02, fwhm=0.1),
    )
    if not out.exists():
        run_simulation(items, settings, out, jobs=jobs, resume=True)
    return out


def composition_features(formulas) -> np.ndarray:
    """Fraction-weighted mean, std, min and max of element properties (composition only)."""
    import warnings

    from pymatgen.core import Composition

    cache: dict = {}
    rows = []
    for f in formulas:
        comp = Composition(f).fractional_composition
        els = list(comp)
        w = np.array([comp[e] for e in els])
        props = []
        for e in els:
            if e.symbol not in cache:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cache[e.symbol] = [float(getattr(e, p) or np.nan) for p in ELEMENT_PROPS]
            props.append(cache[e.symbol])
        p = np.nan_to_num(np.array(props))
        mean = w @ p
        std = np.sqrt(w @ (p - mean) ** 2)
        rows.append(np.concatenate([mean, std, p.min(0), p.max(0), [len(els)]]))
    return np.array(rows)


def sine_coulomb_eigenvalues(structures, size: int) -> np.ndarray:
    """Sorted eigenvalues of the sine Coulomb matrix (Faber et al. 2015), zero-padded."""
    out = np.zeros((len(structures), size))
    for k, s in enumerate(structures):
        z = np.array([site.specie.Z for site in s], dtype=float)
        frac = s.frac_coords
        lat = s.lattice.matrix
        diff = frac[:, None, :] - frac[None, :, :]
        arg = (np.sin(np.pi * diff) ** 2) @ lat
        dist = np.linalg.norm(arg, axis=2)
        with np.errstate(divide="ignore"):
            m = np.outer(z, z) / dist
        np.fill_diagonal(m, 0.5 * z**2.4)
        ev = np.sort(np.abs(np.linalg.eigvalsh(m)))[::-1][:size]
        out[k, : len(ev)] = ev
    return out


PREPROCESSING = ("raw", "l2", "standardised", "whitened-32", "whitened-64", "whitened-128")


def _prepare(train_x, test_x, how: str):
    """*how*: raw, l2 (unit rows), standardised (unit columns) or whitened-N (PCA whitening onto
    N components, fitted on the training rows: xtal_cli.embed.search.Whitening)."""
    from sklearn.preprocessing import StandardScaler, normalize

    if how == "l2":
        return normalize(train_x), normalize(test_x)
    if how == "standardised":
        sc = StandardScaler().fit(train_x)
        return sc.transform(train_x), sc.transform(test_x)
    if how.startswith("whitened-"):
        from xtal_cli.embed.search import Whitening

        w = Whitening(int(how.split("-")[1])).fit(train_x)
        return w.transform(train_x), w.transform(test_x)
    return train_x, test_x


def _knn_abs_errors(train_x, train_y, test_x, test_y, k: int, weights: str) -> np.ndarray:
    from sklearn.neighbors import KNeighborsRegressor

    model = KNeighborsRegressor(n_neighbors=k, weights=weights).fit(train_x, train_y)
    return np.abs(model.predict(test_x) - test_y)


def _knn_fit_mae(train_x, train_y, test_x, test_y, k: int, weights: str) -> float:
    return float(np.mean(_knn_abs_errors(train_x, train_y, test_x, test_y, k, weights)))


def knn_mae(train_x, train_y, test_x, test_y, k: int = 10, folds: int = 5, seed: int = 0) -> dict:
    """Test MAE of k-NN regression, the representation's preprocessing chosen on the train set.

    Every representation (embedding or baseline) gets the same procedure: raw, L2-normalised,
    standardised or PCA-whitened features (``PREPROCESSING``), whichever has the lowest
    *folds*-fold cross-validated MAE on the training items (uniform weights, the textbook k-NN);
    the test set is used once, for the chosen one. The distance-weighted variant with the same
    preprocessing is reported beside it.
    """
    from sklearn.model_selection import KFold

    ok_tr, ok_te = np.isfinite(train_y), np.isfinite(test_y)
    xtr, ytr, xte, yte = train_x[ok_tr], train_y[ok_tr], test_x[ok_te], test_y[ok_te]
    cv = {}
    for how in PREPROCESSING:
        errs = []
        for a, b in KFold(folds, shuffle=True, random_state=seed).split(xtr):
            pa, pb = _prepare(xtr[a], xtr[b], how)
            errs.append(_knn_fit_mae(pa, ytr[a], pb, ytr[b], k, "uniform"))
        cv[how] = float(np.mean(errs))
    best = min(cv, key=cv.get)
    ptr, pte = _prepare(xtr, xte, best)
    return {
        "mae": _knn_fit_mae(ptr, ytr, pte, yte, k, "uniform"),
        "preprocessing": best,
        "cv_mae": cv,
        "mae_distance_weighted": _knn_fit_mae(ptr, ytr, pte, yte, k, "distance"),
    }


def paired_difference(
    a_train,
    b_train,
    y_train,
    a_test,
    b_test,
    y_test,
    how_a: str = "standardised",
    how_b: str = "standardised",
    k: int = 10,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """MAE(a) − MAE(b) on the same test items (uniform k-NN, each representation preprocessed
    as *how_a* / *how_b*, the choices of :func:`knn_mae`) with a paired bootstrap 95 % interval:
    is representation *a* really better than *b*?"""
    ok_tr, ok_te = np.isfinite(y_train), np.isfinite(y_test)
    errs = []
    for xtr, xte, how in ((a_train, a_test, how_a), (b_train, b_test, how_b)):
        ptr, pte = _prepare(xtr[ok_tr], xte[ok_te], how)
        errs.append(_knn_abs_errors(ptr, y_train[ok_tr], pte, y_test[ok_te], k, "uniform"))
    diff = errs[0] - errs[1]
    rng = np.random.default_rng(seed)
    boots = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(n_boot)])
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {
        "mae_difference": float(diff.mean()),
        "ci95": [float(lo), float(hi)],
        "fraction_of_resamples_below_zero": float(np.mean(boots < 0)),
        "n_boot": n_boot,
    }


def latency(index, queries: np.ndarray, k: int = 10) -> dict:
    times = []
    for q in queries:
        t = time.perf_counter()
        index.query(q, k)
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~2,000 structures, a few epochs")
    ap.add_argument("--n", type=int, default=None, help="number of structures (default: all)")
    ap.add_argument("--epochs", type=int, default=None, help="cap (default: budget decides)")
    ap.add_argument("--budget-min", type=float, default=None, help="training minutes")
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n = args.n or (2000 if args.quick else None)
    epochs = args.epochs or 1000
    budget_min = args.budget_min or (10.0 if args.quick else 120.0)

    import os

    import torch

    torch.set_num_threads(os.cpu_count() or 1)

    from xtal_cli.embed.infer import load_model
    from xtal_cli.embed.loss import retrieval_topk
    from xtal_cli.embed.maps import intrinsic_dimension, plot_element_grid, plot_map, tsne_2d
    from xtal_cli.embed.search import ExactIndex, HnswIndex, Whitening
    from xtal_cli.embed.train import (
        TrainSettings,
        encode,
        load_payload,
        load_training_data,
        train_embed,
    )
    from xtal_cli.errors import XtalError
    from xtal_cli.io.h5 import read_patterns
    from xtal_cli.io.structures import structure_from_json

    shared = require_shared()
    tag = "quick" if args.quick else "full"
    work = WORK / f"embed-{tag}"
    name = "embed_quick" if args.quick else "embed"  # bench/results/<name>.json
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    patterns = simulate(shared, work / "patterns.h5", n, args.seed, args.jobs)
    t_sim = time.perf_counter() - t0

    model_dir = work / "model"
    settings = TrainSettings(
        epochs=epochs,
        batch_size=args.batch_size,
        val_fraction=0.2,
        seed=args.seed,
        device=args.device,
        workers=args.jobs,
        time_budget=budget_min * 60,
        eval_every=args.eval_every,
    )
    resume = (model_dir / "checkpoint.pt").exists()
    t0 = time.perf_counter()

    def train(resume: bool) -> dict:
        return train_embed(
            patterns,
            model_dir,
            settings,
            dim=args.dim,
            resume=resume,
            force=not resume,
            report=lambda ev, **kw: print(kw, file=sys.stderr) if ev == "epoch_end" else None,
        )

    try:
        summary = train(resume)
    except XtalError as exc:  # a checkpoint of another model version or other settings
        if not resume:
            raise
        print(f"cannot resume ({exc}); training from scratch", file=sys.stderr)
        summary = train(False)
    t_train = time.perf_counter() - t0
    ckpt = load_payload(model_dir / "checkpoint.pt", "a checkpoint", "train again")
    history = ckpt["history"]
    train_idx, test_idx = np.array(ckpt["train_idx"]), np.array(ckpt["val_idx"])

    emb = load_model(model_dir, "cpu")
    data, _ = load_training_data(patterns, model_dir / "graphs.h5")
    all_idx = np.arange(len(data.graphs))
    s_all, x_all = encode(emb.model, data.graphs, data.profiles, all_idx, emb.device)
    s_test, x_test = s_all[test_idx], x_all[test_idx]
    xs = retrieval_topk(x_test, s_test)
    sx = retrieval_topk(s_test, x_test)

    ps = read_patterns(patterns, sticks=False)
    row = {i: k for k, i in enumerate(ps.ids)}
    rows = np.array([row[i] for i in data.graphs.ids])
    formulas = ps.labels["formula"][rows]
    structures = [structure_from_json(ps.structures[r]) for r in rows]
    s_np = s_all.numpy()
    comp = composition_features(formulas)
    n_sites = max(len(s) for s in structures)
    scm = sine_coulomb_eigenvalues(structures, n_sites)
    knn = {}
    for prop in PROPERTIES:
        y = np.asarray(ps.meta[prop], dtype=float)[rows]
        tr, te = train_idx, test_idx
        knn[prop] = {
            "embedding": knn_mae(s_np[tr], y[tr], s_np[te], y[te], 10),
            "composition_baseline": knn_mae(comp[tr], y[tr], comp[te], y[te]),
            "sine_coulomb_eigenvalues": knn_mae(scm[tr], y[tr], scm[te], y[te]),
            "predict_train_mean": float(np.nanmean(np.abs(y[test_idx] - np.nanmean(y[train_idx])))),
        }

    y_gap = np.asarray(ps.meta["band_gap"], dtype=float)[rows]
    gap_vs_composition = paired_difference(
        s_np[train_idx], comp[train_idx], y_gap[train_idx],
        s_np[test_idx], comp[test_idx], y_gap[test_idx],
        how_a=knn["band_gap"]["embedding"]["preprocessing"],
        how_b=knn["band_gap"]["composition_baseline"]["preprocessing"],
    )  # fmt: skip

    ids = data.graphs.ids
    exact = ExactIndex(s_np)
    neighbours = {}
    if "mp-22526" in ids:
        q = ids.index("mp-22526")
        whitened = Whitening().fit_transform(s_np)
        for metric, index, space in (
            ("euclidean", exact, s_np),
            ("whitened", ExactIndex(whitened), whitened),
        ):
            idx, dist = index.query(space[q], 11)
            neighbours[metric] = [
                {"id": ids[i], "formula": str(formulas[i]), "distance": float(d)}
                for i, d in zip(idx[0], dist[0])
                if i != q
            ][:10]

    rng = np.random.default_rng(0)
    queries = s_np[rng.choice(len(s_np), 200)]
    lat_set = latency(exact, queries)
    synth = rng.normal(size=(27_000, 1024)).astype(np.float32)
    syn_q = synth[rng.choice(27_000, 200)] + 0.01
    lat_27k_exact = latency(ExactIndex(synth), syn_q)
    t = time.perf_counter()
    hnsw = HnswIndex.build(synth, threads=2)
    hnsw_build = time.perf_counter() - t
    lat_27k_hnsw = latency(hnsw, syn_q)

    xy = tsne_2d(s_np, seed=args.seed)
    figs = {}
    for color in ("band_gap", "crystal_system"):
        values = (
            np.asarray(ps.meta[color], float)[rows] if color in ps.meta else ps.labels[color][rows]
        )
        path = RESULTS / f"{name}_map_{color}.png"
        plot_map(xy, path, values=values, color_by=color)
        figs[color] = str(path.relative_to(RESULTS.parent.parent))
    grid = RESULTS / f"{name}_elements.png"
    plot_element_grid(xy, formulas, grid)
    figs["elements"] = str(grid.relative_to(RESULTS.parent.parent))

    last = history[-1]
    accept = {
        "xrd_to_structure_top10_ge_0.90": xs[10] >= 0.90,
        "band_gap_knn_better_than_composition": knn["band_gap"]["embedding"]["mae"]
        < knn["band_gap"]["composition_baseline"]["mae"],
        # the point estimate alone can be noise: is the whole 95 % interval below zero?
        "band_gap_better_significant": gap_vs_composition["ci95"][1] < 0,
        "test_set_ge_5000": len(test_idx) >= 5000,
        "train_minutes_le_120": sum(h["train_seconds"] for h in history) / 60 <= 120,
    }
    write_result(
        name,
        {
            "setting": {
                "structures": len(ids),
                "train": len(train_idx),
                "test": len(test_idx),
                "epochs": len(history),
                "steps": last.get("steps"),
                "budget_min": budget_min,
                "negatives": settings.negatives,
                "schedule": settings.schedule,
                "dim": args.dim,
                "batch_size": args.batch_size,
                "seed": args.seed,
                "device": summary["device"],
                "torch_threads": torch.get_num_threads(),
            },
            "retrieval_test": {
                "xrd_to_structure_top1": xs[1],
                "xrd_to_structure_top10": xs[10],
                "structure_to_xrd_top1": sx[1],
                "structure_to_xrd_top10": sx[10],
            },
            "knn10_mae_test": knn,
            "band_gap_embedding_minus_composition": gap_vs_composition,
            "licoo2_neighbours": neighbours or None,
            "training": {
                "pairs_per_s_median": float(np.median([h["pairs_per_s"] for h in history])),
                "train_seconds_total": float(sum(h["train_seconds"] for h in history)),
                "wall_seconds_this_run": t_train,
                "simulate_seconds": t_sim,
                "first_loss": history[0]["train_loss"],
                "last_loss": last["train_loss"],
                "last_val_loss": last.get("val_loss"),
                "elapsed_seconds": last.get("elapsed_seconds"),
                "curve_xrd_to_structure_top10": [
                    [h["elapsed_seconds"], h["val_xrd_to_structure_top10"]]
                    for h in history
                    if "val_xrd_to_structure_top10" in h
                ],
            },
            "acceptance": {**accept, "all": all(accept.values())},
            "query_latency": {
                f"exact_{len(ids)}x{args.dim}": lat_set,
                "exact_27000x1024": lat_27k_exact,
                "hnsw_27000x1024": {**lat_27k_hnsw, "build_s": hnsw_build},
            },
            "intrinsic_dimension": intrinsic_dimension(s_np, k=25, seed=args.seed),
            "figures": figs,
        },
    )


if __name__ == "__main__":
    main()
