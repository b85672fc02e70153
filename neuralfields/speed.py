"""The speed switches of CUDA runs, in one place.

- **TF32 matmuls** (:func:`enable_tf32`): float32 matmuls and cuDNN convolutions run on the
  tensor cores with 10-bit mantissas (Ampere and later). Switched on by
  :func:`~neuralfields.device.resolve_device` whenever it resolves a CUDA device.
- **Fused Adam** (:func:`fused_adam`): one kernel updates every parameter instead of a loop of
  small ones; :func:`~neuralfields.loop.build.adam` asks for it when every parameter is on CUDA.
- **bf16 autocast of the MLPs** (:func:`mlp_autocast`): opt-in, ``train.mixed_precision``; the
  scene objective wraps rendering in it, and :func:`float_outputs` turns what the networks
  return back into float32 so that compositing stays in float32.

On the CPU (and MPS) none of them changes anything.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import ContextManager, Iterable

import torch
from torch import nn


def enable_tf32(device: torch.device | str) -> None:
    """TF32 for float32 matmuls and cuDNN when ``device`` is a CUDA device; a no-op elsewhere."""
    if torch.device(device).type != "cuda":
        return
    with warnings.catch_warnings():  # torch >= 2.9 suggests its newer fp32_precision settings once
        warnings.simplefilter("ignore", UserWarning)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def fused_adam(groups: Iterable[dict]) -> bool:
    """Whether an Adam over parameter ``groups`` may be fused: every parameter on a CUDA device."""
    params = [p for group in groups for p in group["params"]]
    return bool(params) and all(p.is_cuda for p in params)


def mlp_autocast(device: torch.device | str, enabled: bool) -> ContextManager:
    """bf16 autocast on CUDA when ``enabled`` (``train.mixed_precision``); elsewhere, or when off,
    a context that changes nothing."""
    if not enabled or torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16)


def _to_float(module: nn.Module, inputs, output):
    if isinstance(output, torch.Tensor) and output.dtype in (torch.bfloat16, torch.float16):
        return output.float()
    return output


_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def float_outputs(module: nn.Module) -> list:
    """Forward hooks that return autocast's bf16 outputs of ``module``'s networks as float32.

    The networks are the outermost ``nn.Sequential`` stacks (:func:`~neuralfields.layers.mlp`)
    and ``nn.Linear`` heads that no container holds: layers inside a stack stay in bf16, and what
    follows a network (density activation, compositing, losses) runs in float32. Float32 outputs
    pass unchanged. Returns the hook handles (``.remove()`` undoes one)."""
    networks = [module] if isinstance(module, (nn.Sequential, nn.Linear)) else []
    for parent in module.modules():
        if not isinstance(parent, _CONTAINERS):
            networks += [m for m in parent.children() if isinstance(m, (nn.Sequential, nn.Linear))]
    return [m.register_forward_hook(_to_float) for m in networks]
