"""Pattern readers: every format on small files, the real shared scans, and malformed input."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from xtal_cli.errors import XtalError
from xtal_cli.io.scans import read_bruker_raw, read_scan

DATA = Path(__file__).resolve().parents[1] / "data" / "scans"
SAMPLE_TT = 20.0 + 0.05 * np.arange(60)


def _sample_counts() -> np.ndarray:
    t = SAMPLE_TT
    y = (
        100
        + 2000 * np.exp(-0.5 * ((t - 21.5) / 0.06) ** 2)
        + 900 * np.exp(-0.5 * ((t - 22.4) / 0.06) ** 2)
    )
    return np.floor(y)


@pytest.mark.parametrize(
    "name, wavelength",
    [
        ("sample.ras", 1.540593),
        ("sample_std.gsa", None),
        ("sample_esd.gsa", None),
        ("sample.fxye", None),
        ("sample_pd.cif", 1.54056),
        ("sample_pd_range.cif", 0.7093),
        ("sample_comma.csv", None),
        ("sample_latin1.xye", None),
    ],
)
def test_specification_files_give_the_same_pattern(name, wavelength):
    scan = read_scan(DATA / name)
    assert np.allclose(scan.two_theta, SAMPLE_TT, atol=1e-6)
    assert np.allclose(scan.counts, _sample_counts(), rtol=1e-4)
    assert scan.wavelength == wavelength
    if scan.sigma is not None and name != "sample.ras":  # RAS σ is that of attenuated counts
        assert np.allclose(scan.sigma, np.sqrt(_sample_counts()), rtol=0.05)


def test_pdcif_reads_ka2_and_ratio():
    scan = read_scan(DATA / "sample_pd.cif")
    assert (scan.wavelength2, scan.ka2_ratio) == (1.54439, 0.5)
    assert scan.meta["format"] == "pdcif"


def test_ras_applies_attenuator_factor():
    scan = read_scan(DATA / "sample.ras")
    assert scan.counts.max() > 1500  # rows stored /10 with factor 10
    assert scan.wavelength2 == 1.544414


def test_caller_wavelength_only_when_file_has_none():
    assert read_scan(DATA / "sample.fxye", wavelength=1.2).wavelength == 1.2
    scan = read_scan(DATA / "sample.ras", wavelength=1.2)
    assert scan.wavelength == 1.540593 and scan.meta["wavelength_source"] == "file"


def test_bruker_raw_and_uxd_excerpts_agree():
    raw = read_scan(DATA / "licoo2_excerpt.raw")
    uxd = read_scan(DATA / "licoo2_excerpt.uxd")
    assert np.array_equal(raw.counts, uxd.counts)
    assert np.allclose(raw.two_theta, uxd.two_theta, atol=1e-9)
    assert raw.wavelength == uxd.wavelength == 1.5406
    assert raw.meta["raw_version"] == 1


def test_licoo2_raw_uxd_dat_give_the_same_numbers(shared_data):
    folder = shared_data / "measured" / "bbo-rietveld" / "LiCoO2" / "Powder-data-Bruker"
    raw, uxd, dat = (read_scan(folder / f"LiCoO2.{ext}") for ext in ("RAW", "UXD", "dat"))
    assert len(raw) == len(uxd) == len(dat) == 4001
    assert np.array_equal(raw.counts, uxd.counts) and np.array_equal(raw.counts, dat.counts)
    assert np.allclose(raw.two_theta, uxd.two_theta, atol=1e-9)
    # the .dat header rounds the start to 16.000 (RAW/UXD: 15.985): half a step, never more
    assert np.max(np.abs(raw.two_theta - dat.two_theta)) <= 0.0151
    assert (uxd.wavelength, uxd.wavelength2, uxd.ka2_ratio) == (1.5406, 1.54443, 0.514)


def test_shared_text_and_xrdml_scans(shared_data):
    m = shared_data / "measured"
    y2o3 = read_scan(m / "bbo-rietveld" / "Y2O3" / "Y2O3.csv")
    assert len(y2o3) == 7351 and y2o3.two_theta[0] == 3.0 and y2o3.wavelength is None
    dsmo = read_scan(m / "bbo-rietveld" / "DSMO" / "dsmo.csv")
    assert len(dsmo) == 5501
    xy = read_scan(m / "xrd-autoanalyzer" / "Spectra" / "Li2MnO3.xy")
    assert len(xy) == 9001 and xy.sigma is None  # third column there is not an uncertainty
    xrdml = next((m / "alab-mixtures" / "precursor_mixture").glob("*.xrdml"))
    scan = read_scan(xrdml)
    assert (scan.wavelength, scan.wavelength2, scan.ka2_ratio) == (1.540598, 1.544426, 0.5)
    assert len(scan) > 8000 and 9 < scan.two_theta[0] < 11


# --- Bruker RAW versions 2-4, written from the layouts the reader documents ----------------


def _raw_v2(tt0, step, y, lam=(1.5406, 1.54439, 0.5)) -> bytes:
    head = b"RAW2" + struct.pack("<H", 1) + bytes(162) + b"2024-01-01 12:00:00 " + b"Cu"
    head += struct.pack("<fff", *lam) + bytes(8) + struct.pack("<f", 100.0) + bytes(42)
    rng = struct.pack("<HH", 48 + 16, len(y)) + bytes(4) + struct.pack("<fff", 1.0, step, tt0)
    rng += bytes(28) + bytes(16)
    return head + rng + np.asarray(y, "<f4").tobytes()


def _raw_v3(tt0, step, y, lam=(1.5406, 1.54439, 0.5)) -> bytes:
    head = bytearray(712)
    head[0:8] = b"RAW1.01\x00"
    head[8:16] = struct.pack("<II", 1, 1)
    head[608:612] = b"Cu\x00\x00"
    head[616:656] = struct.pack("<ddddd", 1.5418, lam[0], lam[1], 1.3922, lam[2])
    rng = bytearray(304)
    rng[0:8] = struct.pack("<II", 304, len(y))
    rng[8:24] = struct.pack("<dd", tt0 / 2, tt0)
    rng[176:184] = struct.pack("<d", step)
    rng[192:196] = struct.pack("<f", 1.0)
    rng[256:260] = struct.pack("<I", 0)
    return bytes(head + rng) + np.asarray(y, "<f4").tobytes()


def _raw_v4(tt0, step, y, lam=(1.5406, 1.54439, 0.5)) -> bytes:
    head = bytearray(61)
    head[0:7] = b"RAW4.00"
    hw = bytearray(120)
    hw[0:8] = struct.pack("<II", 30, 120)
    hw[72:112] = struct.pack("<ddddd", 1.5418, lam[0], lam[1], 1.3922, lam[2])
    hw[116:120] = b"Cu\x00\x00"
    rng = bytearray(160)
    rng[0:4] = struct.pack("<I", 0)
    rng[32 : 32 + 14] = b"Locked Coupled"
    rng[72:92] = struct.pack("<ddI", tt0, step, len(y))
    rng[92:96] = struct.pack("<f", 1.0)
    rng[136:144] = struct.pack("<II", 4, 0)
    return bytes(head + hw + rng) + np.asarray(y, "<f4").tobytes()


@pytest.mark.parametrize("writer, version", [(_raw_v2, 2), (_raw_v3, 3), (_raw_v4, 4)])
def test_bruker_raw_versions(tmp_path, writer, version):
    y = _sample_counts()
    path = tmp_path / f"v{version}.raw"
    path.write_bytes(writer(20.0, 0.05, y))
    scan = read_scan(path)
    assert scan.meta["raw_version"] == version
    assert np.allclose(scan.two_theta, SAMPLE_TT, atol=1e-5)
    assert np.array_equal(scan.counts, y)
    assert scan.wavelength == pytest.approx(1.5406) and scan.wavelength2 == pytest.approx(1.54439)
    # truncation anywhere in the data is one clear error
    path.write_bytes(writer(20.0, 0.05, y)[:-10])
    with pytest.raises(XtalError, match="truncated"):
        read_bruker_raw(path)


# --- malformed input: one clear XtalError naming the file ----------------------------------


def _write(tmp_path, name, content) -> Path:
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.xy", "", "empty file"),
        ("text.xy", "10 1\n" * 12 + "10.5 abc\n", "not numeric"),
        ("one.xy", "\n".join(str(i) for i in range(20)), "two columns"),
        ("short.xy", "10 1\n11 2\n", "only 2 data points"),
        ("binary.xy", b"\x00\x01\x02\xff" * 100, "binary"),
        ("badutf16.xy", b"\xff\xfe" + b"\x00\xd8" * 3, "UTF-16"),
        ("notraw.raw", b"HELLO WORLD" * 10, "not a Bruker RAW"),
        ("trunc.raw", b"RAW " + struct.pack("<I", 4001) + bytes(40), "truncated"),
        ("bad.xrdml", "<xrdMeasurements><scan>", "not valid XRDML"),
        ("noscan.xrdml", "<xrdMeasurements/>", "without a <scan>"),
        ("nocounts.uxd", "_WL1=1.54\n_START=10\n_STEPSIZE=0.02\n", "no _COUNTS"),
        ("badnum.uxd", "_START=10\n_STEPSIZE=0.02\n_COUNTS\n 1 2 x\n", "not numeric"),
        ("nobank.gsa", "title only\n 1 2 3\n", "no BANK"),
        ("short.gsa", "t\nBANK 1 100 10 CONST 1000 2 0 0 FXYE\n1000 5 1\n" * 1, "100 points"),
        ("plain.ras", "10 20\n" * 20, "not a Rigaku RAS"),
        ("struct.cif", "data_x\n_cell_length_a 5.0\n", "no powder data"),
        ("weird.abc", "1 2\n", "unknown pattern format"),
    ],
)
def test_malformed_files_give_one_clear_error(tmp_path, name, content, message):
    path = _write(tmp_path, name, content)
    with pytest.raises(XtalError, match=message) as info:
        read_scan(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_real_excerpts(tmp_path):
    raw = (DATA / "licoo2_excerpt.raw").read_bytes()
    with pytest.raises(XtalError, match="truncated"):
        read_scan(_write(tmp_path, "cut.raw", raw[:300]))
    uxd = (DATA / "licoo2_excerpt.uxd").read_text()
    lines = uxd.splitlines()
    path = _write(tmp_path, "cut.uxd", "\n".join(lines[:20]) + "\n 649 60x\n")
    with pytest.raises(XtalError, match="not numeric"):
        read_scan(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(XtalError, match="no such file"):
        read_scan(tmp_path / "nope.xy")
    with pytest.raises(XtalError, match="folder"):
        read_scan(tmp_path)
