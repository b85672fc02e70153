"""Data-parallel training on several processes (Gloo on the CPU), as torchrun runs it.

Library-level checks start their ranks with ``torch.multiprocessing.spawn`` and torchrun's
environment variables; command-line checks run ``neuralfields train --devices 2`` (which starts
torchrun) in a subprocess. Every process uses one thread: two ranks share two cores.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from conftest import cli_args, tiny_config
from neuralfields import distributed
from neuralfields.cli import main
from neuralfields.data import load_data
from neuralfields.loop import BatchSize
from neuralfields.run.checkpoints import list_checkpoints, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
SMALL_NGP = dict(n_levels=8, n_features=2, log2_table=14, max_res=256)


# ------------------------------------------------------------------------------ rank helpers
def join_group(rank: int, world: int, port: int) -> None:
    """Become rank ``rank`` of ``world`` the way torchrun would start it."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    distributed.start("cpu")


def spawn(fn, world: int, *args) -> None:
    """Run ``fn(rank, world, port, *args)`` on ``world`` fresh processes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(fn, args=(world, port, *args), nprocs=world, join=True)


def record_first_batch(loop) -> dict:
    """Keep the sum of the first batch's ray directions (ranks must draw different rays)."""
    first: dict = {}
    draw = loop.source.next

    def next_batch(n: int, step: int):
        batch = draw(n, step)
        rays = getattr(batch, "rays", batch)
        first.setdefault("dirs", float(rays.dirs.double().sum()))
        return batch

    loop.source.next = next_batch
    return first


def train_rank(rank: int, world: int, port: int, data: str, run_dir: str, out: str, steps: int) -> None:
    from neuralfields.train.scene import scene_trainer

    join_group(rank, world, port)
    cfg = tiny_config(Path(data), steps=steps)
    cfg.train.selection = "uniform"  # the loss of batches chosen by error does not fall as the field learns
    cfg.train.checkpoint_every = 10
    cfg.train.grid_update_every = 8
    cfg.train.grid_warmup_steps = 16
    cfg.output = run_dir
    loop = scene_trainer(cfg, load_data(cfg.data, "train"), load_data(cfg.data, "val"), run_dir, progress=False)
    loop.settings.log_every = 5
    first = record_first_batch(loop)
    loop.fit()
    grid = loop.model.sampler.grid
    torch.save({"params": [p.detach().clone() for p in loop.params], "density": grid.density.clone(),
                "binary": grid.binary.clone(), "updates": int(grid.updates), "first_dirs": first["dirs"],
                "n_rays": loop.batch.n}, Path(out) / f"rank{rank}.pt")
    distributed.stop()


class Halves:
    """Every rank draws the same ``world * n`` rays (one shared seed per step) and keeps its part,
    so 2 ranks of ``n`` rays see exactly the rays 1 rank of ``2n`` does."""

    def __init__(self, inner, rank: int, world: int):
        self.inner, self.rank, self.world = inner, rank, world

    def next(self, n: int, progress: float):
        state = torch.get_rng_state()
        torch.manual_seed(1000 + round(progress * 1e6))  # the same on every rank: the step's fraction of the run
        batch = self.inner.next(n * self.world, progress)
        torch.set_rng_state(state)
        return batch.select(slice(self.rank * n, (self.rank + 1) * n))

    def observe(self, batch, errors) -> None:
        pass  # uniform selection: nothing to learn from the errors


def split_batch_rank(rank: int, world: int, port: int, data: str, out: str, total_rays: int, steps: int) -> None:
    from neuralfields.train.scene import scene_trainer

    join_group(rank, world, port)
    cfg = tiny_config(Path(data), steps=steps)
    cfg.train.checkpoint_every = 0
    cfg.train.selection = "uniform"  # an error map learns from its own rank's rays only
    # A box holding the cameras (radius 3.5): every ray starts at ``near`` and crosses the same
    # occupancy cells whichever rank draws it.
    cfg.data.scene_box = [-4.0, -4.0, -4.0, 4.0, 4.0, 4.0]
    loop = scene_trainer(cfg, load_data(cfg.data, "train"), None, None, progress=False)
    loop.batch = BatchSize(total_rays // world)  # fixed: no adaptation
    loop.source = Halves(loop.source, rank, world)
    sampler = loop.model.sampler
    sample = sampler.sample
    # No jitter along rays: it draws per ray from each rank's own stream.
    sampler.sample = lambda rays, density_fn, training=False, prune=True: sample(rays, density_fn, False, prune)
    loop.fit()
    if rank == 0:
        grid = sampler.grid
        torch.save({"params": [p.detach().clone() for p in loop.params], "density": grid.density.clone(),
                    "binary": grid.binary.clone()}, Path(out) / f"world{world}.pt")
    distributed.stop()


def distill_rank(rank: int, world: int, port: int, teacher_dir: str, out: str, steps: int) -> None:
    from neuralfields.distill import distill_trainer, load_teacher, student_config

    join_group(rank, world, port)
    teacher, _, _ = load_teacher(teacher_dir)
    cfg = student_config(teacher.cfg, "ngp", steps, output=str(Path(out) / "student"))
    cfg.field.options = dict(SMALL_NGP)
    cfg.train.checkpoint_every = 0
    loop = distill_trainer(cfg, teacher, None, None, cfg.output, progress=False, teacher_dir=teacher_dir)
    first = record_first_batch(loop)
    loop.fit()
    torch.save({"params": [p.detach().clone() for p in loop.params], "first_dirs": first["dirs"]},
               Path(out) / f"distill{rank}.pt")
    distributed.stop()


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def two_rank_run(demo_dir, tmp_path_factory):
    """30 steps of the tiny config on 2 ranks: ``(run folder, [rank 0 result, rank 1 result])``."""
    root = tmp_path_factory.mktemp("two_ranks")
    run_dir = root / "run"
    spawn(train_rank, 2, str(demo_dir), str(run_dir), str(root), 30)
    return run_dir, [torch.load(root / f"rank{r}.pt") for r in range(2)]


# ------------------------------------------------------------------------------------- tests
def test_two_ranks_hold_identical_parameters_and_grid_after_training(two_rank_run):
    _, (a, b) = two_rank_run
    assert len(a["params"]) == len(b["params"]) > 0
    assert all(torch.equal(p, q) for p, q in zip(a["params"], b["params"]))
    assert torch.equal(a["density"], b["density"]) and torch.equal(a["binary"], b["binary"])
    assert a["updates"] == b["updates"] == 4  # steps 0, 8, 16, 24
    assert 0 < a["binary"].float().mean() < 1  # the grid did cull something: it was really updated
    assert a["n_rays"] == b["n_rays"]  # the adaptive batch stays the same on every rank
    assert a["first_dirs"] != b["first_dirs"]  # but each rank draws its own rays


def test_two_ranks_write_the_run_folder_once_and_the_loss_falls(two_rank_run):
    run_dir, _ = two_rank_run
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == [5, 10, 15, 20, 25, 30]  # one row per step: no rank duplicates
    assert sum("val_psnr" in r for r in rows) == 1
    assert train_rows[-1]["loss"] < train_rows[0]["loss"], train_rows
    assert all(r["n_rays"] % 2 == 0 for r in train_rows)  # the global batch: both ranks' rays
    assert [load_checkpoint(p)["step"] for p in list_checkpoints(run_dir)] == [10, 20, 30]
    assert not [p for p in run_dir.rglob("*") if ".tmp" in p.name]
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 30
    assert json.loads((run_dir / "config.json").read_text())["train"]["steps"] == 30


def test_two_ranks_of_b_rays_step_like_one_rank_of_2b_rays(demo_dir, tmp_path):
    spawn(split_batch_rank, 1, str(demo_dir), str(tmp_path), 1024, 3)
    spawn(split_batch_rank, 2, str(demo_dir), str(tmp_path), 1024, 3)
    one, two = torch.load(tmp_path / "world1.pt"), torch.load(tmp_path / "world2.pt")
    assert torch.equal(one["binary"], two["binary"]) and torch.equal(one["density"], two["density"])
    worst = max(float((p - q).abs().max()) for p, q in zip(one["params"], two["params"]))
    moved = max(float(p.abs().max()) for p in one["params"])
    assert moved > 0 and worst < 1e-5, worst


def test_distillation_on_two_ranks_keeps_the_students_identical(two_rank_run, tmp_path):
    teacher, _ = two_rank_run
    spawn(distill_rank, 2, str(teacher), str(tmp_path), 6)
    a, b = (torch.load(tmp_path / f"distill{r}.pt") for r in range(2))
    assert all(torch.equal(p, q) for p, q in zip(a["params"], b["params"]))
    assert a["first_dirs"] != b["first_dirs"]
    student = tmp_path / "student"
    assert [load_checkpoint(p)["step"] for p in list_checkpoints(student)] == [6]
    assert (student / "distill.json").exists()


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def test_cli_devices_2_trains_and_resumes_on_one_process(demo_dir, tmp_path, capsys):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "neuralfields", *cli_args(demo_dir, out, 30), "--devices", "2"]
    done = subprocess.run(cmd, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0 of 2, gloo" in done.stdout
    assert done.stdout.count("field parameters") == 1  # the other rank prints nothing
    assert [load_checkpoint(p)["step"] for p in list_checkpoints(out)] == [30]
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [30, 30]  # the step-30 training row and the final val row, once each
    # The 2-rank checkpoint continues on 1 process.
    assert main(cli_args(demo_dir, out, 45, ["--resume"])) == 0
    assert "resumed from" in capsys.readouterr().out
    assert load_checkpoint(list_checkpoints(out)[-1])["step"] == 45


def rank_pid(tag: str, rank: int) -> int | None:
    """The pid of the process started with ``NF_TEST_TAG=tag`` and ``RANK=rank`` (ours, via /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"NF_TEST_TAG={tag}".encode() in env and f"RANK={rank}".encode() in env:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_a_killed_rank_ends_the_run_with_one_line_from_rank_0(demo_dir, tmp_path):
    out = tmp_path / "run"
    tag = uuid.uuid4().hex
    cmd = [sys.executable, "-m", "neuralfields", *cli_args(demo_dir, out, 2000, ["--set", "train.checkpoint_every=10"]),
           "--devices", "2"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=cli_env(NF_TEST_TAG=tag), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list_checkpoints(out) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
        assert list_checkpoints(out), "no checkpoint was written"
        pid = rank_pid(tag, 1)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2
    assert "Traceback" not in stdout + stderr, stderr[-3000:]
    errors = [line for line in (stdout + stderr).splitlines() if line.startswith("error")]
    assert len(errors) == 1, stderr[-3000:]
    assert errors[0].startswith("error: rank 1 stopped (") and "; last checkpoint: " in errors[0]
    last = Path(errors[0].split("; last checkpoint: ")[1])
    assert last.exists() and load_checkpoint(last)["step"] % 10 == 0
