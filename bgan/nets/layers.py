"""What several families of networks share: the 3x3 convolution, the residual blocks and net
that the ResNet blur generator and the lighter deblurring generator are built on, and the
paper's initialisation (:func:`gaussian_init`), which training applies to any network.
"""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """A 3x3 convolution that keeps the size (at stride 1)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


class ResidualBlock(nn.Module):
    """Five 3x3 convolutions with a ReLU between each pair (four), plus the input."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(5):
            layers.append(conv3x3(channels, channels))
            if i < 4:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualNet(nn.Module):
    """What both generators share: a 3x3 conv + ReLU, residual blocks, then conv, ReLU, conv
    to 3 channels. The last conv starts at zero, so a generator that adds this net's output to
    its input image starts as the identity rather than from a random image."""

    def __init__(self, in_channels: int, channels: int, blocks: int, out_channels: int = 3) -> None:
        super().__init__()
        self.head = nn.Sequential(conv3x3(in_channels, channels), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.tail = nn.Sequential(
            conv3x3(channels, channels), nn.ReLU(inplace=True), conv3x3(channels, out_channels)
        )
        nn.init.zeros_(self.tail[-1].weight)
        nn.init.zeros_(self.tail[-1].bias)
        self.config = {"channels": channels, "blocks": blocks}

    scale = 1

    @property
    def reach(self) -> int:
        """How many px away an input pixel still changes an output pixel: one per 3x3
        convolution on the way (the head, five per block, two in the tail), times the scale
        the convolutions work at (plus the rest of a ``scale`` x ``scale`` cell)."""
        return (1 + 5 * len(self.blocks) + 2) * self.scale + self.scale - 1

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) residual of an (N, in_channels, H, W) input."""
        return self.tail(self.blocks(self.head(x)))


def gaussian_init(module: nn.Module, std: float = 0.01) -> nn.Module:
    """Initialise every conv and linear layer with N(0, std) weights and zero biases (the
    paper's initialisation); returns the module."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module
