"""DistributedDataParallel from torchrun's environment: gloo on CPU, nccl on CUDA (one GPU per process).

`torchrun --nproc_per_node=N [--nnodes=M ...] ov-panoptic train ...` sets RANK, WORLD_SIZE and LOCAL_RANK;
without them this is one process and every collective is the identity. Rank 0 alone writes (logs,
checkpoints, validation); each rank trains on every world-size-th frame (data.FrameOrder).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from ov_panoptic_ros.core.ranks import env_ranks


class Distributed:
    def __init__(self, device: torch.device):
        """`device`: the pipeline config's device; on CUDA each process takes the GPU of its local rank."""
        self.rank, self.world, self.local_rank = env_ranks()
        self.device = device
        if self.world > 1:
            if device.type == "cuda":
                self.device = torch.device("cuda", self.local_rank)
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, network: nn.Module) -> nn.Module:
        """DDP over the network; every parameter gets a gradient on every frame (all queries score all
        classes and reconstruct the voxels), so find_unused_parameters stays off."""
        if not self.enabled:
            return network
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(network, device_ids=ids)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """The sum over ranks (in place; a copy on every rank)."""
        if self.enabled:
            dist.all_reduce(values)
        return values

    def broadcast(self, obj):
        """Rank 0's object on every rank (the resume state: rank 0 reads the checkpoint)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if self.enabled:
            dist.destroy_process_group()
