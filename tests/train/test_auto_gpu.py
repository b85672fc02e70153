"""``train --data`` on a GPU: full-size images unless the device's free memory says otherwise
(fake free-memory figures stand in for ``torch.cuda.mem_get_info``); the CPU's choice unchanged."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from neuralfields.train import auto
from neuralfields.train.auto import GPU_WORK_BYTES, choose, free_device_memory, gpu_downscale

GIB = 2**30


class FakeScene:
    """What ``choose`` reads of a scene: the shape of its uint8 images ``[N, H, W, C]``, its size
    and its kind (a bounded, static object)."""

    def __init__(self, n: int, height: int, width: int, channels: int = 3):
        self.images = SimpleNamespace(shape=torch.Size((n, height, width, channels)))
        self.height, self.width = height, width
        self.is_dynamic, self.bounded = False, True


FOX = (45, 1920, 1080)  # instant-ngp's fox at full size: 0.26 GiB of uint8 RGB
BIG = (300, 3000, 4000)  # 300 photos of 12 MP: 10.1 GiB


def full_bytes(n, h, w, c=3):
    return n * h * w * c


def test_images_that_fit_keep_full_size():
    scene = FakeScene(*FOX)
    choices = choose(scene, False, 1.0, free_bytes=70 * GIB)
    assert choices.downscale is None  # no change: full size
    assert any("1080x1920 images kept at full size" in n and "GiB free" in n for n in choices.notes), choices.notes
    assert gpu_downscale(scene, 70 * GIB)[0] == 1


def test_images_that_do_not_fit_get_the_smallest_power_of_two_that_does():
    scene = FakeScene(*BIG)
    nbytes = full_bytes(*BIG)
    # A quarter of free memory holds half-size images (a quarter of the bytes), not full size.
    free = 2 * nbytes
    choices = choose(scene, False, 1.0, free_bytes=free)
    assert choices.downscale == 2
    note = " ".join(choices.notes)
    assert "read at 1/2 (2000x1500" in note and "full size does not fit" in note
    assert choose(scene, False, 1.0, free_bytes=nbytes // 2).downscale == 4
    # The working margin counts too: the images alone would fit, but then too little is left.
    small, nbytes = FakeScene(10, 1000, 1000), full_bytes(10, 1000, 1000)
    assert gpu_downscale(small, GPU_WORK_BYTES + nbytes // 3)[0] == 2
    assert gpu_downscale(small, GPU_WORK_BYTES + 4 * nbytes)[0] == 1


def test_downscale_relative_to_how_the_scene_was_loaded_and_the_users_wins():
    scene = FakeScene(*BIG)
    assert choose(scene, False, 2.0, free_bytes=2 * full_bytes(*BIG)).downscale == 4
    given = choose(scene, True, 1.0, free_bytes=1 * GIB)
    assert given.downscale is None and not any("images" in n for n in given.notes)


def test_no_room_at_all_falls_back_to_the_cpu_sizes():
    choices = choose(FakeScene(*FOX), False, 1.0, free_bytes=GPU_WORK_BYTES // 2)
    assert choices.downscale == 4  # the CPU's rule: 1920 pixels read at 480
    assert "too little for the images" in " ".join(choices.notes)


def test_cpu_choice_unchanged():
    assert free_device_memory("cpu") is None and free_device_memory(None) is None
    fox = choose(FakeScene(*FOX), False, 1.0)  # free_bytes None: the CPU
    assert fox.downscale == 4 and "1080x1920 images read at 1/4 (270x480" in fox.notes[0]
    small = choose(FakeScene(10, 800, 800), False, 1.0)
    assert small.downscale is None and small.notes == []
    assert choose(FakeScene(*FOX), True, 1.0).downscale is None


def test_the_command_passes_the_devices_free_memory(monkeypatch, demo_dir, tmp_path, capsys):
    """``train --data`` hands ``choose`` the figure of ``free_device_memory`` (None on the CPU)."""
    from neuralfields.cli import main

    seen = []
    monkeypatch.setattr(auto, "free_device_memory", lambda device: seen.append(str(device)) or None)
    assert main(["train", "--data", str(demo_dir), "--steps", "1", "--device", "cpu", "--no-progress",
                 "--output", str(tmp_path / "run"), "--set", "field.options.n_levels=2",
                 "--set", "field.options.log2_table=8", "--set", "render.grid_resolution=16"]) == 0
    assert seen == ["cpu"]
    assert "chosen from the data" in capsys.readouterr().out
