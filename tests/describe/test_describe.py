"""xtal describe: matminer descriptors, site orbits, failures recorded, resume, the file."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from xtal_cli.describe.descriptors import Describer, DescriptorSettings
from xtal_cli.describe.run import run_description
from xtal_cli.describe.store import read_descriptors
from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.io.structures import StructureItem


@pytest.fixture(scope="module")
def describer():
    return Describer(DescriptorSettings("full"))


def _item(name, structure, **meta):
    return StructureItem(name, "json", structure.as_dict(), "memory", meta)


def test_local_environment_per_orbit_matches_matminer(describer, small_structures):
    """Fingerprints computed once per symmetry orbit give matminer's all-site statistics."""
    from matminer.featurizers.site import CrystalNNFingerprint
    from matminer.featurizers.structure import SiteStatsFingerprint

    ssf = SiteStatsFingerprint(
        CrystalNNFingerprint.from_preset("ops"), stats=("mean", "std_dev", "minimum", "maximum")
    )
    cols = [i for i, f in enumerate(describer.families) if f == "local_environment"]
    for name in ("TiO2", "ZnO"):
        s = small_structures[name]
        ours = describer.describe(s)[cols[: len(ssf.feature_labels())]]
        assert ssf.feature_labels() == describer.names[cols[0] : cols[0] + len(ours)]
        np.testing.assert_allclose(ours, ssf.featurize(s), atol=1e-6)


def test_octahedral_cations_are_recognised(describer, small_structures):
    """Rutile's Ti is octahedral; NaCl's cations too; wurtzite's Zn is tetrahedral."""
    name = describer.names.index
    octa, tetra = name("cation mean octahedral CN_6"), name("cation mean tetrahedral CN_4")
    rutile = describer.describe(small_structures["TiO2"])
    wurtzite = describer.describe(small_structures["ZnO"])
    assert rutile[octa] > 0.7 and wurtzite[octa] < 0.2
    assert wurtzite[tetra] > 0.7 and rutile[tetra] < 0.2


def test_names_are_unique_and_readable(describer):
    assert len(describer.names) == len(set(describer.names)) == len(describer.families)
    assert "MagpieData mean Electronegativity" in describer.names
    assert "stoichiometry 0-norm" in describer.names
    fast = Describer(DescriptorSettings("fast"))
    assert "local_environment" not in fast.families
    assert set(fast.names) < set(describer.names)


def test_settings_validate_themselves():
    with pytest.raises(ParameterError, match="preset"):
        DescriptorSettings("everything")
    with pytest.raises(ParameterError, match="symprec"):
        DescriptorSettings(symprec=0)


def test_failures_are_recorded_and_the_rest_described(small_structures):
    disordered = Structure(Lattice.cubic(3.6), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    items = [
        _item("NaCl", small_structures["NaCl"], band_gap="5.0"),
        _item("FeNi", disordered, band_gap="0"),
        StructureItem("broken", "cif_text", "data_x\n_cell_length_a 4\n", "memory", {}),
        _item("Si", small_structures["Si"], band_gap="1.1"),
    ]
    ds = run_description(items, DescriptorSettings("full"))
    assert ds.ids == ["NaCl", "Si"]
    stages = {ident: stage for ident, stage, _ in ds.failures}
    assert stages == {"FeNi": "local_environment", "broken": "parse"}
    assert "CrystalNN" in dict((i, r) for i, _, r in ds.failures)["FeNi"]
    np.testing.assert_allclose(ds.meta["band_gap"], [5.0, 1.1])
    assert ds.formulas == ["NaCl", "Si"] and ds.elements == ["Na Cl", "Si"]


def test_written_file_and_resume(tmp_path, small_structures):
    items = [
        _item(f"{name}-{i}", s, band_gap=str(i))
        for i in range(3)
        for name, s in small_structures.items()
    ]
    out = tmp_path / "d.h5"
    settings = DescriptorSettings("fast")
    done = []

    def interrupt(n):
        done.append(n)
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_description(items, settings, out, chunk_size=4, on_progress=interrupt)
    assert not out.exists()
    parts = out.with_name(out.name + ".partial.d")
    assert len(list(parts.glob("chunk-*.npz"))) == 2
    calls = []
    resumed = run_description(items, settings, out, chunk_size=4, resume=True,
                              on_progress=calls.append)  # fmt: skip
    assert calls[0] == 8  # the two finished chunks are reported done, not computed again
    full = run_description(items, settings)
    back = read_descriptors(out)
    assert back.ids == full.ids == resumed.ids
    np.testing.assert_allclose(back.values, full.values, rtol=1e-6)
    assert back.names == full.names and back.attrs["preset"] == "fast"
    assert not parts.exists()
    with pytest.raises(XtalError, match="other inputs or settings"):
        run_description(items[:5], settings, out, chunk_size=4)  # fresh start is fine
        parts.mkdir()
        (parts / "run.json").write_text("{}")
        run_description(items, settings, out, chunk_size=4, resume=True)


def test_truncated_and_foreign_files_are_refused(tmp_path, small_structures):
    out = tmp_path / "d.h5"
    run_description([_item("Si", small_structures["Si"])], DescriptorSettings("fast"), out)
    data = out.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(XtalError, match="cut.h5"):
        read_descriptors(tmp_path / "cut.h5")
    from xtal_cli.io.h5 import layout_string

    assert layout_string("descriptors") == "descriptors/1"


def test_cli_describe_then_cluster(invoke, tmp_path):
    """The two commands end to end on the embedded data: files, JSON on stdout, plots."""
    import json

    out = tmp_path / "d.h5"
    res = invoke("describe", "--builtin", "mp-sample", "--limit", "150", "--preset", "fast",
                 "-q", "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    res = invoke("cluster", out, "--property", "band_gap", "-k", "3", "--trees", "30",
                 "--map-points", "60", "--format", "json", "-q", "-o", tmp_path / "c")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    records = json.loads(res.stdout)
    assert [r["cluster"] for r in records] == [1, 2, 3]
    assert records[0]["band_gap_mean"] >= records[-1]["band_gap_mean"]
    for name in ("report.json", "clusters.csv", "clusters.h5", "property_per_cluster.png",
                 "zspace_map.png"):  # fmt: skip
        assert (tmp_path / "c" / name).exists(), name
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert set(report["held_out_r2"]) == {"forest", "z_space_clusters", "descriptor_kmeans"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--property", "dielectric"], "no property column 'dielectric'"),
        (["--property", "band_gap", "-k", "40"], "too few for 40 clusters"),
        (["--property", "band_gap", "--select", "formula~Xe"], "too few"),
        (["--property", "band_gap", "--select", "band_gap~1"], "numeric"),
        (["--property", "band_gap", "--select", "nonsense"], "--select"),
        (["--property", "band_gap", "-k", "1"], "--clusters"),
    ],
)
def test_cli_cluster_bad_input(invoke, tmp_path, small_structures, args, message):
    items = [_item(f"{n}-{i}", s, band_gap=str(i % 3)) for i in range(20) for n, s in
             small_structures.items()]  # fmt: skip
    out = tmp_path / "d.h5"
    run_description(items, DescriptorSettings("fast"), out)
    res = invoke("cluster", out, *args, "-q", "-o", tmp_path / "c")
    assert res.exit_code == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 3  # one sentence (rich may wrap it)


def test_cli_cluster_refuses_other_files(invoke, tmp_path):
    (tmp_path / "x.h5").write_bytes(b"not hdf5 at all")
    res = invoke("cluster", tmp_path / "x.h5", "--property", "band_gap", "-o", tmp_path / "c")
    assert res.exit_code == 2 and "x.h5" in res.stderr and "Traceback" not in res.stderr


def test_element_without_radius_gets_nan_packing_fraction(describer):
    s = Structure(Lattice.cubic(4.0), ["He", "Na"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    values = describer.describe(s)
    assert np.isnan(values[describer.names.index("packing fraction")])
    assert values[describer.names.index("density")] > 0


def test_cli_describe_nothing_described(invoke, tmp_path):
    bad = tmp_path / "bad.cif"
    bad.write_text("data_bad\n_cell_length_a 4.0\nthis is not a CIF loop\n")
    res = invoke("describe", bad, "-o", tmp_path / "d.h5")
    assert res.exit_code == 1 and "no structure could be described: bad (parse)" in res.stderr
    assert "Traceback" not in res.stderr


def test_public_api_describe_and_cluster(small_structures):
    import xtal_cli as xtal

    ds = xtal.describe_structures(list(small_structures.values()), preset="fast")
    assert isinstance(ds, xtal.DescriptorSet) and len(ds) == 4
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(4), 15)
    big = xtal.DescriptorSet(
        ids=[f"m{i}" for i in range(60)],
        formulas=[ds.formulas[i] for i in rows],
        elements=[ds.elements[i] for i in rows],
        values=ds.values[rows] + rng.normal(0, 1e-3, (60, ds.values.shape[1])),
        names=ds.names,
        families=ds.families,
        meta={"band_gap": np.repeat([5.0, 1.1, 3.3, 3.0], 15) + rng.normal(0, 0.01, 60)},
    )
    result = xtal.cluster_by_property(big, "band_gap", n_clusters=2, n_estimators=20)
    assert result.clusters[0]["property"]["band_gap"]["mean"] > 3
    assert set(result.report()["held_out_r2"]) == {
        "forest",
        "z_space_clusters",
        "descriptor_kmeans",
    }
