"""Peak-position features for symmetry prediction (Suzuki et al., Sci. Rep. 10, 21790, 2020).

A pattern becomes ``n_peaks + 1`` numbers: the positions of the ``n_peaks`` lowest-angle peaks
and the number of peaks inside the window (0–90° 2θ in the paper). Positions are expressed in a
unit; in a wavelength-free unit (d, 1/d, 1/d², Q) the window is the range the training 2θ window
spans at the training wavelength, so a pattern measured at any wavelength is first converted to
that unit and then compared with the same window. Missing peaks (fewer than ``n_peaks`` in the
window) are filled with the window's far edge: "the next peak lies beyond what was looked at".

With ``indexing`` on, three more numbers follow: how well the peak list indexes on a cubic,
tetragonal and hexagonal cell (:mod:`xtal_cli.symmetry.indexing`), which do not depend on the
index of a peak in the list and so survive a missed or an extra weak peak. With ``lattices``
also on, fourteen instead: the indexed fraction and the indexed-per-calculated line ratio of
each Bravais lattice (cP cI cF tP tI hP hR).

Peaks closer than ``resolution`` (° 2θ) are merged, and only peaks with at least
``min_intensity`` percent of the strongest peak in the window count (0 by default: every
reflection, as published; a threshold makes sticks look more like peaks picked from a scan).
"""

from __future__ import annotations

import numbers
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from xtal_cli.errors import ParameterError, XtalError
from xtal_cli.xrd.peakmatch import merge_close
from xtal_cli.xrd.units import UNITS, WAVELENGTHS, d_to_two_theta, from_two_theta, two_theta_to_d

DEFAULT_UNIT = "q"
DEFAULT_N_PEAKS = 10
# Percent of the strongest peak below which sticks are ignored. 0 keeps every reflection the
# calculator reports, which is what the published method did and what classifies simulated data
# best (on 19k MP patterns a 1 % threshold cost 13 points of crystal-system accuracy); raise it
# (--min-intensity 1) to make training sticks look more like peaks picked from noisy scans.
DEFAULT_MIN_INTENSITY = 0.0
# Reflections closer than this (degrees 2θ at the reference wavelength) are one peak: pymatgen
# lists some families twice at positions 1e-6° apart; merging them gained 3 points of accuracy.
DEFAULT_RESOLUTION = 0.001


def _is_real(value) -> bool:
    """A number that is not a bool (numpy scalars included, as read from HDF5 attributes)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class FeatureSettings:
    """Everything that defines the feature vector; stored in feature files and model bundles."""

    unit: str = DEFAULT_UNIT
    n_peaks: int = DEFAULT_N_PEAKS
    min_intensity: float = DEFAULT_MIN_INTENSITY
    wavelength: float = WAVELENGTHS["CuKa1"]  # Å: the wavelength the 2θ window refers to
    wavelength_label: str = "CuKa1"
    two_theta_min: float = 0.0
    two_theta_max: float = 90.0
    resolution: float = DEFAULT_RESOLUTION  # degrees 2θ: closer peaks count as one
    indexing: bool = False  # append cubic / tetragonal / hexagonal indexing scores
    lattices: bool = False  # two indexing scores per Bravais lattice (cP ... hR); implies indexing

    def __post_init__(self):
        """Raise :class:`ParameterError` naming the first field with a value it cannot take."""
        if not (isinstance(self.unit, str) and self.unit in UNITS):
            raise ParameterError("unit", self.unit, f"use one of {', '.join(UNITS)}")
        n = self.n_peaks
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ParameterError("n_peaks", n, "must be a whole number of at least 1")
        if not (_is_real(self.min_intensity) and 0.0 <= self.min_intensity < 100.0):
            raise ParameterError(
                "min_intensity", self.min_intensity, "must be within 0-100 % of the strongest peak"
            )
        if not (_is_real(self.wavelength) and np.isfinite(self.wavelength) and self.wavelength > 0):
            raise ParameterError("wavelength", self.wavelength, "must be a positive number of Å")
        if not isinstance(self.wavelength_label, str):
            raise ParameterError("wavelength_label", self.wavelength_label, "must be a string")
        if not (_is_real(self.two_theta_min) and 0.0 <= self.two_theta_min < 180.0):
            raise ParameterError(
                "two_theta_min", self.two_theta_min, "the 2θ window must start within 0-180°"
            )
        if not (_is_real(self.two_theta_max) and self.two_theta_min < self.two_theta_max <= 180.0):
            raise ParameterError(
                "two_theta_max",
                self.two_theta_max,
                f"the 2θ window must end above its start ({self.two_theta_min:g}°), not past 180°",
            )
        if not (_is_real(self.resolution) and 0.0 <= self.resolution < np.inf):
            raise ParameterError("resolution", self.resolution, "must be zero or positive (° 2θ)")
        for name in ("indexing", "lattices"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ParameterError(name, getattr(self, name), "must be True or False")
        if self.lattices and not self.indexing:  # per-lattice scores are indexing scores
            object.__setattr__(self, "indexing", True)

    @property
    def window(self) -> tuple[float, float]:
        """The window in the feature unit, ordered (lowest angle, highest angle)."""
        lo, hi = from_two_theta(
            [self.two_theta_min, self.two_theta_max], self.wavelength, self.unit
        )
        return float(lo), float(hi)

    @property
    def fill_value(self) -> float:
        """Position given to missing peaks: the window's high-angle edge."""
        return self.window[1]

    @property
    def feature_names(self) -> list[str]:
        names = [f"peak_{i + 1}" for i in range(self.n_peaks)] + ["n_peaks"]
        if self.indexing:
            from xtal_cli.symmetry.indexing import LATTICE_FEATURES, SYSTEMS

            if self.lattices:
                names += list(LATTICE_FEATURES)
            else:
                names += [f"index_{system}" for system in SYSTEMS]
        return names

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def as_dict(self) -> dict:
        return asdict(self)

    def as_attrs(self) -> dict:
        lo, hi = self.window
        return {**asdict(self), "window_lo": lo, "window_hi": hi, "fill_value": self.fill_value}

    @classmethod
    def from_attrs(cls, attrs: dict) -> FeatureSettings:
        names = cls.__dataclass_fields__
        kw = {k: attrs[k] for k in names if k in attrs}
        for flag in ("indexing", "lattices"):  # HDF5 gives numpy booleans
            if flag in kw:
                kw[flag] = bool(kw[flag])
        return cls(**kw)


@dataclass
class PeakRow:
    """One pattern's features plus what is needed to judge them (coverage, peaks found)."""

    values: np.ndarray  # (n_features,)
    n_found: int  # peaks in the window above the threshold (before truncation to n_peaks)
    coverage: tuple[float, float]  # 2θ range the data cover, at the settings' wavelength


def to_model_two_theta(two_theta, wavelength: float, settings: FeatureSettings) -> np.ndarray:
    """2θ measured at *wavelength* → 2θ at the settings' wavelength (same d); NaN if unreachable."""
    two_theta = np.asarray(two_theta, dtype=float)
    if abs(wavelength - settings.wavelength) < 1e-9:
        return two_theta.copy()
    return d_to_two_theta(two_theta_to_d(two_theta, wavelength), settings.wavelength)


def peak_row(
    two_theta,
    intensity,
    wavelength: float,
    settings: FeatureSettings,
    coverage: tuple[float, float] | None = None,
) -> PeakRow:
    """Features of one peak list (2θ at *wavelength*, any intensity scale).

    *coverage* is the 2θ range (at *wavelength*) the data were recorded over; it defaults to the
    whole window, as for simulated sticks.
    """
    tt = to_model_two_theta(two_theta, wavelength, settings)
    inten = np.asarray(intensity, dtype=float)
    inside = np.isfinite(tt) & (tt >= settings.two_theta_min) & (tt <= settings.two_theta_max)
    tt, inten = tt[inside], inten[inside]
    if len(inten):
        order = np.argsort(tt, kind="stable")
        tt, inten = merge_close(tt[order], inten[order], settings.resolution)
        keep = inten >= settings.min_intensity / 100.0 * inten.max()
        tt = tt[keep]
    values = np.full(settings.n_features, settings.fill_value, dtype=np.float64)
    first = tt[: settings.n_peaks]
    values[: len(first)] = from_two_theta(first, settings.wavelength, settings.unit)
    values[settings.n_peaks] = len(tt)
    if settings.indexing:
        from xtal_cli.symmetry.indexing import indexing_scores

        values[settings.n_peaks + 1 :] = indexing_scores(
            tt, settings.wavelength, lattices=settings.lattices
        )
    if coverage is None:
        cov = (settings.two_theta_min, settings.two_theta_max)
    else:
        lo, hi = to_model_two_theta(np.asarray(coverage, dtype=float), wavelength, settings)
        cov = (float(lo), float(hi) if np.isfinite(hi) else 180.0)
    return PeakRow(values=values, n_found=len(tt), coverage=cov)


# ----------------------------------------------------------------------------- feature sets


@dataclass
class FeatureSet:
    """Feature rows with labels and provenance, in memory (``features/1`` on disk)."""

    ids: list[str]
    X: np.ndarray  # (N, n_features)
    settings: FeatureSettings
    n_found: np.ndarray  # (N,) int
    coverage: np.ndarray  # (N, 2) 2θ range covered, at settings.wavelength
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # space_group, crystal_system ...
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)  # source, prominence, source files ...

    def __len__(self) -> int:
        return len(self.ids)


_LABELS = ("formula", "space_group", "space_group_symbol", "crystal_system")


def featurize_patterns(
    ps,
    *,
    unit: str = DEFAULT_UNIT,
    n_peaks: int = DEFAULT_N_PEAKS,
    min_intensity: float = DEFAULT_MIN_INTENSITY,
    two_theta_range: tuple[float | None, float | None] = (None, None),
    resolution: float = DEFAULT_RESOLUTION,
    indexing: bool = False,
    lattices: bool = False,
    source: str = "auto",
    peak_options: dict | None = None,
    progress=None,
    n_jobs: int = 1,
) -> FeatureSet:
    """Features of a :class:`~xtal_cli.io.h5.PatternSet` from its sticks or its dense profiles.

    The window defaults to the file's 2θ range at the file's wavelength. ``source="profile"``
    picks peaks in the profiles (as for measured data); ``"auto"`` uses sticks. *n_jobs* > 1
    spreads chunks of patterns over joblib workers (the rows and their order are unchanged).
    """
    attrs = ps.attrs
    wavelength = float(attrs.get("wavelength", WAVELENGTHS["CuKa1"]))
    lo = two_theta_range[0] if two_theta_range[0] is not None else attrs.get("two_theta_min", 0.0)
    hi = two_theta_range[1] if two_theta_range[1] is not None else attrs.get("two_theta_max", 90.0)
    settings = FeatureSettings(
        unit=unit,
        n_peaks=n_peaks,
        min_intensity=min_intensity,
        wavelength=wavelength,
        wavelength_label=str(attrs.get("wavelength_label", f"{wavelength:g}")),
        two_theta_min=float(lo),
        two_theta_max=float(hi),
        resolution=resolution,
        indexing=indexing,
        lattices=lattices,
    )
    if source == "auto":
        source = "sticks"
    if source not in ("sticks", "profile"):
        raise ParameterError("source", source, "use auto, sticks or profile")
    if source == "profile" and ps.profiles is None:
        raise ParameterError(
            "source", source, "the patterns have no profiles; simulate with profiles or use sticks"
        )
    peak_options = dict(peak_options or {})
    grid = ps.profile_grid if source == "profile" else None

    def items():
        for i in range(len(ps)):
            if grid is None:
                yield ps.sticks_two_theta[i], ps.sticks_intensity[i]
            else:
                yield (ps.profiles[i], *profile_peak_options(ps, i, wavelength, peak_options))

    if n_jobs == 1:
        results = (_pattern_row(item, grid, wavelength, settings) for item in items())
    else:
        results = _parallel_rows(items(), grid, wavelength, settings, n_jobs)
    rows, failures, keep = [], list(ps.failures), []
    for i, result in enumerate(results):
        if progress is not None:
            progress()
        if isinstance(result, str):
            failures.append((ps.ids[i], "featurize", result))
            continue
        rows.append(result)
        keep.append(i)
    keep = np.asarray(keep, dtype=int)
    fs = assemble_rows([ps.ids[i] for i in keep], rows, settings, failures)
    fs.labels = {k: np.asarray(ps.labels[k])[keep] for k in _LABELS if k in ps.labels}
    fs.meta = {k: np.asarray(v)[keep] for k, v in ps.meta.items()}
    fs.attrs = {"source": source, **{f"peaks_{k}": v for k, v in peak_options.items()}}
    return fs


_CHUNK = 256  # patterns per worker task: large enough to amortise the transfer


def _pattern_row(item, grid, wavelength: float, settings: FeatureSettings) -> PeakRow | str:
    """One pattern's row: *item* is ``(two_theta, intensity)`` of sticks when *grid* is None,
    else ``(profile, peak options, coverage)``. A peak-picking failure comes back as its text."""
    if grid is None:
        return peak_row(item[0], item[1], wavelength, settings)
    profile, options, cov = item
    if cov is not None:  # only the drawn window was "measured" (zeros elsewhere)
        inside = (grid >= cov[0]) & (grid <= cov[1])
        grid, profile = grid[inside], profile[inside]
    try:
        peaks = pick_peaks(grid, profile, **options)
    except XtalError as exc:
        return str(exc)
    return peak_row(peaks.two_theta, peaks.height, wavelength, settings, (grid[0], grid[-1]))


def _chunk_rows(chunk, grid, wavelength, settings):
    return [_pattern_row(item, grid, wavelength, settings) for item in chunk]


def _parallel_rows(items, grid, wavelength, settings, n_jobs: int):
    """:func:`_pattern_row` over joblib workers, in order, yielded as chunks finish."""
    from itertools import islice

    import joblib

    def chunks():
        while chunk := list(islice(items, _CHUNK)):
            yield chunk

    tasks = (joblib.delayed(_chunk_rows)(c, grid, wavelength, settings) for c in chunks())
    for rows in joblib.Parallel(n_jobs=n_jobs, return_as="generator")(tasks):
        yield from rows


def profile_peak_options(ps, i: int, wavelength: float, peak_options: dict):
    """Peak-picking options and 2θ coverage for profile *i*, as a measured scan would get them.

    Augmented profiles (``extra/augment`` from ``simulate --augment``) whose draw added Kα2 are
    Kα2-stripped (Rachinger, the drawn ratio) exactly as a lab Kα1+Kα2 scan is, and a drawn
    narrower 2θ window becomes the coverage. An explicit ``ka2`` in *peak_options* wins.
    Returns ``(options, coverage or None)``.
    """
    import json

    options = dict(peak_options)
    extra = getattr(ps, "extra", None) or {}
    if "augment" not in extra:
        return options, None
    raw = extra["augment"][i]
    raw = raw.decode() if isinstance(raw, bytes) else str(raw)
    if not raw:
        return options, None
    params = json.loads(raw)
    if "ka2" not in options and params.get("ka2"):
        from xtal_cli.xrd.lineshape import kalpha_doublet

        doublet = kalpha_doublet(wavelength, ratio=params.get("ka2_ratio"))
        if doublet is not None:
            options["ka2"] = doublet
    window = params.get("window")
    cov = None
    if window:
        grid = ps.profile_grid
        cov = (max(float(window[0]), float(grid[0])), min(float(window[1]), float(grid[-1])))
    return options, cov


def assemble_rows(ids, rows: list[PeakRow], settings: FeatureSettings, failures) -> FeatureSet:
    """A :class:`FeatureSet` from per-pattern :class:`PeakRow` results (any featurizer's)."""
    width = settings.n_features
    return FeatureSet(
        ids=list(ids),
        X=np.array([r.values for r in rows], dtype=np.float64).reshape(-1, width),
        settings=settings,
        n_found=np.array([r.n_found for r in rows], dtype=np.int64),
        coverage=np.array([r.coverage for r in rows], dtype=np.float64).reshape(-1, 2),
        failures=list(failures),
    )


def pick_peaks(two_theta, counts, *, ka2=None, prominence=None, min_relative_height=0.01):
    """Background removal and peak picking (xtal_cli.xrd.peaks) on one profile or scan."""
    from xtal_cli.xrd.peaks import find_peaks

    return find_peaks(
        two_theta,
        counts,
        ka2=ka2,
        prominence=prominence,
        min_relative_height=min_relative_height,
    )


def scan_ka2(scan, ka2: str = "auto"):
    """The ``(λ1, λ2, I2/I1)`` to strip from *scan*, or None.

    ``auto`` strips when the scan carries a Kα2 wavelength: from the file (XRDML), or because
    the wavelength was given as a Kα doublet name such as ``CuKa`` (see :func:`read_scans`);
    ``yes`` also strips a Kα1-only label with the tube's known Kα2; ``no`` never strips.
    Stripping a doublet that is not there creates false peaks, hence no stripping by default.
    """
    from xtal_cli.xrd.lineshape import kalpha_doublet, kalpha_pair

    if ka2 == "no" or scan.wavelength is None:
        return None
    if scan.wavelength2:
        return kalpha_doublet(scan.wavelength, scan.wavelength2, scan.ka2_ratio)
    if ka2 == "yes":
        pair = kalpha_pair(float(scan.wavelength))
        if pair is not None:
            return pair
        raise XtalError(
            f"{scan.path}: cannot strip Kα2: wavelength {scan.wavelength:g} Å is not a Kα1 line"
        )
    return None


def read_scan_with(path, wavelength: str | None = None):
    """Read a scan; *wavelength* (name or Å) applies when the file has none. A Kα doublet name
    (``CuKa``) means Kα1 + Kα2 radiation: positions refer to Kα1 and Kα2 is stripped."""
    from xtal_cli.io.scans import read_scan
    from xtal_cli.xrd.lineshape import kalpha_pair
    from xtal_cli.xrd.units import resolve_wavelength

    wl, label, pair = None, None, None
    if wavelength:
        wl, label = resolve_wavelength(wavelength)
        pair = kalpha_pair(label) if not label.endswith("1") else None
        if pair:
            wl = pair[0]
    scan = read_scan(path, wavelength=wl)
    if pair and scan.wavelength2 is None and abs(scan.wavelength - pair[0]) < 1e-9:
        scan.wavelength2, scan.ka2_ratio = pair[1], pair[2]
    return scan


def featurize_scans(
    scans,
    settings: FeatureSettings,
    *,
    ka2: str = "auto",
    prominence: float | None = None,
    min_relative_height: float = 0.01,
) -> FeatureSet:
    """Features of measured scans (each with its own wavelength) in the given settings' terms.

    Unreadable scans are recorded as failures; a scan without a wavelength is an error because
    its peaks cannot be placed in a wavelength-free unit (or at the model's 2θ), and so is a
    peak-picking option it cannot take (:class:`ParameterError`, rather than one failure a scan).
    """
    if ka2 not in ("auto", "yes", "no"):
        raise ParameterError("ka2", ka2, "use auto, yes or no")
    ids, rows, failures = [], [], []
    for scan in scans:
        pid = scan.meta.get("id") or os.path.basename(scan.path) or f"scan{len(ids)}"
        if scan.wavelength is None:
            raise XtalError(
                f"{scan.path}: the file gives no wavelength; read it with one (--wavelength, "
                "e.g. CuKa1)"
            )
        try:
            peaks = pick_peaks(
                scan.two_theta,
                scan.counts,
                ka2=scan_ka2(scan, ka2),
                prominence=prominence,
                min_relative_height=min_relative_height,
            )
        except ParameterError:
            raise
        except XtalError as exc:
            failures.append((pid, "featurize", str(exc)))
            continue
        cov = (float(scan.two_theta[0]), float(scan.two_theta[-1]))
        rows.append(peak_row(peaks.two_theta, peaks.height, scan.wavelength, settings, cov))
        ids.append(pid)
    fs = assemble_rows(ids, rows, settings, failures)
    fs.attrs = {"source": "scan", "ka2": ka2, "peaks_min_relative_height": min_relative_height}
    if prominence is not None:
        fs.attrs["peaks_prominence"] = prominence
    return fs


# ----------------------------------------------------------------------------- features/1 on disk


def write_features(path: str | os.PathLike, fs: FeatureSet) -> None:
    """Write a :class:`FeatureSet` atomically as ``features/1`` (see docs/formats.md)."""
    import h5py

    from xtal_cli.io.h5 import atomic_path, write_attrs, write_column, write_dense, write_failures

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        write_attrs(h5, "features", {**fs.settings.as_attrs(), **fs.attrs})
        h5.attrs["n_items"] = len(fs.ids)
        h5.attrs["feature_names"] = np.array(fs.settings.feature_names, dtype=object)
        write_column(h5, "id", np.array(fs.ids, dtype=object))
        write_dense(h5, "features", fs.X, dtype=np.float64)
        write_column(h5, "n_found", fs.n_found)
        h5.create_dataset("coverage", data=fs.coverage)
        for name, values in fs.labels.items():
            write_column(h5, name, values)
        meta = h5.create_group("meta")
        for name, values in fs.meta.items():
            write_column(meta, name, values)
        write_failures(h5, fs.failures)


def read_features(path: str | os.PathLike) -> FeatureSet:
    """Read and check a ``features/1`` file."""
    from xtal_cli.io.h5 import open_checked, read_attrs, read_column, read_failures, short_reason

    with open_checked(path, "features", ("id", "features", "n_found", "coverage")) as h5:
        try:
            attrs = read_attrs(h5)
            settings = FeatureSettings.from_attrs(attrs)
            X = h5["features"][()]
            if X.ndim != 2 or X.shape[1] != settings.n_features:
                raise XtalError(
                    f"{path}: features have shape {X.shape}, expected (N, {settings.n_features})"
                )
            fs = FeatureSet(
                ids=read_column(h5["id"]).tolist(),
                X=X,
                settings=settings,
                n_found=h5["n_found"][()],
                coverage=h5["coverage"][()],
                labels={k: read_column(h5[k]) for k in _LABELS if k in h5},
                meta={k: read_column(v) for k, v in h5["meta"].items()} if "meta" in h5 else {},
                failures=read_failures(h5),
                attrs={k: v for k, v in attrs.items() if k not in settings.as_attrs()},
            )
        except ParameterError as exc:
            raise XtalError(f"{path}: feature settings it cannot use ({exc})") from None
        except (OSError, KeyError) as exc:
            raise XtalError(f"{path}: truncated or corrupted ({short_reason(exc)})") from None
    return fs
