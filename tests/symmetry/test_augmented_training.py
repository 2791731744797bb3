"""Training on augmented profiles: featurized like measured scans (Kα2 stripped when drawn, only
the drawn 2θ window), and simulate --augment → featurize --source profile → train-symmetry →
predict-symmetry on a measured-like scan, end to end through the CLI."""

from __future__ import annotations

import json

import numpy as np

from xtal_cli.xrd.units import WAVELENGTHS

from .conftest import sticks_of

CU1, CU2 = WAVELENGTHS["CuKa1"], WAVELENGTHS["CuKa2"]
GRID = np.arange(0.02, 90.0, 0.02)


def _n_strong(structure, lo=0.0, hi=90.0) -> int:
    """Reflections a scan shows (above ~1 % of the strongest; NaCl has one at 0.9 %)."""
    st = sticks_of(structure)
    return int(((st.intensity >= 1.5) & (st.two_theta > lo) & (st.two_theta < hi)).sum())


def _params(**overrides) -> dict:
    params = {
        "instrument": "lab", "U": 0.0, "V": 0.0, "W": 0.003, "X": 0.0, "Y": 0.0, "ka2": True,
        "ka2_ratio": 0.5, "zero_shift": 0.0, "displacement_mm": 0.0, "radius_mm": 240.0,
        "counts": None, "background_level": 0.05, "background_poly": [0.0, 0.0],
        "background_decay": 0.0, "hump_height": 0.0, "texture_r": 1.0, "texture_axis": [0, 0, 1],
        "impurity_two_theta": [], "impurity_intensity": [], "window": None, "seed": 0,
    }  # fmt: skip
    params.update(overrides)
    return params


def _profile_set(structure, params_list, with_extra=True):
    """A PatternSet holding one augmented profile of *structure* per entry of *params_list*."""
    from xtal_cli.io.h5 import PatternSet
    from xtal_cli.xrd.augment import augmented_profile

    st = sticks_of(structure)
    n = len(params_list)
    profiles = np.stack([augmented_profile(st, GRID, p, CU1) for p in params_list])
    extra = {"augment": np.array([json.dumps(p) for p in params_list], dtype=object)}
    return PatternSet(
        ids=[f"p{i}" for i in range(n)],
        labels={
            "formula": np.array(["NaCl"] * n, dtype=object),
            "space_group": np.full(n, 225),
            "space_group_symbol": np.array(["Fm-3m"] * n, dtype=object),
            "crystal_system": np.array(["cubic"] * n, dtype=object),
            "n_sites": np.full(n, 8),
        },
        lattice=np.zeros((n, 6)),
        structures=[""] * n,
        sticks_two_theta=[st.two_theta] * n,
        sticks_intensity=[st.intensity] * n,
        sticks_hkl=[st.hkl] * n,
        profile_grid=GRID,
        profiles=profiles,
        extra=extra if with_extra else {},
        attrs={"wavelength": CU1, "wavelength_label": "CuKa1", "two_theta_min": 0.0,
               "two_theta_max": 90.0},
    )  # fmt: skip


def test_profile_peak_options_follow_the_draw(small_structures):
    from xtal_cli.symmetry.features import profile_peak_options

    ps = _profile_set(
        small_structures["NaCl"],
        [_params(), _params(ka2=False, window=[12.5, 70.0]), _params(ka2_ratio=0.48)],
    )
    opts, cov = profile_peak_options(ps, 0, CU1, {})
    assert opts["ka2"] == (CU1, CU2, 0.5) and cov is None
    opts, cov = profile_peak_options(ps, 1, CU1, {"prominence": 3.0})
    assert "ka2" not in opts and opts["prominence"] == 3.0
    assert cov == (12.5, 70.0)
    # an explicit choice wins over the draw
    opts, _ = profile_peak_options(ps, 2, CU1, {"ka2": None})
    assert opts["ka2"] is None


def test_drawn_ka2_is_stripped_like_a_measured_scan(small_structures):
    """NaCl with a resolved Kα2 doublet: stripped, every reflection is one peak (as for a lab
    scan featurized with --wavelength CuKa); unstripped, the doublets would count twice."""
    from xtal_cli.symmetry.features import featurize_patterns

    nacl = small_structures["NaCl"]
    n_sticks = _n_strong(nacl)
    stripped = featurize_patterns(_profile_set(nacl, [_params()]), source="profile")
    kept = featurize_patterns(_profile_set(nacl, [_params()], with_extra=False), source="profile")
    assert stripped.n_found[0] == n_sticks
    assert kept.n_found[0] > n_sticks
    # the drawn window is the coverage, and no edge artefact becomes a peak
    windowed = featurize_patterns(
        _profile_set(nacl, [_params(window=[20.0, 60.0])]), source="profile"
    )
    assert np.allclose(windowed.coverage[0], (20.0, 60.0), atol=0.021)
    assert windowed.n_found[0] == _n_strong(nacl, 20.0, 60.0)


def test_parallel_featurize_gives_the_same_rows(small_structures, monkeypatch):
    """-j 2 over chunks (two small chunks here) returns the rows of -j 1, in order."""
    import xtal_cli.symmetry.features as features

    nacl = small_structures["NaCl"]
    draws = [_params(), _params(window=[20.0, 60.0]), _params(ka2=False, W=0.01)]
    ps = _profile_set(nacl, draws)
    monkeypatch.setattr(features, "_CHUNK", 2)
    one = features.featurize_patterns(ps, source="profile", indexing=True)
    two = features.featurize_patterns(ps, source="profile", indexing=True, n_jobs=2)
    assert one.ids == two.ids and len(two) == 3
    assert np.array_equal(one.X, two.X) and np.array_equal(one.coverage, two.coverage)


def test_augmented_training_and_prediction_end_to_end(invoke, small_structures, tmp_path):
    from xtal_cli.xrd.augment import augmented_profile

    cifs = tmp_path / "cifs"
    cifs.mkdir()
    for name, structure in small_structures.items():
        for k, scale in enumerate((0.96, 1.0, 1.04)):
            s = structure.copy()
            s.scale_lattice(structure.volume * scale**3)
            s.to(filename=str(cifs / f"{name}_{k}.cif"))
    patterns = tmp_path / "aug.h5"
    feats = tmp_path / "aug_features.h5"
    model = tmp_path / "aug_model.h5"
    for seed, out in ((0, patterns), (1, tmp_path / "aug1.h5")):
        r = invoke("simulate", cifs, "--augment", "--seed", seed, "-o", out, "-q")
        assert r.exit_code == 0, r.output
    r = invoke("featurize", patterns, "--source", "profile", "-o", feats, "-q")
    assert r.exit_code == 0, r.output
    r = invoke("train-symmetry", feats, "-o", model, "--trees", "10", "--seed", "0", "-q")
    assert r.exit_code == 0, r.output

    # a measured-like lab scan: Kα1+Kα2, broad tails, background, counting noise, 10-90°
    nacl = small_structures["NaCl"]
    grid = np.arange(10.0, 90.0, 0.02)
    params = _params(W=0.006, X=0.02, Y=0.02, counts=20000.0, zero_shift=0.03, seed=3)
    y = augmented_profile(sticks_of(nacl), grid, params, CU1) * 20000.0
    scan = tmp_path / "nacl.xy"
    scan.write_text("".join(f"{a:.2f} {b:.0f}\n" for a, b in zip(grid, y)))
    r = invoke(
        "predict-symmetry", model, scan, "--wavelength", "CuKa", "--format", "json", "--top", "3"
    )
    assert r.exit_code == 0, r.output
    (rec,) = json.loads(r.stdout)
    assert "error" not in rec, rec
    assert rec["n_peaks"] == _n_strong(nacl, 10.0, 90.0)
    assert len(rec["crystal_systems"]) == 3
    assert rec["crystal_system"] in {"cubic", "hexagonal", "tetragonal"}
