"""bench/lineshape: augmented profiles through the compiled line-shape kernel (issue 19).

``xtal simulate --augment`` used to draw its pseudo-Voigts with a Python loop over peaks (numpy
slices, ~10 µs overhead a peak); :func:`xtal_cli.xrd.augment.augmented_profile` now calls the
shared compiled kernel of :mod:`xtal_cli.xrd.lineshape` (per-peak η, ±20 FWHM window). On the
built-in mp-sample structures (no ../shared needed; sticks and draws made before timing, one fixed
seed), this times, in one run and alternating, ``augmented_profile`` with the old loop
(:func:`reference_python_loop`, kept here as the reference) and as it is, and reports min and
median over the repeats, the speed-up and the largest deviation (max |Δ| / max, float32 output);
``renderer_only`` times the two renderers alone on the peak lists augmented_profile hands them.
Since issue 17 augmented_profile is one fused kernel (bench/bench_augment.py); this bench times
its numpy reference, :func:`~xtal_cli.xrd.augment.augmented_profile_reference`, which still calls
the pseudo-Voigt sum compared here.

Usage: python bench/bench_lineshape.py [--n 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

WAVELENGTH = 1.54056  # Cu Kα1, the xtal simulate default
SEED = 19


def reference_python_loop(grid, centers, areas, fwhm, eta, window) -> np.ndarray:
    """The augmentation renderer before issue 19: a Python loop over peaks (per-peak η)."""
    ln2 = np.log(2.0)
    out = np.zeros_like(grid)
    lo = np.searchsorted(grid, centers - window * fwhm)
    hi = np.searchsorted(grid, centers + window * fwhm)
    for c, a, f, e, i, j in zip(centers, areas, fwhm, eta, lo, hi):
        if j <= i:
            continue
        x = (grid[i:j] - c) / (f / 2.0)
        gauss = np.sqrt(ln2 / np.pi) / (f / 2.0) * np.exp(-ln2 * x * x)
        lorentz = 1.0 / (np.pi * (f / 2.0) * (1.0 + x * x))
        out[i:j] += a * (e * lorentz + (1.0 - e) * gauss)
    return out


@contextlib.contextmanager
def renderer(fn):
    """Run :func:`augmented_profile_reference` with *fn* in place of the compiled pseudo-Voigt
    sum."""
    from xtal_cli.xrd import augment

    keep = augment.pseudo_voigt_sum
    augment.pseudo_voigt_sum = fn
    try:
        yield
    finally:
        augment.pseudo_voigt_sum = keep


def _inputs(n: int):
    from xtal_cli.io.structures import collect_items, load_structure
    from xtal_cli.xrd.augment import draw_augmentation
    from xtal_cli.xrd.profile import ProfileSettings
    from xtal_cli.xrd.sticks import compute_sticks

    rng = np.random.default_rng(SEED)
    cases = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for item in collect_items([], ["mp-sample"], limit=n):
            s = load_structure(item)
            sticks = compute_sticks(s, WAVELENGTH, (0.0, 90.0))
            cases.append((sticks, s.lattice, draw_augmentation(rng, wavelength=WAVELENGTH)))
    return ProfileSettings().grid(), cases


def _render_all(grid, cases) -> tuple[float, list[np.ndarray]]:
    from xtal_cli.xrd.augment import augmented_profile_reference as render

    t0 = time.perf_counter()
    out = [render(st, grid, p, WAVELENGTH, lattice=lat) for st, lat, p in cases]
    return time.perf_counter() - t0, out


def _renderer_calls(grid, cases) -> list[tuple]:
    """The arguments augmented_profile hands its renderer, one tuple per pattern."""
    from xtal_cli.xrd.lineshape import pseudo_voigt_sum

    calls = []

    def record(*args):
        calls.append(args)
        return pseudo_voigt_sum(*args)

    with renderer(record):
        _render_all(grid, cases)
    return calls


def _time_renderer(fn, calls) -> float:
    t0 = time.perf_counter()
    for args in calls:
        fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="mp-sample structures (at most 1,000)")
    ap.add_argument("--repeats", type=int, default=5, help="timed passes of each renderer")
    opts = ap.parse_args()

    grid, cases = _inputs(opts.n)
    t0 = time.perf_counter()
    _render_all(grid, cases[:1])  # loads the compiled kernels (numba cache) or compiles them
    first_call_s = time.perf_counter() - t0
    t_ref, t_new = [], []
    for _ in range(opts.repeats):
        with renderer(reference_python_loop):
            dt, ref = _render_all(grid, cases)
        t_ref.append(dt)
        dt, new = _render_all(grid, cases)
        t_new.append(dt)
    from xtal_cli.xrd.lineshape import pseudo_voigt_sum

    calls = _renderer_calls(grid, cases)
    r_ref, r_new = [], []
    for _ in range(opts.repeats):
        r_ref.append(_time_renderer(reference_python_loop, calls))
        r_new.append(_time_renderer(pseudo_voigt_sum, calls))
    dev = max(
        float(np.abs(a.astype(float) - b).max() / max(float(np.abs(a).max()), 1e-30))
        for a, b in zip(ref, new)
    )
    n_peaks = sum(len(st.two_theta) for st, _, _ in cases)
    result = {
        "structures": len(cases),
        "sticks_total": n_peaks,
        "grid_points": int(grid.size),
        "repeats": opts.repeats,
        "reference_python_loop_s": {"min": round(min(t_ref), 3), "median": _median(t_ref)},
        "compiled_kernel_s": {"min": round(min(t_new), 4), "median": _median(t_new)},
        "ms_per_pattern": {
            "reference_python_loop": round(1e3 * min(t_ref) / len(cases), 3),
            "compiled_kernel": round(1e3 * min(t_new) / len(cases), 3),
        },
        "speedup": {
            "min_over_min": round(min(t_ref) / min(t_new), 2),
            "median_over_median": round(float(np.median(t_ref) / np.median(t_new)), 2),
        },
        "renderer_only": {
            "peaks_drawn": int(sum(len(args[1]) for args in calls)),
            "reference_python_loop_s": {"min": round(min(r_ref), 3), "median": _median(r_ref)},
            "compiled_kernel_s": {"min": round(min(r_new), 4), "median": _median(r_new)},
            "speedup_min_over_min": round(min(r_ref) / min(r_new), 2),
            "speedup_median_over_median": round(float(np.median(r_ref) / np.median(r_new)), 2),
        },
        "first_call_s": round(first_call_s, 3),
        "max_deviation_rel": dev,
        "identical_float32": int(sum(np.array_equal(a, b) for a, b in zip(ref, new))),
    }
    write_result("lineshape", result)


def _median(values) -> float:
    return round(float(np.median(values)), 4)


if __name__ == "__main__":
    main()
