"""Data parallelism across processes: one process per device, launched by ``torchrun``.

Every rank holds the whole model and draws its own rays; the training loop averages the
gradients of all ranks before each optimiser step, so the ranks stay bit-identical and the step
is the one a single process would take on the union of their batches. State that a rank changes
outside the optimiser (an occupancy grid's update) is computed on rank 0 and broadcast by its
owner. Only rank 0 writes the run folder.

``torchrun`` (or ``neuralfields train --devices N``) describes the group through environment
variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``);
:func:`start` joins it with NCCL on GPUs and Gloo on CPUs. Without those variables every helper
here is a no-op for a single process, so library code calls them unconditionally.

A collective that fails because another rank is gone raises :class:`RankStopped`, a one-line
user error naming the rank when it can be known (see :func:`stopped_rank`).
"""

from __future__ import annotations

import atexit
import os
import re
import signal
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist
from torch import Tensor

from .device import resolve_device
from .errors import NeuralFieldsError

FAILURE_KEY = "neuralfields/failed"  # "rank: reason" of the first rank that failed with an exception
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")

_device: torch.device | None = None  # where this rank's collectives run (the model's device)


class RankStopped(NeuralFieldsError):
    """Another rank is gone (it crashed, was killed, or the launcher ended the run)."""


def launched() -> bool:
    """Whether this process was started by torchrun (or anything else that sets its variables)."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def active() -> bool:
    """Whether this process belongs to a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank in the joined group (0 when no group was joined)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def launch_rank() -> int:
    """The rank torchrun gave this process (``RANK``), known before the group is joined; 0 without torchrun."""
    return int(os.environ["RANK"]) if launched() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes files and talks to the user."""
    return rank() == 0


def device() -> torch.device:
    """Where this rank's small collectives run: its model's device (NCCL needs CUDA tensors)."""
    return _device if _device is not None else torch.device("cpu")


def rank_device(name: str | torch.device = "auto") -> torch.device:
    """This rank's device for ``--device``: ``cuda:LOCAL_RANK`` whenever CUDA is chosen (one GPU per
    process, as torchrun's ``--nproc-per-node`` counts them), else the CPU."""
    device = resolve_device(name)
    if device.type != "cuda":
        return device
    local = int(os.environ.get("LOCAL_RANK", 0))
    if local >= torch.cuda.device_count():
        raise NeuralFieldsError(f"local rank {local} has no GPU: only {torch.cuda.device_count()} CUDA device(s) "
                                "present; launch at most that many processes per node")
    return torch.device("cuda", local)


def start(device: str | torch.device = "auto", timeout_s: float = 1800.0) -> torch.device:
    """Join torchrun's process group (NCCL for CUDA, Gloo otherwise) and return this rank's device.

    Idempotent; outside torchrun it only resolves ``device``. The group is left at exit, and
    SIGTERM (what torchrun sends the surviving ranks when one fails) becomes :class:`RankStopped`
    so rank 0 can say what happened instead of vanishing.
    """
    global _device
    if not launched():
        return resolve_device(device)
    if dist.is_initialized():
        return _device
    chosen = rank_device(device)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    backend = "nccl" if chosen.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s),
                            device_id=chosen if chosen.type == "cuda" else None)
    _device = chosen
    _set_sigterm(_on_terminate)
    atexit.register(stop)
    return chosen


def stop() -> None:
    """Leave the process group (safe to call twice, when none was joined, or when it is broken)."""
    try:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001  (a group whose peers are gone may fail to tear down; we exit anyway)
        pass


def _set_sigterm(handler) -> None:
    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: keep the default
        pass


def _stopping() -> None:
    """This rank is ending because a peer did: further SIGTERMs from the launcher must not
    interrupt the one message (or the exit) in progress."""
    _set_sigterm(signal.SIG_IGN)


def _on_terminate(signum, frame) -> None:
    _stopping()
    who, why = stopped_rank()
    raise RankStopped(f"{who} stopped ({why or 'the launcher ended the run'})")


def record_failure(reason: str) -> None:
    """Leave this rank's failure where rank 0 can read it (best effort: the store may be gone)."""
    try:
        dist.distributed_c10d._get_default_store().compare_set(FAILURE_KEY, "", f"{rank()}: {reason}")
    except Exception:  # noqa: BLE001  (nothing more can be done about a broken group)
        pass


def stopped_rank() -> tuple[str, str | None]:
    """``("rank K", reason)`` of the rank that failed: the one that recorded its failure (with its
    reason), else the only other rank of a pair, else ``"a rank"`` (a killed process records
    nothing; the reason is then None)."""
    try:
        store = dist.distributed_c10d._get_default_store()
        if store.check([FAILURE_KEY]):
            who, why = store.get(FAILURE_KEY).decode().split(":", 1)
            return f"rank {who}", why.strip()
    except Exception:  # noqa: BLE001
        pass
    if world_size() == 2:
        return f"rank {1 - rank()}", None
    return "a rank", None


def _collective(op, *args, **kwargs) -> None:
    """Run a collective; a peer's disappearance becomes a one-line :class:`RankStopped`."""
    try:
        op(*args, **kwargs)
    except RuntimeError as exc:  # Gloo and NCCL (DistBackendError) report lost peers as RuntimeError
        _stopping()
        who, why = stopped_rank()
        raise RankStopped(f"{who} stopped ({why or backend_reason(exc)})") from None


def backend_reason(exc: Exception) -> str:
    """The first sentence of a backend error, without the ``[source/file.cc:123]`` prefix."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    first = re.split(r"\.\s+(?=[A-Z])", text, maxsplit=1)[0].rstrip(".")
    return first[:160] or type(exc).__name__


def _buckets(tensors: list[Tensor]) -> dict[tuple, list[int]]:
    """Indices of ``tensors`` grouped by (device, dtype): one flat buffer per group."""
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    return groups


def all_reduce_mean(tensors: list[Tensor]) -> None:
    """Replace each tensor by its mean over all ranks, in place (one flat all-reduce per dtype)."""
    if not active():
        return
    for index in _buckets(tensors).values():
        parts = [tensors[i] for i in index]
        flat = torch.cat([t.reshape(-1) for t in parts])
        _collective(dist.all_reduce, flat)
        flat /= world_size()
        for t, chunk in zip(parts, flat.split([t.numel() for t in parts])):
            t.copy_(chunk.view_as(t))


def average_gradients(params: list[Tensor]) -> bool:
    """Average ``params``' gradients over all ranks in place; True when any rank had one.

    A rank whose batch produced no gradient (no samples) contributes zeros, so the result is the
    gradient of the mean of the ranks' losses. A parameter keeps ``grad=None`` only when no rank
    gave it a gradient: Adam skips such parameters, and every rank must skip the same ones. One
    flat all-reduce per dtype carries the gradients and a has-gradient flag per parameter.
    """
    if not active():
        return any(p.grad is not None for p in params)
    any_grad = False
    for index in _buckets(params).values():
        group = [params[i] for i in index]
        like = group[0]
        flags = torch.tensor([p.grad is not None for p in group], dtype=like.dtype, device=like.device)
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in group] + [flags])
        _collective(dist.all_reduce, flat)
        grads, flags = flat[:-len(group)], flat[-len(group):]
        grads /= world_size()
        for p, chunk, has in zip(group, grads.split([p.numel() for p in group]), flags.tolist()):
            p.grad = chunk.view_as(p) if has > 0 else None  # views of one buffer: no copy
        any_grad = any_grad or bool((flags > 0).any())
    return any_grad


def broadcast(tensors: list[Tensor], src: int = 0) -> None:
    """Overwrite ``tensors`` on every rank with rank ``src``'s values, in place (bools travel as bytes)."""
    if not active():
        return
    for t in tensors:
        data = t.view(torch.uint8) if t.dtype == torch.bool else t
        if data.is_contiguous():
            _collective(dist.broadcast, data, src)
        else:
            copy = data.contiguous()
            _collective(dist.broadcast, copy, src)
            data.copy_(copy)


def broadcast_float(value: float, src: int = 0) -> float:
    """Rank ``src``'s ``value`` on every rank (shared clocks and decisions)."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_device)
    broadcast([t], src)
    return float(t.item())


def barrier() -> None:
    if active():
        _collective(dist.barrier)


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block before the other ranks do (it may write a cache they then read)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def rank_seed(seed: int, rank_index: int, step: int) -> int:
    """A distinct seed for rank ``rank_index`` (> 0) resuming or starting at ``step``."""
    return (seed * 1_000_003 + rank_index * 7_919 + step) % (2**63 - 1)
