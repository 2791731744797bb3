"""``xtal cluster`` as a library call: select materials, fit the z-space clusters on a training
share, score them on the held-out share against k-means on the descriptors, characterise each
cluster, and write the outputs (report.json, clusters.csv, clusters.h5, plots)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xtal_cli.cluster.characterise import distinguishing
from xtal_cli.cluster.zspace import DescriptorKMeans, PropertyClusters, cluster_r2
from xtal_cli.describe.store import DescriptorSet
from xtal_cli.errors import ParameterError, XtalError

MIN_PER_CLUSTER = 5  # fewer materials per cluster than this makes cluster means noise


@dataclass(frozen=True)
class ClusterSettings:
    """What :func:`cluster_materials` does; checked on construction, parameters named."""

    properties: tuple[str, ...]
    n_clusters: int = 20
    n_estimators: int = 200
    min_samples_leaf: int = 5
    test_fraction: float = 0.2
    select: tuple[str, ...] = ()
    top: int = 8
    alpha: float = 0.01
    seed: int = 0

    def __post_init__(self):
        if not self.properties:
            raise ParameterError("properties", self.properties, "give at least one property")
        if len(set(self.properties)) != len(self.properties):
            raise ParameterError("properties", self.properties, "a property is given twice")
        if not isinstance(self.n_clusters, int) or self.n_clusters < 2:
            raise ParameterError("n_clusters", self.n_clusters, "must be at least 2")
        if not (0 < self.test_fraction < 0.9):
            raise ParameterError("test_fraction", self.test_fraction, "must be in (0, 0.9)")
        if not (0 < self.alpha < 1):
            raise ParameterError("alpha", self.alpha, "must be in (0, 1)")
        for expr in self.select:
            parse_selection(expr)


@dataclass
class ClusterResult:
    """Cluster labels (1 = highest mean of the first property), scores and summaries."""

    ids: list[str]
    formulas: list[str]
    labels: np.ndarray  # (n,) 1..k
    held_out: np.ndarray  # (n,) bool
    y: np.ndarray  # (n, p)
    settings: ClusterSettings
    scores: dict  # held-out R^2 per method and property
    clusters: list[dict]
    model: PropertyClusters
    values: np.ndarray  # (n, D) the descriptors of the clustered materials
    names: list[str]
    map_xy: np.ndarray | None = None  # (n, 2), NaN where not drawn
    n_selected: int = 0
    attrs: dict = field(default_factory=dict)

    def report(self) -> dict:
        return {
            "settings": asdict(self.settings),
            "n_materials": len(self.ids),
            "n_train": int((~self.held_out).sum()),
            "n_held_out": int(self.held_out.sum()),
            "n_leaves": int(self.model.n_leaves_),
            "held_out_r2": self.scores,
            "clusters": self.clusters,
            "source": self.attrs,
        }


_SELECTION = re.compile(r"^\s*(.+?)\s*(~|>=|<=|!=|=|<|>)\s*(.+?)\s*$")


def parse_selection(expr: str) -> tuple[str, str, str]:
    """``COLUMN OP VALUE`` with OP one of ~ (formula: holds these elements; text: contains),
    =, !=, <, <=, >, >=."""
    match = _SELECTION.match(expr or "")
    if not match:
        raise ParameterError(
            "select", expr, "write COLUMN~TEXT or COLUMN<VALUE (ops: ~ = != < <= > >=)"
        )
    return match.group(1), match.group(2), match.group(3)


def select_mask(ds: DescriptorSet, expr: str) -> np.ndarray:
    """The materials of *ds* that satisfy one selection expression."""
    column, op, value = parse_selection(expr)
    if column in ("formula", "elements") and op == "~":
        wanted = {v for v in re.split(r"[,\s]+", value) if v}
        return np.array([wanted <= set(e.split()) for e in ds.elements], dtype=bool)
    values = _column(ds, column, f"--select {expr!r}")
    if values.dtype.kind in "fiu":
        if op == "~":
            raise ParameterError("select", expr, f"{column} is numeric; use = < <= > >=")
        try:
            number = float(value)
        except ValueError:
            raise ParameterError("select", expr, f"{column} is numeric; {value!r} is not") from None
        with np.errstate(invalid="ignore"):
            return {
                "=": values == number,
                "!=": values != number,
                "<": values < number,
                "<=": values <= number,
                ">": values > number,
                ">=": values >= number,
            }[op]
    text = values.astype(str)
    if op == "~":
        return np.char.find(text, value) >= 0
    if op in ("=", "!="):
        return (text == value) if op == "=" else (text != value)
    raise ParameterError("select", expr, f"{column} is text; use ~, = or !=")


def _column(ds: DescriptorSet, name: str, what: str) -> np.ndarray:
    if name == "id":
        return np.array(ds.ids, dtype=str)
    if name == "formula":
        return np.array(ds.formulas, dtype=str)
    if name in ds.meta:
        return np.asarray(ds.meta[name])
    if name in ds.names:
        return ds.values[:, ds.names.index(name)]
    raise XtalError(f"{what}: no column {name!r}; {available(ds)}")


def available(ds: DescriptorSet) -> str:
    numeric = [k for k, v in ds.meta.items() if np.asarray(v).dtype.kind in "fiu"]
    return "numeric columns carried in the file: " + (", ".join(numeric) or "none")


def property_matrix(ds: DescriptorSet, properties: tuple[str, ...], source: str) -> np.ndarray:
    """(n, p) float64 of the carried *properties*, NaN where a material has none."""
    cols = []
    for name in properties:
        if name not in ds.meta:
            raise XtalError(f"{source}: no property column {name!r}; {available(ds)}")
        values = np.asarray(ds.meta[name])
        if values.dtype.kind not in "fiu":
            raise XtalError(f"{source}: property {name!r} is not numeric; {available(ds)}")
        cols.append(values.astype(np.float64))
    return np.stack(cols, axis=1)


def cluster_materials(
    ds: DescriptorSet, settings: ClusterSettings, *, source: str = "descriptors", jobs: int = 1
) -> ClusterResult:
    """Fit, score and characterise property-dependent clusters of the materials of *ds*."""
    mask = np.ones(len(ds), dtype=bool)
    for expr in settings.select:
        mask &= select_mask(ds, expr)
    n_selected = int(mask.sum())
    y_all = property_matrix(ds, settings.properties, source)
    mask &= np.isfinite(y_all).all(axis=1)
    need = MIN_PER_CLUSTER * settings.n_clusters
    n_train = int(round(mask.sum() * (1 - settings.test_fraction)))
    if n_train < need:
        props = " and ".join(settings.properties)
        raise XtalError(
            f"{source}: {int(mask.sum())} materials with {props}"
            + (" after --select" if settings.select else "")
            + f" ({n_train} for training), too few for {settings.n_clusters} clusters; need at "
            f"least {need} training materials ({MIN_PER_CLUSTER} per cluster): ask for fewer "
            "--clusters or describe more structures"
        )
    sub = ds.subset(mask)
    X = np.where(np.isfinite(sub.values), sub.values, np.nan)
    y = y_all[mask]
    rng = np.random.default_rng(settings.seed)
    held_out = np.zeros(len(sub), dtype=bool)
    held_out[rng.permutation(len(sub))[: len(sub) - n_train]] = True
    train = ~held_out

    model = PropertyClusters(
        settings.n_clusters,
        n_estimators=settings.n_estimators,
        min_samples_leaf=settings.min_samples_leaf,
        random_state=settings.seed,
        n_jobs=jobs,
    ).fit(X[train], y[train])
    reference = DescriptorKMeans(settings.n_clusters, random_state=settings.seed)
    reference.fit(X[train], y[train])
    test = held_out
    scores = {
        "forest": _named(cluster_r2(y[test], model.forest_predict(X[test])), settings),
        "z_space_clusters": _named(cluster_r2(y[test], model.predict_property(X[test])), settings),
        "descriptor_kmeans": _named(
            cluster_r2(y[test], reference.predict_property(X[test])), settings
        ),
    }
    z = model.transform(X)  # once: the clusters and the distances to their centres
    raw = model.kmeans_.predict(z)
    # number clusters 1..k from the highest mean of the first property down
    order = np.argsort(-model.cluster_means_[:, 0])
    rank = np.empty(settings.n_clusters, dtype=np.int64)
    rank[order] = np.arange(1, settings.n_clusters + 1)
    labels = rank[raw]
    distances = model.kmeans_.transform(z)[np.arange(len(X)), raw]
    found = distinguishing(
        X, labels - 1, sub.names, sub.families, n_clusters=settings.n_clusters,
        top=settings.top, alpha=settings.alpha,
    )  # fmt: skip
    clusters = []
    for k in range(1, settings.n_clusters + 1):
        inside = np.flatnonzero(labels == k)
        typical = inside[np.argsort(distances[inside])[:5]]
        clusters.append(
            {
                "cluster": k,
                "size": int(inside.size),
                "train_size": int((labels[train] == k).sum()),
                "property": {
                    name: _stats(y[inside, j]) for j, name in enumerate(settings.properties)
                },
                "distinguishing": [d.as_dict() for d in found[k - 1]],
                "examples": [
                    {
                        "id": sub.ids[i],
                        "formula": sub.formulas[i],
                        **{n: float(y[i, j]) for j, n in enumerate(settings.properties)},
                    }
                    for i in typical
                ],
            }
        )
    return ClusterResult(
        ids=sub.ids,
        formulas=sub.formulas,
        labels=labels,
        held_out=held_out,
        y=y,
        settings=settings,
        scores=scores,
        clusters=clusters,
        model=model,
        values=X,
        names=sub.names,
        n_selected=n_selected,
        attrs={"file": source, "preset": ds.attrs.get("preset"), "n_in_file": len(ds)},
    )


def _named(values: np.ndarray, settings: ClusterSettings) -> dict:
    return {name: round(float(v), 4) for name, v in zip(settings.properties, values)}


def _stats(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"n": 0}
    return {
        "n": int(values.size),
        "mean": round(float(values.mean()), 4),
        "std": round(float(values.std()), 4),
        "median": round(float(np.median(values)), 4),
        "min": round(float(values.min()), 4),
        "max": round(float(values.max()), 4),
    }


def zspace_map(result: ClusterResult, points: int = 3000) -> np.ndarray:
    """2-D t-SNE coordinates of (a random subset of at most *points*) materials in z space,
    from its first 50 singular vectors; NaN for materials not drawn."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.manifold import TSNE

    n = len(result.ids)
    rng = np.random.default_rng(result.settings.seed)
    idx = np.sort(rng.permutation(n)[: min(points, n)])
    z = result.model.transform(result.values[idx])
    k = max(2, min(50, z.shape[1] - 1, len(idx) - 1))
    reduced = TruncatedSVD(k, random_state=result.settings.seed).fit_transform(z)
    perplexity = float(min(30, max(5, (len(idx) - 1) / 3)))
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=result.settings.seed)
    out = np.full((n, 2), np.nan)
    out[idx] = xy.fit_transform(reduced)
    return out


def write_outputs(result: ClusterResult, outdir: str | Path) -> dict[str, Path]:
    """report.json, clusters.csv and clusters.h5 (one row per material) in *outdir*."""
    import csv

    import h5py

    from xtal_cli.io.h5 import atomic_path, write_attrs, write_column
    from xtal_cli.io.jsonable import write_json

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": outdir / "report.json",
        "csv": outdir / "clusters.csv",
        "h5": outdir / "clusters.h5",
    }
    write_json(paths["report"], result.report())
    xy = result.map_xy if result.map_xy is not None else np.full((len(result.ids), 2), np.nan)
    props = list(result.settings.properties)
    with atomic_path(paths["csv"]) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "formula", "cluster", "held_out", *props, "map_x", "map_y"])
        for i, ident in enumerate(result.ids):
            row = [ident, result.formulas[i], int(result.labels[i]), int(result.held_out[i])]
            row += [f"{v:.6g}" for v in result.y[i]]
            row += ["" if not np.isfinite(v) else f"{v:.5g}" for v in xy[i]]
            writer.writerow(row)
    with atomic_path(paths["h5"]) as tmp, h5py.File(tmp, "w") as h5:
        write_attrs(h5, "clusters", {"properties": ",".join(props)})
        write_column(h5, "id", np.array(result.ids, dtype=object))
        write_column(h5, "formula", np.array(result.formulas, dtype=object))
        write_column(h5, "cluster", result.labels.astype(np.int32))
        write_column(h5, "held_out", result.held_out.astype(np.int8))
        for j, name in enumerate(props):
            write_column(h5.require_group("property"), name, result.y[:, j])
        h5.create_dataset("map", data=xy.astype(np.float32))
    return paths


__all__ = [
    "ClusterResult",
    "ClusterSettings",
    "cluster_materials",
    "parse_selection",
    "select_mask",
    "write_outputs",
    "zspace_map",
]
