"""Measured powder patterns: one reader function per format, all returning a :class:`Scan`.

``read_scan(path)`` picks the reader from the file extension (and content where needed). Readers
never assume a wavelength: it comes from the file or from the caller (``--wavelength``).
"""

from __future__ import annotations

import os
import re
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
    return Scan(two_theta=tt, counts=y, sigma=sigma, path=str(path), **kw)


_NUM_LINE = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?([\s,;]+|$)")


def read_text(path: str | os.PathLike) -> Scan:
    """Two- or three-column text (.xy, .xye, .csv, .dat, .txt): 2θ, intensity[, σ].

    Comment lines (``#``, ``!``, ``;``, ``'``) and header lines before the data are skipped;
    columns may be separated by spaces, tabs, commas or semicolons.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise XtalError(f"{path}: not a text file (cannot decode as UTF-8)") from None
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
            rows.append([float(p) for p in parts[:3]])
        except ValueError:
            raise XtalError(f"{path}: line {lineno} is not numeric: {stripped[:40]!r}") from None
    if not rows:
        raise XtalError(f"{path}: no numeric data found")
    width = min(len(r) for r in rows)
    if width < 2:
        raise XtalError(f"{path}: needs at least two columns (2θ and intensity)")
    data = np.array([r[:width] for r in rows])
    sigma = data[:, 2] if width >= 3 else None
    return _finish(path, data[:, 0], data[:, 1], sigma)


def read_xrdml(path: str | os.PathLike) -> Scan:
    """PANalytical XRDML (XML): counts or intensities, Kα1/Kα2 wavelengths and ratio."""
    import xml.etree.ElementTree as ET

    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise XtalError(f"{path}: not valid XRDML ({exc})") from None
    ns = {"x": root.tag.split("}")[0][1:]} if root.tag.startswith("{") else {"x": ""}

    def find(elem, tag):
        return elem.find(f".//x:{tag}", ns) if ns["x"] else elem.find(f".//{tag}")

    scan = find(root, "scan")
    if scan is None:
        raise XtalError(f"{path}: XRDML without a <scan>")
    points = find(scan, "dataPoints")
    values = find(points, "counts") if points is not None else None
    if values is None and points is not None:
        values = find(points, "intensities")
    if values is None or not (values.text or "").strip():
        raise XtalError(f"{path}: XRDML scan has no counts or intensities")
    try:
        y = np.array(values.text.split(), dtype=float)
    except ValueError:
        raise XtalError(f"{path}: non-numeric counts in XRDML") from None
    tt = None
    for pos in points.findall("x:positions" if ns["x"] else "positions", ns):
        if pos.get("axis") == "2Theta":
            listed = pos.find("x:listPositions" if ns["x"] else "listPositions", ns)
            if listed is not None:
                tt = np.array(listed.text.split(), dtype=float)
            else:
                start = float(pos.find("x:startPosition" if ns["x"] else "startPosition", ns).text)
                end = float(pos.find("x:endPosition" if ns["x"] else "endPosition", ns).text)
                tt = np.linspace(start, end, len(y))
    if tt is None or len(tt) != len(y):
        raise XtalError(f"{path}: XRDML without matching 2Theta positions")
    time_el = find(points, "commonCountingTime")
    wl = find(root, "usedWavelength")
    kw: dict = {"meta": {"format": "xrdml"}}
    if wl is not None:
        k1, k2, ratio = (find(wl, t) for t in ("kAlpha1", "kAlpha2", "ratioKAlpha2KAlpha1"))
        kw["wavelength"] = float(k1.text) if k1 is not None else None
        kw["wavelength2"] = float(k2.text) if k2 is not None else None
        kw["ka2_ratio"] = float(ratio.text) if ratio is not None else None
    if time_el is not None:
        kw["meta"]["counting_time_s"] = float(time_el.text)
    sigma = np.sqrt(np.maximum(y, 1.0)) if values.tag.endswith("counts") else None
    return _finish(path, tt, y, sigma, **kw)


# extension -> reader; the issue on measured data adds the rest (raw, uxd, ras, gsa, fxye, cif)
READERS: dict[str, Callable[[Path], Scan]] = {
    ".xy": read_text,
    ".xye": read_text,
    ".csv": read_text,
    ".dat": read_text,
    ".txt": read_text,
    ".xrdml": read_xrdml,
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
    return scan
