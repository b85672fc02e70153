"""The one training loop: scene training, distillation and fitting are configurations of it.

What differs between them plugs in (see :func:`~neuralfields.loop.build.make_loop`):

- a **model** that owns what is trained: ``param_groups``, ``training_hooks`` (run before every
  step: a sampler's own cadence), ``state_dict`` / ``load_state_dict`` for checkpoints;
- a **batch source** ``next(n, progress) -> batch`` (image rays, a teacher's cameras, samples of
  a signal; ``progress`` in [0, 1] is how far the run is) and ``observe(batch, errors)``, which
  learns from per-example errors (:mod:`neuralfields.selection` chooses by them) or ignores them;
- an **objective** ``(batch, step) -> StepResult``: renders or queries the model and returns
  the loss (it puts its modules in training mode), and ``param_groups(lr)`` of its own.

The loop itself composes the schedule, the adaptive batch size (:mod:`.schedules`), the
validation and checkpoint cadences (:mod:`.cadence`), the checkpoint contents (:mod:`.state`)
and the torchrun specifics (:mod:`.ranks`); it keeps the progress bar, metrics, resume and the
time budget.

Under ``torchrun`` (:mod:`neuralfields.distributed`) the loop is data parallel: each rank draws
its own batch, gradients are averaged over ranks before every optimiser step (one flat
all-reduce; objectives call fields directly, so there is no ``DistributedDataParallel`` forward
to hook), the batch size adapts to the ranks' mean sample count so it stays identical, and
training time is rank 0's clock. Stats are those of the global batch (ray and sample counts
summed, everything else averaged over ranks). Only rank 0 shows progress, validates and writes
the run folder; every rank reads the same checkpoint to resume.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import Tensor
from tqdm import tqdm

from .. import distributed
from ..run.folder import RunFolder
from .cadence import Checkpoints, Validation
from .ranks import global_stats, join_ranks
from .schedules import BatchSize, run_progress
from .state import restore_training, training_state


@dataclass
class StepResult:
    """What an objective returns for one batch.

    Attributes:
        loss: scalar to minimise (no optimiser step when it carries no gradient).
        stats: numbers for the progress bar and ``metrics.jsonl`` (``loss`` and ``psnr`` at least);
            0-d tensors may stay on the device: the loop reads them only when it shows or logs them.
        n_samples: samples the batch used (drives the adaptive batch size), None for fixed batches.
        errors: ``[B]`` detached per-example errors for the batch source, or None.
    """

    loss: Tensor
    stats: dict[str, float]
    n_samples: int | None = None
    errors: Tensor | None = None


class BatchSource(Protocol):
    def next(self, n: int, progress: float) -> Any: ...

    def observe(self, batch: Any, errors: Tensor) -> None: ...


class Objective(Protocol):
    def __call__(self, batch: Any, step: int) -> StepResult: ...

    def param_groups(self, lr: float) -> list[dict]: ...


class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class Trainable(Stateful, Protocol):
    num_parameters: int

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]: ...

    def training_hooks(self) -> list[Callable[[int], None]]: ...


@dataclass
class Part:
    """Extra state a checkpoint holds under its own name (a hard-example pool, an error map).

    ``required``: a checkpoint without it cannot be resumed (else the part starts afresh);
    ``kind`` names the run kind in the refusal ("not a distillation checkpoint")."""

    state: Stateful
    required: bool = True
    kind: str = ""


SHOW_EVERY = 10  # steps between progress-bar figures: each read of a device value waits for the device


def host_stats(stats: dict) -> dict:
    """``stats`` with tensors read into Python numbers (one wait for the device per tensor)."""
    return {k: v.item() if isinstance(v, Tensor) else v for k, v in stats.items()}


class TrainLoop:
    """Optimises ``optimizer``'s parameters on batches of ``source`` scored by ``objective``.

    Args:
        model: what a checkpoint saves and restores.
        optimizer: over the trainable parameters; each group's ``lr`` is its base rate.
        source, objective: see the module docstring.
        schedule: ``(step, seconds) -> factor`` applied to every group's base rate.
        batch: the batch size (adaptive or fixed).
        settings: step budget, time budget, log cadence, label (a :class:`LoopConfig`).
        hooks: ``(step) -> None`` run before each step (the model's training hooks).
        validation, checkpoints: the cadences (:mod:`.cadence`).
        summarize: ``(summary) -> summary`` adds figures to the final summary.
        parts: named extra state saved in checkpoints.
        run: the run folder, or None to write nothing; config: written to its ``config.json``.
    """

    def __init__(self, model: Stateful, optimizer: torch.optim.Optimizer, source: BatchSource, objective: Objective,
                 schedule: Callable[[int, float], float], batch: BatchSize, settings, hooks: list[Callable[[int], None]],
                 validation: Validation, checkpoints: Checkpoints, summarize: Callable[[dict], dict] | None = None,
                 parts: dict[str, Part] | None = None, run: RunFolder | None = None, config: dict | None = None,
                 num_parameters: int = 0, progress: bool = True, log: Callable[[str], None] = print):
        self.model, self.optimizer, self.source, self.objective = model, optimizer, source, objective
        self.schedule, self.batch, self.settings, self.hooks = schedule, batch, settings, list(hooks)
        self.validation, self.checkpoints, self.summarize = validation, checkpoints, summarize
        self.parts = dict(parts or {})
        self.run, self.config, self.num_parameters = run, config or {}, num_parameters
        self.progress, self.log = progress, log
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.step = 0
        self.train_seconds = 0.0
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

    @property
    def validations(self) -> list[dict]:
        """Every validation so far, with its step and training seconds."""
        return self.validation.results

    def _say(self, text: str) -> None:
        if self.main:
            self.log(text)

    def state_dict(self) -> dict:
        counters = {"step": self.step, "n_rays": self.batch.n, "train_seconds": self.train_seconds}
        return training_state(self.model, self.optimizer, counters, self.config, self.parts)

    def load_state(self, path: Path, state: dict) -> None:
        """Restore training from checkpoint ``state`` (read from ``path``, named in errors)."""
        restore_training(path, state, self.model, self.optimizer, self.parts)
        self.step, self.batch.n = int(state["step"]), int(state["n_rays"])
        self.train_seconds = float(state.get("train_seconds", 0.0))

    def resume(self) -> bool:
        """Continue from the newest good checkpoint of the run folder; False when there is none."""
        found = self.checkpoints.newest()
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
        return self.checkpoints.save(self.step, self.state_dict) if self.main else None

    # ------------------------------------------------------------------------------- training
    def set_learning_rates(self) -> None:
        """Each parameter group's base rate times the schedule at this step and training time."""
        factor = self.schedule(self.step, self.train_seconds)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor

    def train_step(self) -> dict[str, float]:
        """One optimisation step; returns its stats (plus ``n_rays`` and ``n_samples``)."""
        self.set_learning_rates()
        for hook in self.hooks:
            hook(self.step)
        batch = self.source.next(self.batch.n, self.completed)
        out = self.objective(batch, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        if out.loss.requires_grad and out.n_samples != 0:
            out.loss.backward()
        if distributed.average_gradients(self.params):  # every rank steps, or none does
            self.optimizer.step()
        if out.errors is not None:
            self.source.observe(batch, out.errors)
        stats = {**out.stats, "n_rays": len(batch)}
        if out.n_samples is not None:
            stats["n_samples"] = out.n_samples
        n_samples = out.n_samples
        if distributed.active():
            stats = global_stats(stats)
            # Adapt to the ranks' mean: per-rank batch sizes must stay equal or the ranks diverge.
            n_samples = None if n_samples is None else stats["n_samples"] / distributed.world_size()
        self.batch.adapt(n_samples)
        self.step += 1
        return stats

    def join_ranks(self) -> None:
        """Under torchrun: every rank starts from rank 0's parameters with a stream of its own."""
        join_ranks(self.params, self.settings.seed, self.step)

    def validate(self) -> dict:
        """Validate now; the result is stamped with the step and training time and kept."""
        return self.validation(self.step, self.train_seconds)

    def _log(self, row: dict) -> None:
        if self.run is not None and self.main:
            self.run.log(row)

    def _log_validation(self, result: dict) -> None:
        self._log({"step": self.step, "time": self.train_seconds, "split": "val",
                   "val_psnr": result["psnr"], "val_ssim": result.get("ssim", float("nan"))})

    def fit(self) -> dict:
        """Train to ``settings.steps`` (or the time budget), validating and checkpointing on the way."""
        c = self.settings
        main = self.main
        if self.run is not None and main:
            self.run.write_config(self.config)
        bar = tqdm(total=c.steps, initial=self.step, desc=c.desc, disable=not (self.progress and main),
                   dynamic_ncols=True, mininterval=0.5)
        stats = {"loss": float("nan"), "psnr": float("nan")}
        validating = self.validation.validate is not None
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
                logged = self.step % c.log_every == 0 or self.step == c.steps
                if logged or self.step % SHOW_EVERY == 0:
                    stats = host_stats(stats)
                    postfix = {"loss": f"{stats['loss']:.4f}", "psnr": f"{stats['psnr']:.2f}", "batch": stats["n_rays"]}
                    if self.validation.last:
                        postfix["val"] = f"{self.validation.last['psnr']:.2f}"
                    bar.set_postfix(postfix, refresh=False)
                if logged:
                    self._log({"step": self.step, "time": self.train_seconds, **stats})
                if validating and main and self.step < c.steps and self.validation.every.due(self.step):
                    self._log_validation(self.validate())
                if self.checkpoints.every.due(self.step):
                    self.save()
        except KeyboardInterrupt:
            path = self.save()
            bar.close()
            if path is not None:
                self._say(f"interrupted at step {self.step}; checkpoint saved to {path} (continue with --resume)")
            raise
        except distributed.RankStopped as exc:
            bar.close()
            raise distributed.RankStopped(f"{exc}; last checkpoint: {self.checkpoints.last_path()}") from None
        bar.close()
        self.save()
        stats = host_stats(stats)
        summary = {"steps": self.step, "train_seconds": self.train_seconds, "final_loss": stats["loss"],
                   "final_train_psnr": stats["psnr"], "num_parameters": self.num_parameters}
        if not main:  # rank 0 validates and writes the summary
            self.summary = summary
            return summary
        if validating:
            final = self.validate()
            summary.update(val_psnr=final["psnr"], val_ssim=final.get("ssim", float("nan")))
            self._log_validation(final)
        if self.summarize is not None:
            summary = self.summarize(summary)
        if self.run is not None:
            self.run.write_summary(summary)
        self.summary = summary
        return summary
