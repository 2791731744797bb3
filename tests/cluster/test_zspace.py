"""z-space clusters (random-forest leaf encoding) against k-means on all descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from xtal_cli.cluster.characterise import distinguishing
from xtal_cli.cluster.run import ClusterSettings, cluster_materials, select_mask
from xtal_cli.cluster.zspace import DescriptorKMeans, PropertyClusters, cluster_r2
from xtal_cli.describe.store import DescriptorSet
from xtal_cli.errors import ParameterError, XtalError


def _synthetic(n=600, seed=0):
    """Descriptor 0 alone sets the property; descriptors 1-11 form four strong blobs that
    have nothing to do with it (what k-means on all descriptors follows)."""
    rng = np.random.default_rng(seed)
    blob = rng.integers(0, 4, n)
    centres = rng.normal(0, 6, (4, 11))
    X = np.empty((n, 12))
    X[:, 0] = rng.uniform(0, 1, n)
    X[:, 1:] = centres[blob] + rng.normal(0, 1, (n, 11))
    y = 3.0 * np.floor(4 * X[:, 0]) + rng.normal(0, 0.1, n)
    return X, y


def _eta2(values, labels):
    """Share of the variance of *values* explained by the grouping *labels*."""
    total = values.var() * len(values)
    within = sum(((values[labels == k] - values[labels == k].mean()) ** 2).sum()
                 for k in np.unique(labels))  # fmt: skip
    return 1 - within / total


def test_zspace_separates_by_the_descriptor_that_matters_and_kmeans_does_not():
    X, y = _synthetic()
    z = PropertyClusters(4, n_estimators=50, random_state=0).fit(X, y)
    km = DescriptorKMeans(4, random_state=0).fit(X, y)
    assert _eta2(X[:, 0], z.labels_) > 0.8
    assert _eta2(X[:, 0], km.labels_) < 0.2
    X_test, y_test = _synthetic(seed=1)
    r2_z = cluster_r2(y_test, z.predict_property(X_test))[0]
    r2_km = cluster_r2(y_test, km.predict_property(X_test))[0]
    assert r2_z > 0.8 > 0.2 > r2_km


def test_leaf_code_is_one_hot_per_tree():
    X, y = _synthetic(200)
    model = PropertyClusters(3, n_estimators=7, random_state=0).fit(X, y)
    z = model.transform(X[:10])
    assert z.shape == (10, model.n_leaves_)
    np.testing.assert_array_equal(np.asarray(z.sum(axis=1)).ravel(), 7)
    assert z.max() == 1


def test_distinguishing_names_the_descriptor_and_its_direction():
    X, y = _synthetic()
    model = PropertyClusters(4, n_estimators=50, random_state=0).fit(X, y)
    names = [f"d{j}" for j in range(12)]
    found = distinguishing(X, model.labels_, names, ["f"] * 12, n_clusters=4, top=3)
    top = model.cluster_means_[:, 0].argmax()
    assert found[top][0].name == "d0" and found[top][0].effect_size > 1
    assert found[top][0].q_value < 0.01


def test_parameters_are_checked_by_name():
    X, y = _synthetic(30)
    with pytest.raises(ParameterError, match="n_clusters"):
        PropertyClusters(20).fit(X, y)
    with pytest.raises(ParameterError, match="max_features"):
        PropertyClusters(2, max_features=2.0).fit(X, y)
    with pytest.raises(ParameterError, match="n_clusters"):
        ClusterSettings(("band_gap",), n_clusters=1)
    with pytest.raises(ParameterError, match="select"):
        ClusterSettings(("band_gap",), select=("band gap is large",))


def _set(n=300):
    X, y = _synthetic(n)
    elements = ["Ti O" if i % 2 else "Na Cl" for i in range(n)]
    return DescriptorSet(
        ids=[f"m{i}" for i in range(n)],
        formulas=["TiO2" if i % 2 else "NaCl" for i in range(n)],
        elements=elements,
        values=X,
        names=[f"d{j}" for j in range(12)],
        families=["f"] * 12,
        meta={"band_gap": y, "origin": np.array(["mp"] * n, dtype=object), "two": -y},  # fmt: skip
    )


def test_selection_and_two_properties():
    ds = _set()
    assert select_mask(ds, "formula~O").sum() == 150
    assert select_mask(ds, "formula~Ti,O").sum() == 150
    assert select_mask(ds, "formula~Os").sum() == 0  # elements, not substrings
    assert select_mask(ds, "band_gap>=6").sum() == (ds.meta["band_gap"] >= 6).sum()
    assert select_mask(ds, "d0<0.5").sum() == (ds.values[:, 0] < 0.5).sum()
    assert select_mask(ds, "origin=mp").all()
    settings = ClusterSettings(("band_gap", "two"), n_clusters=4, n_estimators=40)
    result = cluster_materials(ds, settings)
    assert set(result.scores["z_space_clusters"]) == {"band_gap", "two"}
    assert result.scores["z_space_clusters"]["band_gap"] > 0.8
    means = [c["property"]["band_gap"]["mean"] for c in result.clusters]
    assert means == sorted(means, reverse=True)  # cluster 1 has the highest mean
    assert result.labels.min() == 1 and result.labels.max() == 4


def test_clear_errors():
    ds = _set(60)
    with pytest.raises(XtalError, match="no property column 'dielectric'.*band_gap"):
        cluster_materials(ds, ClusterSettings(("dielectric",), n_clusters=4))
    with pytest.raises(XtalError, match="too few for 20 clusters"):
        cluster_materials(ds, ClusterSettings(("band_gap",), n_clusters=20))
    with pytest.raises(XtalError, match="not numeric"):
        cluster_materials(ds, ClusterSettings(("origin",), n_clusters=2))
