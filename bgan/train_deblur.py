"""Training the deblurring network (DBGAN) on blurgen pairs: from pairs files, or made on the
fly from photos (the same pairs make-dataset would write from them, config and seed).

Losses: content (MSE as in the paper, or L1) + VGG-19 perceptual + relativistic-average
least-squares adversarial (weight 0.01, the paper's relativistic deblur loss); ``gan=False``
trains on content and perceptual only. Validation PSNR and SSIM are computed every
``val_every`` steps on held-out pairs (a fraction of the data, or separate files) and the best
checkpoint is kept as ``checkpoints/best.pt``; with no separate files and ``val_split=0`` the run
trains on all its pairs without validation, and keeps no best checkpoint (``latest.pt`` is the
last step's). The run folder is described in :mod:`blurgen.bgan.run`; sample grids show rows
of blurred | deblurred | sharp.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from blurgen.metrics import psnr, ssim
from blurgen.pipeline import DatasetConfig
from blurgen.torch import PairsDataset, SyntheticPairs

from .config import DEFAULT_PRESET, SYNTHESIS_SETTINGS, DeblurConfig, synthesis_config
from .data import StepBatches
from .distributed import Ranks, gather
from .losses import content_loss, perceptual_loss
from .nets import deblur_generator
from .run import GanRun

log = logging.getLogger("blurgen")


Pairs = PairsDataset | SyntheticPairs


def hold_out_sources(
    data: Pairs, fraction: float, rng: np.random.Generator
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
            "give --val pairs made from other photos, or --val-split 0 to train without "
            "validation"
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


def check_same_pairs(data: Pairs, config: DeblurConfig, ranks: Ranks, device: torch.device) -> None:
    """Make sure that every training process trains on the same pairs: that they found the
    same files or photos (paths and count) and resolved the same config of pairs made on the
    fly (each reads the preset itself). Nothing to check in a single process.

    Raises:
        ValueError: the processes differ (each process raises it).
    """
    if ranks.world == 1:
        return
    seen = json.dumps([data.paths, len(data), config.synthesis], sort_keys=True)
    digest = torch.tensor([list(hashlib.sha256(seen.encode()).digest())], dtype=torch.uint8)
    every = gather(digest.to(device), ranks)
    if not bool((every == every[:1]).all()):
        raise ValueError(
            "the training processes see different pairs (other files or photos, or a preset "
            "that changed while they started): give every process the same ones"
        )


def check_makes_pairs(data: SyntheticPairs) -> None:
    """Make the first pair, so that a config that cannot make pairs (a learned blur that needs
    larger pairs, an unusable first photo) stops the run as it starts rather than in a loader
    process. Torch's random state is left as it was (a learned blur's network is built here).

    Raises:
        ValueError, OSError: the pair cannot be made (the message says why).
    """
    try:
        with torch.random.fork_rng(devices=[]):
            data.pair(0)
    except ValueError as exc:
        raise ValueError(f"cannot make the pairs to train on: {exc}") from None


def recorded_synthesis(run: str | os.PathLike, settings: dict) -> dict | None:
    """The config of the pairs made on the fly that the run in ``run`` recorded
    (``config.json``'s ``synthesis``), where it was made from the same ``preset``,
    ``per_image`` and ``synth_patch`` as ``settings`` (a config's fields); None where there is
    no such run (resuming a run with other settings is refused when its checkpoint is read).

    A resumed run goes on with it: its pairs are those it began with, even if the preset's file
    has changed since, or is gone (a warning says so).
    """
    path = Path(run) / "config.json"
    if not path.is_file():
        return None
    recorded = json.loads(path.read_text())
    if recorded.get("synthesis") is None:
        return None
    given = {**settings, "preset": settings.get("preset") or DEFAULT_PRESET}
    if any(recorded.get(name) != given.get(name) for name in SYNTHESIS_SETTINGS):
        return None
    try:
        now = synthesis_config(**{name: given.get(name) for name in SYNTHESIS_SETTINGS}).to_dict()
    except ValueError:  # the file is gone, or no longer reads
        now = None
    if now != DatasetConfig.from_dict(recorded["synthesis"]).to_dict():
        log.warning("the preset %s is not what it was when the run began; the run goes on with "
                    "the pairs it began with (synthesis in %s)", given["preset"], path)  # fmt: skip
    return recorded["synthesis"]


class DeblurTrainer(GanRun):
    """One DBGAN run in a run folder; :meth:`train` runs (or continues) it.

    Args:
        config: the run's config.
        run: the run folder (created, with its parents, if missing).
        device: ``"cpu"`` or ``"cuda"`` (see ``bf16`` and ``cpu_bf16``).
        resume: continue from ``run/checkpoints/latest.pt`` if there is one.

    ``val_data`` is None where the run does not validate (no ``val`` files and ``val_split``
    0).
    """

    kind = "dbgan"

    def __init__(self, config: DeblurConfig, run: str | os.PathLike, device: str = "cpu",
                 resume: bool = False) -> None:  # fmt: skip
        self._open(config, run, device, resume)
        self.train_data = self._pairs(crop=config.patch, flip=True, transpose=config.transpose)
        if isinstance(self.train_data, SyntheticPairs):
            check_makes_pairs(self.train_data)
        check_same_pairs(self.train_data, config, self.ranks, self.device)
        self.val_data: Pairs | None = None
        self.train_index = np.arange(len(self.train_data))
        self.val_index = np.arange(0)
        if config.val:
            self.val_data = PairsDataset(config.val)
            self.val_index = np.arange(len(self.val_data))
        elif config.val_split:
            self.val_data = self._pairs()
            self.val_index, self.train_index = hold_out_sources(
                self.train_data, config.val_split, np.random.default_rng([config.seed, 1])
            )
        network = deblur_generator(config.arch, config.channels, config.blocks, config.growth)
        self._build(network, adversarial=config.gan)
        self.best_psnr = -math.inf
        self._batches: Iterator | None = None
        self._ready(resume)

    def _pairs(self, **augmentations: Any) -> Pairs:
        """The run's pairs, from its files or made on the fly, with ``augmentations`` (see
        :class:`blurgen.torch.AugmentedPairs`)."""
        config = self.config
        if config.data:
            return PairsDataset(config.data, **augmentations)
        return SyntheticPairs(config.synthesise, config=DatasetConfig.from_dict(config.synthesis),
                              seed=config.seed, **augmentations)  # fmt: skip

    def _loader(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's share of the batches of the remaining steps, loaded by
        ``workers`` processes ahead of use (into pinned memory for CUDA)."""
        config = self.config
        batches = StepBatches(self.train_data, self.train_index, config.batch, config.seed,
                              self.share)  # fmt: skip
        ahead = {"prefetch_factor": 4} if self.workers else {}
        return iter(DataLoader(batches, batch_size=None, sampler=range(self.step, config.iters),
                               num_workers=self.workers,
                               pin_memory=self.device.type == "cuda", **ahead))  # fmt: skip

    @property
    def workers(self) -> int:
        """Loader processes: the config's, or by default 2 on CUDA and 0 on the CPU."""
        if self.config.workers is not None:
            return self.config.workers
        return 2 if self.device.type == "cuda" else 0

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
            output = self.step_generator(blurred)
        if config.gan:
            loss_d = self._discriminator_loss(sharp, output)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            losses["grad_d"] = self._grad_norm(self.discriminator)
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
                adversarial = self._adversarial_loss(sharp, output)
                loss_g = loss_g + config.adversarial_weight * adversarial
                losses["adversarial"] = adversarial.item()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        losses["grad_g"] = self._grad_norm(self.generator)
        self.opt_g.step()
        self.step += 1
        if self.step % config.sample_every == 0 or self.step == config.iters:
            self._write_grid(blurred, output.detach(), sharp)
        losses.update(loss_g=loss_g.item(), content=content.item(), lr=lr)
        return losses

    @torch.no_grad()
    def validate(self) -> dict:
        """Mean PSNR and SSIM of the input and of the output on the validation pairs."""
        if self.val_data is None:
            raise ValueError("this run has no validation pairs (no --val, and --val-split 0)")
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
        if self.val_data is None:
            return
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
