"""Crystal graphs: neighbour lists, element features, batching and the HDF5 cache."""

import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from xtal_cli.embed.graphs import (
    GraphError,
    GraphStore,
    cached_graphs,
    element_features,
    structure_graph,
)


def test_nacl_graph_has_twelve_nearest_neighbours(small_structures):
    g = structure_graph(small_structures["NaCl"])
    assert len(g.z) == 8
    counts = np.bincount(g.dst, minlength=8)
    assert (counts == 12).all()
    # rock salt: 6 unlike ions at a/2, then 12 like ions at a/sqrt(2); 12 kept -> 6 + 6 of them
    d0 = np.sort(g.distance[g.dst == 0])
    assert np.allclose(d0[:6], 2.82, atol=1e-3) and np.allclose(d0[6:], 5.64 / 2**0.5, atol=1e-3)
    assert set(g.z[g.src[g.dst == 0][np.argsort(g.distance[g.dst == 0])[:6]]]) == {17}


def test_isolated_atom_cannot_form_a_graph():
    lonely = Structure(Lattice.cubic(20.0), ["Na"], [[0, 0, 0]])
    with pytest.raises(GraphError, match="no neighbour within 8 Å"):
        structure_graph(lonely)


def test_element_features_are_one_hot_blocks():
    table = element_features()
    assert table.shape[0] == 104 and not table[0].any()
    # 4 categorical blocks + 5 binned properties: at most 9 ones per element, most have all
    assert table[1:].sum(axis=1).max() == 9
    assert (table[[8, 26, 27]].sum(axis=1) == 9).all()  # O, Fe, Co have every property
    assert not np.array_equal(table[3], table[11])  # Li and Na differ (period, radius ...)


def test_batch_offsets_edges_into_one_graph(small_structures):
    graphs = [structure_graph(small_structures[n]) for n in ("Si", "NaCl", "ZnO")]
    store = GraphStore.from_graphs(["Si", "NaCl", "ZnO"], graphs)
    b = store.batch([2, 0])
    n_zno, n_si = len(graphs[2].z), len(graphs[0].z)
    assert np.array_equal(b["batch"], np.r_[np.zeros(n_zno), np.ones(n_si)])
    assert np.array_equal(b["z"], np.r_[graphs[2].z, graphs[0].z])
    e_zno = len(graphs[2].src)
    assert b["edge_index"][:, :e_zno].max() < n_zno
    assert b["edge_index"][:, e_zno:].min() >= n_zno
    assert np.array_equal(b["edge_index"][1, e_zno:] - n_zno, graphs[0].dst)


def test_cache_is_reused_and_rebuilt_when_settings_change(tmp_path, small_structures):
    ids = list(small_structures)
    texts = [json.dumps(s.as_dict()) for s in small_structures.values()]
    lonely = Structure(Lattice.cubic(20.0), ["Na"], [[0, 0, 0]])
    ids.append("lonely")
    texts.append(json.dumps(lonely.as_dict()))
    cache = tmp_path / "g.h5"
    store, hit = cached_graphs(cache, ids, texts)
    assert not hit and len(store) == 4
    assert store.failures[0][0] == "lonely" and "no neighbour" in store.failures[0][2]
    again, hit = cached_graphs(cache, ids, texts)
    assert hit and again.ids == store.ids and np.array_equal(again.distance, store.distance)
    _, hit = cached_graphs(cache, ids, texts, max_neighbors=6)
    assert not hit
