"""Instrument parameters: GSAS ``.prm``/``.PRM`` and GSAS-II ``.instprm`` files, or the
laboratory default (:func:`default_instrument`) when there is no file.

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
# GSAS-II's own default for a laboratory Cu Kα instrument ("CuKa lab data", the first entry of
# GSASII/defaultIparms.py, which the GUI offers when a pattern comes without an instrument
# file): the same λ, polarisation and U V W as GSAS's INST_XRY.PRM default, SH/L 0.002 where
# that file has 0.02. The goniometer radius is GSAS-II's default sample radius (200 mm,
# GSASIIobj.SetDefaultSample); the "lab data" label makes GSAS-II use Bragg-Brentano geometry.
LAB_DEFAULT = {
    "lam1": 1.5405,
    "lam2": 1.5443,
    "ratio": 0.5,
    "zero": 0.0,
    "polariz": 0.7,
    "U": 2.0,
    "V": -2.0,
    "W": 5.0,
    "X": 0.0,
    "Y": 0.0,
    "Z": 0.0,
    "SH_L": 0.002,
    "azimuth": 0.0,
    "gonio_radius": 200.0,
}
LAB_DEFAULT_SOURCE = (
    "default laboratory instrument: Bragg-Brentano Cu Ka1/Ka2, GSAS-II's 'CuKa lab data' "
    "defaults (GSASII/defaultIparms.py; goniometer radius from GSASIIobj.SetDefaultSample)"
)


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
    source: str = ""  # the file read, or what the default values are and where they come from
    # GSAS-II's sample type: which sample-position terms move the peaks (engine._sample_shift);
    # a laboratory PXC histogram is Bragg–Brentano unless the user says otherwise
    geometry: str = "bragg-brentano"

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ParameterError` naming the first field with a value it cannot take."""
        for name in ("lam1", "lam2"):
            value = getattr(self, name)
            if value is not None and not 0.05 < value < 5:
                raise ParameterError(name, value, "is not an X-ray wavelength (0.05-5 Å)")
        if not 0 <= self.ratio <= 1:
            raise ParameterError("ratio", self.ratio, "I(Kα2)/I(Kα1) must be within 0-1")
        if not 0 <= self.polariz <= 1:
            raise ParameterError("polariz", self.polariz, "polarisation fraction must be 0-1")
        if not self.gonio_radius > 0:
            raise ParameterError("gonio_radius", self.gonio_radius, "must be positive (mm)")
        if self.geometry not in GEOMETRIES:
            raise ParameterError(
                "geometry", self.geometry, f"unknown; use one of {', '.join(GEOMETRIES)}"
            )
        if not self.SH_L >= 0:
            raise ParameterError("SH_L", self.SH_L, "axial divergence S/L+H/L cannot be negative")

    def lines(self) -> list[tuple[float, float]]:
        """(wavelength, relative intensity) of each line of the source."""
        if self.lam2:
            return [(self.lam1, 1.0), (self.lam2, self.ratio)]
        return [(self.lam1, 1.0)]

    def as_dict(self) -> dict:
        return asdict(self)

    def instprm(self) -> str:
        """These values as a GSAS-II ``.instprm`` file (what the GSAS-II engine reads)."""
        items = [("Type", "PXC"), ("Bank", "1")]
        if self.lam2:
            items += [("Lam1", self.lam1), ("Lam2", self.lam2), ("I(L2)/I(L1)", self.ratio)]
        else:
            items += [("Lam", self.lam1)]
        items += [("Zero", self.zero), ("Polariz.", self.polariz), ("Azimuth", self.azimuth)]
        items += [(k, getattr(self, k)) for k in ("U", "V", "W", "X", "Y", "Z")]
        items += [("SH/L", self.SH_L), ("Gonio.radius", self.gonio_radius)]
        head = f"#GSAS-II instrument parameter file; {self.source or 'written by xtal'}\n"
        return head + "".join(f"{k}:{v!r}\n" if not isinstance(v, str) else f"{k}:{v}\n"
                              for k, v in items)  # fmt: skip

    def describe(self) -> str:
        """One line of the values that matter for a default (what the CLI prints)."""
        lines = f"λ1 {self.lam1:g} Å" + (
            f", λ2 {self.lam2:g} Å, I2/I1 {self.ratio:g}" if self.lam2 else " (one line)"
        )
        return (
            f"{lines}, polarisation {self.polariz:g}, U V W {self.U:g} {self.V:g} {self.W:g}, "
            f"X Y {self.X:g} {self.Y:g}, SH/L {self.SH_L:g}, goniometer radius "
            f"{self.gonio_radius:g} mm"
        )


def default_instrument(scan=None) -> Instrument:
    """The laboratory default (:data:`LAB_DEFAULT`) for a pattern without an instrument file.

    The wavelengths (and Kα2/Kα1 ratio) a scan's header gives win over the Cu defaults, as a
    Bruker RAW/UXD or XRDML file records the anode the pattern was measured with; the profile
    values are only starting values, which the study refines."""
    values = dict(LAB_DEFAULT)
    taken = []
    if scan is not None and scan.wavelength is not None:
        values["lam1"] = float(scan.wavelength)
        values["lam2"] = float(scan.wavelength2) if scan.wavelength2 else None
        taken.append("wavelengths")
        if scan.wavelength2 and scan.ka2_ratio:
            values["ratio"] = float(scan.ka2_ratio)
            taken.append("Ka2/Ka1 ratio")
    source = LAB_DEFAULT_SOURCE
    if taken:
        source += f"; {' and '.join(taken)} from the header of {scan.path}"
    return Instrument(**values, source=source)


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
    if not 0.05 < lam1 < 5:
        raise XtalError(f"{path}: wavelength {lam1} Å is not an X-ray wavelength")
    try:
        inst = Instrument(lam1=lam1, lam2=lam2 or None, ratio=ratio, zero=zero, polariz=pola)
    except ParameterError as exc:
        raise XtalError(f"{path}: {exc}") from None
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
    inst.source = str(path)
    return inst


def read_instprm(path: str | Path) -> Instrument:
    """A GSAS-II ``.instprm`` file (``name:value`` items, one a line or ``;``-joined as GSAS-II
    also writes them)."""
    path = Path(path)
    values: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for item in line.split(";"):
            if ":" in item:
                name, _, value = item.partition(":")
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
            gonio_radius=num.get("Gonio.radius", num.get("Gonio. radius", 200.0)),
        )
    except KeyError as exc:
        raise XtalError(
            f"{path}: missing {exc.args[0]}; is this a GSAS-II .instprm file?"
        ) from None
    except ParameterError as exc:
        raise XtalError(f"{path}: {exc}") from None
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


def sample_position_terms(geometry: str) -> dict[str, str]:
    """What the published flags "DisplaceX" / "DisplaceY" refine in *geometry*.

    The published notebooks flag GSAS-II's DisplaceX and DisplaceY, but GSAS-II reads those only
    for Debye–Scherrer samples; for a Bragg–Brentano histogram (laboratory data, as all the
    published cases) it ignores them (GSASIIstrIO ``GetSampleParms``) and moves peaks by Shift
    and Transparency instead. So the two flags switch on the geometry's own pair: the
    dimension of the search space the study meant, refined in both engines."""
    if geometry == "bragg-brentano":
        return {"DisplaceX": "Shift", "DisplaceY": "Transparency"}
    return {"DisplaceX": "DisplaceX", "DisplaceY": "DisplaceY"}
