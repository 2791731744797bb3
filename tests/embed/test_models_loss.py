"""Encoders, the bidirectional triplet loss and retrieval accuracy."""

import numpy as np
import torch

from xtal_cli.embed.graphs import GraphStore, structure_graph
from xtal_cli.embed.loss import bidirectional_triplet, one_way_triplet, retrieval_topk
from xtal_cli.embed.models import DualEncoder, EmbedConfig


def test_encoders_map_both_modalities_to_the_same_space(small_structures):
    cfg = EmbedConfig(dim=32, grid_points=1000)
    model = DualEncoder(cfg)
    graphs = GraphStore.from_graphs(
        list(small_structures), [structure_graph(s) for s in small_structures.values()]
    )
    g = {k: torch.from_numpy(v) for k, v in graphs.batch(np.arange(4)).items()}
    s, x = model(g, torch.rand(4, 1000))
    assert s.shape == x.shape == (4, 32)
    # batch norm after every conv / linear layer except the last linear of each head
    for enc in (model.crystal, model.xrd):
        layers = list(enc.head)
        assert isinstance(layers[-1], torch.nn.Linear)
        assert [type(m).__name__ for m in layers[:-1]].count("BatchNorm1d") == 2
    convs = [m for m in model.xrd.features if isinstance(m, torch.nn.Conv1d)]
    bns = [m for m in model.xrd.features if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(convs) == len(bns) == 3
    assert all(c.bn is not None for c in model.crystal.convs) and len(model.crystal.convs) == 3


def test_triplet_loss_zero_when_pairs_are_separated_by_the_margin():
    s = torch.eye(8) * 10.0  # items 10*sqrt(2) apart, each pair identical
    assert float(bidirectional_triplet(s, s.clone())) == 0.0


def test_triplet_loss_penalises_swapped_pairs_and_has_gradients():
    s = torch.eye(6, requires_grad=True)
    x = torch.eye(6)[[1, 0, 3, 2, 5, 4]]  # every pattern sits on another structure
    loss = one_way_triplet(s, x, margin=1.0)
    # d(pos) = sqrt(2), nearest violating negative at 0: loss = sqrt(2) + 1 for every anchor
    # when the negative drawn is the swapped partner; any other negative gives 1
    assert 1.0 <= loss.item() <= 2**0.5 + 1 + 1e-6
    loss.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_retrieval_topk_counts_own_candidate_rank():
    c = torch.arange(20, dtype=torch.float32)[:, None] * torch.ones(1, 3)
    q = c.clone()
    q[0] = c[5]  # query 0 now sits on candidate 5 (own candidate at distance 5*sqrt(3))
    acc = retrieval_topk(q, c, ks=(1, 10))
    assert acc[1] == 19 / 20 and acc[10] == 20 / 20
    acc = retrieval_topk(q, c, ks=(1, 5))
    assert acc[5] == 19 / 20
