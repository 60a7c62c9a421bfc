"""Losses of BGAN and DBGAN: perceptual, content, and relativistic-average least squares.

The relativistic average discriminator judges whether a real image looks more real than the
generated ones on average (and vice versa); the least-squares form pushes that difference to
+1 or -1. Gradients of the generator's loss flow through the generated images' logits, so the
discriminator's output on them must not be detached when training the generator.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import CONTENT_LOSSES


def perceptual_loss(
    features: nn.Module, output: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Mean squared distance between VGG features of ``output`` and ``target`` (N, 3, H, W)."""
    return F.mse_loss(features(output), features(target))


def content_loss(
    output: torch.Tensor, target: torch.Tensor, kind: str = "mse", scale: int = 1
) -> torch.Tensor:
    """Pixel loss between ``output`` and ``target`` (N, C, H, W): the mean squared error
    (``"mse"``) or the mean absolute error (``"l1"``).

    The absolute error weighs the small residuals of smooth regions more than the squared
    error does, so a network trained on it is pushed harder to leave flat areas alone. With
    ``scale`` > 1 both images are first averaged over ``scale`` x ``scale`` blocks: the loss
    then holds what blur preserves (colour, brightness, coarse structure) without penalising
    the blur itself, as a full-resolution pixel loss does.
    """
    if scale > 1:
        output, target = F.avg_pool2d(output, scale), F.avg_pool2d(target, scale)
    if kind == "mse":
        return F.mse_loss(output, target)
    if kind == "l1":
        return F.l1_loss(output, target)
    raise ValueError(f"content loss must be one of {', '.join(CONTENT_LOSSES)}, got {kind!r}")


def ralsgan_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Relativistic-average LSGAN loss of the discriminator.

    Args:
        real: (N,) logits on real images.
        fake: (M,) logits on generated images (detached from the generator here is fine).
    """
    return 0.5 * (((real - fake.mean() - 1) ** 2).mean() + ((fake - real.mean() + 1) ** 2).mean())


def ralsgan_generator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Relativistic-average LSGAN loss of the generator: the roles of real and fake swapped.

    ``fake`` must carry the generator's graph; ``real`` may be detached.
    """
    return 0.5 * (((fake - real.mean() - 1) ** 2).mean() + ((real - fake.mean() + 1) ** 2).mean())
