"""The two encoders that map a crystal structure and its XRD pattern into one embedding space.

``CrystalEncoder`` is a CGCNN (torch-geometric ``CGConv``) over the crystal graph; ``XRDEncoder``
is a strided 1D CNN over the profile, max-pooled early. Both end in three fully connected layers
to the embedding.
Batch normalisation follows every convolution and every linear layer except the last: without it
the published training was unstable. The last layer stays linear so the triplet loss can place
embeddings anywhere (no normalisation, as in the published set-up).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch_geometric.nn import CGConv, global_mean_pool

from xtal_cli.configs import JSONConfig

MODEL_FORMAT = 2  # bump when saved state dicts stop loading into these classes


@dataclass
class EmbedConfig(JSONConfig):
    """Everything needed to rebuild the model and to feed it the same inputs it was trained on."""

    dim: int = 1024
    atom_hidden: int = 64
    n_conv: int = 3
    n_gaussians: int = 41
    cutoff: float = 8.0
    max_neighbors: int = 12
    n_elements: int = 104
    n_element_features: int = 91
    feature_version: int = 1
    xrd_channels: int = 64
    xrd_pool: int = 4
    grid_min: float = 10.0
    grid_max: float = 110.0
    grid_points: int = 5000
    wavelength: float = 1.54184

    # keys that must match between a checkpoint and a resumed run / a loaded state dict
    ARCH_KEYS = (
        "dim",
        "atom_hidden",
        "n_conv",
        "n_gaussians",
        "cutoff",
        "max_neighbors",
        "feature_version",
        "xrd_channels",
        "xrd_pool",
        "grid_points",
    )


def head(in_dim: int, dim: int) -> nn.Sequential:
    """Three linear layers to the embedding, batch-norm + ReLU after the first two only."""
    return nn.Sequential(
        nn.Linear(in_dim, dim),
        nn.BatchNorm1d(dim),
        nn.ReLU(),
        nn.Linear(dim, dim),
        nn.BatchNorm1d(dim),
        nn.ReLU(),
        nn.Linear(dim, dim),
    )


class GaussianDistance(nn.Module):
    """Expand interatomic distances on Gaussians centred on a 0..cutoff grid (CGCNN)."""

    def __init__(self, cutoff: float, n: int):
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, cutoff, n))
        self.gamma = 1.0 / float(cutoff / (n - 1)) ** 2

    def forward(self, distance: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.gamma * (distance[:, None] - self.centers[None, :]) ** 2)


def neighbour_layout(edge_index: torch.Tensor, distance: torch.Tensor, n_nodes: int):
    """Edges (neighbour -> centre) as an (atoms, k) table: neighbour index, distance, mask.

    Crystal graphs give every atom up to ``max_neighbors`` edges, almost always exactly that many,
    so messages can be summed per atom with a reshape instead of a scatter. The mask is ``None``
    when every atom has the same number of edges (then no padding is made).
    """
    src, dst = edge_index[0], edge_index[1]
    n_edges = dst.numel()
    if n_edges > 1 and not bool((dst[1:] >= dst[:-1]).all()):
        order = torch.argsort(dst, stable=True)
        src, dst, distance = src[order], dst[order], distance[order]
    counts = torch.bincount(dst, minlength=n_nodes)
    k = int(counts.max()) if n_edges else 1
    if n_edges == n_nodes * k:
        return src.view(n_nodes, k), distance.view(n_nodes, k), None
    rank = torch.arange(n_edges, device=dst.device) - (torch.cumsum(counts, 0) - counts)[dst]
    slot = dst * k + rank
    nbr = torch.zeros(n_nodes * k, dtype=src.dtype, device=src.device)
    nbr[slot] = src
    dist = torch.zeros(n_nodes * k, dtype=distance.dtype, device=distance.device)
    dist[slot] = distance
    mask = torch.zeros(n_nodes * k, dtype=torch.bool, device=dst.device)
    mask[slot] = True
    return nbr.view(n_nodes, k), dist.view(n_nodes, k), mask.view(n_nodes, k)


class FastCGConv(CGConv):
    """torch-geometric's ``CGConv`` (same parameters, same output) computed in fewer operations.

    ``CGConv`` applies ``lin_f`` and ``lin_s`` to ``[x_i, x_j, e_ij]`` on every edge and
    scatter-adds the messages. A linear map of a concatenation is the sum of the maps of its parts,
    so the node parts are projected once per atom (both gates in one product) and gathered onto
    the edges; only the Gaussian part is multiplied per edge. Edges come as an (atoms, k) table
    (:func:`neighbour_layout`), so the sum over neighbours is a reduction, not a scatter. Results
    equal ``CGConv.forward`` (tested) and state dicts are interchangeable; on 2 CPU cores the
    structure encoder's step is several times faster (docs/train-embed.md).
    """

    def forward(self, x, edge_index, edge_attr=None, layout=None):  # noqa: D417
        """*layout*: ``(nbr, edge_attr (atoms, k, D), mask)``; else built from *edge_index*."""
        if layout is None:
            nbr, dist_idx, mask = neighbour_layout(
                edge_index, torch.arange(edge_index.shape[1], device=x.device), x.shape[0]
            )
            e = None if edge_attr is None else edge_attr[dist_idx]
        else:
            nbr, e, mask = layout
        c = x.shape[1]
        n, k = nbr.shape
        w = torch.cat([self.lin_f.weight, self.lin_s.weight])  # (2C, 2C + D)
        b = torch.cat([self.lin_f.bias, self.lin_s.bias])
        node_i = torch.addmm(b, x, w[:, :c].t())  # centre part, bias folded in
        node_j = x @ w[:, c : 2 * c].t()  # neighbour part
        gates = node_j.index_select(0, nbr.reshape(-1)).view(n, k, 2 * c) + node_i[:, None, :]
        if e is not None:
            gates = gates + e @ w[:, 2 * c :].t()
        f, s = gates.split(c, dim=2)
        msg = torch.sigmoid(f) * nn.functional.softplus(s)
        if mask is not None:
            msg = msg * mask[:, :, None]
        out = msg.sum(dim=1)
        out = out if self.bn is None else self.bn(out)
        return out + x


class CrystalEncoder(nn.Module):
    """CGCNN: element features -> 3 gated graph convolutions -> mean pooling -> 3 FC layers."""

    def __init__(self, cfg: EmbedConfig, element_table: torch.Tensor):
        super().__init__()
        self.register_buffer("element_table", element_table.float())
        self.expand = GaussianDistance(cfg.cutoff, cfg.n_gaussians)
        self.atom_in = nn.Linear(element_table.shape[1], cfg.atom_hidden)
        self.atom_bn = nn.BatchNorm1d(cfg.atom_hidden)
        # CGConv(batch_norm=True) normalises the summed messages before the residual (CGCNN).
        self.convs = nn.ModuleList(
            FastCGConv(cfg.atom_hidden, dim=cfg.n_gaussians, aggr="add", batch_norm=True)
            for _ in range(cfg.n_conv)
        )
        self.head = head(cfg.atom_hidden, cfg.dim)

    def forward(
        self, z: torch.Tensor, edge_index: torch.Tensor, distance: torch.Tensor, batch: torch.Tensor
    ) -> torch.Tensor:
        h = torch.relu(self.atom_bn(self.atom_in(self.element_table[z])))
        nbr, dist, mask = neighbour_layout(edge_index, distance, h.shape[0])
        layout = (nbr, self.expand(dist.reshape(-1)).view(*nbr.shape, -1), mask)
        for conv in self.convs:
            h = nn.functional.softplus(conv(h, edge_index, layout=layout))
        pooled = global_mean_pool(h, batch, size=int(batch.max()) + 1 if batch.numel() else 0)
        return self.head(pooled)


class XRDEncoder(nn.Module):
    """1D CNN over a profile scaled to max 1, max-pooled early, then 3 FC layers.

    The 0.02° grid oversamples peaks of ~0.1° width, so the profile is first max-pooled by
    ``xrd_pool`` (default 4: 5000 -> 1250 points, 0.08°; max keeps every peak's height). Three
    strided convolutions with batch norm follow, then an adaptive average pool to a fixed length so
    any grid size gives the same head. Measured on 2 CPU cores (docs/train-embed.md): the earlier
    layout (80 channels, kernel 50 on the raw 5000 points) spent ~70 % of a training step in the
    first convolution's backward pass.
    """

    POOLED = 16

    def __init__(self, cfg: EmbedConfig):
        super().__init__()
        c = cfg.xrd_channels
        c1 = max(c // 2, 1)
        self.pool = int(cfg.xrd_pool)
        self.features = nn.Sequential(
            nn.Conv1d(1, c1, kernel_size=9, stride=2, padding=4),
            nn.BatchNorm1d(c1),
            nn.ReLU(),
            nn.Conv1d(c1, c, kernel_size=7, stride=2, padding=3),
            nn.BatchNorm1d(c),
            nn.ReLU(),
            nn.MaxPool1d(kernel_size=2, stride=2),
            nn.Conv1d(c, c, kernel_size=5, stride=2, padding=2),
            nn.BatchNorm1d(c),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(self.POOLED),
        )
        self.head = head(c * self.POOLED, cfg.dim)

    def forward(self, profiles: torch.Tensor) -> torch.Tensor:
        x = profiles[:, None, :]
        x = x / x.amax(dim=2, keepdim=True).clamp_min(1e-12)
        if self.pool > 1:
            x = nn.functional.max_pool1d(x, self.pool, self.pool, ceil_mode=True)
        return self.head(self.features(x).flatten(1))


class DualEncoder(nn.Module):
    """Both encoders; ``forward`` returns (structure embeddings, XRD embeddings) of a batch."""

    def __init__(self, cfg: EmbedConfig, element_table: torch.Tensor | None = None):
        super().__init__()
        if element_table is None:
            from xtal_cli.embed.graphs import element_features

            element_table = torch.from_numpy(element_features())
        self.cfg = cfg
        self.crystal = CrystalEncoder(cfg, element_table)
        self.xrd = XRDEncoder(cfg)

    def forward(self, graph: dict[str, torch.Tensor], profiles: torch.Tensor):
        s = self.crystal(graph["z"], graph["edge_index"], graph["distance"], graph["batch"])
        return s, self.xrd(profiles)
