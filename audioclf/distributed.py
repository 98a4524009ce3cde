"""Training under torchrun: process-group set-up and the few collectives the trainer needs.

`torchrun --nproc-per-node N -m audioclf train ...` starts N copies of the CLI. With `Dist.from_env`
each finds its rank; the trainer then either splits every batch over the processes
(DistributedDataParallel, the default) or gives each process whole folds (`--spread-folds`).
Only rank 0 writes files. A plain `python -m audioclf train` is a world of one and does none of this.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    shares_gpus: bool = False  # more processes on this node than it has GPUs (then gloo, `--spread-folds` only)

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Dist":
        """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK and join the process group (nccl for
        CUDA, gloo otherwise); a world of one when not launched by torchrun."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        shares = torch.cuda.is_available() and local_world > torch.cuda.device_count()
        if not dist.is_initialized():
            # nccl refuses two processes on one GPU; sharing one is for --spread-folds, which needs only a barrier
            dist.init_process_group("nccl" if torch.cuda.is_available() and not shares else "gloo")
        return cls(rank=dist.get_rank(), world=dist.get_world_size(),
                   local_rank=int(os.environ.get("LOCAL_RANK", "0")), shares_gpus=shares)

    def device(self, requested: torch.device) -> torch.device:
        """One GPU per process when training on CUDA: cuda:LOCAL_RANK, or, with more processes than GPUs
        (several fold models at once on one GPU), the GPUs taken in turn."""
        if self.active and requested.type == "cuda":
            index = self.local_rank % torch.cuda.device_count()
            torch.cuda.set_device(index)
            return torch.device("cuda", index)
        return requested

    def sum(self, *values: float) -> list[float]:
        """Sum scalars over the processes (identity in a world of one)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t)
        return t.cpu().tolist()

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


SINGLE = Dist()
