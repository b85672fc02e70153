"""The one training loop: scene training (:mod:`neuralfields.train`), distillation
(:mod:`neuralfields.distill`) and 2D fitting (:mod:`neuralfields.fit`) are configurations of it.

The loop owns what every kind of training shares: the learning-rate schedule, the adaptive
batch size, hooks that run before each step (a sampler's own update cadence), the progress bar,
periodic evaluation, metrics, atomic checkpoints, resume and the time budget. What differs
plugs in:

- a **batch source** ``next(n, progress) -> batch`` (image rays, a teacher's cameras, pixels of
  a 2D signal; ``progress`` in [0, 1] is how far the run is), optionally ``observe(batch,
  errors)`` to learn from per-example errors (:mod:`neuralfields.selection` chooses by them);
- an **objective** ``(batch, step) -> StepResult``: renders or queries the field and returns
  the loss (it also puts its modules in training mode).

Sources and objectives with state (hard-example pools, projections) are checkpointed through
``parts``: named objects with ``state_dict`` / ``load_state_dict``.

Under ``torchrun`` (:mod:`neuralfields.distributed`) the loop is data parallel: each rank draws
its own batch, gradients are averaged over ranks before every optimiser step (one flat
all-reduce; objectives call fields directly, so there is no ``DistributedDataParallel`` forward
to hook), the batch size adapts to the ranks' mean sample count so it stays identical, and
training time is rank 0's clock. Stats are those of the global batch (ray and sample counts
summed, everything else averaged over ranks). Only rank 0 shows progress, evaluates and writes
the run folder; every rank reads the same checkpoint to resume.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from . import distributed
from .config import TrainConfig
from .errors import NeuralFieldsError
from .run.checkpoints import latest_checkpoint, list_checkpoints
from .run.folder import RunFolder


@dataclass
class StepResult:
    """What an objective returns for one batch.

    Attributes:
        loss: scalar to minimise (no optimiser step when it carries no gradient).
        stats: numbers for the progress bar and ``metrics.jsonl`` (``loss`` and ``psnr`` at least).
        n_samples: samples the batch used (drives the adaptive batch size), None for fixed batches.
        errors: ``[B]`` detached per-example errors for the batch source, or None.
    """

    loss: Tensor
    stats: dict[str, float]
    n_samples: int | None = None
    errors: Tensor | None = None


class BatchSource(Protocol):
    def next(self, n: int, progress: float) -> Any: ...


class Objective(Protocol):
    def __call__(self, batch: Any, step: int) -> StepResult: ...


class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class BatchSize:
    """Examples per batch; with ``target_samples`` it adapts so a batch carries about that many
    samples (as nerfacc does), which keeps the step cost steady while an occupancy grid sharpens."""

    n: int
    target_samples: int | None = None
    low: int = 256
    high: int = 1 << 30

    def adapt(self, n_samples: int | None) -> None:
        if self.target_samples and n_samples:
            self.n = int(min(self.high, max(self.low, self.n * self.target_samples / n_samples)))


def run_progress(step: int, steps: int, seconds: float = 0.0, time_budget: float | None = None) -> float:
    """How far a run is, in [0, 1]: the larger of ``step / steps`` and, with a time budget,
    ``seconds / time_budget`` (a run cut short by its budget still reaches the end of its schedules)."""
    progress = step / max(steps, 1)
    if time_budget:
        progress = max(progress, seconds / time_budget)
    return min(progress, 1.0)


class StepDecay:
    """Linear warm-up, then a step decay at fractions of the run (:func:`run_progress`)."""

    def __init__(self, steps: int, warmup_steps: int = 0, milestones: list[float] = (), gamma: float = 1.0,
                 time_budget: float | None = None):
        self.steps, self.warmup, self.milestones, self.gamma = steps, warmup_steps, list(milestones), gamma
        self.time_budget = time_budget

    def __call__(self, step: int, seconds: float = 0.0) -> float:
        warm = min(1.0, (step + 1) / max(self.warmup, 1))
        progress = run_progress(step, self.steps, seconds, self.time_budget)
        return warm * self.gamma ** sum(progress >= m for m in self.milestones)


class ExponentialDecay:
    """Exponential decay from 1 at step 0 to ``final`` at the last step."""

    def __init__(self, steps: int, final: float):
        self.steps, self.final = steps, final

    def __call__(self, step: int, seconds: float = 0.0) -> float:
        return self.final ** (step / max(self.steps - 1, 1))


@dataclass
class LoopConfig:
    steps: int
    time_budget: float | None = None  # seconds of training; the run stops when exceeded
    log_every: int = 50  # rows in metrics.jsonl
    eval_every: int = 0  # periodic evaluation (0: only at the end)
    eval_steps: set[int] = field(default_factory=set)  # extra evaluation steps (benchmarks)
    checkpoint_every: int = 0
    seed: int = 0
    desc: str = "train"


def step_decay(t: TrainConfig) -> StepDecay:
    """The learning-rate schedule a run config describes."""
    return StepDecay(t.steps, t.warmup_steps, t.decay_milestones, t.decay_gamma, t.time_budget)


def adam(groups: list[dict], beta2: float) -> torch.optim.Adam:
    """Every trainer's Adam; eps 1e-15 as instant-ngp (grid cells see tiny gradients)."""
    return torch.optim.Adam(groups, eps=1e-15, betas=(0.9, beta2))


def loop_config(t: TrainConfig, desc: str = "train") -> LoopConfig:
    return LoopConfig(t.steps, t.time_budget, eval_every=t.eval_every, checkpoint_every=t.checkpoint_every,
                      seed=t.seed, desc=desc)


def ray_batch_size(t: TrainConfig, sampler) -> BatchSize:
    """Adaptive ray count for rendering objectives. Until an occupancy grid has culled anything
    every ray marches the whole box (about half a diagonal of samples): start with a ray count
    that keeps the first batches near the target."""
    n = min(t.init_rays, max(256, t.target_samples // sampler.initial_samples_per_ray))
    return BatchSize(n, t.target_samples, 256, t.max_rays)


COUNTS = ("n_rays", "n_samples")  # stats summed over ranks (the rest are averaged)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


class TrainLoop:
    """Optimises ``optimizer``'s parameters on batches of ``source`` scored by ``objective``.

    Args:
        model: what a checkpoint saves and restores (``state_dict`` / ``load_state_dict``).
        optimizer: over the trainable parameters; each group's ``lr`` is its base rate.
        source, objective: see the module docstring.
        schedule: ``(step, seconds) -> factor`` applied to every group's base rate.
        batch: the batch size (adaptive or fixed).
        cfg: step budget, evaluation and checkpoint cadence.
        before_step: hooks ``(step) -> None`` run before each step (a sampler's update).
        evaluate: ``() -> {"psnr", "ssim", ...}`` on held-out data, or None.
        summarize: ``(summary) -> summary`` adds figures to the final summary.
        parts: named extra state saved in checkpoints (and required when resuming).
        run: the run folder, or None to write nothing; config: written to its ``config.json``.
    """

    def __init__(self, model: Stateful, optimizer: torch.optim.Optimizer, source: BatchSource, objective: Objective,
                 schedule: Callable[[int, float], float], batch: BatchSize, cfg: LoopConfig,
                 before_step: list[Callable[[int], None]] | None = None,
                 evaluate: Callable[[], dict] | None = None, summarize: Callable[[dict], dict] | None = None,
                 parts: dict[str, Stateful] | None = None, run: RunFolder | None = None, config: dict | None = None,
                 num_parameters: int = 0, progress: bool = True, log: Callable[[str], None] = print):
        self.model, self.optimizer, self.source, self.objective = model, optimizer, source, objective
        self.schedule, self.batch, self.settings = schedule, batch, cfg
        self.before_step = list(before_step or [])
        self.evaluator, self.summarize, self.parts = evaluate, summarize, dict(parts or {})
        self.run, self.config, self.num_parameters = run, config or {}, num_parameters
        self.progress, self.log = progress, log
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.step = 0
        self.train_seconds = 0.0
        self.last_eval: dict | None = None
        self.evaluations: list[dict] = []  # every evaluation, with its step and training seconds
        self.summary: dict | None = None

    # ----------------------------------------------------------------------------------- state
    @property
    def n_rays(self) -> int:
        return self.batch.n

    @property
    def completed(self) -> float:
        """How far the run is (:func:`run_progress` of its step and training time)."""
        c = self.settings
        return run_progress(self.step, c.steps, self.train_seconds, c.time_budget)

    @property
    def main(self) -> bool:
        """Whether this process shows progress and writes files (rank 0, or the only process)."""
        return distributed.is_main()

    def _say(self, text: str) -> None:
        if self.main:
            self.log(text)

    def state_dict(self) -> dict:
        state = {**self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
                 "n_rays": self.batch.n, "train_seconds": self.train_seconds, "rng": torch.get_rng_state(),
                 "config": self.config}
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        for name, part in self.parts.items():
            state[name] = part.state_dict()
        return state

    def load_state(self, path: Path, state: dict) -> None:
        """Restore training from checkpoint ``state`` (read from ``path``, named in errors)."""
        # Parts marked ``required = False`` (an error map) start afresh when a checkpoint lacks them.
        missing = [name for name, part in self.parts.items() if name not in state and getattr(part, "required", True)]
        if missing:
            kind = getattr(self.parts[missing[0]], "kind", missing[0])
            raise NeuralFieldsError(f"{path}: not a {kind} checkpoint; cannot resume it as one")
        try:
            self.model.load_state_dict(state)
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise NeuralFieldsError(f"{path}: checkpoint does not match this run ({first})") from None
        self.step, self.batch.n = int(state["step"]), int(state["n_rays"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        torch.set_rng_state(state["rng"].cpu())
        if "cuda_rng" in state and torch.cuda.is_available() and len(state["cuda_rng"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        for name, part in self.parts.items():
            if name in state:
                part.load_state_dict(state[name])

    def resume(self) -> bool:
        """Continue from the newest good checkpoint of the run folder; False when there is none."""
        found = None if self.run is None else latest_checkpoint(self.run.path)
        if found is None:
            if self.run is not None:
                self._say(f"{self.run.path}: no checkpoint to resume from; starting from scratch")
            return False
        path, state = found
        self.load_state(path, state)
        self._say(f"resumed from {path} at step {self.step}")
        return True

    def save(self) -> Path | None:
        """Write a checkpoint (rank 0 only: the ranks are identical); its path, or None."""
        if self.run is None or not self.main:
            return None
        return self.run.save_checkpoint(self.step, self.state_dict())

    def last_checkpoint(self) -> str:
        """The newest checkpoint file of the run folder, for messages."""
        found = [] if self.run is None else list_checkpoints(self.run.path)
        return str(found[-1]) if found else "none"

    # ------------------------------------------------------------------------------- training
    def set_learning_rates(self) -> None:
        """Each parameter group's base rate times the schedule at this step and training time."""
        factor = self.schedule(self.step, self.train_seconds)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor

    def train_step(self) -> dict[str, float]:
        """One optimisation step; returns its stats (plus ``n_rays`` and ``n_samples``)."""
        self.set_learning_rates()
        for hook in self.before_step:
            hook(self.step)
        batch = self.source.next(self.batch.n, self.completed)
        out = self.objective(batch, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        if out.loss.requires_grad and out.n_samples != 0:
            out.loss.backward()
        if distributed.average_gradients(self.params):  # every rank steps, or none does
            self.optimizer.step()
        if out.errors is not None and hasattr(self.source, "observe"):
            self.source.observe(batch, out.errors)
        stats = {**out.stats, "n_rays": len(batch)}
        if out.n_samples is not None:
            stats["n_samples"] = out.n_samples
        n_samples = out.n_samples
        if distributed.active():
            stats = self.global_stats(stats)
            # Adapt to the ranks' mean: per-rank batch sizes must stay equal or the ranks diverge.
            n_samples = None if n_samples is None else stats["n_samples"] / distributed.world_size()
        self.batch.adapt(n_samples)
        self.step += 1
        return stats

    @staticmethod
    def global_stats(stats: dict[str, float]) -> dict[str, float]:
        """Stats of the global batch: :data:`COUNTS` summed over ranks, other numbers averaged
        (PSNR is the ranks' mean PSNR). Integers stay integers."""
        keys = sorted(stats)
        values = torch.tensor([float(stats[k]) for k in keys], dtype=torch.float64, device=distributed.device())
        distributed.all_reduce_mean([values])
        world = distributed.world_size()
        merged = {}
        for key, value in zip(keys, values.tolist()):
            value = value * world if key in COUNTS else value
            merged[key] = round(value) if isinstance(stats[key], int) else value
        return merged

    def join_ranks(self) -> None:
        """Start every rank from rank 0's parameters (fresh or resumed, they should agree already;
        this makes it so on any hardware) and give ranks other than 0 their own random streams so
        they draw different rays. Rank 0 keeps its stream: it draws what a single process would."""
        if not distributed.active():
            return
        with torch.no_grad():
            distributed.broadcast([p.data for p in self.params])
        if distributed.rank() > 0:
            seed_everything(distributed.rank_seed(self.settings.seed, distributed.rank(), self.step))

    def evaluate(self) -> dict:
        """Run the evaluator now; the result is stamped with the step and training time and kept."""
        if self.evaluator is None:
            return {}
        result = {**self.evaluator(), "step": self.step, "seconds": self.train_seconds}
        self.evaluations.append(result)
        return result

    def _log(self, row: dict) -> None:
        if self.run is not None and self.main:
            self.run.log(row)

    def _log_eval(self, result: dict) -> None:
        self._log({"step": self.step, "time": self.train_seconds, "split": "val",
                   "val_psnr": result["psnr"], "val_ssim": result.get("ssim", float("nan"))})

    def fit(self) -> dict:
        """Train to ``cfg.steps`` (or the time budget), evaluating and checkpointing on the way."""
        c = self.settings
        main = self.main
        if self.run is not None and main:
            self.run.write_config(self.config)
        bar = tqdm(total=c.steps, initial=self.step, desc=c.desc, disable=not (self.progress and main),
                   dynamic_ncols=True, mininterval=0.5)
        stats = {"loss": float("nan"), "psnr": float("nan")}
        try:
            self.join_ranks()
            while self.step < c.steps:
                if c.time_budget is not None and self.train_seconds >= c.time_budget:
                    self._say(f"time budget of {c.time_budget:.0f} s reached at step {self.step}")
                    break
                start = time.perf_counter()
                stats = self.train_step()
                # Rank 0's clock for all: time budgets and time-paced schedules must agree.
                self.train_seconds += distributed.broadcast_float(time.perf_counter() - start)
                bar.update(1)
                postfix = {"loss": f"{stats['loss']:.4f}", "psnr": f"{stats['psnr']:.2f}", "batch": stats["n_rays"]}
                if self.last_eval:
                    postfix["val"] = f"{self.last_eval['psnr']:.2f}"
                bar.set_postfix(postfix, refresh=False)
                if self.step % c.log_every == 0 or self.step == c.steps:
                    self._log({"step": self.step, "time": self.train_seconds, **stats})
                periodic = c.eval_every and self.step % c.eval_every == 0
                if self.evaluator is not None and main and self.step < c.steps and (periodic or self.step in c.eval_steps):
                    self.last_eval = self.evaluate()
                    self._log_eval(self.last_eval)
                if c.checkpoint_every and self.step % c.checkpoint_every == 0:
                    self.save()
        except KeyboardInterrupt:
            path = self.save()
            bar.close()
            if path is not None:
                self._say(f"interrupted at step {self.step}; checkpoint saved to {path} (continue with --resume)")
            raise
        except distributed.RankStopped as exc:
            bar.close()
            raise distributed.RankStopped(f"{exc}; last checkpoint: {self.last_checkpoint()}") from None
        bar.close()
        self.save()
        summary = {"steps": self.step, "train_seconds": self.train_seconds, "final_loss": stats["loss"],
                   "final_train_psnr": stats["psnr"], "num_parameters": self.num_parameters}
        if not main:  # rank 0 evaluates and writes the summary
            self.summary = summary
            return summary
        if self.evaluator is not None:
            final = self.evaluate()
            summary.update(val_psnr=final["psnr"], val_ssim=final.get("ssim", float("nan")))
            self._log_eval(final)
            self.last_eval = final
        if self.summarize is not None:
            summary = self.summarize(summary)
        if self.run is not None:
            self.run.write_summary(summary)
        self.summary = summary
        return summary
