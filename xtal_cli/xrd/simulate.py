"""Batch simulation: structures -> sticks (+ optional profiles) + spglib labels -> patterns/1 HDF5.

Work is split into chunks of items. Each finished chunk is saved atomically in a folder beside the
output (``<output>.partial.d/``); a rerun with ``resume=True`` loads the finished chunks and
computes only the rest, so an interrupted run loses at most one chunk per worker. When all chunks
are done they are merged into the output file (temporary name, then rename) and the folder is
removed. Per-item failures are recorded (id, stage, reason) and never stop the batch. Per-item
randomness (noise, random crystals) is seeded from (seed, item index), so resumed and
uninterrupted runs give identical files.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from xtal_cli.errors import ParameterError
from xtal_cli.io.chunks import ChunkFolder, compute_stream
from xtal_cli.io.h5 import (
    PATTERN_COLUMNS,
    PatternSet,
    PatternWriter,
    atomic_path,
    read_attrs,
    read_patterns,
    write_column,
)
from xtal_cli.io.structures import (
    StructureItem,
    cif_text,
    load_structure,
    meta_array,
    meta_is_number,
    structure_json,
)
from xtal_cli.xrd.profile import ProfileSettings, render_profile
from xtal_cli.xrd.sticks import DEFAULT_ENGINE, ENGINES, compute_sticks


@dataclass(frozen=True)
class SimulationSettings:
    """What :func:`run_simulation` computes for every structure; checked on construction so a
    bad value fails before any work, with the parameter named."""

    wavelength: float  # Å
    wavelength_label: str
    two_theta_min: float = 0.0
    two_theta_max: float = 90.0
    engine: str = DEFAULT_ENGINE
    symprec: float = 0.1
    seed: int = 0
    profile: ProfileSettings | None = None
    augment: bool = False  # per-pattern instrument/sample effects (xtal_cli.xrd.augment)

    def __post_init__(self):
        if not (np.isfinite(self.wavelength) and self.wavelength > 0):
            raise ParameterError("wavelength", self.wavelength, "must be a positive number of Å")
        if not 0 <= self.two_theta_min < 180:
            raise ParameterError("two_theta_min", self.two_theta_min, "must be within 0-180°")
        if not self.two_theta_min < self.two_theta_max <= 180:
            raise ParameterError(
                "two_theta_max",
                self.two_theta_max,
                f"must be above the lowest 2θ ({self.two_theta_min:g}°) and at most 180°",
            )
        if self.engine not in ENGINES:
            raise ParameterError("engine", self.engine, f"use one of {', '.join(ENGINES)}")
        if not self.symprec > 0:
            raise ParameterError("symprec", self.symprec, "must be a positive tolerance (Å)")
        if self.augment and self.profile is None:
            raise ParameterError("augment", True, "needs profile settings (the 2θ grid)")

    def as_attrs(self) -> dict:
        attrs = {k: v for k, v in asdict(self).items() if k != "profile"}
        if self.profile is not None:
            attrs.update(self.profile.as_attrs())
        return attrs

    def fingerprint(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)


def simulate_item(item: StructureItem, index: int, settings: SimulationSettings) -> dict:
    """Everything about one structure, or a failure record ``{"id", "stage", "reason"}``.

    With the fast engine a CIF goes through the fast reader (:mod:`xtal_cli.io.fastcif`) and no
    pymatgen object is built; what that reader leaves to pymatgen is parsed by pymatgen (the
    record's ``fallback`` says why). Both give the same sticks, labels and structure JSON.
    """
    stage = "parse"
    fallback = ""
    try:
        cell = structure = None
        if settings.engine == "fast" and item.kind in ("cif_text", "cif_file"):
            from xtal_cli.io.fastcif import Fallback, read_cif_arrays

            text = cif_text(item)
            try:
                cell = read_cif_arrays(text)
            except Fallback as exc:
                fallback = str(exc)
        if cell is None:
            structure = load_structure(item)
            if len(structure) == 0:
                raise ValueError("structure has no atoms")
        stage = "symmetry"
        if cell is not None:
            from xtal_cli.xrd.labels import cell_labels

            labels = cell_labels(
                cell.matrix, cell.frac, cell.species_strings(), cell.reduced_formula(),
                settings.symprec,
            )  # fmt: skip
        else:
            from xtal_cli.xrd.labels import symmetry_labels

            labels = symmetry_labels(structure, settings.symprec)
        stage = "pattern"
        two_theta_range = (settings.two_theta_min, settings.two_theta_max)
        if cell is not None:
            from xtal_cli.xrd.fast import sticks_from_arrays

            frac, occ, symbols = cell.scatterers()
            sticks = sticks_from_arrays(
                cell.matrix, frac, occ, symbols, settings.wavelength, two_theta_range
            )
            matrix = cell.matrix
        else:
            sticks = compute_sticks(
                structure, settings.wavelength, two_theta_range, engine=settings.engine
            )
            matrix = structure.lattice.matrix
        profile = None
        augment = ""
        if settings.profile is not None:
            rng = np.random.default_rng([settings.seed, index])
            if settings.augment:
                from xtal_cli.xrd.augment import augmented_profile, draw_augmentation

                params = draw_augmentation(rng, wavelength=settings.wavelength)
                profile = augmented_profile(
                    sticks, settings.profile.grid(), params, settings.wavelength, lattice=matrix
                )
                augment = json.dumps(params)
            else:
                profile = render_profile(sticks.two_theta, sticks.intensity, settings.profile, rng)
        stage = "structure"
        text_json = structure_json(cell if cell is not None else structure)
    except Exception as exc:  # recorded per item; the batch goes on
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {"id": item.id, "stage": stage, "reason": text[:300], "failed": True}
    return {
        "id": item.id,
        "failed": False,
        "labels": labels,
        "structure": text_json,
        "two_theta": sticks.two_theta,
        "intensity": sticks.intensity,
        "hkl": sticks.hkl,
        "profile": profile,
        "augment": augment,
        "fallback": fallback,
        "meta": item.meta,
    }


def _simulate_chunk(items, start: int, settings: SimulationSettings) -> list[dict]:
    return [simulate_item(item, start + k, settings) for k, item in enumerate(items)]


class _Parts(ChunkFolder):
    """Finished simulation chunks, packed per chunk: the sticks flat with offsets, profiles
    stacked, and one JSON string of everything else (labels, structures, failures; metadata in
    its own member so the final pass over it reads nothing else); no pickles."""

    def __init__(self, output: Path, settings: SimulationSettings, items_key: str, chunk: int):
        key = json.dumps({"settings": settings.fingerprint(), "items": items_key, "chunk": chunk})
        super().__init__(output, key)

    def save_results(self, start: int, results: list[dict]) -> None:
        self.save(start, pack(results))

    def load_results(self, start: int) -> list[dict]:
        return unpack(self.load(start))

    def load_meta(self, start: int) -> list[dict]:
        with np.load(self.path(start), allow_pickle=False) as npz:
            return json.loads(str(npz["meta"]))


_ARRAYS = ("two_theta", "intensity", "hkl")


def pack(results: list[dict]) -> dict[str, np.ndarray]:
    """One chunk's results as a few arrays (see :class:`_Parts`)."""
    ok = [r for r in results if not r["failed"]]
    records = []
    for r in results:
        if r["failed"]:
            records.append(r)
            continue
        rec = {k: v for k, v in r.items() if k not in _ARRAYS + ("profile", "meta")}
        rec["labels"] = {n: v for n, v in r["labels"].items() if n != "lattice"}
        records.append(rec)
    arrays = {
        "records": np.array(json.dumps(records, default=_plain)),
        "meta": np.array(json.dumps([r["meta"] for r in ok], default=_plain)),
        "lattice": np.array([r["labels"]["lattice"] for r in ok], dtype=np.float64).reshape(-1, 6),
        "offsets": np.concatenate([[0], np.cumsum([len(r["two_theta"]) for r in ok])]).astype(
            np.int64
        ),
    }
    for key, dtype, tail in (("two_theta", np.float64, ()), ("intensity", np.float64, ()),
                             ("hkl", np.int32, (3,))):  # fmt: skip
        parts = [np.asarray(r[key], dtype=dtype).reshape((-1, *tail)) for r in ok]
        arrays[key] = np.concatenate(parts) if parts else np.zeros((0, *tail), dtype=dtype)
    if ok and ok[0]["profile"] is not None:
        arrays["profiles"] = np.stack([r["profile"] for r in ok])
    return arrays


def unpack(arrays: dict[str, np.ndarray]) -> list[dict]:
    """The result records of :func:`pack` (metadata included)."""
    records = json.loads(str(arrays["records"]))
    meta = json.loads(str(arrays["meta"]))
    off = arrays["offsets"]
    k = 0
    for rec in records:
        if rec["failed"]:
            continue
        rec["labels"]["lattice"] = arrays["lattice"][k]
        for key in _ARRAYS:
            rec[key] = arrays[key][off[k] : off[k + 1]]
        rec["profile"] = arrays["profiles"][k] if "profiles" in arrays else None
        rec["meta"] = meta[k]
        k += 1
    return records


def _plain(value):
    """numpy scalars in labels and metadata as JSON numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass
class SimulationSummary:
    """What a run with an output file returns: the patterns are on disk (read them with
    :func:`~xtal_cli.io.h5.read_patterns`), so a run of any size returns in bounded memory."""

    output: Path
    n_patterns: int
    failures: list[tuple[str, str, str]]
    fallbacks: list[tuple[str, str]]  # (id, why the fast reader left it to pymatgen)
    attrs: dict

    def __len__(self) -> int:
        return self.n_patterns

    def load(self) -> PatternSet:
        return read_patterns(self.output)


def _chunks(items: Iterable[StructureItem], size: int) -> Iterator[tuple[int, list]]:
    it = iter(items)
    start = 0
    while chunk := list(itertools.islice(it, size)):
        yield start, chunk
        start += len(chunk)


def _items_key(items) -> str:
    """Fingerprint of an in-memory list of items (a stream's caller passes its own)."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.id.encode() + b"\0" + str(item.source).encode() + b"\n")
    return digest.hexdigest()


def run_simulation(
    items: Iterable[StructureItem],
    settings: SimulationSettings,
    output: str | Path | None = None,
    *,
    jobs: int = 1,
    resume: bool = False,
    chunk_size: int = 64,
    backend: str = "loky",
    scheduler: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    extra_attrs: dict | None = None,
    items_key: str | None = None,
) -> PatternSet | SimulationSummary:
    """Simulate *items* (a list, or any iterable: a stream is read chunk by chunk).

    Without *output* the patterns are returned in memory (a :class:`PatternSet`; nothing to
    resume). With *output* they are written there as ``patterns/1`` while the chunks finish,
    each finished chunk also saved beside it so that ``resume=True`` continues an interrupted
    run; memory stays bounded whatever the number of items, and a :class:`SimulationSummary` is
    returned. *items_key* fingerprints a stream for ``resume`` (for a list: its ids).
    """
    if chunk_size < 1:
        raise ParameterError("chunk_size", chunk_size, "must be at least 1")
    if output is None:
        if resume:
            raise ParameterError("resume", resume, "needs an output file to resume")
        results: list[dict] = []
        chunks = _chunks(items, chunk_size)
        for _, chunk in compute_stream(_simulate_chunk, chunks, jobs, backend, scheduler, settings):
            results.extend(chunk)
            if on_progress:
                on_progress(len(chunk))
        return _assemble(results, settings, extra_attrs or {})

    output = Path(output)
    if items_key is None:
        items = list(items)
        items_key = _items_key(items)
    parts = _Parts(output, settings, items_key, chunk_size)
    finished = parts.open(resume)
    seen: collections.deque[tuple[int, int]] = collections.deque()  # (start, size) in order

    def todo():
        for start, chunk in _chunks(items, chunk_size):
            seen.append((start, len(chunk)))
            if start not in finished:
                yield start, chunk

    failures: list[tuple[str, str, str]] = []
    fallbacks: list[tuple[str, str]] = []
    starts: list[int] = []
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as h5:
        grid = settings.profile.grid() if settings.profile is not None else None
        writer = PatternWriter(h5, grid)

        def add(start: int, results: list[dict]) -> None:
            starts.append(start)
            ok = [r for r in results if not r["failed"]]
            failures.extend((r["id"], r["stage"], r["reason"]) for r in results if r["failed"])
            fallbacks.extend((r["id"], r["fallback"]) for r in ok if r.get("fallback"))
            _append(writer, ok, settings)

        def flush(upto: int | None) -> None:  # finished chunks before *upto*, from disk
            recovered = 0
            while seen and (upto is None or seen[0][0] < upto):
                start, size = seen.popleft()
                if start in finished:
                    add(start, parts.load_results(start))
                    recovered += size
            if recovered and on_progress:
                on_progress(recovered)

        for start, chunk in compute_stream(_simulate_chunk, todo(), jobs, backend, scheduler,
                                           settings):  # fmt: skip
            flush(start)
            parts.save_results(start, chunk)
            seen.popleft()
            add(start, chunk)
            if on_progress:
                on_progress(len(chunk))
        flush(None)
        meta_columns = _write_meta(writer, parts, starts)
        attrs = {**settings.as_attrs(), **(extra_attrs or {})}
        attrs["n_failures"] = len(failures)
        attrs["n_reader_fallbacks"] = len(fallbacks)
        attrs["meta_columns"] = ",".join(meta_columns)
        writer.finish(attrs, failures)
        _write_fallbacks(h5, fallbacks)
    parts.remove()
    return SimulationSummary(output, writer.n, failures, fallbacks, read_attrs_of(output))


def read_attrs_of(path: Path) -> dict:
    with h5py.File(path, "r") as h5:
        return read_attrs(h5)


def _append(writer: PatternWriter, ok: list[dict], settings: SimulationSettings) -> None:
    writer.append(
        [r["id"] for r in ok],
        {name: [r["labels"][name] for r in ok] for name in PATTERN_COLUMNS},
        [r["labels"]["lattice"] for r in ok],
        [r["structure"] for r in ok],
        [r["two_theta"] for r in ok],
        [r["intensity"] for r in ok],
        [r["hkl"] for r in ok],
        np.stack([r["profile"] for r in ok]) if settings.profile is not None and ok else None,
        {"augment": [r.get("augment", "") for r in ok]} if settings.augment else None,
    )


def _write_meta(writer: PatternWriter, parts: _Parts, starts: list[int]) -> list[str]:
    """Metadata columns, in a second pass over the saved chunks (only their metadata): a column
    is numeric when every value of it is a number or empty, as :func:`meta_array` decides."""
    columns: dict[str, bool] = {}
    for start in starts:
        for meta in parts.load_meta(start):
            for name, value in meta.items():
                columns[name] = columns.get(name, True) and meta_is_number(value)
    for start in starts:
        metas = parts.load_meta(start)
        for name, numeric in columns.items():
            writer.append_meta(name, meta_array([m.get(name, "") for m in metas], numeric))
    return list(columns)


def _write_fallbacks(h5: h5py.File, fallbacks: list[tuple[str, str]]) -> None:
    """``reader_fallbacks/{id,reason}``: the CIFs the fast reader left to pymatgen, and why."""
    grp = h5.create_group("reader_fallbacks")
    ids, reasons = (list(c) for c in zip(*fallbacks)) if fallbacks else ([], [])
    write_column(grp, "id", np.array(ids, dtype=object))
    write_column(grp, "reason", np.array(reasons, dtype=object))


def _assemble(results, settings: SimulationSettings, extra_attrs: dict) -> PatternSet:
    ok = [r for r in results if not r["failed"]]
    failures = [(r["id"], r["stage"], r["reason"]) for r in results if r["failed"]]
    cols: dict[str, None] = {}
    for r in ok:
        cols.update(dict.fromkeys(r["meta"]))
    meta = {c: meta_array([r["meta"].get(c, "") for r in ok]) for c in cols}
    labels = {
        name: np.array([r["labels"][name] for r in ok], dtype=object if name in _TEXT else np.int64)
        for name in PATTERN_COLUMNS
    }
    profiles = None
    grid = None
    if settings.profile is not None:
        grid = settings.profile.grid()
        profiles = (
            np.stack([r["profile"] for r in ok])
            if ok
            else np.zeros((0, grid.size), dtype=np.float32)
        )
    attrs = settings.as_attrs()
    attrs.update(extra_attrs)
    attrs["n_failures"] = len(failures)
    return PatternSet(
        ids=[r["id"] for r in ok],
        labels=labels,
        lattice=np.array([r["labels"]["lattice"] for r in ok]).reshape(-1, 6),
        structures=[r["structure"] for r in ok],
        sticks_two_theta=[r["two_theta"] for r in ok],
        sticks_intensity=[r["intensity"] for r in ok],
        sticks_hkl=[r["hkl"] for r in ok],
        meta=meta,
        profile_grid=grid,
        profiles=profiles,
        failures=failures,
        attrs=attrs,
        extra=(
            {"augment": np.array([r.get("augment", "") for r in ok], dtype=object)}
            if settings.augment
            else {}
        ),
    )


_TEXT = {"formula", "space_group_symbol", "crystal_system"}
