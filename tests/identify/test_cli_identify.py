"""``xtal identify-phases``: answers, output files, batches with failures, bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

PNG = b"\x89PNG\r\n\x1a\n"


def _run(*args):
    from xtal_cli.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def answered(mixture, tmp_path_factory):
    """One run of the command on the mixture, json on stdout (shared by the tests below)."""
    out = tmp_path_factory.mktemp("answered") / "out"
    result = _run(
        "identify-phases", mixture.scan, "-c", mixture.candidates, "-w", "CuKa",
        "-o", out, "--format", "json", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_both_phases_found_with_their_fractions(answered, mixture):
    _, records = answered
    assert len(records) == 1
    rec = records[0]
    assert rec["status"] == "ok" and rec["error"] is None
    found = {p["formula"]: p for p in rec["phases"]}
    assert set(found) == set(mixture.truth)
    for formula, w in mixture.truth.items():
        assert found[formula]["weight_fraction"] == pytest.approx(w, abs=0.02), formula
        assert 0 < found[formula]["weight_fraction_esd"] < 0.05
    assert found["NaCl"]["cell"][0] == pytest.approx(5.64, abs=0.01)
    assert found["Si"]["cell"][0] == pytest.approx(5.431, abs=0.01)
    assert 0 < rec["rwp"] < 30 and rec["gof"] > 0


def test_report_plot_and_refined_cifs(answered, mixture):
    from xtal_cli.refine.phases import read_phase

    out, records = answered
    folder = out / "mix"
    doc = json.loads((folder / "report.json").read_text())
    assert doc["format"] == "identify-phases/1" and doc["command"] == "identify-phases"
    assert doc["xtal_version"] and doc["settings"]["max_phases"] == 4
    assert doc["settings"]["wavelength"] == "CuKa"
    assert {p["formula"] for p in doc["phases"]} == {"NaCl", "Si"}
    assert doc["hypotheses"][0]["rwp"] == pytest.approx(records[0]["rwp"])
    rejected = {r["formula"]: r["reason"] for r in doc["rejected"]}
    assert "ZnO" in rejected and rejected["ZnO"]
    assert (folder / "rietveld.png").read_bytes()[:8] == PNG
    cifs = doc["files"]["cifs"]
    assert len(cifs) == 2
    cells = {p["name"]: p["cell"] for p in doc["phases"]}
    for name in cifs:
        text = (folder / name).read_text()
        assert text.startswith("# refined by xtal identify-phases")
        phase = read_phase(folder / name)  # the refined CIF reads back, at the refined cell
        refined = next(c for n, c in cells.items() if name.startswith(n.split()[0] + "_"))
        assert phase.cell[0] == pytest.approx(refined[0], abs=2e-4)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_scans"] == 1 and summary["answered"] == 1 and summary["failed"] == 0
    assert summary["scans"][0]["scan"] == str(mixture.scan)


def test_finished_scans_need_resume_or_overwrite(answered, mixture):
    out, records = answered
    args = ["identify-phases", mixture.scan, "-c", mixture.candidates, "-w", "CuKa", "-o", out]
    again = _run(*args, "-q")
    assert again.exit_code == 2
    assert "--resume" in again.stderr and "--overwrite" in again.stderr
    both = _run(*args, "-q", "--resume", "--overwrite")
    assert both.exit_code == 2 and "Traceback" not in both.output
    kept = _run(*args, "-q", "--resume", "--format", "jsonl")
    assert kept.exit_code == 0, kept.output
    rec = json.loads(kept.stdout.strip())
    assert rec["resumed"] is True and rec["phases"] == records[0]["phases"]
    table = _run(*args, "-q", "--resume")
    assert table.exit_code == 0 and "NaCl" in table.stdout and "Si Fd-3m" in table.stdout


def test_batch_with_an_unreadable_scan_answers_the_other(mixture, tmp_path):
    broken = tmp_path / "broken.xy"
    broken.write_text("this is not a diffraction pattern\n")
    out = tmp_path / "out"
    result = _run(
        "identify-phases", broken, mixture.scan, "-c", mixture.candidates, "-w", "CuKa",
        "-o", out, "-j", "2", "--format", "csv", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["status"] for r in rows] == ["failed", "ok"]  # input order kept
    assert "broken.xy" in rows[0]["error"]
    assert sorted(rows[1]["phases"].split(";")) == ["NaCl Fm-3m", "Si Fd-3m"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["answered"], summary["failed"]) == (1, 1)
    failed = next(s for s in summary["scans"] if s["status"] == "failed")
    assert failed["scan"] == str(broken) and "broken.xy" in failed["error"]
    assert not (out / "broken" / "report.json").exists()  # so --resume tries it again
    assert (out / "mix" / "report.json").exists()


def _one_error_line(result, *words):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_scan_without_a_wavelength(mixture, tmp_path):
    r = _run("identify-phases", mixture.scan, "-c", mixture.candidates, "-o", tmp_path, "-q")
    _one_error_line(r, "mix.xy", "no wavelength", "--wavelength")


def test_candidate_cif_that_does_not_parse(mixture, tmp_path):
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\n_cell_length_a 5\nloop_\n_atom_site_label\nfoo bar baz\n")
    r = _run("identify-phases", mixture.scan, "-c", bad, "-w", "CuKa", "-o", tmp_path / "o", "-q")
    _one_error_line(r, "broken.cif", "cannot be read")


def test_empty_candidate_folder(mixture, tmp_path):
    empty = tmp_path / "none"
    empty.mkdir()
    r = _run("identify-phases", mixture.scan, "-c", empty, "-w", "CuKa", "-o", tmp_path / "o", "-q")
    _one_error_line(r, str(empty))


def test_elements_that_filter_out_every_candidate(mixture, tmp_path):
    r = _run(
        "identify-phases", mixture.scan, "-c", mixture.candidates, "--elements", "Li,O",
        "-w", "CuKa", "-o", tmp_path / "o", "-q",
    )  # fmt: skip
    _one_error_line(r, "no candidate phases", "Li,O")


def test_scan_outside_the_candidates_range(mixture, tmp_path):
    r = _run(
        "identify-phases", mixture.low, "-c", mixture.candidates, "-w", "CuKa",
        "-o", tmp_path / "o", "-q",
    )  # fmt: skip
    _one_error_line(r, "low.xy", "2θ range")


def test_bad_options_name_their_flag(mixture, tmp_path):
    base = ["identify-phases", mixture.scan, "-c", mixture.candidates, "-o", tmp_path / "o", "-q"]
    _one_error_line(_run(*base, "--max-phases", "0"), "--max-phases")
    _one_error_line(_run(*base, "--range", "50", "30"), "--range")
    _one_error_line(_run(*base, "--format", "xml"), "--format")
    _one_error_line(_run(*base, "--wavelength", "Cux"), "Cux")
    _one_error_line(_run(*base, "--backend", "spark", "-w", "CuKa"), "--backend")


def test_scan_folders_are_unique_and_stable(tmp_path):
    from pathlib import Path

    from xtal_cli.identify.report import scan_folders

    paths = [Path("a/s1.xy"), Path("b/s1.xy"), Path("a/s2.xy"), Path("a/s2.xrdml")]
    names = scan_folders(paths)
    assert names == ["a-s1", "b-s1", "a-s2.xy", "a-s2.xrdml"]
    assert scan_folders(paths) == names and len(set(names)) == len(names)
