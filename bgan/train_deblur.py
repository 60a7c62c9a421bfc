"""Training the deblurring network (DBGAN) on blurgen pairs files.

Losses: content (MSE as in the paper, or L1) + VGG-19 perceptual + relativistic-average
least-squares adversarial (weight 0.01, the paper's relativistic deblur loss); ``gan=False``
trains on content and perceptual only. Validation PSNR and SSIM are computed every
``val_every`` steps on held-out pairs (a fraction of the data, or separate files) and the best
checkpoint is kept as ``checkpoints/best.pt``. The run folder is described in
:mod:`blurgen.bgan.run`; sample grids show rows of blurred | deblurred | sharp.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from .data import PairsDataset, StepBatches
from .losses import (
    CONTENT_LOSSES,
    content_loss,
    perceptual_loss,
    ralsgan_discriminator_loss,
    ralsgan_generator_loss,
)
from .metrics import psnr, ssim
from .nets import DEBLUR_ARCHS, deblur_generator
from .run import GanRun, check_schedule


@dataclass(frozen=True)
class DeblurConfig:
    """Everything that defines a deblur training run.

    Attributes:
        data: pairs files to train on. val: pairs files to validate on; when empty, whole
            source images holding a ``val_split`` fraction of ``data`` (chosen by the seed)
            are held out.
        iters, batch, patch, lr, warmup, decay_start, seed: as for BGAN (random crops of
            ``patch``, flipped at random).
        transpose: also transpose the crops at random, so that each pair is seen in all 8
            orientations of the square.
        content_weight, perceptual_weight, adversarial_weight: loss weights.
        content_loss: the pixel loss, ``"mse"`` (the paper's) or ``"l1"``.
        gan: train with the adversarial loss (False: content + perceptual only).
        vgg_layer, vgg_weights: the perceptual loss's VGG-19 (see :func:`load_vgg19`).
        arch: the generator, ``"rrdb"`` (the published DBGAN) or ``"resnet"`` (lighter).
        channels, blocks, growth, disc_channels, init_std: networks (the paper: 64 channels,
            16 blocks, growth 32; ``growth`` is the rrdb's dense layers' width).
        keep: step checkpoints kept (the newest), besides ``latest.pt`` and ``best.pt``.
        checkpoint_every, sample_every, log_every, val_every: in steps.
        workers: processes that load the batches ahead of the training step (0: the training
            process loads them itself); the batches do not depend on it.
        bf16: bf16 autocast on CUDA (no effect on the CPU).
        cpu_bf16: bf16 autocast on the CPU (off by default: about 1.5-2x as fast where
            the CPU has AVX-512 BF16 or AMX, slower where it has not).
    """

    data: tuple[str, ...]
    val: tuple[str, ...] = ()
    val_split: float = 0.05
    iters: int = 20000
    batch: int = 4
    patch: int = 128
    lr: float = 1e-4
    warmup: int = 200
    decay_start: float = 0.5
    seed: int = 0
    transpose: bool = True
    content_weight: float = 1.0
    content_loss: str = "mse"
    perceptual_weight: float = 1.0
    adversarial_weight: float = 0.01
    gan: bool = True
    vgg_layer: str = "conv3_3"
    vgg_weights: str | None = None
    arch: str = "rrdb"
    channels: int = 64
    blocks: int = 16
    growth: int = 32
    disc_channels: int = 64
    init_std: float | None = None
    checkpoint_every: int = 1000
    keep: int = 3
    sample_every: int = 500
    log_every: int = 10
    val_every: int = 500
    workers: int = 2
    bf16: bool = True
    cpu_bf16: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", tuple(str(p) for p in self.data))
        object.__setattr__(self, "val", tuple(str(p) for p in self.val))
        check_schedule(self)
        if not self.data:
            raise ValueError("give at least one pairs file to train on")
        if not self.val and not 0 < self.val_split < 1:
            raise ValueError(f"val_split must be in (0, 1), got {self.val_split!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be 0 or more, got {self.workers!r}")
        if self.arch not in DEBLUR_ARCHS:
            raise ValueError(f"arch must be one of {', '.join(DEBLUR_ARCHS)}, got {self.arch!r}")
        if self.content_loss not in CONTENT_LOSSES:
            raise ValueError(
                f"content_loss must be one of {', '.join(CONTENT_LOSSES)}, "
                f"got {self.content_loss!r}"
            )


def hold_out_sources(
    data: PairsDataset, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split pairs into validation and training by source image, so that no photo has crops on
    both sides (which would make validation optimistic).

    Whole sources, in an order drawn from ``rng``, are held out until they hold at least
    ``fraction`` of the pairs.

    Returns:
        ``(validation, training)``: sorted pair indices into ``data``.

    Raises:
        ValueError: the pairs come from a single source image.
    """
    sources = data.sources()
    groups = np.unique(sources, axis=0, return_inverse=True)[1].ravel()
    count = int(groups.max()) + 1
    if count < 2:
        raise ValueError(
            "the pairs come from one source image, so none can be held out for validation; "
            "give --val pairs made from other photos"
        )
    held: list[int] = []
    for group in rng.permutation(count):
        if held and np.isin(groups, held).sum() >= fraction * len(groups):
            break
        held.append(int(group))
    if len(held) == count:
        held.pop()
    validation = np.isin(groups, held)
    return np.flatnonzero(validation), np.flatnonzero(~validation)


class DeblurTrainer(GanRun):
    """One DBGAN run in a run folder; :meth:`train` runs (or continues) it.

    Args:
        config: the run's config.
        run: the run folder (created if missing; its parent must exist).
        device: ``"cpu"`` or ``"cuda"`` (see ``bf16`` and ``cpu_bf16``).
        resume: continue from ``run/checkpoints/latest.pt`` if there is one.
    """

    kind = "dbgan"

    def __init__(self, config: DeblurConfig, run: str | os.PathLike, device: str = "cpu",
                 resume: bool = False) -> None:  # fmt: skip
        self._open(config, run, device, resume)
        self.train_data = PairsDataset(
            config.data, crop=config.patch, flip=True, transpose=config.transpose
        )
        if config.val:
            self.val_data = PairsDataset(config.val)
            self.train_index = np.arange(len(self.train_data))
            self.val_index = np.arange(len(self.val_data))
        else:
            self.val_data = PairsDataset(config.data)
            self.val_index, self.train_index = hold_out_sources(
                self.train_data, config.val_split, np.random.default_rng([config.seed, 1])
            )
        network = deblur_generator(config.arch, config.channels, config.blocks, config.growth)
        self._build(network, adversarial=config.gan)
        self.best_psnr = -math.inf
        self._batches: Iterator | None = None
        self._ready(resume)

    def _loader(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of the remaining steps, loaded by ``workers`` processes ahead of use
        (into pinned memory for CUDA)."""
        config = self.config
        batches = StepBatches(self.train_data, self.train_index, config.batch, config.seed)
        ahead = {"prefetch_factor": 4} if config.workers else {}
        return iter(DataLoader(batches, batch_size=None, sampler=range(self.step, config.iters),
                               num_workers=config.workers,
                               pin_memory=self.device.type == "cuda", **ahead))  # fmt: skip

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """This step's pairs on the device, and the seconds spent waiting for them."""
        if self._batches is None:
            self._batches = self._loader()
        began = time.perf_counter()
        blurred, sharp = next(self._batches)
        waited = time.perf_counter() - began
        return (blurred.to(self.device, non_blocking=True),
                sharp.to(self.device, non_blocking=True), waited)  # fmt: skip

    def _one_step(self) -> dict:
        """One discriminator update (with the GAN) and one generator update."""
        config = self.config
        lr = self._set_lr()
        blurred, sharp, waited = self._batch()
        losses: dict = {"step": self.step + 1, "data_s": waited}
        with self._autocast():
            output = self.generator(blurred)
        if config.gan:
            with self._autocast():
                loss_d = ralsgan_discriminator_loss(
                    self.discriminator(sharp).float(), self.discriminator(output.detach()).float()
                )
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            losses["loss_d"] = loss_d.item()
        with self._autocast():
            content = content_loss(output.float(), sharp, config.content_loss)
            loss_g = config.content_weight * content
            if config.perceptual_weight:
                perceptual = perceptual_loss(self.vgg, output.float(), sharp)
                loss_g = loss_g + config.perceptual_weight * perceptual
                losses["perceptual"] = perceptual.item()
            if config.gan:
                real_logits = self.discriminator(sharp).float().detach()
                adversarial = ralsgan_generator_loss(
                    real_logits, self.discriminator(output).float()
                )
                loss_g = loss_g + config.adversarial_weight * adversarial
                losses["adversarial"] = adversarial.item()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.step += 1
        if self.step % config.sample_every == 0 or self.step == config.iters:
            self._write_grid(blurred, output.detach(), sharp)
        losses.update(loss_g=loss_g.item(), content=content.item(), lr=lr)
        return losses

    @torch.no_grad()
    def validate(self) -> dict:
        """Mean PSNR and SSIM of the input and of the output on the validation pairs."""
        self.generator.eval()
        scores = []
        for i in self.val_index:
            item = self.val_data[int(i)]
            output = self.generator(item["blurred"][None].to(self.device))[0]
            blurred, sharp = (item[k].permute(1, 2, 0).numpy() for k in ("blurred", "sharp"))
            out = output.float().permute(1, 2, 0).cpu().numpy()
            scores.append((psnr(blurred, sharp), psnr(out, sharp), ssim(out, sharp)))
        self.generator.train()
        mean = np.mean(scores, axis=0)
        return {"step": self.step, "val_psnr_input": float(mean[0]),
                "val_psnr": float(mean[1]), "val_ssim": float(mean[2])}  # fmt: skip

    def _after_step(self, losses: dict) -> None:
        if self.step % self.config.val_every and self.step != self.config.iters:
            return
        scores = self.validate()
        with open(self.run / "log.jsonl", "a") as f:
            f.write(json.dumps(scores) + "\n")
        if scores["val_psnr"] > self.best_psnr:
            self.best_psnr = scores["val_psnr"]
            self.save("best.pt")

    def _state(self) -> dict:
        return {**super()._state(), "best_psnr": self.best_psnr}

    def _restore(self, state: dict) -> None:
        self.best_psnr = float(state.get("best_psnr", -math.inf))
