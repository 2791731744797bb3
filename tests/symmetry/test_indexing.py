"""Indexing scores: cells of each system index their own lines, and not each other's."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xtal_cli.symmetry.features import FeatureSettings, peak_row, read_features, write_features
from xtal_cli.symmetry.indexing import (
    LATTICE_FEATURES,
    LATTICE_SYMBOLS,
    LATTICES,
    SYSTEMS,
    indexing_scores,
)

from .conftest import CU


def lines(lattice, centring="P", n=20, tt_max=90.0):
    """The lowest-angle 2θ (Cu Kα1) of the allowed reflections of a pymatgen lattice."""
    rec = lattice.reciprocal_lattice_crystallographic.matrix
    hkl = np.array(list(itertools.product(range(-8, 9), repeat=3)))
    hkl = hkl[np.any(hkl != 0, axis=1)]
    h, k, l_ = hkl.T
    keep = {
        "P": np.ones(len(hkl), bool),
        "I": (h + k + l_) % 2 == 0,
        "F": ((h % 2) == (k % 2)) & ((k % 2) == (l_ % 2)),
        "R": (-h + k + l_) % 3 == 0,
    }[centring]
    inv_d = np.linalg.norm(hkl[keep] @ rec, axis=1)
    sin = CU * inv_d / 2
    tt = np.unique(np.round(2 * np.degrees(np.arcsin(sin[sin < 1])), 4))
    return tt[tt <= tt_max][:n]


def written_and_read(row, settings, tmp_path):
    """One feature row through a features/1 file and back."""
    from xtal_cli.symmetry.features import FeatureSet

    fs = FeatureSet(
        ids=["a"],
        X=row.values[None, :],
        settings=settings,
        n_found=np.array([row.n_found]),
        coverage=np.array([row.coverage]),
    )
    write_features(tmp_path / "f.h5", fs)
    return read_features(tmp_path / "f.h5")


def scores(tt):
    return dict(zip(SYSTEMS, indexing_scores(tt, CU)))


@pytest.fixture(scope="module")
def lattices():
    from pymatgen.core import Lattice

    return {
        "cubic F": (Lattice.cubic(5.64), "F"),
        "cubic I": (Lattice.cubic(10.6), "I"),
        "tetragonal P": (Lattice.tetragonal(4.59, 2.96), "P"),
        "tetragonal I": (Lattice.tetragonal(3.78, 9.51), "I"),
        "hexagonal P": (Lattice.hexagonal(3.25, 5.21), "P"),
        "rhombohedral": (Lattice.hexagonal(2.82, 14.05), "R"),
        "orthorhombic": (Lattice.orthorhombic(5.43, 7.68, 5.51), "P"),
        "monoclinic": (Lattice.monoclinic(7.11, 4.62, 9.83, 104.5), "P"),
        "pseudo-hexagonal monoclinic": (Lattice.monoclinic(4.93, 8.53, 5.03, 109.3), "P"),
    }


@pytest.mark.parametrize(
    "name, system",
    [
        ("cubic F", "cubic"),
        ("cubic I", "cubic"),
        ("tetragonal P", "tetragonal"),
        ("tetragonal I", "tetragonal"),
        ("hexagonal P", "hexagonal"),
        ("rhombohedral", "hexagonal"),
    ],
)
def test_own_system_indexes_every_line(lattices, name, system):
    lattice, centring = lattices[name]
    assert scores(lines(lattice, centring))[system] == 1.0


@pytest.mark.parametrize("name", ["tetragonal P", "hexagonal P", "orthorhombic", "monoclinic"])
def test_lower_symmetry_is_not_cubic(lattices, name):
    lattice, centring = lattices[name]
    assert scores(lines(lattice, centring))["cubic"] < 0.8


@pytest.mark.parametrize("name", ["orthorhombic", "monoclinic"])
def test_low_symmetry_indexes_on_no_uniaxial_cell(lattices, name):
    lattice, centring = lattices[name]
    s = scores(lines(lattice, centring))
    assert s["tetragonal"] < 0.9 and s["hexagonal"] < 0.9


def test_zero_shift_is_refined_away(lattices):
    lattice, centring = lattices["cubic I"]
    tt = lines(lattice, centring)
    assert scores(tt + 0.15)["cubic"] == 1.0  # far beyond the 0.08° tolerance without refinement


def test_a_spurious_line_costs_only_itself(lattices):
    lattice, centring = lattices["cubic F"]
    tt = lines(lattice, centring)
    with_extra = np.sort(np.append(tt, tt[0] - 3.3))  # before the first line: trial cells move
    assert scores(with_extra)["cubic"] == pytest.approx(len(tt) / (len(tt) + 1))


def test_too_few_lines_give_zeros():
    assert np.all(indexing_scores([20.0, 30.0], CU) == 0)
    assert np.all(indexing_scores([], CU) == 0)


def test_features_carry_the_scores(lattices, tmp_path):
    from xtal_cli.symmetry.predict import compare_settings

    lattice, centring = lattices["hexagonal P"]
    tt = lines(lattice, centring, n=40)
    plain, indexed = FeatureSettings(), FeatureSettings(indexing=True)
    row = peak_row(tt, np.ones_like(tt), CU, indexed)
    assert len(row.values) == indexed.n_features == plain.n_features + 3
    assert indexed.feature_names[-3:] == ["index_cubic", "index_tetragonal", "index_hexagonal"]
    np.testing.assert_array_equal(
        row.values[: plain.n_features], peak_row(tt, tt, CU, plain).values
    )
    assert row.values[-1] == 1.0  # hexagonal
    assert "indexing" in compare_settings(indexed, plain)

    back = written_and_read(row, indexed, tmp_path)
    assert back.settings.indexing is True
    np.testing.assert_array_equal(back.X, row.values[None, :])


@pytest.mark.parametrize("name", ["cubic F", "tetragonal I", "hexagonal P", "rhombohedral"])
def test_lattice_scores_fold_into_the_system_scores(lattices, name):
    lattice, centring = lattices[name]
    tt = lines(lattice, centring)
    per = indexing_scores(tt, CU, lattices=True)[: len(LATTICES)]
    assert len(per) == len(LATTICE_SYMBOLS) == 7
    folded = [max(v for (k, _), v in zip(LATTICES, per) if k == kind) for kind in SYSTEMS]
    np.testing.assert_array_equal(folded, indexing_scores(tt, CU))


def test_rhombohedral_centring_is_told_from_primitive_hexagonal(lattices):
    # R-3m (LiCoO2-like) lines obey −h+k+l = 3n; a P hexagonal cell's lines do not, so the hR
    # score separates trigonal R from hexagonal P where the system score cannot
    hr = dict(
        zip(LATTICE_SYMBOLS, indexing_scores(lines(*lattices["rhombohedral"]), CU, lattices=True))
    )
    hp = dict(
        zip(LATTICE_SYMBOLS, indexing_scores(lines(*lattices["hexagonal P"]), CU, lattices=True))
    )
    assert hr["hR"] == hr["hP"] == 1.0
    assert hp["hP"] == 1.0 and hp["hR"] < 0.8


@pytest.mark.parametrize(
    "name, symbol",
    [("cubic F", "cF"), ("cubic I", "cI"), ("tetragonal P", "tP"), ("tetragonal I", "tI"),
     ("hexagonal P", "hP"), ("rhombohedral", "hR")],
)  # fmt: skip
def test_the_true_lattice_indexes_most_economically(lattices, name, symbol):
    # every cubic lattice indexes a cubic pattern (a centred cell twice the size, or the
    # primitive cell with the absent lines to spare); the line ratio says which one it is
    per = indexing_scores(lines(*lattices[name]), CU, lattices=True)
    frac, ratio = per[: len(LATTICES)], per[len(LATTICES) :]
    j = LATTICE_SYMBOLS.index(symbol)
    others = np.delete(ratio, j)[np.delete(frac, j) == 1.0]  # lattices that index it all too
    assert frac[j] == 1.0 and ratio[j] >= 0.8 and np.all(others < ratio[j])


def test_lattice_features_round_trip(lattices, tmp_path):
    from xtal_cli.symmetry.predict import compare_settings

    tt = lines(*lattices["rhombohedral"], n=40)
    systems, per = FeatureSettings(indexing=True), FeatureSettings(indexing=True, lattices=True)
    row = peak_row(tt, np.ones_like(tt), CU, per)
    assert per.n_features == systems.n_features + 11
    symbols = ("cP", "cI", "cF", "tP", "tI", "hP", "hR")
    assert per.feature_names[-14:] == list(LATTICE_FEATURES)
    assert list(LATTICE_FEATURES) == [f"index_{s}" for s in symbols] + [
        f"n_ratio_{s}" for s in symbols
    ]
    assert row.values[-8] == 1.0  # index_hR
    assert "lattices" in compare_settings(per, systems)
    back = written_and_read(row, per, tmp_path)
    assert back.settings.lattices is True and back.settings == per
    np.testing.assert_array_equal(back.X, row.values[None, :])


def test_pseudo_hexagonal_monoclinic_is_seen_as_hexagonal(lattices):
    # a Li2MnO3-like C2/m cell (b ≈ √3·a): a slightly distorted layered rock salt whose lines
    # index on a hexagonal cell, as an indexing program would also say; the trees must decide
    # from the other columns
    lattice, centring = lattices["pseudo-hexagonal monoclinic"]
    assert scores(lines(lattice, centring))["hexagonal"] >= 0.9
