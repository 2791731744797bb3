"""The ``fast`` sticks engine must give pymatgen's XRDCalculator patterns (issue 6 tolerances)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from xtal_cli.xrd.sticks import ENGINES, compute_sticks

CU = 1.54056
MO = 0.70930


@cache
def _structures() -> dict[str, Structure]:
    """One structure per crystal system plus the hard cases the issue names (built once)."""
    fs = Structure.from_spacegroup
    return {
        "cubic NaCl": fs("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "cubic Si": fs("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]]),
        "hexagonal ZnO": fs(
            "P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
            [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]],
        ),
        "trigonal Al2O3": fs(
            "R-3c", Lattice.hexagonal(4.759, 12.991), ["Al", "O"], [[0, 0, 0.352], [0.306, 0, 0.25]]
        ),
        "tetragonal TiO2": fs(
            "P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
            [[0, 0, 0], [0.305, 0.305, 0]],
        ),
        "orthorhombic": fs(
            "Pnma", Lattice.orthorhombic(5.46, 7.67, 5.39), ["Ca", "Ti", "O", "O"],
            [[0.006, 0.25, 0.036], [0, 0, 0.5], [0.571, 0.25, -0.017], [0.289, 0.038, 0.711]],
        ),
        "monoclinic": fs(
            "P2_1/c", Lattice.monoclinic(5.15, 5.21, 5.31, 99.2), ["Zr", "O", "O"],
            [[0.276, 0.040, 0.208], [0.070, 0.332, 0.345], [0.450, 0.757, 0.479]],
        ),
        "triclinic": Structure(
            Lattice.from_parameters(5.1, 6.3, 7.2, 82.0, 97.5, 103.1),
            ["K", "Al", "Si", "O", "O"],
            [[0.1, 0.2, 0.3], [0.45, 0.1, 0.7], [0.8, 0.55, 0.15], [0.3, 0.7, 0.9],
             [0.6, 0.35, 0.5]],
        ),
        "rhombohedral cell": Structure(
            Lattice.rhombohedral(5.42, 55.3), ["Bi", "Bi"], [[0.234, 0.234, 0.234], [-0.234] * 3]
        ),
        "one atom": Structure(Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]]),
        "partial occupancy": Structure(
            Lattice.cubic(4.2),
            [{"Mg": 0.6, "Fe": 0.4}, {"O": 0.9}],
            [[0, 0, 0], [0.5, 0.5, 0.5]],
        ),
        "oxidation states": fs(
            "Fm-3m", Lattice.cubic(4.21), ["Mg2+", "O2-"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        ),
    }  # fmt: skip


def _large_cell() -> Structure:
    """A 3x3x2 NaCl supercell with displaced sites (144 atoms, hundreds of reflections)."""
    rng = np.random.default_rng(7)
    s = _structures()["cubic NaCl"].copy()
    s.make_supercell([3, 3, 2])
    for i in range(len(s)):
        s.translate_sites([i], rng.normal(0, 0.01, 3), frac_coords=True)
    return s


def assert_same(ref, new, label: str) -> None:
    """Issue-6 equivalence: same peaks, |Δ2θ| ≤ 1e-6°, |ΔI| ≤ 1e-4 of the strongest, same hkl."""
    assert len(new) == len(ref), f"{label}: {len(new)} peaks, pymatgen {len(ref)}"
    np.testing.assert_allclose(new.two_theta, ref.two_theta, rtol=0, atol=1e-6, err_msg=label)
    np.testing.assert_allclose(new.intensity, ref.intensity, rtol=0, atol=1e-4 * 100, err_msg=label)
    np.testing.assert_allclose(new.d, ref.d, rtol=1e-9, err_msg=label)
    np.testing.assert_array_equal(new.hkl, ref.hkl, err_msg=f"{label}: hkl")


@pytest.mark.parametrize("name", list(_structures()))
@pytest.mark.parametrize(
    "wavelength,two_theta_range", [(CU, (0.0, 90.0)), (MO, (10.0, 110.0)), (CU, (20.0, 150.0))]
)
def test_fast_equals_pymatgen(name, wavelength, two_theta_range):
    s = _structures()[name]
    ref = compute_sticks(s, wavelength, two_theta_range, engine="pymatgen")
    new = compute_sticks(s, wavelength, two_theta_range, engine="fast")
    assert_same(ref, new, f"{name} λ={wavelength} 2θ={two_theta_range}")


def test_fast_equals_pymatgen_large_cell():
    s = _large_cell()
    assert len(s) > 100
    ref = compute_sticks(s, CU, (5.0, 60.0), engine="pymatgen")
    new = compute_sticks(s, CU, (5.0, 60.0), engine="fast")
    assert len(ref) > 100
    assert_same(ref, new, "large cell")


def test_anisotropic_displacements_match():
    """Structures carrying U11_cif … U12_cif get pymatgen's anisotropic Debye-Waller factor."""
    s = _structures()["tetragonal TiO2"].copy()
    u = {"U11_cif": 0.02, "U22_cif": 0.02, "U33_cif": 0.015, "U23_cif": 0.0, "U13_cif": 0.0}
    for key, value in {**u, "U12_cif": 0.004}.items():
        s.add_site_property(key, [value] * len(s))
    ref = compute_sticks(s, CU, (0.0, 140.0), engine="pymatgen")
    new = compute_sticks(s, CU, (0.0, 140.0), engine="fast")
    assert_same(ref, new, "U_cif")
    plain = compute_sticks(_structures()["tetragonal TiO2"], CU, (0.0, 140.0), engine="fast")
    assert new.intensity[-1] < plain.intensity[-1]  # the factor damps high angles


def test_physics_independent_of_pymatgen():
    """Facts a broken engine would get wrong: extinctions, Bragg's law, the strongest line."""
    si = compute_sticks(_structures()["cubic Si"], CU, (0.0, 90.0), engine="fast")
    # diamond: (h k l) all odd, or all even with h + k + l = 4n
    for h, k, ell in si.hkl:
        odd = h % 2 and k % 2 and ell % 2
        assert odd or (h % 2 == k % 2 == ell % 2 == 0 and (h + k + ell) % 4 == 0), (h, k, ell)
    assert tuple(si.hkl[0]) == (1, 1, 1) and si.intensity.max() == pytest.approx(100.0)
    d = 5.431 / np.sqrt((si.hkl.astype(float) ** 2).sum(axis=1))
    np.testing.assert_allclose(si.d, d, rtol=1e-12)
    np.testing.assert_allclose(si.two_theta, np.degrees(2 * np.arcsin(CU / (2 * d))), atol=1e-9)


def test_unknown_species_fails_like_pymatgen():
    from pymatgen.core.periodic_table import DummySpecies

    s = Structure(Lattice.cubic(4.0), [DummySpecies("X")], [[0, 0, 0]])
    for engine in ("pymatgen", "fast"):
        with pytest.raises(ValueError, match="no scattering coefficients"):
            compute_sticks(s, CU, (0.0, 90.0), engine=engine)


def test_no_reflection_in_range_fails_like_pymatgen():
    s = _structures()["one atom"]
    for engine in ("pymatgen", "fast"):
        with pytest.raises(ValueError):
            compute_sticks(s, CU, (0.0, 5.0), engine=engine)


def test_engine_registry():
    assert {"pymatgen", "fast"} <= set(ENGINES)
    with pytest.raises(ValueError, match="unknown engine"):
        compute_sticks(_structures()["one atom"], CU, (0.0, 90.0), engine="nope")


@pytest.mark.shared
def test_fast_equals_pymatgen_on_shared_structures(shared_data):
    """A fixed sample of the real Materials Project set (the benchmark checks all of it)."""
    import pandas as pd

    df = pd.read_csv(shared_data / "mp_structures.csv.gz", usecols=["material_id", "cif"])
    for row in df.sample(n=25, random_state=6).itertuples():
        s = Structure.from_str(row.cif, fmt="cif")
        ref = compute_sticks(s, CU, (0.0, 90.0), engine="pymatgen")
        assert_same(ref, compute_sticks(s, CU, (0.0, 90.0), engine="fast"), row.material_id)


def test_compiled_profile_equals_the_formula():
    """pseudo_voigt_sum (compiled) against the pseudo-Voigt written out densely with numpy."""
    from xtal_cli.xrd.lineshape import caglioti_fwhm, pseudo_voigt_sum

    rng = np.random.default_rng(3)
    grid = np.arange(5.0, 90.0, 0.02)
    centers = np.sort(rng.uniform(6.0, 89.0, 40))
    areas = rng.uniform(1.0, 100.0, 40)
    fwhm = caglioti_fwhm(centers, 0.01, -0.005, 0.01)
    eta, window = 0.3, 30.0
    x = grid[None, :] - centers[:, None]
    hw = fwhm[:, None] / 2
    gauss = np.sqrt(np.log(2) / np.pi) / hw * np.exp(-np.log(2) * (x / hw) ** 2)
    lorentz = 1 / (np.pi * hw * (1 + (x / hw) ** 2))
    dense = areas[:, None] * (eta * lorentz + (1 - eta) * gauss)
    dense[np.abs(x) >= window * fwhm[:, None]] = 0.0  # the ±window·FWHM truncation
    expected = dense.sum(axis=0)
    got = pseudo_voigt_sum(grid, centers, areas, fwhm, eta, window)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * expected.max())
    # area kept: each peak integrates to its stick intensity (up to the truncated tails)
    assert got.sum() * 0.02 == pytest.approx(areas.sum(), rel=0.02)
    assert not pseudo_voigt_sum(grid, [], [], [], eta, window).any()


def test_torch_batch_path_equals_pymatgen():
    """The optional torch path (CPU here) gives the same sticks, failures stay per structure."""
    pytest.importorskip("torch")
    from pymatgen.core.periodic_table import DummySpecies

    from xtal_cli.xrd.fast_torch import batch_sticks

    names = ["cubic NaCl", "hexagonal ZnO", "monoclinic", "triclinic", "partial occupancy"]
    structures = [_structures()[n] for n in names]
    structures.append(Structure(Lattice.cubic(4.0), [DummySpecies("X")], [[0, 0, 0]]))
    # a tiny block size forces several device calls with different padding
    got = batch_sticks(structures, CU, (10.0, 120.0), device="cpu", max_elements=3000)
    for name, s, new in zip(names, structures, got):
        assert_same(compute_sticks(s, CU, (10.0, 120.0), engine="pymatgen"), new, f"torch {name}")
    assert isinstance(got[-1], ValueError)
