"""Networks of "Deblurring by Realistic Blurring" (Zhang et al., CVPR 2020).

The blur generator (BGAN) takes a sharp image and noise, so one sharp image blurs in many
ways. In the paper the noise is a 4-vector ``z ~ N(0, 1)`` repeated over every pixel
(``noise="vector"``), which after the first convolution is little more than a per-image bias.
By default (``noise="map"``) it is per-pixel: 4 maps of N(0, 1) beside the image, and one more
map per residual block, added to the block's input with a learned weight per channel (zero at
first), as style-based generators inject noise; so the blur can vary across the image. It has
three standalone 3x3 convolutions around nine residual blocks of five 3x3 convolutions and four
ReLUs each, 64 channels. The discriminator is VGG-style: strided conv + LeakyReLU stages and a
dense head.

The deblurring generator (DBGAN) is, as the authors released it, a residual-in-residual dense
network (RRDB, as in ESRGAN but without upsampling): 16 blocks of three dense blocks of five
3x3 convolutions, 64 features, growth 32, about 11.6 M parameters; ``arch="resnet"`` keeps
blurgen's earlier, lighter deblurrer (plain residual blocks, 3.0 M parameters).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import DEBLUR_ARCHS, NOISE_KINDS

NOISE_CHANNELS = 4


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


class BlurGenerator(ResidualNet):
    """BGAN: sharp RGB + noise -> blurred RGB, predicted as a residual on the sharp image.

    Learning blur as a change to the sharp image (output = sharp + residual, clamped) keeps
    colours and content from the first step, so the adversarial loss only has to learn the
    blur; with a sigmoid output the network first has to relearn the whole image.

    Args:
        channels: feature channels (64 in the paper).
        blocks: residual blocks (9 in the paper).
        noise: ``"map"`` (per-pixel maps, injected at every block) or ``"vector"`` (the
            paper's 4-vector repeated over the image).
        scale: the convolutions work on ``scale`` x ``scale`` cells of pixels stacked as
            channels (pixel unshuffle; the residual is shuffled back to full resolution), so
            the network reaches ``scale`` times as far for a ``scale**2``-th of the work per
            channel, and still sees and sets every pixel. Blur paths are tens of pixels
            long; 3x3 convolutions at full resolution reach one pixel each. 1: the paper's.

    Shape:
        sharp (N, 3, H, W) in [0, 1]; noise (N, *noise_shape(H, W)); output (N, 3, H, W) in
        [0, 1].
    """

    def __init__(
        self, channels: int = 64, blocks: int = 9, noise: str = "map", scale: int = 1
    ) -> None:
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a whole number >= 1, got {scale!r}")
        cell = scale * scale
        super().__init__((3 + NOISE_CHANNELS) * cell, channels, blocks, 3 * cell)
        if noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {', '.join(NOISE_KINDS)}, got {noise!r}")
        self.noise, self.scale = noise, int(scale)
        self.config.update(noise=noise, scale=self.scale)
        if noise == "map":
            # One weight per channel for each of a cell's noise values (at scale 1, per channel).
            shape = (blocks, channels) if scale == 1 else (blocks, channels, cell)
            self.inject = nn.Parameter(torch.zeros(shape))

    def noise_shape(self, height: int, width: int) -> tuple[int, ...]:
        """The shape of one image's noise: (4,) for a vector, (4 + blocks, H, W) for maps."""
        if self.noise == "vector":
            return (NOISE_CHANNELS,)
        return (NOISE_CHANNELS + len(self.blocks), height, width)

    def forward(self, sharp: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        n, _, height, width = sharp.shape
        expected = (n, *self.noise_shape(height, width))
        if tuple(z.shape) != expected:
            raise ValueError(f"z must be {expected} ({self.noise} noise), got {tuple(z.shape)}")
        z = z.to(sharp.dtype)
        if self.noise == "vector":
            z = z[:, :, None, None].expand(n, NOISE_CHANNELS, height, width)
        s = self.scale
        # Sizes not a multiple of the scale are padded by repeating the last row and column
        # (the padding is cropped off again).
        pad = (0, -width % s, 0, -height % s)
        if any(pad):
            sharp_padded, z = F.pad(sharp, pad, mode="replicate"), F.pad(z, pad, mode="replicate")
        else:
            sharp_padded = sharp
        x = self.head(F.pixel_unshuffle(torch.cat([sharp_padded, z[:, :NOISE_CHANNELS]], 1), s))
        for b, block in enumerate(self.blocks):
            if self.noise == "map":
                extra = F.pixel_unshuffle(z[:, NOISE_CHANNELS + b : NOISE_CHANNELS + b + 1], s)
                weight = self.inject[b].to(x.dtype)
                if weight.ndim == 1:
                    x = x + weight[None, :, None, None] * extra
                else:
                    x = x + torch.einsum("ck,nkhw->nchw", weight, extra)
            x = block(x)
        residual = F.pixel_shuffle(self.tail(x), s)[:, :, :height, :width]
        return (sharp + residual).clamp(0, 1)


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


class Discriminator(nn.Module):
    """VGG-style discriminator: a real-vs-generated score per image.

    Stages of conv 3x3 + LeakyReLU(0.2), the second of each pair strided, doubling channels
    from ``channels`` up to 8x; then average pooling to 4x4 and a dense head. Designed for
    128 px patches (any size of at least 32 px works).

    Shape:
        x (N, 3, H, W) in [0, 1]; output (N,) logits.
    """

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv3x3(3, channels), nn.LeakyReLU(0.2, inplace=True)]
        width = channels
        for stage in range(4):
            out = channels * min(2 ** (stage + 1), 8)
            layers += [conv3x3(width, width, stride=2), nn.LeakyReLU(0.2, inplace=True),
                       conv3x3(width, out), nn.LeakyReLU(0.2, inplace=True)]  # fmt: skip
            width = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(width * 16, 100), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(100, 1),
        )  # fmt: skip
        self.config = {"channels": channels}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Centred, roughly unit-scale input: on raw [0, 1] pixels it took this network several
        # times as many steps to start telling blurred from sharp patches (measured).
        return self.head(self.pool(self.features((x - 0.5) / 0.25)))[:, 0]


def gaussian_init(module: nn.Module, std: float = 0.01) -> nn.Module:
    """Initialise every conv and linear layer with N(0, std) weights and zero biases (the
    paper's initialisation); returns the module."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module
