"""The detector network: a small 1D CNN from a profile on a fixed 2θ grid to one logit.

Input is the profile scaled to a maximum of 1, shifted so its lowest point is 0 and square-rooted
(counting statistics make √I roughly equal-variance, and the weak lines of a minor phase count
as much as the strong ones of the majors). It is max-pooled by 2 (0.08°, line heights kept), then
five convolution blocks (batch norm, ReLU, max pool by 2: a small tolerance to peak shifts) keep
the 2θ axis, which a phase's line positions need; one hidden layer then sees the whole pattern.
Small enough to train in minutes on one CPU core (about 71,000 weights for 1,751 points; one
step of 64 patterns takes ~0.07 s on one thread — more threads on a busy machine are slower).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xtal_cli.configs import JSONConfig
from xtal_cli.convnet import conv_blocks

MODEL_FORMAT = 1  # bump when saved state dicts stop loading into DetectorNet


@dataclass
class DetectorConfig(JSONConfig):
    """Everything needed to rebuild the network."""

    n_points: int = 1751
    input_pool: int = 2  # max-pooled first: 0.04° → 0.08°, line heights kept
    channels: tuple[int, ...] = (16, 24, 32, 32, 32)
    kernels: tuple[int, ...] = (7, 7, 5, 5, 3)
    hidden: int = 64
    dropout: float = 0.2


def prepare(profiles: torch.Tensor) -> torch.Tensor:
    """(B, P) raw intensities → (B, 1, P) network input: min 0, max 1, square root."""
    x = profiles - profiles.amin(dim=1, keepdim=True)
    x = x / x.amax(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.sqrt(x.clamp_min(0.0))[:, None, :]


class DetectorNet(nn.Module):
    """Profile (B, P) → logit (B,) that the target phase is present."""

    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        self.input_pool = int(cfg.input_pool)
        length = -(-int(cfg.n_points) // self.input_pool)
        self.features, c_in, length = conv_blocks(1, cfg.channels, cfg.kernels, length)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(cfg.dropout),
            nn.Linear(c_in * length, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, 1),
        )

    def forward(self, profiles: torch.Tensor) -> torch.Tensor:
        x = prepare(profiles)
        if self.input_pool > 1:
            x = nn.functional.max_pool1d(x, self.input_pool, self.input_pool, ceil_mode=True)
        return self.head(self.features(x))[:, 0]
