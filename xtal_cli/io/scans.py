"""Measured powder patterns: one reader function per format, all returning a :class:`Scan`.

``read_scan(path)`` picks the reader from the file extension (and, for ambiguous extensions, the
content). Readers never assume a wavelength: it comes from the file or from the caller
(``--wavelength``). Every malformed file gives one :class:`XtalError` naming the file.

Formats (parsers written from the vendors' format descriptions, no reader library on the
registries being both maintained and complete):

- two/three-column text ``.xy .xye .csv .dat .txt`` (and the "start step end" + counts layout
  that Powbase/FullProf ``.dat`` files use);
- PANalytical ``.xrdml`` (XML; counts or intensities; Kα1/Kα2/ratio from ``usedWavelength``);
- Bruker/Siemens ``.raw`` binary versions 1 (``RAW ``), 2 (``RAW2``), 3 (``RAW1.01``), 4
  (``RAW4.00``), and Bruker ``.uxd`` text;
- Rigaku ``.ras`` (SmartLab/MiniFlex text);
- GSAS ``.gsa/.gss/.fxye`` (CONST bins; STD, ESD, ALT and FXYE data records);
- powder CIF ``.cif`` (pdCIF loops of ``_pd_meas_*``/``_pd_proc_*``).
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xtal_cli.errors import XtalError


@dataclass
class Scan:
    """One measured (or simulated-profile) pattern on a 2θ grid."""

    two_theta: np.ndarray  # degrees, increasing
    counts: np.ndarray  # intensity (counts or arbitrary units)
    sigma: np.ndarray | None = None  # standard uncertainty of counts, if known
    wavelength: float | None = None  # Å (Kα1 for a Kα doublet)
    wavelength2: float | None = None  # Å, Kα2 when the file says
    ka2_ratio: float | None = None  # I(Kα2)/I(Kα1) when the file says
    meta: dict = field(default_factory=dict)
    path: str = ""

    def __len__(self) -> int:
        return len(self.two_theta)


def _finish(path: Path, tt, y, sigma=None, **kw) -> Scan:
    """Common checks of every reader: finite, enough points, sorted by 2θ."""
    tt = np.asarray(tt, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(tt) != len(y):
        raise XtalError(f"{path}: {len(tt)} 2θ values but {len(y)} intensities; file truncated?")
    if len(tt) < 10:
        raise XtalError(f"{path}: only {len(tt)} data points; is this a powder pattern?")
    if not (np.all(np.isfinite(tt)) and np.all(np.isfinite(y))):
        raise XtalError(f"{path}: contains NaN or infinite values")
    if sigma is not None:
        sigma = np.asarray(sigma, dtype=float)
    order = np.argsort(tt, kind="stable")
    if not np.all(order == np.arange(len(tt))):
        tt, y = tt[order], y[order]
        sigma = sigma[order] if sigma is not None else None
    if tt[0] < 0 or tt[-1] > 180:
        raise XtalError(f"{path}: 2θ values {tt[0]:g}..{tt[-1]:g} are not angles in degrees")
    for key in ("wavelength", "wavelength2"):
        value = kw.get(key)
        if value is not None and not 0.05 <= value <= 5.0:
            kw[key] = None  # "0" or garbage in a header is "not given", never a wavelength
    return Scan(two_theta=tt, counts=y, sigma=sigma, path=str(path), **kw)


def _poisson(y: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(np.asarray(y, dtype=float), 1.0))


def _read_text_file(path: Path) -> str:
    """Decode a text file: UTF-8 (with or without BOM), UTF-16 with BOM, else Latin-1."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise XtalError(f"{path}: cannot read ({exc.strerror})") from None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise XtalError(f"{path}: broken UTF-16 text") from None
    if b"\x00" in data[:4096]:
        raise XtalError(f"{path}: binary data, not a text pattern; check the file format")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # old instrument software writes Latin-1 headers (°, Å)


# ----------------------------------------------------------------------------- plain text

_NUM_LINE = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?([\s,;]+|$)")


def read_text(path: str | os.PathLike) -> Scan:
    """Two- or three-column text (.xy, .xye, .csv, .dat, .txt): 2θ, intensity[, σ].

    Comment lines (``#``, ``!``, ``;``, ``'``) and header lines before the data are skipped;
    columns may be separated by spaces, tabs, commas or semicolons. A first line ``start step
    end`` followed by rows of counts (Powbase/FullProf ``.dat``) is understood too. A third
    column is taken as σ only when it looks like one (non-negative, well below the intensity);
    otherwise it is ignored and noted in ``meta``.
    """
    path = Path(path)
    text = _read_text_file(path)
    rows: list[list[float]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#!;'":
            continue
        if not _NUM_LINE.match(stripped):
            if rows:  # text after data started: a broken column, not a header
                raise XtalError(f"{path}: line {lineno} is not numeric: {stripped[:40]!r}")
            continue
        parts = [p for p in re.split(r"[\s,;]+", stripped) if p]
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise XtalError(f"{path}: line {lineno} is not numeric: {stripped[:40]!r}") from None
    if not rows:
        raise XtalError(f"{path}: no numeric data found")
    meta: dict = {"format": "text"}

    stepped = _start_step_end(rows)
    if stepped is not None:
        tt, y = stepped
        meta["layout"] = "start-step-end"
        return _finish(path, tt, y, _poisson(y) if np.all(y == np.round(y)) else None, meta=meta)

    width = min(len(r) for r in rows)
    if width < 2:
        raise XtalError(f"{path}: needs at least two columns (2θ and intensity)")
    data = np.array([r[:3] for r in rows if len(r) >= width])[:, : min(width, 3)]
    sigma = None
    if data.shape[1] >= 3:
        c2, c3 = data[:, 1], data[:, 2]
        if np.all(c3 >= 0) and np.median(c3) <= 0.5 * max(float(np.median(np.abs(c2))), 1e-300):
            sigma = c3
        else:
            meta["ignored_column_3"] = "not an uncertainty (too large relative to intensity)"
    return _finish(path, data[:, 0], data[:, 1], sigma, meta=meta)


def _start_step_end(rows: list[list[float]]):
    """``start step end`` then the intensities, several per line; None if not that layout."""
    if len(rows) < 2 or len(rows[0]) != 3:
        return None
    start, step, end = rows[0]
    if not (step > 0 and end > start):
        return None
    values = [v for r in rows[1:] for v in r]
    expected = int(round((end - start) / step)) + 1
    if len(values) != expected or all(len(r) == 3 for r in rows[1:4]) and expected != len(values):
        return None
    return start + step * np.arange(expected), np.array(values)


# ----------------------------------------------------------------------------- XRDML


def read_xrdml(path: str | os.PathLike) -> Scan:
    """PANalytical XRDML (XML): counts or intensities (counts/s), Kα1/Kα2 wavelengths and ratio.

    2θ comes from ``listPositions`` or from ``startPosition``/``endPosition``; beam attenuation
    factors are applied; only the first ``<scan>`` is read (the number of scans is in meta).
    """
    import xml.etree.ElementTree as ET

    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise XtalError(f"{path}: not valid XRDML ({exc}); the file may be truncated") from None
    except OSError as exc:
        raise XtalError(f"{path}: cannot read ({exc.strerror})") from None
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""

    def find(elem, tag):
        return None if elem is None else elem.find(f".//{ns}{tag}")

    def child(elem, tag):
        return None if elem is None else elem.find(f"{ns}{tag}")

    def numbers(elem, what):
        try:
            return np.array((elem.text or "").split(), dtype=float)
        except ValueError:
            raise XtalError(f"{path}: non-numeric {what} in XRDML") from None

    scans = root.findall(f".//{ns}scan")
    if not scans:
        raise XtalError(f"{path}: XRDML without a <scan>; is this a powder measurement?")
    scan = scans[0]
    points = find(scan, "dataPoints")
    values = child(points, "counts")
    if values is None:
        values = child(points, "intensities")
    if values is None or not (values.text or "").strip():
        raise XtalError(f"{path}: XRDML scan has no counts or intensities")
    y = numbers(values, "counts")
    tt = None
    for pos in points.findall(f"{ns}positions"):
        if pos.get("axis") != "2Theta":
            continue
        listed = child(pos, "listPositions")
        if listed is not None:
            tt = numbers(listed, "2Theta positions")
        else:
            start, end = child(pos, "startPosition"), child(pos, "endPosition")
            if start is None or end is None:
                raise XtalError(f"{path}: XRDML 2Theta axis without start/end positions")
            tt = np.linspace(float(start.text), float(end.text), len(y))
    if tt is None:
        raise XtalError(f"{path}: XRDML without 2Theta positions (not a 2θ scan?)")
    if len(tt) != len(y):
        raise XtalError(f"{path}: {len(tt)} 2θ positions but {len(y)} counts in XRDML")

    meta: dict = {"format": "xrdml", "n_scans": len(scans), "y_unit": values.get("unit", "")}
    time_el = child(points, "commonCountingTime")
    counting_time = float(time_el.text) if time_el is not None and time_el.text else None
    if counting_time:
        meta["counting_time_s"] = counting_time
    attenuation = child(points, "beamAttenuationFactors")
    if attenuation is not None and (attenuation.text or "").strip():
        factors = numbers(attenuation, "beam attenuation factors")
        if len(factors) == len(y):
            y = y * factors
    is_counts = values.tag.endswith("counts")
    if is_counts:
        sigma = _poisson(y)
    elif counting_time:  # counts per second: σ = √(I·t)/t
        sigma = np.sqrt(np.maximum(y * counting_time, 1.0)) / counting_time
    else:
        sigma = None

    kw: dict = {"meta": meta}
    wl = find(root, "usedWavelength")
    if wl is not None:
        meta["intended_wavelength"] = wl.get("intended", "")
        k1, k2, ratio = (child(wl, t) for t in ("kAlpha1", "kAlpha2", "ratioKAlpha2KAlpha1"))
        try:
            kw["wavelength"] = float(k1.text) if k1 is not None else None
            kw["wavelength2"] = float(k2.text) if k2 is not None else None
            kw["ka2_ratio"] = float(ratio.text) if ratio is not None else None
        except (TypeError, ValueError):
            raise XtalError(f"{path}: unreadable wavelength in XRDML usedWavelength") from None
    return _finish(path, tt, y, sigma, **kw)


# ----------------------------------------------------------------------------- Bruker RAW


class _Bytes:
    """Little-endian cursor over a byte string that reports truncation as an XtalError."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise XtalError(f"{self.path}: Bruker RAW file ends early (truncated at byte "
                            f"{len(self.data)}, needed {self.pos + n})")  # fmt: skip
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def skip(self, n: int) -> None:
        self.take(n)

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def f32(self) -> float:
        """A float32 as its shortest decimal (15.985, not 15.98499966)."""
        return float(np.format_float_positional(np.frombuffer(self.take(4), "<f4")[0]))

    def f64(self) -> float:
        return struct.unpack("<d", self.take(8))[0]

    def text(self, n: int) -> str:
        return self.take(n).split(b"\x00")[0].decode("latin-1").strip()

    def floats(self, n: int) -> np.ndarray:
        return np.frombuffer(self.take(4 * n), dtype="<f4").astype(float)

    def at_end(self) -> bool:
        return self.pos >= len(self.data)


def read_bruker_raw(path: str | os.PathLike) -> Scan:
    """Bruker/Siemens DIFFRAC binary ``.raw``, versions 1–4 (all ranges are concatenated).

    Layouts follow the DIFFRAC-AT (v1, v2) and DIFFRAC-plus XCH manual, appendix A (v3 = RAW1.01)
    descriptions and the DIFFRAC.SUITE RAW4.00 segment layout.
    """
    path = Path(path)
    data = path.read_bytes()
    cur = _Bytes(data, path)
    magic = data[:4]
    if magic == b"RAW ":
        ranges, meta, wl = _raw_v1(cur)
    elif magic == b"RAW2":
        ranges, meta, wl = _raw_v2(cur)
    elif data[:7] == b"RAW1.01":
        ranges, meta, wl = _raw_v3(cur)
    elif data[:7] == b"RAW4.00":
        ranges, meta, wl = _raw_v4(cur)
    else:
        raise XtalError(
            f"{path}: not a Bruker RAW file (starts with {data[:7]!r}); "
            "is it a text export or another vendor's .raw?"
        )
    if not ranges:
        raise XtalError(f"{path}: Bruker RAW file holds no 2θ scan ranges")
    tt = np.concatenate([start + step * np.arange(len(y)) for start, step, y in ranges])
    y = np.concatenate([r[2] for r in ranges])
    meta.update({"format": "bruker-raw", "n_ranges": len(ranges)})
    lam1, lam2, ratio = wl
    return _finish(
        path, tt, y, _poisson(y), wavelength=lam1, wavelength2=lam2, ka2_ratio=ratio, meta=meta
    )


def _raw_v1(cur: _Bytes):
    cur.skip(4)
    ranges, meta, wl = [], {"raw_version": 1}, (None, None, None)
    following = 1
    while following:
        steps = cur.u32()
        if ranges and steps == struct.unpack("<I", b"RAW ")[0]:  # later ranges may repeat it
            steps = cur.u32()
        meta["time_per_step_s"] = cur.f32()
        step = cur.f32()
        cur.skip(8)  # scan mode, unused
        start = cur.f32()
        cur.skip(12)  # θ, χ, φ starts
        meta["sample"] = cur.text(32)
        lam1, lam2 = cur.f32(), cur.f32()
        if not ranges:
            wl = (lam1 or None, lam2 or None, None)
        cur.skip(72)
        following = cur.u32()
        ranges.append((start, step, cur.floats(steps)))
        if cur.at_end():
            break
    return ranges, meta, wl


def _raw_v2(cur: _Bytes):
    cur.skip(4)
    n_ranges = cur.u16()
    cur.skip(162)
    meta = {"raw_version": 2, "date": cur.text(20), "anode": cur.text(2)}
    lam1, lam2, ratio = cur.f32(), cur.f32(), cur.f32()
    cur.skip(8)
    meta["runtime_s"] = cur.f32()
    cur.skip(42)
    ranges = []
    for _ in range(n_ranges):
        header_len = cur.u16()
        if header_len <= 48:
            raise XtalError(f"{cur.path}: Bruker RAW2 range header too short ({header_len})")
        steps = cur.u16()
        cur.skip(4)
        meta["time_per_step_s"] = cur.f32()
        step, start = cur.f32(), cur.f32()
        cur.skip(28)
        cur.skip(header_len - 48)
        ranges.append((start, step, cur.floats(steps)))
    return ranges, meta, (lam1 or None, lam2 or None, ratio or None)


def _raw_v3(cur: _Bytes):
    cur.skip(8)
    status = cur.u32()
    n_ranges = cur.u32()
    meta = {
        "raw_version": 3,
        "status": {1: "done", 2: "active", 3: "aborted", 4: "interrupted"}.get(status, status),
        "date": cur.text(10),
        "time": cur.text(10),
        "user": cur.text(72),
        "site": cur.text(218),
        "sample": cur.text(60),
        "comment": cur.text(160),
    }
    cur.pos = 608
    meta["anode"] = cur.text(4)
    cur.pos = 616
    _average, lam1, lam2, _beta, ratio = (cur.f64() for _ in range(5))
    cur.pos = 712
    ranges = []
    for _ in range(n_ranges):
        base = cur.pos
        header_len = cur.u32()
        if header_len != 304:
            raise XtalError(
                f"{cur.path}: Bruker RAW1.01 range header of {header_len} bytes, not 304"
            )
        steps = cur.u32()
        cur.skip(8)
        start = cur.f64()  # 2θ start
        cur.pos = base + 176
        step = cur.f64()
        cur.pos = base + 192
        meta["time_per_step_s"] = cur.f32()
        cur.pos = base + 256
        supplementary = cur.u32()
        cur.pos = base + header_len + supplementary
        ranges.append((start, step, cur.floats(steps)))
    return ranges, meta, (lam1 or None, lam2 or None, ratio or None)


def _raw_v4(cur: _Bytes):
    cur.pos = 12
    meta: dict = {"raw_version": 4, "date": cur.text(12), "time": cur.text(10)}
    cur.pos = 61
    wl = (None, None, None)
    seg = cur.u32()
    while seg not in (0, 160):  # global metadata segments until the first range
        length = cur.u32()
        if length < 8:
            raise XtalError(f"{cur.path}: corrupt RAW4 segment length {length}")
        body = cur.pos
        if seg == 30 and length >= 120:  # hardware configuration: wavelengths
            cur.pos = body - 8 + 72
            _average, lam1, lam2, _beta, ratio = (cur.f64() for _ in range(5))
            cur.skip(4)
            meta["anode"] = cur.text(4)
            wl = (lam1 or None, lam2 or None, ratio or None)
        cur.pos = body - 8 + length
        seg = cur.u32()
    ranges = []
    while True:
        base = cur.pos - 4
        cur.pos = base + 32
        scan_type = cur.text(24)
        cur.pos = base + 72
        start, step = cur.f64(), cur.f64()
        steps = cur.u32()
        meta["time_per_step_s"] = cur.f32()
        cur.pos = base + 136
        datum, extra = cur.u32(), cur.u32()
        cur.pos = base + 160 + extra
        if datum != 4:
            raise XtalError(f"{cur.path}: RAW4 data of {datum}-byte values are not supported")
        y = cur.floats(steps)
        if "coupled" in scan_type.lower() or "2theta" in scan_type.lower().replace(" ", ""):
            ranges.append((start, step, y))
        else:
            meta.setdefault("skipped_ranges", []).append(scan_type)
        if cur.at_end():
            break
        if cur.u32() not in (0, 160):
            break
    return ranges, meta, wl


# ----------------------------------------------------------------------------- Bruker UXD


def read_uxd(path: str | os.PathLike) -> Scan:
    """Bruker/Siemens ``.uxd`` text: ``_KEY=value`` header, ``_COUNTS``/``_CPS`` (one column with
    ``_START``/``_STEPSIZE``) or ``_2THETACOUNTS``/``_2THETACPS`` (two columns) data per range."""
    path = Path(path)
    text = _read_text_file(path)
    header: dict[str, str] = {}
    ranges: list[tuple[np.ndarray, np.ndarray]] = []
    local: dict[str, str] = {}
    mode: str | None = None
    values: list[float] = []

    def close_range():
        if mode is None:
            return
        if mode in ("_COUNTS", "_CPS"):
            try:
                start, step = float(local["_START"]), float(local["_STEPSIZE"])
            except (KeyError, ValueError):
                raise XtalError(f"{path}: UXD range without a readable _START/_STEPSIZE") from None
            y = np.array(values)
            ranges.append((start + step * np.arange(len(y)), y))
        else:
            if len(values) % 2:
                raise XtalError(f"{path}: UXD 2θ/count pairs are incomplete; file truncated?")
            pairs = np.array(values).reshape(-1, 2)
            ranges.append((pairs[:, 0], pairs[:, 1]))

    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith(";"):
            continue
        if s.startswith("_"):
            key, _, value = s.partition("=")
            key = key.strip().upper()
            if key in ("_COUNTS", "_CPS", "_2THETACOUNTS", "_2THETACPS"):
                close_range()
                mode, values = key, []
                continue
            if mode is not None:  # a new range header starts
                close_range()
                mode, values, local = None, [], {}
            value = value.strip().strip("'\"")
            local[key] = value
            header.setdefault(key, value)
            continue
        if mode is None:
            raise XtalError(f"{path}: line {lineno} holds data before a _COUNTS section")
        try:
            values.extend(float(v) for v in s.split())
        except ValueError:
            raise XtalError(f"{path}: line {lineno} is not numeric: {s[:40]!r}") from None
    close_range()
    if not ranges:
        raise XtalError(f"{path}: no _COUNTS/_2THETACOUNTS data in UXD file")
    tt = np.concatenate([r[0] for r in ranges])
    y = np.concatenate([r[1] for r in ranges])

    def num(key):
        try:
            return float(header[key])
        except (KeyError, ValueError):
            return None

    meta = {"format": "uxd", "n_ranges": len(ranges), "sample": header.get("_SAMPLE", "")}
    if num("_STEPTIME"):
        meta["time_per_step_s"] = num("_STEPTIME")
    cps = any(k in ("_CPS", "_2THETACPS") for k in header)
    sigma = None if cps else _poisson(y)
    return _finish(path, tt, y, sigma, wavelength=num("_WL1"), wavelength2=num("_WL2"),
                   ka2_ratio=num("_WLRATIO"), meta=meta)  # fmt: skip


# ----------------------------------------------------------------------------- Rigaku RAS


def read_ras(path: str | os.PathLike) -> Scan:
    """Rigaku ``.ras`` (SmartLab, MiniFlex): ``*KEY "value"`` header and ``2θ I factor`` rows
    between ``*RAS_INT_START``/``*RAS_INT_END``; intensities are multiplied by the attenuator
    factor. Only the first data block is read. Headers may be Shift-JIS; only ASCII keys matter."""
    path = Path(path)
    data = path.read_bytes()
    if b"\x00" in data[:4096]:
        raise XtalError(f"{path}: binary data, not a Rigaku RAS text file")
    text = data.decode("utf-8", errors="replace")
    if "*RAS_" not in text[:2000]:
        raise XtalError(f"{path}: not a Rigaku RAS file (no *RAS_DATA_START header)")
    header: dict[str, str] = {}
    rows: list[list[float]] = []
    inside = done = False
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("*"):
            key, _, value = s[1:].partition(" ")
            if key == "RAS_INT_START":
                inside = True
            elif key == "RAS_INT_END":
                inside, done = False, True
                if rows:
                    break
            elif not done:
                header.setdefault(key, value.strip().strip('"'))
            continue
        if inside:
            try:
                rows.append([float(v) for v in s.split()])
            except ValueError:
                raise XtalError(f"{path}: line {lineno} is not numeric: {s[:40]!r}") from None
    if not rows:
        raise XtalError(f"{path}: no *RAS_INT_START data block")
    width = min(len(r) for r in rows)
    if width < 2:
        raise XtalError(f"{path}: RAS data rows need 2θ and intensity")
    arr = np.array([r[:3] for r in rows if len(r) >= width])
    factor = arr[:, 2] if arr.shape[1] >= 3 else np.ones(len(arr))
    y = arr[:, 1] * factor
    sigma = np.sqrt(np.maximum(arr[:, 1], 1.0)) * factor

    def num(key):
        try:
            return float(header[key])
        except (KeyError, ValueError):
            return None

    meta = {
        "format": "ras",
        "axis": header.get("MEAS_SCAN_AXIS_X", ""),
        "unit": header.get("MEAS_SCAN_UNIT_Y", ""),
        "target": header.get("HW_XG_TARGET_NAME", ""),
    }
    axis = meta["axis"].lower()
    if axis and "theta" not in axis.replace("2", ""):
        raise XtalError(f"{path}: RAS scan axis is {meta['axis']!r}, not a 2θ scan")
    return _finish(path, arr[:, 0], y, sigma, wavelength=num("HW_XG_WAVE_LENGTH_ALPHA1"),
                   wavelength2=num("HW_XG_WAVE_LENGTH_ALPHA2"), meta=meta)  # fmt: skip


# ----------------------------------------------------------------------------- GSAS


def read_gsas(path: str | os.PathLike) -> Scan:
    """GSAS raw data ``.gsa/.gss/.fxye``: title line, optional ``Instrument parameter`` line,
    ``BANK n nchan nrec CONST start step 0 0 TYPE`` with 2θ in centidegrees, then STD
    (``(10(I2,F6.0))``: counter number and count), ESD (``(10F8.0)``: I, σ pairs), ALT or FXYE
    (x, y, σ) records. Only the first bank is read. GSAS files carry no wavelength (it is in the
    instrument parameter file): pass ``--wavelength``."""
    path = Path(path)
    lines = _read_text_file(path).splitlines()
    bank_at = next((i for i, line in enumerate(lines) if line.startswith("BANK")), None)
    if bank_at is None:
        raise XtalError(f"{path}: no BANK line; not a GSAS data file")
    fields = lines[bank_at].split()
    meta: dict = {"format": "gsas", "title": lines[0].strip() if bank_at > 0 else ""}
    for line in lines[:bank_at]:
        if line.lower().startswith("instrument parameter"):
            meta["instrument_parameter_file"] = line.split(None, 3)[-1].strip()
    try:
        nchan = int(fields[2])
        bintyp = fields[4].upper()
        coeffs = [float(v) for v in fields[5:9] if _is_number(v)]
    except (IndexError, ValueError):
        raise XtalError(f"{path}: unreadable BANK line {lines[bank_at][:60]!r}") from None
    kind = next((f.upper() for f in fields[5:] if not _is_number(f)), "STD")
    body = []
    for line in lines[bank_at + 1 :]:
        if line.startswith("BANK"):
            break
        body.append(line.rstrip("\n"))
    try:
        if kind in ("FXYE", "ALT"):
            rows = [[float(v) for v in line.split()] for line in body if line.strip()]
            if kind == "ALT":  # (4(F8.0,F7.4,F5.4)): x, y, σ groups of 20 characters
                rows = [
                    [
                        float(line[k : k + 8]),
                        float(line[k + 8 : k + 15]),
                        float(line[k + 15 : k + 20]),
                    ]
                    for line in body
                    for k in range(0, len(line.rstrip()) - 19, 20)
                ]
            arr = np.array(rows, dtype=float).reshape(-1, 3)[:nchan]
            tt, y, sigma = arr[:, 0] / 100.0, arr[:, 1], arr[:, 2]
        else:
            if bintyp != "CONST" or len(coeffs) < 2:
                raise XtalError(f"{path}: GSAS bin type {bintyp} is not supported (need CONST)")
            start, step = coeffs[0] / 100.0, coeffs[1] / 100.0
            if kind == "ESD":
                vals = [float(line[k : k + 8]) for line in body for k in range(0, 80, 8)
                        if line[k : k + 8].strip()]  # fmt: skip
                pairs = np.array(vals).reshape(-1, 2)[:nchan]
                y, sigma = pairs[:, 0], pairs[:, 1]
            else:  # STD
                counters, y_list = [], []
                for line in body:
                    for k in range(0, 80, 8):
                        cell = line[k : k + 8]
                        if not cell.strip():
                            continue
                        counters.append(int(cell[:2]) if cell[:2].strip() else 1)
                        y_list.append(float(cell[2:]))
                y = np.array(y_list)[:nchan]
                ncounter = np.maximum(np.array(counters)[:nchan], 1)
                sigma = np.sqrt(np.maximum(y, 1.0) / ncounter)
            tt = start + step * np.arange(len(y))
    except ValueError as exc:
        raise XtalError(f"{path}: non-numeric value in GSAS data ({exc})") from None
    if len(y) < nchan:
        raise XtalError(f"{path}: GSAS bank promises {nchan} points but holds {len(y)}; truncated?")
    return _finish(path, tt, y, sigma, meta=meta)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- pdCIF

_PD_X = ("_pd_meas_2theta_scan", "_pd_meas_angle_2theta", "_pd_proc_2theta_corrected",
         "_pd_meas_2theta_fixed", "_pd_proc_2theta_range")  # fmt: skip
_PD_Y = ("_pd_meas_counts_total", "_pd_meas_intensity_total", "_pd_proc_intensity_total",
         "_pd_proc_intensity_net", "_pd_meas_counts_background")  # fmt: skip
_ESD = re.compile(r"^([-+]?[\d.]+(?:[eE][-+]?\d+)?)(?:\((\d+)\))?$")


def _cif_number(text: str) -> tuple[float, float | None]:
    """``12.34(5)`` → (12.34, 0.05); ``.``/``?`` → NaN."""
    m = _ESD.match(text.strip())
    if not m:
        if text.strip() in (".", "?"):
            return float("nan"), None
        raise ValueError(text)
    value = float(m.group(1))
    if m.group(2) is None:
        return value, None
    mantissa = m.group(1).split("e")[0].split("E")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return value, int(m.group(2)) * 10.0**-decimals


def read_pdcif(path: str | os.PathLike) -> Scan:
    """Powder CIF (pdCIF): the first data block with a loop of 2θ and counts/intensities.

    2θ from ``_pd_meas_2theta_scan`` (or ``_angle_2theta``, ``_pd_proc_2theta_corrected``), or
    from ``_pd_meas_2theta_range_min/inc`` when the loop only lists counts; σ from the
    parenthesised uncertainties or √counts; wavelength from ``_diffrn_radiation_wavelength``.
    """
    import warnings

    from pymatgen.io.cif import CifFile

    path = Path(path)
    text = _read_text_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cif = CifFile.from_str(text)
    except Exception as exc:  # pymatgen raises assorted errors on broken CIF syntax
        raise XtalError(f"{path}: not readable as CIF ({type(exc).__name__}: {exc})") from None
    for block in cif.data.values():
        data = block.data
        ykey = next((k for k in _PD_Y if k in data), None)
        if ykey is None or not isinstance(data[ykey], list):
            continue
        try:
            parsed = [_cif_number(v) for v in data[ykey]]
            y = np.array([p[0] for p in parsed])
            esd = [p[1] for p in parsed]
            xkey = next((k for k in _PD_X if k in data and isinstance(data[k], list)), None)
            if xkey is not None:
                tt = np.array([_cif_number(v)[0] for v in data[xkey]])
            elif "_pd_meas_2theta_range_min" in data:
                start = _cif_number(data["_pd_meas_2theta_range_min"])[0]
                inc = _cif_number(data["_pd_meas_2theta_range_inc"])[0]
                tt = start + inc * np.arange(len(y))
            else:
                raise XtalError(f"{path}: pdCIF intensities without 2θ values or range")
        except (ValueError, KeyError) as exc:
            raise XtalError(f"{path}: non-numeric value in pdCIF data ({exc})") from None
        if all(e is not None for e in esd):
            sigma = np.array(esd, dtype=float)
        elif "counts" in ykey:
            sigma = _poisson(y)
        else:
            sigma = None
        wl = data.get("_diffrn_radiation_wavelength")
        lam1 = lam2 = ratio = None
        try:
            if isinstance(wl, list):
                lams = [_cif_number(v)[0] for v in wl]
                weights = data.get("_diffrn_radiation_wavelength_wt")
                lam1 = lams[0]
                if len(lams) > 1:
                    lam2 = lams[1]
                    if isinstance(weights, list) and len(weights) > 1:
                        w = [_cif_number(v)[0] for v in weights]
                        ratio = w[1] / w[0] if w[0] else None
            elif wl is not None:
                lam1 = _cif_number(wl)[0]
        except ValueError:
            lam1 = None
        meta = {"format": "pdcif", "block": block.header, "y_item": ykey}
        return _finish(path, tt, y, sigma, wavelength=lam1, wavelength2=lam2, ka2_ratio=ratio,
                       meta=meta)  # fmt: skip
    raise XtalError(
        f"{path}: no powder data loop (_pd_meas_counts_total, _pd_proc_intensity_total ...); "
        "a structure CIF is not a pattern"
    )


# ----------------------------------------------------------------------------- dispatch

READERS: dict[str, Callable[[Path], Scan]] = {
    ".xy": read_text,
    ".xye": read_text,
    ".csv": read_text,
    ".dat": read_text,
    ".txt": read_text,
    ".xrdml": read_xrdml,
    ".raw": read_bruker_raw,
    ".uxd": read_uxd,
    ".ras": read_ras,
    ".gsa": read_gsas,
    ".gss": read_gsas,
    ".fxye": read_gsas,
    ".cif": read_pdcif,
}


def read_scan(path: str | os.PathLike, wavelength: float | None = None) -> Scan:
    """Read a measured pattern, choosing the reader by extension.

    *wavelength* (Å) is used when the file has none; a file's own wavelength wins.
    """
    path = Path(path)
    if not path.exists():
        raise XtalError(f"{path}: no such file")
    if path.is_dir():
        raise XtalError(f"{path}: is a folder, not a pattern file")
    if path.stat().st_size == 0:
        raise XtalError(f"{path}: empty file")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(READERS))
        raise XtalError(f"{path}: unknown pattern format {path.suffix!r}; known: {known}")
    scan = reader(path)
    if scan.wavelength is None and wavelength is not None:
        scan.wavelength = float(wavelength)
        scan.meta["wavelength_source"] = "caller"
    elif scan.wavelength is not None:
        scan.meta["wavelength_source"] = "file"
    return scan
