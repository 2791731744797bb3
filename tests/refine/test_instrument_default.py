"""refine-bbo without an instrument file: the laboratory default, the scan header's wavelengths,
what the report and stderr say, and the GSAS-II engine's copy of the default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.io.scans import read_scan
from xtal_cli.refine.bbo import Problem
from xtal_cli.refine.instrument import (
    LAB_DEFAULT,
    Instrument,
    default_instrument,
    read_instrument,
)

# GSAS-II failed once in CI with an unpickling error ("could not find MARK") while its tests ran
# on two workers at once (alone they pass): they now share one xdist worker (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("gsas2")

Y2O3 = Path(__file__).resolve().parents[2] / "xtal_cli" / "data" / "examples" / "Y2O3"
CHEAP = "cycles: 2\nfinal_cycles: 6\n"


def test_default_instrument_is_gsas2_lab_cu_and_validates_itself():
    inst = default_instrument()
    for key, value in LAB_DEFAULT.items():
        assert getattr(inst, key) == value, key
    assert inst.lines() == [(1.5405, 1.0), (1.5443, 0.5)]
    assert "defaultIparms" in inst.source
    inst.validate()
    for field, value in (("lam1", 0.0), ("lam2", 12.0), ("ratio", 1.5), ("polariz", -0.1),
                         ("gonio_radius", 0.0), ("SH_L", -0.01)):  # fmt: skip
        with pytest.raises(ParameterError, match=f"^{field}="):
            Instrument(**{**LAB_DEFAULT, field: value})


def test_default_written_as_instprm_reads_back(tmp_path):
    inst = default_instrument()
    path = tmp_path / "default.instprm"
    path.write_text(inst.instprm())
    back = read_instrument(path)
    assert {k: getattr(back, k) for k in LAB_DEFAULT} == LAB_DEFAULT
    # GSAS-II's own ';'-joined layout (defaultIparms.py) reads too
    joined = tmp_path / "joined.instprm"
    joined.write_text("#GSAS-II\nType:PXC;Bank:1\nLam1:1.5405;Lam2:1.5443;Polariz.:0.7\n")
    assert read_instrument(joined).lam2 == 1.5443 and read_instrument(joined).polariz == 0.7
    bad = tmp_path / "bad.instprm"
    bad.write_text("#GSAS-II\nType:PXC\nLam:1.54;Polariz.:3\n")
    with pytest.raises(XtalError, match="bad.instprm: polariz=3"):
        read_instrument(bad)


def _uxd(path: Path, wl1: float, wl2: float, ratio: float) -> Path:
    counts = " ".join(str(100 + (i % 7)) for i in range(200))
    path.write_text(
        f"_FILEVERSION=1\n_WL1={wl1}\n_WL2={wl2}\n_WLRATIO={ratio}\n_ANODE='Co'\n"
        f"_STEPSIZE=0.02\n_START=20.0\n_COUNTS\n{counts}\n"
    )
    return path


def test_scan_header_wavelengths_are_used(tmp_path):
    scan = read_scan(_uxd(tmp_path / "co.uxd", 1.78897, 1.79285, 0.48))
    inst = default_instrument(scan)
    assert (inst.lam1, inst.lam2, inst.ratio) == (1.78897, 1.79285, 0.48)
    assert "co.uxd" in inst.source and inst.polariz == LAB_DEFAULT["polariz"]
    # a file without a wavelength keeps the Cu default
    plain = default_instrument(read_scan(Y2O3 / "Y2O3.xy"))
    assert (plain.lam1, plain.lam2, plain.ratio) == (1.5405, 1.5443, 0.5)
    # Problem without an instrument: the same default, and a GSAS-II-readable copy of it
    problem = Problem(str(tmp_path / "co.uxd"), str(Y2O3 / "Y2O3.cif"))
    assert problem.instrument_label() == "default"
    assert problem.instrument_parameters().lam1 == 1.78897
    written = read_instrument(problem.instrument_file(tmp_path))
    assert (written.lam1, written.lam2, written.ratio) == (1.78897, 1.79285, 0.48)


def test_gsas2_reads_the_default_as_bragg_brentano(tmp_path):
    from xtal_cli.refine import gsas2

    if not gsas2.available():
        pytest.skip("GSAS-II is not importable (optional engine)")
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        from GSASII import GSASIIfiles as G2fil

    problem = Problem(str(Y2O3 / "Y2O3.xy"), str(Y2O3 / "Y2O3.cif"))
    lines = Path(problem.instrument_file(tmp_path)).read_text().splitlines(keepends=True)
    sample: dict = {}
    _, (iparm, _) = G2fil.ReadInstprm(lines, 1, sample)
    assert sample["Type"] == "Bragg-Brentano" and sample["Gonio. radius"] == 200.0
    assert iparm["Lam1"][1] == 1.5405 and iparm["I(L2)/I(L1)"][1] == 0.5
    assert iparm["Polariz."][1] == 0.7 and iparm["SH/L"][1] == 0.002


def test_refine_bbo_without_instrument_reports_the_default(invoke, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(CHEAP)
    out = tmp_path / "out"
    r = invoke("refine-bbo", Y2O3 / "Y2O3.xy", "--cif", Y2O3 / "Y2O3.cif", "--range", "15", "60",
               "--trials", "3", "--seed", "1", "--space", space, "-o", out, "--quiet",
               "--format", "json")  # fmt: skip
    assert r.exit_code == 0, r.output
    said = [ln for ln in r.stderr.splitlines() if "no instrument file" in ln]
    assert len(said) == 1 and "λ1 1.5405 Å" in said[0] and "polarisation 0.7" in said[0]
    report = json.loads((out / "report.json").read_text())
    assert report["instrument"] is None and report["default_instrument"] is True
    params = report["instrument_parameters"]
    assert {k: params[k] for k in LAB_DEFAULT} == LAB_DEFAULT
    assert 0 < report["best"]["rwp"] < 100
    # the study remembers it ran on the default: resuming it with a file is refused
    r = invoke("refine-bbo", Y2O3 / "Y2O3.xy", "--cif", Y2O3 / "Y2O3.cif", "--instrument",
               Y2O3 / "INST_XRY.PRM", "--range", "15", "60", "--trials", "4", "--space", space,
               "-o", out, "--quiet", "--resume")  # fmt: skip
    assert r.exit_code == 2 and "another instrument" in r.stderr


def test_licoo2_bruker_scan_refines_on_the_default(invoke, shared_data, tmp_path):
    folder = shared_data / "measured" / "bbo-rietveld" / "LiCoO2"
    space = tmp_path / "space.yaml"
    space.write_text(CHEAP)
    out = tmp_path / "out"
    r = invoke("refine-bbo", folder / "Powder-data-Bruker" / "LiCoO2.UXD", "--cif",
               folder / "COD" / "4505482.cif", "--trials", "4", "--seed", "1", "--space", space,
               "-o", out, "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    report = json.loads((out / "report.json").read_text())
    params = report["instrument_parameters"]
    # the UXD header: _WL1=1.5406, _WL2=1.54443, _WLRATIO=0.514
    assert (params["lam1"], params["lam2"], params["ratio"]) == (1.5406, 1.54443, 0.514)
    assert report["best"]["rwp"] < 40 and (out / "rietveld.png").is_file()


def test_gsas2_engine_runs_on_the_default(invoke, tmp_path):
    from xtal_cli.refine import gsas2

    if not gsas2.available():
        pytest.skip("GSAS-II is not importable (optional engine)")
    out = tmp_path / "out"
    r = invoke("refine-bbo", Y2O3 / "Y2O3.xy", "--cif", Y2O3 / "Y2O3.cif", "--range", "15", "60",
               "--trials", "1", "--seed", "1024", "--engine", "gsas2", "-o", out,
               "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    report = json.loads((out / "report.json").read_text())
    assert report["engine"] == "gsas2" and report["default_instrument"] is True
    assert 0 < report["best"]["rwp"] < 30
