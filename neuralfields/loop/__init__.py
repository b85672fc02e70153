"""The training loop every run is (scene training, distillation, fitting) and its one factory."""

from .build import LoopConfig, adam, make_loop, scene_loop_config, trainable_groups
from .cadence import Checkpoints, Every, Validation
from .core import BatchSource, Objective, Part, StepResult, TrainLoop
from .state import seed_everything
from .schedules import BatchSize, ExponentialDecay, StepDecay, run_progress

__all__ = ["BatchSize", "BatchSource", "Checkpoints", "Every", "ExponentialDecay", "LoopConfig", "Objective", "Part",
           "StepDecay", "StepResult", "TrainLoop", "Validation", "adam", "make_loop", "run_progress",
           "scene_loop_config", "seed_everything", "trainable_groups"]
