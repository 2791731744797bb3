"""The profile network: a 1D CNN from a profile on a fixed Q grid to crystal system and space group.

Input is two channels on :class:`~xtal_cli.symmetry.qgrid.QGrid`: the intensity inside the
measured window (minimum 0, maximum 1, square-rooted: counting statistics make √I roughly
equal-variance and weak reflections count) and the window mask (1 where measured). It is
max-pooled by 2 (line heights kept), then convolution blocks (batch norm, ReLU, max pool by 2,
a small tolerance to peak shifts) keep the Q axis, since the positions of lines and their ratios
are what symmetry is read from; one hidden layer sees the whole pattern and feeds two heads.
About 0.6 M weights and 7 M multiply-adds per pattern: trains on two CPU cores in tens of
minutes, predicts thousands of patterns a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xtal_cli.configs import JSONConfig
from xtal_cli.convnet import conv_blocks

MODEL_FORMAT = 1  # bump when saved state dicts stop loading into SymmetryNet


@dataclass
class CNNConfig(JSONConfig):
    """Everything needed to rebuild the network."""

    n_points: int = 2048
    n_systems: int = 7
    n_space_groups: int = 230
    input_pool: int = 2
    channels: tuple[int, ...] = (16, 32, 48, 64, 96, 128)
    kernels: tuple[int, ...] = (7, 5, 5, 3, 3, 3)
    hidden: int = 256
    dropout: float = 0.3


def prepare(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, P) intensities and (B, P) 0/1 window masks → (B, 2, P) network input.

    The intensity is rescaled within the window only (min 0, max 1, square root), so where a
    scan starts or stops does not change the height of the lines it has.
    """
    big = torch.finfo(values.dtype).max
    inside = mask > 0
    lo = torch.where(inside, values, big).amin(dim=1, keepdim=True)
    x = torch.where(inside, values - lo, 0.0)
    x = x / x.amax(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.stack([torch.sqrt(x.clamp_min(0.0)), mask.to(values.dtype)], dim=1)


class SymmetryNet(nn.Module):
    """(B, P) profile and mask → (crystal-system logits (B, 7), space-group logits (B, S))."""

    def __init__(self, cfg: CNNConfig):
        super().__init__()
        self.input_pool = int(cfg.input_pool)
        length = -(-int(cfg.n_points) // self.input_pool)
        self.features, c_in, length = conv_blocks(2, cfg.channels, cfg.kernels, length, bias=False)
        self.trunk = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(cfg.dropout),
            nn.Linear(c_in * length, cfg.hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
        )
        self.system_head = nn.Linear(cfg.hidden, cfg.n_systems)
        self.space_group_head = nn.Linear(cfg.hidden, cfg.n_space_groups)

    def forward(self, values: torch.Tensor, mask: torch.Tensor):
        x = prepare(values, mask)
        if self.input_pool > 1:
            x = nn.functional.max_pool1d(x, self.input_pool, self.input_pool, ceil_mode=True)
        h = self.trunk(self.features(x))
        return self.system_head(h), self.space_group_head(h)
