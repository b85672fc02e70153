"""Checkpoints load safely: a file holding an arbitrary object is refused in one line, and an old
one with numpy values converts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuralfields.errors import NeuralFieldsError
from neuralfields.run.checkpoints import convert_checkpoint, latest_checkpoint, load_checkpoint


class Payload:
    """An arbitrary object: unpickling it would run code of the file's choosing."""


def test_checkpoint_with_an_arbitrary_object_is_refused_in_one_line(tiny_run, tmp_path):
    _, state = latest_checkpoint(tiny_run)
    state["extra"] = Payload()
    path = tmp_path / "checkpoints" / "step_000001.pt"
    path.parent.mkdir()
    torch.save(state, path)
    with pytest.raises(NeuralFieldsError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "refusing to load" in message
    assert "Payload" in message and "python -m neuralfields.run.checkpoints" in message


def test_old_checkpoint_with_numpy_values_converts(tiny_run, tmp_path):
    _, state = latest_checkpoint(tiny_run)
    state["scene"]["aabb_scale"] = np.float64(1.0)  # what an older writer might have stored
    state["extra"] = np.arange(3)
    path = tmp_path / "step_000001.pt"
    torch.save(state, path)
    with pytest.raises(NeuralFieldsError, match="refusing to load"):
        load_checkpoint(path)
    convert_checkpoint(path)
    converted = load_checkpoint(path)
    assert converted["scene"]["aabb_scale"] == 1.0 and torch.equal(converted["extra"], torch.arange(3))
    assert (tmp_path / "step_000001.pt.orig").exists()
