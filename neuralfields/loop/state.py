"""A training run's checkpoint contents: the model, the optimiser, the counters, the random
streams and named extra parts, and their restoration with one-line refusals."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..errors import NeuralFieldsError


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def training_state(model, optimizer: torch.optim.Optimizer, counters: dict, config: dict, parts: dict) -> dict:
    """Everything a checkpoint holds: the model's entries, the optimiser, ``counters`` (step, batch
    size, training seconds), the random streams, the run's config and each part's state."""
    state = {**model.state_dict(), "optimizer": optimizer.state_dict(), **counters, "rng": torch.get_rng_state(),
             "config": config}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    for name, part in parts.items():
        state[name] = part.state.state_dict()
    return state


def restore_training(path: Path, state: dict, model, optimizer: torch.optim.Optimizer, parts: dict) -> None:
    """Load checkpoint ``state`` (read from ``path``, named in errors) into ``model``, ``optimizer``,
    the random streams and ``parts``; a checkpoint of another kind or shape is refused in one line."""
    missing = [name for name, part in parts.items() if name not in state and part.required]
    if missing:
        kind = parts[missing[0]].kind or missing[0]
        raise NeuralFieldsError(f"{path}: not a {kind} checkpoint; cannot resume it as one")
    try:
        model.load_state_dict(state)
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NeuralFieldsError(f"{path}: checkpoint does not match this run ({first})") from None
    torch.set_rng_state(state["rng"].cpu())
    if "cuda_rng" in state and torch.cuda.is_available() and len(state["cuda_rng"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
    for name, part in parts.items():
        if name in state:
            part.state.load_state_dict(state[name])
