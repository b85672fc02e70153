"""What the loop does differently under torchrun: ranks start alike and report one global batch."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import distributed
from .state import seed_everything

COUNTS = ("n_rays", "n_samples")  # stats summed over ranks (the rest are averaged)


def global_stats(stats: dict[str, float]) -> dict[str, float]:
    """Stats of the global batch: :data:`COUNTS` summed over ranks, other numbers averaged (PSNR is
    the ranks' mean PSNR). Integers stay integers."""
    keys = sorted(stats)
    values = torch.tensor([float(stats[k]) for k in keys], dtype=torch.float64, device=distributed.device())
    distributed.all_reduce_mean([values])
    world = distributed.world_size()
    merged = {}
    for key, value in zip(keys, values.tolist()):
        value = value * world if key in COUNTS else value
        merged[key] = round(value) if isinstance(stats[key], int) else value
    return merged


def join_ranks(params: list[Tensor], seed: int, step: int) -> None:
    """Start every rank from rank 0's ``params`` (fresh or resumed, they should agree already; this
    makes it so on any hardware) and give ranks other than 0 their own random streams so they draw
    different rays. Rank 0 keeps its stream: it draws what a single process would."""
    if not distributed.active():
        return
    with torch.no_grad():
        distributed.broadcast([p.data for p in params])
    if distributed.rank() > 0:
        seed_everything(distributed.rank_seed(seed, distributed.rank(), step))
