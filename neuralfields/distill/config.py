"""Typed settings of a distillation run (``--set distill.KEY=VALUE`` on the command line).

Defaults follow PVD (Fang et al., AAAI 2023) and PVD-AL (Fang et al., 2023) where the papers
and their released code give numbers, translated to this project's losses:

- stage lengths: PVD's code spends 2,000 of 30,000 steps on the features and the next 3,000
  on density and colour (``stage_iters = {stage1: 2000, stage2: 5000}``), i.e. 1/15 and 1/10 of
  the budget; ``None`` here means those fractions of ``train.steps``;
- loss weights: PVD weights the feature, density and colour terms 0.002 against 1.0 for the
  pixels, on *batch norms* ``||a - b||_2`` over tens of thousands of samples. Our terms are
  per-element means (and the feature term is normalised by the teacher's feature variance), so
  the weights below are the equivalents on that scale, chosen on the demo scene (docs/distill.md);
- density clamp: PVD clamps the pre-activation density to ``[-2, 7]`` for its step size; ``None``
  derives the same bounds from this run's render step (invisible to opaque, see
  :func:`~neuralfields.distill.losses.default_density_clamp`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..config import apply_overrides
from ..errors import NeuralFieldsError

# PVD's code: stage 1 ends at 2,000 and stage 2 at 5,000 of 30,000 steps.
PVD_FEATURE_FRACTION = 2000 / 30000
PVD_FIELD_FRACTION = 3000 / 30000


@dataclass
class StageWeights:
    """Loss weights of one stage; a zero weight skips the term."""

    feature: float = 0.0  # per-sample geometry features (through the projection), variance-normalised MSE
    density: float = 0.0  # per-sample raw (log) density, clamped, Huber
    color: float = 0.0  # per-sample colour, MSE
    rgb: float = 0.0  # rendered pixels, MSE


@dataclass
class PoseConfig:
    """How distillation cameras are drawn around the scene."""

    sampler: str = "auto"  # auto | shell | interpolate | training (see distill.poses.POSE_SAMPLERS)
    cameras_per_step: int = 8  # poses whose pixels share one batch
    train_view_fraction: float = 0.25  # share of those poses that are exact training poses
    elevation_margin_deg: float = 5.0  # widen the training elevation range by this much on both sides
    radius_margin: float = 0.05  # widen the training distance range by this fraction


@dataclass
class ActiveConfig:
    """PVD-AL's three levels of active learning (``--active-learning``)."""

    enabled: bool = False
    # View level: the worst poses (student-vs-teacher PSNR) are revisited, jittered.
    hard_pose_fraction: float = 0.25  # share of each step's poses taken from the hard-pose pool
    pose_pool_size: int = 32
    pose_jitter_deg: float = 5.0  # std of the rotation about the scene centre
    pose_jitter_radius: float = 0.05  # std of the relative change of distance
    # Ray level: the rays with the largest error are replayed.
    hard_ray_fraction: float = 0.1  # top share of each batch's rays (by error) put in the pool
    ray_replay_fraction: float = 0.2  # share of each batch drawn from the pool
    ray_pool_size: int = 16384
    # Sample level: per-sample colour and feature losses only on the samples that carry this
    # share of the teacher's rendering weight (density keeps all samples: empty space must stay empty).
    sample_weight_mass: float = 0.99


@dataclass
class DistillConfig:
    feature_steps: int | None = None  # stage 1 length; None: 1/15 of train.steps (PVD)
    field_steps: int | None = None  # stage 2 length; None: 1/10 of train.steps (PVD)
    feature_stage: StageWeights = field(default_factory=lambda: StageWeights(feature=1.0))
    field_stage: StageWeights = field(default_factory=lambda: StageWeights(feature=1.0, density=1.0, color=1.0))
    # PVD's code trains the last stage on pixels alone; keeping the per-sample density and colour
    # terms converged much faster here (docs/distill.md, "Weights versus the papers").
    render_stage: StageWeights = field(default_factory=lambda: StageWeights(density=1.0, color=1.0, rgb=1.0))
    density_clamp: list[float] | None = None  # [low, high] on raw density; None: from the render step
    projection: str = "auto"  # auto | linear | identity (student features -> teacher features)
    inherit_color_head: bool = True  # copy the teacher's colour head where the architectures match
    freeze_inherited: bool = False  # keep an inherited colour head fixed
    poses: PoseConfig = field(default_factory=PoseConfig)
    active: ActiveConfig = field(default_factory=ActiveConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def stage_lengths(self, steps: int) -> tuple[int, int]:
        """``(feature, field)`` stage lengths for a budget of ``steps``."""
        s1 = self.feature_steps if self.feature_steps is not None else round(steps * PVD_FEATURE_FRACTION)
        s2 = self.field_steps if self.field_steps is not None else round(steps * PVD_FIELD_FRACTION)
        return int(s1), int(s2)

    def validate(self) -> "DistillConfig":
        """Reject values the distiller cannot use (after ``--set``), naming the key."""
        for key in ("feature_steps", "field_steps"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise NeuralFieldsError(f"distill.{key}: expected a non-negative integer or null, got {value!r}")
        for stage in ("feature_stage", "field_stage", "render_stage"):
            if not isinstance(getattr(self, stage), StageWeights):
                raise NeuralFieldsError(f"distill.{stage}: set its weights one by one, e.g. distill.{stage}.rgb=1")
            for f in dataclasses.fields(StageWeights):
                value = getattr(getattr(self, stage), f.name)
                if not isinstance(value, (int, float)) or value < 0:
                    raise NeuralFieldsError(f"distill.{stage}.{f.name}: expected a non-negative number, got {value!r}")
        if self.density_clamp is not None:
            c = self.density_clamp
            if not (isinstance(c, list) and len(c) == 2 and all(isinstance(v, (int, float)) for v in c) and c[0] < c[1]):
                raise NeuralFieldsError(f"distill.density_clamp: expected [low, high] with low < high, got {c!r}")
        for key, cls in (("poses", PoseConfig), ("active", ActiveConfig)):
            if not isinstance(getattr(self, key), cls):
                raise NeuralFieldsError(f"distill.{key}: set its values one by one, e.g. distill.{key}.KEY=VALUE")
        fractions = {"poses.train_view_fraction": self.poses.train_view_fraction,
                     "active.hard_pose_fraction": self.active.hard_pose_fraction,
                     "active.hard_ray_fraction": self.active.hard_ray_fraction,
                     "active.ray_replay_fraction": self.active.ray_replay_fraction,
                     "active.sample_weight_mass": self.active.sample_weight_mass}
        for key, value in fractions.items():
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise NeuralFieldsError(f"distill.{key}: expected a fraction in [0, 1], got {value!r}")
        counts = {"poses.cameras_per_step": self.poses.cameras_per_step, "active.pose_pool_size": self.active.pose_pool_size,
                  "active.ray_pool_size": self.active.ray_pool_size}
        for key, value in counts.items():
            if not isinstance(value, int) or value < 1:
                raise NeuralFieldsError(f"distill.{key}: expected a positive integer, got {value!r}")
        return self


def apply_distill_overrides(cfg: DistillConfig, assignments: list[str]) -> DistillConfig:
    """Apply ``distill.KEY=VALUE`` items (the ``distill.`` prefix already removed or not)."""
    for item in assignments:
        stripped = item[len("distill."):] if item.startswith("distill.") else item
        try:
            apply_overrides(cfg, [stripped])
        except NeuralFieldsError:
            raise NeuralFieldsError(f"--set {item}: unknown distillation setting (see docs/distill.md)") from None
    return cfg
