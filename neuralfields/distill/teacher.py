"""Loading a teacher run with one-line errors, and the run config of its student.

The student's run folder must work with every consumer of a trained run (``eval``, ``render``,
``export``, the viewer), so its ``config.json`` is the teacher's with the field replaced: same
data (eval reads the same val/test split), same render settings (the inherited occupancy grid
has the teacher's resolution), and the student field's recommended learning rate.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from ..config import FieldConfig, RunConfig, load_run_config
from ..errors import NeuralFieldsError, file_error
from ..fields import FIELDS, field_config
from ..scene_model import SceneInfo, SceneModel, load_model
from ..run.checkpoints import list_checkpoints, load_checkpoint


DISTILL_WARMUP_STEPS = 10


def _one_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_teacher(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[SceneModel, dict, Path]:
    """The newest readable checkpoint of a trained run: ``(model, checkpoint state, checkpoint path)``.

    Every problem (missing folder or config, unknown field, no or only unreadable checkpoints,
    a checkpoint that does not match the config) raises one :class:`NeuralFieldsError` line that
    names the file.
    """
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)  # names the folder or config.json on failure
    try:
        field_config(cfg.field.name, cfg.field.options)
    except NeuralFieldsError as exc:
        raise file_error(run_dir / "config.json", _one_line(exc)) from None
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        raise file_error(run_dir, "teacher run has no checkpoint in checkpoints/ (train it first)")
    first_error: NeuralFieldsError | None = None
    for path in reversed(checkpoints):
        try:
            load_checkpoint(path)
            break
        except NeuralFieldsError as exc:
            first_error = first_error or exc
    else:
        more = f" (and {len(checkpoints) - 1} older ones)" if len(checkpoints) > 1 else ""
        raise NeuralFieldsError(_one_line(first_error) + more)
    try:
        model, state = load_model(run_dir, path, device)
    except NeuralFieldsError as exc:
        raise NeuralFieldsError(_one_line(exc)) from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise file_error(path, f"incomplete neuralfields checkpoint (missing {_one_line(exc)})") from None
    model.field.eval()
    for p in model.field.parameters():
        p.requires_grad_(False)
    return model, state, path


def student_config(teacher_cfg: RunConfig, student: str, steps: int | None = None, output: str | None = None) -> RunConfig:
    """The student's run config: the teacher's data and render settings with field ``student``.

    The learning rate is the student field's recommended one (``lr`` in its options, as the MLP
    fields carry) or the trainer's default (1e-2, PVD's rate for grids); ``--set`` may override it.
    """
    if student not in FIELDS:
        raise NeuralFieldsError(f"--student: unknown field '{student}'; available: {', '.join(sorted(FIELDS))}")
    cfg = copy.deepcopy(teacher_cfg)
    cfg.field = FieldConfig(student, {})
    cfg.train.lr = getattr(field_config(student, {}), "lr", None) or 1e-2  # the trainer's grid default
    cfg.train.steps = steps or teacher_cfg.train.steps
    cfg.train.time_budget = None
    # The student follows a fixed target from the first step (PVD uses no warm-up); a short ramp
    # still protects Adam's first updates, while a training-length warm-up would cover stage 1.
    cfg.train.warmup_steps = min(cfg.train.warmup_steps, DISTILL_WARMUP_STEPS)
    # Rays of freshly drawn poses have no error map: replaying hard rays is PVD-AL's to switch on
    # (--active-learning), or --set train.selection's; the teacher's own selection does not carry over.
    cfg.train.selection = "uniform"
    cfg.output = output or f"runs/{teacher_cfg.scene}-{teacher_cfg.field.name}-to-{student}"
    return cfg


def check_student(cfg: RunConfig, info: SceneInfo) -> None:
    """Refuse a static student for a dynamic teacher (before anything is built)."""
    if info.dynamic and not FIELDS[cfg.field.name].cls.time_dependent:
        raise NeuralFieldsError(f"--student {cfg.field.name}: the teacher's scene is dynamic; "
                                "choose a time-dependent field (deform, kplanes)")
