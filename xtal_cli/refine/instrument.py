"""Instrument parameters: GSAS ``.prm``/``.PRM`` and GSAS-II ``.instprm`` files.

Only constant-wavelength X-ray instruments are read (GSAS histogram type PXC*, GSAS-II type
PXC); the values mean what they mean in GSAS-II: U, V, W in centideg², X, Y in centideg, SH/L
= S/L + H/L, Zero in degrees, Polariz. the polarisation fraction used in GSAS-II's
Lorentz-polarisation (0.5 for an unpolarised tube without monochromator).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from xtal_cli.errors import ParameterError, XtalError

GEOMETRIES = ("bragg-brentano", "debye-scherrer")


@dataclass
class Instrument:
    lam1: float
    lam2: float | None = None  # Kα2, None for a single line
    ratio: float = 0.5  # I(Kα2)/I(Kα1)
    zero: float = 0.0  # degrees
    polariz: float = 0.5
    U: float = 2.0
    V: float = -2.0
    W: float = 5.0
    X: float = 0.0
    Y: float = 0.0
    Z: float = 0.0  # constant Lorentzian term (centideg), GSAS-II's Z
    SH_L: float = 0.002
    azimuth: float = 0.0
    gonio_radius: float = 200.0  # mm, for the sample-position terms in µm
    source: str = ""
    # GSAS-II's sample type: which sample-position terms move the peaks (engine._sample_shift);
    # a laboratory PXC histogram is Bragg–Brentano unless the user says otherwise
    geometry: str = "bragg-brentano"

    def __post_init__(self):
        if self.geometry not in GEOMETRIES:
            raise ParameterError(
                "geometry", self.geometry, f"unknown; use one of {', '.join(GEOMETRIES)}"
            )

    def lines(self) -> list[tuple[float, float]]:
        """(wavelength, relative intensity) of each line of the source."""
        if self.lam2:
            return [(self.lam1, 1.0), (self.lam2, self.ratio)]
        return [(self.lam1, 1.0)]

    def as_dict(self) -> dict:
        return asdict(self)


def _f(text: str) -> float:
    text = text.strip()
    return float(text) if text else 0.0


def read_prm(path: str | Path, bank: int = 1) -> Instrument:
    """A GSAS instrument parameter file (fixed-column ``INS`` records), CW X-ray, profile type 3."""
    path = Path(path)
    records: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("INS"):
            records[line[:12]] = line[12:]
    htype = records.get("INS   HTYPE ", "").split()
    if not htype:
        raise XtalError(f"{path}: no 'INS   HTYPE' record; is this a GSAS .prm file?")
    if not htype[0].startswith("PXC"):
        raise XtalError(
            f"{path}: histogram type {htype[0]} is not constant-wavelength X-ray (PXC); "
            "give an X-ray instrument file"
        )
    key = f"INS{bank:3d}"
    icons = records.get(f"{key} ICONS")
    if icons is None:
        raise XtalError(f"{path}: no ICONS record for bank {bank}")
    icons = icons.ljust(70)
    # columns as GSAS-II reads them: λ1, λ2, zero (centideg), polarisation, I(λ2)/I(λ1)
    lam1, lam2 = _f(icons[0:10]), _f(icons[10:20])
    zero = _f(icons[20:30]) / 100.0
    pola = _f(icons[40:50]) or 0.5
    ratio = _f(icons[55:65]) or 0.5
    inst = Instrument(lam1=lam1, lam2=lam2 or None, ratio=ratio, zero=zero, polariz=pola)
    head = records.get(f"{key}PRCF1 ", "").split()
    if head:
        if head[0] != "3":
            raise XtalError(
                f"{path}: GSAS profile function {head[0]} is not supported; use type 3 (TCH "
                "pseudo-Voigt) or a GSAS-II .instprm file"
            )
        c1 = [float(v) for v in records.get(f"{key}PRCF11", "").split()[:4]]
        c2 = [float(v) for v in records.get(f"{key}PRCF12", "").split()[:4]]
        if len(c1) < 3 or len(c2) < 4:
            raise XtalError(f"{path}: incomplete PRCF11/PRCF12 profile records")
        inst.U, inst.V, inst.W = c1[:3]
        inst.X, inst.Y = c2[:2]
        inst.SH_L = c2[2] + c2[3]  # S/L + H/L
    if not 0.05 < lam1 < 5:
        raise XtalError(f"{path}: wavelength {lam1} Å is not an X-ray wavelength")
    inst.source = str(path)
    return inst


def read_instprm(path: str | Path) -> Instrument:
    """A GSAS-II ``.instprm`` file (``name:value`` lines)."""
    path = Path(path)
    values: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, _, value = line.partition(":")
        values[name.strip()] = value.strip()
    kind = values.get("Type", "")
    if kind and not kind.startswith("PXC"):
        raise XtalError(f"{path}: instrument type {kind} is not constant-wavelength X-ray (PXC)")
    try:
        num = {k: float(v) for k, v in values.items() if k != "Type" and _isnum(v)}
        lam1 = num.get("Lam1", num.get("Lam"))
        if lam1 is None:
            raise KeyError("Lam1")
        inst = Instrument(
            lam1=lam1,
            lam2=num.get("Lam2") or None,
            ratio=num.get("I(L2)/I(L1)", 0.5),
            zero=num.get("Zero", 0.0),
            polariz=num.get("Polariz.", 0.5),
            U=num.get("U", 2.0),
            V=num.get("V", -2.0),
            W=num.get("W", 5.0),
            X=num.get("X", 0.0),
            Y=num.get("Y", 0.0),
            Z=num.get("Z", 0.0),
            SH_L=num.get("SH/L", 0.002),
            azimuth=num.get("Azimuth", 0.0),
        )
    except KeyError as exc:
        raise XtalError(
            f"{path}: missing {exc.args[0]}; is this a GSAS-II .instprm file?"
        ) from None
    inst.source = str(path)
    return inst


def _isnum(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def read_instrument(path: str | Path) -> Instrument:
    """Read a .prm/.PRM (GSAS) or .instprm (GSAS-II) file, by content."""
    path = Path(path)
    if not path.exists():
        raise XtalError(f"{path}: instrument file not found; give a GSAS .prm or GSAS-II .instprm")
    if path.is_dir():
        raise XtalError(f"{path}: is a folder, not an instrument file")
    text = path.read_text(errors="replace")
    if "INS" in text and "HTYPE" in text:
        return read_prm(path)
    if "Lam" in text and ":" in text:
        return read_instprm(path)
    raise XtalError(f"{path}: neither a GSAS .prm nor a GSAS-II .instprm instrument file")
