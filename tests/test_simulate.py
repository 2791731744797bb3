"""xtal simulate: sources, labels, failures, resume, profiles; the library and the CLI."""

import numpy as np
import pytest

from xtal_cli.errors import XtalError
from xtal_cli.io.h5 import read_patterns
from xtal_cli.io.structures import collect_items, load_structure
from xtal_cli.xrd.labels import crystal_system, symmetry_labels
from xtal_cli.xrd.profile import ProfileSettings
from xtal_cli.xrd.simulate import SimulationSettings, run_simulation

BROKEN_CIF = "data_broken\n_cell_length_a 5.0\n_cell_length_b\nloop_\n_atom_site_label\n"


@pytest.fixture()
def cif_folder(tmp_path, small_structures):
    folder = tmp_path / "cifs"
    folder.mkdir()
    for name, st in small_structures.items():
        st.to(filename=str(folder / f"{name}.cif"))
    (folder / "broken.cif").write_text(BROKEN_CIF)
    return folder


def test_labels_of_known_structures(small_structures):
    expected = {"NaCl": (225, "cubic"), "Si": (227, "cubic"), "ZnO": (186, "hexagonal")}
    for name, (sg, system) in expected.items():
        labels = symmetry_labels(small_structures[name])
        assert (labels["space_group"], labels["crystal_system"]) == (sg, system)
    assert symmetry_labels(small_structures["TiO2"])["space_group"] == 136
    assert [crystal_system(n) for n in (1, 3, 16, 75, 143, 168, 195)] == [
        "triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic",
    ]  # fmt: skip


def test_broken_cif_is_recorded_and_the_rest_written(tmp_path, cif_folder, invoke):
    out = tmp_path / "p.h5"
    result = invoke("simulate", cif_folder, "-o", out, "-q")
    assert result.exit_code == 0, result.output
    ps = read_patterns(out)
    assert sorted(ps.ids) == ["NaCl", "Si", "TiO2", "ZnO"]
    assert [f[0] for f in ps.failures] == ["broken"]
    assert ps.failures[0][1] == "parse"
    nacl = ps.ids.index("NaCl")
    # NaCl (200) at 31.70° for Cu Kα1 and the strongest peak scaled to 100
    assert np.min(np.abs(ps.sticks_two_theta[nacl] - 31.70)) < 0.01
    assert ps.sticks_intensity[nacl].max() == pytest.approx(100)


def test_csv_metadata_and_builtin(tmp_path, invoke):
    out = tmp_path / "b.h5"
    result = invoke("simulate", "--builtin", "mp-sample", "--limit", "5", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    ps = read_patterns(out)
    assert len(ps) + len(ps.failures) == 5
    assert {"band_gap", "year", "formation_energy_per_atom"} <= set(ps.meta)
    assert ps.meta["band_gap"].dtype == np.float64
    assert all(i.startswith("mp-") for i in ps.ids)


def test_bad_inputs_are_one_clear_line(tmp_path, invoke):
    csv = tmp_path / "nocif.csv"
    csv.write_text("material_id,structure\nmp-1,abc\n")
    for args, message in [
        ((csv,), "no 'cif' column"),
        ((tmp_path / "missing.cif",), "no such file"),
        (("--builtin", "nope"), "unknown built-in set"),
        (("--builtin", "mp-sample", "--wavelength", "CuKz"), "unknown wavelength"),
        (("--builtin", "mp-sample", "--wavelength", "154"), "outside"),
    ]:
        result = invoke("simulate", *args, "-o", tmp_path / "x.h5", "-q")
        assert result.exit_code == 2
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def _items(tmp_path, small_structures, n=12):
    folder = tmp_path / "many"
    folder.mkdir()
    names = list(small_structures)
    for i in range(n):
        small_structures[names[i % len(names)]].to(filename=str(folder / f"s{i:02d}.cif"))
    return collect_items([str(folder)])


def test_interrupted_run_resumes_to_the_same_result(tmp_path, small_structures):
    items = _items(tmp_path, small_structures)
    settings = SimulationSettings(
        1.54056, "CuKa1", 5, 80, profile=ProfileSettings(5, 80, 0.05, noise_counts=1000), seed=3
    )
    full = run_simulation(items, settings, tmp_path / "full.h5", chunk_size=4).load()

    calls = []

    def interrupt(n):
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt

    out = tmp_path / "resumed.h5"
    with pytest.raises(KeyboardInterrupt):
        run_simulation(items, settings, out, chunk_size=4, on_progress=interrupt)
    assert not out.exists()
    parts = out.with_name(out.name + ".partial.d")
    chunks = sorted(parts.glob("chunk-*.npz"))
    assert len(chunks) == 2
    with np.load(chunks[0], allow_pickle=False) as npz:  # plain arrays + JSON: no pickle
        assert "records" in npz.files

    done = []
    resumed = run_simulation(
        items, settings, out, chunk_size=4, resume=True, on_progress=done.append
    ).load()
    assert done == [8, 4]  # 8 recovered from disk, 4 computed
    assert not parts.exists()
    assert resumed.ids == full.ids
    np.testing.assert_array_equal(resumed.profiles, full.profiles)  # same noise draws
    for a, b in zip(resumed.sticks_intensity, full.sticks_intensity):
        np.testing.assert_array_equal(a, b)
    disk = read_patterns(out)
    np.testing.assert_array_equal(disk.profiles, full.profiles)


def test_resume_with_other_settings_is_refused(tmp_path, small_structures):
    items = _items(tmp_path, small_structures, n=4)
    out = tmp_path / "o.h5"
    parts = out.with_name(out.name + ".partial.d")
    parts.mkdir()
    (parts / "run.json").write_text("{}")
    with pytest.raises(XtalError, match="other inputs or settings"):
        run_simulation(items, SimulationSettings(1.54056, "CuKa1"), out, resume=True)


def test_profile_peaks_sit_at_the_sticks(tmp_path, small_structures, invoke):
    small_structures["Si"].to(filename=str(tmp_path / "Si.cif"))
    out = tmp_path / "si.h5"
    result = invoke(
        "simulate", tmp_path / "Si.cif", "-o", out, "--profile", "--step", "0.01",
        "--two-theta-min", "20", "--two-theta-max", "80", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ps = read_patterns(out)
    grid, prof = ps.profile_grid, ps.profiles[0]
    assert prof.max() == pytest.approx(1.0)
    assert grid[np.argmax(prof)] == pytest.approx(28.44, abs=0.02)  # Si (111)


def test_ka2_doublet_and_parallel_jobs(tmp_path, small_structures, invoke):
    small_structures["NaCl"].to(filename=str(tmp_path / "NaCl.cif"))
    out = tmp_path / "nacl.h5"
    result = invoke(
        "simulate", tmp_path / "NaCl.cif", "-o", out, "--wavelength", "CuKa", "--ka2",
        "--step", "0.005", "--fwhm", "0.03", "--two-theta-min", "60", "--two-theta-max", "70",
        "-j", "2", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ps = read_patterns(out)
    grid, prof = ps.profile_grid, ps.profiles[0]
    # NaCl (220) at 66.23° (Kα1) with its Kα2 partner about 0.19° higher at half height
    i1 = np.argmin(np.abs(grid - 66.23))
    i2 = np.argmin(np.abs(grid - 66.42))
    assert prof[i2] / prof[i1] == pytest.approx(0.5, abs=0.08)


def test_random_crystals_are_reproducible():
    items = collect_items([], random_n=2, seed=7)
    a = [load_structure(i) for i in items]
    b = [load_structure(i) for i in collect_items([], random_n=2, seed=7)]
    assert [s.composition for s in a] == [s.composition for s in b]
    assert all(len(s) > 0 for s in a)


def test_dask_backend_gives_the_same_patterns(tmp_path, small_structures):
    """joblib's dask backend (a local cluster here; a scheduler address on a real cluster)."""
    pytest.importorskip("dask.distributed")
    items = _items(tmp_path, small_structures, n=6)
    settings = SimulationSettings(1.54056, "CuKa1", 5, 80)
    local = run_simulation(items, settings, tmp_path / "local.h5", chunk_size=2).load()
    dask = run_simulation(
        items, settings, tmp_path / "dask.h5", chunk_size=2, backend="dask", jobs=2
    ).load()
    assert dask.ids == local.ids
    for a, b in zip(dask.sticks_intensity, local.sticks_intensity):
        np.testing.assert_array_equal(a, b)


def test_unreachable_dask_scheduler_is_one_clear_line(
    tmp_path, small_structures, invoke, monkeypatch
):
    pytest.importorskip("dask.distributed")
    monkeypatch.setattr("xtal_cli.parallel.DASK_CONNECT_TIMEOUT", "1s")
    small_structures["Si"].to(filename=str(tmp_path / "Si.cif"))
    result = invoke(
        "simulate", tmp_path / "Si.cif", "-o", tmp_path / "x.h5", "-q",
        "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "dask scheduler" in result.stderr


def test_in_memory_run_equals_the_written_file(tmp_path, small_structures):
    items = _items(tmp_path, small_structures, n=6)
    settings = SimulationSettings(
        1.54056, "CuKa1", 5, 80, profile=ProfileSettings(5, 80, 0.05, noise_counts=1000), seed=2
    )
    written = run_simulation(items, settings, tmp_path / "w.h5", chunk_size=4).load()
    seen = []
    memory = run_simulation(items, settings, chunk_size=4, on_progress=seen.append)
    assert seen == [4, 2] and memory.ids == written.ids
    np.testing.assert_array_equal(memory.profiles, written.profiles)
    for a, b in zip(memory.sticks_intensity, written.sticks_intensity):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many", "w.h5"]  # nothing else written
    with pytest.raises(XtalError, match="^resume=True: needs an output file"):
        run_simulation(items, settings, resume=True)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        ({"wavelength": -1.0}, "wavelength"),
        ({"two_theta_min": 50.0, "two_theta_max": 40.0}, "two_theta_max"),
        ({"two_theta_min": -1.0}, "two_theta_min"),
        ({"engine": "nope"}, "engine"),
        ({"symprec": 0.0}, "symprec"),
        ({"augment": True}, "augment"),
    ],
)
def test_settings_check_themselves_and_name_the_parameter(kwargs, parameter):
    from xtal_cli.errors import ParameterError

    with pytest.raises(ParameterError) as info:
        SimulationSettings(**{"wavelength": 1.54056, "wavelength_label": "CuKa1", **kwargs})
    assert info.value.parameter == parameter
    assert str(info.value).startswith(f"{parameter}=") and "--" not in str(info.value)


def test_cli_names_the_flag_and_says_why_nothing_was_simulated(tmp_path, invoke):
    bad = tmp_path / "bad.cif"
    bad.write_text(BROKEN_CIF)
    r = invoke("simulate", bad, "-o", tmp_path / "o.h5", "--two-theta-min", "50",
               "--two-theta-max", "40")  # fmt: skip
    assert r.exit_code == 2 and "--two-theta-max 40: must be above" in r.stderr
    r = invoke("simulate", bad, "-o", tmp_path / "o.h5", "--engine", "nope")
    assert r.exit_code == 2 and "--engine nope: use one of" in r.stderr
    (tmp_path / "bad2.cif").write_text(BROKEN_CIF)
    r = invoke("simulate", bad, tmp_path / "bad2.cif", "-o", tmp_path / "o.h5", "-q")
    assert r.exit_code == 1
    assert "no pattern could be simulated: all 2 structures failed: bad (parse):" in r.stderr
    assert "bad2 (parse):" in r.stderr


def _csv(path, structures, n):
    """A CSV.GZ of *n* rows (the structures repeated), with a numeric and a text column."""
    import csv
    import gzip

    names = list(structures)
    with gzip.open(path, "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["material_id", "cif", "band_gap", "origin"])
        for i in range(n):
            st = structures[names[i % len(names)]]
            w.writerow([f"m{i}", st.to(fmt="cif"), "" if i % 3 else f"{i / 10}", f"src{i % 2}"])
    return path


def test_a_streamed_csv_gives_the_file_a_list_gives(tmp_path, small_structures):
    """iter_items reads rows lazily; the file equals the one from the collected list, metadata
    typed the same way (numbers with NaN for empty, text as text)."""
    from xtal_cli.io.structures import count_items, iter_items, sources_key

    path = _csv(tmp_path / "s.csv.gz", small_structures, 11)
    settings = SimulationSettings(1.54056, "CuKa1", 5, 80)
    stream = iter_items([str(path)])
    assert not isinstance(stream, list) and count_items([str(path)]) == 11
    run_simulation(
        stream, settings, tmp_path / "stream.h5", chunk_size=4, items_key=sources_key([str(path)])
    )
    run_simulation(collect_items([str(path)]), settings, tmp_path / "list.h5", chunk_size=4)
    a, b = read_patterns(tmp_path / "stream.h5"), read_patterns(tmp_path / "list.h5")
    assert a.ids == b.ids == [f"m{i}" for i in range(11)]
    assert a.meta["band_gap"].dtype == np.float64 and np.isnan(a.meta["band_gap"][1])
    np.testing.assert_array_equal(a.meta["band_gap"], b.meta["band_gap"])
    assert list(a.meta["origin"]) == [f"src{i % 2}" for i in range(11)]
    for x, y in zip(a.sticks_intensity, b.sticks_intensity):
        np.testing.assert_array_equal(x, y)
    assert a.structures == b.structures


def test_a_streamed_run_resumes(tmp_path, small_structures, invoke):
    """The CLI streams its input; an interrupted run continues from the saved chunks."""
    path = _csv(tmp_path / "s.csv.gz", small_structures, 10)
    out = tmp_path / "o.h5"
    full = tmp_path / "full.h5"
    assert invoke("simulate", path, "-o", full, "--chunk-size", "3", "-q").exit_code == 0
    parts = out.with_name(out.name + ".partial.d")
    assert (
        invoke("simulate", path, "-o", out, "--chunk-size", "3", "--limit", "6", "-q").exit_code
        == 0
    )
    # a run that stopped after two chunks: its folder of finished chunks, as a kill leaves it
    from xtal_cli.io.structures import collect_items, sources_key
    from xtal_cli.xrd.simulate import _Parts, _simulate_chunk

    settings = SimulationSettings(1.54056, "CuKa1", 0.0, 90.0)
    key = sources_key([str(path)])
    p = _Parts(out, settings, key, 3)
    p.open(False)
    items = collect_items([str(path)])
    for start in (0, 3):
        results = _simulate_chunk(items[start : start + 3], start, settings)
        results[0]["labels"]["formula"] = f"kept-{start}"  # marks what resume reuses
        p.save_results(start, results)
    result = invoke("simulate", path, "-o", out, "--chunk-size", "3", "--resume", "-q")
    assert result.exit_code == 0, result.output
    assert not parts.exists()
    a, b = read_patterns(out), read_patterns(full)
    assert a.ids == b.ids and a.structures == b.structures
    assert list(a.labels["formula"][[0, 3]]) == ["kept-0", "kept-3"]
    assert list(a.labels["formula"][6:]) == list(b.labels["formula"][6:])


def test_a_csv_without_cif_column_fails_before_any_work(tmp_path, invoke):
    bad = tmp_path / "bad.csv"
    bad.write_text("material_id,structure\nm1,x\n")
    result = invoke("simulate", bad, "-o", tmp_path / "o.h5", "-q")
    assert result.exit_code == 2 and "no 'cif' column" in result.stderr
    assert not (tmp_path / "o.h5.partial.d").exists()


def test_a_truncated_csv_gz_is_one_clear_line(tmp_path, small_structures, invoke):
    """A stream that breaks mid-file: the row it broke after, exit 2, no traceback."""
    path = _csv(tmp_path / "s.csv.gz", small_structures, 40)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    result = invoke("simulate", path, "-o", tmp_path / "o.h5", "--chunk-size", "4")
    assert result.exit_code == 2
    assert "cannot be read as CSV after row" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "o.h5").exists()


def test_a_folder_is_walked_in_sorted_order(tmp_path):
    """The lazy folder walk gives sorted(rglob)'s order (paths compare part by part)."""
    from xtal_cli.io.structures import STRUCTURE_SUFFIXES, _suffix, expand_sources

    for rel in ("b.cif", "b/x.cif", "a.cif", "A.cif", "b-c.cif", "b/a/z.cif", "c.csv", "d.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    expected = sorted(
        p for p in tmp_path.rglob("*") if p.is_file() and _suffix(p) in STRUCTURE_SUFFIXES
    )
    assert expand_sources([str(tmp_path)]) == expected
    assert [p.name for p in expected][2:5] == ["z.cif", "x.cif", "b-c.cif"]
