"""The two encoders that map a crystal structure and its XRD pattern into one embedding space.

``CrystalEncoder`` is a CGCNN (torch-geometric ``CGConv``) over the crystal graph; ``XRDEncoder``
is a strided 1D CNN over the profile. Both end in three fully connected layers to the embedding.
Batch normalisation follows every convolution and every linear layer except the last: without it
the published training was unstable. The last layer stays linear so the triplet loss can place
embeddings anywhere (no normalisation, as in the published set-up).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch_geometric.nn import CGConv, global_mean_pool

MODEL_FORMAT = 1  # bump when saved state dicts stop loading into these classes


@dataclass
class EmbedConfig:
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
    xrd_channels: int = 80
    grid_min: float = 10.0
    grid_max: float = 110.0
    grid_points: int = 5000
    wavelength: float = 1.54184

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EmbedConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

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
            CGConv(cfg.atom_hidden, dim=cfg.n_gaussians, aggr="add", batch_norm=True)
            for _ in range(cfg.n_conv)
        )
        self.head = head(cfg.atom_hidden, cfg.dim)

    def forward(
        self, z: torch.Tensor, edge_index: torch.Tensor, distance: torch.Tensor, batch: torch.Tensor
    ) -> torch.Tensor:
        h = torch.relu(self.atom_bn(self.atom_in(self.element_table[z])))
        edge_attr = self.expand(distance)
        for conv in self.convs:
            h = nn.functional.softplus(conv(h, edge_index, edge_attr))
        pooled = global_mean_pool(h, batch, size=int(batch.max()) + 1 if batch.numel() else 0)
        return self.head(pooled)


class XRDEncoder(nn.Module):
    """Strided 1D CNN over a profile scaled to max 1, then 3 FC layers.

    Large strided kernels first (peaks are sparse, 0.02° steps oversample them), then an adaptive
    average pool to a fixed length so any grid size gives the same head.
    """

    POOLED = 11

    def __init__(self, cfg: EmbedConfig):
        super().__init__()
        c = cfg.xrd_channels
        self.features = nn.Sequential(
            nn.Conv1d(1, c, kernel_size=50, stride=5, padding=25),
            nn.BatchNorm1d(c),
            nn.ReLU(),
            nn.Conv1d(c, c, kernel_size=10, stride=5, padding=5),
            nn.BatchNorm1d(c),
            nn.ReLU(),
            nn.AvgPool1d(kernel_size=4, stride=2),
            nn.Conv1d(c, c, kernel_size=3, stride=3),
            nn.BatchNorm1d(c),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(self.POOLED),
        )
        self.head = head(c * self.POOLED, cfg.dim)

    def forward(self, profiles: torch.Tensor) -> torch.Tensor:
        x = profiles[:, None, :]
        x = x / x.amax(dim=2, keepdim=True).clamp_min(1e-12)
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
