"""Fused GPU kernels for the encodings, written in Triton (optional: ``pip install 'neuralfields[kernels]'``).

Importing this package does not import Triton; the kernel modules do, and are imported only when
a kernel runs. The PyTorch implementations stay the reference and the CPU path.
"""

from __future__ import annotations

import functools
import importlib

import torch

TABLE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
"""Feature-table types the kernels read; they accumulate in float32 whatever the table's type."""


@functools.cache
def triton_available() -> bool:
    """Whether Triton imports (checked once)."""
    try:
        importlib.import_module("triton")
    except Exception:  # missing, or a build that fails to load on this platform
        return False
    return True
