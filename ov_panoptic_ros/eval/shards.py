"""Which shard of a replay this process runs, where shards leave their state, and how the merging process
(shard 0) collects them.

Two launchers, one protocol. Under torchrun (RANK and WORLD_SIZE set) every rank runs its shard and every
rank but 0 writes OUT/shards/shard-RRR-of-WWW.npz; rank 0 then waits for those files and merges them with its
own shard, held in memory. Files, not torch.distributed: no process group and no collective timeout while one
rank is still on a long bag, and rank 0 can merge ranks that ran at other times; the price is an --out every
rank reaches (across nodes, a shared filesystem). With --workers N the process is shard 0 itself and spawns
shards 1..N-1 (multiprocessing spawn: a fresh interpreter with its own pipeline each), waiting on them as
processes. Every file carries a token (the torchrun run id and restart count, or one the parent drew, plus a
fingerprint of the job) so that a file an earlier run left in the same --out is never merged.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ov_panoptic_ros.core.files import atomic_open
from ov_panoptic_ros.core.ranks import env_ranks
from ov_panoptic_ros.eval.errors import ReplayError
from ov_panoptic_ros.eval.shard_state import PartState

POLL_S = 0.5


@dataclass(frozen=True)
class ShardPlan:
    rank: int = 0
    world: int = 1
    launcher: str = "single"  # single | workers | torchrun
    token: str = ""
    local_rank: int = 0  # which GPU of the machine (torchrun's LOCAL_RANK; a worker's rank)


def plan_shards(workers: int, fingerprint: str) -> ShardPlan:
    """torchrun's rank when its environment says so, else `workers` local processes (1: no sharding)."""
    rank, world, local_rank = env_ranks()
    if world > 1:
        if workers > 1:
            raise ReplayError("--workers under torchrun: torchrun already starts one process per shard; drop one")
        run = os.environ.get("TORCHELASTIC_RUN_ID") or os.environ.get("OV_PANOPTIC_RUN_ID", "")
        token = f"{run}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/{fingerprint}"
        return ShardPlan(rank, world, "torchrun", token, local_rank)
    if workers > 1:
        return ShardPlan(0, workers, "workers", f"{uuid.uuid4()}/{fingerprint}")
    return ShardPlan()


def worker_plans(plan: ShardPlan) -> list[ShardPlan]:
    return [ShardPlan(r, plan.world, plan.launcher, plan.token, r) for r in range(1, plan.world)]


def shard_file(out: str | Path, rank: int, world: int) -> Path:
    return Path(out) / "shards" / f"shard-{rank:03d}-of-{world:03d}.npz"


def write_shard(out: str | Path, plan: ShardPlan, meta: dict, parts: list[PartState]) -> Path:
    """The shard's parts as one .npz (arrays, plus the JSON meta), renamed into place when complete."""
    path = shard_file(out, plan.rank, plan.world)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"p{k}.{name}": a for k, p in enumerate(parts) for name, a in p.arrays.items()}
    doc = {**meta, "rank": plan.rank, "world": plan.world, "token": plan.token, "parts": [p.meta for p in parts]}
    with atomic_open(path) as f:
        np.savez(f, meta=np.array(json.dumps(doc)), **arrays)
    return path


def read_shard(path: Path) -> tuple[dict, list[PartState]]:
    with np.load(path, allow_pickle=False) as z:
        doc = json.loads(str(z["meta"]))
        arrays = {name: z[name] for name in z.files if name != "meta"}
    parts = []
    for k, meta in enumerate(doc.pop("parts")):
        prefix = f"p{k}."
        parts.append(PartState({**meta, "rank": doc["rank"]},
                               {n[len(prefix):]: a for n, a in arrays.items() if n.startswith(prefix)}))
    return doc, parts


def collect(out: str | Path, plan: ShardPlan, processes: list, timeout_s: float) -> tuple[dict, dict[int, str], bool]:
    """({rank: (meta, parts)} of shards 1..world-1, {rank: why} of those missing, interrupted?). Spawned workers
    are joined first; torchrun ranks are waited for by their file (at most `timeout_s`; torchrun ends all ranks if
    one fails). A Ctrl-C here stops the waiting: the workers got it too and leave what they have, as shard 0 did."""
    shards, missing, interrupted = {}, {}, False
    try:
        for p in processes:
            p.join()
    except KeyboardInterrupt:
        interrupted = True
        for p in processes:
            p.join(timeout=60)
        stop_workers(processes)
    deadline = time.monotonic() + timeout_s
    for rank in range(1, plan.world):
        path = shard_file(out, rank, plan.world)
        while True:
            found = read_shard(path) if path.exists() else None
            if found is not None and found[0]["token"] == plan.token:
                shards[rank] = found
                break
            if processes or interrupted or time.monotonic() > deadline:
                missing[rank] = f"exit code {processes[rank - 1].exitcode}" if processes else \
                    "interrupted" if interrupted else f"none within {timeout_s:g} s"
                break
            try:
                time.sleep(POLL_S)
            except KeyboardInterrupt:
                interrupted = True
    return shards, missing, interrupted


def start_workers(target, job, plan: ShardPlan, out: str | Path) -> list:
    """Shards 1..world-1 as spawned processes running `target(job, plan, out, threads)`."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=(job, p, str(out), threads_per_shard(plan.world)), name=f"shard-{p.rank}")
             for p in worker_plans(plan)]
    for p in procs:
        p.start()
    return procs


def stop_workers(processes: list) -> None:
    for p in processes:
        if p.is_alive():
            p.terminate()
        p.join()


def threads_per_shard(world: int) -> int:
    """OMP_NUM_THREADS when set, else the machine's cores shared out: N workers with all cores each would
    spend their time switching (torch's default is one thread per core, in every process)."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else max(1, (os.cpu_count() or 1) // world)


def use_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def pick_gpu(plan: ShardPlan) -> None:
    """Each shard of a machine on its own GPU (by local rank) when there are several; 'cuda' then means it."""
    import torch

    if plan.world > 1 and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        torch.cuda.set_device(plan.local_rank % torch.cuda.device_count())
