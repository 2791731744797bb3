"""Optional torch path of the fast engine: structure factors of many structures per device call.

For very large batches on a GPU the structure-factor sum (reflections × atoms × elements) is the
part worth moving. The reciprocal points and their pymatgen ordering (numba, CPU) and the merge
into peaks (numba, CPU) are shared with :mod:`xtal_cli.xrd.fast`, so the result is the same
pattern; only |F|² is computed on the device, in float64, padded over a chunk of structures.
On a CPU the numba engine is faster; use this where a GPU is present.
"""

from __future__ import annotations

import math

import numpy as np

from xtal_cli.xrd.fast import (
    SCALED_INTENSITY_TOL,
    TWO_THETA_TOL,
    compact_rows,
    is_hexagonal,
    merge_reflections,
    reciprocal_points,
    reciprocal_rows,
    site_ustar,
)
from xtal_cli.xrd.reflections import Sticks
from xtal_cli.xrd.scattering import scatterers, scattering_table


def batch_sticks(
    structures,
    wavelength: float,
    two_theta_range: tuple[float, float] = (0.0, 90.0),
    device: str | None = None,
    max_elements: int = 2**23,
) -> list[Sticks | Exception]:
    """Sticks of every structure (or the exception it raised), |F|² on *device* (default: cuda
    when available, else cpu). *max_elements* bounds the padded (structures × reflections × atoms)
    block held at once."""
    import torch

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    min_r, max_r = (2 * math.sin(math.radians(t / 2)) / wavelength for t in two_theta_range)
    table = scattering_table()
    prepared: list[dict | Exception] = []
    for s in structures:
        try:
            prepared.append(_prepare(s, float(max_r), float(min_r), table))
        except Exception as exc:  # reported per structure, like the per-structure engines
            prepared.append(exc)

    intensities: dict[int, np.ndarray] = {}
    chunk: list[int] = []
    largest = 0  # padded block = len(chunk) × largest (reflections × atoms)
    for i, p in enumerate(prepared):
        if not isinstance(p, dict) or len(p["g"]) == 0:
            continue
        cost = len(p["g"]) * len(p["occ"])
        if chunk and (len(chunk) + 1) * max(largest, cost) > max_elements:
            intensities.update(_device_intensities([prepared[j] for j in chunk], chunk, dev))
            chunk, largest = [], 0
        chunk.append(i)
        largest = max(largest, cost)
    if chunk:
        intensities.update(_device_intensities([prepared[j] for j in chunk], chunk, dev))

    out: list[Sticks | Exception] = []
    for i, p in enumerate(prepared):
        if isinstance(p, Exception):
            out.append(p)
            continue
        if len(p["g"]) == 0:
            lo, hi = two_theta_range
            out.append(ValueError(f"no reflections between 2θ = {lo}° and {hi}°"))
            continue
        tt, inten, hkl, d = merge_reflections(
            p["hkl"], p["g"], intensities[i], float(wavelength), p["is_hex"],
            TWO_THETA_TOL, SCALED_INTENSITY_TOL,
        )  # fmt: skip
        out.append(Sticks(two_theta=tt, intensity=inten, hkl=hkl, d=d))
    return out


def _prepare(structure, max_r: float, min_r: float, table) -> dict:
    matrix = structure.lattice.matrix
    lengths = np.sqrt(np.sum(matrix**2, axis=1))
    hkl, g, _ = reciprocal_points(reciprocal_rows(matrix), lengths, max_r, min_r)
    frac, occ, rows = scatterers(structure)
    elems, elem = compact_rows(rows)
    ustar, has_ustar = site_ustar(structure)
    return {
        "hkl": hkl,
        "g": g,
        "frac": frac,
        "occ": occ,
        "a": table.a[elems][elem],
        "b": table.b[elems][elem],
        "z": table.z[elems][elem],
        "ustar": ustar if has_ustar else None,
        "is_hex": is_hexagonal(matrix),
    }


def _device_intensities(items: list[dict], index: list[int], dev) -> dict[int, np.ndarray]:
    """|F(g)|² for a padded chunk: F = Σ_j occ_j f_j(s) DW_j exp(2πi g·r_j)."""
    import torch

    nb = len(items)
    m = max(len(p["g"]) for p in items)
    n = max(len(p["occ"]) for p in items)
    hkl = np.zeros((nb, m, 3))
    s2 = np.zeros((nb, m))
    frac = np.zeros((nb, n, 3))
    occ = np.zeros((nb, n))  # padding atoms weigh 0
    a = np.zeros((nb, n, 4))
    b = np.zeros((nb, n, 4))
    z = np.zeros((nb, n))
    ustar = np.zeros((nb, n, 3, 3))
    for q, p in enumerate(items):
        mi, ni = len(p["g"]), len(p["occ"])
        hkl[q, :mi] = p["hkl"]
        s2[q, :mi] = (p["g"] / 2.0) ** 2
        frac[q, :ni], occ[q, :ni], z[q, :ni] = p["frac"], p["occ"], p["z"]
        a[q, :ni, : p["a"].shape[1]] = p["a"]
        b[q, :ni, : p["b"].shape[1]] = p["b"]
        if p["ustar"] is not None:
            ustar[q, :ni] = p["ustar"]
    arrays = {
        "hkl": hkl,
        "s2": s2,
        "frac": frac,
        "occ": occ,
        "a": a,
        "b": b,
        "z": z,
        "ustar": ustar,
    }
    t = {k: torch.as_tensor(v, dtype=torch.float64, device=dev) for k, v in arrays.items()}
    s2_ = t["s2"][:, :, None, None]  # (B, M, 1, 1)
    fsum = (t["a"][:, None] * torch.exp(-t["b"][:, None] * s2_)).sum(-1)  # (B, M, N)
    f = t["z"][:, None, :] - 41.78214 * t["s2"][:, :, None] * fsum
    phase = 2 * math.pi * torch.einsum("bmc,bnc->bmn", t["hkl"], t["frac"])
    w = f * t["occ"][:, None, :]
    if any(p["ustar"] is not None for p in items):
        quad = torch.einsum("bmi,bnij,bmj->bmn", t["hkl"], t["ustar"], t["hkl"])
        w = w * torch.exp(-2 * math.pi**2 * quad)
    fr = (w * torch.cos(phase)).sum(-1)
    fi = (w * torch.sin(phase)).sum(-1)
    inten = (fr * fr + fi * fi).cpu().numpy()
    return {i: inten[q, : len(p["g"])] for q, (i, p) in enumerate(zip(index, items))}
