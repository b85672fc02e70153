"""``torch.compile`` for hot free functions, with an eager fallback.

Hot paths written as free functions of tensors (no data-dependent branches) fuse into one loop
under ``torch.compile``; eagerly, each elementwise op streams whole tensors through memory.
"""

from __future__ import annotations

import functools
import os
import sys

import torch

_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)  # torch.cuda's before torch 2.5
_FELL_BACK: set[str] = set()  # functions whose fallback was reported (one line each per process)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from: the compiler wraps what it hits) is an
    out-of-memory error: ``torch.OutOfMemoryError`` or a RuntimeError saying 'out of memory'."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, _OUT_OF_MEMORY) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` of an exception."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def maybe_compile(fn):
    """``torch.compile`` a hot function unless ``NEURALFIELDS_COMPILE=0``; fall back to eager when
    compiling fails.

    Compilation needs a C++ compiler (and Triton on a GPU); where it fails the eager function is
    used from then on, with the same results, and one line on stderr says which function runs
    eagerly and why. Running out of memory is not a compile failure: it is raised as it is (the
    eager function would only run out of memory too), and the next call compiles again.
    """
    if os.environ.get("NEURALFIELDS_COMPILE", "1") == "0":
        return fn
    # Each input dimension, grad mode and input requires_grad is a separate graph: raise the
    # recompile limit (default 8) so long sessions never fall back to eager for that reason.
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(getattr(torch._dynamo.config, name), 64))
    compiled = torch.compile(fn, dynamic=True, fullgraph=True)
    state = {"ok": True}
    label = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"

    @functools.wraps(fn)
    def wrapper(*args):
        if state["ok"]:
            try:
                return compiled(*args)
            except Exception as exc:  # compiler missing, unsupported platform, ... but not memory
                if is_out_of_memory(exc):
                    raise
                state["ok"] = False
                if label not in _FELL_BACK:
                    _FELL_BACK.add(label)
                    print(f"torch.compile: {label} falls back to eager PyTorch ({first_line(exc)})",
                          file=sys.stderr, flush=True)
        return fn(*args)

    return wrapper
