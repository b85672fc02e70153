"""The one factory of training runs: scene training, distillation and 2D fitting all call
:func:`make_loop` with their own model, batch source and objective."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..config import TrainConfig
from ..run.folder import RunFolder
from ..speed import fused_adam
from .cadence import Checkpoints, Every, Validation
from .core import BatchSource, Objective, Part, TrainLoop, Trainable
from .schedules import BatchSize, StepDecay


@dataclass
class LoopConfig:
    """Everything :func:`make_loop` needs besides the run's parts.

    Attributes:
        steps: the step budget; time_budget: seconds of training, then the run stops.
        lr, weight_decay, adam_beta2: the optimiser (each group's base rate comes from ``lr``).
        schedule: ``(step, seconds) -> factor`` of the base rates; batch: the batch size.
        log_every, eval_every, eval_steps, checkpoint_every: cadences (0: never; validation and a
            checkpoint also end every run).
        seed: the run's seed (other ranks derive theirs); desc: the progress bar's label.
        record: what ``config.json`` records (the run's full config).
    """

    steps: int
    lr: float
    schedule: Callable[[int, float], float]
    batch: BatchSize
    weight_decay: float = 0.0
    adam_beta2: float = 0.999
    time_budget: float | None = None
    log_every: int = 50
    eval_every: int = 0
    eval_steps: set[int] = field(default_factory=set)
    checkpoint_every: int = 0
    seed: int = 0
    desc: str = "train"
    record: dict = field(default_factory=dict)


def adam(groups: list[dict], beta2: float) -> torch.optim.Adam:
    """Every trainer's Adam; eps 1e-15 as instant-ngp (grid cells see tiny gradients). Fused (one
    kernel for every parameter) when all of them are on CUDA (:func:`neuralfields.speed.fused_adam`)."""
    if fused_adam(groups):
        return torch.optim.Adam(groups, eps=1e-15, betas=(0.9, beta2), fused=True)
    return torch.optim.Adam(groups, eps=1e-15, betas=(0.9, beta2))


def trainable_groups(groups: list[dict]) -> list[dict]:
    """``groups`` without frozen parameters (``requires_grad`` False); groups left empty go."""
    kept = []
    for group in groups:
        params = [p for p in group["params"] if p.requires_grad]
        if params:
            kept.append({**group, "params": params})
    return kept


def scene_loop_config(t: TrainConfig, samples_per_ray: int, desc: str = "train", record: dict | None = None) -> LoopConfig:
    """The loop settings of a run that renders rays (scene training, distillation) from its train
    config. Until an occupancy grid has culled anything every ray marches the whole box (about
    ``samples_per_ray`` samples): the first batches start with a ray count that keeps them near the
    sample target, and the count adapts from there."""
    rays = min(t.init_rays, max(256, t.target_samples // max(samples_per_ray, 1)))
    return LoopConfig(t.steps, t.lr, StepDecay(t.steps, t.warmup_steps, t.decay_milestones, t.decay_gamma, t.time_budget),
                      BatchSize(rays, t.target_samples, 256, t.max_rays), t.weight_decay, t.adam_beta2, t.time_budget,
                      eval_every=t.eval_every, checkpoint_every=t.checkpoint_every, seed=t.seed, desc=desc,
                      record=record or {})


def make_loop(config: LoopConfig, model: Trainable, source: BatchSource, objective: Objective, run: RunFolder | None,
              validate: Callable[[], dict] | None = None, summarize: Callable[[dict], dict] | None = None,
              parts: dict[str, Part] | None = None, hooks: list[Callable[[int], None]] | None = None,
              progress: bool = True, log: Callable[[str], None] = print) -> TrainLoop:
    """Build the loop of any run: Adam over the model's and the objective's trainable parameter
    groups, hooks before every step (default: the model's training hooks), the schedule and batch
    size of ``config``, validation (``validate() -> {"psnr", "ssim", ...}``) and checkpoints (into
    ``run``; None writes nothing) at its cadences; ``parts`` add named state to the checkpoints."""
    c = config
    groups = trainable_groups(model.param_groups(c.lr, c.weight_decay) + objective.param_groups(c.lr))
    hooks = model.training_hooks() if hooks is None else hooks
    return TrainLoop(model, adam(groups, c.adam_beta2), source, objective, c.schedule, c.batch, c, hooks,
                     Validation(validate, Every(c.eval_every, set(c.eval_steps))), Checkpoints(run, Every(c.checkpoint_every)),
                     summarize, parts, run, c.record, model.num_parameters, progress, log)
