"""``maybe_compile``: out-of-memory is raised; any other compile failure runs eagerly after one line."""

from __future__ import annotations

import pytest
import torch

from neuralfields import compiling


@pytest.fixture(autouse=True)
def nothing_reported_yet(monkeypatch):
    monkeypatch.setattr(compiling, "_FELL_BACK", set())


def double(x):
    return x * 2


def compiled_that_raises(monkeypatch, exc: BaseException):
    """``maybe_compile(double)`` whose compiled function raises ``exc``; counts the compiled calls."""
    calls = []

    def fake_compile(fn, **_):
        def compiled(*args):
            calls.append(args)
            raise exc
        return compiled

    monkeypatch.setenv("NEURALFIELDS_COMPILE", "1")
    monkeypatch.setattr(torch, "compile", fake_compile)
    return compiling.maybe_compile(double), calls


@pytest.mark.parametrize("exc", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                 RuntimeError("CUDA error: out of memory"),
                                 RuntimeError("backend compiler failed")])
def test_out_of_memory_is_raised_not_hidden(monkeypatch, capsys, exc):
    if "compiler" in str(exc):  # the compiler wraps what it hits: the cause decides
        exc.__cause__ = torch.OutOfMemoryError("out of memory")
    fn, calls = compiled_that_raises(monkeypatch, exc)
    for _ in range(2):  # and again on the next call: running out of memory is not a compile failure
        with pytest.raises(type(exc)):
            fn(torch.ones(3))
    assert len(calls) == 2
    assert capsys.readouterr().err == ""


def test_other_compile_failures_run_eagerly_after_one_line(monkeypatch, capsys):
    fn, calls = compiled_that_raises(monkeypatch, RuntimeError("no working C++ compiler\nsecond line of detail"))
    for _ in range(3):
        torch.testing.assert_close(fn(torch.ones(3)), torch.full((3,), 2.0))
    assert len(calls) == 1  # compiled once, eager from then on
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "double" in err and "eager" in err and "RuntimeError: no working C++ compiler" in err
    assert "second line" not in err
    # Another wrapper of the same function falls back too, without saying it again.
    again, _ = compiled_that_raises(monkeypatch, RuntimeError("still no compiler"))
    torch.testing.assert_close(again(torch.ones(3)), torch.full((3,), 2.0))
    assert capsys.readouterr().err == ""


def test_compile_switched_off_returns_the_function(monkeypatch):
    monkeypatch.setenv("NEURALFIELDS_COMPILE", "0")
    assert compiling.maybe_compile(double) is double
