"""Fitting a signal (:mod:`.signals`: an image, audio, a video, a shape) with any registered field.

The field is built with ``in_dim`` = the signal's coordinate dimensions, ``out_dim`` = its
channels and ``view_dependent=False``; its value at a point ``x`` is
``field.color(x, None, field.raw_density(x)[1])``. Fitting is the shared training loop
(:mod:`neuralfields.loop`) with the signal's samples as the batch source: each step draws
``batch`` samples chosen by the selection (uniform, INT, error map; every sample is its own
error-map cell) or takes the whole signal, minimises the MSE with Adam and decays the learning
rate exponentially to ``lr_decay`` times its start (over the steps, or the time budget).
Fields with a data-dependent initialisation (``init_from_signal``) receive the sample points
weighted by the signal's gradient magnitude. The field's options are the signal's defaults for
that field (SIREN's first omega for audio, ...) under the caller's own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..atomic import write_json_atomic
from ..device import module_device
from ..fields import Field, build_field, resolved_options
from ..loop import BatchSize, ExponentialDecay, LoopConfig, Part, StepResult, make_loop, seed_everything
from ..run.folder import RunFolder
from ..run.metrics import psnr_of
from ..selection import IndexDraw, Selection, SelectionConfig
from .signals.base import Signal, merge_options


@dataclass
class FitConfig:
    steps: int = 2000
    batch: int = 0  # random samples per step; 0 or >= the signal's size: the whole signal every step
    lr: float | None = None  # None: the field's recommended rate (its config's ``lr``)
    lr_decay: float = 0.1  # the rate decays exponentially to lr * lr_decay at the last step
    seed: int = 0
    eval_steps: list[int] = field(default_factory=list)  # extra full-signal evaluations (benchmarks)
    chunk: int = 1 << 16  # samples per forward pass when predicting the whole signal
    checkpoint_every: int = 0  # with an output folder: checkpoints every N steps (and at the end)
    time_budget: float | None = None  # seconds of optimisation, then the fit stops (the schedule follows)
    # With random batches: uniform samples, or partly the samples with the largest errors (int) or
    # drawn in proportion to them (errormap), from a per-sample error map (neuralfields.selection).
    # errormap by measurement (docs/bench_selection.md): the best or level at equal time for SIREN
    # and the hash grid on camera and astronaut; int helps SIREN as much but slows the hash grid.
    selection: str = "errormap"
    select: SelectionConfig = field(default_factory=SelectionConfig)


@dataclass
class FitResult:
    reconstruction: np.ndarray  # the fitted values on the signal's grid [*grid, C] in [0, 1]
    psnr: float
    ssim: float | None  # None for kinds without one (audio, shapes)
    seconds: float  # optimisation time, evaluations excluded
    num_parameters: int
    steps: int  # steps taken (fewer than asked when the time budget ran out)
    lr: float
    batch: int
    field: str
    options: dict
    checkpoints: list[dict] = field(default_factory=list)  # {"step", "psnr", "seconds"} at eval_steps
    scores: dict = field(default_factory=dict)  # every final score of the signal's kind (iou, chamfer, snr, ...)

    def metrics(self) -> dict:
        """Everything but the reconstruction, the kind's scores at the top level."""
        out = asdict(self)
        out.pop("reconstruction")
        scores = out.pop("scores")
        return {**out, **scores}


def query_values(model: Field, coords: Tensor) -> Tensor:
    """Field values ``[N, C]`` at points ``[N, D]`` (a signal field's colour reads its geometry features)."""
    _, geo = model.raw_density(coords)
    return model.color(coords, None, geo)


@torch.no_grad()
def predict(model: Field, signal: Signal, chunk: int = 1 << 16) -> Tensor:
    """The field at every sample of ``signal``: ``[N, C]`` clipped to ``[0, 1]``, on the CPU."""
    was_training = model.training
    model.eval()
    device = module_device(model)
    out = []
    for start in range(0, signal.count, chunk):
        idx = torch.arange(start, min(start + chunk, signal.count), device=device)
        out.append(query_values(model, signal.coords_at(idx)).cpu())
    model.train(was_training)
    return torch.cat(out).clamp(0, 1)


def signal_options(signal: Signal, name: str, options: dict | None) -> dict:
    """``options`` over the signal's defaults for field ``name``; a field that wraps another
    (``base`` and ``base_options``: CAM) gets the defaults of its base inside ``base_options``."""
    merged = merge_options(signal.field_defaults(name), dict(options or {}))
    resolved = resolved_options(name, merged)
    if "base" in resolved and "base_options" in resolved:
        base = merge_options(signal.field_defaults(resolved["base"]), merged.get("base_options", {}))
        merged = {**merged, "base_options": base} if base else merged
    return merged


def build_signal_field(signal: Signal, name: str, options: dict) -> Field:
    return build_field(name, options, in_dim=signal.in_dim, view_dependent=False, out_dim=signal.out_dim)


@dataclass
class SampleBatch:
    """``coords [B, D]`` in ``[-1, 1]^D`` and their ``targets [B, C]``."""

    coords: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return self.coords.shape[0]


class SignalSamples:
    """Batch source: ``n`` samples of a signal chosen by ``selection`` (each sample its own
    error-map cell), or the whole signal when ``n`` covers it; batches on ``device``."""

    def __init__(self, signal: Signal, selection: Selection, device: torch.device | str = "cpu"):
        self.signal, self.device = signal, torch.device(device)
        self.targets = signal.targets.to(self.device)
        self.draw = IndexDraw(signal.count, selection, self.device)
        self.everything: SampleBatch | None = None
        self.whole = False

    def next(self, n: int, progress: float = 0.0) -> SampleBatch:
        self.whole = n >= self.signal.count
        if self.whole:
            if self.everything is None:
                idx = torch.arange(self.signal.count, device=self.device)
                self.everything = SampleBatch(self.signal.coords_at(idx), self.targets)
            return self.everything
        idx = self.draw.next(n, progress)
        return SampleBatch(self.signal.coords_at(idx), self.targets[idx])

    def observe(self, batch: SampleBatch, errors: Tensor) -> None:
        if not self.whole:
            self.draw.observe(errors)

    def state_dict(self) -> dict:
        return self.draw.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.draw.load_state_dict(state)


class SignalObjective:
    """Mean squared error of the field's values at the batch's coordinates."""

    def __init__(self, field: Field):
        self.field = field

    def __call__(self, batch: SampleBatch, step: int) -> StepResult:
        self.field.train()
        errors = ((query_values(self.field, batch.coords) - batch.targets) ** 2).mean(-1)  # [B]
        loss = errors.mean()
        return StepResult(loss, {"loss": loss.detach(), "psnr": psnr_of(loss)}, errors=errors.detach())

    def param_groups(self, lr: float) -> list[dict]:
        return []  # everything trained is the field's


class SignalEvaluator:
    """The signal's scores of the field's prediction of every sample; keeps the latest prediction ``[N, C]``."""

    def __init__(self, field: Field, signal: Signal, chunk: int):
        self.field, self.signal, self.chunk = field, signal, chunk
        self.last: Tensor | None = None
        self.scores: dict = {}

    def __call__(self) -> dict:
        self.last = predict(self.field, self.signal, self.chunk)
        self.scores = self.signal.metrics(self.last)
        return self.scores


class SignalModel:
    """What a fit trains: one field (no sampler, so no training hooks); checkpoints hold its parameters."""

    def __init__(self, field: Field):
        self.field = field

    @property
    def num_parameters(self) -> int:
        return self.field.num_parameters

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        return self.field.param_groups(lr, weight_decay)

    def training_hooks(self) -> list:
        return []

    def state_dict(self) -> dict:
        return {"field": self.field.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.field.load_state_dict(state["field"])


def fit_signal(signal: Signal, name: str, options: dict | None = None, cfg: FitConfig | None = None,
               progress: bool = True, out_dir: str | Path | None = None, resume: bool = False,
               device: torch.device | str = "cpu") -> FitResult:
    """Fit ``signal`` with field ``name`` (``options`` over the signal's defaults) and return the result.

    This is the training loop with the signal's samples as the batch source and the squared
    error as the objective. With ``out_dir`` the loop writes checkpoints there, and ``resume``
    continues the newest one.
    """
    cfg = cfg or FitConfig()
    seed_everything(cfg.seed)
    options = signal_options(signal, name, options)
    model = build_signal_field(signal, name, options).to(device)
    every = torch.arange(signal.count, device=device)
    model.init_from_signal(signal.coords_at(every), signal.importance().to(device))
    lr = cfg.lr if cfg.lr is not None else model.recommended_lr
    n = signal.count
    batch = n if cfg.batch <= 0 or cfg.batch >= n else cfg.batch
    evaluator = SignalEvaluator(model, signal, cfg.chunk)
    config = {"fit": asdict(cfg), "field": {"name": name, "options": resolved_options(name, options)},
              "signal": signal.record()}
    source = SignalSamples(signal, Selection(cfg.selection, cfg.select.validate("select")), device)
    # PyTorch's beta2 (0.999): the 2D fitting figures were measured with it.
    steps = cfg.steps
    settings = LoopConfig(steps, lr, ExponentialDecay(steps, cfg.lr_decay, cfg.time_budget), BatchSize(batch),
                          adam_beta2=0.999, time_budget=cfg.time_budget, log_every=10, eval_steps=set(cfg.eval_steps),
                          checkpoint_every=cfg.checkpoint_every, seed=cfg.seed, desc=f"fit {name}", record=config)
    loop = make_loop(settings, SignalModel(model), source, SignalObjective(model),
                     None if out_dir is None else RunFolder(out_dir, 2), validate=evaluator,
                     parts={"selection": Part(source, required=False)}, progress=progress)
    if resume:
        loop.resume()
    summary = loop.fit()
    wanted = set(cfg.eval_steps) or {summary["steps"]}
    checkpoints = [{"step": e["step"], "psnr": e["psnr"], "seconds": e["seconds"]}
                   for e in loop.validations if e["step"] in wanted]
    scores = evaluator.scores
    return FitResult(signal.reconstruction(evaluator.last), summary["val_psnr"], scores.get("ssim"),
                     summary["train_seconds"], model.num_parameters, summary["steps"], lr, batch, name,
                     resolved_options(name, options), checkpoints, scores)


def write_outputs(signal: Signal, result: FitResult, out_dir: str | Path, extra: dict | None = None) -> dict[str, Path]:
    """Write the signal's reconstruction files and ``metrics.json`` (atomically) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred = torch.from_numpy(result.reconstruction).reshape(signal.count, -1)
    paths = signal.write(pred, out)
    paths["metrics"] = write_json_atomic(out / "metrics.json", {**result.metrics(), **signal.record(), **(extra or {})})
    return paths
