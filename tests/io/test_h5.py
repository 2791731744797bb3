import h5py
import numpy as np
import pytest

from xtal_cli.errors import XtalError
from xtal_cli.io import h5 as h5io


def _pattern_set(n=3):
    rng = np.random.default_rng(0)
    return h5io.PatternSet(
        ids=[f"x{i}" for i in range(n)],
        labels={
            "formula": np.array(["NaCl"] * n, dtype=object),
            "space_group": np.array([225] * n),
            "space_group_symbol": np.array(["Fm-3m"] * n, dtype=object),
            "crystal_system": np.array(["cubic"] * n, dtype=object),
            "n_sites": np.array([8] * n),
        },
        lattice=np.tile([5.64, 5.64, 5.64, 90, 90, 90], (n, 1)),
        structures=["{}"] * n,
        sticks_two_theta=[np.sort(rng.uniform(10, 90, k)) for k in (3, 0, 5)][:n],
        sticks_intensity=[rng.uniform(0, 100, k) for k in (3, 0, 5)][:n],
        sticks_hkl=[np.ones((k, 3), int) for k in (3, 0, 5)][:n],
        meta={"band_gap": np.array([1.0, np.nan, 2.0])[:n]},
        failures=[("bad", "parse", "not a CIF")],
        attrs={"wavelength": 1.54056},
    )


def test_patterns_round_trip(tmp_path):
    ps = _pattern_set()
    h5io.write_patterns(tmp_path / "p.h5", ps)
    back = h5io.read_patterns(tmp_path / "p.h5")
    assert back.ids == ps.ids
    assert back.failures == ps.failures
    assert back.attrs["wavelength"] == 1.54056
    assert back.attrs["xtal_layout"] == "patterns/1"
    for a, b in zip(back.sticks_two_theta, ps.sticks_two_theta):
        np.testing.assert_array_equal(a, b)
    assert list(back.labels["crystal_system"]) == ["cubic"] * 3
    np.testing.assert_array_equal(back.meta["band_gap"], ps.meta["band_gap"])


def test_truncated_file_is_reported(tmp_path):
    path = tmp_path / "p.h5"
    h5io.write_patterns(path, _pattern_set())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(XtalError, match=r"p\.h5.*(truncated|corrupted|cannot be read)"):
        h5io.read_patterns(path)


def test_wrong_kind_and_version_and_foreign_files(tmp_path):
    path = tmp_path / "p.h5"
    h5io.write_patterns(path, _pattern_set())
    with pytest.raises(XtalError, match="holds patterns .*features are needed"):
        h5io.open_checked(path, "features")
    with h5py.File(path, "a") as f:
        f.attrs["xtal_layout"] = "patterns/99"
    with pytest.raises(XtalError, match="layout patterns/99"):
        h5io.read_patterns(path)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = 1
    with pytest.raises(XtalError, match="not an xtal file"):
        h5io.read_patterns(plain)
    with pytest.raises(XtalError, match="no such file"):
        h5io.read_patterns(tmp_path / "missing.h5")
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(XtalError, match="empty"):
        h5io.read_patterns(tmp_path / "empty.h5")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with h5io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_outputs_follow_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        h5io.write_patterns(tmp_path / "p.h5", _pattern_set())
    finally:
        os.umask(old)
    assert (tmp_path / "p.h5").stat().st_mode & 0o777 == 0o644
