"""The deblurring generators (DBGAN), and :func:`deblur_generator`, which builds either from its
config.

The deblurring generator of "Deblurring by Realistic Blurring" (Zhang et al., CVPR 2020) is, as
the authors released it, a residual-in-residual dense network (RRDB, as in ESRGAN but without
upsampling): 16 blocks of three dense blocks of five 3x3 convolutions, 64 features, growth 32,
about 11.6 M parameters; ``arch="resnet"`` keeps blurgen's earlier, lighter deblurrer (plain
residual blocks, 3.0 M parameters).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import DEBLUR_ARCHS
from .layers import ResidualNet, conv3x3


class DeblurGenerator(ResidualNet):
    """blurgen's lighter deblurring generator (``arch="resnet"``): blurred RGB -> sharp RGB.

    Three standalone 3x3 convolutions around sixteen residual blocks (five convolutions and
    four ReLUs each); the network predicts a residual added to its input, clamped to [0, 1].

    Shape:
        blurred (N, 3, H, W) in [0, 1]; output (N, 3, H, W) in [0, 1].
    """

    def __init__(self, channels: int = 64, blocks: int = 16) -> None:
        super().__init__(3, channels, blocks)
        self.config = {"arch": "resnet", **self.config}

    def forward(self, blurred: torch.Tensor) -> torch.Tensor:
        return (blurred + self.residual(blurred)).clamp(0, 1)


# ESRGAN's scaling of every dense and residual-in-residual branch before it is added.
BRANCH_SCALE = 0.2


class DenseBlock(nn.Module):
    """Five 3x3 convolutions, each fed the block's input and all earlier outputs stacked;
    LeakyReLU(0.2) after the first four (``growth`` channels each), the fifth back to
    ``channels``, scaled by 0.2 and added to the input."""

    def __init__(self, channels: int, growth: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            conv3x3(channels + i * growth, growth if i < 4 else channels) for i in range(5)
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs[:-1]:
            features.append(self.act(conv(torch.cat(features, 1))))
        return x + BRANCH_SCALE * self.convs[-1](torch.cat(features, 1))


class ResidualInResidual(nn.Module):
    """Three dense blocks in a row; their output, scaled by 0.2, added to the input."""

    def __init__(self, channels: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*(DenseBlock(channels, growth) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + BRANCH_SCALE * self.body(x)


class RRDBDeblurGenerator(nn.Module):
    """DBGAN's deblurring generator as released by its authors (``arch="rrdb"``).

    A 3x3 convolution to ``channels`` features; ``blocks`` residual-in-residual dense blocks
    and a 3x3 convolution, added to those features (the long feature skip); a 3x3 convolution
    with LeakyReLU(0.2) and one to 3 channels, added to the input image (the image skip) and
    clamped to [0, 1]. The last convolution starts at zero, so the untrained network is the
    identity; the dense blocks' weights start at a tenth of PyTorch's default, as ESRGAN's do,
    so that the 3 x ``blocks`` residual branches start small.

    Shape:
        blurred (N, 3, H, W) in [0, 1]; output (N, 3, H, W) in [0, 1].
    """

    def __init__(self, channels: int = 64, blocks: int = 16, growth: int = 32) -> None:
        super().__init__()
        self.head = conv3x3(3, channels)
        self.trunk = nn.Sequential(*(ResidualInResidual(channels, growth) for _ in range(blocks)))
        self.trunk_conv = conv3x3(channels, channels)
        self.tail = nn.Sequential(
            conv3x3(channels, channels), nn.LeakyReLU(0.2, inplace=True), conv3x3(channels, 3)
        )
        with torch.no_grad():
            for layer in self.trunk.modules():
                if isinstance(layer, nn.Conv2d):
                    layer.weight.mul_(0.1)
        nn.init.zeros_(self.tail[-1].weight)
        nn.init.zeros_(self.tail[-1].bias)
        self.config = {"arch": "rrdb", "channels": channels, "blocks": blocks, "growth": growth}

    @property
    def reach(self) -> int:
        """How many px away an input pixel still changes an output pixel: one per 3x3
        convolution on the longest path (the head, five per dense block, the trunk's and the
        tail's)."""
        return 1 + 15 * len(self.trunk) + 1 + 2

    def forward(self, blurred: torch.Tensor) -> torch.Tensor:
        features = self.head(blurred)
        features = features + self.trunk_conv(self.trunk(features))
        return (blurred + self.tail(features)).clamp(0, 1)


def deblur_generator(
    arch: str = "rrdb", channels: int = 64, blocks: int = 16, growth: int = 32
) -> nn.Module:
    """A deblurring generator: ``"rrdb"`` (the published DBGAN) or ``"resnet"`` (lighter;
    ``growth`` does not apply). Its ``config`` rebuilds it: ``deblur_generator(**config)``."""
    if arch == "rrdb":
        return RRDBDeblurGenerator(channels, blocks, growth)
    if arch == "resnet":
        return DeblurGenerator(channels, blocks)
    raise ValueError(f"arch must be one of {', '.join(DEBLUR_ARCHS)}, got {arch!r}")
