"""train-embed / embed / neighbors from the command line, including each bad-input class."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[2] / "xtal_cli" / "data" / "examples"


@pytest.fixture(scope="module")
def structure_emb(trained, patterns_h5, tmp_path_factory):
    from typer.testing import CliRunner

    from xtal_cli.cli import app

    out = tmp_path_factory.mktemp("emb") / "structure.h5"
    r = CliRunner().invoke(app, ["embed", str(trained[0]), str(patterns_h5), "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    return out


def test_embed_keeps_ids_labels_and_metadata(structure_emb, patterns_h5):
    from xtal_cli.embed.store import read_embeddings
    from xtal_cli.io.h5 import read_patterns

    es = read_embeddings(structure_emb)
    ps = read_patterns(patterns_h5, sticks=False)
    assert es.ids == ps.ids and es.embedding.shape == (len(ps), 64)
    assert np.isfinite(es.embedding).all()
    assert list(es.labels["formula"]) == list(ps.labels["formula"])
    assert np.allclose(es.meta["band_gap"], ps.meta["band_gap"], equal_nan=True)
    assert es.attrs["modality"] == "structure"


def test_neighbors_by_id_and_formula(structure_emb, invoke):
    from xtal_cli.embed.store import read_embeddings

    es = read_embeddings(structure_emb)
    r = invoke("neighbors", structure_emb, es.ids[3], "-k", "5", "--format", "json")
    assert r.exit_code == 0, r.output
    recs = json.loads(r.stdout)
    assert len(recs) == 5 and es.ids[3] not in [x["id"] for x in recs]
    dists = [x["distance"] for x in recs]
    assert dists == sorted(dists)
    expected = np.linalg.norm(es.embedding - es.embedding[3], axis=1)
    expected[3] = np.inf
    assert recs[0]["id"] == es.ids[int(np.argmin(expected))]
    assert np.isclose(dists[0], expected.min(), rtol=1e-4)
    assert {"formula", "space_group", "crystal_system", "band_gap"} <= set(recs[0])
    r = invoke("neighbors", structure_emb, es.labels["formula"][7], "-k", "3")
    assert r.exit_code == 0 and "neighbours of" in r.stdout
    # the table fits 80 columns unwrapped: ids, formulas and "Fm-3m (225)" whole; what does
    # not fit is named on stderr
    top = json.loads(
        invoke("neighbors", structure_emb, es.labels["formula"][7], "-k", "3", "-f", "json").stdout
    )
    for rec in top:
        assert rec["id"] in r.stdout and rec["formula"] in r.stdout
        assert f"{rec['space_group_symbol']} ({int(rec['space_group'])})" in r.stdout
    assert "…" not in r.stdout and "more columns" in r.stderr


def test_neighbors_whitened_metric(structure_emb, invoke):
    from xtal_cli.embed.search import Whitening
    from xtal_cli.embed.store import read_embeddings

    es = read_embeddings(structure_emb)
    query = ("neighbors", structure_emb, es.ids[3], "-k", "4", "-f", "json")
    r = invoke(*query, "--metric", "whitened")
    assert r.exit_code == 0, r.output
    recs = json.loads(r.stdout)
    z = Whitening().fit_transform(es.embedding)
    expected = np.linalg.norm(z - z[3], axis=1)
    expected[3] = np.inf
    assert [x["id"] for x in recs] == [es.ids[i] for i in np.argsort(expected)[:4]]
    assert np.allclose([x["distance"] for x in recs], np.sort(expected)[:4], rtol=1e-3)
    r = invoke("neighbors", structure_emb, es.ids[3], "--metric", "cosine")
    assert r.exit_code == 2 and "--metric cosine" in r.output


def test_measured_scan_query_through_the_xrd_encoder(structure_emb, trained, invoke, tmp_path):
    scan = EXAMPLES / "Y2O3" / "Y2O3.xy"
    r = invoke(
        "neighbors", structure_emb, scan, "--model", trained[0], "-k", "3", "--format", "jsonl"
    )
    assert r.exit_code == 0, r.output
    assert len(r.stdout.strip().splitlines()) == 3
    out = tmp_path / "scan.h5"
    r = invoke("embed", trained[0], scan, "--modality", "xrd", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    with h5py.File(out) as h5:
        assert h5["embedding"].shape == (1, 64) and h5.attrs["modality"] == "xrd"


def test_maps_and_intrinsic_dimension(structure_emb, invoke, tmp_path):
    m, grid = tmp_path / "map.png", tmp_path / "elements.png"
    r = invoke(
        "neighbors", structure_emb, "--map", m, "--color-by", "band_gap",
        "--element-map", grid, "--intrinsic-dim", "--format", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert m.stat().st_size > 10_000 and grid.stat().st_size > 10_000
    result = json.loads(r.stdout)[0]["intrinsic_dimension"]
    assert 1 <= result["global"] <= 64 and 1 <= result["local_mean"] <= 25
    r = invoke("neighbors", structure_emb, "--map", m, "--color-by", "nonsense")
    assert r.exit_code == 2 and "no such column" in r.stderr


def test_embeddings_file_without_ids_is_refused(structure_emb, invoke, tmp_path):
    broken = tmp_path / "noids.h5"
    broken.write_bytes(structure_emb.read_bytes())
    with h5py.File(broken, "a") as h5:
        del h5["id"]
    r = invoke("neighbors", broken, "x")
    assert r.exit_code == 2 and "no 'id' column" in r.stderr and "Traceback" not in r.output


def test_checkpoint_of_a_different_model_is_refused(trained, patterns_h5, invoke, tmp_path):
    payload = torch.load(trained[0] / "model.pt", weights_only=True)
    payload["config"]["dim"] = 32  # weights say 64
    other = tmp_path / "other.pt"
    torch.save(payload, other)
    r = invoke("embed", other, patterns_h5, "-o", tmp_path / "e.h5")
    assert r.exit_code == 2 and "different model" in r.stderr
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    r = invoke("embed", tmp_path / "foreign.pt", patterns_h5, "-o", tmp_path / "e.h5")
    assert r.exit_code == 2 and "not an embedding model" in r.stderr
    (tmp_path / "junk.pt").write_text("not a model")
    r = invoke("embed", tmp_path / "junk.pt", patterns_h5, "-o", tmp_path / "e.h5")
    assert r.exit_code == 2 and "cannot be read as a model" in r.stderr


def test_structure_without_a_graph_is_reported(trained, invoke, tmp_path, small_structures):
    from pymatgen.core import Lattice, Structure

    Structure(Lattice.cubic(20.0), ["Na"], [[0, 0, 0]]).to(filename=str(tmp_path / "gas.cif"))
    r = invoke("embed", trained[0], tmp_path / "gas.cif", "-o", tmp_path / "e.h5")
    assert r.exit_code == 2 and "no neighbour within 8 Å" in r.stderr
    small_structures["NaCl"].to(filename=str(tmp_path / "NaCl.cif"))
    r = invoke("embed", trained[0], tmp_path / "gas.cif", tmp_path / "NaCl.cif", "-o",
               tmp_path / "e.h5")  # fmt: skip
    assert r.exit_code == 0 and "1 failures" in r.stderr and "no neighbour" in r.stderr


def test_train_embed_cli_refuses_bad_input_and_needs_resume(patterns_h5, tmp_path, invoke):
    out = tmp_path / "m"
    args = ["train-embed", patterns_h5, "-o", out, "--epochs", "1", "--dim", "8",
            "--batch-size", "64", "-q"]  # fmt: skip
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    assert (out / "metrics.jsonl").exists()
    r = invoke(*args)
    assert r.exit_code == 2 and "--resume" in r.stderr
    r = invoke(*args, "--resume")  # already at epoch 1 of 1: nothing to do, still fine
    assert r.exit_code == 0
    r = invoke("train-embed", tmp_path / "missing.h5", "-o", tmp_path / "m2")
    assert r.exit_code == 2 and "no such file" in r.stderr
