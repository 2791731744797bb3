"""Tiny simulated pattern sets and synthetic scans for the symmetry tests."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.xrd.units import WAVELENGTHS

CU = WAVELENGTHS["CuKa1"]


def sticks_of(structure, wavelength=CU, two_theta_range=(0.0, 90.0)):
    from xtal_cli.xrd.sticks import compute_sticks

    return compute_sticks(structure, wavelength, two_theta_range)


def write_scan(path, sticks, *, lo=10.0, hi=80.0, step=0.02, fwhm=0.12, header=True, seed=0):
    """A measured-looking two-column scan: Gaussian peaks on a flat background with noise."""
    tt = np.arange(lo, hi + step / 2, step)
    y = np.full_like(tt, 50.0)
    s = fwhm / 2.3548
    for pos, inten in zip(sticks.two_theta, sticks.intensity):
        y += 20.0 * inten * np.exp(-0.5 * ((tt - pos) / s) ** 2)
    y = np.random.default_rng(seed).poisson(y).astype(float)
    lines = ["# synthetic scan, 2theta counts"] if header else []
    lines += [f"{a:.3f} {b:.1f}" for a, b in zip(tt, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def pattern_set(small_structures):
    """40 patterns of 4 structure types (3 crystal systems): each lattice scaled 10 ways."""
    from xtal_cli.io.h5 import PatternSet

    kinds = {
        "NaCl": (225, "Fm-3m", "cubic"),
        "Si": (227, "Fd-3m", "cubic"),
        "ZnO": (186, "P6_3mc", "hexagonal"),
        "TiO2": (136, "P4_2/mnm", "tetragonal"),
    }
    ids, sg, sym, cs, formula, tts, ints, hkls, years = [], [], [], [], [], [], [], [], []
    for name, structure in small_structures.items():
        for k, scale in enumerate(np.linspace(0.92, 1.10, 10)):
            s = structure.copy()
            s.scale_lattice(structure.volume * scale**3)
            st = sticks_of(s)
            ids.append(f"{name}-{k}")
            sg.append(kinds[name][0])
            sym.append(kinds[name][1])
            cs.append(kinds[name][2])
            formula.append(s.composition.reduced_formula)
            tts.append(st.two_theta)
            ints.append(st.intensity)
            hkls.append(st.hkl)
            years.append(str(2000 + k) if k % 5 else "")
    n = len(ids)
    return PatternSet(
        ids=ids,
        labels={
            "formula": np.array(formula, dtype=object),
            "space_group": np.array(sg),
            "space_group_symbol": np.array(sym, dtype=object),
            "crystal_system": np.array(cs, dtype=object),
            "n_sites": np.full(n, 2),
        },
        lattice=np.zeros((n, 6)),
        structures=[""] * n,
        sticks_two_theta=tts,
        sticks_intensity=ints,
        sticks_hkl=hkls,
        meta={"year": np.array(years, dtype=object)},
        attrs={"wavelength": CU, "wavelength_label": "CuKa1", "two_theta_min": 0.0,
               "two_theta_max": 90.0},
    )  # fmt: skip


@pytest.fixture(scope="session")
def patterns_h5(pattern_set, tmp_path_factory):
    from xtal_cli.io.h5 import write_patterns

    path = tmp_path_factory.mktemp("sym") / "patterns.h5"
    write_patterns(path, pattern_set)
    return path


@pytest.fixture(scope="session")
def trained(patterns_h5, tmp_path_factory):
    """features.h5 and a small trained model file (20 trees), made through the CLI."""
    from typer.testing import CliRunner

    from xtal_cli.cli import app

    out = tmp_path_factory.mktemp("model")
    runner = CliRunner()
    feats = out / "features.h5"
    model = out / "model.h5"
    r = runner.invoke(app, ["featurize", str(patterns_h5), "--unit", "q", "-o", str(feats), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        ["train-symmetry", str(feats), "-o", str(model), "--trees", "20", "--seed", "0",
         "--report", str(out / "report"), "--rules", "cubic", "-q"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return {"features": feats, "model": model, "dir": out}
