"""Training the blur generator (BGAN) on unpaired sharp and real blurry photos.

A run folder holds everything a run needs to be understood and continued:
``config.json`` (the resolved config), ``log.jsonl`` (losses per logged step),
``checkpoints/latest.pt`` and ``checkpoints/step_<N>.pt`` (both networks, both optimisers,
the step, every random state and the config), and ``samples/step_<N>.png`` (rows of
sharp | generated | real blurry). A checkpoint is also written on Ctrl-C; ``resume`` continues
from ``latest.pt`` and gives the same weights as an uninterrupted run on the CPU.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

import blurgen
from blurgen.io import atomic_path, interrupt_between_steps, write_png

from .data import ImagePatches
from .losses import (
    content_loss,
    perceptual_loss,
    ralsgan_discriminator_loss,
    ralsgan_generator_loss,
)
from .nets import NOISE_CHANNELS, BlurGenerator, Discriminator, gaussian_init
from .vgg import load_vgg19

log = logging.getLogger("blurgen")


@dataclass(frozen=True)
class BganConfig:
    """Everything that defines a BGAN training run.

    Attributes:
        sharp, blurry: folders of sharp photos and of real blurry photos (unpaired).
        iters: optimisation steps. batch: images per step. patch: training patch side (px).
        lr: Adam learning rate; it decays linearly to 0 from ``decay_start * iters`` on.
        seed: seeds torch and the patch sampler.
        perceptual_weight, adversarial_weight: loss weights (the paper: 1 and 0.005).
        content_weight: weight of a pixel MSE to the sharp input (0 in the paper). It anchors
            colour and brightness when the VGG-19 is not pretrained.
        vgg_layer: VGG-19 layer of the perceptual loss. vgg_weights: file of torchvision
            ``vgg19`` weights; None means torch.hub's download and cache.
        channels, blocks, disc_channels: network widths and depth.
        init_std: std of a Gaussian initialisation of both networks (the paper: 0.01), or None
            for PyTorch's default (the default here: with N(0, 0.01) the 11-layer
            discriminator shrinks its input ~1e7-fold, and the generator gets no adversarial
            gradient; measured with bench/bgan_learns.py).
        checkpoint_every, sample_every, log_every: in steps.
    """

    sharp: str
    blurry: str
    iters: int = 10000
    batch: int = 4
    patch: int = 128
    lr: float = 1e-4
    decay_start: float = 0.5
    seed: int = 0
    perceptual_weight: float = 1.0
    adversarial_weight: float = 0.005
    content_weight: float = 0.0
    vgg_layer: str = "conv3_3"
    vgg_weights: str | None = None
    channels: int = 64
    blocks: int = 9
    disc_channels: int = 64
    init_std: float | None = None
    checkpoint_every: int = 1000
    sample_every: int = 500
    log_every: int = 10

    def __post_init__(self) -> None:
        for name in ("iters", "batch", "patch", "checkpoint_every", "sample_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not 0 <= self.decay_start <= 1:
            raise ValueError(f"decay_start must be in [0, 1], got {self.decay_start!r}")


class BganTrainer:
    """One BGAN run in a run folder; :meth:`train` runs (or continues) it.

    Args:
        config: the run's config.
        run: the run folder (created if missing; its parent must exist).
        device: ``"cpu"`` or ``"cuda"`` (bf16 autocast on CUDA).
        resume: continue from ``run/checkpoints/latest.pt`` if there is one.
    """

    def __init__(self, config: BganConfig, run: str | os.PathLike, device: str = "cpu",
                 resume: bool = False) -> None:  # fmt: skip
        self.config, self.run, self.device = config, Path(run), torch.device(device)
        if not self.run.parent.is_dir():
            raise FileNotFoundError(f"folder '{self.run.parent}' does not exist")
        latest = self.run / "checkpoints" / "latest.pt"
        if latest.exists() and not resume:
            raise FileExistsError(f"'{self.run}' holds a run; pass --resume to continue it")
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.sharp = ImagePatches(config.sharp, config.patch)
        self.blurry = ImagePatches(config.blurry, config.patch)
        self.vgg = load_vgg19(config.vgg_layer, config.vgg_weights).to(self.device)
        self.generator = BlurGenerator(config.channels, config.blocks)
        self.discriminator = Discriminator(config.disc_channels)
        if config.init_std is not None:
            gaussian_init(self.generator, config.init_std)
            gaussian_init(self.discriminator, config.init_std)
        self.generator.to(self.device)
        self.discriminator.to(self.device)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), config.lr, betas=(0.9, 0.999))
        self.opt_d = torch.optim.Adam(
            self.discriminator.parameters(), config.lr, betas=(0.9, 0.999)
        )
        self.step = 0
        if resume and latest.exists():
            self._load(latest)
        for folder in ("checkpoints", "samples"):
            (self.run / folder).mkdir(parents=True, exist_ok=True)
        with atomic_path(self.run / "config.json") as temporary:
            temporary.write_text(json.dumps(asdict(config), indent=2) + "\n")

    def _lr(self, step: int) -> float:
        start = self.config.decay_start * self.config.iters
        if step < start:
            return self.config.lr
        return self.config.lr * max(0.0, 1 - (step - start) / max(1, self.config.iters - start))

    def train(self, progress: Callable[[int], None] | None = None) -> dict:
        """Run the remaining steps; returns the last step's losses.

        Raises:
            KeyboardInterrupt: after saving a checkpoint, with how to resume.
        """
        config, last = self.config, {}
        try:
            with interrupt_between_steps() as check_interrupt:
                while self.step < config.iters:
                    last = self._one_step()
                    end = self.step == config.iters
                    if self.step % config.log_every == 0 or end:
                        with open(self.run / "log.jsonl", "a") as f:
                            f.write(json.dumps(last) + "\n")
                    if self.step % config.checkpoint_every == 0 or end:
                        self.save()
                    if progress is not None:
                        progress(1)
                    check_interrupt()
        except KeyboardInterrupt:
            self.save()
            raise KeyboardInterrupt(
                f"stopped at step {self.step}; checkpoint saved in '{self.run}'; "
                "run again with --resume to continue"
            ) from None
        return last

    def _one_step(self) -> dict:
        """One discriminator and one generator update; returns the losses."""
        config = self.config
        lr = self._lr(self.step)
        for optimiser in (self.opt_g, self.opt_d):
            for group in optimiser.param_groups:
                group["lr"] = lr
        sharp = self.sharp.sample(config.batch, self.rng).to(self.device)
        real = self.blurry.sample(config.batch, self.rng).to(self.device)
        z = torch.randn(config.batch, NOISE_CHANNELS, device=self.device)
        bf16 = torch.autocast(self.device.type, torch.bfloat16, enabled=self.device.type == "cuda")
        with bf16:
            fake = self.generator(sharp, z)
            real_logits = self.discriminator(real).float()
            loss_d = ralsgan_discriminator_loss(
                real_logits, self.discriminator(fake.detach()).float()
            )
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        with bf16:
            # The real logits come from the updated discriminator; the fake ones carry the
            # generator's graph so the adversarial term trains it.
            real_logits = self.discriminator(real).float().detach()
            adversarial = ralsgan_generator_loss(real_logits, self.discriminator(fake).float())
            perceptual = perceptual_loss(self.vgg, fake.float(), sharp)
            loss_g = config.perceptual_weight * perceptual + config.adversarial_weight * adversarial
            if config.content_weight:
                loss_g = loss_g + config.content_weight * content_loss(fake.float(), sharp)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.step += 1
        if self.step % config.sample_every == 0 or self.step == config.iters:
            self._sample_grid(sharp, fake, real)
        return {
            "step": self.step,
            "loss_g": loss_g.item(),
            "perceptual": perceptual.item(),
            "adversarial": adversarial.item(),
            "loss_d": loss_d.item(),
            "lr": lr,
        }

    def _sample_grid(self, sharp: torch.Tensor, fake: torch.Tensor, real: torch.Tensor) -> None:
        rows = [
            torch.cat([s, f, r], dim=2)
            for s, f, r in zip(sharp, fake.detach().float(), real, strict=True)
        ]
        grid = torch.cat(rows[:4], dim=1).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        write_png(self.run / "samples" / f"step_{self.step:07d}.png", grid)

    def save(self) -> Path:
        """Write ``step_<N>.pt`` and ``latest.pt`` (atomically); returns the latter."""
        state = {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "step": self.step,
            "config": asdict(self.config),
            "generator_config": self.generator.config,
            "torch_rng": torch.get_rng_state(),
            "sampler_rng": self.rng.bit_generator.state,
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "blurgen_version": blurgen.__version__,
        }
        folder = self.run / "checkpoints"
        for name in (f"step_{self.step:07d}.pt", "latest.pt"):
            with atomic_path(folder / name) as temporary:
                torch.save(state, temporary)
        return folder / "latest.pt"

    def _load(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state["config"] != asdict(self.config):
            changed = sorted(
                k for k in state["config"] if state["config"][k] != asdict(self.config).get(k)
            )
            raise ValueError(f"'{path}' was made with other settings ({', '.join(changed)})")
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        torch.set_rng_state(state["torch_rng"])
        self.rng.bit_generator.state = state["sampler_rng"]
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        log.info("resumed %s at step %d", path, self.step)
