"""``torch.compile`` for hot free functions, with an eager fallback.

Hot paths written as free functions of tensors (no data-dependent branches) fuse into one loop
under ``torch.compile``; eagerly, each elementwise op streams whole tensors through memory.
"""

from __future__ import annotations

import functools
import os
import warnings

import torch


def maybe_compile(fn):
    """``torch.compile`` a hot function unless ``NEURALFIELDS_COMPILE=0``; fall back to eager on failure.

    Compilation needs a C++ compiler; where none works the eager function is used, with the
    same results, after one warning.
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

    @functools.wraps(fn)
    def wrapper(*args):
        if state["ok"]:
            try:
                return compiled(*args)
            except Exception as exc:  # compiler missing or unsupported platform
                state["ok"] = False
                warnings.warn(f"torch.compile unavailable ({type(exc).__name__}); using eager PyTorch", stacklevel=2)
        return fn(*args)

    return wrapper
