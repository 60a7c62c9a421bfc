"""VGG-19 features for perceptual losses, without torchvision.

The layer stack and its parameter names (``features.<index>.weight``) match torchvision's
``vgg19``, so its ImageNet weights load directly: from a file (a whole ``vgg19`` state dict, or
just its ``features.*`` entries) or through torch.hub's download and cache. Inputs are images
in [0, 1]; the ImageNet normalisation happens inside.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .files import read_torch_file

# torchvision's ImageNet VGG-19 weights (the file torch.hub caches).
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
_CONFIG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
           512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]  # fmt: skip
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _layer_indices() -> dict[str, int]:
    """``conv3_3`` and ``relu3_3`` style names -> index in the feature stack."""
    names, index, block, conv = {}, 0, 1, 1
    for item in _CONFIG:
        if item == "M":
            index, block, conv = index + 1, block + 1, 1
            continue
        names[f"conv{block}_{conv}"] = index
        names[f"relu{block}_{conv}"] = index + 1
        index, conv = index + 2, conv + 1
    return names


LAYERS = _layer_indices()


class VGG19Features(nn.Module):
    """VGG-19's convolutional stack up to and including ``layer``, frozen, in eval mode.

    Args:
        layer: e.g. ``"conv3_3"`` (DeblurGAN-v2's choice, before its ReLU) or ``"relu5_4"``.

    Shape:
        x (N, 3, H, W) RGB in [0, 1]; output (N, C, H / 2^k, W / 2^k) features.
    """

    def __init__(self, layer: str = "conv3_3") -> None:
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"unknown VGG-19 layer {layer!r}; e.g. conv3_3, relu4_4, conv5_4")
        layers: list[nn.Module] = []
        channels = 3
        for item in _CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers[: LAYERS[layer] + 1])
        self.layer = layer
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        # A frozen feature extractor: never in training mode.
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)

    def load_weights(self, state: dict[str, torch.Tensor]) -> VGG19Features:
        """Load torchvision ``vgg19`` weights (whole state dict or ``features.*`` only)."""
        wanted = self.state_dict()
        missing = [name for name in wanted if name not in state]
        if missing:
            raise ValueError(
                f"not VGG-19 weights in torchvision's format: missing {', '.join(missing[:3])}"
            )
        self.load_state_dict({name: state[name] for name in wanted})
        return self


def load_vgg19(layer: str = "conv3_3", weights: str | os.PathLike | None = None) -> VGG19Features:
    """ImageNet VGG-19 features: from ``weights`` if given, else torch.hub's download and cache.

    Raises:
        FileNotFoundError, ValueError: ``weights`` is missing, unreadable or not VGG-19's.
        OSError: no ``weights`` and the download failed (no network and nothing cached); the
            message names both ways to provide the weights.
    """
    model = VGG19Features(layer)
    if weights is not None:
        state = read_torch_file(weights, "VGG-19 weights")
        return model.load_weights(state)
    try:
        state = torch.hub.load_state_dict_from_url(
            VGG19_URL, map_location="cpu", progress=False, weights_only=True
        )
    except Exception as exc:
        raise OSError(
            "could not get the ImageNet VGG-19 weights for the perceptual loss: torch.hub's "
            f"download failed ({exc}). Give a file with --vgg-weights PATH (torchvision's "
            f"vgg19 state dict, or its features.* entries), or place {Path(VGG19_URL).name} in "
            f"{Path(torch.hub.get_dir()) / 'checkpoints'}"
        ) from None
    return model.load_weights(state)
