"""Maintained libraries vs our own: do pybaselines and scikit-dimension give the same results?

- Backgrounds: ``xtal_cli.xrd.peaks.snip_background`` against ``pybaselines.smooth.snip``
  (decreasing window, the same log-log-sqrt transform, edge padding) and the sparse-solve
  asymmetric least squares xtal had (kept here as the reference) against
  ``pybaselines.whittaker.asls`` (the same λ, p and ten solves; now ``als_background``).
  Each is swapped into ``find_scan_peaks`` on the shared single-phase scans (Y2O3, DSMO,
  LiCoO2 and the xrd-autoanalyzer ones) and on tests/data/scans: the largest background
  difference relative to the strongest net peak, and whether the same peaks are picked.
- Intrinsic dimension: ``xtal_cli.embed.maps.intrinsic_dimension`` (components explaining a
  variance fraction) against ``skdim.id.lPCA(ver="ratio")`` with the same threshold, globally and
  on the same k-neighbourhoods, on synthetic sets of known dimension.

    nice -n 10 .venv/bin/python bench/bench_libraries.py           # ~4 min on 2 cores
    nice -n 10 .venv/bin/python bench/bench_libraries.py --quick   # without the 27k x 1024 set

Without ../shared/data the measured-scan part is skipped with a message; the rest still runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, shared_or_none, single_phase_scans, write_result  # noqa: E402

SAME_PEAK_DEG = 0.005  # a picked peak within this of the other's counts as the same


# ----------------------------------------------------------------------------- backgrounds


def lib_snip(y: np.ndarray, half_width: int, *, lls: bool = True) -> np.ndarray:
    """``snip_background`` done by pybaselines: the same transform, window and padding."""
    from pybaselines.smooth import snip

    y = np.asarray(y, dtype=float)
    hw = int(max(1, min(half_width, (len(y) - 1) // 2)))
    shift = min(0.0, float(y.min()))
    fwd = (lambda v: np.log(np.log(np.sqrt(v + 1) + 1) + 1)) if lls else (lambda v: v)
    back = (lambda v: (np.exp(np.exp(v) - 1) - 1) ** 2 - 1) if lls else (lambda v: v)
    return back(snip(fwd(y - shift), hw, decreasing=True, pad_kwargs={"mode": "edge"})[0]) + shift


def hand_written_als(y: np.ndarray, *, lam: float = 1e7, p: float = 0.01, iterations: int = 10):
    """The sparse-solve ``als_background`` xtal had before it used pybaselines (the reference)."""
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    y = np.asarray(y, dtype=float)
    n = len(y)
    d = sparse.diags([1.0, -2.0, 1.0], [0, -1, -2], shape=(n, n - 2))
    penalty = lam * d.dot(d.transpose())
    w = np.ones(n)
    z = y
    for _ in range(iterations):
        z = spsolve(sparse.csc_matrix(sparse.spdiags(w, 0, n, n) + penalty), w * y)
        w = p * (y > z) + (1 - p) * (y < z)
    return np.asarray(z)


def _peak_diff(a, b) -> dict:
    """How the peak lists *a* (ours) and *b* (library) differ."""
    if not len(a) or not len(b):
        return {"n_ours": len(a), "n_library": len(b), "n_same": 0}
    d = np.abs(a.two_theta[:, None] - b.two_theta[None, :])
    near = np.argmin(d, axis=1)
    same = d[np.arange(len(a)), near] <= SAME_PEAK_DEG
    top = max(a.height.max(), 1e-12)
    return {
        "n_ours": len(a),
        "n_library": len(b),
        "n_same": int(same.sum()),
        "max_shift_deg": round(float(d[np.arange(len(a)), near][same].max(initial=0.0)), 5),
        "max_height_change_rel": float(
            np.max(np.abs(a.height[same] - b.height[near[same]]), initial=0.0) / top
        ),
        "only_ours": [round(float(t), 3) for t in a.two_theta[~same]],
        "only_library": [round(float(t), 3) for t in np.delete(b.two_theta, np.unique(near[same]))],
    }


def compare_backgrounds(scans: list[tuple[str, Path]]) -> dict:
    """Hand-written ("ours") vs pybaselines ("library") inside ``find_scan_peaks``, per scan
    and method: the largest background difference relative to the strongest net peak, where it
    lies, whether the same peaks are picked, and the time of one background on the counts."""
    from xtal_cli.io.scans import read_scan
    from xtal_cli.xrd import peaks as peaks_mod

    # method: (function in xtal_cli.xrd.peaks, hand-written version, pybaselines version)
    swaps = {
        "snip": ("snip_background", peaks_mod.snip_background, lib_snip),
        "als": ("als_background", hand_written_als, peaks_mod.als_background),
    }
    out = {}
    for method, (name, ours_fn, lib_fn) in swaps.items():
        rows = []
        for label, path in scans:
            scan = read_scan(path)
            with mock.patch.object(peaks_mod, name, ours_fn):
                t0 = time.perf_counter()
                ours = peaks_mod.find_scan_peaks(scan, background=method)
                t_ours = time.perf_counter() - t0
            with mock.patch.object(peaks_mod, name, lib_fn):
                t0 = time.perf_counter()
                lib = peaks_mod.find_scan_peaks(scan, background=method)
                t_lib = time.perf_counter() - t0
            # the strongest net peak (the net signal's maximum where nothing was picked)
            top = float(ours.height.max()) if len(ours) else float(np.max(ours.stripped))
            top = max(top, 1e-12)
            dev = np.abs(ours.background - lib.background)
            # the background alone, timed on the raw counts (the picker calls it twice)
            y = np.asarray(scan.counts, dtype=float)
            args = (
                (y, int(round(1.5 / float(np.median(np.diff(scan.two_theta))))))
                if (method == "snip")
                else (y,)
            )
            times = {}
            for who, fn in (("ours", ours_fn), ("library", lib_fn)):
                fn(*args)  # imports, caches
                t0 = time.perf_counter()
                for _ in range(5):
                    fn(*args)
                times[who] = round(1000 * (time.perf_counter() - t0) / 5, 2)
            # away from the ends: farther than one SNIP window (1.5°) from the first/last point
            g = ours.grid
            inner = (g - g[0] > 1.5) & (g[-1] - g > 1.5)
            worst = int(np.argmax(dev))
            rows.append({
                "scan": label, "points": len(y),
                "max_background_diff_rel_peak": float(dev.max() / top),
                "max_background_diff_at_deg_from_end": round(
                    float(min(g[worst] - g[0], g[-1] - g[worst])), 3
                ),
                "max_background_diff_rel_peak_beyond_1p5deg_of_ends": (
                    float(dev[inner].max() / top) if inner.any() else None
                ),
                "same_peaks": bool(len(ours) == len(lib)
                                   and np.allclose(ours.two_theta, lib.two_theta, atol=1e-9)),
                **_peak_diff(ours, lib),
                "background_ms": times,
                "find_peaks_s": {"ours": round(t_ours, 3), "library": round(t_lib, 3)},
            })  # fmt: skip
            print(method, {k: rows[-1][k] for k in ("scan", "same_peaks", "n_ours", "n_library",
                  "max_background_diff_rel_peak")}, file=sys.stderr)  # fmt: skip
        worst = max(r["max_background_diff_rel_peak"] for r in rows)
        out[method] = {
            "scans": len(rows),
            "scans_same_peaks": sum(r["same_peaks"] for r in rows),
            "max_background_diff_rel_peak": worst,
            "max_background_diff_rel_peak_beyond_1p5deg_of_ends": max(
                r["max_background_diff_rel_peak_beyond_1p5deg_of_ends"] or 0.0 for r in rows
            ),
            "background_ms_median": {
                who: round(float(np.median([r["background_ms"][who] for r in rows])), 2)
                for who in ("ours", "library")
            },
            "per_scan": rows,
        }
    return out


# ----------------------------------------------------------------------------- intrinsic dim.


def synthetic_sets(seed: int = 0, large: bool = True) -> dict[str, tuple[np.ndarray, str]]:
    """Point sets of known dimension, with what is known about each; *large* adds one of the
    size of the MP embeddings (27,000 x 1024), where the time matters."""
    rng = np.random.default_rng(seed)

    def rotate(x, dim):
        q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        return np.pad(x, ((0, 0), (0, dim - x.shape[1]))) @ q

    low = rng.normal(size=(3000, 8)) * np.geomspace(1.0, 0.3, 8)
    t = 1.5 * np.pi * (1 + 2 * rng.random(3000))
    roll = np.column_stack([t * np.cos(t), 20 * rng.random(3000), t * np.sin(t)])
    sets = {
        "rank8_in_256": (rotate(low, 256) + 0.01 * rng.normal(size=(3000, 256)),
                         "8 linear directions + small noise"),
        "swiss_roll_in_128": (rotate(roll, 128) + 0.05 * rng.normal(size=(3000, 128)),
                              "a curved 2-D sheet in 3 linear dimensions"),
        "gaussian_64": (rng.normal(size=(2000, 64)), "isotropic noise: no low dimension"),
    }  # fmt: skip
    if large:
        big = rng.normal(size=(27000, 12)) * np.geomspace(1.0, 0.2, 12)
        q, _ = np.linalg.qr(rng.normal(size=(1024, 12)))
        sets["rank12_in_1024_27k"] = (
            (big @ q.T + 0.02 * rng.normal(size=(27000, 1024))).astype(np.float32),
            "12 linear directions + noise, the size of the MP embeddings",
        )
    return sets


def compare_intrinsic_dimension(k: int = 25, seed: int = 0, large: bool = True) -> dict:
    """Ours vs ``skdim.id.lPCA(ver="ratio")``: the same threshold, the same neighbourhoods."""
    from skdim.id import lPCA

    from xtal_cli.embed.maps import intrinsic_dimension
    from xtal_cli.embed.search import ExactIndex

    out = {}
    for name, (x, what) in synthetic_sets(seed, large).items():
        for threshold in (0.9,) if len(x) > 10000 else (0.9, 0.95):
            t0 = time.perf_counter()
            ours = intrinsic_dimension(x, k=k, threshold=threshold, seed=seed)
            t_ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            est = lPCA(ver="ratio", alphaRatio=threshold)
            lib_global = int(est.fit(x.astype(np.float64)).dimension_)
            # the points and neighbourhoods intrinsic_dimension uses (same seed, same index)
            points = np.random.default_rng(seed).choice(len(x), size=min(len(x), 5000),
                                                        replace=False)  # fmt: skip
            idx, _ = ExactIndex(x.astype(np.float32)).query(x[points], k + 1)
            local = est.fit_pw(x.astype(np.float64), precomputed_knn=idx[:, 1:],
                               n_neighbors=k).dimension_pw_  # fmt: skip
            t_lib = time.perf_counter() - t0
            lib = {
                "global": lib_global,
                "local_mean": float(np.mean(local)),
                "local_median": float(np.median(local)),
                "local_std": float(np.std(local)),
            }
            out[f"{name}@{threshold}"] = {
                "what": what,
                "ours": {key: ours[key] for key in lib},
                "library": lib,
                "same": all(np.isclose(ours[key], lib[key], rtol=1e-9) for key in lib),
                "seconds": {"ours": round(t_ours, 2), "library": round(t_lib, 2)},
            }
            print(name, threshold, out[f"{name}@{threshold}"]["same"], file=sys.stderr)
    return out


def main() -> None:
    import argparse

    import pybaselines
    import skdim

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 27,000 x 1024 set (~3 min)")
    args = ap.parse_args()

    shared = shared_or_none()
    scans = [(p.name, p) for p in sorted((REPO / "tests/data/scans").iterdir())]
    if shared is not None:
        scans = [(p.name, p) for _, p, _ in single_phase_scans(shared)] + scans
    result = {
        "libraries": {
            "pybaselines": pybaselines.__version__,
            "scikit-dimension": skdim.__version__,
        },
        "shared_scans": shared is not None,
        "background": compare_backgrounds(scans),
        "intrinsic_dimension": compare_intrinsic_dimension(large=not args.quick),
    }
    write_result("libraries", result)


if __name__ == "__main__":
    main()
