"""Model files cannot run code: old pickle bundles, pickles hidden in HDF5, and broken files are
refused with one clear sentence, and nothing inside them is ever executed."""

from __future__ import annotations

import os
import pickle

import h5py
import numpy as np
import pytest

from xtal_cli.errors import XtalError
from xtal_cli.symmetry.estimator import SymmetryModel


class Payload:
    """Unpickling this runs ``os.system("touch <marker>")``: what a hostile model file would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def model_file(pattern_set, tmp_path_factory):
    from xtal_cli.symmetry.features import featurize_patterns

    fs = featurize_patterns(pattern_set, unit="q")
    path = tmp_path_factory.mktemp("files") / "good.h5"
    SymmetryModel(n_estimators=5, seed=0).fit(fs).save(path)
    return path


def test_the_payload_is_live(tmp_path):
    """Control: unpickling the payload does create its marker (so its absence below means
    the loader never unpickled it)."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_old_joblib_bundle_with_code_is_refused_unopened(invoke, tmp_path, compress):
    import joblib

    marker = tmp_path / "ran"
    old = tmp_path / "symmetry.joblib"
    joblib.dump({"xtal_layout": "symmetry-model/1", "estimators": Payload(marker)}, old,
                compress=compress)  # fmt: skip
    with pytest.raises(XtalError) as err:
        SymmetryModel.load(old)
    msg = str(err.value)
    assert msg.startswith(f"{old}: a symmetry-model/1 pickle bundle from an older xtal")
    assert "pickles can run code" in msg and "xtal train-symmetry" in msg
    r = invoke("predict-symmetry", old, tmp_path / "whatever.xy")
    assert r.exit_code == 2 and "pickle bundle" in r.stderr and "Traceback" not in r.output
    assert not marker.exists()


def test_plain_pickle_and_zip_are_refused_unopened(tmp_path):
    import torch

    marker = tmp_path / "ran"
    plain = tmp_path / "model.pkl"
    plain.write_bytes(pickle.dumps(Payload(marker), protocol=4))
    with pytest.raises(XtalError, match="pickle bundle"):
        SymmetryModel.load(plain)
    archive = tmp_path / "model.pt"
    torch.save({"x": Payload(marker)}, archive)
    with pytest.raises(XtalError, match="zip archive"):
        SymmetryModel.load(archive)
    assert not marker.exists()


def _copy(src, dst):
    dst.write_bytes(src.read_bytes())
    return dst


def test_pickle_in_the_metadata_attribute_is_refused(model_file, tmp_path):
    marker = tmp_path / "ran"
    bad = _copy(model_file, tmp_path / "meta.h5")
    with h5py.File(bad, "a") as h5:
        h5.attrs["metadata"] = np.void(pickle.dumps(Payload(marker)))
    with pytest.raises(XtalError, match="metadata is missing or not JSON"):
        SymmetryModel.load(bad)
    with h5py.File(bad, "a") as h5:  # as text: still only JSON is parsed, never unpickled
        h5.attrs["metadata"] = pickle.dumps(Payload(marker), protocol=0).decode("latin-1")
    with pytest.raises(XtalError, match="not JSON"):
        SymmetryModel.load(bad)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["opaque", "object-ref", "extra-attr"])
def test_pickle_in_a_dataset_is_refused(model_file, tmp_path, kind):
    marker = tmp_path / "ran"
    bad = _copy(model_file, tmp_path / f"{kind}.h5")
    blob = pickle.dumps(Payload(marker))
    with h5py.File(bad, "a") as h5:
        if kind == "opaque":
            h5.create_dataset("space_group/extra", data=np.void(blob))
        elif kind == "object-ref":
            ref = h5.create_dataset("refs", (1,), dtype=h5py.ref_dtype)
            ref[0] = h5["space_group/roots"].ref
        else:
            h5.attrs["payload"] = np.frombuffer(blob, dtype=np.uint8)
    with pytest.raises(XtalError) as err:
        SymmetryModel.load(bad)
    assert str(err.value).startswith(str(bad))
    assert "dtype" in str(err.value) or "not text" in str(err.value)
    assert not marker.exists()


def test_broken_files_are_refused_clearly(model_file, patterns_h5, tmp_path, invoke):
    cases = {
        "missing.h5": (None, "no such file"),
        "folder.h5": ("dir", "is a folder"),
        "empty.h5": (b"", "empty file"),
        "text.h5": (b"hello, not a model", "not HDF5"),
        "cut.h5": (model_file.read_bytes()[:3000], "truncated or corrupted"),
    }
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        if content == "dir":
            path.mkdir()
        elif content is not None:
            path.write_bytes(content)
        with pytest.raises(XtalError, match=expected) as err:
            SymmetryModel.load(path)
        assert str(err.value).startswith(str(path)), name
    with pytest.raises(XtalError, match=r"holds patterns \(written by xtal simulate\)"):
        SymmetryModel.load(patterns_h5)
    bare = tmp_path / "bare.h5"
    with h5py.File(bare, "w") as h5:
        h5["x"] = np.arange(3)
    with pytest.raises(XtalError, match="no 'xtal_layout' attribute"):
        SymmetryModel.load(bare)
    incomplete = _copy(model_file, tmp_path / "incomplete.h5")
    with h5py.File(incomplete, "a") as h5:
        del h5["space_group/nodes"]
    with pytest.raises(XtalError, match="incomplete or inconsistent"):
        SymmetryModel.load(incomplete)
    r = invoke("predict-symmetry", tmp_path / "cut.h5", patterns_h5)
    assert r.exit_code == 2 and "cut.h5" in r.stderr and "Traceback" not in r.output


@pytest.mark.parametrize(
    ("field", "index", "value", "what"),
    [
        ("left", 0, 0, "left child"),  # a node pointing at itself: traversal would never end
        ("right", 0, 10**8, "right child"),  # past the node table: out-of-bounds reads
        ("feature", 0, 99, "feature"),
    ],
)
def test_forest_links_that_would_misguide_the_kernel_are_refused(
    model_file, tmp_path, field, index, value, what
):
    """The compiled traversal trusts every index; a crafted file must not reach it."""
    import shutil

    bad = tmp_path / "links.h5"
    shutil.copy(model_file, bad)
    with h5py.File(bad, "r+") as h5:
        nodes = h5["crystal_system/nodes"][()]
        nodes[field][index] = value
        h5["crystal_system/nodes"][...] = nodes
    with pytest.raises(XtalError, match=what):
        SymmetryModel.load(bad)


def test_forest_leaf_classes_outside_the_classes_are_refused(model_file, tmp_path):
    import shutil

    bad = tmp_path / "leaf.h5"
    shutil.copy(model_file, bad)
    with h5py.File(bad, "r+") as h5:
        classes = h5["space_group/leaf_classes"][()]
        classes[0] = 30000
        h5["space_group/leaf_classes"][...] = classes
    with pytest.raises(XtalError, match="leaf class"):
        SymmetryModel.load(bad)
