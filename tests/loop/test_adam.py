"""Every trainer's Adam: fused only when every parameter is on CUDA."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from neuralfields.loop import build
from neuralfields.loop.build import adam
from neuralfields.speed import fused_adam


def test_fused_only_when_every_parameter_is_on_cuda():
    cpu = [torch.nn.Parameter(torch.zeros(3))]
    on_cuda = SimpleNamespace(is_cuda=True)
    assert not fused_adam([{"params": cpu}])
    assert not fused_adam([{"params": []}])
    assert fused_adam([{"params": [on_cuda]}, {"params": [on_cuda]}])
    assert not fused_adam([{"params": [on_cuda]}, {"params": cpu}])


def test_cpu_adam_is_as_before():
    p = torch.nn.Parameter(torch.ones(4))
    opt = adam([{"params": [p], "lr": 0.1}], 0.99)
    assert not opt.param_groups[0]["fused"] and not opt.defaults["fused"]
    assert opt.defaults["eps"] == 1e-15 and opt.defaults["betas"] == (0.9, 0.99)
    p.grad = torch.ones(4)
    opt.step()
    assert torch.all(p < 1)


def test_cuda_parameters_get_the_fused_kernel(monkeypatch):
    made = []
    monkeypatch.setattr(build, "fused_adam", lambda groups: True)
    monkeypatch.setattr(torch.optim, "Adam", lambda groups, **kw: made.append(kw) or kw)
    adam([{"params": [torch.nn.Parameter(torch.ones(2))]}], 0.99)
    assert made == [{"eps": 1e-15, "betas": (0.9, 0.99), "fused": True}]
    if torch.cuda.is_available():
        monkeypatch.undo()
        opt = adam([{"params": [torch.nn.Parameter(torch.ones(2, device="cuda"))]}], 0.99)
        assert opt.param_groups[0]["fused"]
