"""Thread-count control for chains of small tensor ops."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def torch_threads(n: int | None = 1) -> Iterator[None]:
    """Run torch ops on ``n`` threads for the duration, then restore the previous count
    (``None``: leave torch's count as it is, e.g. when a command was given no ``--threads``).

    Scene tracing, tiny networks and small renders are long chains of small ops. On small shared
    (2-core, virtualised) machines each multi-threaded op can stall for milliseconds waiting for
    a busy worker, which costs far more than one thread does on a quiet machine (docs/data.md).
    """
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
