"""Bidirectional triplet loss with in-batch negatives, and cross-modal retrieval accuracy.

For each pair i (structure s_i, pattern x_i) the other items of the batch are candidate
negatives. One negative is taken among those that still violate the margin
(d(s_i, x_j) < d(s_i, x_i) + margin; "non-easy" negatives): easy negatives give no gradient and
would only dilute the mean. ``negatives="random"`` (default, as published) draws one at random
among the violators; ``"hardest"`` takes the nearest violating negative, which learned ~6x slower
in the first minutes of the subset experiments in docs/train-embed.md. The loss is the mean of
both directions (structure anchors against pattern negatives and pattern anchors against
structure negatives).
"""

from __future__ import annotations

import torch

NEGATIVES = ("random", "hardest")


def one_way_triplet(
    anchors: torch.Tensor,
    others: torch.Tensor,
    margin: float = 1.0,
    generator=None,
    negatives: str = "random",
) -> torch.Tensor:
    """max(0, d(a_i, o_i) - d(a_i, o_j) + margin) with j among margin violators."""
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives={negatives!r}: use one of {', '.join(NEGATIVES)}")
    dist = torch.cdist(anchors.float(), others.float())
    n = dist.shape[0]
    pos = dist.diagonal()
    with torch.no_grad():
        violate = dist < pos[:, None] + margin
        violate.fill_diagonal_(False)
        if negatives == "hardest":  # the nearest negative; it violates if any does
            choice = torch.argmin(dist.masked_fill(~violate, float("inf")), dim=1)
        else:
            noise = torch.rand(dist.shape, device=dist.device, generator=generator)
            choice = torch.argmax(noise * violate, dim=1)
        valid = violate.any(dim=1)
    if n < 2 or not bool(valid.any()):
        return dist.sum() * 0.0  # keeps the graph; nothing to learn from this batch
    neg = dist[torch.arange(n, device=dist.device), choice]
    return (pos - neg + margin).clamp_min(0)[valid].mean()


# duplicates: the same signature as one_way_triplet, which it calls both ways (deliberate)
def bidirectional_triplet(
    s: torch.Tensor,
    x: torch.Tensor,
    margin: float = 1.0,
    generator=None,
    negatives: str = "random",
) -> torch.Tensor:
    """Mean of the structure->pattern and pattern->structure triplet losses."""
    return 0.5 * (
        one_way_triplet(s, x, margin, generator, negatives)
        + one_way_triplet(x, s, margin, generator, negatives)
    )


@torch.no_grad()
def retrieval_topk(
    queries: torch.Tensor, candidates: torch.Tensor, ks=(1, 10), chunk: int = 1024
) -> dict[int, float]:
    """Fraction of queries whose own candidate (same row) is among the k nearest candidates."""
    n = queries.shape[0]
    hits = {k: 0 for k in ks}
    for start in range(0, n, chunk):
        q = queries[start : start + chunk].float()
        d = torch.cdist(q, candidates.float())
        own = d[torch.arange(len(q)), torch.arange(start, start + len(q))]
        rank = (d < own[:, None]).sum(dim=1)  # 0 = own candidate is the nearest
        for k in ks:
            hits[k] += int((rank < k).sum())
    return {k: hits[k] / max(n, 1) for k in ks}
