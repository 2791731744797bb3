"""Crystal structures as graphs for the CGCNN encoder, and their HDF5 cache (``graphs/1``).

Atoms are nodes with CGCNN-style one-hot element features built from pymatgen's element data;
each atom is joined to at most ``max_neighbors`` nearest atoms (periodic images included) within
``cutoff`` Å. Distances are stored raw and expanded into Gaussians inside the model, so the cache
stays small and the expansion can change without rebuilding graphs. Graphs are built once per
pattern file and reused by every epoch and by later runs with the same settings.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from xtal_cli.errors import XtalError
from xtal_cli.io import h5 as h5io

DEFAULT_CUTOFF = 8.0
DEFAULT_MAX_NEIGHBORS = 12
MAX_Z = 103  # the element table covers H..Lr

# (name, number of one-hot bins, log scale) for the binned continuous properties
_BINNED = (
    ("electronegativity", 10, False),
    ("atomic_radius", 10, False),
    ("ionization_energy", 10, True),
    ("electron_affinity", 10, False),
    ("atomic_volume", 10, True),
)
FEATURE_VERSION = 1  # bump when the element features change (stored with every model)


class GraphError(ValueError):
    """A structure that cannot be turned into a graph (isolated atom, disorder, unknown element)."""


def _valence_electrons(el) -> int:
    """Electrons outside the noble-gas core: outermost shell plus open d and f subshells."""
    shells = el.full_electronic_structure
    n_max = max(n for n, _, _ in shells)
    full = {"s": 2, "p": 6, "d": 10, "f": 14}
    count = 0
    for n, orb, occ in shells:
        if n == n_max or (orb in "df" and occ < full[orb]):
            count += occ
    return count


def _raw_properties(z: int) -> dict:
    from pymatgen.core import Element

    el = Element.from_Z(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ie = el.ionization_energies
        vol = el.molar_volume
        props = {
            "group": el.group,
            "period": el.row,
            "block": el.block,
            "valence": _valence_electrons(el),
            "electronegativity": float(el.X),
            "atomic_radius": float(el.atomic_radius) if el.atomic_radius is not None else np.nan,
            "ionization_energy": float(ie[0]) if ie and ie[0] else np.nan,
            "electron_affinity": float(el.electron_affinity)
            if el.electron_affinity is not None
            else np.nan,
            # molar volume (cm^3/mol) -> Å^3 per atom
            "atomic_volume": float(vol) / 0.6022140857 if vol is not None else np.nan,
        }
    return props


@functools.lru_cache(maxsize=1)
def element_features() -> np.ndarray:
    """(MAX_Z + 1, F) float32 table of one-hot element features; row 0 is unused.

    Blocks: group (18), period (7), block (4), valence electrons (12), then 10 bins each of
    electronegativity, atomic radius, first ionisation energy (log), electron affinity and atomic
    volume (log). Bins span the range over H..Lr; a missing value leaves its block zero.
    """
    props = [_raw_properties(z) for z in range(1, MAX_Z + 1)]
    blocks = []
    group = np.zeros((MAX_Z, 18))
    period = np.zeros((MAX_Z, 7))
    block = np.zeros((MAX_Z, 4))
    valence = np.zeros((MAX_Z, 12))
    for i, p in enumerate(props):
        group[i, min(max(int(p["group"]), 1), 18) - 1] = 1
        period[i, min(max(int(p["period"]), 1), 7) - 1] = 1
        block[i, "spdf".index(p["block"])] = 1
        valence[i, min(max(p["valence"], 1), 12) - 1] = 1
    blocks += [group, period, block, valence]
    for name, n_bins, log in _BINNED:
        values = np.array([p[name] for p in props], dtype=float)
        ok = np.isfinite(values) & ((values > 0) if log else True)
        v = np.where(ok, values, np.nan)
        if log:
            v = np.log(v)
        lo, hi = np.nanmin(v), np.nanmax(v)
        scaled = np.nan_to_num((v - lo) / (hi - lo) * n_bins, nan=0.0)
        idx = np.clip(scaled.astype(int), 0, n_bins - 1)
        onehot = np.zeros((MAX_Z, n_bins))
        onehot[np.flatnonzero(ok), idx[ok]] = 1
        blocks.append(onehot)
    table = np.concatenate(blocks, axis=1).astype(np.float32)
    return np.vstack([np.zeros((1, table.shape[1]), np.float32), table])


@dataclass
class Graph:
    """One crystal graph: atomic numbers and directed edges neighbour -> centre with lengths."""

    z: np.ndarray  # (n_atoms,) int16
    src: np.ndarray  # (n_edges,) int32, neighbour atom index
    dst: np.ndarray  # (n_edges,) int32, centre atom index
    distance: np.ndarray  # (n_edges,) float32, Å


def structure_graph(
    structure, cutoff: float = DEFAULT_CUTOFF, max_neighbors: int = DEFAULT_MAX_NEIGHBORS
) -> Graph:
    """The graph of a pymatgen Structure; raises :class:`GraphError` if an atom has no neighbour."""
    if not structure.is_ordered:
        raise GraphError("disordered (partially occupied) sites; order the structure first")
    z = np.array([site.specie.Z for site in structure], dtype=np.int16)
    if z.max() > MAX_Z:
        raise GraphError(f"element Z={int(z.max())} beyond Lr has no element features")
    centre, nbr, _, dist = structure.get_neighbor_list(r=cutoff)
    keep = dist > 1e-8
    centre, nbr, dist = centre[keep], nbr[keep], dist[keep]
    order = np.lexsort((dist, centre))
    centre, nbr, dist = centre[order], nbr[order], dist[order]
    counts = np.bincount(centre, minlength=len(z))
    if counts.min() == 0:
        lonely = int(np.argmin(counts))
        raise GraphError(
            f"atom {lonely} ({structure[lonely].specie}) has no neighbour within {cutoff:g} Å"
        )
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(centre)) - starts[centre]
    sel = rank < max_neighbors
    return Graph(
        z=z,
        src=nbr[sel].astype(np.int32),
        dst=centre[sel].astype(np.int32),
        distance=dist[sel].astype(np.float32),
    )


def _graph_from_json(text: str, cutoff: float, max_neighbors: int) -> Graph | str:
    """Worker for building many graphs: returns the graph or the reason it failed."""
    from pymatgen.core import Structure

    try:
        structure = Structure.from_dict(json.loads(text))
        return structure_graph(structure, cutoff, max_neighbors)
    except GraphError as exc:
        return str(exc)
    except (ValueError, KeyError, TypeError) as exc:
        return f"not a readable structure ({exc})"


@dataclass
class GraphStore:
    """Many graphs as flat arrays with offsets, batched cheaply for the model."""

    ids: list[str]
    z: np.ndarray
    node_offsets: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    distance: np.ndarray
    edge_offsets: np.ndarray
    attrs: dict = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_graphs(cls, ids: list[str], graphs: list[Graph], **kw) -> GraphStore:
        n_nodes = np.array([len(g.z) for g in graphs], dtype=np.int64)
        n_edges = np.array([len(g.src) for g in graphs], dtype=np.int64)

        def cat(name, dtype):
            arrays = [getattr(g, name) for g in graphs]
            return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)

        return cls(
            ids=list(ids),
            z=cat("z", np.int16),
            node_offsets=np.concatenate([[0], np.cumsum(n_nodes)]).astype(np.int64),
            src=cat("src", np.int32),
            dst=cat("dst", np.int32),
            distance=cat("distance", np.float32),
            edge_offsets=np.concatenate([[0], np.cumsum(n_edges)]).astype(np.int64),
            **kw,
        )

    def batch(self, indices) -> dict[str, np.ndarray]:
        """Concatenate graphs *indices* into one disjoint graph (numpy; the trainer moves it)."""
        indices = np.asarray(indices, dtype=np.int64)
        n0, n1 = self.node_offsets[indices], self.node_offsets[indices + 1]
        e0, e1 = self.edge_offsets[indices], self.edge_offsets[indices + 1]
        n_nodes, n_edges = n1 - n0, e1 - e0
        node_idx = _ranges(n0, n_nodes)
        edge_idx = _ranges(e0, n_edges)
        shift = np.repeat(np.concatenate([[0], np.cumsum(n_nodes)[:-1]]), n_edges)
        return {
            "z": self.z[node_idx].astype(np.int64),
            "edge_index": np.stack(
                [self.src[edge_idx].astype(np.int64) + shift, self.dst[edge_idx] + shift]
            ),
            "distance": self.distance[edge_idx],
            "batch": np.repeat(np.arange(len(indices)), n_nodes),
        }

    def subset(self, indices) -> GraphStore:
        """A new store with the graphs *indices* (in that order)."""
        indices = np.asarray(indices, dtype=np.int64)
        graphs = []
        for i in indices:
            a, b = self.node_offsets[i], self.node_offsets[i + 1]
            c, d = self.edge_offsets[i], self.edge_offsets[i + 1]
            graphs.append(Graph(self.z[a:b], self.src[c:d], self.dst[c:d], self.distance[c:d]))
        return GraphStore.from_graphs([self.ids[i] for i in indices], graphs, attrs=self.attrs)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for each start/length pair, without a Python loop."""
    heads = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.repeat(starts - heads, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def build_graphs(
    ids: list[str],
    structures_json: list[str],
    cutoff: float = DEFAULT_CUTOFF,
    max_neighbors: int = DEFAULT_MAX_NEIGHBORS,
    workers: int = 1,
    on_progress=None,
) -> GraphStore:
    """Graphs of pymatgen-JSON structures; failures are recorded (stage ``graph``), not dropped."""
    from joblib import Parallel, delayed

    chunk = 256
    results: list[Graph | str] = []
    with Parallel(n_jobs=workers) as parallel:
        for start in range(0, len(ids), chunk):
            part = structures_json[start : start + chunk]
            if workers > 1:
                out = parallel(delayed(_graph_from_json)(t, cutoff, max_neighbors) for t in part)
            else:
                out = [_graph_from_json(t, cutoff, max_neighbors) for t in part]
            results.extend(out)
            if on_progress is not None:
                on_progress(len(part))
    good = [i for i, r in enumerate(results) if isinstance(r, Graph)]
    failures = [(ids[i], "graph", r) for i, r in enumerate(results) if isinstance(r, str)]
    store = GraphStore.from_graphs(
        [ids[i] for i in good],
        [results[i] for i in good],
        attrs={"cutoff": cutoff, "max_neighbors": max_neighbors},
        failures=failures,
    )
    return store


def ids_fingerprint(ids: list[str], structures_json: list[str]) -> str:
    """A short hash of the items a cache was built from, to notice a changed source file."""
    h = hashlib.sha256()
    for i, s in zip(ids, structures_json):
        h.update(i.encode())
        h.update(hashlib.sha256(s.encode()).digest())
    return h.hexdigest()[:32]


def write_graphs(path: str | os.PathLike, store: GraphStore, attrs: dict) -> None:
    """Write a :class:`GraphStore` atomically as ``graphs/1``."""
    with h5io.atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5io.write_attrs(h5, "graphs", {**store.attrs, **attrs})
        h5io.write_column(h5, "id", np.array(store.ids, dtype=object))
        nodes = h5.create_group("nodes")
        nodes.create_dataset("offsets", data=store.node_offsets)
        nodes.create_dataset("z", data=store.z, **h5io.gzip_options(store.z.size))
        edges = h5.create_group("edges")
        edges.create_dataset("offsets", data=store.edge_offsets)
        for name in ("src", "dst", "distance"):
            arr = getattr(store, name)
            edges.create_dataset(name, data=arr, **h5io.gzip_options(arr.size))
        h5io.write_failures(h5, store.failures)


def read_graphs(path: str | os.PathLike) -> GraphStore:
    required = ("id", "nodes/offsets", "nodes/z", "edges/offsets", "edges/src", "edges/distance")
    with h5io.open_checked(path, "graphs", required) as h5:
        return GraphStore(
            ids=h5io.read_column(h5["id"]).tolist(),
            z=h5["nodes/z"][()],
            node_offsets=h5["nodes/offsets"][()],
            src=h5["edges/src"][()],
            dst=h5["edges/dst"][()],
            distance=h5["edges/distance"][()],
            edge_offsets=h5["edges/offsets"][()],
            attrs=h5io.read_attrs(h5),
            failures=h5io.read_failures(h5),
        )


# duplicates: the signature of build_graphs, which it wraps with a cache (deliberate)
def cached_graphs(
    cache: str | os.PathLike,
    ids: list[str],
    structures_json: list[str],
    cutoff: float = DEFAULT_CUTOFF,
    max_neighbors: int = DEFAULT_MAX_NEIGHBORS,
    workers: int = 1,
    on_progress=None,
) -> tuple[GraphStore, bool]:
    """Graphs from *cache* when it was built from the same items and settings, else build it.

    Returns the store and whether it came from the cache.
    """
    cache = Path(cache)
    fingerprint = ids_fingerprint(ids, structures_json)
    if cache.exists():
        try:
            store = read_graphs(cache)
        except XtalError:
            store = None
        if (
            store is not None
            and store.attrs.get("source_fingerprint") == fingerprint
            and float(store.attrs.get("cutoff", -1)) == float(cutoff)
            and int(store.attrs.get("max_neighbors", -1)) == int(max_neighbors)
        ):
            return store, True
    store = build_graphs(ids, structures_json, cutoff, max_neighbors, workers, on_progress)
    write_graphs(cache, store, {"source_fingerprint": fingerprint, "n_source": len(ids)})
    return store, False
