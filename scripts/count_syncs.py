"""Count the host-device synchronisations of a training step and of a rendered view.

A GPU runs what the host has queued; an op whose result the host must read drains that queue:
a value read into Python (``.item()``, ``bool(t)``, ``float(t)``), an output sized by the data
(``nonzero``, ``x[mask]``, ``masked_select``, ``unique``, ``repeat_interleave`` without
``output_size``), a device-to-host copy. Syncs per step are a proxy for how busy training keeps a
GPU, and they can be counted on a CPU: every ATen op of the step (forward and backward) passes a
``TorchDispatchMode`` that classifies it and charges it to its innermost package frames.

The run is built as ``neuralfields train`` builds it (its parser and config resolution; nothing is
written). ``.item()`` inside ``torch.optim`` is left out (Adam keeps its step counters on the host).
On a CPU, ``.cpu()`` / ``.tolist()`` / ``.numpy()`` never reach ATen; they are counted apart as
"potential" syncs (a copy on a GPU).
Compiled hot paths run eagerly (``NEURALFIELDS_COMPILE=0``): a dispatch mode cannot run under
``torch.compile``, and a fullgraph region cannot sync anyway.

    python scripts/count_syncs.py --scene lego --warmup 30 --steps 20 --views 1 --json out.json
    python scripts/count_syncs.py --steps 5 --set train.max_rays=512     # any train option

On a CPU the ray marcher reads its candidate counts and works in small chunks of rays (a CPU has
no round trip to save); the counter makes it march as an accelerator does (``MarchPlan``: padded
candidates, one chunk per batch) unless ``--cpu-plan``. Camera sizes and distortion flags are
read from the host-resident dataset cameras; on a CPU they still show as reads.

The JSON has ``train_step.total`` and ``render_view.total`` (syncs per call) with the counts by
op and by call site.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("NEURALFIELDS_COMPILE", "0")  # read when neuralfields is imported

import torch  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import neuralfields  # noqa: E402
from neuralfields.cli import build_parser  # noqa: E402
from neuralfields.cli.common import device_from  # noqa: E402
from neuralfields.render import marching  # noqa: E402
from neuralfields.cli.train import load_splits, resolve_config  # noqa: E402
from neuralfields.train.scene import scene_trainer  # noqa: E402

PACKAGE = os.path.dirname(os.path.abspath(neuralfields.__file__))
OPTIM = os.path.dirname(os.path.abspath(torch.optim.__file__))
DATA_SIZED = {"nonzero", "masked_select", "unique", "_unique", "_unique2", "unique_consecutive", "unique_dim",
              "bincount", "equal"}


def is_mask(t) -> bool:
    return isinstance(t, torch.Tensor) and t.dtype in (torch.bool, torch.uint8)


def sync_kind(func, args, kwargs) -> str | None:
    """Why ATen op ``func`` makes the host wait for the device, or None."""
    name = func.overloadpacket.__name__
    if name == "_local_scalar_dense":
        return "value read (item/bool/int/float)"
    if name == "index":
        return "x[bool mask]" if any(is_mask(i) for i in args[1] if i is not None) else None
    if name in ("index_put", "index_put_", "_index_put_impl_"):
        target, indices, value = args[:3]
        masks = [i for i in indices if is_mask(i)]
        # x[mask] = scalar becomes masked_fill_ (no sync) when the value is one host number.
        fill = len(masks) == 1 and value.numel() == 1 and value.device.type == "cpu"
        return "x[bool mask] = values" if masks and not fill else None
    if name == "repeat_interleave":
        return "repeat_interleave without output_size" if kwargs.get("output_size") is None else None
    if name in ("_to_copy", "copy_"):
        src = args[0] if name == "_to_copy" else args[1]
        dst = kwargs.get("device") or args[0].device
        if src.device.type != torch.device(dst).type and torch.device(dst).type == "cpu":
            return "copy device->host"
        return None
    if name in DATA_SIZED or torch.Tag.dynamic_output_shape in func.tags:
        return name
    return None


def call_site(depth: int) -> tuple[str, bool]:
    """The innermost ``depth`` package frames, and whether torch.optim is inside them."""
    sites, in_optim = [], False
    for frame, line in traceback.walk_stack(None):
        path = frame.f_code.co_filename
        if path.startswith(PACKAGE):
            sites.append(f"{os.path.relpath(path, os.path.dirname(PACKAGE))}:{line} {frame.f_code.co_name}")
            if len(sites) == depth:
                break
        elif not sites and path.startswith(OPTIM):
            in_optim = True
    return " < ".join(sites) or "(outside neuralfields)", in_optim


class SyncCounter(TorchDispatchMode):
    """Syncing ATen ops by kind and by call site."""

    def __init__(self, depth: int = 2):
        super().__init__()
        self.depth, self.ops = depth, 0
        self.kinds, self.excluded, self.potential = Counter(), Counter(), Counter()
        self.sites: dict[str, Counter] = defaultdict(Counter)

    def record(self, kind: str, potential: bool = False) -> None:
        site, in_optim = call_site(self.depth)
        if in_optim:
            self.excluded[kind] += 1
            return
        (self.potential if potential else self.kinds)[kind] += 1
        self.sites[site][kind + (" (potential)" if potential else "")] += 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops += 1
        kind = sync_kind(func, args, kwargs)
        if kind:
            self.record(kind)
        return func(*args, **kwargs)


class HostReads(TorchFunctionMode):
    """``.cpu()`` / ``.tolist()`` / ``.numpy()`` of CPU tensors: no ATen op, a copy on a GPU."""

    def __init__(self, counter: SyncCounter):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("cpu", "tolist", "numpy") and args and isinstance(args[0], torch.Tensor) and args[0].device.type == "cpu":
            self.counter.record(f".{name}()", potential=True)  # from a device, ATen counts the copy
        return func(*args, **(kwargs or {}))


def measure(fn, repeats: int, depth: int = 2) -> dict:
    """Call ``fn`` ``repeats`` times under the counter: syncs per call, by op and by call site."""
    counter = SyncCounter(depth)
    totals, start = [], time.perf_counter()
    with HostReads(counter), counter:
        for _ in range(repeats):
            before = sum(counter.kinds.values())
            fn()
            totals.append(sum(counter.kinds.values()) - before)
    n = max(repeats, 1)
    per = lambda c: {k: v / n for k, v in c.most_common()}  # noqa: E731
    sites = sorted(counter.sites.items(), key=lambda kv: -sum(kv[1].values()))
    return {"calls": repeats, "seconds_per_call": (time.perf_counter() - start) / n, "total": sum(totals) / n,
            "min": min(totals, default=0), "max": max(totals, default=0), "totals": totals, "by_op": per(counter.kinds),
            "potential": per(counter.potential), "potential_total": sum(counter.potential.values()) / n,
            "excluded": per(counter.excluded), "aten_ops": counter.ops / n,
            "sites": [{"site": s, "count": sum(c.values()) / n, "by_op": per(c)} for s, c in sites]}


def build_loop(train_argv: list[str]):
    """The training loop and val split ``neuralfields train`` would build, writing nothing."""
    args = build_parser().parse_args(["train", "--no-progress", *train_argv])
    cfg, _ = resolve_config(args)
    train_scene, val_scene = load_splits(cfg)
    loop = scene_trainer(cfg, train_scene, val_scene, None, progress=False, log=lambda _: None, device=device_from(args))
    return cfg, loop, val_scene


def count(train_argv: list[str], warmup: int, steps: int, views: int, depth: int = 2) -> dict:
    """Syncs per training step (after ``warmup`` uncounted steps) and per rendered val view."""
    cfg, loop, val = build_loop(train_argv)
    for _ in range(warmup):
        loop.train_step()
    result = {"scene": cfg.scene, "field": cfg.field.name, "sampler": cfg.render.sampler, "device": str(loop.model.device),
              "torch": torch.__version__, "warmup": warmup, "rays_after_warmup": loop.n_rays,
              "train_step": measure(loop.train_step, steps, depth)}
    if views and val is not None:
        index = iter(range(views))
        result["render_view"] = measure(lambda: loop.model.render_camera(val.cameras, next(index) % len(val)), views, depth)
    return result


def report(title: str, r: dict, top: int) -> None:
    print(f"\n== {title}: {r['total']:.2f} syncs per call (min {r['min']}, max {r['max']}; "
          f"{r['aten_ops']:.0f} ATen ops per call)")
    for op, n in r["by_op"].items():
        print(f"  {n:8.2f}  {op}")
    for op, n in r["potential"].items():
        print(f"  {n:8.2f}  potential: {op}")
    for s in r["sites"][:top]:
        print(f"  {s['count']:8.2f}  {s['site']}  ({', '.join(f'{k} {v:g}' for k, v in s['by_op'].items())})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Other options go to `neuralfields train` (--set K=V, --field, --device ...).")
    p.add_argument("--warmup", type=int, default=30, help="training steps before counting")
    p.add_argument("--steps", type=int, default=20, help="training steps counted")
    p.add_argument("--views", type=int, default=1, help="val views rendered and counted (0: none)")
    p.add_argument("--top", type=int, default=10, help="call sites shown")
    p.add_argument("--depth", type=int, default=2, help="package frames per call site")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--cpu-plan", action="store_true",
                   help="march as a CPU does (default: as an accelerator does, whose syncs this counts)")
    opts, rest = p.parse_known_args()
    if not opts.cpu_plan:
        marching.MARCH_PLANS["cpu"] = marching.MARCH_PLANS["accelerator"]
    result = count(rest, opts.warmup, opts.steps, opts.views, opts.depth)
    report(f"training step ({opts.steps} after {opts.warmup})", result["train_step"], opts.top)
    if "render_view" in result:
        report("rendered val view", result["render_view"], opts.top)
    if opts.json:
        Path(opts.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
