"""Training the blur generator (BGAN) on unpaired sharp and real blurry photos.

The run folder is described in :mod:`blurgen.bgan.run`; its sample grids show rows of
sharp | generated | real blurry.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

from blurgen.transform import BlurTransform

from .config import BganConfig, physics_config
from .data import ImagePatches
from .losses import content_loss, perceptual_loss
from .nets import blur_generator
from .run import GanRun

if TYPE_CHECKING:
    from blurgen.pipeline import DatasetConfig


# Generator outputs per sharp patch in pretraining; only the one nearest the physics blur is
# penalised, so that different noise draws come to stand for different kernels instead of all
# regressing to one average (isotropic) blur.
PRETRAIN_DRAWS = 2


def physics_blur(
    sharp: torch.Tensor, physics: DatasetConfig, seeds: np.ndarray
) -> tuple[torch.Tensor, np.ndarray]:
    """blurgen's blur of patches, as make-dataset draws and renders it (kernels, noise, JPEG)
    but with reflected borders, so that the output keeps the patches' size.

    Args:
        sharp: (N, 3, P, P) float32 CPU tensor in [0, 1].
        physics: the kernel model and degradation (its boundary is replaced).
        seeds: (N,) integers, one per patch, seeding its kernel and degradation.

    Returns:
        ``(blurred, kernels)``: (N, 3, P, P) float32 in [0, 1] and the (N, K, K) kernels.
    """
    transform = BlurTransform(physics, boundary="reflect")
    side = sharp.shape[-1]
    records = [transform.draw(int(seed), (side, side)) for seed in seeds]
    images = sharp.permute(0, 2, 3, 1).numpy()
    blurred = [
        transform.apply(image, record) for image, record in zip(images, records, strict=True)
    ]
    kernels = np.stack([record.kernel for record in records])
    return torch.from_numpy(np.stack(blurred)).permute(0, 3, 1, 2), kernels


class BganTrainer(GanRun):
    """One BGAN run in a run folder; :meth:`train` runs (or continues) it.

    Args:
        config: the run's config.
        run: the run folder (created, with its parents, if missing).
        device: ``"cpu"`` or ``"cuda"`` (see ``bf16`` and ``cpu_bf16``).
        resume: continue from ``run/checkpoints/latest.pt`` if there is one.
        strict: stop at the first unusable photo instead of skipping it.
    """

    kind = "bgan"

    def __init__(self, config: BganConfig, run: str | os.PathLike, device: str = "cpu",
                 resume: bool = False, strict: bool = False) -> None:  # fmt: skip
        self._open(config, run, device, resume)
        self.sharp = ImagePatches(config.sharp, config.patch, strict)
        self.blurry = ImagePatches(config.blurry, config.patch, strict)
        self._build(blur_generator(**config.generator()))
        if config.pretrain:
            self.physics = physics_config(config.physics)
        if config.init is not None:
            self._start_from(config.init)
        self._ready(resume)

    def _start_from(self, path: str) -> None:
        """Load the generator weights of ``path`` (see ``BganConfig.init``)."""
        from .infer import load_generator

        start = load_generator(path, "bgan")
        if start.config != self.generator.config:
            raise ValueError(f"'{path}' holds a generator of {start.config}, not the run's "
                             f"{self.generator.config}")  # fmt: skip
        self.generator.load_state_dict(start.state_dict())

    def _noise(self, count: int) -> torch.Tensor:
        """The noise of ``count`` batches, drawn whole from torch's generator on the CPU
        (the same draws in every process, and on every device) and cut to this process's
        share: (count * share, *noise_shape) on the device."""
        config = self.config
        shape = self.generator.noise_shape(config.patch, config.patch)
        z = torch.randn(count, config.batch, *shape)[:, self.share]
        return z.flatten(0, 1).to(self.device)

    def _pretrain_step(self) -> dict:
        """One generator update toward blurgen's own blur; returns the loss."""
        config = self.config
        lr = self._set_lr()
        # Every process draws the whole batch, as one process does, and takes its share.
        sharp = self.sharp.sample(config.batch, self.rng)
        seeds = self.rng.integers(2**63, size=config.batch)[self.share]
        sharp = sharp[self.share]
        target = physics_blur(sharp, self.physics, seeds)[0].to(self.device)
        sharp = sharp.to(self.device)
        z = self._noise(PRETRAIN_DRAWS)
        with self._autocast():
            fake = self.step_generator(sharp.repeat(PRETRAIN_DRAWS, 1, 1, 1), z).float()
        errors = F.l1_loss(fake, target.repeat(PRETRAIN_DRAWS, 1, 1, 1), reduction="none")
        errors = errors.mean(dim=(1, 2, 3)).view(PRETRAIN_DRAWS, len(sharp))
        loss = errors.min(dim=0).values.mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        grad_g = self._grad_norm(self.generator)
        self.opt_g.step()
        self.step += 1
        if self.step % config.sample_every == 0 or self.step == config.iters:
            self._write_grid(sharp, fake[: config.batch].detach(), target)
        return {"step": self.step, "pretrain_l1": loss.item(), "grad_g": grad_g, "lr": lr}

    def _one_step(self) -> dict:
        """One discriminator and one generator update (or, while pretraining, a generator
        update toward blurgen's blur); returns the losses."""
        config = self.config
        if self.step < config.pretrain:
            return self._pretrain_step()
        lr = self._set_lr()
        sharp = self.sharp.sample(config.batch, self.rng)[self.share].to(self.device)
        real = self.blurry.sample(config.batch, self.rng)[self.share].to(self.device)
        z = self._noise(1)
        losses: dict = {"step": self.step + 1}
        with self._autocast():
            fake = self.step_generator(sharp, z)
        loss_d = self._discriminator_loss(real, fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        losses["grad_d"] = self._grad_norm(self.discriminator)
        self.opt_d.step()
        # The real logits come from the updated discriminator.
        adversarial = self._adversarial_loss(real, fake)
        with self._autocast():
            loss_g = config.adversarial_weight * adversarial
            if config.perceptual_weight:
                perceptual = perceptual_loss(self.vgg, fake.float(), sharp)
                loss_g = loss_g + config.perceptual_weight * perceptual
                losses["perceptual"] = perceptual.item()
            if config.content_weight:
                content = content_loss(fake.float(), sharp, scale=config.content_scale)
                loss_g = loss_g + config.content_weight * content
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        losses["grad_g"] = self._grad_norm(self.generator)
        self.opt_g.step()
        self.step += 1
        if self.step % config.sample_every == 0 or self.step == config.iters:
            self._write_grid(sharp, fake.detach(), real)
        losses.update(loss_g=loss_g.item(), adversarial=adversarial.item(),
                      loss_d=loss_d.item(), lr=lr)  # fmt: skip
        return losses
