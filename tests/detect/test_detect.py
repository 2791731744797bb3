"""train-detector / detect-phase: a detector trained for seconds on NaCl (target) against Si.

One detector is trained once per session through the CLI (a few hundred mixtures); the tests
check that it separates held-out mixtures, that classes follow the published thresholds, that
scans of another wavelength or window and corrupted folders are refused with one line, and
that an interrupted training resumes exactly where it stopped.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

WL = 1.540598


@pytest.fixture(scope="session")
def phases(tmp_path_factory, small_structures):
    from pymatgen.io.cif import CifWriter

    d = tmp_path_factory.mktemp("phases")
    for name in ("NaCl", "Si"):
        CifWriter(small_structures[name], symprec=0.01).write_file(d / f"{name}.cif")
    return d / "NaCl.cif", d / "Si.cif"


def _maker(phases, grid):
    from xtal_cli.detect.mixtures import MixtureMaker, phase_lines
    from xtal_cli.identify.candidates import load_candidates

    target, other = load_candidates([str(phases[0]), str(phases[1])])
    lo, hi = float(grid[0]), float(grid[-1])
    return MixtureMaker(
        phase_lines(target, WL, (lo, hi)), [phase_lines(other, WL, (lo, hi))], grid, WL
    )


@pytest.fixture(scope="session")
def detector(tmp_path_factory, phases):
    """A detector trained through the CLI on 2 × 512 mixtures (a few seconds on one core)."""
    from typer.testing import CliRunner

    from xtal_cli.cli import app

    out = tmp_path_factory.mktemp("det") / "nacl"
    args = ["train-detector", str(phases[0]), "--others", str(phases[1]), "-o", str(out),
            "--epochs", "2", "--samples", "512", "--val-samples", "200", "--batch-size", "32",
            "-j", "1", "-q"]  # fmt: skip
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="session")
def scans(tmp_path_factory, phases):
    """Six simulated measured scans 8-90° at a 0.02° step (.xy, no wavelength in the file):
    (folder, {file name: has the target})."""
    d = tmp_path_factory.mktemp("scans")
    grid = np.arange(8.0, 90.0001, 0.02)
    maker = _maker(phases, grid)
    rng = np.random.default_rng(11)
    labels = {}
    for k in range(6):
        y, label, _w, _names = maker.draw(rng)
        name = f"scan{k}.xy"
        np.savetxt(d / name, np.c_[grid, 1000 * y])
        labels[name] = bool(label)
    np.savetxt(d.parent / "short.xy", np.c_[grid[grid < 60], np.ones((grid < 60).sum())])
    return d, labels


def test_detector_separates_held_out_mixtures(detector, phases):
    """Fresh mixtures drawn from another seed than training or the held-out report."""
    from xtal_cli.detect.detector import load_detector
    from xtal_cli.detect.train import roc_auc

    det = load_detector(detector)
    X, y, _w = _maker(phases, det.grid).batch(400, 12345)
    p = det.predict(X)
    assert roc_auc(y, p) > 0.7
    meta = json.loads((detector / "detector.json").read_text())
    assert meta["layout"] == "detector/1" and meta["target"]["name"] == "NaCl Fm-3m"
    assert meta["evaluation"]["auc"] > 0.7
    assert (detector / "calibration.png").stat().st_size > 1000
    ev = json.loads((detector / "evaluation.json").read_text())
    assert ev["at_0.95"]["tp"] + ev["at_0.95"]["fn"] == ev["positives"]


def test_classes_follow_the_published_thresholds():
    from xtal_cli.detect.detector import classify

    cases = {1.0: "A", 0.9991: "A", 0.999: "B", 0.9901: "B", 0.990: "C", 0.9501: "C",
             0.950: "D", 0.5: "D", 0.0: "D"}  # fmt: skip
    assert {p: classify(p) for p in cases} == cases


def test_detect_phase_json_end_to_end(invoke, detector, scans):
    folder, labels = scans
    r = invoke("detect-phase", detector, folder, "--format", "json", "-q")
    assert r.exit_code == 0, r.output
    recs = json.loads(r.stdout)
    assert sorted(rec["scan"].split("/")[-1] for rec in recs) == sorted(labels)
    probs = [rec["probability"] for rec in recs]
    assert probs == sorted(probs, reverse=True)
    from xtal_cli.detect.detector import classify

    assert all(rec["class"] == classify(rec["probability"]) for rec in recs)
    table = invoke("detect-phase", detector, folder / "scan0.xy")
    assert table.exit_code == 0 and "scan0.xy" in table.stdout
    stdin = "\n".join(str(folder / n) for n in ("scan1.xy", "scan2.xy")) + "\n"
    lines = invoke("detect-phase", detector, "-", "--format", "jsonl", "-q", input=stdin)
    assert lines.exit_code == 0
    assert {json.loads(ln)["scan"] for ln in lines.stdout.splitlines()} == {
        str(folder / "scan1.xy"),
        str(folder / "scan2.xy"),
    }


def test_other_wavelength_or_window_is_refused(invoke, detector, scans):
    folder, _ = scans
    r = invoke("detect-phase", detector, folder / "scan0.xy", "-w", "MoKa1")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "0.70930 Å" in r.stderr and "trained for" in r.stderr
    r = invoke("detect-phase", detector, folder.parent / "short.xy")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "covers 2θ" in r.stderr and "10-80°" in r.stderr


def test_corrupted_or_incomplete_folder_is_refused(invoke, detector, scans, tmp_path):
    from xtal_cli.detect.detector import load_detector
    from xtal_cli.errors import XtalError

    bad = tmp_path / "bad"
    shutil.copytree(detector, bad)
    raw = bytearray((bad / "model.pt").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (bad / "model.pt").write_bytes(bytes(raw))
    with pytest.raises(XtalError, match="checksum"):
        load_detector(bad)
    r = invoke("detect-phase", bad, scans[0] / "scan0.xy")
    assert r.exit_code == 2 and "Traceback" not in r.output and "checksum" in r.stderr
    (bad / "model.pt").unlink()
    with pytest.raises(XtalError, match="no model.pt"):
        load_detector(bad)
    (bad / "detector.json").write_text("{not json")
    with pytest.raises(XtalError, match="JSON"):
        load_detector(bad)
    (bad / "detector.json").unlink()
    with pytest.raises(XtalError, match="not a detector folder"):
        load_detector(bad)


def test_interrupted_training_resumes_where_it_stopped(phases, tmp_path):
    """1 epoch, then --resume to 2, equals 2 epochs in one go (same mixtures, same weights)."""
    import torch

    from xtal_cli.detect.train import DetectorTrainSettings, train_detector
    from xtal_cli.errors import XtalError

    def run(out, epochs, resume=False):
        s = DetectorTrainSettings(epochs=epochs, samples_per_epoch=128, batch_size=32,
                                  val_samples=40, schedule="constant", threads=1)  # fmt: skip
        return train_detector(str(phases[0]), [str(phases[1])], out, s, resume=resume)

    run(tmp_path / "a", 1)
    first = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    with pytest.raises(XtalError, match="--resume"):
        run(tmp_path / "a", 2)
    meta = run(tmp_path / "a", 2, resume=True)
    assert meta["training"]["epochs_done"] == 2
    assert len((tmp_path / "a" / "metrics.jsonl").read_text().splitlines()) == 2
    resumed = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    run(tmp_path / "b", 2)
    straight = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    key = "head.2.weight"
    assert not torch.equal(first[key], resumed[key])
    for k in straight:
        assert torch.allclose(straight[k].float(), resumed[k].float(), atol=1e-5), k
    with pytest.raises(XtalError, match="larger --epochs"):
        run(tmp_path / "a", 2, resume=True)


def test_several_structures_count_as_one_target(phases, small_structures, tmp_path):
    """Polymorphs or end members given together: a positive holds one of them."""
    from pymatgen.io.cif import CifWriter

    from xtal_cli.detect.mixtures import MixtureMaker, phase_lines
    from xtal_cli.detect.train import target_identity
    from xtal_cli.identify.candidates import load_candidates

    CifWriter(small_structures["ZnO"], symprec=0.01).write_file(tmp_path / "ZnO.cif")
    cands = load_candidates([str(phases[0]), str(tmp_path / "ZnO.cif"), str(phases[1])])
    assert target_identity(cands[:2])["variants"] == ["NaCl Fm-3m", "ZnO P6_3mc"]
    grid = np.arange(10.0, 80.0001, 0.04)
    lines = [phase_lines(c, WL, (10.0, 80.0)) for c in cands]
    maker = MixtureMaker(lines[:2], lines[2:], grid, WL)
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(40):
        _y, label, w, names = maker.draw(rng)
        assert (label == 1) == (w > 0) and ("Si Fd-3m" in names or label == 1)
        seen.update(n for n in names if n != "Si Fd-3m")
    assert seen == {"NaCl Fm-3m", "ZnO P6_3mc"}


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--min-fraction", "0"], "--min-fraction 0"),
        (["--range", "80", "10"], "--range"),
        (["--step", "0"], "--step 0"),
        (["--epochs", "0"], "--epochs 0"),
        (["--device", "tpu"], "--device tpu"),
        (["-j", "0"], "--jobs 0"),
    ],
)
def test_bad_settings_name_the_flag(invoke, phases, tmp_path, args, flag):
    r = invoke("train-detector", phases[0], "--others", phases[1], "-o", tmp_path / "d", *args)
    assert r.exit_code == 2 and flag in r.stderr and "Traceback" not in r.output
