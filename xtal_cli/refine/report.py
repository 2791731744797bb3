"""Outputs of a refinement: refined CIF, report JSON, trials CSV, Rietveld/history/MDS plots.

Every file is written atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from xtal_cli.io.h5 import atomic_path


def atomic_write(path: Path, text: str) -> None:
    """Write *text* to *path* through a temporary file and a rename: never half a file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _atomic_fig(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")


def with_esd(value: float, esd: float | None) -> str:
    """CIF number with its standard uncertainty in parentheses, e.g. 10.6028(1)."""
    if not esd or not math.isfinite(esd) or esd <= 0:
        return f"{value:.6f}"
    digits = max(
        0,
        -int(math.floor(math.log10(esd)))
        + (1 if esd < 2 * 10 ** math.floor(math.log10(esd)) else 0),
    )
    digits = min(digits, 8)
    unc = int(round(esd * 10**digits))
    return f"{value:.{digits}f}({unc})"


def _symop_string(R, t) -> str:
    out = []
    for row, tr in zip(np.asarray(R, dtype=int), t):
        terms = ""
        for coef, axis in zip(row, "xyz"):
            if coef == 1:
                terms += f"+{axis}"
            elif coef == -1:
                terms += f"-{axis}"
        terms = terms.lstrip("+")
        frac = float(tr) % 1.0
        if frac > 1e-6:
            from fractions import Fraction

            terms += f"+{Fraction(frac).limit_denominator(12)}"
        out.append(terms)
    return ", ".join(out)


def cif_text(
    phase,
    cell,
    sites,
    cell_esd=None,
    meta: dict | None = None,
    *,
    program: str = "refine-bbo",
    block: str | None = None,
) -> str:
    """A CIF of the refined structure in the setting of the input (symmetry operators listed);
    *program* names the xtal command in the header, *block* the data block (default: the
    phase's name with anything but letters, digits and ``._-`` replaced: CIF names have no
    spaces)."""
    import re

    cell_esd = cell_esd or (0,) * 6
    lines = [f"# refined by xtal {program} from {Path(phase.path).name}"]
    for k, v in (meta or {}).items():
        lines.append(f"# {k}: {v}")
    block = block or re.sub(r"[^A-Za-z0-9._-]+", "_", phase.name).strip("_") or "phase"
    lines += [f"data_{block}", ""]
    names = ("a", "b", "c", "alpha", "beta", "gamma")
    for i, n in enumerate(names):
        key = f"_cell_length_{n}" if i < 3 else f"_cell_angle_{n}"
        lines.append(f"{key:<30} {with_esd(cell[i], cell_esd[i])}")
    lines.append(f"_space_group_name_H-M_alt       '{phase.space_group}'")
    lines += ["", "loop_", "_space_group_symop_operation_xyz"]
    for R, t in zip(phase.rotations, phase.translations):
        lines.append(f"  '{_symop_string(R, t)}'")
    lines += [
        "",
        "loop_",
        "_atom_site_label",
        "_atom_site_type_symbol",
        "_atom_site_fract_x",
        "_atom_site_fract_y",
        "_atom_site_fract_z",
        "_atom_site_occupancy",
        "_atom_site_adp_type",
        "_atom_site_U_iso_or_equiv",
    ]
    for site, s in zip(phase.sites, sites):
        esd = s.get("xyz_esd", [0, 0, 0])
        coords = " ".join(with_esd(s["xyz"][k], esd[k]) for k in range(3))
        for label, (el, occ) in zip(site.labels, site.species):
            u = with_esd(s["uiso"], s.get("uiso_esd"))
            lines.append(f"  {label} {el} {coords} {occ:.4f} Uiso {u}")
    return "\n".join(lines) + "\n"


def write_cif(path, phase, cell, sites, cell_esd=None, meta=None) -> None:
    atomic_write(Path(path), cif_text(phase, cell, sites, cell_esd, meta))


def write_json(path, data: dict) -> None:
    atomic_write(Path(path), json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(obj):
    """Numpy values as numbers (io.jsonable); anything else a report holds as its text."""
    from xtal_cli.io.jsonable import json_default

    try:
        return json_default(obj)
    except TypeError:
        return str(obj)


def write_csv(path, frame) -> None:
    atomic_write(Path(path), frame.to_csv(index=False))


def plot_rietveld(path, model, title: str = "") -> None:
    """The Rietveld plot of a native :class:`engine.RietveldModel` (see :func:`plot_curves`)."""
    ybg, ypk = model.calc()
    x, yo = model.x, model.yobs[model.i0 : model.i1]
    plot_curves(path, x, yo, ybg + ypk, ybg, model.reflection_positions(), title)


TICK_COLOURS = ("tab:purple", "tab:orange", "tab:cyan", "tab:brown", "tab:pink", "tab:olive",
                "tab:gray", "black")  # fmt: skip


def plot_curves(path, x, yo, yc, ybg, ticks, title: str = "") -> None:
    """Observed (points), calculated (line), difference (below) and reflection ticks: drawn
    from arrays, so an engine without a native model (GSAS-II) gets the same plot.

    *ticks* is one array of positions, or ``{label: positions}`` for one labelled row per phase.
    """
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    fig = Figure(figsize=(10, 5.5))
    ax = fig.subplots()
    ax.plot(x, yo, "+", ms=3, color="tab:blue", label="observed")
    ax.plot(x, yc, "-", lw=0.8, color="tab:red", label="calculated")
    ax.plot(x, ybg, "-", lw=0.6, color="tab:green", label="background")
    span = float(yo.max() - min(yo.min(), 0))
    rows = dict(ticks) if isinstance(ticks, dict) else {"reflections": ticks}
    off = -(0.07 + 0.05 * len(rows)) * span
    ax.plot(x, yo - yc + off, "-", lw=0.6, color="0.3", label="difference")
    half = 0.006 * span if len(rows) == 1 else 0.015 * span
    for k, (label, pos) in enumerate(rows.items()):
        centre, colour = -(0.06 + 0.05 * k) * span, TICK_COLOURS[k % len(TICK_COLOURS)]
        ax.vlines(pos, centre - half, centre + half, color=colour, lw=0.7, label=label)
        if len(rows) > 1:
            ax.text(x[-1], centre, f"{label} ", color=colour, fontsize=7, ha="right",
                    va="center", bbox={"fc": "white", "ec": "none", "pad": 0.5})  # fmt: skip
    ax.set_xlabel("2θ (degrees)")
    ax.set_ylabel("counts")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    _atomic_fig(fig, Path(path))


def plot_history(path, numbers, values, failed=(), reference: dict | None = None) -> None:
    """Rwp of every trial and the best so far (log scale), failed trials marked at the top."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    numbers, values = np.asarray(numbers), np.asarray(values, dtype=float)
    if len(values):
        order = np.argsort(numbers)
        n, v = numbers[order], values[order]
        ax.plot(n, v, "o", ms=3, color="tab:blue", alpha=0.6, label="trial Rwp")
        ax.step(n, np.minimum.accumulate(v), where="post", color="tab:red", label="best so far")
        ax.set_yscale("log")
        if len(failed):
            ax.plot(failed, [v.max()] * len(failed), "x", color="0.4", ms=4, label="failed")
    for name, val in (reference or {}).items():
        ax.axhline(val, ls="--", lw=0.8, color="0.5")
        ax.text(0, val, f" {name}", va="bottom", fontsize=8, color="0.3")
    ax.set_xlabel("trial")
    ax.set_ylabel("Rwp (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _atomic_fig(fig, Path(path))


def structure_distance(a: dict, b: dict, phase) -> float:
    """RMS distance (Å) between two refined structures: site positions (all orbit members,
    periodic) plus the lattice difference, the same metric for every candidate."""
    from xtal_cli.refine.phases import metric

    G = metric(a["cell"])
    d2, n = 0.0, 0
    for site, sa, sb in zip(phase.sites, a["sites"], b["sites"]):
        pa = site.positions(np.array(sa["xyz"]))
        pb = site.positions(np.array(sb["xyz"]))
        diff = pa - pb
        diff -= np.round(diff)
        d2 += float(np.einsum("mi,ij,mj->", diff, G, diff))
        n += len(pa)
    cell = float(np.sum((np.array(a["cell"][:3]) - np.array(b["cell"][:3])) ** 2))
    return math.sqrt(d2 / max(n, 1) + cell)


def distinct_candidates(records: list[dict], phase, k: int, min_distance: float = 0.02):
    """The *k* best records (sorted by Rwp) whose structures differ by at least *min_distance* Å."""
    chosen: list[dict] = []
    for rec in sorted(records, key=lambda r: r["rwp"]):
        if all(structure_distance(rec, c, phase) >= min_distance for c in chosen):
            chosen.append(rec)
        if len(chosen) == k:
            break
    return chosen


def plot_mds(path, records: list[dict], chosen: list[dict], phase, seed: int = 0) -> None:
    """2-D MDS map of the best refined structures (structure distance), coloured by Rwp."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone
    from sklearn.manifold import MDS

    n = len(records)
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    if n >= 3:
        D = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                D[i, j] = D[j, i] = structure_distance(records[i], records[j], phase)
        import warnings

        with warnings.catch_warnings():  # sklearn's MDS API is mid-deprecation
            warnings.simplefilter("ignore", FutureWarning)
            xy = MDS(
                n_components=2, dissimilarity="precomputed", random_state=seed, n_init=4
            ).fit_transform(D)
        rwp = [r["rwp"] for r in records]
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=rwp, cmap="viridis_r", s=25)
        fig.colorbar(sc, ax=ax, label="Rwp (%)")
        ids = [r["trial"] for r in records]
        for rank, c in enumerate(chosen, 1):
            i = ids.index(c["trial"])
            ax.plot(xy[i, 0], xy[i, 1], "o", mfc="none", mec="tab:red", ms=12)
            ax.annotate(f"#{rank} (trial {c['trial']})", xy[i], fontsize=8, xytext=(5, 5),
                        textcoords="offset points")  # fmt: skip
    else:
        ax.text(0.5, 0.5, "fewer than 3 refined structures", ha="center", transform=ax.transAxes)
    ax.set_xlabel("MDS 1 (Å)")
    ax.set_ylabel("MDS 2 (Å)")
    ax.set_title("best refined structures (red: distinct candidates)")
    fig.tight_layout()
    _atomic_fig(fig, Path(path))
