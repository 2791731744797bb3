"""The ``embeddings/1`` HDF5 file: one row per material with its ids, labels and carried metadata.

Layout: ``id`` and the label columns (``formula``, ``space_group``, ``space_group_symbol``,
``crystal_system``) as 1-D columns, ``meta/<name>`` for carried properties (band gap ...),
``embedding`` as dense (N, D) float32, ``failures``; attributes ``modality``, ``model``,
``dim`` and the model's grid. ``neighbors`` needs the ids to name what it finds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import h5py
import numpy as np

from xtal_cli.errors import XtalError
from xtal_cli.io import h5 as h5io

LABELS = ("formula", "space_group", "space_group_symbol", "crystal_system")


@dataclass
class EmbeddingSet:
    ids: list[str]
    embedding: np.ndarray  # (N, D) float32
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def record(self, i: int) -> dict:
        """Labels and metadata of row *i* as plain values (NaN -> None)."""
        rec = {"id": self.ids[i]}
        for name, col in {**self.labels, **self.meta}.items():
            v = col[i]
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and not np.isfinite(v):
                v = None
            rec[name] = v
        return rec


def write_embeddings(path: str | os.PathLike, es: EmbeddingSet) -> None:
    """Write atomically as ``embeddings/1``."""
    with h5io.atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5io.write_attrs(h5, "embeddings", es.attrs)
        h5.attrs["n_items"] = len(es.ids)
        h5io.write_column(h5, "id", np.array(es.ids, dtype=object))
        for name, values in es.labels.items():
            h5io.write_column(h5, name, values)
        meta = h5.create_group("meta")
        for name, values in es.meta.items():
            h5io.write_column(meta, name, values)
        emb = np.asarray(es.embedding, dtype=np.float32).reshape(len(es.ids), -1)
        h5io.write_dense(h5, "embedding", emb)
        h5io.write_failures(h5, es.failures)


def read_embeddings(path: str | os.PathLike) -> EmbeddingSet:
    """Read and check an ``embeddings/1`` file (ids present and matching the rows)."""
    with h5io.open_checked(path, "embeddings") as h5:
        if "embedding" not in h5:
            raise XtalError(f"{path}: has no 'embedding' dataset; write it again with xtal embed")
        if "id" not in h5:
            raise XtalError(
                f"{path}: has no 'id' column, so neighbours could not be named; "
                "write it again with xtal embed"
            )
        emb = h5["embedding"][()]
        ids = h5io.read_column(h5["id"]).tolist()
        if emb.ndim != 2 or len(ids) != emb.shape[0]:
            raise XtalError(
                f"{path}: {len(ids)} ids for {emb.shape[0] if emb.ndim else 0} embeddings; "
                "write it again with xtal embed"
            )
        labels = {n: h5io.read_column(h5[n]) for n in LABELS if n in h5}
        meta = {k: h5io.read_column(v) for k, v in h5["meta"].items()} if "meta" in h5 else {}
        return EmbeddingSet(
            ids=ids,
            embedding=np.ascontiguousarray(emb, dtype=np.float32),
            labels=labels,
            meta=meta,
            attrs=h5io.read_attrs(h5),
            failures=h5io.read_failures(h5),
        )
