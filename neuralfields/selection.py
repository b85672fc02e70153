"""Choosing the examples that teach most: one mechanism for every batch source.

Implicit neural teaching (INT, Zhang et al. 2024) trains on the examples where the field is
currently worst; instant-ngp draws rays from a per-image error map; PVD-AL replays the rays a
student got most wrong. Here they are one mechanism with three parts:

- a :class:`Selection` (``train.selection``) decides how many of a batch's ``n`` examples are
  chosen by error -- a share that falls linearly with the run's progress, from ``start`` (mostly
  chosen early) to ``end`` (mostly uniform late) -- and which of the scored candidates those are:
  the largest errors (``int``), a draw proportional to error (``errormap``), or none (``uniform``);
- the candidates and their scores come from the batch source: ``pool`` times as many uniform
  examples as are chosen, scored by an :class:`ErrorMap` when examples are pixels of images (scene
  rays, 2D signals), or the rays seen earlier with their measured errors (distillation's
  :class:`ErrorReplay`, where poses are drawn fresh each step and have no map);
- the error map learns from the losses the objective computed anyway (the loop hands each
  batch's per-example errors to the source's ``observe``): no extra renders.

The rest of the batch (``n - k``) is drawn uniformly, so every example keeps being seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .errors import NeuralFieldsError
from .registry import Registry

# name -> choose(scores [M], k) -> indices [k] into the candidates
SELECTORS: Registry[Callable[[Tensor, int], Tensor]] = Registry("example selection")


@SELECTORS.register("uniform")
def choose_none(scores: Tensor, k: int) -> Tensor:
    """Every example uniform: nothing is chosen by error."""
    return scores.new_zeros(0, dtype=torch.long)


@SELECTORS.register("int")
def choose_largest(scores: Tensor, k: int) -> Tensor:
    """INT: the ``k`` candidates with the largest errors."""
    return torch.topk(scores, min(k, scores.numel()), sorted=False).indices


@SELECTORS.register("errormap")
def choose_proportional(scores: Tensor, k: int) -> Tensor:
    """instant-ngp's error-map sampling: ``k`` candidates drawn with probability proportional to error."""
    weights = scores.float().clamp_min(0) + 1e-12
    return torch.multinomial(weights, min(k, scores.numel()), replacement=False)


@dataclass
class SelectionConfig:
    """How a batch is split between examples chosen by error and uniform ones (not the kind)."""

    pool: float = 4.0  # candidates scored per chosen example
    # Share of the batch chosen by error at the start of the run and at its end (linear in the
    # run's progress). 1.0 -> 0.5 beat 0.8 -> 0.2 on lego (docs/selection.md).
    start: float = 1.0
    end: float = 0.5
    cell: int = 4  # pixels per error-map cell side for scene images (2D signals: one pixel a cell)
    decay: float = 0.5  # weight of a cell's newest batch error in its running value

    def validate(self, where: str) -> "SelectionConfig":
        for key in ("start", "end", "decay"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise NeuralFieldsError(f"{where}.{key}: expected a fraction in [0, 1], got {value!r}")
        if not isinstance(self.pool, (int, float)) or self.pool < 1:
            raise NeuralFieldsError(f"{where}.pool: expected a number >= 1, got {self.pool!r}")
        if not isinstance(self.cell, int) or self.cell < 1:
            raise NeuralFieldsError(f"{where}.cell: expected a positive integer, got {self.cell!r}")
        return self


class Selection:
    """Splits batches of ``n`` examples into ``k`` chosen by error and ``n - k`` uniform ones.

    Args:
        kind: a :data:`SELECTORS` name; cfg: pool size and share schedule.
    """

    def __init__(self, kind: str = "uniform", cfg: SelectionConfig | None = None):
        self.kind, self.choose_fn = kind, SELECTORS[kind]
        self.cfg = cfg or SelectionConfig()

    @property
    def active(self) -> bool:
        return self.kind != "uniform"

    def share(self, progress: float) -> float:
        """Share of the batch chosen by error at ``progress`` in [0, 1] of the run."""
        p = min(max(progress, 0.0), 1.0)
        return self.cfg.start + (self.cfg.end - self.cfg.start) * p

    def chosen_count(self, n: int, progress: float) -> int:
        """``k``: examples of a batch of ``n`` chosen by error (0 for ``uniform``)."""
        return int(round(n * self.share(progress))) if self.active else 0

    def pool_size(self, k: int) -> int:
        """Candidates to score for ``k`` chosen examples."""
        return int(math.ceil(k * self.cfg.pool))

    def choose(self, scores: Tensor, k: int) -> Tensor:
        """Indices ``[k]`` (at most) of the chosen candidates, given their ``scores [M]``."""
        if k <= 0 or scores.numel() == 0:
            return torch.zeros(0, dtype=torch.long, device=scores.device)
        return self.choose_fn(scores, k)


class ErrorMap:
    """A running error per cell ``[C]``, where each example (a pixel) falls in one cell.

    Cells never seen score 1 (the largest squared error of colours in [0, 1]), so a fresh map
    first spreads the chosen examples over everything. A visited cell's value moves towards
    the mean error of its examples in the batch by ``decay``; the first visit sets it.
    """

    def __init__(self, n_cells: int, device: torch.device | str = "cpu", decay: float = 0.5):
        self.values = torch.ones(n_cells, device=device)
        self.seen = torch.zeros(n_cells, dtype=torch.bool, device=device)
        self.decay = decay

    def __len__(self) -> int:
        return self.values.numel()

    def scores(self, cells: Tensor) -> Tensor:
        return self.values[cells]

    @torch.no_grad()
    def observe(self, cells: Tensor, errors: Tensor) -> None:
        """Fold per-example ``errors [B]`` of examples in ``cells [B]`` into the map."""
        errors = errors.to(self.values.dtype)
        sums = torch.zeros_like(self.values).index_add_(0, cells, errors)
        counts = torch.zeros_like(self.values).index_add_(0, cells, torch.ones_like(errors))
        hit = counts > 0
        # Over every cell, not the hit ones picked out: picking sizes a tensor by the data, which
        # makes the host wait for the device.
        mean = sums / counts.clamp_min(1.0)
        updated = torch.where(self.seen, self.values + self.decay * (mean - self.values), mean)
        self.values = torch.where(hit, updated, self.values)
        self.seen |= hit

    def state_dict(self) -> dict:
        return {"values": self.values, "seen": self.seen}

    def load_state_dict(self, state: dict) -> None:
        if state["values"].shape != self.values.shape:
            raise NeuralFieldsError(f"error map of {state['values'].numel()} cells does not fit this data "
                                    f"({self.values.numel()} cells)")
        self.values = state["values"].to(self.values.device)
        self.seen = state["seen"].to(self.seen.device)


class IndexDraw:
    """Batches of example indices ``[n]`` out of ``count``: ``k`` chosen by error through an
    :class:`ErrorMap` over ``cell_of(indices)``, the rest uniform. The batch source of pixels
    (scene rays, 2D signals) keeps one and reports each batch's errors to :meth:`observe`.

    Args:
        count: examples (pixels of all images); cell_of: ``indices [M] -> cells [M]``;
        n_cells: cells of the map; selection: kind and schedule; device: where indices live.
    """

    required = False  # a checkpoint without the map resumes with a fresh one

    def __init__(self, count: int, selection: Selection, device: torch.device | str = "cpu",
                 cell_of: Callable[[Tensor], Tensor] | None = None, n_cells: int | None = None):
        self.count, self.selection, self.device = count, selection, torch.device(device)
        self.cell_of = cell_of or (lambda idx: idx)
        self.map = ErrorMap(n_cells or count, device, selection.cfg.decay) if selection.active else None
        self.last: Tensor | None = None  # cells of the last batch, for observe

    def next(self, n: int, progress: float) -> Tensor:
        uniform = lambda m: torch.randint(0, self.count, (m,), device=self.device)  # noqa: E731
        k = self.selection.chosen_count(n, progress)
        if self.map is None or k == 0:
            idx = uniform(n)
        else:
            candidates = uniform(self.selection.pool_size(k))
            chosen = candidates[self.selection.choose(self.map.scores(self.cell_of(candidates)), k)]
            idx = torch.cat([chosen, uniform(n - chosen.numel())])
        self.last = None if self.map is None else self.cell_of(idx)
        return idx

    def observe(self, errors: Tensor) -> None:
        """Per-example errors ``[n]`` of the last batch, in its order."""
        if self.map is not None and self.last is not None and errors.numel() == self.last.numel():
            self.map.observe(self.last, errors.detach().to(self.map.values.device))

    def state_dict(self) -> dict:
        return {} if self.map is None else self.map.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if self.map is not None and state:
            self.map.load_state_dict(state)


class ErrorReplay:
    """Examples seen before, kept with their measured errors, as candidates for later batches.

    For sources whose examples cannot be enumerated (distillation rays of freshly drawn poses):
    each batch offers its ``keep`` share of largest-error examples; the newest ``capacity`` are
    kept; :meth:`take` removes the ``k`` a :class:`Selection` chooses among them. Examples are a
    dict of tensors with a common first dimension (rays: origins, directions, times), stored on
    the device of what is offered (it starts empty on the CPU).
    """

    def __init__(self, capacity: int, keep: float = 1.0):
        self.capacity, self.keep = capacity, keep
        self.items: dict[str, Tensor] = {}
        self.errors = torch.zeros(0)

    def __len__(self) -> int:
        return self.errors.numel()

    def offer(self, items: dict[str, Tensor | None], errors: Tensor) -> None:
        """Offer ``B`` examples with ``errors [B]``; the ``keep`` share with the largest errors enter."""
        k = int(round(errors.numel() * self.keep))
        if k == 0:
            return
        top = torch.topk(errors.detach(), k).indices
        first = not self.items
        for name, value in items.items():
            if value is None:
                continue
            old = value.new_zeros((0, *value.shape[1:])) if first else self.items[name]
            self.items[name] = torch.cat([old, value[top].detach()])[-self.capacity:]
        self.errors = torch.cat([self.errors.to(errors.device), errors[top].detach().float()])[-self.capacity:]

    def take(self, selection: Selection, k: int) -> dict[str, Tensor] | None:
        """Remove and return the ``k`` examples ``selection`` chooses by error, or None."""
        pick = selection.choose(self.errors, min(k, len(self)))
        if pick.numel() == 0:
            return None
        rest = torch.ones(len(self), dtype=torch.bool, device=self.errors.device)
        rest[pick] = False
        out = {name: value[pick] for name, value in self.items.items()}
        self.items = {name: value[rest] for name, value in self.items.items()}
        self.errors = self.errors[rest]
        return out

    def state_dict(self) -> dict:
        return {"items": self.items, "errors": self.errors}

    def load_state_dict(self, state: dict) -> None:
        self.items, self.errors = dict(state["items"]), state["errors"]
