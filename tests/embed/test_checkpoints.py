"""Embedding models and checkpoints load with ``torch.load(weights_only=True)``: files holding
other Python objects (a hostile pickle, or an old file needing a full unpickle) are refused and
nothing in them runs."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from xtal_cli.embed.infer import load_model
from xtal_cli.embed.train import load_checkpoint, plain_values
from xtal_cli.errors import XtalError


class Payload:
    """Unpickling this runs ``os.system("touch <marker>")``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_model_and_checkpoint_are_refused_and_run_nothing(tmp_path, invoke):
    marker = tmp_path / "ran"
    for kind, name in (("xtal-embed-model", "model.pt"), ("xtal-embed-checkpoint", "ck.pt")):
        torch.save({"kind": kind, "format": 1, "config": Payload(marker)}, tmp_path / name)
    with pytest.raises(XtalError, match="holds Python objects") as err:
        load_model(tmp_path / "model.pt")
    assert "does not open it" in str(err.value) and "train" in str(err.value)
    with pytest.raises(XtalError, match="holds Python objects"):
        load_checkpoint(tmp_path / "ck.pt")
    r = invoke("embed", tmp_path / "model.pt", tmp_path / "x.cif", "-o", tmp_path / "e.h5")
    assert r.exit_code == 2 and "holds Python objects" in r.stderr
    assert not marker.exists()


def test_files_written_by_training_load_weights_only(trained):
    out, _ = trained
    for name in ("model.pt", "checkpoint.pt"):
        payload = torch.load(out / name, map_location="cpu", weights_only=True)
        assert payload["kind"].startswith("xtal-embed-")


def test_plain_values_converts_numpy_and_refuses_objects(tmp_path):
    value = plain_values(
        {"a": np.float64(1.5), "b": np.arange(3), "c": (np.int64(2), "x"), "d": tmp_path}
    )
    assert value == {"a": 1.5, "b": [0, 1, 2], "c": (2, "x"), "d": str(tmp_path)}
    assert type(value["a"]) is float and type(value["c"][0]) is int
    torch.save(value, tmp_path / "v.pt")
    assert torch.load(tmp_path / "v.pt", weights_only=True) == value
    with pytest.raises(TypeError, match="weights-only"):
        plain_values({"cfg": object()})


def test_embed_scans_equals_resampled_profiles(trained):
    """Embedder.embed_scans (the API's way to embed measured scans) is resample + embed."""
    import xtal_cli as xtal
    from xtal_cli.embed.infer import resample_scan

    embedder = xtal.load_embedder(trained[0])
    scan = xtal.read_scan("xtal_cli/data/examples/Y2O3/Y2O3.xy", wavelength="CuKa1")
    got = embedder.embed_scans([scan, scan])
    want = embedder.embed_profiles(resample_scan(scan, embedder.cfg)[None])
    assert got.shape == (2, embedder.cfg.dim)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
