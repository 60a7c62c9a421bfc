"""The discriminators both GANs train against, and :func:`discriminator`, which builds one by
kind: the paper's VGG-style network (strided conv + LeakyReLU stages and a dense head, one logit
per image), a PatchGAN (a logit per overlapping patch, on pixels or on neighbour differences)
and PatchGANs at several scales.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..config import DISC_INPUTS, DISCRIMINATORS
from .layers import conv3x3


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


# Neighbour differences of a blurred photo are a few hundredths; this brings them near the unit
# scale the pixel input is normalised to.
GRADIENT_GAIN = 10.0


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (as in pix2pix and DeblurGAN): a real-vs-generated score per
    overlapping patch, so it judges local texture (blur) rather than content.

    ``layers`` 4x4 convolutions of stride 2 (channels doubling from ``channels``, at most 8x),
    one of stride 1, each followed by LeakyReLU(0.2), and a 4x4 convolution to one logit per
    position; each logit sees a square of 16, 34, 70... px for 1, 2, 3... layers. No
    normalisation, so a sample's logits do not depend on the rest of its batch.

    With ``inputs="gradients"`` the network sees, instead of the pixels, each channel's
    differences to its right and lower neighbours (6 maps, one px narrower and shorter, so a
    logit sees one px more of the image): the length and direction of a blur, which the
    pixels' content drowns, and nothing of brightness.

    Shape:
        x (N, 3, H, W) in [0, 1], H and W at least the patch seen; output (N, h, w) logits.
    """

    def __init__(self, channels: int = 64, layers: int = 3, inputs: str = "pixels") -> None:
        super().__init__()
        if inputs not in DISC_INPUTS:
            raise ValueError(f"inputs must be one of {', '.join(DISC_INPUTS)}, got {inputs!r}")
        self.inputs = inputs
        stack: list[nn.Module] = []
        width = 3 if inputs == "pixels" else 6
        for layer in range(layers + 1):
            out = channels * min(2**layer, 8)
            stride = 2 if layer < layers else 1
            stack += [nn.Conv2d(width, out, 4, stride, 1), nn.LeakyReLU(0.2, inplace=True)]
            width = out
        stack.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.features = nn.Sequential(*stack)
        self.config = {"kind": "patch", "channels": channels, "layers": layers, "inputs": inputs}

    @property
    def patch(self) -> int:
        """The side of the square of input each logit sees, px."""
        size = 1
        for layer in reversed(self.features):
            if isinstance(layer, nn.Conv2d):
                size = (size - 1) * layer.stride[0] + layer.kernel_size[0]
        return size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inputs == "pixels":
            return self.features((x - 0.5) / 0.25)[:, 0]
        right = x[..., :-1, 1:] - x[..., :-1, :-1]
        below = x[..., 1:, :-1] - x[..., :-1, :-1]
        return self.features(torch.cat([right, below], 1) * GRADIENT_GAIN)[:, 0]


class MultiScaleDiscriminator(nn.Module):
    """PatchGAN discriminators at ``scales`` scales (as in pix2pixHD): one on the input, one on
    it 2x2 average-pooled, one on it pooled 4x4... each with weights of its own. A pooled
    image's fine scale is the input's coarser one, so with the same small patch the coarser
    networks judge blur longer than a patch is wide (a 20 px streak is 5 px at 1/4).

    Shape:
        x (N, 3, H, W) in [0, 1], H and W at least ``2 ** (scales - 1)`` times the patch seen;
        output (N, L): every scale's logits, flattened and joined (:meth:`split` parts them).
    """

    def __init__(
        self, channels: int = 64, layers: int = 3, scales: int = 2, inputs: str = "pixels"
    ) -> None:
        super().__init__()
        self.nets = nn.ModuleList(
            PatchDiscriminator(channels, layers, inputs) for _ in range(scales)
        )
        self.config = {**self.nets[0].config, "scales": scales}
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = []
        for scale, net in enumerate(self.nets):
            pooled = F.avg_pool2d(x, 2**scale) if scale else x
            logits.append(net(pooled).flatten(1))
        self.sizes = [part.shape[1] for part in logits]
        return torch.cat(logits, 1)

    def split(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Logits (M, L) of images of the last call's size, parted by scale: a loss is taken
        per scale, or the finest scale's many logits would outweigh the coarse ones."""
        return logits.split(self.sizes, dim=1)


def discriminator(
    kind: str = "vgg", channels: int = 64, layers: int = 3, scales: int = 1, inputs: str = "pixels"
) -> nn.Module:
    """The discriminator ``kind``: ``"vgg"`` (:class:`Discriminator`, one logit per image;
    ``layers``, ``scales`` and ``inputs`` do not apply) or ``"patch"``
    (:class:`PatchDiscriminator`, or :class:`MultiScaleDiscriminator` for more than one
    scale)."""
    if kind == "vgg":
        return Discriminator(channels)
    if kind == "patch":
        if scales > 1:
            return MultiScaleDiscriminator(channels, layers, scales, inputs)
        return PatchDiscriminator(channels, layers, inputs)
    raise ValueError(f"discriminator must be one of {', '.join(DISCRIMINATORS)}, got {kind!r}")
