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


def test_fast_cgconv_equals_torch_geometric_cgconv_with_and_without_padding():
    from torch_geometric.nn import CGConv

    from xtal_cli.embed.models import FastCGConv

    torch.manual_seed(0)
    ref = CGConv(16, dim=5, aggr="add", batch_norm=True)
    fast = FastCGConv(16, dim=5, aggr="add", batch_norm=True)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(30, 16, requires_grad=True)
    full = torch.stack([torch.randint(0, 30, (360,)), torch.arange(30).repeat_interleave(12)])
    ragged = torch.randint(0, 30, (2, 200))  # unsorted centres, uneven neighbour counts
    ragged[1, :30] = torch.arange(30)  # every atom has at least one edge
    for edge_index in (full, ragged):
        e = torch.rand(edge_index.shape[1], 5)
        a, b = ref(x, edge_index, e), fast(x, edge_index, e)
        assert torch.allclose(a, b, atol=1e-5)
        ga = torch.autograd.grad(a.square().sum(), x)[0]
        gb = torch.autograd.grad(b.square().sum(), x)[0]
        assert torch.allclose(ga, gb, atol=1e-4)


def test_hardest_negative_is_the_nearest_violator():
    anchors = torch.zeros(3, 1)
    others = torch.tensor([[0.5], [0.2], [0.9]])  # d(pos) = 0.5 for anchor 0
    # anchor 0: negatives at 0.2 and 0.9 both violate (< 0.5 + 1); the hardest is 0.2
    loss = one_way_triplet(anchors[:1].expand(3, 1), others, margin=1.0, negatives="hardest")
    per_anchor = [(0.5 - 0.2 + 1), (0.2 - 0.5 + 1), (0.9 - 0.2 + 1)]
    assert abs(loss.item() - np.mean(per_anchor)) < 1e-6
    try:
        one_way_triplet(anchors, others, negatives="all")
    except ValueError as exc:
        assert "hardest" in str(exc)
    else:
        raise AssertionError("unknown negatives accepted")
