"""The HDF5 contract between stages (documented in docs/formats.md).

Every file carries a root attribute ``xtal_layout`` = ``"<kind>/<version>"`` (``patterns/1``,
``features/1``, ``embeddings/1`` ...), ``xtal_version``, ``created`` and the settings that made it.
Per-item tables are 1-D datasets of equal length; ragged data are a flat array plus ``offsets``;
dense data are chunked, compressed 2-D float32. ``failures/{id,stage,reason}`` records every item
that could not be processed. Files are written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from xtal_cli import __version__
from xtal_cli.errors import XtalError

# The versions this code writes and reads. Bump a version when a change breaks old readers.
LAYOUTS: dict[str, int] = {
    "patterns": 1,
    "features": 1,
    "embeddings": 1,
    "graphs": 1,
    "descriptors": 1,
    "clusters": 1,
    "templates": 1,
}

# Which subcommand writes each kind, for error messages.
WRITERS: dict[str, str] = {
    "patterns": "xtal simulate",
    "features": "xtal featurize",
    "embeddings": "xtal embed",
    "graphs": "xtal train-embed",
    "descriptors": "xtal describe",
    "clusters": "xtal cluster",
    "templates": "xtal train-templates",
}

_STR = h5py.string_dtype(encoding="utf-8")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside *path*; rename it onto *path* only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs follow the umask
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def layout_string(kind: str) -> str:
    return f"{kind}/{LAYOUTS[kind]}"


def write_attrs(h5: h5py.File | h5py.Group, kind: str | None, attrs: Mapping) -> None:
    """Write the layout tag (for files) and settings as HDF5 attributes (None values skipped)."""
    if kind is not None:
        h5.attrs["xtal_layout"] = layout_string(kind)
        h5.attrs["xtal_version"] = __version__
        h5.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = np.asarray(value)
        h5.attrs[key] = value


def read_attrs(h5: h5py.File | h5py.Group) -> dict:
    """Attributes as plain Python values (bytes decoded, numpy scalars unwrapped)."""
    out = {}
    for key, value in h5.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def write_column(group: h5py.Group, name: str, values, compress: bool = True) -> None:
    """Write a 1-D column; strings become variable-length UTF-8, objects are stringified."""
    arr = np.asarray(values)
    if arr.dtype.kind in "OUS":
        data = np.array(["" if v is None else str(v) for v in arr.ravel()], dtype=object)
        kw = gzip_options(len(data)) if compress else {}
        group.create_dataset(name, data=data, dtype=_STR, **kw)
    else:
        group.create_dataset(name, data=arr, **(gzip_options(arr.size) if compress else {}))


def write_dense(group: h5py.Group, name: str, values: np.ndarray, dtype=np.float32) -> None:
    """Write a 2-D array chunked by rows and compressed."""
    arr = np.asarray(values, dtype=dtype)
    if not arr.size:  # nothing to chunk (e.g. a batch where every item failed)
        group.create_dataset(name, data=arr)
        return
    chunks = (max(1, min(arr.shape[0], max(1, 2**20 // max(1, arr[0].nbytes)))),) + arr.shape[1:]
    group.create_dataset(name, data=arr, chunks=chunks, compression="gzip", compression_opts=4)


def read_column(ds: h5py.Dataset) -> np.ndarray:
    """Read a 1-D column, decoding strings to a numpy ``str`` array."""
    if h5py.check_string_dtype(ds.dtype) is not None:
        return ds.asstr()[()].astype(str) if len(ds) else np.array([], dtype=str)
    return ds[()]


def gzip_options(n: int) -> dict:
    """``create_dataset`` keywords: gzip level 4 for datasets over 64 elements, none below."""
    return {"compression": "gzip", "compression_opts": 4} if n > 64 else {}


def read_ragged(group: h5py.Group, name: str) -> list[np.ndarray]:
    offsets = group["offsets"][()]
    flat = group[name][()]
    return [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def open_checked(path: str | os.PathLike, kind: str, required: tuple[str, ...] = ()) -> h5py.File:
    """Open an xtal HDF5 file for reading, checking that it exists, is complete and is *kind*.

    Raises :class:`XtalError` naming the file and the problem: missing, not HDF5 or truncated,
    written by another stage, written with another layout version, or lacking a dataset.
    """
    path = Path(path)
    if not path.exists():
        raise XtalError(f"{path}: no such file")
    if path.is_dir():
        raise XtalError(f"{path}: is a folder, expected an HDF5 file written by {WRITERS[kind]}")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        reason = "truncated or corrupted" if path.stat().st_size else "empty"
        raise XtalError(
            f"{path}: cannot be read as HDF5 ({reason}: {short_reason(exc)}); "
            f"write it again with {WRITERS[kind]}"
        ) from None
    layout = h5.attrs.get("xtal_layout")
    if isinstance(layout, bytes):
        layout = layout.decode()
    expected = layout_string(kind)
    if layout is None:
        h5.close()
        raise XtalError(
            f"{path}: not an xtal file (no 'xtal_layout' attribute); "
            f"expected {expected} written by {WRITERS[kind]}"
        )
    found_kind, _, found_version = str(layout).partition("/")
    if found_kind != kind:
        h5.close()
        writer = WRITERS.get(found_kind, "another program")
        raise XtalError(
            f"{path}: holds {found_kind} (written by {writer}), but {kind} are needed "
            f"(written by {WRITERS[kind]})"
        )
    if found_version != str(LAYOUTS[kind]):
        h5.close()
        raise XtalError(
            f"{path}: layout {layout} is not the {expected} this xtal {__version__} reads; "
            f"write it again with {WRITERS[kind]} of this version"
        )
    missing = [name for name in required if name not in h5]
    if missing:
        h5.close()
        raise XtalError(f"{path}: incomplete {kind} file, missing {', '.join(missing)}")
    try:  # touch every required dataset so truncation shows here, not deep inside a stage
        for name in required:
            obj = h5[name]
            if isinstance(obj, h5py.Dataset) and obj.size:
                obj[-1] if obj.ndim else obj[()]
    except (OSError, KeyError) as exc:
        h5.close()
        raise XtalError(f"{path}: truncated or corrupted ({short_reason(exc)})") from None
    return h5


def layout_kind(path: str | os.PathLike) -> str | None:
    """The kind an ``.h5`` file says it holds (``patterns``, ``features`` ...): ``None`` for
    other suffixes, ``"broken"`` when it cannot be opened, ``"unknown"`` without a layout tag.
    Lets commands that take patterns, features or scans route each input before reading it."""
    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5", ".hdf"):
        return None
    try:
        with h5py.File(path, "r") as h5:
            layout = h5.attrs.get("xtal_layout", "")
    except OSError:
        return "broken"
    layout = layout.decode() if isinstance(layout, bytes) else str(layout)
    return layout.partition("/")[0] or "unknown"


def short_reason(exc: BaseException) -> str:
    """First line of an exception's message (or its type name), to quote inside one-line errors."""
    return str(exc).split("\n")[0].strip().rstrip(".") or type(exc).__name__


# --------------------------------------------------------------------------------------------
# patterns/1: written by `xtal simulate`
# --------------------------------------------------------------------------------------------

# Per-item label columns every patterns file has (see docs/formats.md).
PATTERN_COLUMNS = (
    "formula",
    "space_group",
    "space_group_symbol",
    "crystal_system",
    "n_sites",
)


@dataclass
class PatternSet:
    """Simulated (or measured) powder patterns with their labels, in memory.

    ``sticks_*`` are per-item arrays (reflection positions in 2θ degrees, intensities scaled so
    the strongest is 100, Miller indices of one representative of each family); ``profiles`` is an
    optional dense (N, P) array on ``profile_grid``. ``structures`` are pymatgen JSON strings.
    """

    ids: list[str]
    labels: dict[str, np.ndarray]
    lattice: np.ndarray  # (N, 6): a, b, c (Å), alpha, beta, gamma (deg), conventional cell
    structures: list[str]
    sticks_two_theta: list[np.ndarray]
    sticks_intensity: list[np.ndarray]
    sticks_hkl: list[np.ndarray]
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    profile_grid: np.ndarray | None = None
    profiles: np.ndarray | None = None
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # per-item arrays, e.g. augment

    def __len__(self) -> int:
        return len(self.ids)


def write_patterns(path: str | os.PathLike, ps: PatternSet) -> None:
    """Write a :class:`PatternSet` atomically as ``patterns/1``."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        writer = PatternWriter(h5, ps.profile_grid if ps.profiles is not None else None)
        writer.append(
            ps.ids, ps.labels, ps.lattice, ps.structures, ps.sticks_two_theta,
            ps.sticks_intensity, ps.sticks_hkl, ps.profiles, ps.extra,
        )  # fmt: skip
        for name, values in ps.meta.items():
            writer.append_meta(name, values)
        writer.finish(ps.attrs, ps.failures)


class PatternWriter:
    """``patterns/1`` written batch by batch into an open HDF5 file, so that a run of any size
    needs memory for one batch only: every per-pattern dataset is resizable and grows as
    batches are appended; ``finish`` writes the counts, attributes and failures."""

    def __init__(self, h5: h5py.File, profile_grid=None):
        self.h5 = h5
        self.n = 0
        self.n_sticks = 0
        self.sticks = h5.create_group("sticks")
        _growable(self.sticks, "offsets", np.int64, ())
        self.sticks["offsets"].resize((1,))
        self.sticks["offsets"][0] = 0
        _growable(h5, "id", _STR, ())
        for name in PATTERN_COLUMNS:
            _growable(h5, name, _STR if name in _TEXT_COLUMNS else np.int64, ())
        _growable(h5, "lattice", np.float64, (6,))
        _growable(h5, "structure", _STR, ())
        _growable(self.sticks, "two_theta", np.float64, ())
        _growable(self.sticks, "intensity", np.float64, ())
        _growable(self.sticks, "hkl", np.int32, (3,))
        self.meta = h5.create_group("meta")
        self.extra = h5.create_group("extra")
        self.profile = None
        if profile_grid is not None:
            grid = np.asarray(profile_grid, dtype=np.float64)
            self.profile = h5.create_group("profile")
            self.profile.create_dataset("two_theta", data=grid)
            _growable(self.profile, "intensity", np.float32, grid.shape)

    def append(
        self, ids, labels, lattice, structures, two_theta, intensity, hkl, profiles=None, extra=None
    ) -> None:
        """Add a batch of patterns (lists or arrays of equal length)."""
        n = len(ids)
        if n == 0:
            return
        _extend(self.h5["id"], _text(ids))
        for name in PATTERN_COLUMNS:
            values = labels[name]
            _extend(self.h5[name], _text(values) if name in _TEXT_COLUMNS else np.asarray(values))
        _extend(self.h5["lattice"], np.asarray(lattice, dtype=np.float64).reshape(-1, 6))
        _extend(self.h5["structure"], _text(structures))
        lengths = np.array([len(a) for a in two_theta], dtype=np.int64)
        _extend(self.sticks["offsets"], self.n_sticks + np.cumsum(lengths))
        self.n_sticks += int(lengths.sum())
        _extend(self.sticks["two_theta"], _flat(two_theta, np.float64, ()))
        _extend(self.sticks["intensity"], _flat(intensity, np.float64, ()))
        _extend(self.sticks["hkl"], _flat(hkl, np.int32, (3,)))
        if self.profile is not None:
            _extend(self.profile["intensity"], np.asarray(profiles, dtype=np.float32))
        for name, values in (extra or {}).items():
            self._append_typed(self.extra, name, values)
        self.n += n

    def append_meta(self, name: str, values) -> None:
        """Add a batch of one metadata column (numbers as float64, anything else as text); the
        first batch fixes the column's type."""
        self._append_typed(self.meta, name, np.asarray(values), np.float64)

    @staticmethod
    def _append_typed(group: h5py.Group, name: str, values, numeric=None) -> None:
        """Text as UTF-8 strings, numbers as *numeric* (default: their own type, any shape);
        the first batch creates the dataset."""
        arr = np.asarray(values)
        text = arr.dtype.kind in "OUS"
        dtype = _STR if text else (numeric or arr.dtype)
        if name not in group:
            _growable(group, name, dtype, () if text else arr.shape[1:])
        _extend(group[name], _text(arr) if text else arr.astype(dtype))

    def finish(self, attrs: Mapping, failures: list[tuple[str, str, str]]) -> None:
        write_attrs(self.h5, "patterns", attrs)
        self.h5.attrs["n_items"] = self.n
        write_failures(self.h5, failures)


_TEXT_COLUMNS = {"formula", "space_group_symbol", "crystal_system"}
_GROW_ROWS = 4096  # rows per HDF5 chunk of a growing 1-D dataset


def _growable(group: h5py.Group, name: str, dtype, tail: tuple) -> None:
    """An empty dataset that grows along its first axis (chunked, gzip level 4)."""
    row_bytes = 4 * int(np.prod(tail)) if tail else 8
    rows = max(1, min(_GROW_ROWS, 2**20 // max(1, row_bytes)))
    group.create_dataset(
        name, shape=(0, *tail), maxshape=(None, *tail), dtype=dtype, chunks=(rows, *tail),
        compression="gzip", compression_opts=4,
    )  # fmt: skip


def _extend(ds: h5py.Dataset, values) -> None:
    n = len(values)
    if n == 0:
        return
    start = ds.shape[0]
    ds.resize((start + n, *ds.shape[1:]))
    ds[start:] = values


def _text(values) -> np.ndarray:
    """Strings for a vlen-UTF-8 dataset (a list is not first turned into a fixed-width array:
    structure JSON strings are kilobytes each)."""
    if isinstance(values, np.ndarray):
        values = values.ravel().tolist()
    return np.array(["" if v is None else str(v) for v in values], dtype=object)


def _flat(arrays, dtype, tail: tuple) -> np.ndarray:
    if not len(arrays):
        return np.zeros((0, *tail), dtype=dtype)
    return np.concatenate([np.asarray(a, dtype=dtype).reshape((-1, *tail)) for a in arrays])


def write_failures(h5: h5py.File, failures: list[tuple[str, str, str]]) -> None:
    grp = h5.create_group("failures")
    ids, stages, reasons = (list(col) for col in zip(*failures)) if failures else ([], [], [])
    write_column(grp, "id", np.array(ids, dtype=object))
    write_column(grp, "stage", np.array(stages, dtype=object))
    write_column(grp, "reason", np.array(reasons, dtype=object))


def read_failures(h5: h5py.File) -> list[tuple[str, str, str]]:
    if "failures" not in h5:
        return []
    grp = h5["failures"]
    return list(
        zip(
            read_column(grp["id"]).tolist(),
            read_column(grp["stage"]).tolist(),
            read_column(grp["reason"]).tolist(),
        )
    )


def read_patterns(
    path: str | os.PathLike, *, structures: bool = True, sticks: bool = True
) -> PatternSet:
    """Read a ``patterns/1`` file (checked) into a :class:`PatternSet`."""
    required = ("id", "lattice", "sticks/offsets") + PATTERN_COLUMNS
    with open_checked(path, "patterns", required) as h5:
        try:
            ids = read_column(h5["id"]).tolist()
            ps = PatternSet(
                ids=ids,
                labels={name: read_column(h5[name]) for name in PATTERN_COLUMNS},
                lattice=h5["lattice"][()],
                structures=read_column(h5["structure"]).tolist() if structures else [],
                sticks_two_theta=read_ragged(h5["sticks"], "two_theta") if sticks else [],
                sticks_intensity=read_ragged(h5["sticks"], "intensity") if sticks else [],
                sticks_hkl=read_ragged(h5["sticks"], "hkl") if sticks else [],
                meta={k: read_column(v) for k, v in h5["meta"].items()} if "meta" in h5 else {},
                failures=read_failures(h5),
                attrs=read_attrs(h5),
            )
            if "profile" in h5:
                ps.profile_grid = h5["profile/two_theta"][()]
                ps.profiles = h5["profile/intensity"][()]
            if "extra" in h5:
                ps.extra = {k: v[()] for k, v in h5["extra"].items()}
        except (OSError, KeyError) as exc:
            raise XtalError(f"{path}: truncated or corrupted ({short_reason(exc)})") from None
    return ps
