"""Training in several processes (torchrun + DistributedDataParallel), exactly as one would.

``torchrun --nproc-per-node N -m blurgen.cli train-deblur ...`` starts N processes and tells
each its rank in the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, and where to meet).
Each process joins the group (gloo on the CPU, nccl on CUDA, one GPU per process), draws the
step's whole batch the way a single process would, and works on its own share of it (rank r
of N: items ``r*B/N`` to ``(r+1)*B/N - 1``); DistributedDataParallel averages the gradients.
The relativistic adversarial losses compare each logit with the *batch's* mean logit, so the
logits are gathered from every process first (:func:`gather`): with them, the loss, and so
the gradient, is the one-process run's, up to the rounding of sums in another order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes: ``rank`` of ``world``."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Whether this process is the one that logs, validates and saves (rank 0)."""
        return self.rank == 0

    def share(self, batch: int) -> slice:
        """This process's items of a batch of ``batch``.

        Raises:
            ValueError: ``batch`` does not divide among the processes.
        """
        if batch % self.world:
            raise ValueError(
                f"the batch ({batch}) must divide among the {self.world} training processes"
            )
        size = batch // self.world
        return slice(self.rank * size, (self.rank + 1) * size)


def join(device: str) -> tuple[Ranks, str]:
    """Join the process group torchrun describes in the environment, if it describes one.

    Returns:
        ``(ranks, device)``: the device becomes ``cuda:<LOCAL_RANK>`` for ``"cuda"`` (one GPU
        per process). Without torchrun (no ``WORLD_SIZE`` above 1): one process, the device as
        given.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks(), device
    cuda = torch.device(device).type == "cuda"
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size()), device


def first_on_machine() -> bool:
    """Whether this process is the first training process on its machine (torchrun's
    ``LOCAL_RANK`` 0), or trains alone (no ``WORLD_SIZE`` above 1, as :func:`join`)."""
    alone = int(os.environ.get("WORLD_SIZE", "1")) <= 1
    return alone or int(os.environ.get("LOCAL_RANK", "0")) == 0


def leave() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


class _Gather(torch.autograd.Function):
    """Every process's tensor, concatenated in rank order; the gradient of each process's
    part is the sum of every process's gradient on it."""

    @staticmethod
    def forward(ctx, part: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(part) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, part.contiguous())
        ctx.rows = slice(dist.get_rank() * len(part), (dist.get_rank() + 1) * len(part))
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rows]


def gather(part: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """(world * N, ...) from each process's (N, ...), differentiably.

    Each process then computes the whole batch's loss; its gradient reaches each process's
    part summed over the processes (``world`` times the loss's), and DDP's averaging over the
    processes brings it back to the one-process gradient.
    """
    return part if ranks.world == 1 else _Gather.apply(part)


def mean_over(values: dict, ranks: Ranks, device: torch.device) -> dict:
    """The mean over the processes of each float in ``values`` (for the log)."""
    if ranks.world == 1:
        return values
    keys = [k for k, v in values.items() if isinstance(v, float)]
    numbers = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(numbers)
    return {**values, **{k: float(v) / ranks.world for k, v in zip(keys, numbers, strict=True)}}
