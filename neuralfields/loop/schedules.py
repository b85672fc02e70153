"""How a run's numbers change with its progress: the learning-rate factor and the batch size."""

from __future__ import annotations

from dataclasses import dataclass


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
    """Exponential decay from 1 at step 0 to ``final`` at the last step (or, with a time budget,
    at its end if that comes first: :func:`run_progress`)."""

    def __init__(self, steps: int, final: float, time_budget: float | None = None):
        self.steps, self.final, self.time_budget = steps, final, time_budget

    def __call__(self, step: int, seconds: float = 0.0) -> float:
        return self.final ** run_progress(step, self.steps - 1, seconds, self.time_budget)


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
