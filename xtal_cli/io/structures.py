"""Where structures come from: CIF files/folders/globs, CSV with a ``cif`` column, pymatgen JSON,
built-in sets and random crystals (pyxtal).

Sources are collected into light :class:`StructureItem` records first (cheap, in the main
process); parsing happens later, per item, in the workers (:func:`load_structure`), so one broken
structure is recorded as a failure and never stops a batch.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from xtal_cli.errors import XtalError

BUILTINS: dict[str, str] = {"mp-sample": "mp_sample.csv.gz"}
CIF_SUFFIXES = (".cif", ".mcif")
CSV_SUFFIXES = (".csv", ".csv.gz")
JSON_SUFFIXES = (".json", ".json.gz")
STRUCTURE_SUFFIXES = CIF_SUFFIXES + CSV_SUFFIXES + JSON_SUFFIXES
ID_COLUMNS = ("material_id", "id", "name")


@dataclass(frozen=True)
class StructureItem:
    """One structure to be parsed later: ``kind`` is cif_text, cif_file, json or random."""

    id: str
    kind: str
    payload: Any
    source: str
    meta: dict = field(default_factory=dict, hash=False, compare=False)


def builtin_path(name: str) -> Path:
    if name not in BUILTINS:
        raise XtalError(f"unknown built-in set {name!r}; available: {', '.join(BUILTINS)}")
    return Path(str(resources.files("xtal_cli.data").joinpath(BUILTINS[name])))


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return (
        ".csv.gz"
        if name.endswith(".csv.gz")
        else ".json.gz"
        if name.endswith(".json.gz")
        else path.suffix.lower()
    )


def expand_sources(sources: list[str]) -> list[Path]:
    """Paths, folders (their CIF/CSV/JSON files) and glob patterns, in a stable order."""
    return [p for group in source_groups(sources) for p in group]


def source_groups(sources: list[str]) -> list[list[Path] | FolderFiles]:
    """Per source, its files in a stable order: a list for a path or a glob pattern, a lazy walk
    for a folder (a folder of millions of CIFs is never listed whole). Missing paths, patterns
    that match nothing and folders without structure files fail here, before any work."""
    out: list[Iterable[Path]] = []
    for src in sources:
        if any(ch in src for ch in "*?["):
            matches = sorted(glob.glob(src, recursive=True))
            if not matches:
                raise XtalError(f"{src}: the pattern matches no files")
            out.append([Path(m) for m in matches])
            continue
        path = Path(src)
        if not path.exists():
            raise XtalError(f"{path}: no such file or folder")
        if path.is_dir():
            walk = _walk(path)
            first = next(walk, None)
            if first is None:
                raise XtalError(f"{path}: folder holds no .cif, .csv or .json files")
            out.append(FolderFiles(itertools.chain([first], walk)))
        else:
            out.append([path])
    return out


class FolderFiles:
    """The files of a folder as a lazy walk (iterate once)."""

    def __init__(self, paths: Iterator[Path]):
        self._paths = paths

    def __iter__(self) -> Iterator[Path]:
        return self._paths


def _walk(folder: Path) -> Iterator[Path]:
    """Structure files under *folder*, depth first with the entries of each folder sorted by
    name: the order of ``sorted(folder.rglob("*"))`` (paths compare part by part), holding one
    folder's listing at a time."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise XtalError(f"{folder}: cannot be listed ({exception_reason(exc)})") from None
    for entry in entries:
        if entry.is_dir():
            yield from _walk(Path(entry.path))
        elif entry.is_file() and _suffix(Path(entry.name)) in STRUCTURE_SUFFIXES:
            yield Path(entry.path)


def items_from_file(path: Path) -> list[StructureItem]:
    suffix = _suffix(path)
    if suffix in CIF_SUFFIXES:
        return [StructureItem(path.stem, "cif_file", str(path), str(path))]
    if suffix in CSV_SUFFIXES:
        return items_from_csv(path)
    if suffix in JSON_SUFFIXES:
        return items_from_json(path)
    raise XtalError(
        f"{path}: unknown structure format {suffix!r}; use .cif, .csv/.csv.gz with a 'cif' column "
        "or pymatgen .json"
    )


def items_from_csv(path: Path) -> list[StructureItem]:
    """Rows of a CSV with a ``cif`` column; every other column is carried along as metadata."""
    return list(iter_csv(path))


def iter_csv(path: Path) -> Iterator[StructureItem]:
    """:func:`items_from_csv` one row at a time (a CSV.GZ of millions of CIFs never sits in
    memory); the header is checked before the first row is yielded."""
    import csv
    import gzip
    import sys

    csv.field_size_limit(sys.maxsize)  # a CIF is one (long) field
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        fh = opener(path, "rt", encoding="utf-8", newline="")
        reader = csv.reader(fh)
        header = next(reader, None)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise XtalError(f"{path}: cannot be read as CSV ({exception_reason(exc)})") from None
    if header is None:
        fh.close()
        raise XtalError(f"{path}: empty CSV file")
    if "cif" not in header:
        fh.close()
        raise XtalError(f"{path}: no 'cif' column (columns: {', '.join(map(str, header))})")
    return _csv_rows(path, fh, reader, header)


def _csv_rows(path, fh, reader, header) -> Iterator[StructureItem]:
    import csv

    cif_col = header.index("cif")
    id_col = next((header.index(c) for c in ID_COLUMNS if c in header), None)
    meta_idx = [(i, c) for i, c in enumerate(header) if i != cif_col]
    with fh:
        i = -1
        try:
            for i, row in enumerate(reader):
                if len(row) < len(header):
                    row = row + [""] * (len(header) - len(row))
                ident = row[id_col] if id_col is not None and row[id_col] else f"{path.stem}:{i}"
                meta = {c: row[k] for k, c in meta_idx}
                yield StructureItem(
                    str(ident), "cif_text", row[cif_col], f"{path} row {i + 1}", meta
                )
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise XtalError(
                f"{path}: cannot be read as CSV after row {i + 1} ({exception_reason(exc)})"
            ) from None


def items_from_json(path: Path) -> list[StructureItem]:
    """pymatgen Structure dicts: one, a list, or a mapping id -> dict."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise XtalError(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None
    if isinstance(data, dict) and "lattice" in data and "sites" in data:
        pairs = [(path.stem, data)]
    elif isinstance(data, list):
        pairs = [(f"{path.stem}:{i}", d) for i, d in enumerate(data)]
    elif isinstance(data, dict):
        pairs = list(data.items())
    else:
        raise XtalError(f"{path}: expected pymatgen Structure dicts")
    return [StructureItem(str(k), "json", v, str(path)) for k, v in pairs]


def random_items(n: int, seed: int) -> list[StructureItem]:
    """*n* random crystals; item *i* is reproducible from (seed, i) alone."""
    return [
        StructureItem(
            f"random-{seed}-{i}", "random", (seed, i), "--random", {"generator": "pyxtal"}
        )
        for i in range(n)
    ]


def collect_items(
    sources: list[str],
    builtins: list[str] = (),
    random_n: int = 0,
    seed: int = 0,
    limit: int | None = None,
) -> list[StructureItem]:
    """All items from all sources, with ids made unique (``id#2`` for repeats)."""
    return list(iter_items(sources, builtins, random_n, seed, limit))


def iter_items(
    sources: list[str],
    builtins: list[str] = (),
    random_n: int = 0,
    seed: int = 0,
    limit: int | None = None,
) -> Iterator[StructureItem]:
    """:func:`collect_items` as a stream: CSV rows and CIF files are read as they are needed, so
    any number of structures passes through bounded memory. Bad paths and headers fail here,
    before the first item."""
    groups = source_groups(list(sources))
    streams: list = [iter_csv(builtin_path(name)) for name in builtins]
    for group in groups:
        if isinstance(group, list):  # named files: a CSV's header is checked now, before work
            streams.extend(iter_csv(p) if _suffix(p) in CSV_SUFFIXES else p for p in group)
        else:
            streams.append(group)  # a folder's walk, read as the run goes
    if not streams and not random_n:
        raise XtalError(
            "no structures given; pass CIF/CSV/JSON files, --builtin NAME or --random N"
        )
    return _unique_stream(_chain(streams, random_n, seed), limit)


def _chain(streams, random_n: int, seed: int) -> Iterator[StructureItem]:
    for stream in streams:
        if isinstance(stream, Path):
            yield from _file_items(stream)
        elif isinstance(stream, FolderFiles):  # a folder: its files, one by one
            for path in stream:
                yield from _file_items(path)
        else:
            yield from stream
    yield from random_items(random_n, seed)


def _file_items(path: Path) -> Iterable[StructureItem]:
    """The items of one file, a CSV's rows read as they are needed."""
    return iter_csv(path) if _suffix(path) in CSV_SUFFIXES else items_from_file(path)


def _unique_stream(items: Iterable[StructureItem], limit: int | None) -> Iterator[StructureItem]:
    """The first *limit* items (all for None), repeated ids made unique as they stream by."""
    seen: dict[str, int] = {}
    for k, item in enumerate(items):
        if limit and k >= limit:
            return
        n = seen.get(item.id, 0) + 1
        seen[item.id] = n
        yield (
            item
            if n == 1
            else StructureItem(f"{item.id}#{n}", item.kind, item.payload, item.source, item.meta)
        )


def count_items(
    sources: list[str], builtins=(), random_n: int = 0, limit: int | None = None
) -> int:
    """How many items :func:`iter_items` yields (a pass over CSVs without parsing any CIF)."""
    n = random_n
    for group in [[builtin_path(name) for name in builtins], *source_groups(list(sources))]:
        for path in group:
            n += sum(1 for _ in _file_items(path))
    return min(n, limit) if limit else n


def sources_key(
    sources: list[str], builtins=(), random_n: int = 0, seed: int = 0, limit: int | None = None
) -> str:
    """A fingerprint of the inputs for ``--resume``: every file's path, size and modification
    time, hashed as the names stream by (no file is read, no list of files is kept)."""
    digest = hashlib.sha256()
    n_files = 0
    for group in [[builtin_path(b) for b in builtins], *source_groups(list(sources))]:
        for p in group:  # streamed: a folder of millions of files is never listed whole
            st = p.stat()
            digest.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            n_files += 1
    return json.dumps(
        {"files": n_files, "digest": digest.hexdigest(), "random": random_n, "seed": seed,
         "limit": limit}
    )  # fmt: skip


def unique_ids(items: list[StructureItem]) -> list[StructureItem]:
    """*items* with repeated ids made unique (``id#2``, ``id#3`` …), order kept."""
    return list(_unique_stream(items, None))


def load_structure(item: StructureItem):
    """Parse one item into a pymatgen Structure; raises ValueError with a short reason."""
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if item.kind == "cif_file":
                text = Path(item.payload).read_text(encoding="utf-8", errors="replace")
                return _structure_from_cif(text)
            if item.kind == "cif_text":
                return _structure_from_cif(item.payload)
            if item.kind == "json":
                return Structure.from_dict(item.payload)
            if item.kind == "random":
                return random_structure(*item.payload)
        except ValueError:
            raise
        except Exception as exc:  # pymatgen raises many types for broken input
            raise ValueError(exception_reason(exc)) from None
    raise ValueError(f"unknown item kind {item.kind}")


def cif_text(item: StructureItem) -> str:
    """The CIF text of a ``cif_file`` or ``cif_text`` item; ValueError if it is not a CIF."""
    if item.kind == "cif_file":
        try:
            text = Path(item.payload).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ValueError(exception_reason(exc)) from None
    else:
        text = item.payload
    if not text or "_cell_length_a" not in text:
        raise ValueError("not a CIF with a unit cell (no _cell_length_a)")
    return text


def _structure_from_cif(text: str):
    from pymatgen.core import Structure

    if not text or "_cell_length_a" not in text:
        raise ValueError("not a CIF with a unit cell (no _cell_length_a)")
    return Structure.from_str(text, fmt="cif", primitive=False)


def exception_reason(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters), for failure tables."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


# Elements for random crystals: common, non-radioactive, with X-ray form factors in every table.
_RANDOM_ELEMENTS = (
    "H Li Be B C N O F Na Mg Al Si P S Cl K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br "
    "Rb Sr Y Zr Nb Mo Ru Rh Pd Ag Cd In Sn Sb Te I Cs Ba La Ce Nd Sm Gd Hf Ta W Re Os Ir Pt Au "
    "Hg Tl Pb Bi"
).split()


def random_structure(seed: int, index: int, max_tries: int = 30):
    """A random crystal in a space group drawn uniformly from 1-230 (pyxtal), reproducibly."""
    from pyxtal import pyxtal
    from pyxtal.symmetry import Group

    rng = np.random.default_rng([seed, index])
    last = "no valid crystal"
    for _ in range(max_tries):
        group = int(rng.integers(1, 231))
        n_species = int(rng.integers(1, 4))
        species = [str(s) for s in rng.choice(_RANDOM_ELEMENTS, size=n_species, replace=False)]
        mults = sorted({wp.multiplicity for wp in Group(group).Wyckoff_positions})
        small = [m for m in mults if m <= 16] or mults[:1]
        num_ions = [int(rng.choice(small)) * int(rng.integers(1, 3)) for _ in species]
        crystal = pyxtal()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                crystal.from_random(
                    3, group, species, num_ions, random_state=int(rng.integers(2**31))
                )
            except Exception as exc:  # incompatible composition for this group: try another
                last = exception_reason(exc)
                continue
        if crystal.valid:
            return crystal.to_pymatgen()
    raise ValueError(f"pyxtal found no random crystal in {max_tries} tries ({last})")


def structure_json(structure) -> str:
    """Compact, exact JSON of a pymatgen Structure, or of anything with the same ``as_dict``
    (the fast reader's cells): what patterns files store."""
    return json.dumps(structure.as_dict(), separators=(",", ":"))


def structure_from_json(text: str):
    from pymatgen.core import Structure

    return Structure.from_dict(json.loads(text))


def meta_columns(items: list[StructureItem]) -> list[str]:
    cols: dict[str, None] = {}
    for item in items:
        cols.update(dict.fromkeys(item.meta))
    return list(cols)


def meta_array(values: list[str], numeric: bool | None = None) -> np.ndarray:
    """Numeric metadata as float64 (empty -> NaN); anything else stays text. *numeric* forces
    the type a column was given over all its values (see :func:`meta_is_number`)."""
    if numeric is not False:
        try:
            return np.array([float(v) if v not in ("", None) else np.nan for v in values])
        except (TypeError, ValueError):
            if numeric:
                raise
    return np.array(["" if v is None else str(v) for v in values], dtype=object)


def meta_is_number(value) -> bool:
    """Whether one metadata value keeps its column numeric (a number, or empty)."""
    if value in ("", None):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


__all__ = [
    "BUILTINS",
    "StructureItem",
    "builtin_path",
    "exception_reason",
    "collect_items",
    "load_structure",
    "meta_array",
    "meta_columns",
    "structure_from_json",
    "structure_json",
]
