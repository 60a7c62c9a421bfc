"""Training the blur generator (BGAN) on unpaired sharp and real blurry photos.

The run folder is described in :mod:`blurgen.bgan.run`; its sample grids show rows of
sharp | generated | real blurry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

from blurgen.sample import KERNEL_BLURS, draw_samples, render_sample

from .data import ImagePatches
from .losses import (
    content_loss,
    perceptual_loss,
    ralsgan_discriminator_loss,
    ralsgan_generator_loss,
)
from .nets import NOISE_KINDS, BlurGenerator
from .run import GanRun, check_schedule

if TYPE_CHECKING:
    from blurgen.pipeline import DatasetConfig


@dataclass(frozen=True)
class BganConfig:
    """Everything that defines a BGAN training run.

    Attributes:
        sharp, blurry: folders of sharp photos and of real blurry photos (unpaired).
        iters: optimisation steps. batch: images per step. patch: training patch side (px).
        lr: Adam learning rate; it decays linearly to 0 from ``decay_start * iters`` on.
        warmup: steps over which the learning rate first rises linearly to ``lr``. Without it,
            Adam's first steps, each about ``lr`` on every weight of the zero-initialised last
            convolution, push the generator's last ReLUs to silence at higher rates (at 5e-4 a
            64-channel deblurring network stopped learning for good; measured).
        seed: seeds torch and the patch sampler.
        perceptual_weight, adversarial_weight: loss weights (the paper: 1 and 0.005).
        content_weight: weight of an MSE to the sharp input (0 in the paper). It anchors
            colour and brightness when the VGG-19 is not pretrained.
        content_scale: the MSE compares means over ``content_scale`` px squares, what blur
            preserves (1: pixels, which fights the blur).
        vgg_layer: VGG-19 layer of the perceptual loss. vgg_weights: file of torchvision
            ``vgg19`` weights; None means torch.hub's download and cache.
        channels, blocks, disc_channels: network widths and depth.
        scale: the generator works on ``scale`` x ``scale`` cells of pixels (see
            :class:`~blurgen.bgan.nets.BlurGenerator`; 1: the paper's); patches must be a
            multiple of it.
        noise: the generator's noise, ``"map"`` (per-pixel maps, injected at every block) or
            ``"vector"`` (the paper's 4-vector repeated over the image).
        init_std: std of a Gaussian initialisation of both networks (the paper: 0.01), or None
            for PyTorch's default (the default here: with N(0, 0.01) the 11-layer
            discriminator shrinks its input ~1e7-fold, and the generator gets no adversarial
            gradient; measured with bench/bgan_learns.py).
        keep: step checkpoints kept (the newest), besides ``latest.pt`` and ``best.pt``.
        checkpoint_every, sample_every, log_every: in steps.
        bf16: bf16 autocast on CUDA (no effect on the CPU).
        cpu_bf16: bf16 autocast on the CPU (off by default: about 1.5-2x as fast where
            the CPU has AVX-512 BF16 or AMX, slower where it has not).
        pretrain: steps, at the start of ``iters``, in which the generator learns to reproduce
            blurgen's own blur (``physics``) of its sharp patches, before the adversarial
            steps move it toward the real photos (0: no pretraining, as in the paper).
        physics: the blur to pretrain on: a :class:`~blurgen.pipeline.DatasetConfig` as its
            ``to_dict()`` (a make-dataset preset's, for example); rendered with reflected
            borders at the patch's size, so its kernels must fit in a patch.
        init: generator weights to start from instead of the identity: a BGAN checkpoint,
            a run's ``generator.pt`` or ``builtin:NAME`` (the shipped one, to adapt it to
            another camera's photos); its channels, blocks and noise must be the run's.
    """

    sharp: str
    blurry: str
    iters: int = 10000
    batch: int = 4
    patch: int = 128
    lr: float = 1e-4
    warmup: int = 200
    decay_start: float = 0.5
    seed: int = 0
    perceptual_weight: float = 1.0
    adversarial_weight: float = 0.005
    content_weight: float = 0.0
    content_scale: int = 8
    vgg_layer: str = "conv3_3"
    vgg_weights: str | None = None
    channels: int = 64
    blocks: int = 9
    disc_channels: int = 64
    noise: str = "map"
    scale: int = 1
    init_std: float | None = None
    checkpoint_every: int = 1000
    keep: int = 3
    sample_every: int = 500
    log_every: int = 10
    bf16: bool = True
    cpu_bf16: bool = False
    pretrain: int = 0
    physics: dict | None = field(default=None, hash=False)
    init: str | None = None

    def __post_init__(self) -> None:
        check_schedule(self)
        if not 0 <= int(self.pretrain) <= self.iters:
            raise ValueError(f"pretrain must be 0 to iters ({self.iters}) steps, "
                             f"got {self.pretrain!r}")  # fmt: skip
        if self.pretrain and self.physics is None:
            raise ValueError("pretraining needs the blur to imitate (physics=)")
        if self.pretrain:
            physics = physics_config(self.physics)
            if physics.kernel_size > self.patch:
                raise ValueError(f"the pretraining kernels ({physics.kernel_size} px) must fit "
                                 f"in a patch ({self.patch} px)")  # fmt: skip
        if int(self.content_scale) != self.content_scale or self.content_scale < 1:
            raise ValueError(
                f"content_scale must be a whole number >= 1, got {self.content_scale!r}"
            )
        if int(self.scale) != self.scale or self.scale < 1 or self.patch % self.scale:
            raise ValueError(f"scale must be a whole number >= 1 that divides the patch "
                             f"({self.patch}), got {self.scale!r}")  # fmt: skip
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {', '.join(NOISE_KINDS)}, got {self.noise!r}")


# Generator outputs per sharp patch in pretraining; only the one nearest the physics blur is
# penalised, so that different noise draws come to stand for different kernels instead of all
# regressing to one average (isotropic) blur.
PRETRAIN_DRAWS = 2


def physics_config(values: dict) -> DatasetConfig:
    """The kernel blur of ``values`` (``DatasetConfig.to_dict()``); ValueError if it is
    learned."""
    from blurgen.pipeline import DatasetConfig

    config = DatasetConfig.from_dict(values)
    if set(config.methods()) - set(KERNEL_BLURS):
        raise ValueError("the pretraining blur must be made by kernels (motion or linear)")
    return config


def physics_blur(
    sharp: torch.Tensor, physics: DatasetConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, np.ndarray]:
    """blurgen's blur of patches, as make-dataset draws and renders it (kernels, noise, JPEG)
    but with reflected borders, so that the output keeps the patches' size.

    Args:
        sharp: (N, 3, P, P) float32 CPU tensor in [0, 1].
        physics: the kernel model and degradation (its boundary is replaced).
        rng: draws one seed per patch, which seeds its kernel and degradation.

    Returns:
        ``(blurred, kernels)``: (N, 3, P, P) float32 in [0, 1] and the (N, K, K) kernels.
    """
    degradation = replace(physics.degradation, boundary="reflect")
    rngs = [np.random.default_rng(int(seed)) for seed in rng.integers(2**63, size=len(sharp))]
    side = sharp.shape[-1]
    records, kernels = draw_samples(rngs, [(side, side)] * len(sharp), physics, None)
    pairs = zip(sharp.permute(0, 2, 3, 1).numpy(), kernels, records, strict=True)
    blurred = [
        render_sample(image, kernel, record, degradation)[1] for image, kernel, record in pairs
    ]
    return torch.from_numpy(np.stack(blurred)).permute(0, 3, 1, 2), kernels


class BganTrainer(GanRun):
    """One BGAN run in a run folder; :meth:`train` runs (or continues) it.

    Args:
        config: the run's config.
        run: the run folder (created if missing; its parent must exist).
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
        self._build(BlurGenerator(config.channels, config.blocks, config.noise, config.scale))
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

    def _pretrain_step(self) -> dict:
        """One generator update toward blurgen's own blur; returns the loss."""
        config = self.config
        lr = self._set_lr()
        sharp = self.sharp.sample(config.batch, self.rng).to(self.device)
        target = physics_blur(sharp.cpu(), self.physics, self.rng)[0].to(self.device)
        shape = self.generator.noise_shape(config.patch, config.patch)
        z = torch.randn(PRETRAIN_DRAWS * config.batch, *shape, device=self.device)
        with self._autocast():
            fake = self.generator(sharp.repeat(PRETRAIN_DRAWS, 1, 1, 1), z).float()
        errors = F.l1_loss(fake, target.repeat(PRETRAIN_DRAWS, 1, 1, 1), reduction="none")
        errors = errors.mean(dim=(1, 2, 3)).view(PRETRAIN_DRAWS, config.batch)
        loss = errors.min(dim=0).values.mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.step += 1
        if self.step % config.sample_every == 0 or self.step == config.iters:
            self._write_grid(sharp, fake[: config.batch].detach(), target)
        return {"step": self.step, "pretrain_l1": loss.item(), "lr": lr}

    def _one_step(self) -> dict:
        """One discriminator and one generator update (or, while pretraining, a generator
        update toward blurgen's blur); returns the losses."""
        config = self.config
        if self.step < config.pretrain:
            return self._pretrain_step()
        lr = self._set_lr()
        sharp = self.sharp.sample(config.batch, self.rng).to(self.device)
        real = self.blurry.sample(config.batch, self.rng).to(self.device)
        shape = self.generator.noise_shape(config.patch, config.patch)
        z = torch.randn(config.batch, *shape, device=self.device)
        losses: dict = {"step": self.step + 1}
        with self._autocast():
            fake = self.generator(sharp, z)
            real_logits = self.discriminator(real).float()
            loss_d = ralsgan_discriminator_loss(
                real_logits, self.discriminator(fake.detach()).float()
            )
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        with self._autocast():
            # The real logits come from the updated discriminator; the fake ones carry the
            # generator's graph so the adversarial term trains it.
            real_logits = self.discriminator(real).float().detach()
            adversarial = ralsgan_generator_loss(real_logits, self.discriminator(fake).float())
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
        self.opt_g.step()
        self.step += 1
        if self.step % config.sample_every == 0 or self.step == config.iters:
            self._write_grid(sharp, fake.detach(), real)
        losses.update(loss_g=loss_g.item(), adversarial=adversarial.item(),
                      loss_d=loss_d.item(), lr=lr)  # fmt: skip
        return losses
