"""What both GAN trainings share: a run folder, the learning-rate schedule, the loop with its
log, checkpoints and Ctrl-C handling, and saving and resuming every state.

A run folder holds ``config.json`` (the resolved config), ``log.jsonl`` (losses per logged
step), ``checkpoints/latest.pt`` and ``checkpoints/step_<N>.pt`` (the networks the run trains
and their optimisers, the step, every random state and the config; ``latest.pt`` and
``best.pt`` are hard links to a step's file where the file system allows, so they take no
space of their own), ``generator.pt`` (the latest generator alone, for inference: its weights,
their configuration, the run's config and step; a few MB) and ``samples/step_<N>.png``. A
checkpoint is also written on Ctrl-C;
resuming from ``latest.pt`` gives the same weights as an uninterrupted run on the CPU. A
resumed run may be given more (or fewer) steps; the learning-rate schedule then follows the
new length.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

import blurgen
from blurgen.io import atomic_path, interrupt_between_steps, write_png

from .distributed import gather, join, mean_over
from .files import read_torch_file
from .losses import ralsgan_discriminator_loss, ralsgan_generator_loss
from .nets import discriminator, gaussian_init
from .vgg import load_vgg19

log = logging.getLogger("blurgen")

# Settings a resumed run may change: its length, how often it logs, samples, validates and
# saves, how many processes load its data and whether it is compiled (which moves the
# weights by rounding only). Everything else must match the checkpoint, or the run would not
# be one run.
EXTENDABLE = frozenset(
    {
        "iters",
        "checkpoint_every",
        "sample_every",
        "log_every",
        "val_every",
        "keep",
        "workers",
        "compile",
    }
)
# Settings whose behaviour before they existed is not their default: runs then had no warm-up,
# their deblurring crops were not transposed, their blur generators took noise vectors,
# BGAN's content term compared pixels, and their deblurrers were the resnet.
BEFORE_IT_EXISTED = {
    "warmup": 0,
    "transpose": False,
    "noise": "vector",
    "content_scale": 1,
    "arch": "resnet",
}


def cpu_has_native_bf16() -> bool:
    """Whether PyTorch finds bf16 instructions (AVX-512 BF16 or AMX) on this CPU; without them
    bf16 autocast on the CPU is emulated and slower than float32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


class GanRun:
    """Base of the trainers. Subclasses call :meth:`_open`, load their data, :meth:`_build`
    with their generator, then :meth:`_ready`, and implement :meth:`_one_step`."""

    kind = ""
    config: Any
    generator: torch.nn.Module
    discriminator: torch.nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None

    def _open(self, config: Any, run: str | os.PathLike, device: str, resume: bool) -> None:
        self.ranks, device = join(device)
        self.share = self.ranks.share(config.batch)
        self.config, self.run, self.device = config, Path(run), torch.device(device)
        self.latest = self.run / "checkpoints" / "latest.pt"
        if self.latest.exists() and not resume:
            raise FileExistsError(f"'{self.run}' holds a run; pass --resume to continue it")
        if self.device.type == "cpu" and config.cpu_bf16 and not cpu_has_native_bf16():
            log.warning(
                "this CPU has no native bf16 (AVX-512 BF16 or AMX): --cpu-bf16 will likely "
                "train slower than float32"
            )
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.step = 0

    def _build(self, generator: torch.nn.Module, adversarial: bool = True) -> None:
        """Set up the perceptual VGG-19 (when its weight is not 0), ``generator``, the
        discriminator (only for ``adversarial`` training) and their optimisers from the config
        (VGG layer and weights, discriminator width, initialisation, lr)."""
        config = self.config
        # Without a perceptual term no VGG-19 is needed, nor its weights (a download). Its
        # random initialisation, which the loaded weights replace, draws from a forked stream,
        # so the run's draws do not depend on the perceptual settings.
        self.vgg = None
        if config.perceptual_weight:
            with torch.random.fork_rng(devices=[]):
                self.vgg = load_vgg19(config.vgg_layer, config.vgg_weights).to(self.device)
        self.generator = generator
        self.discriminator = (
            discriminator(
                config.discriminator,
                config.disc_channels,
                config.disc_layers,
                config.disc_scales,
                config.disc_input,
            )
            if adversarial
            else None
        )
        networks = [n for n in (self.generator, self.discriminator) if n is not None]
        for network in networks:
            if config.init_std is not None:  # before the move: the CPU's generator draws
                gaussian_init(network, config.init_std)
            network.to(self.device)
        # The training steps call the networks through these: in several processes wrapped
        # for DDP, and compiled with --compile (the modules themselves stay plain, so
        # checkpoints hold their usual weight names). The generator's loss goes through the
        # plain discriminator (``judge``): its gradient there is the generator's alone, and
        # the discriminator's own update is the one its wrapper averages.
        compiled = torch.compile if config.compile else (lambda network: network)
        self.step_generator = compiled(self._parallel(self.generator))
        self.step_discriminator = self.judge = None
        if adversarial:
            self.step_discriminator = compiled(self._parallel(self.discriminator))
            self.judge = compiled(self.discriminator) if self.ranks.world > 1 else (
                self.step_discriminator)  # fmt: skip
        adam = {"lr": config.lr, "betas": (0.9, 0.999)}
        self.opt_g = torch.optim.Adam(self.generator.parameters(), **adam)
        self.opt_d = None
        if adversarial:
            self.opt_d = torch.optim.Adam(self.discriminator.parameters(), **adam)

    def _parallel(self, network: torch.nn.Module) -> torch.nn.Module:
        """``network`` wrapped for DDP when training in several processes."""
        if self.ranks.world == 1:
            return network
        devices = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(network, device_ids=devices)

    def _ready(self, resume: bool) -> None:
        if resume and self.latest.exists():
            self._load(self.latest)
        if not self.ranks.main:
            return
        for folder in ("checkpoints", "samples"):
            (self.run / folder).mkdir(parents=True, exist_ok=True)
        with atomic_path(self.run / "config.json") as temporary:
            temporary.write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    def _discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """The relativistic discriminator loss on this process's real and generated images
        (fake detached here), against the whole batch's: one call of the discriminator on
        both (a DDP module takes one forward per backward), logits gathered from every
        process."""
        with self._autocast():
            logits = self.step_discriminator(torch.cat([real, fake.detach()])).float()
        real_logits, fake_logits = (gather(part, self.ranks) for part in logits.chunk(2))
        return self._per_scale(ralsgan_discriminator_loss, real_logits, fake_logits)

    def _adversarial_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """The relativistic generator loss, the discriminator's logits gathered as above;
        the real logits are detached, the fake ones carry the generator's graph."""
        # Frozen while it judges: its weights get no gradient from the generator's loss (which
        # DDP's hooks on them would otherwise try to average).
        self.discriminator.requires_grad_(False)
        try:
            with self._autocast():
                real_logits = gather(self.judge(real).float().detach(), self.ranks)
                fake_logits = gather(self.judge(fake).float(), self.ranks)
        finally:
            self.discriminator.requires_grad_(True)
        return self._per_scale(ralsgan_generator_loss, real_logits, fake_logits)

    def _per_scale(
        self, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        real_logits: torch.Tensor, fake_logits: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """``loss`` of the logits, or its mean over the scales of a multi-scale
        discriminator."""
        split = getattr(self.discriminator, "split", None)
        if split is None:
            return loss(real_logits, fake_logits)
        parts = [loss(r, f) for r, f in zip(split(real_logits), split(fake_logits), strict=True)]
        return torch.stack(parts).mean()

    def _autocast(self) -> Any:
        """bf16 autocast where the config asks for it: ``bf16`` on CUDA, ``cpu_bf16`` on the
        CPU."""
        enabled = self.config.bf16 if self.device.type == "cuda" else self.config.cpu_bf16
        return torch.autocast(self.device.type, torch.bfloat16, enabled=enabled)

    def _set_lr(self) -> float:
        """Set and return this step's learning rate: a linear rise over the first ``warmup``
        steps, constant, then a linear decay to 0 from ``decay_start * iters`` on."""
        config = self.config
        start = config.decay_start * config.iters
        lr = config.lr
        if self.step < config.warmup:
            lr *= (self.step + 1) / config.warmup
        if self.step >= start:
            lr *= max(0.0, 1 - (self.step - start) / max(1, config.iters - start))
        for optimiser in self._optimisers():
            for group in optimiser.param_groups:
                group["lr"] = lr
        return lr

    @staticmethod
    def _grad_norm(network: torch.nn.Module) -> float:
        """The L2 norm of ``network``'s gradient (for the log; after DDP's averaging, the
        whole batch's)."""
        norms = [p.grad.norm() for p in network.parameters() if p.grad is not None]
        return torch.linalg.vector_norm(torch.stack(norms)).item() if norms else 0.0

    def _optimisers(self) -> list[torch.optim.Optimizer]:
        return [self.opt_g] + ([self.opt_d] if self.opt_d is not None else [])

    def _one_step(self) -> dict:
        raise NotImplementedError

    def _after_step(self, losses: dict) -> None:
        """Hook after each step is logged (validation, for example)."""

    def train(self, progress: Callable[[int], None] | None = None) -> dict:
        """Run the remaining steps; returns the last step's losses.

        Raises:
            KeyboardInterrupt: after saving a checkpoint, with how to resume.
        """
        config, last, main = self.config, {}, self.ranks.main
        try:
            with interrupt_between_steps() as check_interrupt:
                while self.step < config.iters:
                    last = mean_over(self._one_step(), self.ranks, self.device)
                    end = self.step == config.iters
                    if main and (self.step % config.log_every == 0 or end):
                        with open(self.run / "log.jsonl", "a") as f:
                            f.write(json.dumps(last) + "\n")
                    if main:
                        self._after_step(last)
                    if main and (self.step % config.checkpoint_every == 0 or end):
                        self.save()
                    if progress is not None and main:
                        progress(1)
                    check_interrupt()
        except KeyboardInterrupt:
            if not main:
                raise
            self.save()
            raise KeyboardInterrupt(
                f"stopped at step {self.step}; checkpoint saved in '{self.run}'; "
                "run again with --resume to continue"
            ) from None
        return last

    def _write_grid(self, *columns: torch.Tensor) -> None:
        """Rows of up to 4 examples, one column per tensor (each (N, 3, H, W) in [0, 1]);
        by the main process, from its share of the batch."""
        if not self.ranks.main:
            return
        rows = [torch.cat(images, dim=2) for images in zip(*columns, strict=True)]
        grid = torch.cat(rows[:4], dim=1).float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        write_png(self.run / "samples" / f"step_{self.step:07d}.png", grid)

    def _state(self) -> dict:
        networks = {"generator": self.generator.state_dict(), "opt_g": self.opt_g.state_dict()}
        if self.discriminator is not None:
            networks["discriminator"] = self.discriminator.state_dict()
            networks["opt_d"] = self.opt_d.state_dict()
        return {
            "kind": self.kind,
            **networks,
            "step": self.step,
            "config": asdict(self.config),
            "generator_config": self.generator.config,
            "torch_rng": torch.get_rng_state(),
            "sampler_rng": self.rng.bit_generator.state,
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "blurgen_version": blurgen.__version__,
        }

    def save(self, *names: str) -> Path:
        """Write ``step_<N>.pt``, then ``latest.pt`` and any other ``names`` as links to it,
        atomically, and remove all but the newest ``keep`` step checkpoints; also write
        ``generator.pt``. Returns the path of ``latest.pt``."""
        folder = self.run / "checkpoints"
        written = folder / f"step_{self.step:07d}.pt"
        with atomic_path(written) as temporary:
            torch.save(self._state(), temporary)
        for name in ("latest.pt", *names):
            with atomic_path(folder / name) as temporary:
                try:
                    os.link(written, temporary)
                except OSError:  # no hard links here (FAT, some network file systems)
                    shutil.copyfile(written, temporary)
        for old in sorted(folder.glob("step_*.pt"))[: -self.config.keep]:
            old.unlink()
        with atomic_path(self.run / "generator.pt") as temporary:
            torch.save(self.exported(), temporary)
        return folder / "latest.pt"

    def exported(self) -> dict:
        """The generator for inference: ``kind`` ``"<run kind>-generator"``, its weights and
        configuration, and the run's config, step and blurgen version (what
        :func:`~blurgen.bgan.infer.load_generator` reads)."""
        return {
            "kind": f"{self.kind}-generator",
            "generator": self.generator.state_dict(),
            "generator_config": self.generator.config,
            "config": asdict(self.config),
            "step": self.step,
            "blurgen_version": blurgen.__version__,
        }

    def _load(self, path: Path) -> None:
        state = read_torch_file(path, "checkpoint", map_location=self.device)
        if not isinstance(state, dict) or state.get("kind") != self.kind:
            raise ValueError(f"'{path}' is not a checkpoint of a {self.kind} run")
        ours = asdict(self.config)
        # A setting added after the checkpoint was written had its default's behaviour then,
        # or, for those in BEFORE_IT_EXISTED, the behaviour recorded there.
        defaults = {
            f.name: BEFORE_IT_EXISTED.get(f.name, f.default)
            for f in fields(self.config)
            if f.default is not MISSING
        }
        theirs = {**defaults, **state["config"]}
        keys = theirs.keys() | ours.keys()
        changed = sorted(k for k in keys if theirs.get(k) != ours.get(k) and k not in EXTENDABLE)
        if changed:
            raise ValueError(f"'{path}' was made with other settings ({', '.join(changed)})")
        if theirs["iters"] != ours["iters"]:
            log.warning("the run now ends at step %d (was %d); the learning-rate schedule "
                        "follows the new length", ours["iters"], theirs["iters"])  # fmt: skip
        self.generator.load_state_dict(state["generator"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict(state["discriminator"])
            self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        torch.set_rng_state(state["torch_rng"])
        self.rng.bit_generator.state = state["sampler_rng"]
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self._restore(state)
        log.info("resumed %s at step %d", path, self.step)

    def _restore(self, state: dict) -> None:
        """Hook for subclass-specific state in a checkpoint."""
