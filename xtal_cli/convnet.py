"""The convolution stack the 1D profile networks share (detector, profile symmetry CNN)."""

from __future__ import annotations

from torch import nn


def conv_blocks(c_in: int, channels, kernels, length: int, *, bias: bool = True):
    """Blocks of convolution (same padding), batch norm, ReLU and max pool by 2 along the
    profile: ``(nn.Sequential, output channels, output length)`` for an input of *length*."""
    layers: list[nn.Module] = []
    for c, k in zip(channels, kernels):
        layers += [
            nn.Conv1d(c_in, c, kernel_size=k, padding=k // 2, bias=bias),
            nn.BatchNorm1d(c),
            nn.ReLU(),
            nn.MaxPool1d(2),
        ]
        c_in, length = c, length // 2
    return nn.Sequential(*layers), c_in, length
