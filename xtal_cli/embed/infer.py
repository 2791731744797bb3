"""Embedding with a trained model (``xtal embed`` and the query side of ``xtal neighbors``).

Inputs: pattern HDF5 files from ``xtal simulate`` (structures, profiles, labels, metadata),
structure files (CIF/CSV/JSON, labelled with spglib here) and measured scans (XRD side only).
Every pattern is put on the model's training grid: a measured scan is converted to the model's
wavelength through d-spacings, its background removed (SNIP), interpolated and scaled to a
maximum of 1, so it lands in the same space as the simulated patterns of the structure database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xtal_cli.embed.graphs import FEATURE_VERSION, GraphError, GraphStore, structure_graph
from xtal_cli.embed.models import MODEL_FORMAT, DualEncoder, EmbedConfig
from xtal_cli.embed.store import LABELS, EmbeddingSet
from xtal_cli.errors import XtalError

PATTERN_SUFFIXES = (".h5", ".hdf5")
MODALITIES = ("structure", "xrd")


@dataclass
class Embedder:
    """A loaded model ready to embed (eval mode, on its device)."""

    model: DualEncoder
    cfg: EmbedConfig
    device: torch.device
    path: str
    info: dict

    @property
    def grid(self) -> np.ndarray:
        return np.linspace(self.cfg.grid_min, self.cfg.grid_max, self.cfg.grid_points)

    @torch.no_grad()
    def embed_graphs(self, graphs: GraphStore, batch_size: int = 512, on_progress=None):
        from xtal_cli.embed.train import to_device

        out = []
        for start in range(0, len(graphs), batch_size):
            idx = np.arange(start, min(start + batch_size, len(graphs)))
            g = to_device(graphs.batch(idx), self.device)
            out.append(
                self.model.crystal(g["z"], g["edge_index"], g["distance"], g["batch"]).float()
            )
            if on_progress:
                on_progress(len(idx))
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, self.cfg.dim), np.float32)

    @torch.no_grad()
    def embed_profiles(self, profiles: np.ndarray, batch_size: int = 512, on_progress=None):
        """Embeddings of profiles already on :attr:`grid`."""
        out = []
        for start in range(0, len(profiles), batch_size):
            p = torch.from_numpy(np.asarray(profiles[start : start + batch_size], np.float32))
            out.append(self.model.xrd(p.to(self.device)).float())
            if on_progress:
                on_progress(len(p))
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, self.cfg.dim), np.float32)

    def embed_scans(self, scans, batch_size: int = 512) -> np.ndarray:
        """Embeddings of measured :class:`~xtal_cli.io.scans.Scan` objects: each is converted to
        the model's wavelength, background-subtracted and resampled onto :attr:`grid` first."""
        profiles = np.stack([resample_scan(scan, self.cfg) for scan in scans])
        return self.embed_profiles(profiles, batch_size=batch_size)


def is_scan_file(path: Path) -> bool:
    """A measured pattern: by extension; a ``.csv`` with a ``cif`` column or a ``.cif`` with atom
    sites holds structures instead."""
    from xtal_cli.io.scans import READERS

    suffix = path.suffix.lower()
    if suffix not in READERS:
        return False
    if suffix == ".csv" and path.exists():
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "cif" not in fh.readline().lower()
    if suffix == ".cif":  # a powder-data CIF (pdCIF) has measured points and no atom sites
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return "_pd_meas" in text and "_atom_site_fract" not in text
    return True


def model_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path / "model.pt" if path.is_dir() else path


def load_model(path: str | os.PathLike, device: str = "cpu") -> Embedder:
    """Load ``model.pt`` (or a ``checkpoint.pt``, or the training folder) and check it fits.

    Read with ``torch.load(weights_only=True)``: a model file from elsewhere cannot run code."""
    from xtal_cli.embed.train import load_payload, resolve_device

    file = model_file(path)
    if not file.exists():
        raise XtalError(f"{file}: no such model; train one with xtal train-embed")
    payload = load_payload(file, "a model", "use the model.pt written by xtal train-embed")
    kind = payload.get("kind") if isinstance(payload, dict) else None
    if kind not in ("xtal-embed-model", "xtal-embed-checkpoint"):
        raise XtalError(
            f"{file}: not an embedding model of xtal train-embed; "
            "use the model.pt from its output folder"
        )
    if payload.get("format") != MODEL_FORMAT:
        raise XtalError(
            f"{file}: model format {payload.get('format')} is not the {MODEL_FORMAT} this xtal "
            "reads; train it again with this version"
        )
    cfg = EmbedConfig.from_dict(payload["config"])
    if cfg.feature_version != FEATURE_VERSION:
        raise XtalError(
            f"{file}: trained with element features v{cfg.feature_version}, this xtal has "
            f"v{FEATURE_VERSION}; train it again"
        )
    model = DualEncoder(cfg)
    try:
        model.load_state_dict(payload["state"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)[:120]
        raise XtalError(
            f"{file}: weights from a different model do not fit its configuration ({first}); "
            "use the model.pt written together with this configuration"
        ) from None
    dev = resolve_device(device)
    model.to(dev).eval()
    return Embedder(model, cfg, dev, str(file), payload.get("info", {}))


def resample_scan(scan, embedder_cfg: EmbedConfig, background: bool = True) -> np.ndarray:
    """A measured scan on the model grid: same wavelength, background removed, max 1."""
    from xtal_cli.xrd.peaks import snip_background

    tt = np.asarray(scan.two_theta, float)
    y = np.asarray(scan.counts, float)
    lam = scan.wavelength or embedder_cfg.wavelength
    if abs(lam - embedder_cfg.wavelength) > 1e-4:
        s = lam and np.sin(np.radians(tt / 2)) * embedder_cfg.wavelength / lam
        ok = np.abs(s) < 1
        tt, y = np.degrees(2 * np.arcsin(s[ok])), y[ok]
    if background and len(y) > 20:
        step = float(np.median(np.diff(tt))) or 0.02
        y = y - snip_background(y, int(round(1.5 / step)))
    grid = np.linspace(embedder_cfg.grid_min, embedder_cfg.grid_max, embedder_cfg.grid_points)
    out = np.interp(grid, tt, y, left=0.0, right=0.0).clip(min=0)
    if out.max() <= 0:
        raise XtalError(
            f"{scan.path or 'scan'}: no intensity inside the model's 2θ range "
            f"{embedder_cfg.grid_min:g}-{embedder_cfg.grid_max:g}° "
            f"(at {embedder_cfg.wavelength:g} Å)"
        )
    return (out / out.max()).astype(np.float32)


def resample_profiles(grid: np.ndarray, profiles: np.ndarray, cfg: EmbedConfig) -> np.ndarray:
    """Simulated profiles onto the model grid (unchanged when the grids agree)."""
    target = np.linspace(cfg.grid_min, cfg.grid_max, cfg.grid_points)
    grid = np.asarray(grid, float)
    if len(grid) == len(target) and np.allclose(grid, target, atol=1e-6):
        return np.asarray(profiles, np.float32)
    out = np.stack([np.interp(target, grid, p, left=0.0, right=0.0) for p in profiles])
    peak = out.max(axis=1, keepdims=True)
    return (out / np.where(peak > 0, peak, 1.0)).astype(np.float32)


@dataclass
class _Rows:
    """What was gathered from the inputs, before embedding."""

    ids: list
    labels: dict
    meta: dict
    structures: list  # pymatgen Structures (structure inputs) or None
    profiles: list  # arrays on the model grid or None
    failures: list


def _empty_rows() -> _Rows:
    return _Rows([], {n: [] for n in LABELS}, {}, [], [], [])


def _add(rows: _Rows, id_, labels: dict, meta: dict, structure=None, profile=None) -> None:
    n = len(rows.ids)
    rows.ids.append(id_)
    for name in LABELS:
        rows.labels[name].append(labels.get(name, ""))
    for key in set(rows.meta) | set(meta):
        col = rows.meta.setdefault(key, [None] * n)
        col.append(meta.get(key))
    rows.structures.append(structure)
    rows.profiles.append(profile)


def _simulated_profile(structure, cfg: EmbedConfig) -> np.ndarray:
    from xtal_cli.xrd.profile import ProfileSettings, render_profile
    from xtal_cli.xrd.sticks import compute_sticks

    step = (cfg.grid_max - cfg.grid_min) / (cfg.grid_points - 1)
    settings = ProfileSettings(two_theta_min=cfg.grid_min, two_theta_max=cfg.grid_max, step=step)
    sticks = compute_sticks(structure, cfg.wavelength, (cfg.grid_min, cfg.grid_max))
    return render_profile(sticks.two_theta, sticks.intensity, settings)[: cfg.grid_points]


def gather_inputs(paths: list[str], modality: str, cfg: EmbedConfig) -> _Rows:
    """Read every input into rows of ids, labels, metadata and structures or profiles."""
    from xtal_cli.io.h5 import read_patterns
    from xtal_cli.io.scans import read_scan
    from xtal_cli.io.structures import collect_items, load_structure, structure_from_json
    from xtal_cli.xrd.labels import symmetry_labels

    rows = _empty_rows()
    structure_sources = []
    for raw in paths:
        path = Path(raw)
        suffix = path.suffix.lower()
        if suffix in PATTERN_SUFFIXES:
            ps = read_patterns(path, sticks=False)
            rows.failures.extend(ps.failures)
            if modality == "xrd":
                if ps.profiles is None:
                    raise XtalError(
                        f"{path}: has no profiles; simulate with --profile or use "
                        "--modality structure"
                    )
                profiles = resample_profiles(ps.profile_grid, ps.profiles, cfg)
            for k, id_ in enumerate(ps.ids):
                labels = {n: ps.labels[n][k] for n in LABELS if n in ps.labels}
                meta = {m: ps.meta[m][k] for m in ps.meta}
                if modality == "structure":
                    _add(rows, id_, labels, meta, structure=ps.structures[k])
                else:
                    _add(rows, id_, labels, meta, profile=profiles[k])
        elif is_scan_file(path):
            if modality != "xrd":
                raise XtalError(f"{path}: a measured pattern has no structure; use --modality xrd")
            scan = read_scan(path, wavelength=cfg.wavelength)
            _add(rows, path.stem, {}, {"source": str(path)}, profile=resample_scan(scan, cfg))
        else:
            structure_sources.append(raw)
    if structure_sources:
        for item in collect_items(structure_sources):
            try:
                structure = load_structure(item)
                labels = symmetry_labels(structure)
            except ValueError as exc:
                rows.failures.append((item.id, "parse", str(exc)))
                continue
            meta = {k: _number(v) for k, v in item.meta.items()}
            if modality == "structure":
                _add(rows, item.id, labels, meta, structure=structure)
            else:
                _add(rows, item.id, labels, meta, profile=_simulated_profile(structure, cfg))
    # structures from pattern files are JSON text; parse them lazily here
    if modality == "structure":
        rows.structures = [
            structure_from_json(s) if isinstance(s, str) else s for s in rows.structures
        ]
    return rows


def _number(v):
    try:
        return float(v) if v not in ("", None) else np.nan
    except (TypeError, ValueError):
        return v


def embed_inputs(
    embedder: Embedder,
    paths: list[str],
    modality: str = "structure",
    batch_size: int = 512,
    on_progress=None,
) -> EmbeddingSet:
    """Embed every input; items that fail (no graph, unreadable) go to ``failures``."""
    if modality not in MODALITIES:
        raise XtalError(f"--modality {modality}: use structure or xrd")
    cfg = embedder.cfg
    rows = gather_inputs(paths, modality, cfg)
    keep = list(range(len(rows.ids)))
    if modality == "structure":
        graphs, keep = [], []
        for k, structure in enumerate(rows.structures):
            try:
                graphs.append(structure_graph(structure, cfg.cutoff, cfg.max_neighbors))
                keep.append(k)
            except GraphError as exc:
                rows.failures.append((rows.ids[k], "graph", str(exc)))
        store = GraphStore.from_graphs([rows.ids[k] for k in keep], graphs)
        emb = embedder.embed_graphs(store, batch_size, on_progress)
    else:
        emb = embedder.embed_profiles(np.stack(rows.profiles) if keep else [], batch_size)
    if not keep:
        reasons = "; ".join(f"{i}: {r}" for i, _, r in rows.failures[:3])
        raise XtalError(f"no input could be embedded ({reasons or 'no inputs'})")
    labels = {n: _column([rows.labels[n][k] for k in keep]) for n in LABELS}
    meta = {m: _column([col[k] for k in keep]) for m, col in rows.meta.items()}
    attrs = {
        "modality": modality,
        "model": str(Path(embedder.path).resolve()),
        "dim": cfg.dim,
        "grid_min": cfg.grid_min,
        "grid_max": cfg.grid_max,
        "grid_points": cfg.grid_points,
        "wavelength": cfg.wavelength,
        "sources": ";".join(str(p) for p in paths),
    }
    return EmbeddingSet(
        ids=[rows.ids[k] for k in keep],
        embedding=emb,
        labels=labels,
        meta=meta,
        attrs=attrs,
        failures=rows.failures,
    )


def _column(values: list) -> np.ndarray:
    """Numbers as float64 (missing -> NaN), anything else as text."""
    try:
        return np.array([np.nan if v is None or v == "" else float(v) for v in values])
    except (TypeError, ValueError):
        return np.array(["" if v is None else str(v) for v in values], dtype=object)


def embed_query_file(embedder: Embedder, path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """One query file -> (embedding, modality): a structure file or a measured pattern."""
    modality = "xrd" if is_scan_file(Path(path)) else "structure"
    es = embed_inputs(embedder, [str(path)], modality)
    return es.embedding[0], modality
